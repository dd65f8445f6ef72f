"""Loading a saved ``.keras`` model: the one place that knows which catdog modules define custom
Keras objects (they must be imported, hence registered, before a model using them loads)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from catdog.model import catdognet, optim
from catdog.model.backend import keras

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


def load_keras_model(path: str | Path) -> keras.Model:
    """Load a ``.keras`` file in safe mode: a file that would run Python code is refused.

    Raises:
        UnsafeModelError: the file contains Python code (e.g. a Lambda layer).
        ValueError: anything else Keras cannot load.
    """
    try:
        # safe_mode=True, explicitly: a .keras file must never run Python code when loaded.
        return keras.saving.load_model(path, safe_mode=True)
    except ValueError as exc:
        if "safe_mode" in str(exc):
            raise UnsafeModelError(str(exc)) from exc
        raise
