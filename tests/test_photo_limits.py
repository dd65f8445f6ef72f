"""Hosted mode's caps on the pixels photos to classify decode to, told from their headers."""

from __future__ import annotations

import io
import struct
import zlib

import pytest
from PIL import Image
from test_hosting import hosted_mode  # noqa: F401 - a fixture

from catdog.inference.photo_limits import check_photo_pixels, decoded_pixels
from catdog.inference.predict import Predictor
from catdog.policy import HostedLimitError


def png_header(width: int, height: int) -> bytes:
    """A PNG that declares ``width``×``height`` pixels and holds almost none of them: decoding
    it fails (truncated), so a refusal that names its size was made from the header alone."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    chunk = struct.pack(">I", len(ihdr)) + b"IHDR" + ihdr
    chunk += struct.pack(">I", zlib.crc32(b"IHDR" + ihdr))
    return b"\x89PNG\r\n\x1a\n" + chunk + b"\x00\x00\x00\x10IDAT" + bytes(8)


def jpeg(width: int, height: int) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (width, height), (120, 90, 60)).save(buffer, "JPEG", quality=50)
    return buffer.getvalue()


def test_a_jpeg_costs_the_pixels_of_its_reduced_decode() -> None:
    assert decoded_pixels("PNG", 7000, 7000, 128) == 49_000_000
    assert decoded_pixels("JPEG", 4000, 3000, 128) == 500 * 375  # decoded at 1/8
    assert decoded_pixels("JPEG", 1000, 750, 128) == 250 * 188  # 1/8 would be under 128 px
    assert decoded_pixels("JPEG", 100, 80, 128) == 8000


@pytest.mark.usefixtures("hosted_mode")
def test_hosted_mode_refuses_a_photo_over_its_pixel_cap_before_decoding_it() -> None:
    model = Predictor(None, ["cats", "dogs"], 128)  # refused before the model is ever used
    with pytest.raises(HostedLimitError, match=r"^bomb.png is 7000×7000 px \(49.0 megapixels to "
                       r"decode\): over hosted mode's cap of 4 megapixels a photo"):  # fmt: skip
        model.predict([("cat.jpg", jpeg(64, 64)), ("bomb.png", png_header(7000, 7000))])
    check_photo_pixels([("phone.jpg", jpeg(4000, 3000))], 128)  # 0.2 MP decoded: fine


@pytest.mark.usefixtures("hosted_mode")
def test_hosted_mode_refuses_too_many_pixels_in_one_request() -> None:
    each = png_header(1900, 1900)  # 3.6 MP: under the per-photo cap
    check_photo_pixels([(f"{k}.png", each) for k in range(6)], 128)  # 21.7 MP
    with pytest.raises(HostedLimitError, match=r"these 7 photos are 25.3 megapixels to decode: "
                       r"over hosted mode's cap of 24 megapixels at once"):  # fmt: skip
        check_photo_pixels([(f"{k}.png", each) for k in range(7)], 128)


def test_locally_only_the_decoder_limits_pixels() -> None:
    check_photo_pixels([("big.png", png_header(7000, 7000))] * 20, 128)
