"""Training runs on disk: one folder per run under ``<data home>/runs/``.

A run folder holds:

- ``config.json``  — the full :class:`~catdog.training.TrainConfig` (enough to re-run it), the
  class names and the run id;
- ``status.json``  — state (``running``/``completed``/``stopped``/``failed``), process id,
  heartbeat time, epochs done, error message;
- ``history.csv``  — one row per finished epoch (loss, accuracy, val_loss, val_accuracy,
  learning rate, seconds);
- ``best.keras`` / ``last.keras`` — the model with the best validation accuracy so far and the
  model after the last finished epoch (with optimizer state, for resuming);
- ``metrics.json`` — final metrics (best/final validation accuracy, test accuracy, wall time).

Every file is written atomically (temporary file in the same folder, then ``os.replace``), so
a run killed at any moment never leaves a file that cannot be read. This module does not
import TensorFlow; only :func:`load_model` and :func:`save_model_atomic` do, lazily.
"""

from __future__ import annotations

import csv
import io
import json
import os
import secrets
import socket
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING, Any

from catdog.home import runs_dir

if TYPE_CHECKING:
    from catdog.backend import keras
    from catdog.config import TrainConfig

CONFIG_FILE = "config.json"
STATUS_FILE = "status.json"
HISTORY_FILE = "history.csv"
METRICS_FILE = "metrics.json"
BEST_MODEL = "best.keras"
LAST_MODEL = "last.keras"
ERROR_LOG = "error.log"  # the full traceback of a failed run (the user is shown one line)

# A "running" run whose heartbeat is older than this, or whose process is gone, was interrupted.
STALE_AFTER_SECONDS = 300.0


class RunError(ValueError):
    """A run that does not exist or cannot be read."""


@contextmanager
def _atomic_path(path: Path) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; on success it replaces ``path`` atomically."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.stem}.", suffix=path.suffix, dir=path.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        yield tmp
        with open(tmp, "rb+") as handle:
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def atomic_write_text(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` so readers see either the old or the new file, never half."""
    with _atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")


def atomic_write_json(path: Path, data: Any) -> None:
    """Write ``data`` as indented JSON, atomically."""
    atomic_write_text(path, json.dumps(data, indent=2, sort_keys=True) + "\n")


def save_model_atomic(model: keras.Model, path: Path) -> None:
    """Save a Keras model in ``.keras`` format, atomically (Keras needs the suffix)."""
    with _atomic_path(path) as tmp:
        model.save(tmp)


def new_run_id(model_name: str) -> str:
    """A unique, sortable run id such as ``20261128-071502-seed-baseline-3fa2``."""
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    return f"{stamp}-{model_name}-{secrets.token_hex(2)}"


def _installed_version(*distributions: str) -> str | None:
    for name in distributions:
        try:
            return metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return None


def create_run(config: TrainConfig, run_id: str | None = None) -> Path:
    """Validate ``config`` and make its run folder (``config.json``, state ``running``).

    Cheap and without TensorFlow, so a caller can show the run (and a refresh can find it)
    the moment training is asked for; :func:`catdog.training.train_created` then trains it.

    Args:
        config: what to train; ``None`` fields take the model's defaults.
        run_id: use this id instead of a fresh one (the folder must not exist yet).

    Raises:
        TrainingError: a setting cannot work, or the dataset has fewer than 2 classes.
        DatasetError: ``config.data`` is not a dataset.
    """
    from catdog.config import TrainingError
    from catdog.datasets import scan_dataset

    cfg = config.resolved()
    info = scan_dataset(Path(cfg.data))
    if len(info.classes) < 2:
        raise TrainingError(f"{cfg.data} has {len(info.classes)} class folder(s); need at least 2")
    run_id = run_id or new_run_id(cfg.model)
    path = runs_dir() / run_id
    path.mkdir(parents=True, exist_ok=False)
    atomic_write_json(
        path / CONFIG_FILE,
        {
            "run_id": run_id,
            "created": datetime.now().isoformat(timespec="seconds"),
            "classes": list(info.classes),
            "train": cfg.to_dict(),
            "versions": {
                "tensorflow": _installed_version("tensorflow", "tensorflow-cpu"),
                "keras": _installed_version("keras"),
            },
        },
    )
    write_status(path, "running", epochs_done=0)
    return path


def update_config(run_path: Path, **changes: Any) -> dict[str, Any]:
    """Replace top-level entries of a run's ``config.json`` (atomically); returns the result.

    Training records here what it settled once it started (e.g. the precision ``auto`` chose).
    """
    config = read_json(run_path / CONFIG_FILE, {}) or {}
    config.update(changes)
    atomic_write_json(run_path / CONFIG_FILE, config)
    return config


def resolve_run(run: str | Path) -> Path:
    """Return the folder of a run given its id, a unique id prefix, or a path.

    Raises:
        RunError: nothing matches, or a prefix matches several runs.
    """
    candidate = Path(run)
    if candidate.is_dir() and (candidate / CONFIG_FILE).exists():
        return candidate
    root = runs_dir()
    exact = root / str(run)
    if (exact / CONFIG_FILE).exists():
        return exact
    matches = sorted(p for p in root.glob(f"{run}*") if (p / CONFIG_FILE).exists())
    if len(matches) == 1:
        return matches[0]
    if not matches:
        raise RunError(f"no run {str(run)!r} in {root} (see `python -m catdog runs`)")
    names = ", ".join(p.name for p in matches[:5])
    raise RunError(f"{str(run)!r} matches {len(matches)} runs ({names}…); give more of the id")


def read_json(path: Path, default: Any = None) -> Any:
    """Read a JSON file, or return ``default`` if it does not exist."""
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return default


HISTORY_COLUMNS = (
    "epoch",
    "loss",
    "accuracy",
    "val_loss",
    "val_accuracy",
    "learning_rate",
    "seconds",  # wall time of the epoch, validation included
    "train_seconds",  # the training part alone (for images per second)
    "steps",  # batches trained in the epoch
    "images",  # training images seen in the epoch
)


def write_history(run_path: Path, rows: list[dict[str, Any]]) -> None:
    """Write the per-epoch history CSV atomically (epochs numbered from 1)."""
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=HISTORY_COLUMNS, extrasaction="ignore")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: row.get(k, "") for k in HISTORY_COLUMNS})
    atomic_write_text(run_path / HISTORY_FILE, buffer.getvalue())


def read_history(run_path: Path) -> list[dict[str, float]]:
    """Read the history CSV as a list of rows with float values (empty if none yet)."""
    try:
        text = (run_path / HISTORY_FILE).read_text(encoding="utf-8")
    except FileNotFoundError:
        return []
    rows = []
    for raw in csv.DictReader(io.StringIO(text)):
        row: dict[str, float] = {}
        for key, value in raw.items():
            if value not in ("", None):
                row[key] = int(value) if key in ("epoch", "steps", "images") else float(value)
        rows.append(row)
    return rows


def write_status(run_path: Path, state: str, **extra: Any) -> dict[str, Any]:
    """Record the run's state with this process' id and a heartbeat time."""
    status = read_json(run_path / STATUS_FILE, {}) or {}
    status.update(extra)
    status.update(state=state, pid=os.getpid(), host=socket.gethostname(), heartbeat=time.time())
    atomic_write_json(run_path / STATUS_FILE, status)
    return status


def _process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def effective_state(status: dict[str, Any]) -> str:
    """The run's state, with a ``running`` run whose process died reported as ``interrupted``."""
    state = status.get("state", "unknown")
    if state != "running":
        return state
    same_host = status.get("host") == socket.gethostname()
    if same_host and not _process_alive(int(status.get("pid", -1))):
        return "interrupted"
    if time.time() - float(status.get("heartbeat", 0)) > STALE_AFTER_SECONDS:
        return "interrupted"
    return "running"


@dataclass
class RunInfo:
    """What a runs listing shows about one run."""

    id: str
    path: Path
    model: str
    data: str
    state: str
    epochs_done: int
    epochs: int
    best_val_accuracy: float | None
    test_accuracy: float | None
    created: str
    classes: list[str] = field(default_factory=list)
    config: dict[str, Any] = field(default_factory=dict)
    error: str | None = None


def run_info(run_path: Path) -> RunInfo:
    """Summarise one run folder (reads only small JSON/CSV files)."""
    config = read_json(run_path / CONFIG_FILE)
    if config is None:
        raise RunError(f"{run_path} is not a run: it has no {CONFIG_FILE}")
    status = read_json(run_path / STATUS_FILE, {}) or {}
    metrics = read_json(run_path / METRICS_FILE, {}) or {}
    history = read_history(run_path)
    val = [row["val_accuracy"] for row in history if "val_accuracy" in row]
    train_cfg = config.get("train", {})
    state = effective_state(status)
    epochs = int(train_cfg.get("epochs", 0))
    if state == "completed" and train_cfg.get("time_limit_minutes"):
        epochs = len(history)  # it trained all the epochs its time limit had room for
    return RunInfo(
        id=run_path.name,
        path=run_path,
        model=train_cfg.get("model", "?"),
        data=train_cfg.get("data", "?"),
        state=state,
        epochs_done=len(history),
        epochs=epochs,
        best_val_accuracy=max(val) if val else None,
        test_accuracy=metrics.get("test_accuracy"),
        created=config.get("created", ""),
        classes=list(config.get("classes", [])),
        config=config,
        error=status.get("error"),
    )


def list_runs() -> list[RunInfo]:
    """All runs under the data home, newest first; unreadable folders are left out."""
    infos = []
    for path in runs_dir().iterdir():
        if path.is_dir() and (path / CONFIG_FILE).exists():
            try:
                infos.append(run_info(path))
            except (RunError, ValueError, OSError):
                continue
    return sorted(infos, key=lambda info: info.id, reverse=True)


def load_model(run: str | Path, which: str = "best") -> keras.Model:
    """Load a run's ``best`` or ``last`` model.

    Falls back to the other file when the requested one does not exist yet (e.g. a run stopped
    before its first validation).

    Raises:
        RunError: the run has no saved model at all, or its file cannot be loaded safely (it
            would run Python code, e.g. a Lambda layer, or it is not a Keras model).
    """
    from catdog import catdognet, mixup, optim  # noqa: F401  (register custom objects)
    from catdog.backend import keras

    path = resolve_run(run)
    found = model_file(path, which)
    if found is None:
        raise RunError(f"run {path.name} has no saved model yet (no {BEST_MODEL} or {LAST_MODEL})")
    try:
        # safe_mode=True, explicitly: a .keras file must never run Python code when loaded.
        return keras.saving.load_model(found, safe_mode=True)
    except ValueError as exc:
        if "safe_mode" in str(exc):
            raise RunError(
                f"{found} contains Python code (e.g. a Lambda layer) and catdog never runs code "
                "from a model file; use models trained by catdog, or retrain this one"
            ) from exc
        raise RunError(f"{found} cannot be loaded: {exc}") from exc


def model_file(run_path: Path, which: str = "best") -> Path | None:
    """The file :func:`load_model` would load: ``which`` model, else the other, else ``None``."""
    if which not in ("best", "last"):
        raise ValueError(f"which model: 'best' or 'last', got {which!r}")
    order = [BEST_MODEL, LAST_MODEL] if which == "best" else [LAST_MODEL, BEST_MODEL]
    return next((run_path / n for n in order if (run_path / n).exists()), None)
