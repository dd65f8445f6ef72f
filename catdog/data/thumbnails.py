"""Pictures of images for people: square thumbnails, shrunk previews, and what a file is.

Every image is read through :mod:`catdog.data.images` (the hardened decoder), and JPEGs are
decoded at a reduced scale when only a small picture is wanted.
Plain Python: no Streamlit, no TensorFlow.
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

from PIL import Image, ImageDraw, ImageOps

from catdog.data.images import image_header, open_rgb

# Thumbnails are JPEGs at this quality: small to send, no visible loss at grid size.
THUMBNAIL_QUALITY = 85


def thumbnail(source: str | Path | bytes, size: int = 160, name: str | None = None) -> bytes:
    """A square JPEG thumbnail (centre crop) of an image file or its bytes.

    Args:
        source: a path or the file's bytes.
        size: side of the thumbnail in pixels.
        name: the name used in error messages for bytes.

    Returns:
        JPEG bytes.

    Raises:
        catdog.data.images.ImageError: the file is not a usable image.
    """
    image = open_rgb(source, name=name, min_side=size)  # a JPEG may decode at 1/2–1/8 scale
    image = ImageOps.fit(image, (size, size), Image.Resampling.BILINEAR)
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", quality=THUMBNAIL_QUALITY)
    return buffer.getvalue()


def unreadable_thumbnail(size: int = 160) -> bytes:
    """A mid-grey square with a dark cross: the thumbnail shown for a file that cannot be read
    (damaged, not an image, or gone), so one bad file never breaks a grid of good ones."""
    image = Image.new("RGB", (size, size), (200, 200, 200))
    draw = ImageDraw.Draw(image)
    margin, width = size // 4, max(2, size // 24)
    draw.line((margin, margin, size - margin, size - margin), fill=(90, 90, 90), width=width)
    draw.line((margin, size - margin, size - margin, margin), fill=(90, 90, 90), width=width)
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", quality=THUMBNAIL_QUALITY)
    return buffer.getvalue()


def preview_image(
    source: str | Path | bytes, max_side: int = 640, name: str | None = None
) -> bytes:
    """The whole image shrunk to fit ``max_side`` (never enlarged), as JPEG bytes."""
    image = open_rgb(source, name=name, min_side=max_side)
    image.thumbnail((max_side, max_side), Image.Resampling.BILINEAR)
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", quality=90)
    return buffer.getvalue()


def image_details(path: str | Path) -> dict[str, Any]:
    """File name, format, pixel size and file size of an image (header only).

    Raises:
        catdog.data.images.ImageError: the file is not an image in a format catdog reads.
    """
    path = Path(path)
    fmt, width, height = image_header(path)
    return {
        "file": path.name,
        "format": fmt,
        "width": width,
        "height": height,
        "bytes": path.stat().st_size,
    }
