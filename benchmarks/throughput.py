"""Training images per second: catdog's pipeline vs the seed's pipeline vs pure compute.

    pip install -r benchmarks/requirements.txt      # tf-keras, for the seed's Keras 2 pipeline
    python benchmarks/throughput.py [--steps 30] [--repeats 3]

All three train the seed's ``seed-dropout`` network (Dropout(0.5), RMSprop 1e-4) with the
seed's augmentation, batch 32, 150×150, on the 2000 training photos in
``../shared/data/cats_vs_dogs_small/train``:

- **seed pipeline** — Keras 2 (``tf_keras``) ``ImageDataGenerator(rescale=1/255,
  rotation_range=40, width_shift_range=0.2, height_shift_range=0.2, shear_range=0.2,
  zoom_range=0.2, horizontal_flip=True).flow_from_directory(...)`` feeding ``model.fit``, as
  the seed did (the ``tf-keras`` package is a benchmark-only dependency);
- **catdog** — ``catdog.pipeline.make_dataset`` (decoded once, in memory, fused augmentation)
  feeding Keras 3 ``model.fit``, i.e. exactly what ``catdog train`` runs;
- **pure compute** — Keras 3 ``train_on_batch`` on one fixed batch already in memory: the
  cost of the training step alone, with no input pipeline at all.

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
RESULTS = ROOT / "benchmarks" / "results"
BATCH, SIZE = 32, 150
WARMUP = 5


class _Timer:
    """Records the wall time of every training batch (a callback for either Keras)."""

    def __init__(self) -> None:
        self.ends: list[float] = []

    def on_train_batch_end(self, batch, logs=None) -> None:
        self.ends.append(time.perf_counter())


def _rate(ends: list[float], steps: int) -> float:
    """Images per second over the last ``steps`` batches (the first WARMUP are dropped)."""
    timed = ends[WARMUP : WARMUP + steps + 1]
    return BATCH * (len(timed) - 1) / (timed[-1] - timed[0])


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


def _catdog_model(mixed: bool):
    from catdog.models import build_model, compile_model

    model = build_model("seed-dropout", mixed_precision=mixed)
    return compile_model(model, num_classes=2, learning_rate=1e-4)


def run_catdog(steps: int, mixed: bool = False) -> float:
    """catdog's pipeline (as `catdog train` uses it) feeding Keras 3 fit."""
    from catdog.augment import AugmentConfig
    from catdog.backend import keras
    from catdog.pipeline import load_split, make_dataset

    loaded = load_split(TRAIN.parent, "train", ["cats", "dogs"], SIZE)
    data = make_dataset(loaded, batch_size=BATCH, shuffle=True, augment=AugmentConfig(), seed=0)
    model = _catdog_model(mixed)
    timer = _Timer()
    callback = keras.callbacks.LambdaCallback(on_train_batch_end=timer.on_train_batch_end)
    model.fit(data.repeat(), steps_per_epoch=WARMUP + steps + 1, epochs=1, verbose=0,
              callbacks=[callback])  # fmt: skip
    return _rate(timer.ends, steps)


def run_compute(steps: int, mixed: bool = False) -> float:
    """The training step alone: train_on_batch on one fixed in-memory batch."""
    import numpy as np

    from catdog.backend import tf

    rng = np.random.default_rng(0)
    x = tf.constant(rng.random((BATCH, SIZE, SIZE, 3), dtype=np.float32))
    y = tf.constant(rng.integers(0, 2, (BATCH, 1)).astype(np.float32))
    model = _catdog_model(mixed)
    ends = []
    for _ in range(WARMUP + steps + 1):
        model.train_on_batch(x, y)
        ends.append(time.perf_counter())
    return _rate(ends, steps)


VARIANTS = {
    "seed pipeline (Keras 2 ImageDataGenerator)": ("seed", False),
    "catdog pipeline": ("catdog", False),
    "pure compute (train_on_batch, fixed batch)": ("compute", False),
    "catdog pipeline, bfloat16": ("catdog", True),
    "pure compute, bfloat16": ("compute", True),
}


def child(kind: str, mixed: bool, steps: int) -> float:
    """Run one measurement (in this process)."""
    if kind == "seed":
        return run_seed(steps)
    if kind == "catdog":
        return run_catdog(steps, mixed)
    return run_compute(steps, mixed)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--child", nargs=2, metavar=("KIND", "MIXED"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        kind, mixed = args.child[0], args.child[1] == "1"
        print(json.dumps({"rate": child(kind, mixed, args.steps)}))
        return 0
    if not TRAIN.is_dir():
        print(f"the real photos are not here: {TRAIN} does not exist", file=sys.stderr)
        return 2
    from reproduce_seed import machine  # same folder

    rows = []
    for name, (kind, mixed) in VARIANTS.items():
        rates = []
        for _ in range(args.repeats):
            out = subprocess.run(
                [sys.executable, __file__, "--steps", str(args.steps), "--child", kind,
                 "1" if mixed else "0"],
                capture_output=True, text=True, check=True, env={**os.environ},
            )  # fmt: skip
            rates.append(json.loads(out.stdout.strip().splitlines()[-1])["rate"])
        rows.append({"pipeline": name, "images_per_second": round(statistics.median(rates), 1),
                     "runs": [round(r, 1) for r in rates]})  # fmt: skip
        print(
            f"{name:45} {rows[-1]['images_per_second']:7.1f} img/s  {rows[-1]['runs']}", flush=True
        )
    by = {row["pipeline"]: row["images_per_second"] for row in rows}
    seed = by["seed pipeline (Keras 2 ImageDataGenerator)"]
    compute = by["pure compute (train_on_batch, fixed batch)"]
    catdog = by["catdog pipeline"]
    ratios = {
        "catdog / seed pipeline": round(catdog / seed, 2),
        "catdog overhead over pure compute (%)": round(100 * (compute / catdog - 1), 1),
        "bfloat16 catdog / seed pipeline": round(by["catdog pipeline, bfloat16"] / seed, 2),
    }
    info = machine()
    RESULTS.mkdir(parents=True, exist_ok=True)
    payload = {"rows": rows, "ratios": ratios, "machine": info, "steps": args.steps,
               "repeats": args.repeats, "batch": BATCH, "image_size": SIZE}  # fmt: skip
    (RESULTS / "throughput.json").write_text(json.dumps(payload, indent=2) + "\n")
    lines = ["| pipeline | images/s (median) | runs |", "|---|---|---|"]
    lines += [f"| {r['pipeline']} | {r['images_per_second']} | {r['runs']} |" for r in rows]
    lines += ["", *[f"- {k}: {v}" for k, v in ratios.items()], "",
              f"Machine: {info['cpu']}, {info['cores']} cores; TensorFlow {info['tensorflow']}, "
              f"Keras {info['keras']}; batch {BATCH}, {SIZE}×{SIZE}."]  # fmt: skip
    (RESULTS / "throughput.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
