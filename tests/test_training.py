"""Training runs end to end on tiny generated data: files, events, stop, resume, schedules."""

from __future__ import annotations

import json
import math
import os
import signal
import subprocess
import sys
import threading
import time
import zipfile
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from catdog.inference.evaluate import final_test
from catdog.model.backend import keras
from catdog.train import runs
from catdog.train.config import TrainConfig, TrainingError
from catdog.train.events import ProgressEvent
from catdog.train.presets import get_preset
from catdog.train.trainer import resume, train, train_created

ROOT = Path(__file__).resolve().parents[1]


def tiny_config(data: Path, **overrides) -> TrainConfig:
    """A seed-baseline config small enough to train in seconds (in float32: choosing the
    arithmetic by measurement is tested in test_precision.py)."""
    values = {"data": str(data), "epochs": 2, "image_size": 48, "batch_size": 8,
              "precision": "float32"}  # fmt: skip
    values.update(overrides)
    return TrainConfig(**values)


@pytest.mark.slow
def test_binary_run_writes_every_file(tiny_dataset: Path) -> None:
    result = train(tiny_config(tiny_dataset), test_with=final_test)
    assert result.state == "completed"
    path = result.path
    for name in (
        "config.json",
        "status.json",
        "history.csv",
        "best.keras",
        "last.keras",
        "metrics.json",
    ):
        assert (path / name).is_file(), name
    config = json.loads((path / "config.json").read_text())
    assert config["classes"] == ["cats", "dogs"]
    again = TrainConfig.from_dict(config["train"])
    assert again == tiny_config(tiny_dataset).resolved()  # enough to re-run it
    history = runs.read_history(path)
    assert [row["epoch"] for row in history] == [1, 2]
    assert {"loss", "accuracy", "val_loss", "val_accuracy"} <= set(history[0])
    metrics = json.loads((path / "metrics.json").read_text())
    assert metrics["epochs_done"] == 2
    assert metrics["test_images"] == 16
    assert 0.0 <= metrics["test_accuracy"] <= 1.0
    assert metrics["best_val_accuracy"] == max(r["val_accuracy"] for r in history)
    info = runs.run_info(path)
    assert (info.state, info.epochs_done, info.model) == ("completed", 2, "seed-baseline")
    assert [r.id for r in runs.list_runs()] == [result.run_id]


@pytest.mark.slow
def test_three_classes_train_a_softmax_model(dataset_factory) -> None:
    data = dataset_factory(classes=("birds", "cats", "dogs"), counts=(8, 4, 4))
    result = train(tiny_config(data, epochs=1))
    model = runs.load_model(result.run_id)
    assert model.layers[-1].units == 3
    probs = model.predict(np.zeros((2, 48, 48, 3), "float32"), verbose=0)
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, rtol=1e-5)
    assert json.loads((result.path / "config.json").read_text())["classes"] == [
        "birds",
        "cats",
        "dogs",
    ]


@pytest.mark.slow
def test_progress_events_cover_batches_and_epochs(tiny_dataset: Path) -> None:
    events: list[ProgressEvent] = []
    train(tiny_config(tiny_dataset), on_event=events.append)
    kinds = [e.kind for e in events]
    assert kinds[:2] == ["precision", "loading"] and kinds[-1] == "end"
    assert events[0].message == "precision float32, as chosen"
    assert events[-1].state == "completed"
    steps = math.ceil(32 / 8)
    batches = [e for e in events if e.kind == "batch"]
    assert [(e.epoch, e.step) for e in batches] == [
        (ep, st) for ep in (1, 2) for st in range(1, steps + 1)
    ]
    assert all(e.steps == steps and e.epochs == 2 for e in batches)
    assert all({"loss", "accuracy"} <= set(e.logs) for e in batches)
    epochs = [e for e in events if e.kind == "epoch"]
    assert [e.epoch for e in epochs] == [1, 2]
    assert all("val_accuracy" in e.logs and e.learning_rate == pytest.approx(1e-4) for e in epochs)
    seconds = [e.seconds for e in events]
    assert seconds == sorted(seconds)


@pytest.mark.slow
def test_stop_mid_epoch_keeps_a_loadable_model(tiny_dataset: Path) -> None:
    stop = threading.Event()
    events: list[ProgressEvent] = []

    def on_event(event: ProgressEvent) -> None:
        events.append(event)
        if event.kind == "batch" and event.step == 2:
            stop.set()

    result = train(tiny_config(tiny_dataset, epochs=5), on_event=on_event, stop=stop)
    assert result.state == "stopped"
    batches = [e for e in events if e.kind == "batch"]
    assert [(e.epoch, e.step) for e in batches] == [(1, 1), (1, 2)]  # nothing after the stop
    assert len(result.history) == 1  # the interrupted epoch is recorded, not lost
    model = runs.load_model(result.run_id, which="last")
    assert model.predict(np.zeros((1, 48, 48, 3), "float32"), verbose=0).shape == (1, 1)
    assert runs.run_info(result.path).state == "stopped"


@pytest.mark.slow
def test_killed_run_resumes_from_its_last_epoch(tiny_dataset: Path, catdog_home: Path) -> None:
    env = {**os.environ, "CATDOG_HOME": str(catdog_home), "TF_CPP_MIN_LOG_LEVEL": "3"}
    cmd = [
        sys.executable,
        "-m",
        "catdog",
        "train",
        "--data",
        str(tiny_dataset),
        "--epochs",
        "40",
        "--image-size",
        "48",
        "--batch-size",
        "8",
        "--precision",
        "float32",
    ]
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 120
        history: list = []
        while time.monotonic() < deadline:
            found = list((catdog_home / "runs").glob("*/history.csv"))
            if found and len(history := runs.read_history(found[0].parent)) >= 2:
                break
            time.sleep(0.05)
        assert len(history) >= 2, proc.stderr.read1().decode() if proc.poll() else "too slow"
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    path = found[0].parent
    # Whatever moment the kill hit, every file is whole and readable.
    json.loads((path / "config.json").read_text())
    json.loads((path / "status.json").read_text())
    done = runs.read_history(path)
    assert len(done) >= 2
    keras.models.load_model(path / "last.keras")
    assert runs.run_info(path).state == "interrupted"
    before = done[:]

    result = resume(path.name, stop=None)
    assert result.state == "completed"
    assert [r["epoch"] for r in result.history] == list(range(1, 41))
    assert result.history[: len(before)] == before  # earlier epochs untouched
    assert runs.run_info(path).state == "completed"
    with pytest.raises(runs.RunError, match="already finished all 40 epochs"):
        resume(path.name)


@pytest.mark.slow
def test_early_stopping_and_cosine_schedule(tiny_dataset: Path) -> None:
    # A learning rate this small cannot move val_loss by min_delta: patience 1 stops at epoch 2.
    result = train(tiny_config(tiny_dataset, epochs=6, learning_rate=1e-12, early_stopping=1))
    assert len(result.history) == 2 and result.metrics["early_stopped"] is True

    result = train(tiny_config(tiny_dataset, epochs=4, learning_rate=1e-3, lr_schedule="cosine"))
    rates = [row["learning_rate"] for row in result.history]
    expected = [1e-3 * 0.5 * (1 + math.cos(math.pi * e / 4)) for e in range(4)]
    np.testing.assert_allclose(rates, expected, rtol=1e-5)


@pytest.mark.slow
def test_same_seed_same_result(tiny_dataset: Path) -> None:
    a = train(tiny_config(tiny_dataset, epochs=1, augment=True, seed=3)).history
    b = train(tiny_config(tiny_dataset, epochs=1, augment=True, seed=3)).history
    assert a[0]["loss"] == pytest.approx(b[0]["loss"], rel=1e-4)


def test_bad_configs_fail_before_any_work(tiny_dataset: Path, tmp_path: Path) -> None:
    with pytest.raises(TrainingError, match="epochs must be ≥ 1, got 0"):
        train(tiny_config(tiny_dataset, epochs=0))
    with pytest.raises(TrainingError, match="unknown learning-rate schedule 'zigzag'"):
        train(tiny_config(tiny_dataset, lr_schedule="zigzag"))
    with pytest.raises(TrainingError, match=r"test-time zoom must be 0 \(off\) or between 1 and 2"):
        train(tiny_config(tiny_dataset, tta_zoom=0.5))
    with pytest.raises(TrainingError, match="time limit must be a number of minutes ≥ 0"):
        train(tiny_config(tiny_dataset, time_limit_minutes=-5))
    with pytest.raises(TrainingError, match=r"weight decay must be in \[0, 1\), got -0.1"):
        train(tiny_config(tiny_dataset, weight_decay=-0.1))
    with pytest.raises(TrainingError, match="weight decay needs the adamw optimizer"):
        train(tiny_config(tiny_dataset, model="seed-baseline", weight_decay=0.01))
    with pytest.raises(TrainingError, match=r"dropout must be in \[0, 1\), got 1\.5"):
        train(tiny_config(tiny_dataset, dropout=1.5))
    with pytest.raises(TrainingError, match="learning rate must be positive, got 0"):
        train(tiny_config(tiny_dataset, learning_rate=0))
    with pytest.raises(TrainingError, match="seed-baseline needs images of at least 46 px, got 40"):
        train(tiny_config(tiny_dataset, image_size=40))
    with pytest.raises(ValueError, match=str(tmp_path / "nowhere")):
        train(tiny_config(tmp_path / "nowhere"))
    assert runs.list_runs() == []  # no half-made run folders left behind


def test_stop_before_the_first_batch_ends_stopped(tiny_dataset: Path) -> None:
    stop = threading.Event()
    stop.set()  # e.g. the user pressed Stop while the images were still loading
    result = train(tiny_config(tiny_dataset, epochs=3), stop=stop)
    assert result.state == "stopped" and result.history == []
    assert runs.run_info(result.path).state == "stopped"


@pytest.mark.slow
def test_catdog_net_trains_saves_reloads_and_predicts_the_same(tiny_dataset: Path) -> None:
    from catdog.inference.predict import Predictor

    result = train(
        tiny_config(tiny_dataset, model="catdog-net", epochs=2, image_size=32, precision=None),
        test_with=final_test,
    )
    saved = json.loads((result.path / "config.json").read_text())
    config = saved["train"]
    assert get_preset("catdog-net").precision == "auto"  # measured: see test_precision.py
    assert config["precision"] in ("float32", "bfloat16") and config["tta"] is True
    assert saved["precision"]["requested"] == "auto"
    assert saved["precision"]["precision"] == config["precision"]
    assert config["tta_zoom"] == 1.1  # mirror and zoomed views
    assert config["augmentation"]["shear_range"] == 10.0  # the stronger preset, not the seed's
    assert config["augmentation"]["cutout"] == 0.33
    predictor = Predictor.from_run(result.run_id)
    images = (np.random.default_rng(0).random((4, 32, 32, 3)) * 255).astype("uint8")
    first = predictor.probabilities(images)
    again = Predictor.from_run(result.run_id).probabilities(images)
    np.testing.assert_allclose(first, again, rtol=1e-6)
    # Mirror averaging: an image and its mirror get the same prediction.
    np.testing.assert_allclose(first, predictor.probabilities(images[:, :, ::-1]), rtol=1e-5)
    assert 0 <= result.metrics["test_accuracy"] <= 1


@pytest.mark.slow
def test_warmup_then_cosine_learning_rates(tiny_dataset: Path) -> None:
    from catdog.train.schedule import epoch_learning_rate

    cfg = tiny_config(
        tiny_dataset, epochs=6, learning_rate=1e-3, lr_schedule="cosine", warmup_epochs=2
    ).resolved()
    rates = [epoch_learning_rate(cfg, e) for e in range(6)]
    expected = [1e-3 / 3, 2e-3 / 3] + [
        1e-3 * 0.5 * (1 + math.cos(math.pi * k / 4)) for k in range(4)
    ]
    np.testing.assert_allclose(rates, expected)
    result = train(replace(cfg, epochs=3))
    np.testing.assert_allclose(
        [r["learning_rate"] for r in result.history],
        [epoch_learning_rate(replace(cfg, epochs=3), e) for e in range(3)],
        rtol=1e-5,
    )


def test_planned_epochs_fit_the_time_left(tiny_dataset: Path) -> None:
    from catdog.train.schedule import planned_epochs

    cfg = tiny_config(tiny_dataset, epochs=100, time_limit_minutes=1.0).resolved()
    rows = [{"seconds": s} for s in (10.0, 5.0, 5.0, 6.0, 4.0)]  # the first one compiles
    assert planned_epochs(cfg, []) == 100  # nothing measured yet: the most
    assert planned_epochs(cfg, rows) == 5 + (60 - 30) // 5  # the median of 5, 5, 6, 4 is 5
    assert planned_epochs(cfg, [*rows, {"seconds": 40.0}]) == 6  # time is up: stop here
    assert planned_epochs(replace(cfg, time_limit_minutes=1000.0), rows) == 100  # the cap
    assert planned_epochs(replace(cfg, time_limit_minutes=0.0), rows) == 100  # no limit


@pytest.mark.slow
def test_a_time_limited_run_fits_its_cosine_to_the_epochs_that_fit(tiny_dataset: Path) -> None:
    limit = 0.1  # minutes: a few dozen tiny epochs, far fewer than the 500 allowed
    events: list[ProgressEvent] = []
    cfg = tiny_config(
        tiny_dataset, epochs=500, learning_rate=1e-3, lr_schedule="cosine", time_limit_minutes=limit
    )
    result = train(cfg, on_event=events.append)
    seconds = [row["seconds"] for row in result.history]
    assert result.state == "completed" and 1 <= len(seconds) < 500
    # Each epoch starts only while time is left, so the last one is the only overrun.
    assert sum(seconds[:-1]) < limit * 60 <= sum(seconds) + max(seconds)
    assert [e.epochs for e in events if e.kind == "end"] == [len(seconds)]  # the final plan
    assert runs.run_info(result.path).epochs == len(seconds)  # listed as all done, not n/500
    if len(seconds) >= 5:  # the schedule ran its course: the rate ended near zero
        assert result.history[-1]["learning_rate"] < 0.3e-3
    with pytest.raises(runs.RunError, match=r"already used its 0\.1-minute time limit"):
        resume(result.run_id)


@pytest.mark.slow
def test_tuning_runs_can_leave_the_test_split_unseen(tiny_dataset: Path) -> None:
    result = train(tiny_config(tiny_dataset, epochs=1, test=False))
    assert "test_accuracy" not in result.metrics
    assert result.metrics["best_val_accuracy"] is not None


@pytest.mark.slow
def test_a_catdog_net_run_loads_in_a_fresh_process(tiny_dataset: Path) -> None:
    """Its custom layer must be registered by whoever loads it (CLI, dashboard), not by luck."""
    import subprocess
    import sys

    result = train(tiny_config(tiny_dataset, model="catdog-net", epochs=1, image_size=32))
    code = (
        "from catdog.train import runs; "
        f"m = runs.load_model({str(result.path)!r}); "
        "print(type(m.get_layer('stem1_bn')).__name__)"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120
    )
    assert out.stdout.strip().splitlines()[-1] == "FusedBatchNorm"


@pytest.mark.slow
def test_a_created_run_trains_once(tiny_dataset: Path) -> None:
    path = runs.create_run(tiny_config(tiny_dataset, epochs=1))
    assert [r.id for r in runs.list_runs()] == [path.name]  # listed before it trains
    assert runs.run_info(path).state == "running" and not (path / runs.LAST_MODEL).exists()
    result = train_created(path.name)
    assert (result.path, result.state, len(result.history)) == (path, "completed", 1)
    with pytest.raises(runs.RunError, match="has already trained; resume it instead"):
        train_created(path)


@pytest.mark.slow
def test_a_run_that_never_finished_an_epoch_resumes_from_the_start(tiny_dataset: Path) -> None:
    path = runs.create_run(tiny_config(tiny_dataset, epochs=2))
    runs.write_status(path, "failed", error="the server went away before training started")
    result = resume(path.name)
    assert (result.path, result.state, len(result.history)) == (path, "completed", 2)
    assert runs.run_info(path).error is None


@pytest.mark.slow
def test_the_heartbeat_goes_on_through_long_phases(
    tiny_dataset: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A slow listener holds training inside a phase, as a long image load or test evaluation
    would; the status must stay fresh (and name the phase) meanwhile."""
    monkeypatch.setattr(runs.lock, "HEARTBEAT_SECONDS", 0.1)  # instead of 10 s, to wait less
    seen: dict[str, list[dict]] = {}

    def on_event(event: ProgressEvent) -> None:
        if event.kind in ("loading", "evaluating") and event.kind not in seen:
            path = runs.resolve_run(event.run_id)
            seen[event.kind] = [runs.read_json(path / runs.STATUS_FILE)]
            time.sleep(1.0)  # the training thread is stuck here
            seen[event.kind].append(runs.read_json(path / runs.STATUS_FILE))

    result = train(tiny_config(tiny_dataset, epochs=1), on_event=on_event, test_with=final_test)
    assert result.state == "completed"
    for kind, phase in (("loading", "loading"), ("evaluating", "testing")):
        before, after = seen[kind]
        assert (before["phase"], after["phase"]) == (phase, phase)
        assert after["heartbeat"] - before["heartbeat"] > 0.5, kind  # it kept beating
        assert after["state"] == "running"
    status = runs.read_json(result.path / runs.STATUS_FILE)
    assert (status["state"], status["phase"]) == ("completed", None)  # no beat after the end
    time.sleep(0.3)
    assert runs.read_json(result.path / runs.STATUS_FILE) == status
    assert not [t for t in threading.enumerate() if t.name.startswith("catdog-heartbeat")]


# ------------------------------------------------------------- kills at every phase


def _cli_train(data: Path, home: Path, *args: str) -> subprocess.Popen:
    env = {**os.environ, "CATDOG_HOME": str(home), "TF_CPP_MIN_LOG_LEVEL": "3"}
    cmd = [sys.executable, "-m", "catdog", "train", "--data", str(data), "--image-size", "48",
           "--batch-size", "8", "--precision", "float32", *args]  # fmt: skip
    return subprocess.Popen(
        cmd, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )


def _status(path: Path) -> dict:
    return runs.read_json(path / runs.STATUS_FILE, {}) or {}


def _saving(path: Path) -> bool:
    """A model save is writing: the temporary file of last.epoch-N.keras exists (epoch ≥ 2)."""
    return (path / runs.CHECKPOINT_FILE).exists() and any(path.glob(".last.epoch-*.keras"))


def _validating(path: Path) -> bool:
    """Validation of epoch ≥ 2 runs: the status says so and no save of that epoch started."""
    status = _status(path)
    saves = [*path.glob("last.epoch-*.keras"), *path.glob(".last.epoch-*.keras")]
    return status.get("phase") == "validating" and status.get("epochs_done", 0) >= 1 and not saves


def _testing(path: Path) -> bool:
    """The test split is being evaluated: the status says so and no metrics were written."""
    return _status(path).get("phase") == "testing" and not (path / runs.METRICS_FILE).exists()


def _kill_in_phase(proc: subprocess.Popen, home: Path, in_phase, timeout: float = 240) -> Path:
    """SIGKILL the trainer while ``in_phase(run folder)`` holds, made sure of by freezing it
    (SIGSTOP) and looking again: only a trainer frozen inside the phase is killed."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and proc.poll() is None:
        found = list((home / "runs").glob("*/config.json"))
        if found and in_phase(found[0].parent):
            proc.send_signal(signal.SIGSTOP)
            if in_phase(found[0].parent):
                proc.send_signal(signal.SIGKILL)
                proc.wait(timeout=30)
                return found[0].parent
            proc.send_signal(signal.SIGCONT)  # the phase ended just before the freeze
        time.sleep(0.002)
    proc.kill()
    raise AssertionError(f"never caught the phase: {proc.stderr.read().decode()[-2000:]}")


@pytest.mark.slow
@pytest.mark.parametrize(
    ("phase", "in_phase"),
    [("saving", _saving), ("validating", _validating), ("testing", _testing)],
)
def test_a_run_killed_in_any_phase_resumes_without_training_an_epoch_twice(
    phase: str, in_phase, dataset_factory, catdog_home: Path
) -> None:
    data = dataset_factory(counts=(8, 100, 100))  # validation and testing take a while
    proc = _cli_train(data, catdog_home, "--epochs", "4")
    path = _kill_in_phase(proc, catdog_home, in_phase)
    assert proc.returncode == -signal.SIGKILL
    assert runs.run_info(path).state == "interrupted"  # at once: the lock died with it
    before = runs.committed_history(path)
    assert [row["epoch"] for row in before] == list(range(1, len(before) + 1))
    if phase == "testing":
        assert len(before) == 4  # every epoch was done; only the test evaluation is left
    else:
        assert 1 <= len(before) < 4

    result = resume(path.name, test_with=final_test)
    assert result.state == "completed"
    assert [row["epoch"] for row in runs.read_history(path)] == [1, 2, 3, 4]
    assert result.history[: len(before)] == before  # the epochs done were kept, not redone
    assert runs.read_checkpoint(path)["epoch"] == 4
    assert 0 <= result.metrics["test_accuracy"] <= 1
    leftovers = [p.name for p in path.iterdir() if p.name.startswith(".") or "epoch-" in p.name]
    assert leftovers == []
    assert runs.run_info(path).state == "completed"


@pytest.mark.slow
def test_a_second_trainer_of_a_run_is_refused_while_the_first_trains(
    tiny_dataset: Path, catdog_home: Path
) -> None:
    proc = _cli_train(tiny_dataset, catdog_home, "--epochs", "1000")
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            found = list((catdog_home / "runs").glob("*/checkpoint.json"))
            if found:
                break
            time.sleep(0.05)
        assert found, proc.stderr.read1().decode() if proc.poll() is not None else "too slow"
        path = found[0].parent
        env = {**os.environ, "CATDOG_HOME": str(catdog_home), "TF_CPP_MIN_LOG_LEVEL": "3"}
        second = subprocess.run(
            [sys.executable, "-m", "catdog", "train", "--resume", path.name],
            cwd=ROOT, env=env, capture_output=True, text=True, timeout=180,
        )  # fmt: skip
        busy = f"run {path.name} is being trained by process {proc.pid}; stop it first"
        assert second.returncode == 2, second.stderr
        assert f"error: {busy}" in second.stderr
        with pytest.raises(runs.RunBusy, match=busy):
            resume(path.name)  # nor a thread of another process
        assert runs.run_info(path).state == "running"
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert runs.run_info(path).state == "interrupted"


def _as_saved_by_a_mixup_run(model_file: Path) -> None:
    """Recompile a run's model with the metric runs trained with mixup were compiled with
    (accuracy against the rounded mixed label, ``catdog>majority_accuracy``) and save it."""
    from catdog.model.saving import majority_accuracy

    model = keras.saving.load_model(model_file)
    metric = keras.metrics.MeanMetricWrapper(majority_accuracy, name="accuracy")
    model.compile(optimizer=model.optimizer, loss=model.loss, metrics=[metric])
    model.evaluate(np.zeros((2, 48, 48, 3), np.float32), np.zeros((2, 1), np.float32), verbose=0)
    model.save(model_file)


@pytest.mark.slow
def test_a_run_trained_with_mixup_still_loads_evaluates_and_resumes_without_it(
    tiny_dataset: Path,
) -> None:
    from catdog.inference.evaluate import evaluate_run

    path = train(tiny_config(tiny_dataset, epochs=1, test=False)).path
    # What an earlier version left: mixup in config.json, models compiled with its metric, and
    # here one epoch still to train.
    config = json.loads((path / runs.CONFIG_FILE).read_text())
    config["train"] |= {"mixup": 0.4, "epochs": 2}
    runs.atomic_write_json(path / runs.CONFIG_FILE, config)
    for name in (runs.BEST_MODEL, runs.LAST_MODEL):
        _as_saved_by_a_mixup_run(path / name)
    with zipfile.ZipFile(path / runs.LAST_MODEL) as saved:
        assert "catdog>majority_accuracy" in saved.read("config.json").decode()

    assert TrainConfig.from_dict(config["train"]).epochs == 2  # the retired setting is dropped
    (listed,) = runs.list_runs()
    assert (listed.id, listed.state, listed.epochs_done, listed.epochs) == (path.name, "completed",
                                                                           1, 2)  # fmt: skip
    model = runs.load_model(path)
    assert int(model.optimizer.iterations) == 4  # compiled, with its optimizer state (4 steps)
    x, y = np.random.default_rng(0).uniform(0, 1, (6, 48, 48, 3)), np.array([[0], [1]] * 3)
    plain = np.mean((model.predict_on_batch(x) > 0.5) == y)
    assert model.evaluate(x, y, verbose=0, return_dict=True)["accuracy"] == pytest.approx(plain)
    assert evaluate_run(path).count == 16

    events: list[ProgressEvent] = []
    result = resume(path.name, on_event=events.append)
    (start,) = [e for e in events if e.kind == "start"]
    assert start.message.endswith(
        "this run was trained with mixup, which catdog no longer offers: its remaining epochs "
        "train without it"
    )
    assert (result.state, [row["epoch"] for row in result.history]) == ("completed", [1, 2])
