"""One cartoon cat or dog on a cluttered background, drawn with Pillow.

:func:`draw_animal` draws the pictures of the built-in demo dataset (:mod:`catdog.data.demo`). They
must be learnable but not trivial (a small convnet overfits them, augmentation helps):

- Everything that is not the animal's shape — fur colour, background, clutter, head size,
  position, tilt, occlusion, noise — is drawn from the *same* distributions for both classes,
  so no colour, size or position statistic gives the label away.
- The class lives only in shape traits (ears, snout, nose, whiskers, pupils, head shape), and
  each trait is noisy on its own: some cats have round ears or a snout, some dogs have upright
  ears or no snout. :func:`_sample_traits` is the only code that looks at the class.

Everything about a picture comes from the random generator passed in: the same generator state
gives the same picture.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

KINDS = ("cat", "dog")  # the animals draw_animal() can draw

_SS = 2  # the animal is drawn at 2× and reduced, for smooth (antialiased) edges

# Fur colours shared by both classes: orange, grey, black, white, brown, cream, tan, golden.
_FUR = np.array(
    [
        (214, 132, 52), (128, 128, 134), (42, 40, 44), (236, 232, 226),
        (112, 72, 42), (232, 204, 158), (186, 146, 100), (216, 172, 92),
    ],
    dtype=float,
)  # fmt: skip
_IRIS = np.array([(120, 180, 60), (220, 190, 50), (200, 130, 40), (90, 140, 200), (90, 55, 30)])


# How often each face trait appears in (cats, dogs). No trait is certain, so a model has to
# combine several; ear styles are "pointed" (triangles), "round" (teddy-bear), "floppy"
# (hanging down the cheeks) and "folded" (upright with the tip flopped forward).
_EARS = ("pointed", "round", "floppy", "folded")
_EAR_ODDS = {"cat": (0.84, 0.10, 0.03, 0.03), "dog": (0.10, 0.04, 0.76, 0.10)}
_TRAIT_ODDS = {
    "snout": (0.15, 0.80),  # a protruding light muzzle below the face
    "big_nose": (0.12, 0.82),  # a large dark oval nose instead of a small triangle
    "whiskers": (0.80, 0.18),
    "slit_pupils": (0.60, 0.08),  # almond eyes with vertical slits instead of round eyes
    "tongue": (0.04, 0.30),
}
_ASPECT = {"cat": (1.0, 1.25), "dog": (0.85, 1.12)}  # face width / height, overlapping

# Nuisance, the same for both classes.
_HEAD_RADIUS = (0.26, 0.4)  # half the face's height, as a fraction of the shorter side
_CLUTTER = (1, 6)  # how many random shapes litter the background
_BACKGROUND_BLUR = (1.0, 3.0)  # Gaussian radius: a slightly out-of-focus background
_TILT = 25  # head tilt, in degrees either way


@dataclass(frozen=True)
class _Traits:
    """The shape of one animal's face: the only place the class is visible."""

    ears: str
    snout: bool
    big_nose: bool
    whiskers: bool
    slit_pupils: bool
    tongue: bool
    aspect: float


def _sample_traits(kind: str, rng: np.random.Generator) -> _Traits:
    """Draw the face's shape traits for ``kind``; each one alone is only a noisy hint."""
    column = KINDS.index(kind)
    ears = _EARS[rng.choice(len(_EARS), p=_EAR_ODDS[kind])]
    flags = {name: bool(rng.random() < odds[column]) for name, odds in _TRAIT_ODDS.items()}
    return _Traits(ears=ears, aspect=float(rng.uniform(*_ASPECT[kind])), **flags)


def _rgb(colour: np.ndarray | tuple, alpha: int = 255) -> tuple[int, int, int, int]:
    """A Pillow fill colour from any float RGB triple (clipped to 0–255)."""
    c = np.clip(np.round(colour), 0, 255).astype(int)
    return int(c[0]), int(c[1]), int(c[2]), alpha


def _any_colour(rng: np.random.Generator) -> np.ndarray:
    return rng.uniform(0, 255, size=3)


def _fur_colour(rng: np.random.Generator) -> np.ndarray:
    return _FUR[rng.integers(len(_FUR))] + rng.normal(0, 14, size=3)


def _ellipse(x: float, y: float, a: float, b: float, angle: float = 0.0) -> list:
    """Polygon points of an ellipse centred at (x, y), semi-axes ``a``, ``b``, turned ``angle``."""
    t = np.linspace(0, 2 * np.pi, 28, endpoint=False)
    ex, ey = a * np.cos(t), b * np.sin(t)
    ca, sa = math.cos(angle), math.sin(angle)
    return list(zip(x + ex * ca - ey * sa, y + ex * sa + ey * ca, strict=True))


def _oval(draw: ImageDraw.ImageDraw, x: float, y: float, a: float, b: float, **style) -> None:
    """Draw an upright ellipse by its centre and semi-axes (Pillow wants a bounding box)."""
    draw.ellipse([x - a, y - b, x + a, y + b], **style)


def _background(rng: np.random.Generator, width: int, height: int) -> Image.Image:
    """A gradient with uneven light, an optional floor and random clutter, slightly blurred."""
    # Drawn at half size and enlarged: it is out of focus anyway, and that is 4× less work.
    w, h = max(1, width // 2), max(1, height // 2)
    # A 4×4 sketch of the light (a vertical gradient, unevenly lit) blown up smoothly.
    sketch = np.linspace(_any_colour(rng), _any_colour(rng), 4)[:, None, :]
    sketch = sketch + rng.normal(0, 22, size=(4, 4, 1))
    image = Image.fromarray(np.clip(sketch, 0, 255).astype(np.uint8), "RGB")
    image = image.resize((w, h), Image.Resampling.BICUBIC)
    draw = ImageDraw.Draw(image)
    if rng.random() < 0.5:
        draw.rectangle([0, h * rng.uniform(0.55, 0.85), w, h], fill=_rgb(_any_colour(rng)))
    side = min(w, h)
    for _ in range(rng.integers(_CLUTTER[0], _CLUTTER[1] + 1)):
        colour = _rgb(_fur_colour(rng) if rng.random() < 0.35 else _any_colour(rng))
        x, y, s = rng.uniform(0, w), rng.uniform(0, h), side * rng.uniform(0.04, 0.3)
        shape = rng.integers(5)
        if shape == 0:  # blobs, some fur-coloured like a head
            draw.polygon(_ellipse(x, y, s, s * rng.uniform(0.4, 1), rng.uniform(0, 3.2)), colour)
        elif shape == 1:
            draw.rectangle([x, y, x + s, y + s * rng.uniform(0.3, 2)], fill=colour)
        elif shape == 2:  # triangles, some like ears
            draw.polygon([(x + rng.uniform(-s, s), y + rng.uniform(-s, s)) for _ in "abc"], colour)
        elif shape == 3:
            end = (x + rng.uniform(-2, 2) * s, y + rng.uniform(-2, 2) * s)
            draw.line([(x, y), end], fill=colour, width=int(rng.integers(1, 4)))
        else:
            angles = rng.uniform(0, 360, size=2)
            draw.arc([x - s, y - s, x + s, y + s], *angles, colour, int(rng.integers(1, 3)))
    # Shallow depth of field, as in a pet portrait: the background is a little out of focus.
    image = image.filter(ImageFilter.GaussianBlur(rng.uniform(*_BACKGROUND_BLUR) / 2))
    return image.resize((width, height), Image.Resampling.BILINEAR)


class _Face:
    """Paints one cartoon face on a transparent square layer of side 5·r.

    Args:
        rng: decides the details (sizes, colours, angles) the traits leave open.
        r: half the face's height in pixels (the layer is drawn at ``_SS``× scale).
        aspect: the face's width / height.
        fur: fur colour; markings and the snout are darker/lighter shades of it.
        outline: cartoon outline colour, or None for no outline.
    """

    def __init__(
        self,
        rng: np.random.Generator,
        r: float,
        aspect: float,
        fur: np.ndarray,
        outline: tuple | None,
    ):
        side = int(5 * r)
        self.layer = Image.new("RGBA", (side, side), (0, 0, 0, 0))
        self.draw = ImageDraw.Draw(self.layer)
        self.rng, self.r, self.hw, self.fur = rng, r, r * aspect, fur
        self.cx = self.cy = side / 2
        self.edge = {"outline": outline, "width": max(1, int(r / 14))}
        self.dark = _rgb(fur * rng.uniform(0.45, 0.75))
        self.light = _rgb(fur + (255 - fur) * rng.uniform(0.35, 0.8))
        self.inner = _rgb((236, 150, 160) if rng.random() < 0.7 else fur * 0.5)

    def rim(self, theta: float, scale: float = 1.0) -> tuple[float, float]:
        """A point on the face outline at ``theta`` radians clockwise from straight up."""
        return (self.cx + scale * self.hw * math.sin(theta),
                self.cy - scale * self.r * math.cos(theta))  # fmt: skip

    def paint(self, traits: _Traits) -> Image.Image:
        """Draw ears, face, markings, eyes, muzzle and whiskers; return the layer."""
        self.upright_ears(traits.ears)
        _oval(self.draw, self.cx, self.cy, self.hw, self.r, fill=_rgb(self.fur), **self.edge)
        self.markings()
        if traits.ears == "floppy":
            self.floppy_ears()
        fx = self.cx + self.rng.uniform(-0.18, 0.18) * self.r  # a ¾ turn moves the features
        self.eyes(fx, traits.slit_pupils)
        nose_y = self.muzzle(fx, traits)
        if traits.whiskers:
            self.whiskers(fx, nose_y)
        return self.layer

    def upright_ears(self, style: str) -> None:
        """Pointed, folded or round ears on top of the head (drawn first, behind the face)."""
        rng, r, draw = self.rng, self.r, self.draw
        theta = rng.uniform(0.45, 0.8)  # where the ears sit, in radians from the top
        length, spread = rng.uniform(0.65, 1.0), rng.uniform(0.22, 0.36)
        for s in (-1, 1):
            if style in ("pointed", "folded"):
                left, right = self.rim(s * theta - spread, 0.9), self.rim(s * theta + spread, 0.9)
                tip = self.rim(s * theta + s * rng.uniform(-0.1, 0.15), 1 + length)
                draw.polygon([left, tip, right], fill=_rgb(self.fur), **self.edge)
                mid = np.add(left, right) / 2
                draw.polygon([tuple(mid + 0.6 * (np.array(p) - mid)) for p in (left, tip, right)],
                             fill=self.inner)  # fmt: skip
                if style == "folded":  # the tip flops forward over the ear
                    knees = [tuple(np.array(b) + 0.55 * (np.array(tip) - b)) for b in (left, right)]
                    flap = (tip[0] + s * 0.1 * r, 2 * knees[0][1] - tip[1] + 0.15 * r)
                    draw.polygon([knees[0], flap, knees[1]], fill=self.dark, **self.edge)
            elif style == "round":
                x, y = self.rim(s * theta)
                size = r * rng.uniform(0.28, 0.4)
                _oval(draw, x, y, size, size, fill=_rgb(self.fur), **self.edge)
                _oval(draw, x, y, size / 2, size / 2, fill=self.inner)

    def floppy_ears(self) -> None:
        """Long ears hanging down the sides of the head (drawn over the face)."""
        rng, r = self.rng, self.r
        width = r * rng.uniform(0.38, 0.55)
        colour = self.dark if rng.random() < 0.7 else _rgb(self.fur)
        for s in (-1, 1):
            x, y = self.rim(s * rng.uniform(0.75, 1.1), 0.95)
            swing = s * rng.uniform(-0.05, 0.4)  # how far the ear hangs out from the cheek
            length = r * rng.uniform(0.9, 1.35)
            x, y = x + math.sin(swing) * length / 2, y + math.cos(swing) * length / 2
            self.draw.polygon(_ellipse(x, y, width / 2, length / 2, -swing), colour, **self.edge)

    def markings(self) -> None:
        """Forehead stripes and eye patches, with the same odds for cats and dogs."""
        rng, r, cx, cy = self.rng, self.r, self.cx, self.cy
        if rng.random() < 0.35:
            for k in range(rng.integers(2, 5)):
                x = cx + (k - 1.5) * 0.18 * r
                stripe = [(x, cy - 0.95 * r), (x + rng.uniform(-0.1, 0.1) * r, cy - 0.5 * r)]
                self.draw.line(stripe, fill=self.dark, width=max(1, int(r / 9)))
        if rng.random() < 0.3:
            x, size = cx + rng.choice([-1, 1]) * 0.4 * self.hw, r * rng.uniform(0.25, 0.4)
            patch = self.dark if rng.random() < 0.6 else self.light
            _oval(self.draw, x, cy - 0.2 * r, size, size, fill=patch)

    def eyes(self, fx: float, slit_pupils: bool) -> None:
        """Almond eyes with slit pupils, or round eyes with round pupils."""
        rng, r = self.rng, self.r
        y = self.cy - r * rng.uniform(0.1, 0.25)
        dx, size = self.hw * rng.uniform(0.33, 0.45), r * rng.uniform(0.12, 0.19)
        iris = _IRIS[rng.integers(len(_IRIS))] + rng.normal(0, 12, size=3)
        ink = (15, 15, 15, 255)
        for x in (fx - dx, fx + dx):
            if slit_pupils:
                _oval(self.draw, x, y, 1.2 * size, 0.85 * size, fill=_rgb(iris), outline=ink)
                _oval(self.draw, x, y, 0.22 * size, 0.8 * size, fill=ink)
            else:
                _oval(self.draw, x, y, size, size, fill=_rgb(iris * 0.6), outline=ink)
                _oval(self.draw, x, y, 0.6 * size, 0.6 * size, fill=ink)
            _oval(self.draw, x + 0.3 * size, y - 0.45 * size, 0.15 * size, 0.15 * size,
                  fill=(250, 250, 250, 255))  # fmt: skip

    def muzzle(self, fx: float, traits: _Traits) -> float:
        """Snout, tongue, mouth and nose; return the nose's height (whiskers start there)."""
        rng, r, draw = self.rng, self.r, self.draw
        nose_y = self.cy + r * rng.uniform(0.22, 0.32)
        if traits.snout:
            width, height = self.hw * rng.uniform(0.42, 0.58), r * rng.uniform(0.35, 0.48)
            _oval(draw, fx, nose_y + 0.75 * height, width, height, fill=self.light, **self.edge)
        mouth_y = nose_y + r * (0.3 if traits.snout else 0.18)
        if traits.tongue:
            size = 0.16 * r
            _oval(draw, fx, mouth_y + 1.05 * size, size, 1.35 * size, fill=(225, 95, 115, 255))
        ink, width, m = (25, 20, 20, 255), self.edge["width"], 0.16 * r
        draw.line([(fx, nose_y), (fx, mouth_y)], fill=ink, width=width)
        draw.arc([fx - 2 * m, mouth_y - m, fx, mouth_y + m], 20, 160, ink, width)
        draw.arc([fx, mouth_y - m, fx + 2 * m, mouth_y + m], 20, 160, ink, width)
        if traits.big_nose:
            a, b = r * rng.uniform(0.18, 0.26), r * rng.uniform(0.12, 0.17)
            _oval(draw, fx, nose_y, a, b, fill=_rgb(self.fur * 0.15 + 20))
        else:
            a = r * rng.uniform(0.09, 0.13)
            pink = rng.random() < 0.5
            nose = [(fx - a, nose_y - 0.7 * a), (fx + a, nose_y - 0.7 * a), (fx, nose_y + 0.6 * a)]
            draw.polygon(nose, (230, 130, 140, 255) if pink else _rgb(self.fur * 0.2 + 30))
        return nose_y

    def whiskers(self, fx: float, nose_y: float) -> None:
        """Two or three whiskers a side, light on dark fur and dark on light fur."""
        colour = (245, 245, 240, 255) if self.fur.mean() < 110 else (30, 30, 30, 255)
        for s in (-1, 1):
            for k in range(self.rng.integers(2, 4)):
                start = (fx + s * 0.22 * self.r, nose_y + (0.12 + 0.06 * k) * self.r)
                end = (
                    fx + s * self.hw * self.rng.uniform(1.15, 1.5),
                    start[1] + (k - 1) * 0.2 * self.r,
                )
                self.draw.line([start, end], fill=colour, width=max(1, self.edge["width"] // 2))


def draw_animal(kind: str, rng: np.random.Generator, size: int | tuple[int, int]) -> Image.Image:
    """Draw one demo picture: a cartoon cat or dog on a cluttered background.

    Args:
        kind: ``"cat"`` or ``"dog"``.
        rng: the random generator that decides everything about the picture.
        size: the picture's side, or its ``(width, height)``, in pixels.

    Returns:
        An RGB ``PIL.Image.Image`` of that size.
    """
    if kind not in KINDS:
        raise ValueError(f"kind must be 'cat' or 'dog' (got {kind!r})")
    w, h = (size, size) if isinstance(size, int) else size
    if min(w, h) < 16:
        raise ValueError(f"size must be at least 16 pixels a side (got {w}×{h})")
    # Nuisance first, all drawn the same way for both classes.
    image = _background(rng, w, h)
    draw = ImageDraw.Draw(image)
    r = min(w, h) * rng.uniform(*_HEAD_RADIUS)
    cx, cy = w * rng.uniform(0.15, 0.85), h * rng.uniform(0.2, 0.8)
    fur = _fur_colour(rng)
    outline = _rgb(fur * 0.3) if rng.random() < 0.85 else None
    tilt = rng.uniform(-_TILT, _TILT)
    if rng.random() < 0.75:  # a body below the head, often running out of the frame
        x, y = cx + rng.uniform(-0.5, 0.5) * r, cy + rng.uniform(1.4, 1.9) * r
        a, b = r * rng.uniform(1.0, 1.5), r * rng.uniform(0.9, 1.3)
        body = _rgb(fur * rng.uniform(0.8, 1))
        _oval(draw, x, y, a, b, fill=body, outline=outline, width=max(1, int(r / 14)))
    # Then the face, whose traits are the only thing that depends on the class.
    traits = _sample_traits(kind, rng)
    layer = _Face(rng, r * _SS, traits.aspect, fur, outline).paint(traits)
    # Crop and reduce before rotating: resampling the whole 2× layer would cost most of the time.
    box = layer.getbbox() or (0, 0, _SS, _SS)
    mid_x = cx + (box[0] + box[2] - layer.width) / 2 / _SS  # the crop's centre, not the head's
    mid_y = cy + (box[1] + box[3] - layer.height) / 2 / _SS
    layer = layer.crop(box).reduce(_SS).rotate(tilt, Image.Resampling.BILINEAR, expand=True)
    image.paste(layer, (round(mid_x - layer.width / 2), round(mid_y - layer.height / 2)), layer)
    if rng.random() < 0.3:  # something in front: a post, a branch, a toy
        colour = _rgb(_fur_colour(rng) if rng.random() < 0.3 else _any_colour(rng))
        x, y = cx + rng.uniform(-1.2, 1.2) * r, cy + rng.uniform(-1.2, 1.2) * r
        a, b = r * rng.uniform(0.25, 0.7), r * rng.uniform(0.6, 2.5)
        draw.polygon(_ellipse(x, y, a, b, rng.uniform(0, 3.2)), fill=colour)
    if rng.random() < 0.5:
        image = image.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
    if rng.random() < 0.3:
        image = image.filter(ImageFilter.GaussianBlur(rng.uniform(0.4, 1.2)))
    pixels = rng.standard_normal((h, w, 1), dtype=np.float32)  # sensor noise (luminance)
    pixels *= rng.uniform(2, 10)
    pixels = pixels + np.asarray(image, dtype=np.float32) * rng.uniform(0.8, 1.15)  # exposure
    return Image.fromarray(np.clip(pixels, 0, 255, out=pixels).astype(np.uint8), "RGB")
