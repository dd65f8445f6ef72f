"""Shared helpers of the benchmark scripts: where the photos and results are, the machine a
number came from, a training run that prints its epochs, results files that keep the rows of
earlier invocations, one results row per finished run (computed from its folder, so any
run can be summarised again), and the augmentation settings mapped onto Keras' stock layers
(what catdog's fused warp is measured against)."""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from catdog.train.augment import AugmentConfig

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data" / "cats_vs_dogs_small"
RESULTS = ROOT / "benchmarks" / "results"
# `streamlit run` through page_timing.py: the app unchanged, where its time goes logged.
TIMING_LAUNCHER = [sys.executable, str(ROOT / "benchmarks" / "page_timing.py")]


def machine() -> dict[str, str]:
    """CPU model, core count and library versions, for the results table."""
    cpu = platform.processor() or "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    import keras
    import tensorflow as tf

    return {
        "cpu": cpu,
        "cores": str(os.cpu_count()),
        "python": platform.python_version(),
        "tensorflow": tf.__version__,
        "keras": keras.__version__,
    }


def summarize(run_path: Path) -> dict:
    """One results row, computed from a run folder's files (so any finished run can be
    summarised again later)."""
    from catdog.train import runs

    config = runs.read_json(run_path / runs.CONFIG_FILE)["train"]
    metrics = runs.read_json(run_path / runs.METRICS_FILE)
    history = runs.read_history(run_path)
    val = [row["val_accuracy"] for row in history]
    reached = next((row for row in history if row["val_accuracy"] >= 0.82), None)
    images = sum(row["images"] for row in history)
    train_seconds = sum(row["train_seconds"] for row in history)
    wall = sum(row["seconds"] for row in history)
    return {
        "model": config["model"],
        "run_id": run_path.name,
        "epochs": len(history),
        "batch_size": config["batch_size"],
        "image_size": config["image_size"],
        "augment": bool(config["augment"]),
        "best_val_accuracy": max(val),
        "best_epoch": val.index(max(val)) + 1,
        "final_val_accuracy": val[-1],
        "test_accuracy": metrics.get("test_accuracy"),
        "tta": bool(config.get("tta")),
        "tta_zoom": config.get("tta_zoom") or 0.0,
        "wall_minutes": round(wall / 60, 1),
        "seconds_per_epoch": round(wall / len(history), 1),
        "train_images_per_second": round(images / train_seconds, 1),
        "first_epoch_at_82": reached["epoch"] if reached else None,
        "minutes_to_82": round(sum(r["seconds"] for r in history[: reached["epoch"]]) / 60, 1)
        if reached
        else None,
        "seed": config["seed"],
    }


def machine_line(info: dict[str, str]) -> str:
    """The "Machine: ..." footer of every results table."""
    return (
        f"Machine: {info['cpu']}, {info['cores']} cores; Python {info['python']}, "
        f"TensorFlow {info['tensorflow']}, Keras {info['keras']}."
    )


def train_logged(
    label: str,
    stop: threading.Event | None = None,
    on_epoch: Callable[..., None] | None = None,
    **config: object,
) -> Path:
    """Train ``TrainConfig(data=DATA, **config)``, printing one line per epoch; returns the run
    folder. ``on_epoch(event)`` is also called after each epoch (e.g. to set ``stop``)."""
    from catdog.inference.evaluate import final_test
    from catdog.train.config import TrainConfig
    from catdog.train.trainer import train

    def on_event(event) -> None:
        if event.kind != "epoch":
            return
        logs = event.logs
        print(
            f"{label} epoch {event.epoch:3d}/{event.epochs} acc {logs['accuracy']:.3f} "
            f"val_acc {logs.get('val_accuracy', float('nan')):.3f} ({event.seconds / 60:.1f} min)",
            flush=True,
        )
        if on_epoch is not None:
            on_epoch(event)

    return train(
        TrainConfig(data=str(DATA), **config), on_event=on_event, stop=stop, test_with=final_test
    ).path


def merge_rows(path: Path, row: dict, key: Sequence[str]) -> list[dict]:
    """Add ``row`` to the rows in the JSON results file ``path`` (replacing the row with the same
    ``key`` fields), write the file back and return all rows. Re-read every time: another
    invocation may have added rows meanwhile."""
    previous = json.loads(path.read_text())["rows"] if path.exists() else []
    rows = {tuple(r[k] for k in key): r for r in previous}
    rows[tuple(row[k] for k in key)] = row
    merged = list(rows.values())
    path.write_text(json.dumps({"rows": merged}, indent=2) + "\n")
    return merged


def random_batch(size: int, batch: int) -> tuple:
    """One batch of random images in [0, 1) and random 0/1 labels, as NumPy arrays (seed 0)."""
    import numpy as np

    rng = np.random.default_rng(0)
    x = rng.random((batch, size, size, 3), dtype=np.float32)
    y = rng.integers(0, 2, (batch, 1)).astype(np.float32)
    return x, y


def fixed_batch(size: int, batch: int, autotune: bool = False):
    """:func:`random_batch` repeated forever as a tf.data dataset: pure compute, no input
    pipeline. Without the tf.data autotuner unless asked (as catdog's pipeline runs): tearing
    an autotuned iterator down at the end of a fit call stalls ~1 s about half the time
    (``autotune_stall.py``)."""
    from catdog.model.backend import tf
    from catdog.train.pipeline import pipeline_options

    data = tf.data.Dataset.from_tensors(random_batch(size, batch)).repeat()
    return data if autotune else data.with_options(pipeline_options())


def write_results(name: str, payload: dict, lines: list[str]) -> None:
    """Write ``results/<name>.json`` (the payload) and ``results/<name>.md`` (the lines), and
    print the Markdown."""
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / f"{name}.json").write_text(json.dumps(payload, indent=2) + "\n")
    (RESULTS / f"{name}.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


def build_augmenter(config: AugmentConfig, seed: int | None = None) -> Any:
    """Map the config onto Keras 3's stock preprocessing layers, one layer per enabled transform.

    The layers take float pixels 0–255 and are active only when called with ``training=True``
    (as inside ``model.fit``). Mapping, and where it departs from Keras 2:

    - rotation_range r → ``RandomRotation(r / 360)`` (the factor is a fraction of a full turn).
    - width/height_shift_range → ``RandomTranslation(height_factor, width_factor)``.
    - shear_range s (degrees) → ``RandomShear(y_factor=sin s)``: Keras 2's shear moves rows in
      proportion to the column; the layer shears about the top-left corner, not the centre,
      and leaves out Keras 2's tiny cos s squeeze.
    - zoom_range z → ``RandomZoom((-z, z), (-z, z))``: independent height and width factors.
    - horizontal_flip → ``RandomFlip("horizontal")``.
    - brightness_range b → ``RandomBrightness(b)``, which ADDS ±b × 255 (Keras 2 multiplied).
    - contrast_range c → ``RandomContrast(c)``.
    - cutout c → ``RandomErasing(factor=(1, 1), scale=(c², c²), fill_value=127.5)``: one
      erased patch per image, but of the layer's own shape and placement, filled with mid-grey
      rather than the image's mean colour.

    Each layer warps and fills on its own, where Keras 2 (and
    :func:`catdog.train.warp.augment_images`) composes one matrix and samples once: chained layers
    blur more and are several times slower.

    Args:
        config: the transforms to apply.
        seed: seed for the layers' random generators (None: random).

    Returns:
        A ``keras.Sequential`` named ``"augmenter"`` (empty if the config is off).
    """
    import math

    from catdog.model.backend import keras

    config.validate()
    fill = {"fill_mode": config.fill_mode, "fill_value": 0.0, "interpolation": "bilinear"}
    layers = []
    if config.rotation_range:
        layers.append(keras.layers.RandomRotation(config.rotation_range / 360.0, seed=seed, **fill))
    if config.width_shift_range or config.height_shift_range:
        layers.append(
            keras.layers.RandomTranslation(
                config.height_shift_range, config.width_shift_range, seed=seed, **fill
            )
        )
    if config.shear_range:
        layers.append(
            keras.layers.RandomShear(
                x_factor=0.0, y_factor=math.sin(math.radians(config.shear_range)), seed=seed, **fill
            )
        )
    if config.zoom_range:
        z = config.zoom_range
        layers.append(keras.layers.RandomZoom((-z, z), (-z, z), seed=seed, **fill))
    if config.horizontal_flip:
        layers.append(keras.layers.RandomFlip("horizontal", seed=seed))
    if config.brightness_range:
        layers.append(
            keras.layers.RandomBrightness(
                config.brightness_range, value_range=(0.0, 255.0), seed=seed
            )
        )
    if config.contrast_range:
        layers.append(
            keras.layers.RandomContrast(config.contrast_range, value_range=(0.0, 255.0), seed=seed)
        )
    if config.cutout:
        area = config.cutout**2
        layers.append(
            keras.layers.RandomErasing(
                factor=(1.0, 1.0),
                scale=(area, area),
                fill_value=127.5,
                value_range=(0.0, 255.0),
                seed=seed,
            )
        )
    return keras.Sequential(layers, name="augmenter")


def catdog_cli(home: Path, *args: str, timeout: float = 600) -> str:
    """Run ``python -m catdog ARGS`` on data home ``home`` (not hosted); its last output line
    (a command that makes a run prints its id last). Exits with the command's error output if
    it fails."""
    env = {**os.environ, "CATDOG_HOME": str(home), "CATDOG_HOSTED": "0",
           "TF_CPP_MIN_LOG_LEVEL": "2"}  # fmt: skip
    done = subprocess.run([sys.executable, "-m", "catdog", *args], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=timeout)  # fmt: skip
    if done.returncode:
        raise SystemExit(f"`python -m catdog {' '.join(args)}` failed:\n{done.stderr[-2000:]}")
    return done.stdout.strip().splitlines()[-1]
