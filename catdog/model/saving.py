"""Loading a saved ``.keras`` model: the one place that knows which catdog modules define custom
Keras objects (they must be imported, hence registered, before a model using them loads)."""

from __future__ import annotations

from pathlib import Path

from catdog.model import catdognet, optim
from catdog.model.backend import keras

CUSTOM_OBJECT_MODULES = (catdognet, optim)  # each registers its classes with Keras when imported


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
