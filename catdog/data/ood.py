"""Pictures that are neither class: an out-of-distribution set drawn with Pillow, offline.

A classifier of cats and dogs calls everything a cat or a dog; to learn and to measure when it
should say "not sure" instead, catdog draws pictures no photo of an animal looks like: noise,
plain colours, gradients, geometric shapes and scenes, text, and cartoon cars and houses.
Nothing is downloaded and nothing is shipped: :func:`ood_images` draws them, and the same
``seed`` always gives the same pictures. The run's "not sure" rule picks its score on seed 0;
``benchmarks/trust.py`` measures on seed 1.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from PIL import Image, ImageDraw, ImageFilter, ImageFont

Rng = np.random.Generator


def _colour(rng: Rng) -> tuple[int, int, int]:
    return tuple(int(v) for v in rng.integers(0, 256, 3))  # type: ignore[return-value]


def _noise(rng: Rng, size: int) -> Image.Image:
    """Uniform, Gaussian or blurred (cloudy) colour noise."""
    kind = int(rng.integers(3))
    if kind == 0:
        pixels = rng.integers(0, 256, (size, size, 3))
    else:
        pixels = rng.normal(128, 50 + 30 * rng.random(), (size, size, 3))
    image = Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8), "RGB")
    return image.filter(ImageFilter.GaussianBlur(size / 16)) if kind == 2 else image


def _plain(rng: Rng, size: int) -> Image.Image:
    """One colour, with a little sensor-like noise."""
    pixels = np.asarray(_colour(rng), float) + rng.normal(0, 3, (size, size, 3))
    return Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8), "RGB")


def _gradient(rng: Rng, size: int) -> Image.Image:
    """A linear or radial blend between two colours."""
    a, b = np.asarray(_colour(rng), float), np.asarray(_colour(rng), float)
    yy, xx = np.mgrid[0:size, 0:size] / max(size - 1, 1)
    if rng.random() < 0.5:
        angle = rng.uniform(0, 2 * np.pi)
        t = (np.cos(angle) * (xx - 0.5) + np.sin(angle) * (yy - 0.5)) + 0.5
    else:
        cx, cy = rng.uniform(0.2, 0.8, 2)
        t = np.hypot(xx - cx, yy - cy) / 0.8
    t = np.clip(t, 0, 1)[..., None]
    return Image.fromarray((a * (1 - t) + b * t).astype(np.uint8), "RGB")


def _shapes(rng: Rng, size: int) -> Image.Image:
    """Circles, rectangles and polygons of many colours on a plain background."""
    image = Image.new("RGB", (size, size), _colour(rng))
    draw = ImageDraw.Draw(image)
    for _ in range(int(rng.integers(3, 9))):
        x0, y0 = rng.uniform(-0.1, 0.9, 2) * size
        w, h = rng.uniform(0.1, 0.5, 2) * size
        kind = int(rng.integers(3))
        if kind == 0:
            draw.ellipse((x0, y0, x0 + w, y0 + h), fill=_colour(rng))
        elif kind == 1:
            draw.rectangle((x0, y0, x0 + w, y0 + h), fill=_colour(rng))
        else:
            points = [tuple(p) for p in rng.uniform(0, 1, (int(rng.integers(3, 7)), 2)) * size]
            draw.polygon(points, fill=_colour(rng))
    return image


def _text(rng: Rng, size: int) -> Image.Image:
    """Lines of random letters and digits, as on a page or a sign."""
    image = Image.new("RGB", (size, size), _colour(rng))
    draw = ImageDraw.Draw(image)
    letters = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
    font = ImageFont.load_default(size=max(8, int(size * rng.uniform(0.08, 0.2))))
    ink = _colour(rng)
    y = rng.uniform(0, 0.1) * size
    while y < size:
        line = "".join(rng.choice(list(letters), int(rng.integers(4, 14))))
        draw.text((rng.uniform(-0.1, 0.1) * size, y), line, fill=ink, font=font)
        y += font.size * rng.uniform(1.1, 1.6)
    return image


def _ground(rng: Rng, size: int) -> tuple[Image.Image, ImageDraw.ImageDraw, float]:
    """A sky above a ground line: a scene's background, and the ground's height."""
    image = Image.new("RGB", (size, size), _colour(rng))
    draw = ImageDraw.Draw(image)
    ground = size * rng.uniform(0.65, 0.85)
    draw.rectangle((0, ground, size, size), fill=_colour(rng))
    return image, draw, ground


def _car(rng: Rng, size: int) -> Image.Image:
    """A cartoon car: a body, a cabin with windows, two wheels."""
    image, draw, ground = _ground(rng, size)
    w = size * rng.uniform(0.5, 0.85)
    x0 = rng.uniform(0, size - w)
    h = w * rng.uniform(0.22, 0.32)
    top = ground - h - w * 0.08
    body = _colour(rng)
    draw.rounded_rectangle((x0, top, x0 + w, top + h), radius=h * 0.3, fill=body)
    cab = (x0 + w * 0.22, top - h * 0.8, x0 + w * 0.72, top + 2)
    draw.rounded_rectangle(cab, radius=h * 0.25, fill=body)
    glass = (160, 200, 230)
    draw.rectangle((cab[0] + w * 0.04, cab[1] + h * 0.15, cab[0] + w * 0.23, top), fill=glass)
    draw.rectangle((cab[0] + w * 0.27, cab[1] + h * 0.15, cab[2] - w * 0.04, top), fill=glass)
    r = w * 0.1
    for cx in (x0 + w * 0.22, x0 + w * 0.78):
        draw.ellipse((cx - r, top + h - r, cx + r, top + h + r), fill=(30, 30, 30))
        draw.ellipse((cx - r / 2, top + h - r / 2, cx + r / 2, top + h + r / 2), fill=(170,) * 3)
    return image


def _house(rng: Rng, size: int) -> Image.Image:
    """A cartoon house: walls, a roof, a door and windows."""
    image, draw, ground = _ground(rng, size)
    w = size * rng.uniform(0.4, 0.7)
    x0 = rng.uniform(0, size - w)
    h = w * rng.uniform(0.6, 0.9)
    top = ground - h
    draw.rectangle((x0, top, x0 + w, ground), fill=_colour(rng))
    peak = top - h * rng.uniform(0.3, 0.6)
    draw.polygon(
        [(x0 - w * 0.08, top), (x0 + w / 2, peak), (x0 + w * 1.08, top)], fill=_colour(rng)
    )
    door = _colour(rng)
    draw.rectangle((x0 + w * 0.42, ground - h * 0.45, x0 + w * 0.58, ground), fill=door)
    for wx in (x0 + w * 0.12, x0 + w * 0.68):
        draw.rectangle((wx, top + h * 0.2, wx + w * 0.2, top + h * 0.45), fill=(170, 210, 240))
    return image


def _scene(rng: Rng, size: int) -> Image.Image:
    """A landscape: sky, sun, hills and trees."""
    image, draw, ground = _ground(rng, size)
    r = size * rng.uniform(0.06, 0.12)
    sx, sy = rng.uniform(0.1, 0.9) * size, rng.uniform(0.1, 0.4) * size
    draw.ellipse((sx - r, sy - r, sx + r, sy + r), fill=(250, 220, 60))
    for _ in range(int(rng.integers(1, 4))):
        cx, rx = rng.uniform(0, 1) * size, rng.uniform(0.2, 0.5) * size
        draw.ellipse((cx - rx, ground - rx * 0.5, cx + rx, ground + rx * 0.5), fill=_colour(rng))
    for _ in range(int(rng.integers(1, 5))):
        tx, th = rng.uniform(0, 1) * size, rng.uniform(0.15, 0.35) * size
        draw.rectangle(
            (tx - th * 0.06, ground - th * 0.4, tx + th * 0.06, ground), fill=(100, 70, 40)
        )
        draw.ellipse((tx - th * 0.3, ground - th, tx + th * 0.3, ground - th * 0.35),
                     fill=(40, int(rng.integers(100, 180)), 50))  # fmt: skip
    return image


# Every kind of picture, in the order ood_images() takes turns through them.
KINDS: dict[str, Callable[[Rng, int], Image.Image]] = {
    "noise": _noise, "plain": _plain, "gradient": _gradient, "shapes": _shapes,
    "text": _text, "car": _car, "house": _house, "scene": _scene,
}  # fmt: skip


def ood_images(count: int, size: int, seed: int = 0) -> list[tuple[str, Image.Image]]:
    """``count`` pictures of ``size`` × ``size`` pixels that are neither class, as
    ``(kind, RGB image)``: each kind of :data:`KINDS` in turn, drawn from ``seed``."""
    if count < 0 or size < 8:
        raise ValueError(f"need count ≥ 0 and size ≥ 8 pixels, got {count} and {size}")
    rng = np.random.default_rng(seed)
    kinds = list(KINDS)
    return [(kinds[i % len(kinds)], KINDS[kinds[i % len(kinds)]](rng, size)) for i in range(count)]
