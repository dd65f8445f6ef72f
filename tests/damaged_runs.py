"""Run folders damaged in the ways a hand edit, a disk error or a cut-short copy damages them.

Each variant starts from a whole run folder (what training writes) and breaks one file; the
listing must show it as ``damaged`` with ``reason`` in its error, and never raise.
"""

from __future__ import annotations

import json
import os
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


def _train(**values: object) -> Callable[[Path], None]:
    return _edit("config.json", lambda c: c["train"].update(values))


def _fifo(name: str) -> Callable[[Path], None]:
    def apply(path: Path) -> None:
        (path / name).unlink(missing_ok=True)
        os.mkfifo(path / name)

    return apply


def _sparse(name: str, size: int) -> Callable[[Path], None]:
    def apply(path: Path) -> None:
        with open(path / name, "r+b") as f:
            f.truncate(size)

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
    # --- values of the right type that no run has (range checks) -----------------------------
    ("image-size-12000", _train(image_size=12000),
     "config.json: 'train.image_size': image size must be between 32 and 512 pixels, got 12000"),
    ("epochs-a-billion", _train(epochs=10**9),
     "config.json: 'train.epochs' is 1,000,000,000, more than any run trains with (the limit "
     "is 10,000)"),
    ("batch-size-zero", _train(batch_size=0),
     "config.json: 'train.batch_size': batch size must be ≥ 1, got 0"),
    ("batch-size-huge", _train(batch_size=10**7),
     "config.json: 'train.batch_size' is 10,000,000, more than any run trains with"),
    ("learning-rate-nan", _train(learning_rate=float("nan")),
     "config.json: 'train.learning_rate' must be a finite number, got nan"),
    ("learning-rate-negative", _train(learning_rate=-0.1),
     "config.json: 'train.learning_rate': learning rate must be positive, got -0.1"),
    ("dropout-two", _train(dropout=2.0), "config.json: 'train.dropout': dropout must be in [0, 1)"),
    ("minutes-infinite", _train(time_limit_minutes=float("inf")),
     "config.json: 'train.time_limit_minutes' must be a finite number, got inf"),
    ("classes-one", _edit("config.json", lambda c: c.update(classes=["cats"])),
     "config.json: 'classes' holds 1 class name(s); a run has 2 to 1,000 classes"),
    ("classes-5000", _edit("config.json", lambda c: c.update(classes=list(map(str, range(5000))))),
     "config.json: 'classes' holds 5,000 class name(s)"),
    ("classes-case-twins", _edit("config.json", lambda c: c.update(classes=["cats", "Cats"])),
     "config.json: 'classes' holds 'cats' and 'Cats', one name to a disk that ignores case"),
    ("classes-a-path", _edit("config.json", lambda c: c.update(classes=["../x", "dogs"])),
     "config.json: 'classes' holds '../x', which is no folder name"),
    ("pid-negative", _edit("status.json", lambda s: s.update(pid=-1)),
     "status.json: 'pid' must be a process id (≥ 1), got -1"),
    ("epochs-done-negative", _edit("status.json", lambda s: s.update(epochs_done=-5)),
     "status.json: 'epochs_done' must be 0 to 1,000,000, got -5"),
    ("heartbeat-far", _edit("status.json", lambda s: s.update(heartbeat=1e300)),
     "status.json: 'heartbeat' must be a time, got 1e+300"),
    ("accuracy-seven", _json("metrics.json", {"test_accuracy": 7}),
     "metrics.json: 'test_accuracy' must be between 0 and 1, got 7"),
    ("history-accuracy-three", _bytes("history.csv", b"epoch,loss,accuracy\n1,0.5,3\n"),
     "history.csv line 2: 'accuracy' must be between 0 and 1, got 3.0"),
    ("history-epoch-zero", _bytes("history.csv", b"epoch,loss\n0,0.5\n"),
     "history.csv line 2: 'epoch' must be 1 to 1,000,000, got 0"),
    ("checkpoint-epoch-a-billion",
     _json("checkpoint.json", {"epoch": 10**9, "row": {"epoch": 10**9}}),
     "checkpoint.json: 'epoch' must be at most 1,000,000, got 1,000,000,000"),
    # --- files that are no regular file, or far bigger than any run file --------------------
    *[(f"{name.split('.')[0]}-a-fifo", _fifo(name),
       f"{name} cannot be read (it is a named pipe (FIFO), not a regular file)")
      for name in ("config.json", "status.json", "history.csv", "checkpoint.json",
                   "metrics.json")],
    ("config-huge", _sparse("config.json", 70 * 1024**2),
     "config.json cannot be read (it is 73,400,320 bytes, far more than such a file holds"),
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
