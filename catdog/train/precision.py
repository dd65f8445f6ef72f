"""The arithmetic a model trains in, chosen by measuring this machine.

Whether bfloat16 pays depends on the CPU, not on the model: with AMX tile units it trains
catdog-net about 3× faster than float32; with AVX-512 BF16 instructions alone it can be faster
or slower; with AVX2 only, oneDNN has no bfloat16 convolution at all and the first step fails
("could not create a primitive descriptor"). So ``auto`` times the model's real training step
in each arithmetic the machine may have, picks the fastest that works, and remembers the answer
per CPU, library version and model shape in the data home (``cache/precision.json``).

The timing runs in a child process (``python -m catdog.train.precision``): a kernel that aborts the
process instead of raising can then only mark that arithmetic "not available", never take the
dashboard or the CLI down with it. Importing this module is cheap (no TensorFlow).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import date
from importlib import metadata
from pathlib import Path
from typing import Any

from catdog.data.paths import data_home
from catdog.failures import one_line
from catdog.model.registry import POLICIES
from catdog.policy import current_policy
from catdog.safe_files import write_new_file

PRECISIONS = ("auto", *POLICIES)
# auto takes a 16-bit arithmetic only when it is clearly faster: float32 is the reference
# arithmetic, and a smaller gain is within what one probe's timing can tell apart.
MIN_GAIN = 1.10
# The CPU flags that decide which kernels oneDNN can use (read from /proc/cpuinfo).
ISA_FLAGS = ("avx2", "avx512f", "avx512_bf16", "amx_bf16", "avx512_fp16")
CACHE_FILE = "precision.json"
PROBE_TIMEOUT_S = 600
# Seconds of training steps timed per arithmetic (after compiling): longer is steadier.
PROBE_SECONDS_ENV = "CATDOG_PROBE_SECONDS"


def probe_seconds() -> float:
    """How long ``auto`` times each arithmetic: ``$CATDOG_PROBE_SECONDS``, else 4 s."""
    try:
        return min(max(float(os.environ.get(PROBE_SECONDS_ENV, "") or 4.0), 0.5), 60.0)
    except ValueError:
        return 4.0


class PrecisionError(ValueError):
    """An arithmetic this machine cannot train in; the message says what to choose instead."""


@dataclass
class PrecisionChoice:
    """Which arithmetic a run trains in, and why.

    ``speeds`` are training images per second of the model's real step, per arithmetic that
    ran; ``errors`` say why the others could not run.
    """

    precision: str  # float32 | bfloat16 | float16
    requested: str  # what was asked for: auto or one of the above
    reason: str  # one sentence, for the CLI, the Train page and the run's config
    speeds: dict[str, float] = field(default_factory=dict)
    errors: dict[str, str] = field(default_factory=dict)
    measured: str = ""  # ISO date of the measurement ("" if none was needed)
    machine: str = ""

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready data."""
        return asdict(self)


def precision_error(value: str | None) -> str | None:
    """Why ``value`` cannot be a precision setting, or None if it can (None = model default)."""
    if value is None or value in PRECISIONS:
        return None
    return f"unknown precision {value!r}; choose one of {', '.join(PRECISIONS)}"


def cpu_description() -> str:
    """CPU model and the instruction-set flags that matter for oneDNN, e.g.
    ``AMD EPYC (avx2 avx512_bf16 avx512f)``, plus any ``ONEDNN_MAX_CPU_ISA`` cap in force."""
    model, flags = "unknown CPU", set()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            key, _, value = line.partition(":")
            if key.strip() == "model name" and model == "unknown CPU":
                model = value.strip()
            elif key.strip() == "flags" and not flags:
                flags = set(value.split())
    except OSError:
        pass
    text = f"{model} ({' '.join(f for f in ISA_FLAGS if f in flags) or 'flags unknown'})"
    cap = os.environ.get("ONEDNN_MAX_CPU_ISA", "").strip()
    return f"{text}, ONEDNN_MAX_CPU_ISA={cap}" if cap else text


def _version(name: str) -> str:
    for dist in (name, f"{name}-cpu"):
        try:
            return metadata.version(dist)
        except metadata.PackageNotFoundError:
            continue
    return "?"


def gpu_visible() -> bool:
    """Whether an NVIDIA GPU is visible to this process (without importing TensorFlow)."""
    if os.environ.get("CUDA_VISIBLE_DEVICES", None) in ("", "-1"):
        return False
    return any(Path("/dev").glob("nvidia[0-9]*"))


def candidates() -> tuple[str, ...]:
    """The arithmetics ``auto`` considers on this machine (float16 only where a GPU is)."""
    return ("float32", "bfloat16", "float16") if gpu_visible() else ("float32", "bfloat16")


def cache_key(model: str, image_size: int, batch_size: int) -> str:
    """What a measurement depends on: the CPU, the libraries, the GPU, the model's shape."""
    return (
        f"{cpu_description()} | tensorflow {_version('tensorflow')} keras {_version('keras')}"
        f" | gpu {'yes' if gpu_visible() else 'no'} | {model} {image_size}px batch {batch_size}"
    )


def _cache_path() -> Path:
    return data_home() / "cache" / CACHE_FILE


def _read_cache() -> dict[str, Any]:
    try:
        data = json.loads(_cache_path().read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _write_cache(key: str, entry: dict[str, Any]) -> None:
    path = _cache_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    data = _read_cache() | {key: entry}
    text = json.dumps(data, indent=2) + "\n"  # written beside it, then renamed: no link followed
    write_new_file(path, lambda tmp: tmp.write_text(text, encoding="utf-8"))


def cached_choice(model: str, image_size: int, batch_size: int) -> PrecisionChoice | None:
    """What ``auto`` chose earlier for this model shape on this machine, or None."""
    entry = _read_cache().get(cache_key(model, image_size, batch_size))
    if not isinstance(entry, dict):
        return None
    speeds = {k: float(v) for k, v in (entry.get("speeds") or {}).items()}
    errors = {k: str(v) for k, v in (entry.get("errors") or {}).items()}
    if not speeds:
        return None
    return decide_auto(speeds, errors, str(entry.get("measured", "")))


def decide_auto(speeds: dict[str, float], errors: dict[str, str], measured: str) -> PrecisionChoice:
    """The ``auto`` rule: float32 unless a 16-bit arithmetic is ``MIN_GAIN`` × faster."""
    machine = cpu_description()
    if "float32" not in speeds:  # every model runs in float32; if not, nothing else will help
        raise PrecisionError(
            f"the model could not train on this machine at all: {errors.get('float32', '?')}"
        )
    best = "float32"
    for name in ("bfloat16", "float16"):
        if name in speeds and speeds[name] >= MIN_GAIN * speeds[best]:
            best = name
    base = speeds["float32"]
    if best != "float32":
        reason = (
            f"{best}: {speeds[best] / base:.2f}× faster than float32 on this machine "
            f"({speeds[best]:.0f} vs {base:.0f} training images/s)"
        )
    else:
        others = [
            f"{n} {speeds[n]:.0f} images/s"
            if n in speeds
            else f"{n} does not run here ({errors.get(n, 'not measured')})"
            for n in candidates()
            if n != "float32"
        ]
        reason = (
            f"float32 ({base:.0f} images/s): "
            + "; ".join(others)
            + (f" — not {MIN_GAIN:.2f}× faster" if all(n in speeds for n in candidates()) else "")
        )
    return PrecisionChoice(best, "auto", reason, speeds, errors, measured, machine)


# Besides its training steps, an epoch validates (a forward pass: about a third of a training
# step per image) and saves the model (about a second).
VALIDATION_COST = 1 / 3
EPOCH_OVERHEAD_S = 1.0


def epochs_in_budget(
    minutes: float, images_per_second: float, train_images: int, val_images: int, epochs: int
) -> int:
    """About how many epochs fit in ``minutes`` at a measured training speed (at most
    ``epochs``): what a time budget buys on this machine."""
    per_epoch = (train_images + VALIDATION_COST * val_images) / images_per_second
    return min(epochs, int(minutes * 60 // (per_epoch + EPOCH_OVERHEAD_S)))


def measure(
    model: str,
    image_size: int,
    batch_size: int,
    precisions: tuple[str, ...],
    *,
    seconds: float | None = None,
) -> tuple[dict[str, float], dict[str, str]]:
    """Time ``model``'s training step in each arithmetic, in a child process, for ``seconds``
    each (default :func:`probe_seconds`).

    Returns:
        (images per second by arithmetic that ran, one-line reason by arithmetic that did not).
    """
    seconds = seconds or probe_seconds()
    speeds, errors = _probe_process(model, image_size, batch_size, precisions, seconds)
    if "__process__" not in errors:
        return speeds, errors
    if len(precisions) == 1:
        return {}, {precisions[0]: errors["__process__"]}
    # The child died without a word (a kernel that aborts): time one arithmetic at a time.
    speeds, errors = {}, {}
    for name in precisions:
        one, why = _probe_process(model, image_size, batch_size, (name,), seconds)
        speeds |= one
        if name not in one:
            errors[name] = why.get(name) or why.get("__process__", "not measured")
    return speeds, errors


def _probe_process(
    model: str, image_size: int, batch_size: int, precisions: tuple[str, ...], seconds: float
) -> tuple[dict[str, float], dict[str, str]]:
    command = [sys.executable, "-m", "catdog.train.precision", model, str(image_size),
               str(batch_size), *precisions, "--seconds", str(seconds)]  # fmt: skip
    env = os.environ | {"TF_CPP_MIN_LOG_LEVEL": "3"}
    for name in ("CATDOG_MULTIWORKER", "TF_CONFIG"):  # the timing never joins a cluster
        env.pop(name, None)
    root = str(Path(__file__).resolve().parents[1])
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [root, env.get("PYTHONPATH")]))
    try:
        done = subprocess.run(
            command, capture_output=True, text=True, timeout=PROBE_TIMEOUT_S, env=env
        )
    except subprocess.TimeoutExpired:
        return {}, {"__process__": f"the timing did not finish within {PROBE_TIMEOUT_S} s"}
    for line in reversed(done.stdout.splitlines()):
        if line.startswith("{"):
            result = json.loads(line)
            return result["speeds"], result["errors"]
    tail = (done.stderr.strip().splitlines() or ["no output"])[-1][:200]
    return {}, {"__process__": f"the timing process ended with code {done.returncode}: {tail}"}


def choose_precision(
    model: str,
    image_size: int,
    batch_size: int,
    requested: str = "auto",
    *,
    refresh: bool = False,
    on_progress: Callable[[str], None] | None = None,
) -> PrecisionChoice:
    """Resolve ``requested`` to the arithmetic a run of this model shape trains in.

    ``float32`` needs no measurement. ``bfloat16``/``float16`` are checked once (cached) so a
    machine that cannot run them says so before training starts. ``auto`` measures every
    candidate once per machine and model shape (cached; ``refresh`` measures again). Hosted
    mode trains in float32 whatever was asked, and says so (no timing process is started).

    Raises:
        PrecisionError: the requested arithmetic cannot run here; the message says why and
            what to choose instead.
    """
    if requested not in PRECISIONS:
        raise PrecisionError(precision_error(requested) or requested)
    precision, why = current_policy().precision_for(requested)
    if why is not None:
        return PrecisionChoice(precision, requested, why, machine=cpu_description())
    if requested == "float32":
        machine = cpu_description()
        return PrecisionChoice("float32", "float32", "float32, as chosen", machine=machine)
    if requested == "float16" and not gpu_visible():
        raise PrecisionError(
            "float16 mixed precision needs a GPU and none is visible; choose auto or float32"
        )
    key = cache_key(model, image_size, batch_size)
    entry = None if refresh else _read_cache().get(key)
    wanted = candidates() if requested == "auto" else ("float32", requested)
    if not isinstance(entry, dict) or any(
        p not in (entry.get("speeds") or {}) and p not in (entry.get("errors") or {})
        for p in wanted
    ):
        if on_progress is not None:
            on_progress(f"timing {model}'s training step in {' and '.join(wanted)} (once)…")
        speeds, errors = measure(model, image_size, batch_size, wanted)
        entry = {"speeds": speeds, "errors": errors, "measured": date.today().isoformat()}
        _write_cache(key, entry)
    speeds, errors = dict(entry.get("speeds") or {}), dict(entry.get("errors") or {})
    measured = str(entry.get("measured", ""))
    if requested == "auto":
        return decide_auto(speeds, errors, measured)
    if requested not in speeds:
        raise PrecisionError(
            f"{requested} does not run on this machine ({cpu_description()}): "
            f"{errors.get(requested, 'not available')}; choose auto or float32"
        )
    note = f"{speeds[requested]:.0f} training images/s"
    if "float32" in speeds:
        note += f" vs {speeds['float32']:.0f} in float32"
    return PrecisionChoice(
        requested, requested, f"{requested}, as chosen ({note})", speeds, errors, measured,
        cpu_description(),
    )  # fmt: skip


# ---------------------------------------------------------------- the child process


def _time_steps(model: Any, data: Any, steps: int) -> list[float]:
    """Seconds of each of ``steps`` training steps (after the model has compiled)."""
    from catdog.model.backend import keras

    marks: list[float] = []

    class Clock(keras.callbacks.Callback):
        def on_train_batch_end(self, batch: int, logs: Any = None) -> None:
            marks.append(time.perf_counter())

    start = time.perf_counter()
    model.fit(data, steps_per_epoch=steps, epochs=1, verbose=0, callbacks=[Clock()])
    return [b - a for a, b in zip([start, *marks[:-1]], marks, strict=True)]


def _build(model_name: str, image_size: int, precision: str) -> Any:
    from catdog.model.registry import build_model, compile_model
    from catdog.train.presets import get_preset

    spec = get_preset(model_name)
    model = build_model(spec.network, image_size=image_size, precision=precision)
    return compile_model(
        model,
        num_classes=2,
        learning_rate=spec.learning_rate,
        optimizer=spec.optimizer,
        weight_decay=spec.weight_decay,
    )


def _probe_main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m catdog.train.precision")
    parser.add_argument("model")
    parser.add_argument("image_size", type=int)
    parser.add_argument("batch_size", type=int)
    parser.add_argument("precisions", nargs="+", choices=list(POLICIES))
    parser.add_argument("--seconds", type=float, default=4.0, help="timing per arithmetic")
    args = parser.parse_args(argv)

    import numpy as np

    from catdog.model.backend import tf

    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, (args.batch_size, args.image_size, args.image_size, 3))
    y = rng.integers(0, 2, (args.batch_size, 1)).astype("float32")
    data = tf.data.Dataset.from_tensors(((x / 255).astype("float32"), y)).repeat()
    models, errors, guesses = {}, {}, {}
    for name in args.precisions:
        try:
            models[name] = _build(args.model, args.image_size, name)
            first = _time_steps(models[name], data, 2)  # compiles; the first step fails here
        except Exception as exc:  # any failure means "not available here", never a crash
            models.pop(name, None)
            errors[name] = one_line(exc)
            continue
        guesses[name] = max(first[-1], 1e-3)
    times: dict[str, list[float]] = {name: [] for name in models}
    for _ in range(3):  # interleaved rounds: a slow spell of the machine hits all alike
        for name, model in models.items():
            steps = int(min(max(args.seconds / 3 / guesses[name], 2), 50))
            times[name] += _time_steps(model, data, steps)
    speeds = {}
    for name, seconds in times.items():
        quick = sorted(seconds)[: max(1, len(seconds) // 2)]  # the faster half: less noise
        speeds[name] = round(args.batch_size / (sum(quick) / len(quick)), 1)
    print(json.dumps({"speeds": speeds, "errors": errors}))
    return 0


if __name__ == "__main__":
    raise SystemExit(_probe_main())
