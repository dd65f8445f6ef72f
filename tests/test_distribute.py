"""Training on several devices and machines: the strategy setting, the replica rule, the run's
record, MirroredStrategy over two CPU devices and a two-worker cluster on 127.0.0.1."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

import pytest
from pagetest import navigation_only, open_page  # noqa: F401 - a fixture

import catdog.policy as hosted_policy
from catdog.cli import main
from catdog.train import runs
from catdog.train.config import TrainConfig, TrainingError
from catdog.train.distribute import (
    CLUSTER_ENV,
    ClusterError,
    cluster_from_env,
    replica_rule,
    workers_tf_config,
)
from catdog.train.history import distribution_line

ROOT = Path(__file__).resolve().parents[1]
UNKNOWN = "unknown strategy 'gpus'; choose one of auto, one, mirrored, multiworker"


# ---------------------------------------------------------------- the setting (no TensorFlow)


def test_an_unknown_strategy_is_one_clear_sentence(
    tiny_dataset: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(TrainingError, match=f"^{UNKNOWN}$"):
        TrainConfig(data=str(tiny_dataset), strategy="gpus").resolved()
    assert main(["train", "--data", str(tiny_dataset), "--strategy", "gpus"]) == 2
    assert capsys.readouterr().err == f"error: {UNKNOWN}\n"
    assert TrainConfig(data=str(tiny_dataset)).strategy == "auto"
    # Runs saved before the setting existed load with it: auto.
    assert TrainConfig.from_dict({"data": str(tiny_dataset)}).strategy == "auto"


def test_batch_and_learning_rate_follow_the_replicas(tiny_dataset: Path) -> None:
    cfg = TrainConfig(data=str(tiny_dataset), model="seed-dropout").resolved()
    assert (cfg.batch_size, cfg.learning_rate, cfg.warmup_epochs, cfg.steps_per_epoch) == (
        32, 1e-4, 0, 100,
    )  # fmt: skip
    assert replica_rule(cfg, 1) is cfg
    two = replica_rule(cfg, 2)
    # The batch size stays per replica; the rate doubles after one epoch of warm-up (whose
    # rate, 2e-4 / 2, is the one-device rate); an epoch sees the same 3200 images.
    assert (two.batch_size, two.learning_rate, two.warmup_epochs, two.steps_per_epoch) == (
        32, 2e-4, 1, 50,
    )  # fmt: skip
    eight = replica_rule(replace(cfg, steps_per_epoch=0), 8)
    assert (eight.learning_rate, eight.warmup_epochs, eight.steps_per_epoch) == (8e-4, 5, 0)
    net = TrainConfig(data=str(tiny_dataset), model="catdog-net").resolved()
    assert replica_rule(net, 2).warmup_epochs == 3  # a longer warm-up of the model's stands
    vgg = TrainConfig(data=str(tiny_dataset), model="vgg16").resolved()
    assert replica_rule(vgg, 4).fine_tune_lr == pytest.approx(4e-5)


def test_workers_and_tf_config_are_checked_before_tensorflow(
    tiny_dataset: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("TF_CONFIG", "")  # restored after the test, whatever the CLI sets
    monkeypatch.setenv(CLUSTER_ENV, "")
    config = json.loads(workers_tf_config("a:1, b:2", 1))
    assert config == {"cluster": {"worker": ["a:1", "b:2"]}, "task": {"type": "worker", "index": 1}}
    monkeypatch.setenv("TF_CONFIG", json.dumps(config))
    assert cluster_from_env() == {"workers": 2, "task": "worker", "index": 1, "place": 1}
    with pytest.raises(ClusterError, match=r"--task-index must be .* 0 to 1, got 2"):
        workers_tf_config("a:1,b:2", 2)
    monkeypatch.setenv("TF_CONFIG", "")
    train = ["train", "--data", str(tiny_dataset), "--epochs", "1"]
    cases = [
        (["--workers", "a:1"], "--workers and --task-index describe a cluster: add --strategy "
         "multiworker"),
        (["--strategy", "multiworker"], "multiworker training needs its cluster: set TF_CONFIG"),
        (["--strategy", "multiworker", "--workers", "a:1,b", "--task-index", "0"], "--workers "
         "must list every worker as HOST:PORT, comma-separated, got 'a:1,b'"),
        (["--strategy", "multiworker", "--workers", "a:1,b:2"], "--workers and --task-index go "
         "together"),
        (["--strategy", "multiworker", "--workers", "a:1,b:2", "--task-index", "0"],
         "--strategy multiworker needs --run-id NAME, the same on every machine"),
        (["--run-id", "../x"], "a run id must be a name of letters, digits"),
    ]  # fmt: skip
    for flags, message in cases:
        assert main(train + flags) == 2, flags
        err = capsys.readouterr().err
        assert err.startswith(f"error: {message}") and err.count("\n") == 1, err
    assert os.environ[CLUSTER_ENV] == ""  # no process joined a cluster


def test_hosted_mode_offers_one_device_only(monkeypatch: pytest.MonkeyPatch) -> None:
    capped = hosted_policy.current_policy().capped_settings
    assert capped({"strategy": "mirrored"}) == {"strategy": "mirrored"}
    monkeypatch.setenv(hosted_policy.ENV_VAR, "1")
    capped = hosted_policy.current_policy().capped_settings
    assert capped({"strategy": "mirrored"}) == {"strategy": "auto"}
    assert capped({"strategy": "one"}) == {"strategy": "one"}
    # create_run refuses the others (test_hosting.py), and the Train page does not offer them.


def test_history_page_line_says_where_a_run_trained(tiny_dataset: Path) -> None:
    record = {"strategy": "multiworker", "requested": "multiworker", "devices": ["/CPU:0"],
              "replicas": 2, "workers": 2, "restored_after_epochs": [3]}  # fmt: skip
    info = runs.RunInfo("r", Path("r"), "seed-baseline", "d", "completed", 4, 4, None, None, "",
                        config={"train": {"batch_size": 8}, "distribution": record})  # fmt: skip
    assert distribution_line(info) == (
        "Trained with multiworker: 2 replicas (2 workers, each on /CPU:0), global batch 16, "
        "learning rate ×2; a worker was lost and the run continued from its backup after "
        "epoch 3."
    )
    assert distribution_line(replace(info, config={"train": {}})) is None  # older runs


# ---------------------------------------------------------------- on this machine


@pytest.mark.slow
def test_auto_trains_on_one_device_here_and_the_run_records_it(
    tiny_dataset: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from catdog.train.distribute import distribution

    chosen = distribution("auto")
    assert (chosen.name, chosen.replicas, chosen.devices, chosen.chief) == ("one", 1, ["/CPU:0"],
                                                                             True)  # fmt: skip
    with pytest.raises(ClusterError, match="multiworker training starts from the command line"):
        distribution("multiworker")
    flags = ["--epochs", "1", "--image-size", "48", "--batch-size", "8", "--precision", "float32"]
    assert main(["train", "--data", str(tiny_dataset), *flags, "--run-id", "here"]) == 0
    out = capsys.readouterr()
    assert out.out == "here\n"
    assert "; one: 1 replica (on /CPU:0)" in out.err  # the run's start line
    path = runs.resolve_run("here")
    config = json.loads((path / "config.json").read_text())
    assert config["train"]["strategy"] == "auto"
    assert config["distribution"] == {
        "strategy": "one", "requested": "auto", "devices": ["/CPU:0"], "replicas": 1,
        "workers": 1, "global_batch_size": 8, "learning_rate": 1e-4, "warmup_epochs": 0,
        "restored_after_epochs": [],
    }  # fmt: skip
    metrics = json.loads((path / "metrics.json").read_text())
    assert (metrics["strategy"], metrics["replicas"]) == ("one", 1)
    assert distribution_line(runs.run_info(path)) == "Trained with one: 1 replica (on /CPU:0)."
    at = open_page("history")
    assert "Trained with one: 1 replica (on /CPU:0)." in [c.value for c in at.caption]
    assert main(["train", "--data", str(tiny_dataset), *flags, "--run-id", "here"]) == 2
    assert capsys.readouterr().err == "error: a run here exists already; choose another --run-id\n"


# ---------------------------------------------------------------- two CPU devices


@pytest.mark.slow
def test_mirrored_over_two_cpus_matches_one_device(tiny_dataset: Path, catdog_home: Path) -> None:
    """MirroredStrategy on two logical CPU devices (made in a fresh process, before TensorFlow
    starts its devices) against one device with the same global batch: see two_cpus.py."""
    env = {**os.environ, "CATDOG_HOME": str(catdog_home), "TF_CPP_MIN_LOG_LEVEL": "3",
           "PYTHONPATH": str(ROOT)}  # fmt: skip
    script = [sys.executable, str(ROOT / "tests" / "two_cpus.py"), str(tiny_dataset)]
    done = subprocess.run(script, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    # Two replicas, each 16 images of every 32-image step, the rate doubled with a warm-up.
    assert result["mirrored"]["replicas"] == 2
    assert result["mirrored"]["devices"] == ["/CPU:0", "/CPU:1"]
    assert result["mirrored"]["learning_rate"] == pytest.approx(2e-3)
    assert result["moved"] > 1e-3  # training really changed the weights
    # The same weights: the step's gradient is summed in another order (float32 rounding).
    assert result["max_weight_difference"] < 1e-4, result
    assert result["max_loss_difference"] < 1e-4, result
    # catdog-net's custom kernels work under MirroredStrategy (no fallback needed):
    assert result["fused_adamw_vs_keras"] < 1e-5, result  # same gradients, same update
    assert result["fused_adamw_replicas_equal"], result  # each device's copy updated
    # A small convnet trained 12 steps at lr 1e-2 with each batch norm: Adam turns rounding
    # differences of near-zero gradients into up to a step each, so well under one step.
    assert result["fused_bn_moved"] > 3e-2, result
    assert result["fused_bn_vs_keras"] < 3e-3, result


# ---------------------------------------------------------------- a cluster on 127.0.0.1


def _free_ports(n: int) -> list[int]:
    sockets = [socket.socket() for _ in range(n)]
    try:
        for s in sockets:
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in sockets]
    finally:
        for s in sockets:
            s.close()


def _start_worker(task: int, ports: list[int], data: Path, home: Path, tmp: Path):
    workers = ",".join(f"127.0.0.1:{p}" for p in ports)
    cmd = [sys.executable, "-m", "catdog", "train", "--data", str(data), "--strategy",
           "multiworker", "--workers", workers, "--task-index", str(task), "--run-id", "mw",
           "--epochs", "6", "--image-size", "48", "--batch-size", "4",
           "--precision", "float32"]  # fmt: skip
    env = {**os.environ, "CATDOG_HOME": str(home), "TMPDIR": str(tmp),
           "TF_CPP_MIN_LOG_LEVEL": "3"}  # fmt: skip
    env.pop("TF_CONFIG", None)
    return subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)  # fmt: skip


def _wait(condition, seconds: float, what: str) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


@pytest.mark.slow
def test_two_workers_train_one_run_and_recover_a_killed_worker(
    tiny_dataset: Path, tmp_path: Path
) -> None:
    """Two worker processes, each with its own data home and temporary folder (as two
    machines): the worker is killed after the second epoch's backup, the cluster's command is
    run again, and the chief's run continues from its backup to the end."""
    homes = [tmp_path / "chief-home", tmp_path / "worker-home"]
    temps = [tmp_path / "chief-tmp", tmp_path / "worker-tmp"]
    for folder in (*homes, *temps):
        folder.mkdir()
    run = homes[0] / "runs" / "mw"
    ports = _free_ports(2)
    procs = [_start_worker(k, ports, tiny_dataset, homes[k], temps[k]) for k in (0, 1)]
    try:
        _wait(lambda: _backup_epoch(run) >= 2 or any(p.poll() is not None for p in procs), 120,
              "the second epoch's backup")  # fmt: skip
        assert procs[1].poll() is None, procs[1].communicate()[1][-2000:]
        procs[1].send_signal(signal.SIGKILL)  # a lost machine
        procs[1].wait(timeout=30)
        # The chief's collective operations lose their peer: it fails (a cluster manager
        # restarts failed tasks), or is restarted with the others if it waits on.
        try:
            procs[0].wait(timeout=60)
        except subprocess.TimeoutExpired:
            procs[0].kill()
        first = procs[0].communicate()[1]
        killed_at = len(runs.read_history(run))
        assert 2 <= killed_at < 6, first[-2000:]
        procs = [_start_worker(k, ports, tiny_dataset, homes[k], temps[k]) for k in (0, 1)]
        outs = [p.communicate(timeout=240) for p in procs]
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
    for p, (out, err) in zip(procs, outs, strict=True):
        assert p.returncode == 0, err[-3000:]
        assert out.strip().splitlines()[-1] == "mw"
    chief_err = outs[0][1]
    assert "multiworker: 2 replicas (2 workers, each on /CPU:0), global batch 8" in chief_err
    assert "continued from its backup after epoch" in chief_err
    info = runs.run_info(run)
    assert (info.state, info.epochs_done) == ("completed", 6)
    assert [row["epoch"] for row in runs.read_history(run)] == list(range(1, 7))
    record = json.loads((run / "config.json").read_text())["distribution"]
    assert (record["replicas"], record["workers"], record["global_batch_size"]) == (2, 2, 8)
    (restored,) = record["restored_after_epochs"]
    assert 2 <= restored <= killed_at
    assert f"continued from its backup after epoch {restored}" in chief_err
    assert not (run / "backup").exists()  # a completed run's backup is discarded
    # Only the chief wrote a run folder; the other worker's temporary one is gone.
    assert not (homes[1] / "runs").exists() or not any((homes[1] / "runs").iterdir())
    assert list((homes[1] / "workers").glob("mw-worker*")) == []  # its folder was deleted


def _backup_epoch(run: Path) -> int:
    try:
        return json.loads((run / "backup" / "training_metadata.json").read_text())["epoch"]
    except (OSError, ValueError, KeyError):
        return 0
