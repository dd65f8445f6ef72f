"""Where catdog keeps what users make: imported datasets and training runs.

One folder, the *data home*, holds everything: ``$CATDOG_HOME`` if set, else ``~/.catdog``.
Inside it, ``datasets/<name>/`` are datasets (``train``/``validation``/``test`` folders of
class folders) and ``runs/<run id>/`` are training runs.
"""

from __future__ import annotations

import os
from pathlib import Path

ENV_VAR = "CATDOG_HOME"
DEMO_DATASET_NAME = "demo"


def data_home() -> Path:
    """Return the data home folder (created if missing)."""
    raw = os.environ.get(ENV_VAR, "").strip()
    home = Path(raw).expanduser() if raw else Path.home() / ".catdog"
    home.mkdir(parents=True, exist_ok=True)
    return home


def datasets_dir() -> Path:
    """Return the folder that holds imported and generated datasets (created if missing)."""
    path = data_home() / "datasets"
    path.mkdir(parents=True, exist_ok=True)
    return path


def runs_dir() -> Path:
    """Return the folder that holds training runs (created if missing)."""
    path = data_home() / "runs"
    path.mkdir(parents=True, exist_ok=True)
    return path


def demo_dataset_dir() -> Path:
    """Return where the built-in demo dataset lives (it may not be generated yet)."""
    return datasets_dir() / DEMO_DATASET_NAME


def dataset_roots() -> list[Path]:
    """The folders whose subfolders are datasets this caller may use."""
    return [datasets_dir()]


def in_dataset_roots(path: str | Path) -> bool:
    """Whether ``path`` is a folder directly inside one of :func:`dataset_roots`."""
    parent = Path(path).expanduser().resolve().parent
    return any(parent == root.resolve() for root in dataset_roots())
