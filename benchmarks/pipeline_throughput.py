"""What does the input pipeline cost, with and without the seed's augmentation?

Run: python benchmarks/pipeline_throughput.py [--images 2000] [--epochs 2] [--augmentation X]

Loads ~2000 photos (../shared/data/cats_vs_dogs_small/train if present, else random pixels),
150 px, batch 32, then times whole epochs of the pipeline alone (no model) for:

- no augmentation (``make_dataset(augment=None)``);
- the seed's augmentation as catdog applies it (``make_dataset(augment=AugmentConfig())``):
  one warp per image and the rescaling, XLA-compiled in one pass (``--augmentation
  catdog-net``: catdog-net's stronger settings, with brightness, contrast and cutout);
- the same fused warp with TensorFlow's stock ``ImageProjectiveTransformV3`` op;
- Keras 3's stock layers chained (``build_augmenter``), one warp per layer.

The last two are mapped onto the un-augmented pipeline (an extra ×255 and ÷255, ~1 ms a batch).
CPU time is what matters on a 2-core machine (the pipeline steals it from the model); the
"of model" column divides the extra CPU per image by the seed convnet's ~15 CPU-ms per image
(131 images/s on 2 cores). Finally it checks whether each way replays the same augmentation
for the same seed under tf.data's parallel map.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
from common import build_augmenter  # noqa: E402

from catdog.train.augment import AugmentConfig  # noqa: E402
from catdog.train.pipeline import LoadedSplit, load_images, make_dataset  # noqa: E402
from catdog.train.presets import STRONG_AUGMENTATION  # noqa: E402
from catdog.train.warp import augment_images  # noqa: E402

TRAIN = ROOT.parent / "shared" / "data" / "cats_vs_dogs_small" / "train"
MODEL_CPU_MS_PER_IMAGE = 2 * 1000 / 131  # seed convnet: ~131 images/s using both cores
BATCH = 32


def resident_mb() -> float:
    """Resident memory of this process in MB (Linux; 0 elsewhere)."""
    try:
        pages = int(Path("/proc/self/statm").read_text().split()[1])
        return pages * os.sysconf("SC_PAGE_SIZE") / 1e6
    except (OSError, ValueError):
        return 0.0


def load(count: int, size: int) -> tuple[LoadedSplit, str]:
    """The first ``count`` training photos (half cats, half dogs), or random pixels."""
    if TRAIN.is_dir():
        per_class = count // 2
        paths, labels = [], []
        for label, name in enumerate(("cats", "dogs")):
            files = sorted((TRAIN / name).glob("*.jpg"))[:per_class]
            paths += files
            labels += [label] * len(files)
        before, start = resident_mb(), time.perf_counter()
        loaded = load_images(paths, labels, ("cats", "dogs"), size)
        seconds, grown = time.perf_counter() - start, resident_mb() - before
        return loaded, (
            f"{len(loaded)} photos from {TRAIN}: decoded + resized in {seconds:.1f} s "
            f"({len(loaded) / seconds:.0f} images/s), {loaded.images.nbytes / 1e6:.0f} "
            f"MB of pixels, resident memory +{grown:.0f} MB"
        )
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (count, size, size, 3), dtype=np.uint8)
    labels = (np.arange(count) % 2).astype(np.int32)
    return (
        LoadedSplit(images, labels, [Path(f"{i}.jpg") for i in range(count)], ("cats", "dogs")),
        f"{count} random-pixel images (no photos at {TRAIN})",
    )


def time_epochs(dataset: tf.data.Dataset, epochs: int) -> tuple[float, float, int]:
    """One warm-up epoch, then (wall seconds, CPU seconds, images) over ``epochs`` epochs."""
    for _ in dataset:
        pass
    wall, cpu, seen = time.perf_counter(), time.process_time(), 0
    for _ in range(epochs):
        for _, labels in dataset:
            seen += int(labels.shape[0])
    return time.perf_counter() - wall, time.process_time() - cpu, seen


def remapped(base: tf.data.Dataset, augment: Callable) -> tf.data.Dataset:
    """Apply ``augment`` (batch of 0–255 floats → same) to an un-augmented [0, 1] pipeline."""
    seeds = tf.data.Dataset.random(seed=1, rerandomize_each_iteration=True).batch(2)

    def apply(batch: tuple[tf.Tensor, tf.Tensor], seed: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
        images, labels = batch
        return augment(images * 255.0, seed) / 255.0, labels

    return tf.data.Dataset.zip(base, seeds).map(apply, num_parallel_calls=tf.data.AUTOTUNE)


def pipelines(loaded: LoadedSplit, config: AugmentConfig) -> dict[str, tf.data.Dataset]:
    def plain() -> tf.data.Dataset:
        return make_dataset(loaded, batch_size=BATCH, shuffle=True, augment=None)

    layers = build_augmenter(config, seed=0)
    return {
        "no augmentation": plain(),
        "fused XLA pass (catdog)": make_dataset(
            loaded, batch_size=BATCH, shuffle=True, augment=config
        ),
        "fused, stock-op warp, no XLA": remapped(
            plain(), lambda x, s: augment_images(x, config, s, xla=False)
        ),
        "Keras layers chained": remapped(plain(), lambda x, s: layers(x, training=True)),
    }


def replays_same_seed() -> dict[str, bool]:
    """Does each way give the same first epoch twice for the same seed (parallel map)?"""
    image = np.random.default_rng(2).integers(0, 256, (32, 32, 3), dtype=np.uint8)
    loaded = LoadedSplit(np.stack([image] * 64), np.zeros(64, np.int32), [], ("cats", "dogs"))

    def epoch(make: Callable[[], tf.data.Dataset]) -> np.ndarray:
        return np.concatenate([x for x, _ in make().as_numpy_iterator()])

    def keras_way() -> tf.data.Dataset:
        plain = make_dataset(loaded, batch_size=8, shuffle=False, augment=None)
        layers = build_augmenter(AugmentConfig(), seed=0)
        return remapped(plain, lambda x, s: layers(x, training=True))

    def catdog_way() -> tf.data.Dataset:
        return make_dataset(loaded, batch_size=8, shuffle=False, augment=AugmentConfig())

    return {
        name: bool(np.allclose(epoch(way), epoch(way), atol=1e-5))
        for name, way in [
            ("catdog (stateless per-batch seed)", catdog_way),
            ("Keras layers (SeedGenerator state)", keras_way),
        ]
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=2000, help="images per epoch")
    parser.add_argument("--epochs", type=int, default=2, help="timed epochs per pipeline")
    parser.add_argument("--size", type=int, default=150, help="image side in pixels")
    parser.add_argument(
        "--augmentation",
        choices=["seed", "catdog-net"],
        default="seed",
        help="the seed's settings or catdog-net's (brightness, contrast, cutout too)",
    )
    args = parser.parse_args()
    config = AugmentConfig() if args.augmentation == "seed" else STRONG_AUGMENTATION

    loaded, source = load(args.images, args.size)
    print(source)
    print(
        f"batch {BATCH}, {args.size} px, {args.epochs} timed epochs after one warm-up, "
        f"{os.cpu_count()} CPUs, {args.augmentation} augmentation: {config.describe()}\n"
    )
    header = (
        f"{'pipeline':36s} {'images/s':>9s} {'CPU ms/batch':>13s} "
        f"{'extra CPU':>10s} {'of model':>9s}"
    )
    print(header)
    print("-" * len(header))
    base_cpu = None
    for name, dataset in pipelines(loaded, config).items():
        wall, cpu, seen = time_epochs(dataset, args.epochs)
        cpu_batch = cpu / seen * BATCH * 1000
        base_cpu = cpu_batch if base_cpu is None else base_cpu
        extra = cpu_batch - base_cpu
        share = extra / BATCH / MODEL_CPU_MS_PER_IMAGE * 100
        print(f"{name:36s} {seen / wall:9.0f} {cpu_batch:13.1f} {extra:10.1f} {share:8.1f}%")
    print()
    for name, same in replays_same_seed().items():
        print(f"same seed replays the same augmented epoch — {name}: {same}")


if __name__ == "__main__":
    main()
