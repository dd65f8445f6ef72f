"""Range checks of what a run folder's files hold, beyond their JSON types.

A ``config.json`` with ``"image_size": 12000`` has the right type and would make training or
prediction ask for gigabytes; ``"epochs": 1e9``, a negative batch size, 50,000 classes, a
NaN learning rate or a heartbeat in the year 3000 are no settings catdog ever wrote. Each
value read back is checked against the setting's own check (the one the CLI and the dashboard
use, :class:`catdog.train.config.TrainConfig`) and against the bounds below; a value outside
them makes the run ``damaged`` with one sentence naming the file, the key and the value
(:mod:`.checks` and :mod:`.files` raise it as :class:`~catdog.train.runs.files.RunDamaged`).
"""

from __future__ import annotations

import math
import unicodedata
from typing import Any

# The most a saved setting may be; far above anything a run of catdog trains with.
BOUNDS = {
    "epochs": 10_000,
    "batch_size": 4096,
    "learning_rate": 10.0,
    "fine_tune_lr": 10.0,
    "steps_per_epoch": 1_000_000,
    "early_stopping": 10_000,
    "warmup_epochs": 10_000,
    "fine_tune_epochs": 10_000,
    "time_limit_minutes": 60 * 24 * 365,
}
MAX_CLASSES = 1000  # class folders of one dataset
MAX_CLASS_NAME = 255  # bytes: a folder name
MAX_EPOCH_RECORDS = 1_000_000  # epochs done, a checkpoint's epoch


class RangeError(ValueError):
    """A value of a run file that no run of catdog has; the message names file, key, value."""


def _number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def check_train_settings(train: dict[str, Any]) -> None:
    """Each saved training setting against its own check and :data:`BOUNDS`.

    Raises:
        RangeError: "config.json: 'train.image_size' image size must be between 32 and 512
            pixels, got 12000".
    """
    from catdog.train.config import TrainConfig

    checks = {f.name: f.metadata.get("check") for f in TrainConfig.__dataclass_fields__.values()}
    for key, value in train.items():
        where = f"config.json: 'train.{key}'"
        if _number(value) and not math.isfinite(value):
            raise RangeError(f"{where} must be a finite number, got {value}")
        check = checks.get(key)
        if value is not None and check is not None and (problem := check(value)):
            raise RangeError(f"{where}: {problem}")
        if _number(value) and key in BOUNDS and value > BOUNDS[key]:
            raise RangeError(f"{where} is {value:,}, more than any run trains with (the limit "
                             f"is {BOUNDS[key]:,})")  # fmt: skip


def check_classes(classes: list[str]) -> None:
    """A run's class names: 2 to :data:`MAX_CLASSES`, each a folder name, no two the same
    name to a disk (the same in NFC and ignoring case).

    Raises:
        RangeError: which rule the list breaks.
    """
    if not 2 <= len(classes) <= MAX_CLASSES:
        raise RangeError(f"config.json: 'classes' holds {len(classes):,} class name(s); a run "
                         f"has 2 to {MAX_CLASSES:,} classes")  # fmt: skip
    seen: dict[str, str] = {}
    for name in classes:
        if not name or len(name.encode("utf-8", "surrogateescape")) > MAX_CLASS_NAME:
            raise RangeError(f"config.json: 'classes' holds a name of {len(name)} characters; "
                             "a class name is a folder name of 1 to 255 bytes")  # fmt: skip
        if "/" in name or "\0" in name or name in (".", ".."):
            raise RangeError(f"config.json: 'classes' holds {name!r}, which is no folder name")
        key = unicodedata.normalize("NFC", name).casefold()
        if key in seen:
            raise RangeError(f"config.json: 'classes' holds {seen[key]!r} and {name!r}, one "
                             "name to a disk that ignores case or normalization")  # fmt: skip
        seen[key] = name


def check_status(status: dict[str, Any]) -> None:
    """``status.json``: a positive process id, epochs done in range, a finite heartbeat."""
    pid = status.get("pid")
    if pid is not None and not 0 < pid < 2**31:
        raise RangeError(f"status.json: 'pid' must be a process id (≥ 1), got {pid}")
    done = status.get("epochs_done")
    if done is not None and not 0 <= done <= MAX_EPOCH_RECORDS:
        raise RangeError(f"status.json: 'epochs_done' must be 0 to {MAX_EPOCH_RECORDS:,}, "
                         f"got {done}")  # fmt: skip
    beat = status.get("heartbeat")
    if beat is not None and not (math.isfinite(beat) and 0 <= beat < 2**40):
        raise RangeError(f"status.json: 'heartbeat' must be a time, got {beat}")


def check_metrics(metrics: dict[str, Any]) -> None:
    """``metrics.json``: accuracies between 0 and 1, times finite and ≥ 0."""
    for key, value in metrics.items():
        if not _number(value):
            continue
        if not math.isfinite(value) or value < 0:
            raise RangeError(f"metrics.json: {key!r} must be a finite number ≥ 0, got {value}")
        if "accuracy" in key and value > 1:
            raise RangeError(f"metrics.json: {key!r} must be between 0 and 1, got {value}")


def check_history_row(row: dict[str, float], line: int) -> None:
    """One ``history.csv`` row: epoch 1 to :data:`MAX_EPOCH_RECORDS`, accuracies 0–1, losses
    and times finite (a diverged loss may be inf or nan: training records what happened)."""
    epoch = row.get("epoch")
    if epoch is not None and not 1 <= epoch <= MAX_EPOCH_RECORDS:
        raise RangeError(f"history.csv line {line}: 'epoch' must be 1 to "
                         f"{MAX_EPOCH_RECORDS:,}, got {epoch}")  # fmt: skip
    for key, value in row.items():
        if "accuracy" in key and not 0 <= value <= 1:
            raise RangeError(f"history.csv line {line}: {key!r} must be between 0 and 1, "
                             f"got {value}")  # fmt: skip
        if key in ("seconds", "train_seconds", "steps", "images") and not 0 <= value < math.inf:
            raise RangeError(f"history.csv line {line}: {key!r} must be ≥ 0, got {value}")


def check_checkpoint_epoch(epoch: int) -> None:
    """The epoch a ``checkpoint.json`` names: 1 to :data:`MAX_EPOCH_RECORDS`."""
    if epoch > MAX_EPOCH_RECORDS:
        raise RangeError(f"checkpoint.json: 'epoch' must be at most {MAX_EPOCH_RECORDS:,}, "
                         f"got {epoch:,}")  # fmt: skip
