"""Odd images: what makes a picture unlikely to teach a classifier anything.

Tiny images, extreme aspect ratios (training squashes them), blank or near-uniform frames,
and pictures of few colours (drawings, text, graphics). Each reason is a phrase with its
number, for people to judge. Plain numpy: no TensorFlow.
"""

from __future__ import annotations

import numpy as np

# A side under TINY_SIDE pixels holds little of an animal (the models see 96–150).
TINY_SIDE = 64
EXTREME_ASPECT = 3.0  # longer side / shorter side
UNIFORM_SPREAD = 8.0  # standard deviation of the grey levels (0–255) of a blank frame
# A drawing, text or a graphic: its 8 most common colours (16 levels a channel) cover this
# share of its 64×64 picture. Photos spread wider (median 38% on the seed's photos, 99.5th
# percentile 78%); at 85% the seed's 4,000 photos give 6, among them its one line drawing.
FEW_COLOURS_SHARE = 0.85


def few_colours_share(rgb: np.ndarray) -> float:
    """The share of a ``uint8`` RGB picture its 8 most common colours cover (16 levels a
    channel)."""
    codes = (rgb // 16).astype(np.int64) @ np.array([256, 16, 1])
    counts = np.sort(np.bincount(codes.ravel(), minlength=4096))[::-1]
    return float(counts[:8].sum() / codes.size)


def reasons(width: int, height: int, spread: float, few_colours: float) -> list[str]:
    """Why an image is odd (nothing if it is not), each reason with its number.

    Args:
        width, height: the image's size in pixels.
        spread: the standard deviation of its grey levels (0–255).
        few_colours: :func:`few_colours_share` of it.
    """
    found = []
    if min(width, height) < TINY_SIDE:
        found.append(f"tiny: {width}×{height} px")
    aspect = max(width, height) / max(1, min(width, height))
    if aspect >= EXTREME_ASPECT:
        found.append(f"stretched: {aspect:.1f} to 1")
    if spread < UNIFORM_SPREAD:
        found.append(f"blank or near-uniform (grey levels vary by {spread:.1f})")
    elif few_colours >= FEW_COLOURS_SHARE:
        found.append(
            f"few colours ({few_colours:.0%} of it in 8 colours): a drawing, text or a graphic?"
        )
    return found
