"""How fast is the augmentation preview behind the dashboard's sliders?

Run: python benchmarks/augment_preview.py [--repeats 40]

Times ``catdog.train.preview.preview`` (NumPy: 9 variants of one 150×150 image) the way a
slider drives it: every call gets a different config. Prints its import, the first call and
the median/90th percentile of warm calls; then the same for training's TensorFlow pass
(``catdog.train.warp.augment_images`` on 9 copies of the image, what the dashboard used
before), after importing TensorFlow (timed apart). Target: a first visit of the page under
1.5 s, a slider move well under a second, on CPU.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402

from catdog.data.model_input import load_for_model  # noqa: E402
from catdog.train.augment import AugmentConfig  # noqa: E402

PHOTO = ROOT.parent / "shared" / "data" / "cats_vs_dogs_small" / "train" / "cats" / "cat.0.jpg"


def slider_configs(count: int) -> list[AugmentConfig]:
    """Configs as a user dragging sliders would produce them, one setting moving at a time."""
    rng = np.random.default_rng(0)
    configs, config = [], AugmentConfig()
    for i in range(count):
        move = i % 5
        changes = [
            {"rotation_range": float(rng.uniform(0, 90))},
            {"zoom_range": float(rng.uniform(0, 0.5))},
            {"width_shift_range": float(rng.uniform(0, 0.4))},
            {"brightness_range": float(rng.uniform(0, 0.5))},
            {"horizontal_flip": bool(rng.random() < 0.5)},
        ][move]
        config = AugmentConfig.from_dict({**config.to_dict(), **changes})
        configs.append(config)
    return configs


def tensorflow_preview() -> Callable[..., np.ndarray]:
    """Training's stateless draws and TensorFlow pass on ``n`` copies of one image."""
    from catdog.model.backend import tf
    from catdog.train.warp import augment_images

    def run(image: np.ndarray, config: AugmentConfig, n: int = 9, seed: int = 0) -> np.ndarray:
        batch = tf.repeat(tf.cast(image[None], tf.float32), n, axis=0)
        out = augment_images(batch, config, tf.constant([seed, 0], tf.int64))
        return tf.cast(tf.round(out), tf.uint8).numpy()

    return run


def timed(
    name: str, load: Callable[[], Callable[..., np.ndarray]], image: np.ndarray, repeats: int
) -> None:
    """Import (``load``), first call and warm slider moves of one preview, printed in ms."""
    start = time.perf_counter()
    preview = load()
    imported = time.perf_counter() - start
    start = time.perf_counter()
    preview(image, AugmentConfig(), n=9, seed=0)
    cold = time.perf_counter() - start
    preview(image, AugmentConfig(), n=9, seed=1)  # warm-up done

    times = []
    for seed, config in enumerate(slider_configs(repeats)):
        start = time.perf_counter()
        out = preview(image, config, n=9, seed=seed)
        times.append(time.perf_counter() - start)
    assert out.shape == (9, *image.shape) and out.dtype == np.uint8
    times_ms = sorted(t * 1000 for t in times)
    print(f"{name}:")
    print(f"  import (once):                  {imported * 1000:8.1f} ms")
    print(f"  first call:                     {cold * 1000:8.1f} ms")
    print(f"  warm median:                    {statistics.median(times_ms):8.1f} ms")
    print(f"  warm 90th percentile:           {times_ms[int(0.9 * (len(times_ms) - 1))]:8.1f} ms")
    print(f"  warm slowest:                   {times_ms[-1]:8.1f} ms")


def numpy_preview() -> Callable[..., np.ndarray]:
    """The dashboard's preview (its module's import is what is timed)."""
    from catdog.train.preview import preview

    return preview


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=40, help="warm calls to time")
    args = parser.parse_args()
    if PHOTO.is_file():
        image, source = load_for_model(PHOTO, 150), PHOTO.name
    else:
        image = np.random.default_rng(1).integers(0, 256, (150, 150, 3), dtype=np.uint8)
        source = "random pixels"
    print(f"9 variants of a 150×150 image ({source}), {args.repeats} slider moves")
    timed("NumPy preview (the dashboard's)", numpy_preview, image, args.repeats)
    timed("TensorFlow (training's pass; import = TensorFlow's)", tensorflow_preview, image,
          args.repeats)  # fmt: skip


if __name__ == "__main__":
    main()
