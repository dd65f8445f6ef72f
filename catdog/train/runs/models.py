"""A run's saved models: saving one atomically, finding and loading ``best``/``last`` safely.

Only these functions import TensorFlow (lazily).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from catdog.train.runs.files import BEST_MODEL, LAST_MODEL, RunError
from catdog.train.runs.store import resolve_run

if TYPE_CHECKING:
    from catdog.model.backend import keras


def load_model(run: str | Path, which: str = "best") -> keras.Model:
    """Load a run's ``best`` or ``last`` model.

    Falls back to the other file when the requested one does not exist yet (e.g. a run stopped
    before its first validation).

    Raises:
        RunError: the run has no saved model at all, or its file cannot be loaded safely (it
            would run Python code, e.g. a Lambda layer, or it is not a Keras model).
    """
    from catdog.model.saving import UnsafeModelError, load_keras_model

    path = resolve_run(run)
    found = model_file(path, which)
    if found is None:
        raise RunError(f"run {path.name} has no saved model yet (no {BEST_MODEL} or {LAST_MODEL})")
    try:
        return load_keras_model(found)
    except ValueError as exc:
        if isinstance(exc, UnsafeModelError):
            raise RunError(
                f"{found} contains Python code (e.g. a Lambda layer) and catdog never runs code "
                "from a model file; use models trained by catdog, or retrain this one"
            ) from exc
        raise RunError(str(exc)) from exc  # one sentence naming the file (ModelFileError)


def model_file(run_path: Path, which: str = "best") -> Path | None:
    """The file :func:`load_model` would load: ``which`` model, else the other, else ``None``."""
    if which not in ("best", "last"):
        raise ValueError(f"which model: 'best' or 'last', got {which!r}")
    order = [BEST_MODEL, LAST_MODEL] if which == "best" else [LAST_MODEL, BEST_MODEL]
    return next((run_path / n for n in order if (run_path / n).exists()), None)
