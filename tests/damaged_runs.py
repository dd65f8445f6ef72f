"""Run folders damaged in the ways a hand edit, a disk error or a cut-short copy damages them.

Each variant starts from a whole run folder (what training writes) and breaks one file; the
listing must show it as ``damaged`` with ``reason`` in its error, and never raise.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

from catdog.data.paths import runs_dir
from catdog.train import runs


def _json(name: str, value: object) -> Callable[[Path], None]:
    return lambda path: (path / name).write_text(json.dumps(value), encoding="utf-8")


def _bytes(name: str, data: bytes) -> Callable[[Path], None]:
    return lambda path: (path / name).write_bytes(data)


def _edit(name: str, change: Callable[[dict], None]) -> Callable[[Path], None]:
    def apply(path: Path) -> None:
        data = json.loads((path / name).read_text(encoding="utf-8"))
        change(data)
        (path / name).write_text(json.dumps(data), encoding="utf-8")

    return apply


def _truncate(name: str) -> Callable[[Path], None]:
    def apply(path: Path) -> None:
        data = (path / name).read_bytes()
        (path / name).write_bytes(data[: len(data) // 2])

    return apply


def _directory(name: str) -> Callable[[Path], None]:
    def apply(path: Path) -> None:
        (path / name).unlink()
        (path / name).mkdir()

    return apply


# (variant id, how the folder is damaged, what the reason must say)
VARIANTS: list[tuple[str, Callable[[Path], None], str]] = [
    ("config-not-json", _bytes("config.json", b"{not json"), "config.json is not valid JSON"),
    ("config-truncated", _truncate("config.json"), "config.json is not valid JSON"),
    ("config-not-utf8", _bytes("config.json", b'{"train": "\xff\xfe"}'),
     "config.json is not valid UTF-8"),
    ("config-a-list", _json("config.json", [1, 2]),
     "config.json must hold a JSON object, got list"),
    ("train-an-int", _edit("config.json", lambda c: c.update(train=5)),
     "config.json: 'train' must be an object, got int"),
    ("epochs-a-str", _edit("config.json", lambda c: c["train"].update(epochs="x")),
     "config.json: 'train.epochs' must be an int or null, got str"),
    ("model-null", _edit("config.json", lambda c: c["train"].update(model=None)),
     "config.json: 'train.model' must be a str, got null"),
    ("classes-a-str", _edit("config.json", lambda c: c.update(classes="cats,dogs")),
     "config.json: 'classes' must be a list of class names, got str"),
    ("augmentation-an-int", _edit("config.json", lambda c: c["train"].update(augmentation=3)),
     "config.json: 'train.augmentation' must be an object or null, got int"),
    ("config-a-folder", _directory("config.json"), "config.json cannot be read"),
    ("status-a-list", _json("status.json", ["running"]),
     "status.json must hold a JSON object, got list"),
    ("status-truncated", _truncate("status.json"), "status.json is not valid JSON"),
    ("pid-a-str", _edit("status.json", lambda s: s.update(pid="1234")),
     "status.json: 'pid' must be an int, got str"),
    ("heartbeat-a-str", _edit("status.json", lambda s: s.update(heartbeat="soon")),
     "status.json: 'heartbeat' must be a number, got str"),
    ("metrics-accuracy-a-str", _json("metrics.json", {"test_accuracy": "high"}),
     "metrics.json: 'test_accuracy' must be a number or null, got str"),
    ("history-not-numbers", _bytes("history.csv", b"epoch,loss\n1,abc\n"),
     "history.csv line 2: could not convert string to float: 'abc'"),
    ("checkpoint-epoch-a-str", _json("checkpoint.json", {"epoch": "1", "row": {"epoch": 1}}),
     "checkpoint.json: 'epoch' must be an int ≥ 1, got '1'"),
]  # fmt: skip


def whole_run(run_id: str, data: str = "/data/demo") -> Path:
    """A run folder as a finished 1-epoch run leaves it (without models)."""
    path = runs_dir() / run_id
    runs.atomic_write_json(
        path / runs.CONFIG_FILE,
        {"run_id": run_id, "created": "2026-11-28T07:00:00", "classes": ["cats", "dogs"],
         "train": {"model": "seed-baseline", "data": data, "epochs": 1}},
    )  # fmt: skip
    row = {"epoch": 1, "loss": 0.6, "accuracy": 0.7, "val_loss": 0.65, "val_accuracy": 0.6}
    runs.write_history(path, [row])
    runs.atomic_write_json(path / runs.CHECKPOINT_FILE, {"epoch": 1, "row": row, "best": True})
    runs.atomic_write_json(path / runs.METRICS_FILE, {"test_accuracy": 0.5})
    runs.write_status(path, "completed", epochs_done=1)
    return path


def damaged_run(variant: str) -> Path:
    """A whole run folder broken as ``variant`` says; its id is ``damaged-<variant>``."""
    damage = next(apply for name, apply, _ in VARIANTS if name == variant)
    path = whole_run(f"damaged-{variant}")
    damage(path)
    return path


def all_damaged() -> dict[str, str]:
    """Every variant's folder in the data home: ``{run id: the reason it must show}``."""
    return {damaged_run(name).name: reason for name, _, reason in VARIANTS}
