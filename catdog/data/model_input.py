"""A photo as a model's input: decoded, RGB, resized to the run's square size, as uint8 pixels.

Training, prediction and export all read photos through here, so a photo gets the same pixels
everywhere (the scaling to [0, 1] is :func:`catdog.model.pixels.scale_pixels`).
"""

from __future__ import annotations

from pathlib import Path
from typing import BinaryIO

import numpy as np
from PIL import Image

from catdog.data.images import ImageError, flatten_rgb, opened_rgb


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
        image = flatten_rgb(image)
    if image.size != (image_size, image_size):
        image = image.resize((image_size, image_size), Image.Resampling.BILINEAR)
    return np.asarray(image, dtype=np.uint8)


def load_for_model(
    source: str | Path | bytes | BinaryIO, image_size: int, name: str | None = None
) -> np.ndarray:
    """Open any image and return it as the model's ``uint8`` input array (see above).

    This is the one path from a file to model input, for training and prediction alike. A
    JPEG is decoded at reduced size (1/2–1/8, each side still ≥ ``image_size``) before the
    resize: a 12 MP photo costs ~0.2 MP of memory instead of 12, and the result stays within
    a few levels of a full decode then resize (see tests/test_images.py).
    """
    with opened_rgb(source, name, min_side=image_size) as image:
        return to_model_input(image, image_size)


def load_or_reason(path: Path, image_size: int) -> np.ndarray | str:
    """:func:`load_for_model` for a file of a split: its array, or why it cannot be used (the
    one sentence a skipped file is reported with)."""
    try:
        return load_for_model(path, image_size)
    except ImageError as exc:
        return str(exc)
