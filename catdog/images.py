"""Opening images: the one place catdog reads pixels from user files.

Import, training and prediction all go through :func:`open_rgb` (full decode, EXIF rotation
applied, converted to RGB) and :func:`to_model_input` (the resize to the model's input size), so
a photo is preprocessed exactly the same way wherever it enters.
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import BinaryIO

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

# File name suffixes treated as images when scanning folders (case-insensitive). Anything else
# found in an image folder (Thumbs.db, .DS_Store, notes) is skipped and reported.
IMAGE_SUFFIXES = frozenset(
    {".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp", ".tif", ".tiff", ".ppm", ".pgm"}
)

# Refuse images above this many pixels: a 100-megapixel photo already takes 300 MB decoded,
# and larger ones are far more likely to be decompression bombs than photos of pets.
MAX_PIXELS = 100_000_000

# Background used when flattening transparent images (RGBA, LA, palette with transparency).
_BACKGROUND = (255, 255, 255)


class ImageError(ValueError):
    """A file could not be used as an image; the message names the file and the reason."""


def _describe_bytes(data: bytes) -> str:
    """Say in a few words what a byte string that is not an image looks like."""
    if not data:
        return "it is empty (0 bytes)"
    head = data[:512]
    try:
        head.decode("utf-8")
        kind = "text"
    except UnicodeDecodeError:
        kind = "binary data"
    return f"got {len(data):,} bytes of {kind}"


def _flatten(image: Image.Image) -> Image.Image:
    """Convert any Pillow mode to RGB, compositing transparency over white."""
    if image.mode == "RGB":
        return image
    if image.mode == "P" and "transparency" in image.info:
        image = image.convert("RGBA")
    if image.mode in ("RGBA", "LA", "PA", "RGBa", "La"):
        rgba = image.convert("RGBA")
        background = Image.new("RGB", rgba.size, _BACKGROUND)
        background.paste(rgba, mask=rgba.getchannel("A"))
        return background
    if image.mode in ("I;16", "I;16B", "I;16L", "I"):
        # 16/32-bit greyscale: scale to 8 bits instead of letting Pillow clip at 255.
        arr = np.asarray(image, dtype=np.float64)
        top = arr.max() if arr.size and arr.max() > 0 else 1.0
        arr = np.clip(arr * (255.0 / top), 0, 255).astype(np.uint8)
        return Image.fromarray(arr, mode="L").convert("RGB")
    return image.convert("RGB")


def open_rgb(source: str | Path | bytes | BinaryIO, name: str | None = None) -> Image.Image:
    """Open an image file, decode every pixel, apply EXIF rotation and return it as RGB.

    Grayscale, CMYK, palette, 16-bit and transparent images are converted (transparency is
    composited over white), never rejected.

    Args:
        source: a path, the file's bytes, or a binary file object.
        name: the name to use in error messages (defaults to the path's name).

    Returns:
        A fully loaded ``PIL.Image.Image`` in mode ``"RGB"``.

    Raises:
        ImageError: the file is empty, not an image, truncated/corrupt, or too large; the
            message names the file and says which.
    """
    if isinstance(source, (str, Path)):
        name = name or Path(source).name
        try:
            data = Path(source).read_bytes()
        except OSError as exc:
            raise ImageError(f"{name} could not be read ({exc.strerror or exc})") from exc
    elif isinstance(source, bytes):
        data = source
    else:
        data = source.read()
    name = name or "image"
    if not data:
        raise ImageError(f"{name} is not an image: it is empty (0 bytes)")
    try:
        # Image.open reads only the header, so the size check happens before any decoding.
        image = Image.open(io.BytesIO(data))
        width, height = image.size
        if width * height > MAX_PIXELS:
            raise ImageError(
                f"{name} is too large: {width}×{height} pixels "
                f"({width * height / 1e6:.0f} megapixels; the limit is {MAX_PIXELS / 1e6:.0f})"
            )
        image.load()
        image = ImageOps.exif_transpose(image) or image
        return _flatten(image)
    except ImageError:
        raise
    except Image.DecompressionBombError as exc:
        raise ImageError(f"{name} is too large to decode safely ({exc})") from exc
    except UnidentifiedImageError as exc:
        raise ImageError(f"{name} is not an image ({_describe_bytes(data)})") from exc
    except (OSError, SyntaxError, ValueError, EOFError) as exc:
        raise ImageError(f"{name} is a corrupt or truncated image ({exc})") from exc


def to_model_input(image: Image.Image, image_size: int) -> np.ndarray:
    """Resize an RGB image to the model's square input, as training and prediction both do.

    The image is squashed (not cropped) to ``image_size``×``image_size`` like Keras'
    ``flow_from_directory`` in the seed, with Pillow's bilinear filter (antialiased when
    shrinking).

    Args:
        image: an RGB image, as returned by :func:`open_rgb`.
        image_size: the side of the square model input, in pixels.

    Returns:
        A ``uint8`` array of shape ``(image_size, image_size, 3)``; pixel values are 0–255
        (the input pipeline rescales them to [0, 1] as the seed does).
    """
    if image.mode != "RGB":
        image = _flatten(image)
    if image.size != (image_size, image_size):
        image = image.resize((image_size, image_size), Image.Resampling.BILINEAR)
    return np.asarray(image, dtype=np.uint8)


def load_for_model(
    source: str | Path | bytes | BinaryIO, image_size: int, name: str | None = None
) -> np.ndarray:
    """Open any image and return it as the model's ``uint8`` input array (see above)."""
    return to_model_input(open_rgb(source, name=name), image_size)
