"""Run folders: atomic files, run lookup, and telling a running run from a dead one."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from catdog import runs
from catdog.home import runs_dir


def make_run(run_id: str, state: str = "completed", **status) -> Path:
    path = runs_dir() / run_id
    runs.atomic_write_json(
        path / runs.CONFIG_FILE,
        {
            "run_id": run_id,
            "created": "2026-11-28T07:00:00",
            "classes": ["cats", "dogs"],
            "train": {"model": "seed-baseline", "data": "/data/demo", "epochs": 3},
        },
    )
    runs.write_status(path, state, **status)
    return path


def test_atomic_write_keeps_the_old_file_when_writing_fails(tmp_path: Path) -> None:
    target = tmp_path / "status.json"
    runs.atomic_write_json(target, {"state": "old"})

    class Boom:
        def __str__(self) -> str:
            raise RuntimeError("disk on fire")

    with pytest.raises(TypeError):
        runs.atomic_write_json(target, {"state": Boom()})  # json cannot serialise it
    with pytest.raises(RuntimeError), runs._atomic_path(target) as tmp:
        tmp.write_text('{"state": "ha')  # half a file...
        raise RuntimeError("killed")  # ...and the writer dies before the rename
    assert json.loads(target.read_text()) == {"state": "old"}
    assert [p.name for p in tmp_path.iterdir()] == ["status.json"]  # no temp files left


def test_history_round_trip(tmp_path: Path) -> None:
    rows = [
        {
            "epoch": 1,
            "loss": 0.69,
            "accuracy": 0.5,
            "val_loss": 0.68,
            "val_accuracy": 0.55,
            "learning_rate": 1e-4,
            "seconds": 1.5,
            "steps": 10,
        },
        {
            "epoch": 2,
            "loss": 0.6,
            "accuracy": 0.7,
            "learning_rate": 1e-4,
            "seconds": 1.2,
            "steps": 10,
        },
    ]
    runs.write_history(tmp_path, rows)
    assert runs.read_history(tmp_path) == rows  # missing val columns stay missing
    assert runs.read_history(tmp_path / "nothing") == []


def test_resolve_run_by_id_prefix_and_path() -> None:
    a = make_run("20261128-070000-seed-baseline-aaaa")
    make_run("20261128-070000-seed-baseline-bbbb")
    assert runs.resolve_run(a.name) == a
    assert runs.resolve_run("20261128-070000-seed-baseline-a") == a
    assert runs.resolve_run(str(a)) == a
    with pytest.raises(runs.RunError, match="matches 2 runs"):
        runs.resolve_run("20261128-0700")
    with pytest.raises(runs.RunError, match="no run 'nope'"):
        runs.resolve_run("nope")


def test_running_state_of_a_dead_process_reads_as_interrupted() -> None:
    dead = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        capture_output=True,
        text=True,
        check=True,
    )
    path = make_run("r1", state="running")
    status = json.loads((path / runs.STATUS_FILE).read_text())
    assert status["pid"] == os.getpid()
    assert runs.run_info(path).state == "running"  # this very process is alive
    runs.write_status(path, "running")
    status = runs.read_json(path / runs.STATUS_FILE)
    status["pid"] = int(dead.stdout)
    runs.atomic_write_json(path / runs.STATUS_FILE, status)
    assert runs.run_info(path).state == "interrupted"
    status.update(pid=os.getpid(), heartbeat=time.time() - runs.STALE_AFTER_SECONDS - 1)
    runs.atomic_write_json(path / runs.STATUS_FILE, status)
    assert runs.run_info(path).state == "interrupted"  # alive but silent for too long


def test_list_runs_newest_first_and_skips_junk() -> None:
    make_run("20261128-070000-x")
    make_run("20261128-080000-y")
    (runs_dir() / "not-a-run").mkdir()
    (runs_dir() / "broken").mkdir()
    (runs_dir() / "broken" / runs.CONFIG_FILE).write_text("{not json")
    assert [r.id for r in runs.list_runs()] == ["20261128-080000-y", "20261128-070000-x"]


def test_load_model_without_any_model_says_so() -> None:
    make_run("empty-run")
    with pytest.raises(runs.RunError, match="has no saved model yet"):
        runs.load_model("empty-run")


def test_model_file_prefers_the_choice_and_falls_back(tmp_path: Path) -> None:
    assert runs.model_file(tmp_path) is None
    (tmp_path / runs.LAST_MODEL).write_bytes(b"x")
    assert runs.model_file(tmp_path, "best") == tmp_path / runs.LAST_MODEL  # not saved yet
    (tmp_path / runs.BEST_MODEL).write_bytes(b"x")
    assert runs.model_file(tmp_path) == tmp_path / runs.BEST_MODEL
    assert runs.model_file(tmp_path, "last") == tmp_path / runs.LAST_MODEL
    with pytest.raises(ValueError, match="which model: 'best' or 'last', got 'newest'"):
        runs.model_file(tmp_path, "newest")


def test_a_model_file_with_python_code_is_refused_not_run(tmp_path: Path) -> None:
    """A .keras file can carry a Lambda layer's Python code; catdog's loader never runs it."""
    from catdog.backend import keras

    marker = tmp_path / "code-ran"
    inputs = keras.Input((4,))
    code = f"lambda x: (open({str(marker)!r}, 'w').close(), x)[1]"  # the path in its bytecode
    payload = keras.layers.Lambda(eval(code))
    model = keras.Model(inputs, keras.layers.Dense(1)(payload(inputs)))
    marker.unlink()  # building the model ran the function once, here, on purpose
    path = make_run("lambda-run")
    model.save(path / runs.BEST_MODEL)

    with pytest.raises(runs.RunError, match=r"contains Python code .* never runs code"):
        runs.load_model("lambda-run")
    assert not marker.exists()
    keras.saving.load_model(path / runs.BEST_MODEL, safe_mode=False)  # the unsafe way...
    assert marker.exists()  # ...would have run it: the refusal above is what stopped it
