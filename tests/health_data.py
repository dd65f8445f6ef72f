"""A generated dataset with planted problems, for the data audit's tests.

Every picture is a unique smooth random landscape (so distinct pictures are not alike) with the
class written in its texture and tint (class 0 horizontal lines, reddish; class 1 vertical
lines, bluish), so a quick model learns the classes. Planted: near-duplicate copies across
splits (resized, re-compressed, cropped by up to 10%, mirrored), flipped training labels, and
odd images (tiny, stretched, blank, a line drawing).
"""

from __future__ import annotations

import io
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageOps

CLASSES = ("cats", "dogs")
SPLITS = ("train", "validation", "test")


def picture(label: int, rng: np.random.Generator, size: int = 96) -> Image.Image:
    """One unique picture of class ``label``."""
    coarse = rng.uniform(0, 255, (5, 5, 3)).astype(np.uint8)
    base = np.asarray(Image.fromarray(coarse).resize((size, size), Image.Resampling.BICUBIC))
    lines = ((np.arange(size) // 3) % 2 * 50 - 25)[:, None]
    texture = lines if label == 0 else lines.T
    tint = np.array([30, 0, -30]) if label == 0 else np.array([-30, 0, 30])
    pixels = base.astype(int) + texture[..., None] + tint
    return Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8))


def near_copy(image: Image.Image, rng: np.random.Generator) -> Image.Image:
    """Resized, cropped by up to 10% a side, mirrored (half the time) and re-compressed."""
    w, h = image.size
    cw, ch = int(w * rng.uniform(0.9, 1.0)), int(h * rng.uniform(0.9, 1.0))
    x, y = int(rng.integers(0, w - cw + 1)), int(rng.integers(0, h - ch + 1))
    copy = image.crop((x, y, x + cw, y + ch))
    scale = rng.uniform(0.8, 1.4)  # never under 64 px (that would be "tiny")
    copy = copy.resize((int(cw * scale), int(ch * scale)), Image.Resampling.BICUBIC)
    if rng.random() < 0.5:
        copy = ImageOps.mirror(copy)
    buffer = io.BytesIO()
    copy.save(buffer, "JPEG", quality=int(rng.integers(50, 80)))
    return Image.open(io.BytesIO(buffer.getvalue())).convert("RGB")


def odd_pictures(rng: np.random.Generator) -> dict[str, Image.Image]:
    """A tiny, a stretched, a blank and a drawn picture."""
    blank = np.full((80, 80, 3), 128) + rng.integers(-2, 3, (80, 80, 3))
    drawing = Image.new("RGB", (80, 80), "white")
    draw = ImageDraw.Draw(drawing)
    draw.ellipse((15, 15, 65, 65), outline="black", width=3)
    draw.line((25, 30, 40, 10, 50, 30), fill="black", width=3)
    return {
        "tiny": picture(0, rng, size=24),
        "stretched": picture(0, rng).resize((240, 60)),
        "blank": Image.fromarray(blank.astype(np.uint8)),
        "drawing": drawing,
    }


@dataclass
class Planted:
    """What was planted where (images named ``split/class/file``)."""

    root: Path
    pairs: set[frozenset[str]] = field(default_factory=set)
    flipped: set[str] = field(default_factory=set)
    odd: dict[str, str] = field(default_factory=dict)  # file: kind


def planted_dataset(
    root: Path,
    counts: tuple[int, int, int] = (30, 8, 8),
    copies: int = 6,
    flips: int = 4,
    seed: int = 0,
) -> Planted:
    """Write a dataset with ``counts`` images per class and split, then plant ``copies``
    near-duplicates of training images into validation and test, flip ``flips`` training
    labels (moving the files to the other class) and add four odd images to training."""
    rng = np.random.default_rng(seed)
    planted = Planted(root)
    for split, n in zip(SPLITS, counts, strict=True):
        for label, cls in enumerate(CLASSES):
            (root / split / cls).mkdir(parents=True, exist_ok=True)
            for i in range(n):
                picture(label, rng).save(root / split / cls / f"{split}{i}.jpg", quality=92)
    for k in range(copies):
        cls = CLASSES[k % 2]
        source = f"train/{cls}/train{k}.jpg"
        split = ("validation", "test")[k % 2]
        copy = f"{split}/{cls}/copy{k}.jpg"
        near_copy(Image.open(root / source).convert("RGB"), rng).save(root / copy, quality=90)
        planted.pairs.add(frozenset((source, copy)))
    for k in range(flips):  # the last images of each class, never a copied one
        cls, other = CLASSES[k % 2], CLASSES[1 - k % 2]
        name = f"train{counts[0] - 1 - k // 2}.jpg"
        (root / "train" / cls / name).rename(root / "train" / other / f"flipped-{name}")
        planted.flipped.add(f"train/{other}/flipped-{name}")
    for kind, image in odd_pictures(rng).items():
        image.save(root / "train" / "cats" / f"odd-{kind}.png")
        planted.odd[f"train/cats/odd-{kind}.png"] = kind
    return planted
