"""What classifying photos may cost a hosted server, told from their headers before decoding.

A photo's cost is the pixels its decode makes: a JPEG is decoded at 1/2, 1/4 or 1/8 scale when
the model's input is that much smaller (:func:`catdog.data.images.opened_rgb`), other formats
in full. A few kilobytes of PNG can declare 49 megapixels, so hosted mode caps each photo's
pixels (:attr:`~catdog.limits.HostedSettings.max_image_megapixels`) and a request's total
(:attr:`~catdog.limits.HostedSettings.max_predict_megapixels`). Locally nothing is capped here
(the decoder's own limit still holds).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from catdog.data.images import ImageError, image_header
from catdog.policy import HostedLimitError, current_policy

_SCALED = ("JPEG", "MPO")  # formats libjpeg decodes straight to a smaller size


def decoded_pixels(fmt: str, width: int, height: int, min_side: int) -> int:
    """Pixels a decode of a ``width``×``height`` image of format ``fmt`` makes when each side
    may shrink to ``min_side`` (JPEG's DCT scaling by 1/2, 1/4 or 1/8; others in full)."""
    scale = 1
    if fmt in _SCALED:
        while scale < 8 and min(-(-width // (2 * scale)), -(-height // (2 * scale))) >= min_side:
            scale *= 2
    return -(-width // scale) * -(-height // scale)


def check_photo_pixels(named: Sequence[tuple[str, str | Path | bytes]], min_side: int) -> None:
    """In hosted mode, refuse photos whose decodes would make more pixels than the caps allow,
    each and together (from headers only; nothing locally). A photo whose header cannot be read
    is left to the decoder, which says why.

    Args:
        named: (name, bytes or path) of each photo.
        min_side: the side the photos are shrunk to (the model's input).

    Raises:
        catdog.policy.HostedLimitError: a photo over the per-photo cap (named, with its size),
            or the photos together over the request's cap.
    """
    limits = current_policy().limits
    if limits is None:
        return
    each, together = limits.max_image_megapixels * 1e6, limits.max_predict_megapixels * 1e6
    total = 0
    for name, data in named:
        try:
            fmt, width, height = image_header(data, name=name)
        except ImageError:
            continue
        pixels = decoded_pixels(fmt, width, height, min_side)
        if pixels > each:
            raise HostedLimitError(
                f"{name} is {width}×{height} px ({pixels / 1e6:.1f} megapixels to decode): over "
                f"hosted mode's cap of {limits.max_image_megapixels:g} megapixels a photo; "
                "send a smaller photo (or a JPEG, decoded at reduced size)"
            )
        total += pixels
    if total > together:
        raise HostedLimitError(
            f"these {len(named)} photos are {total / 1e6:.1f} megapixels to decode: over hosted "
            f"mode's cap of {limits.max_predict_megapixels:g} megapixels at once; send fewer "
            "or smaller photos"
        )
