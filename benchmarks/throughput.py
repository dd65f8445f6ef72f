"""Training images per second: catdog's pipeline vs the seed's pipeline vs pure compute.

    pip install -r benchmarks/requirements.txt      # tf-keras, for the seed's Keras 2 pipeline
    python benchmarks/throughput.py [--steps 30] [--repeats 3] [--explore]

All three train the seed's ``seed-dropout`` network (Dropout(0.5), RMSprop 1e-4) with the
seed's augmentation, batch 32, 150×150, on the 2000 training photos in
``../shared/data/cats_vs_dogs_small/train``:

- **seed pipeline** — Keras 2 (``tf_keras``) ``ImageDataGenerator(rescale=1/255,
  rotation_range=40, width_shift_range=0.2, height_shift_range=0.2, shear_range=0.2,
  zoom_range=0.2, horizontal_flip=True).flow_from_directory(...)`` feeding ``model.fit``, as
  the seed did (the ``tf-keras`` package is a benchmark-only dependency);
- **catdog** — ``catdog.train.pipeline.make_dataset`` (decoded once, in memory, fused augmentation)
  feeding Keras 3 ``model.fit``, i.e. exactly what ``catdog train`` runs;
- **pure compute** — the same Keras 3 training step with no input pipeline at all, two ways:
  ``train_on_batch`` on one fixed in-memory batch (a Python call per step), and ``fit`` on that
  one batch repeated (fit's compiled loop, as catdog's pipeline runs in).

``--explore`` adds ways to push the step itself (one inter-op thread, oneDNN off, several
steps per compiled call, batch 64), each measured the same way.

Each is timed as the median over ``--repeats`` runs of ``--steps`` steps after a warm-up, in
a fresh process each (so they do not share thread pools or caches). Prints a table and writes
``benchmarks/results/throughput.{json,md}`` with the machine and library versions.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
TRAIN = ROOT.parent / "shared" / "data" / "cats_vs_dogs_small" / "train"
BATCH, SIZE = 32, 150
WARMUP = 5


class _Timer:
    """Records the wall time of every training batch (a callback for either Keras)."""

    def __init__(self) -> None:
        self.ends: list[float] = []

    def on_train_batch_end(self, batch, logs=None) -> None:
        self.ends.append(time.perf_counter())


def _rate(ends: list[float], steps: int, images: int = BATCH) -> float:
    """Images per second over ``steps`` calls after WARMUP, ``images`` per call."""
    timed = ends[WARMUP : WARMUP + steps + 1]
    return images * (len(timed) - 1) / (timed[-1] - timed[0])


def run_seed(steps: int) -> float:
    """The seed's own pipeline: Keras 2 ImageDataGenerator + flow_from_directory + fit."""
    import tf_keras as k2

    gen = k2.preprocessing.image.ImageDataGenerator(
        rescale=1.0 / 255, rotation_range=40, width_shift_range=0.2, height_shift_range=0.2,
        shear_range=0.2, zoom_range=0.2, horizontal_flip=True, fill_mode="nearest",
    )  # fmt: skip
    flow = gen.flow_from_directory(TRAIN, target_size=(SIZE, SIZE), batch_size=BATCH,
                                   class_mode="binary")  # fmt: skip
    layers = [k2.Input((SIZE, SIZE, 3))]
    for filters in (32, 64, 128, 128):
        layers += [k2.layers.Conv2D(filters, 3, activation="relu"), k2.layers.MaxPooling2D(2)]
    layers += [
        k2.layers.Flatten(),
        k2.layers.Dropout(0.5),
        k2.layers.Dense(512, activation="relu"),
        k2.layers.Dense(1, activation="sigmoid"),
    ]
    model = k2.Sequential(layers)
    model.compile(k2.optimizers.RMSprop(learning_rate=1e-4), "binary_crossentropy", ["acc"])
    timer = _Timer()
    callback = k2.callbacks.LambdaCallback(on_train_batch_end=timer.on_train_batch_end)
    model.fit(flow, steps_per_epoch=WARMUP + steps + 1, epochs=1, verbose=0, callbacks=[callback])
    return _rate(timer.ends, steps)


def _catdog_model(mixed: bool, steps_per_execution: int = 1):
    from catdog.model.registry import build_model, compile_model

    model = build_model("seed-convnet", dropout=0.5, precision="bfloat16" if mixed else "float32")
    model = compile_model(model, num_classes=2, learning_rate=1e-4)
    if steps_per_execution > 1:  # recompile with the same optimizer, loss and metrics
        model.compile(
            optimizer=model.optimizer,
            loss=model.loss,
            metrics=["accuracy"],
            steps_per_execution=steps_per_execution,
        )
    return model


def _fit_rate(model, data, steps: int, batch: int) -> float:
    """Images/s of ``model.fit`` over ``steps`` batches after WARMUP, timed per batch."""
    from catdog.model.backend import keras

    timer = _Timer()
    callback = keras.callbacks.LambdaCallback(on_train_batch_end=timer.on_train_batch_end)
    spe = getattr(model, "steps_per_execution", 1) or 1
    total = (WARMUP + steps + 1) * spe
    model.fit(data, steps_per_epoch=total, epochs=1, verbose=0, callbacks=[callback])
    return _rate(timer.ends, steps, batch * spe)


def run_catdog(steps: int, mixed: bool, batch: int, spe: int) -> float:
    """catdog's pipeline (as `catdog train` uses it) feeding Keras 3 fit."""
    from catdog.train.augment import AugmentConfig
    from catdog.train.pipeline import load_split, make_dataset

    loaded = load_split(TRAIN.parent, "train", ["cats", "dogs"], SIZE)
    data = make_dataset(loaded, batch_size=batch, shuffle=True, augment=AugmentConfig(), seed=0)
    return _fit_rate(_catdog_model(mixed, spe), data.repeat(), steps, batch)


def run_train_on_batch(steps: int, mixed: bool, batch: int, spe: int) -> float:
    """The training step alone: train_on_batch on one fixed in-memory batch."""
    from common import random_batch  # same folder

    from catdog.model.backend import tf

    x, y = (tf.constant(a) for a in random_batch(SIZE, batch))
    model = _catdog_model(mixed)
    ends = []
    for _ in range(WARMUP + steps + 1):
        model.train_on_batch(x, y)
        ends.append(time.perf_counter())
    return _rate(ends, steps, batch)


def run_fit_fixed(steps: int, mixed: bool, batch: int, spe: int) -> float:
    """The training step alone inside fit's compiled loop: one fixed batch, repeated."""
    from common import fixed_batch  # same folder

    return _fit_rate(_catdog_model(mixed, spe), fixed_batch(SIZE, batch), steps, batch)


RUNNERS = {"catdog": run_catdog, "train_on_batch": run_train_on_batch, "fit": run_fit_fixed}

# name → (kind, bfloat16, batch, steps per execution, extra environment)
VARIANTS: dict[str, tuple[str, bool, int, int, dict[str, str]]] = {
    "seed pipeline (Keras 2 ImageDataGenerator)": ("seed", False, BATCH, 1, {}),
    "catdog pipeline": ("catdog", False, BATCH, 1, {}),
    "pure compute: train_on_batch": ("train_on_batch", False, BATCH, 1, {}),
    "pure compute: fit on a fixed batch": ("fit", False, BATCH, 1, {}),
    "catdog pipeline, bfloat16": ("catdog", True, BATCH, 1, {}),
    "pure compute: train_on_batch, bfloat16": ("train_on_batch", True, BATCH, 1, {}),
    "pure compute: fit on a fixed batch, bfloat16": ("fit", True, BATCH, 1, {}),
}
# Ways to push the training step further, each measured (--explore).
EXPLORE: dict[str, tuple[str, bool, int, int, dict[str, str]]] = {
    "fit fixed, bf16, 1 inter-op thread": ("fit", True, BATCH, 1, {"TF_NUM_INTEROP_THREADS": "1"}),
    "fit fixed, bf16, oneDNN off": ("fit", True, BATCH, 1, {"TF_ENABLE_ONEDNN_OPTS": "0"}),
    "fit fixed, bf16, 8 steps per execution": ("fit", True, BATCH, 8, {}),
    "fit fixed, bf16, batch 64": ("fit", True, 64, 1, {}),
    "catdog, bf16, 8 steps per execution": ("catdog", True, BATCH, 8, {}),
}


def child(kind: str, mixed: bool, steps: int, batch: int, spe: int) -> float:
    """Run one measurement (in this process)."""
    if kind == "seed":
        return run_seed(steps)
    return RUNNERS[kind](steps, mixed, batch, spe)


def measure(name: str, variant: tuple, steps: int, repeats: int) -> dict:
    """Median images/s of one variant over ``repeats`` fresh processes."""
    kind, mixed, batch, spe, env = variant
    rates = []
    for _ in range(repeats):
        out = subprocess.run(
            [sys.executable, __file__, "--steps", str(steps), "--child", kind,
             "1" if mixed else "0", str(batch), str(spe)],
            capture_output=True, text=True, check=True, env={**os.environ, **env},
        )  # fmt: skip
        rates.append(json.loads(out.stdout.strip().splitlines()[-1])["rate"])
    row = {"pipeline": name, "images_per_second": round(statistics.median(rates), 1),
           "runs": [round(r, 1) for r in rates], "batch": batch,
           "steps_per_execution": spe, "env": env}  # fmt: skip
    print(f"{name:50} {row['images_per_second']:7.1f} img/s  {row['runs']}", flush=True)
    return row


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--explore", action="store_true", help="also measure the EXPLORE list")
    parser.add_argument("--child", nargs=4, metavar=("KIND", "MIXED", "BATCH", "SPE"),
                        help=argparse.SUPPRESS)  # fmt: skip
    args = parser.parse_args()
    if args.child:
        kind, mixed, batch, spe = args.child
        rate = child(kind, mixed == "1", args.steps, int(batch), int(spe))
        print(json.dumps({"rate": rate}))
        return 0
    if not TRAIN.is_dir():
        print(f"the real photos are not here: {TRAIN} does not exist", file=sys.stderr)
        return 2
    from common import machine, machine_line, write_results  # same folder

    variants = VARIANTS | (EXPLORE if args.explore else {})
    rows = [measure(name, v, args.steps, args.repeats) for name, v in variants.items()]
    by = {row["pipeline"]: row["images_per_second"] for row in rows}
    seed = by["seed pipeline (Keras 2 ImageDataGenerator)"]
    ratios = {
        "catdog / seed pipeline (float32)": round(by["catdog pipeline"] / seed, 2),
        "catdog / seed pipeline (bfloat16)": round(by["catdog pipeline, bfloat16"] / seed, 2),
    }
    for dtype, suffix in (("float32", ""), ("bfloat16", ", bfloat16")):
        catdog = by[f"catdog pipeline{suffix}"]
        for compute in ("train_on_batch", "fit on a fixed batch"):
            ratios[f"catdog pipeline cost over pure compute ({compute}, {dtype}) (%)"] = round(
                100 * (by[f"pure compute: {compute}{suffix}"] / catdog - 1), 1
            )
    info = machine()
    payload = {"rows": rows, "ratios": ratios, "machine": info, "steps": args.steps,
               "repeats": args.repeats, "image_size": SIZE}  # fmt: skip
    lines = ["| pipeline | batch | images/s (median) | runs |", "|---|---|---|---|"]
    lines += [
        f"| {r['pipeline']} | {r['batch']} | {r['images_per_second']} | {r['runs']} |" for r in rows
    ]
    lines += ["", *[f"- {k}: {v}" for k, v in ratios.items()], "",
              f"{SIZE}×{SIZE}, median of {args.repeats} × {args.steps} steps. "
              + machine_line(info)]  # fmt: skip
    write_results("throughput", payload, lines)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
