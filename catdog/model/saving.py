"""Loading a saved ``.keras`` model: the one place that knows which catdog modules define custom
Keras objects (they must be imported, hence registered, before a model using them loads)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from catdog.failures import one_line
from catdog.model import catdognet, optim
from catdog.model.backend import keras
from catdog.model.model_files import ModelFileError, check_keras_file

CUSTOM_OBJECT_MODULES = (catdognet, optim)  # each registers its classes with Keras when imported


@keras.saving.register_keras_serializable(package="catdog")
def majority_accuracy(y_true: Any, y_pred: Any) -> Any:
    """Binary accuracy against the rounded label: the metric of models saved by runs trained
    with mixup, a setting catdog no longer offers. Registered so that those files still load,
    with their optimizer state, to evaluate, predict or resume; on 0/1 labels it equals plain
    accuracy."""
    return keras.metrics.binary_accuracy(keras.ops.round(y_true), y_pred)


class UnsafeModelError(ValueError):
    """The file would run Python code when loaded (a Lambda layer), which catdog never does."""


def load_keras_model(path: str | Path, name: str | None = None) -> keras.Model:
    """Load a ``.keras`` file in safe mode: a file that would run Python code is refused, and
    its structure is checked first (:func:`catdog.model.model_files.check_keras_file`), so a
    damaged or crafted file costs no memory and no time.

    Raises:
        UnsafeModelError: the file contains Python code (e.g. a Lambda layer).
        ModelFileError: anything else that keeps it from loading, in one sentence naming it
            (whatever Keras, h5py or TensorFlow raised).
    """
    name = name or str(path)
    check_keras_file(path, name)
    try:
        # safe_mode=True, explicitly: a .keras file must never run Python code when loaded.
        return keras.saving.load_model(path, safe_mode=True)
    except Exception as exc:  # Keras raises ValueError, TypeError, KeyError, OSError, ...
        if "safe_mode" in str(exc):
            raise UnsafeModelError(str(exc)) from exc
        if isinstance(exc, MemoryError):
            raise ModelFileError(f"{name} needs more memory than this machine has") from exc
        raise ModelFileError(f"{name} cannot be loaded ({one_line(exc)})") from exc
