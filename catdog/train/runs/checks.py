"""The checks a run folder's files pass before anything uses them: each value of the type
catdog wrote, else :class:`~catdog.train.runs.files.RunDamaged` naming the file and the value.
"""

from __future__ import annotations

import functools
import types
from pathlib import Path
from typing import Any, get_type_hints

from catdog.train.runs.commit import committed_history
from catdog.train.runs.files import (
    CONFIG_FILE,
    METRICS_FILE,
    STATUS_FILE,
    RunDamaged,
    RunError,
    json_type,
    read_object,
)
from catdog.train.runs.ranges import (
    RangeError,
    check_classes,
    check_metrics,
    check_status,
    check_train_settings,
)


def _type_ok(value: Any, kind: Any) -> bool:
    """Whether a JSON value fits a TrainConfig field type (JSON has no int/float split)."""
    if isinstance(kind, types.UnionType):
        return any(_type_ok(value, k) for k in kind.__args__)
    if kind is type(None):
        return value is None
    if kind is bool:
        return isinstance(value, bool)
    if kind is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if kind is float:
        return isinstance(value, int | float) and not isinstance(value, bool)
    if kind is str:
        return isinstance(value, str)
    return isinstance(value, dict)  # a nested settings object (augmentation)


@functools.cache
def _train_types() -> dict[str, Any]:
    from catdog.train.config import TrainConfig

    return {**get_type_hints(TrainConfig), "mixed_precision": bool | None}


def _type_names(kind: Any) -> str:
    """``int | None`` → ``"an int or null"``, as an error message says it."""
    names = {bool: "a bool", int: "an int", float: "a number", str: "a str", type(None): "null"}
    return " or ".join(names.get(k, "an object") for k in getattr(kind, "__args__", (kind,)))


def _check(ok: bool, name: str, what: str, value: Any) -> None:
    if not ok:
        raise RunDamaged(f"{name} must be {what}, got {json_type(value)}")


def _check_config(config: dict[str, Any]) -> None:
    """Raise :class:`RunDamaged` for a ``config.json`` whose values have the wrong types."""
    train = config.get("train")
    _check(isinstance(train, dict), "config.json: 'train'", "an object", train)
    classes = config.get("classes")
    _check(
        isinstance(classes, list) and all(isinstance(c, str) for c in classes),
        "config.json: 'classes'", "a list of class names", classes,
    )  # fmt: skip
    for key in ("created", "run_id"):
        value = config.get(key, "")
        _check(isinstance(value, str), f"config.json: {key!r}", "a str", value)
    for key in ("model", "data"):
        value = train.get(key)
        _check(isinstance(value, str), f"config.json: 'train.{key}'", "a str", value)
    for key, value in train.items():
        kind = _train_types().get(key)
        if kind is not None:
            _check(_type_ok(value, kind), f"config.json: 'train.{key}'", _type_names(kind), value)


# Fields of status.json and metrics.json a listing reads, with the types they must have.
_STATUS_TYPES = {"state": str, "pid": int, "host": str, "heartbeat": float,
                 "epochs_done": int, "error": str | None, "phase": str | None}  # fmt: skip
_METRICS_TYPES = {"test_accuracy": float | None, "train_seconds": float}


def _check_fields(data: dict[str, Any], name: str, kinds: dict[str, Any]) -> None:
    for key, kind in kinds.items():
        if key in data:
            _check(_type_ok(data[key], kind), f"{name}: {key!r}", _type_names(kind), data[key])


def read_run_files(run_path: Path) -> tuple[dict, dict, dict, list[dict[str, float]]]:
    """A run folder's config, status, metrics and committed history, each checked.

    Raises:
        RunError: the folder has no ``config.json`` (it is not a run).
        RunDamaged: a file cannot be read or holds values of the wrong types.
    """
    config = read_object(run_path / CONFIG_FILE)
    if config is None:
        raise RunError(f"{run_path} is not a run: it has no {CONFIG_FILE}")
    _check_config(config)
    status = read_object(run_path / STATUS_FILE) or {}
    _check_fields(status, STATUS_FILE, _STATUS_TYPES)
    metrics = read_object(run_path / METRICS_FILE) or {}
    _check_fields(metrics, METRICS_FILE, _METRICS_TYPES)
    try:  # values of the right types, but no run has them (image size 12000, NaN, -1…)
        check_train_settings(config["train"])
        check_classes(config["classes"])
        check_status(status)
        check_metrics(metrics)
    except RangeError as exc:
        raise RunDamaged(str(exc)) from exc
    return config, status, metrics, committed_history(run_path)
