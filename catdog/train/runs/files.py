"""The files of a run folder: their names, atomic writes, and reading them back checked.

Every file is written atomically (a temporary file in the same folder, fsynced, then
``os.replace``), so a run killed at any moment never leaves a file that cannot be read.
"""

from __future__ import annotations

import csv
import io
import json
import os
import shutil
import socket
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from catdog.safe_files import open_regular, os_words, read_regular
from catdog.train.runs.ranges import (
    RangeError,
    check_history_row,
)

if TYPE_CHECKING:
    from catdog.model.backend import keras

CONFIG_FILE = "config.json"
STATUS_FILE = "status.json"
HISTORY_FILE = "history.csv"
METRICS_FILE = "metrics.json"
BEST_MODEL = "best.keras"
LAST_MODEL = "last.keras"
ERROR_LOG = "error.log"  # the full traceback of a failed run (the user is shown one line)
CHECKPOINT_FILE = "checkpoint.json"


class RunError(ValueError):
    """A run that does not exist or cannot be read."""


class RunDamaged(RunError):
    """A run folder with a file that is not what catdog wrote (the message says which, how)."""


class RunBusy(RunError):
    """Another process, or another thread of this one, is training the run."""


@contextmanager
def atomic_path(path: Path) -> Iterator[Path]:
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
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")


def atomic_write_json(path: Path, data: Any) -> None:
    """Write ``data`` as indented JSON, atomically."""
    atomic_write_text(path, json.dumps(data, indent=2, sort_keys=True) + "\n")


def atomic_copy(source: Path, path: Path) -> None:
    """Copy the regular file ``source`` to ``path``, atomically (a pipe or a device where
    ``source`` should be raises :class:`~catdog.safe_files.FileProblem`: copying
    ``/dev/zero`` would fill the disk)."""
    with (
        atomic_path(path) as tmp,
        os.fdopen(open_regular(source, source.name), "rb") as src,
        open(tmp, "wb") as out,
    ):
        shutil.copyfileobj(src, out)


# The most a run's JSON or CSV file holds (a history of 100,000 epochs is ~15 MB).
MAX_RUN_FILE_BYTES = 64 * 1024**2


def read_json(path: Path, default: Any = None) -> Any:
    """Read a JSON file, or return ``default`` if it does not exist (never blocking on a
    pipe planted there, never reading more than a run file holds)."""
    try:
        return json.loads(read_regular(path, MAX_RUN_FILE_BYTES, path.name).decode("utf-8"))
    except FileNotFoundError:
        return default


def json_type(value: Any) -> str:
    """How an error names a JSON value's type: object, list, str, int, float, bool, null."""
    if value is None:
        return "null"
    return "object" if isinstance(value, dict) else type(value).__name__


def read_object(path: Path) -> dict[str, Any] | None:
    """Read a JSON object file of a run folder, or ``None`` if the file does not exist.

    Raises:
        RunDamaged: the file cannot be read, is not UTF-8, not JSON (e.g. cut short), or holds
            something other than an object; the message names the file and the problem.
    """
    try:
        raw = read_regular(path, MAX_RUN_FILE_BYTES, path.name)  # never blocks on a pipe
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise RunDamaged(f"{path.name} cannot be read ({os_words(exc)})") from exc
    try:
        data = json.loads(raw.decode("utf-8"))
    except UnicodeDecodeError as exc:
        raise RunDamaged(f"{path.name} is not valid UTF-8 text") from exc
    except json.JSONDecodeError as exc:
        raise RunDamaged(f"{path.name} is not valid JSON ({exc.msg}, line {exc.lineno})") from exc
    if not isinstance(data, dict):
        raise RunDamaged(f"{path.name} must hold a JSON object, got {json_type(data)}")
    return data


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
    "phase",  # pretrained models: 1 = feature extraction (frozen base), 2 = fine-tuning
    "cached_features",  # 1: the head trained on features the frozen base computed once
)
_INT_COLUMNS = ("epoch", "steps", "images", "phase", "cached_features")


def write_history(run_path: Path, rows: list[dict[str, Any]]) -> None:
    """Write the per-epoch history CSV atomically (epochs numbered from 1)."""
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=HISTORY_COLUMNS, extrasaction="ignore")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: row.get(k, "") for k in HISTORY_COLUMNS})
    atomic_write_text(run_path / HISTORY_FILE, buffer.getvalue())


def read_history(run_path: Path) -> list[dict[str, float]]:
    """Read the history CSV as a list of rows with float values (empty if none yet).

    Raises:
        RunDamaged: the file cannot be read or has a value that is not a number.
    """
    path = run_path / HISTORY_FILE
    try:
        text = read_regular(path, MAX_RUN_FILE_BYTES, HISTORY_FILE).decode("utf-8")
    except FileNotFoundError:
        return []
    except OSError as exc:
        raise RunDamaged(f"{HISTORY_FILE} cannot be read ({os_words(exc)})") from exc
    except UnicodeDecodeError as exc:
        raise RunDamaged(f"{HISTORY_FILE} is not valid UTF-8 text") from exc
    rows, line = [], 1
    try:
        for line, raw in enumerate(csv.DictReader(io.StringIO(text)), start=2):
            row: dict[str, float] = {}
            for key, value in raw.items():
                if key is None or value is None:
                    raise RunDamaged(f"{HISTORY_FILE} line {line} has the wrong number of cells")
                if value != "":
                    row[key] = int(value) if key in _INT_COLUMNS else float(value)
            check_history_row(row, line)
            rows.append(row)
    except (ValueError, csv.Error) as exc:
        if isinstance(exc, RunDamaged):
            raise
        if isinstance(exc, RangeError):
            raise RunDamaged(str(exc)) from exc
        raise RunDamaged(f"{HISTORY_FILE} line {line}: {exc}") from exc
    return rows


def write_status(run_path: Path, state: str, **extra: Any) -> dict[str, Any]:
    """Record the run's state with this process' id and a heartbeat time."""
    try:
        status = read_object(run_path / STATUS_FILE) or {}
    except RunDamaged:
        status = {}  # rewriting it is the repair
    status.update(extra)
    status.update(state=state, pid=os.getpid(), host=socket.gethostname(), heartbeat=time.time())
    atomic_write_json(run_path / STATUS_FILE, status)
    return status


def temporary_files(run_path: Path) -> list[Path]:
    """The temporary files of atomic writes (``.<stem>.<random><suffix>``) in a run folder."""
    names = (CONFIG_FILE, STATUS_FILE, HISTORY_FILE, METRICS_FILE, BEST_MODEL, LAST_MODEL,
             CHECKPOINT_FILE, ERROR_LOG, "last.epoch-*.keras")  # fmt: skip
    found: list[Path] = []
    for name in names:
        stem, suffix = name.rsplit(".", 1)
        found += run_path.glob(f".{stem}.*.{suffix}")
    return found


def save_model_atomic(model: keras.Model, path: Path) -> None:
    """Save a Keras model in ``.keras`` format, atomically (Keras needs the suffix)."""
    with atomic_path(path) as tmp:
        model.save(tmp)
