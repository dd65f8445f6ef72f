"""catdog.data.thumbnails: square thumbnails, shrunk previews and image details."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from catdog.data.images import ImageError
from catdog.data.thumbnails import image_details, preview_image, thumbnail, unreadable_thumbnail


def test_thumbnail_is_a_square_jpeg(tmp_path: Path) -> None:
    path = tmp_path / "wide.png"
    Image.new("RGB", (300, 100), (200, 30, 30)).save(path)
    thumb = Image.open(io.BytesIO(thumbnail(path, size=64)))
    assert (thumb.format, thumb.size) == ("JPEG", (64, 64))
    big = Image.open(io.BytesIO(preview_image(path.read_bytes(), max_side=150)))
    assert big.size == (150, 50)  # aspect kept
    assert image_details(path) == {
        "file": "wide.png",
        "format": "PNG",
        "width": 300,
        "height": 100,
        "bytes": path.stat().st_size,
    }
    with pytest.raises(ImageError, match=r"notes\.txt is not an image"):
        thumbnail(b"just some text", name="notes.txt")


def test_an_unreadable_file_gets_a_grey_cross_of_the_same_size() -> None:
    image = Image.open(io.BytesIO(unreadable_thumbnail(96)))
    assert (image.format, image.size) == ("JPEG", (96, 96))
    pixels = np.asarray(image.convert("L"), dtype=int)
    assert abs(pixels[5, 90] - 200) < 12 and pixels[48, 48] < 120  # grey corner, dark cross
