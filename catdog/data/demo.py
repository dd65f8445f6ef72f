"""The built-in demo dataset: procedurally drawn cartoon cats and dogs, made offline in seconds.

A fresh install has no photos, so the dashboard's default dataset is drawn here: cartoon heads
on cluttered backgrounds (:func:`catdog.data.cartoon.draw_animal`), in the standard layout
``out/{train,validation,test}/{cats,dogs}/cat.N.jpg``. It is meant to tell the seed's story in
miniature (a small convnet overfits it, augmentation helps), so it must be learnable but not
trivial: the class shows only in the animals' face shapes (see :mod:`catdog.data.cartoon`), and
everything else, image size included, is drawn the same way for both classes.

Every image is drawn from its own generator seeded by ``(seed, split, class, index)``, so the
same seed gives byte-identical files whatever the counts. ``benchmarks/demo_learnability.py``
checks the story: the seed's convnet (96 px, 25 epochs) reaches ~100% training accuracy but
~77% validation without augmentation, ~85% with it, while logistic regressions on mean colour,
image size or a 4×4 thumbnail stay at chance.
"""

from __future__ import annotations

import io
import json
import os
import shutil
import tempfile
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

from catdog.data.cartoon import KINDS, draw_animal
from catdog.data.datasets import MANIFEST_NAME, SPLITS, remember_sizes
from catdog.data.paths import demo_dataset_dir
from catdog.progress import ProgressFn, report

CLASSES = ("cats", "dogs")  # class folders; KINDS gives each one's draw_animal() kind and prefix

# Images per class for (train, validation, test): 1,200 images, drawn in ~5 s. The dashboard's
# seed-baseline (the seed's convnet at 150×150) trains at ~100 images/s on 2 cores, so 600
# training images make an epoch of ~6 s plus ~2 s of validation: a 10-epoch run takes about a
# minute and a half. And 600 is few enough for the seed's lesson to show: without
# augmentation the model memorises the training set and validation stalls.
DEFAULT_COUNTS = (300, 150, 150)

# Training settings that let the seed's story play out on the demo data in minutes on 2 cores.
# The seed's own (150 px, learning rate 1e-4, 30 one-pass epochs) barely get going on 600
# cartoons. Measured with these (seed 0, `python -m catdog train --data demo --image-size 96
# --learning-rate 1e-3 --batch-size 20 --steps-per-epoch 0 ...`, 2 shared cores):
# seed-baseline, 25 epochs (~3 min): 100% training, 80.7% best validation, 73.7% test accuracy,
# validation loss rising from epoch ~12; seed-dropout with the seed's augmentation, 60 epochs
# (~6 min): 84.7% training, 90.0% best validation, 83.0% test accuracy.
SUGGESTED_TRAINING = {
    "image_size": 96,
    "learning_rate": 1e-3,
    "batch_size": 20,
    "steps_per_epoch": 0,
}
SUGGESTED_EPOCHS = {"seed-baseline": 25, "seed-dropout": 60}

# Stored image sides, in pixels (width and height drawn independently, so aspects vary too).
MIN_SIDE, MAX_SIDE = 120, 260

# Bump when the drawing (catdog.data.cartoon) changes, so a dataset on disk can tell which
# generator made it.
GENERATOR_VERSION = 1


def _file_names(counts: tuple[int, int, int]) -> list[tuple[int, str, int]]:
    """``(split index, split, image number)`` for every image, numbered across splits (Kaggle)."""
    names, start = [], 0
    for k, (split, n) in enumerate(zip(SPLITS, counts, strict=True)):
        names += [(k, split, start + i) for i in range(n)]
        start += n
    return names


def generate_demo_dataset(
    out: str | Path,
    *,
    counts: tuple[int, int, int] = DEFAULT_COUNTS,
    seed: int = 0,
    progress: ProgressFn | None = None,
) -> Path:
    """Draw the demo dataset into ``out/{train,validation,test}/{cats,dogs}/``.

    Args:
        out: the dataset folder (created if missing; files of the same names are replaced).
        counts: images per class for (train, validation, test).
        seed: the same seed always gives byte-identical images.
        progress: called as ``progress(done, total, message)`` while drawing.

    Returns:
        The dataset folder, which also holds a ``catdog-dataset.json`` manifest.
    """
    counts = tuple(int(n) for n in counts)
    if len(counts) != 3 or min(counts) < 0:
        raise ValueError(
            f"counts must be 3 numbers ≥ 0 for (train, validation, test), got {counts}"
        )
    out = Path(out)
    jobs = _file_names(counts)
    total = len(jobs) * len(CLASSES)
    done = 0
    for split_index, split, number in jobs:
        for class_index, (folder, kind) in enumerate(zip(CLASSES, KINDS, strict=True)):
            rng = np.random.default_rng([seed, split_index, class_index, number])
            w, h = (int(v) for v in rng.integers(MIN_SIDE, MAX_SIDE + 1, size=2))
            image = draw_animal(kind, rng, (w, h))
            target = out / split / folder
            target.mkdir(parents=True, exist_ok=True)
            buffer = io.BytesIO()
            image.save(buffer, "JPEG", quality=int(rng.integers(80, 96)))
            (target / f"{kind}.{number}.jpg").write_bytes(buffer.getvalue())
            done += 1
            if done % 20 == 0 or done == total:
                report(progress, done, total, f"drawing {split}/{folder}")
    manifest = {
        "source": "demo",
        "seed": seed,
        "counts": dict(zip(SPLITS, counts, strict=True)),
        "classes": list(CLASSES),
        "generator_version": GENERATOR_VERSION,
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
    }
    out.mkdir(parents=True, exist_ok=True)
    (out / MANIFEST_NAME).write_text(json.dumps(manifest, indent=2) + "\n")
    return out


def ensure_demo_dataset(
    *,
    counts: tuple[int, int, int] = DEFAULT_COUNTS,
    seed: int = 0,
    progress: ProgressFn | None = None,
) -> Path:
    """Return the demo dataset's folder in the data home, generating it first if missing.

    The dataset is drawn in a temporary sibling folder and renamed into place, so a half-made
    dataset is never visible, and two processes calling this at once both end up with the
    same complete dataset (the second rename loses and its copy is discarded).

    Args:
        counts: images per class for (train, validation, test), used only when generating.
        seed: the generator's seed, used only when generating.
        progress: called as ``progress(done, total, message)`` while drawing.

    Returns:
        The path of ``demo_dataset_dir()``.
    """
    final = demo_dataset_dir()
    if (final / MANIFEST_NAME).is_file():
        return final
    if final.exists():
        raise FileExistsError(
            f"{final} exists but is not the demo dataset (it has no {MANIFEST_NAME}); "
            "move or delete it and the demo dataset will be generated there"
        )
    temp = Path(tempfile.mkdtemp(prefix=f".{final.name}-", dir=final.parent))
    temp.chmod(0o755)  # mkdtemp makes it private; the dataset is an ordinary folder
    try:
        generate_demo_dataset(temp, counts=counts, seed=seed, progress=progress)
        try:
            os.rename(temp, final)
        except OSError:
            if not (final / MANIFEST_NAME).is_file():  # not a race we lost: a real failure
                raise
    finally:
        shutil.rmtree(temp, ignore_errors=True)
    remember_sizes(final)
    return final
