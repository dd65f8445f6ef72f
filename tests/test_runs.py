"""Run folders: atomic files, run lookup, and telling a running run from a dead one."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import damaged_runs
import pytest

from catdog.data.paths import runs_dir
from catdog.train import runs


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
    with pytest.raises(RuntimeError), runs.atomic_path(target) as tmp:
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


def test_list_runs_newest_first_skips_non_runs_and_lists_damaged_ones() -> None:
    make_run("20261128-070000-x")
    make_run("20261128-080000-y")
    (runs_dir() / "not-a-run").mkdir()
    (runs_dir() / "20261128-090000-broken").mkdir()
    (runs_dir() / "20261128-090000-broken" / runs.CONFIG_FILE).write_text("{not json")
    listed = runs.list_runs()
    assert [r.id for r in listed] == [
        "20261128-090000-broken",
        "20261128-080000-y",
        "20261128-070000-x",
    ]
    assert [r.state for r in listed] == ["damaged", "completed", "completed"]
    assert listed[0].error.startswith("config.json is not valid JSON")


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
    from catdog.model.backend import keras

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


# ------------------------------------------------------------------ damaged run folders


@pytest.mark.parametrize("variant", [name for name, _, _ in damaged_runs.VARIANTS])
def test_a_damaged_run_folder_is_listed_with_the_reason(variant: str) -> None:
    good = damaged_runs.whole_run("20261128-070000-good")
    path = damaged_runs.damaged_run(variant)
    reason = next(r for name, _, r in damaged_runs.VARIANTS if name == variant)

    listed = {info.id: info for info in runs.list_runs()}
    assert set(listed) == {good.name, path.name}
    damaged = listed[path.name]
    assert (damaged.state, damaged.damaged, damaged.epochs_done) == ("damaged", True, 0)
    assert reason in damaged.error
    assert runs.run_info(path).error == damaged.error  # run_info itself does not raise either
    intact = listed[good.name]
    assert (intact.state, intact.epochs_done, intact.test_accuracy) == ("completed", 1, 0.5)
    assert runs.usable_run_info(good).classes == ["cats", "dogs"]

    with pytest.raises(runs.RunError, match=f"run {path.name} is damaged: "):
        runs.usable_run_info(path)
    assert runs.resume_problem(damaged) == f"run {path.name} is damaged: {damaged.error}"
    assert not runs.can_resume(damaged)


def test_resuming_a_damaged_run_is_refused_with_the_reason() -> None:
    from catdog.jobs import TrainingJob

    path = damaged_runs.damaged_run("epochs-a-str")
    with pytest.raises(runs.RunError, match=r"'train\.epochs' must be an int or null, got str"):
        TrainingJob(resume_run=path.name)
    runs.RunLock.acquire(path).release()  # the refusal gave the lock back


# ------------------------------------------------------------------ one writer per run


def test_a_run_lock_admits_one_trainer_per_folder() -> None:
    path = make_run("locked-run", state="failed")
    first = runs.RunLock.acquire(path)
    assert first.exclusive
    busy = f"run locked-run is being trained by process {os.getpid()} (this one); stop it first"
    with pytest.raises(runs.RunBusy, match=re.escape(busy)):
        runs.RunLock.acquire(path)
    refused: list[Exception] = []  # another thread of this process is refused just the same
    thread = threading.Thread(target=lambda: _try_lock(path, refused))
    thread.start()
    thread.join()
    assert [str(e) for e in refused] == [busy]
    first.release()
    first.release()  # idempotent
    with runs.RunLock.acquire(path) as again:
        assert again.exclusive


def _try_lock(path: Path, refused: list[Exception]) -> None:
    try:
        runs.RunLock.acquire(path, wait=0.1).release()
    except runs.RunBusy as exc:
        refused.append(exc)


def test_the_lock_not_the_heartbeat_tells_running_from_interrupted() -> None:
    path = make_run("r2", state="running")  # this (live) process, a fresh heartbeat
    assert runs.run_info(path).state == "running"  # no lock file yet: pid and heartbeat decide
    runs.RunLock.acquire(path).release()  # a trainer took the lock and let it go
    assert runs.run_info(path).state == "interrupted"  # although pid and heartbeat look alive
    with runs.RunLock.acquire(path):
        status = runs.read_json(path / runs.STATUS_FILE)
        status["heartbeat"] = time.time() - runs.STALE_AFTER_SECONDS - 60
        runs.atomic_write_json(path / runs.STATUS_FILE, status)
        assert runs.run_info(path).state == "running"  # held: alive, however long it is silent
    assert runs.run_info(path).state == "interrupted"


def test_a_killed_lock_holder_leaves_no_stale_lock() -> None:
    path = make_run("r3", state="failed")
    code = (
        "import sys, time\n"
        "from pathlib import Path\n"
        "from catdog.train import runs\n"
        f"lock = runs.RunLock.acquire(Path({str(path)!r}))\n"
        f"runs.write_status(Path({str(path)!r}), 'running')\n"
        "print('locked', flush=True)\n"
        "time.sleep(120)\n"
    )
    child = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    try:
        assert child.stdout.readline().strip() == "locked"
        with pytest.raises(runs.RunBusy, match=f"being trained by process {child.pid}; stop"):
            runs.RunLock.acquire(path)
        assert runs.run_info(path).state == "running"
        child.send_signal(signal.SIGKILL)
        child.wait(timeout=30)
    finally:
        if child.poll() is None:
            child.kill()
    assert runs.run_info(path).state == "interrupted"
    runs.RunLock.acquire(path).release()  # the kernel dropped the lock with its holder


def test_a_job_resume_is_refused_while_another_holds_the_run() -> None:
    from catdog.jobs import manager

    path = make_run("busy-run", state="stopped")
    with (
        runs.RunLock.acquire(path),
        pytest.raises(runs.RunBusy, match="busy-run is being trained by process"),
    ):
        manager().start(resume_run="busy-run")
    assert manager().get("busy-run") is None


# ------------------------------------------------------------------ the epoch commit


def _tiny_model(seed: int):
    from catdog.model.backend import keras

    keras.utils.set_random_seed(seed)
    inputs = keras.Input((3,))
    return keras.Model(inputs, keras.layers.Dense(2)(inputs))


def _weights(path: Path) -> list:
    from catdog.model.backend import keras

    return [w.tolist() for w in keras.saving.load_model(path, safe_mode=True).get_weights()]


@pytest.mark.parametrize("done", range(6))
def test_every_kill_point_of_an_epoch_commit_resumes_consistently(done: int) -> None:
    """Epoch 2's commit stopped after ``done`` of its 5 steps (0: killed while saving)."""
    path = make_run("commit-run", state="running")
    history: list[dict] = []
    one, two = _tiny_model(1), _tiny_model(2)
    row1, row2 = {"epoch": 1, "loss": 0.9, "val_accuracy": 0.5}, {"epoch": 2, "loss": 0.8}
    runs.commit_epoch(path, one, row1, history, best=True)
    steps = runs.commit_steps(path, two, row2, history, best=True)
    assert [name for name, _ in steps] == ["save", "commit", "last", "best", "history"]
    for _, step in steps[:done]:
        step()
    if done == 0:  # what a kill in the middle of model.save leaves: a temporary file
        (path / ".last.epoch-2.x1y2z3.keras").write_bytes(b"PK\x03\x04 half a zip")

    committed = done >= 2  # step 2 (checkpoint.json) is the commit
    expected = [row1, row2] if committed else [row1]
    assert runs.committed_history(path) == expected  # what a listing shows, before recovery
    assert runs.run_info(path).epochs_done == len(expected)
    assert runs.recover_epochs(path) == expected
    assert runs.read_history(path) == expected
    assert runs.read_checkpoint(path)["epoch"] == len(expected)
    model = two if committed else one
    assert _weights(path / runs.LAST_MODEL) == [w.tolist() for w in model.get_weights()]
    assert _weights(path / runs.BEST_MODEL) == [w.tolist() for w in model.get_weights()]
    assert sorted(p.name for p in path.iterdir()) == sorted(
        ["best.keras", "checkpoint.json", "config.json", "history.csv", "last.keras",
         "status.json"]
    )  # fmt: skip
    assert runs.recover_epochs(path) == expected  # recovering again changes nothing
