"""Saying what a file that is not a readable image is: "a PDF document", "a HEIC/HEIF photo",
"a JPEG image but its header is damaged", "got 28 bytes of text"."""

from __future__ import annotations

import io
from typing import BinaryIO

from PIL import Image

# The formats catdog reads, as the message that refuses another says them.
ACCEPTED_TEXT = "JPEG, PNG, BMP, GIF, WebP, TIFF or PPM/PGM"

# Magic numbers of files people mistake for images, so the error can say what the file is.
# (offset, prefix, description); checked in order.
_OTHER_KINDS = (
    (0, b"%PDF", "a PDF document"),
    (0, b"%!PS", "a PostScript/EPS file"),
    (0, b"\xc5\xd0\xd3\xc6", "a PostScript/EPS file"),
    (0, b"8BPS", "a Photoshop (PSD) file"),
    (0, b"\x00\x00\x01\x00", "an icon (ICO) file"),
    (0, b"\x00\x00\x00\x0cjP  ", "a JPEG 2000 image"),
    (0, b"\xffO\xffQ", "a JPEG 2000 image"),
    (0, b"qoif", "a QOI image"),
    (0, b"PK\x03\x04", "a zip archive"),
    (0, b"\x1f\x8b", "a gzip archive"),
)
_FTYP_KINDS = {
    b"heic": "a HEIC/HEIF photo",
    b"heix": "a HEIC/HEIF photo",
    b"hevc": "a HEIC/HEIF photo",
    b"heif": "a HEIC/HEIF photo",
    b"mif1": "a HEIC/HEIF photo",
    b"msf1": "a HEIC/HEIF photo",
    b"avif": "an AVIF image",
    b"avis": "an AVIF image",
}
# Headers of the accepted formats, to tell a damaged JPEG/PNG… from something else.
_ACCEPTED_MAGIC = (
    (b"\xff\xd8\xff", "JPEG"),
    (b"\x89PNG\r\n\x1a\n", "PNG"),
    (b"GIF87a", "GIF"),
    (b"GIF89a", "GIF"),
    (b"BM", "BMP"),
    (b"II*\x00", "TIFF"),
    (b"MM\x00*", "TIFF"),
    (b"II+\x00", "TIFF"),
    (b"MM\x00+", "TIFF"),
)


def _describe_bytes(head: bytes, total: int) -> str:
    """Say in a few words what a file that is not an image looks like, from its first bytes."""
    if not total:
        return "it is empty (0 bytes)"
    try:
        head[:512].decode("utf-8")
        kind = "text"
    except UnicodeDecodeError:
        kind = "binary data"
    return f"got {total:,} bytes of {kind}"


def exception_reason(exc: BaseException) -> str:
    """The first line of an exception's message (no traceback), with its type if unclear."""
    if exc.args and isinstance(exc.args[0], BaseException):  # SyntaxError(KeyError(999))
        return exception_reason(exc.args[0])
    lines = str(exc).strip().splitlines()
    text = lines[0].strip()[:200] if lines else ""
    kind = type(exc)
    if isinstance(exc, (OSError, SyntaxError, ValueError)) and text:
        return text  # Pillow's own messages: "image file is truncated", "not a PNG file"…
    label = kind.__name__ if kind.__module__ == "builtins" else f"{kind.__module__}.{kind.__name__}"
    return f"{label}: {text}" if text else label


def _header_problem(stream: BinaryIO, fmt: str) -> str:
    """Why ``fmt``'s plugin refused the header (Image.open only says "cannot identify").

    Runs the same plugin Image.open already ran on these bytes, so it adds no new parser.
    """
    factory = Image.OPEN.get(fmt, (None, None))[0]
    if factory is None:
        return ""
    try:
        stream.seek(0)
        factory(stream, "")
    except Exception as exc:
        return exception_reason(exc)
    return ""


def unidentified(name: str, stream: BinaryIO) -> str:
    """The error for a file no accepted plugin could open: say what it looks like."""
    fix = f"catdog reads {ACCEPTED_TEXT}; convert it to JPEG or PNG"
    stream.seek(0)
    head = stream.read(1024)
    total = stream.seek(0, io.SEEK_END)
    fmt = next((fmt for magic, fmt in _ACCEPTED_MAGIC if head.startswith(magic)), None)
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        fmt = "WEBP"
    if fmt:
        why = _header_problem(stream, fmt)
        return f"{name} looks like a {fmt} image but its header is damaged" + (
            f" ({why})" if why else ""
        )
    for offset, magic, kind in _OTHER_KINDS:
        if head[offset:].startswith(magic):
            return f"{name} is {kind}, not an image format catdog reads ({fix})"
    if head[4:8] == b"ftyp":
        kind = _FTYP_KINDS.get(head[8:12], "a video or other ISO media file")
        return f"{name} is {kind}, not an image format catdog reads ({fix})"
    if b"<svg" in head.lower():
        return f"{name} is an SVG drawing, not an image format catdog reads ({fix})"
    return f"{name} is not an image ({_describe_bytes(head, total)})"
