"""Choosing the arithmetic by measurement: the auto rule, the real timing probe, its cache, and
what a CPU without bfloat16 kernels gets (oneDNN capped at AVX2, as on most laptops)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from catdog.train import runs
from catdog.train.precision import (
    CACHE_FILE,
    PrecisionError,
    cached_choice,
    choose_precision,
    cpu_description,
    decide_auto,
    gpu_visible,
)

ROOT = Path(__file__).resolve().parents[1]
AVX2 = {"ONEDNN_MAX_CPU_ISA": "AVX2"}  # oneDNN behaves as on a CPU with AVX2 and nothing newer


def test_auto_takes_bfloat16_only_when_clearly_faster() -> None:
    assert (
        decide_auto({"float32": 100.0, "bfloat16": 151.0}, {}, "2026-11-30").precision == "bfloat16"
    )
    choice = decide_auto({"float32": 100.0, "bfloat16": 105.0}, {}, "2026-11-30")
    assert choice.precision == "float32"  # 5% is within one probe's noise: keep float32
    assert "bfloat16 105 images/s" in choice.reason and "not 1.10× faster" in choice.reason
    slower = decide_auto({"float32": 100.0, "bfloat16": 62.0}, {}, "")
    assert slower.precision == "float32"


def test_auto_names_why_bfloat16_was_not_taken_when_it_cannot_run() -> None:
    errors = {"bfloat16": "UnknownError: could not create a primitive descriptor"}
    choice = decide_auto({"float32": 80.0}, errors, "2026-11-30")
    assert choice.precision == "float32"
    assert "bfloat16 does not run here (UnknownError: could not create a primitive" in choice.reason


def test_a_model_that_cannot_train_at_all_is_an_error_not_a_choice() -> None:
    with pytest.raises(PrecisionError, match="could not train on this machine at all: boom"):
        decide_auto({}, {"float32": "boom"}, "")


def test_float32_needs_no_measurement_and_float16_needs_a_gpu(catdog_home: Path) -> None:
    choice = choose_precision("catdog-net", 112, 32, "float32")
    assert choice.precision == "float32" and choice.speeds == {}
    assert not (catdog_home / "cache" / CACHE_FILE).exists()
    if not any(Path("/dev").glob("nvidia[0-9]*")):
        with pytest.raises(PrecisionError, match="float16 mixed precision needs a GPU"):
            choose_precision("catdog-net", 112, 32, "float16")
    with pytest.raises(PrecisionError, match="unknown precision 'half'"):
        choose_precision("catdog-net", 112, 32, "half")


@pytest.mark.slow
def test_auto_times_the_real_step_once_and_caches_it(catdog_home: Path) -> None:
    messages: list[str] = []
    choice = choose_precision("seed-baseline", 48, 8, on_progress=messages.append)
    assert messages == ["timing seed-baseline's training step in float32 and bfloat16 (once)…"]
    assert choice.speeds["float32"] > 0
    assert set(choice.speeds) | set(choice.errors) == {"float32", "bfloat16"}
    assert choice.precision in choice.speeds and choice.machine == cpu_description()
    cache = catdog_home / "cache" / CACHE_FILE
    (key,) = json.loads(cache.read_text())
    assert "seed-baseline 48px batch 8" in key and "tensorflow" in key
    stamp = cache.stat().st_mtime_ns
    started = time.monotonic()
    again = choose_precision("seed-baseline", 48, 8, on_progress=messages.append)
    assert time.monotonic() - started < 1.0 and len(messages) == 1  # no second timing
    assert again == choice and cache.stat().st_mtime_ns == stamp
    assert cached_choice("seed-baseline", 48, 8) == choice
    assert cached_choice("seed-baseline", 64, 8) is None  # another shape: not measured yet


@pytest.mark.slow
def test_without_bfloat16_kernels_auto_takes_float32_and_bfloat16_is_refused(
    catdog_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ONEDNN_MAX_CPU_ISA", "AVX2")  # the timing child inherits it
    choice = choose_precision("seed-baseline", 48, 8)
    assert choice.precision == "float32"
    assert "primitive descriptor" in choice.errors["bfloat16"]
    assert "ONEDNN_MAX_CPU_ISA=AVX2" in choice.machine
    with pytest.raises(PrecisionError, match=r"bfloat16 does not run on this machine .*AVX2.*"
                       r"primitive descriptor.*choose auto or float32"):  # fmt: skip
        choose_precision("seed-baseline", 48, 8, "bfloat16")


def _cli(args: list[str], home: Path, **env: str) -> subprocess.CompletedProcess:
    environment = os.environ | {"CATDOG_HOME": str(home), "TF_CPP_MIN_LOG_LEVEL": "3"} | env
    return subprocess.run(
        [sys.executable, "-m", "catdog", *args],
        capture_output=True, text=True, cwd=ROOT, env=environment, timeout=600,
    )  # fmt: skip


@pytest.mark.slow
def test_the_default_preset_trains_on_an_avx2_cpu(tiny_dataset: Path, catdog_home: Path) -> None:
    done = _cli(["train", "--data", str(tiny_dataset), "--model", "catdog-net", "--epochs",
                 "1", "--image-size", "32", "--batch-size", "8", "--no-test"],
                catdog_home, **AVX2)  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "precision float32 (" in done.stderr
    assert "bfloat16 does not run here" in done.stderr and "Traceback" not in done.stderr
    saved = json.loads((runs.resolve_run(done.stdout.split()[-1]) / "config.json").read_text())
    assert saved["train"]["precision"] == "float32"
    assert saved["precision"]["requested"] == "auto" and "bfloat16" in saved["precision"]["errors"]


@pytest.mark.slow
def test_an_explicit_bfloat16_on_an_avx2_cpu_is_one_line(
    tiny_dataset: Path, catdog_home: Path
) -> None:
    args = ["train", "--data", str(tiny_dataset), "--epochs", "1", "--image-size", "48",
            "--batch-size", "8", "--precision", "bfloat16", "--no-test"]  # fmt: skip
    done = _cli(args, catdog_home, **AVX2)
    assert done.returncode == 2
    (line,) = done.stderr.strip().splitlines()[-1:]
    assert line.startswith("error: bfloat16 does not run on this machine")
    assert line.endswith("choose auto or float32") and "Traceback" not in done.stderr
    (run,) = runs.list_runs()
    assert (
        run.state == "failed"
        and "bfloat16 does not run" in runs.read_json(run.path / runs.STATUS_FILE)["error"]
    )


@pytest.mark.slow
def test_a_kernel_failure_mid_run_is_one_line_and_the_traceback_is_kept(
    tiny_dataset: Path, catdog_home: Path
) -> None:
    """A bfloat16 run moved to (resumed on) a CPU without bfloat16 kernels fails in its first
    step: the user reads one sentence; error.log keeps the traceback; --debug prints it."""
    from catdog.train.config import TrainConfig
    from catdog.train.trainer import train

    stop = threading.Event()
    config = TrainConfig(data=str(tiny_dataset), epochs=5, image_size=48, batch_size=8,
                         precision="bfloat16", test=False)  # fmt: skip
    result = train(config, on_event=lambda e: e.kind == "epoch" and stop.set(), stop=stop)
    assert result.state == "stopped" and 1 <= len(result.history) < 5
    done = _cli(["train", "--resume", result.run_id], catdog_home, **AVX2)
    assert done.returncode == 1 and "Traceback" not in done.stderr
    last = done.stderr.strip().splitlines()[-1]
    assert last.startswith("error: training failed: this CPU has no bfloat16 kernel")
    assert "train with precision float32 or auto" in last
    status = runs.read_json(result.path / runs.STATUS_FILE)
    assert status["state"] == "failed" and status["error"].startswith("this CPU has no bfloat16")
    assert "Traceback" in (result.path / runs.ERROR_LOG).read_text()
    debug = _cli(["--debug", "train", "--resume", result.run_id], catdog_home, **AVX2)
    assert debug.returncode == 1 and "Traceback" in debug.stderr


@pytest.mark.slow
@pytest.mark.skipif(not gpu_visible(), reason="no GPU visible: float16 is only tried on a GPU")
def test_on_a_gpu_auto_also_times_float16(catdog_home: Path) -> None:
    choice = choose_precision("seed-baseline", 48, 8)
    assert set(choice.speeds) | set(choice.errors) == {"float32", "bfloat16", "float16"}


@pytest.mark.slow
def test_a_timing_process_that_dies_marks_each_arithmetic_not_available(tmp_path: Path) -> None:
    """The child gets too little address space to load TensorFlow (a real failure of the
    child, not an exception it could report): each arithmetic is tried alone, then reported."""
    script = (
        "import json, resource\n"
        "from catdog.train.precision import measure\n"
        "resource.setrlimit(resource.RLIMIT_AS, (600 * 2**20, 600 * 2**20))\n"
        "print(json.dumps(measure('seed-baseline', 48, 8, ('float32', 'bfloat16'))))\n"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          cwd=ROOT, timeout=300)  # fmt: skip
    assert done.returncode == 0, done.stderr
    speeds, errors = json.loads(done.stdout.strip().splitlines()[-1])
    assert speeds == {} and set(errors) == {"float32", "bfloat16"}
    assert all(e.startswith("the timing process ended with code") for e in errors.values())
