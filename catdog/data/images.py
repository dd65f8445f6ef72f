"""Opening images: the one place catdog reads pixels from user files.

Import, training and prediction all go through :func:`opened_rgb` / :func:`open_rgb` (decode,
EXIF rotation applied, converted to RGB) and :func:`to_model_input` (the resize to the model's
input size); training and prediction both call :func:`load_for_model`, so a photo is
preprocessed exactly the same way wherever it enters.

No file can crash a caller: whatever Pillow raises on a damaged or hostile file (any exception
but ``KeyboardInterrupt``/``SystemExit``) becomes an :class:`ImageError` naming the file and
the reason. Memory is bounded per image (:data:`MAX_PIXELS`, checked from the header before
decoding; reduced-size JPEG decoding when the caller shrinks the image anyway) and across
threads (:data:`DECODE_BUDGET_PIXELS`).
"""

from __future__ import annotations

import contextlib
import io
import os
import re
import stat
import threading
from collections import deque
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

from PIL import Image, ImageOps, UnidentifiedImageError

from catdog import safe_files
from catdog.data.image_kinds import exception_reason, unidentified
from catdog.data.image_work import WorkError, check_work
from catdog.safe_files import os_words

# File name suffixes treated as images when scanning folders (case-insensitive). Anything else
# found in an image folder (Thumbs.db, .DS_Store, notes) is skipped and reported.
IMAGE_SUFFIXES = frozenset(
    {".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp", ".tif", ".tiff", ".ppm", ".pgm"}
)

# The Pillow plugins allowed to read a file: exactly the formats IMAGE_SUFFIXES promise (PPM
# also reads .pgm; a JPEG with a multi-picture extension is read by the JPEG plugin as "MPO").
# No other plugin's parser ever sees a user file: EPS would run Ghostscript, and rarely used
# parsers are where crafted files do their damage.
ACCEPTED_FORMATS = ("JPEG", "PNG", "BMP", "GIF", "WEBP", "TIFF", "PPM")

# Largest image decoded, in pixels (width × height, read from the header before any pixel is
# decoded). 50 MP is every photo an ordinary camera takes: 12 MP phones, 24–45 MP cameras and
# the 48/50 MP modes of recent phones (8064×6048, 8160×6120); anything larger is far more
# likely a decompression bomb than a pet. Decoded as RGB that is 150 MB; while converting, a
# 4-byte mode (CMYK, RGBA, 32-bit) and its RGB copy both exist, ~350 MB at worst. Training
# and prediction rarely pay even that: they decode JPEGs at 1/2–1/8 scale (see ``min_side``).
MAX_PIXELS = 50_000_000

# Pixels being decoded at once, summed over every thread (import and training decode on a
# thread pool): 100 MP ≈ 300 MB of RGB (≤ ~700 MB with 4-byte modes mid-conversion). That is
# two of the largest images, eight 12 MP photos, or hundreds of JPEGs decoded at reduced size;
# further decodes wait their turn (first come, first served) instead of adding up to
# threads × MAX_PIXELS.
DECODE_BUDGET_PIXELS = 2 * MAX_PIXELS

# Largest file read as a photo, in bytes: the largest image decoded (MAX_PIXELS) is 150 MB even
# stored as an uncompressed RGB BMP or TIFF. A bigger file is read no further than its size.
MAX_FILE_BYTES = 512 * 1024**2

# Background used when flattening transparent images (RGBA, LA, palette with transparency).
_BACKGROUND = (255, 255, 255)


class ImageError(ValueError):
    """A file could not be used as an image; the message names the file and the reason."""


class _PixelBudget:
    """A counting semaphore measured in pixels, first come first served.

    :meth:`hold` waits until ``pixels`` more fit under ``limit`` (a request larger than the
    limit waits for the budget to be empty, so every image gets its turn), then holds them for
    the ``with`` block. A thread that already holds pixels never waits: a nested decode in the
    same thread would otherwise wait for itself.
    """

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.used = 0
        self.peak = 0  # highest ``used`` seen (for tests and benchmarks)
        self._cond = threading.Condition()
        self._queue: deque[object] = deque()
        self._local = threading.local()

    def _fits(self, ticket: object, pixels: int) -> bool:
        return self._queue[0] is ticket and (self.used == 0 or self.used + pixels <= self.limit)

    @contextlib.contextmanager
    def hold(self, pixels: int) -> Iterator[None]:
        """Hold ``pixels`` of the budget for the ``with`` block, waiting for them if needed."""
        held = getattr(self._local, "held", 0)
        with self._cond:
            if not held:
                ticket = object()
                self._queue.append(ticket)
                try:
                    self._cond.wait_for(lambda: self._fits(ticket, pixels))
                finally:  # served or interrupted: either way the next in line goes
                    self._queue.remove(ticket)
                    self._cond.notify_all()
            self.used += pixels
            self.peak = max(self.peak, self.used)
        self._local.held = held + pixels
        try:
            yield
        finally:
            self._local.held = held
            with self._cond:
                self.used -= pixels
                self._cond.notify_all()


_BUDGET = _PixelBudget(DECODE_BUDGET_PIXELS)


def _too_large(name: str, exc: Image.DecompressionBombError) -> ImageError:
    """Pillow's own bomb check fired (its limit is above ours, so the image is huge)."""
    found = re.search(r"\((\d+) pixels\)", str(exc))
    size = f"{int(found.group(1)) / 1e6:,.0f} megapixels" if found else "far too many pixels"
    return ImageError(
        f"{name} is too large: {size} (the limit is {MAX_PIXELS / 1e6:.0f}); "
        "shrink it before using it"
    )


def not_regular(mode: int) -> str:
    """What a file that is no regular file is (from its ``st_mode``), for the message that
    refuses it as an image: "is a named pipe (FIFO), not a regular file"."""
    if stat.S_ISDIR(mode):
        return "is a folder, not an image file"
    return safe_files.not_regular(mode)


def _read_path(path: Path, name: str) -> bytes:
    """Read a regular file of at most :data:`MAX_FILE_BYTES` (never blocking on a pipe, never
    reading a device or a growing file without end)."""
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
        try:
            st = os.fstat(fd)
            if not stat.S_ISREG(st.st_mode):
                raise ImageError(f"{name} {not_regular(st.st_mode)}")
            if st.st_size > MAX_FILE_BYTES:
                raise ImageError(
                    f"{name} is {st.st_size:,} bytes, over the {MAX_FILE_BYTES:,}-byte limit for "
                    "one photo"
                )
            with os.fdopen(fd, "rb", closefd=False) as f:
                data = f.read(MAX_FILE_BYTES + 1)
        finally:
            os.close(fd)
    except OSError as exc:
        raise ImageError(f"{name} could not be read ({os_words(exc)})") from exc
    if len(data) > MAX_FILE_BYTES:
        raise ImageError(f"{name} grew past {MAX_FILE_BYTES:,} bytes, the limit for one photo")
    return data


def _read(source: str | Path | bytes | BinaryIO, name: str | None) -> tuple[bytes, str]:
    """The file's bytes and the name to use in messages."""
    if isinstance(source, (str, Path)):
        name = name or Path(source).name
        return _read_path(Path(source), name), name
    name = name or "image"
    if isinstance(source, (bytes, bytearray, memoryview)):
        return bytes(source), name
    try:
        return source.read(), name
    except OSError as exc:
        raise ImageError(f"{name} could not be read ({os_words(exc)})") from exc


# How much of a file :func:`image_header` walks for its declared work (the decode path walks
# the whole file): the part Pillow's header parsers read.
_HEADER_WORK_BYTES = 16 * 1024**2


def _open_header(stream: BinaryIO, name: str) -> Image.Image:
    """Parse the header with the accepted plugins only (no pixels decoded yet), after
    checking the work the file's structure declares (:func:`catdog.data.image_work.check_work`:
    scans, chunks, frames, pages, strips)."""
    if stream.seek(0, io.SEEK_END) == 0:
        raise ImageError(f"{name} is not an image: it is empty (0 bytes)")
    stream.seek(0)
    whole = stream.getvalue() if isinstance(stream, io.BytesIO) else None
    try:
        check_work(whole if whole is not None else stream.read(_HEADER_WORK_BYTES))
    except WorkError as exc:
        raise ImageError(f"{name} {exc}") from exc
    stream.seek(0)
    try:
        return Image.open(stream, formats=ACCEPTED_FORMATS)
    except UnidentifiedImageError as exc:
        raise ImageError(unidentified(name, stream)) from exc
    except Image.DecompressionBombError as exc:
        raise _too_large(name, exc) from exc
    except Exception as exc:  # a plugin choking on a crafted header, whatever it raises
        raise ImageError(f"{name} has a damaged image header ({exception_reason(exc)})") from exc


def _check_size(image: Image.Image, name: str) -> None:
    """Refuse empty and oversized images before any pixel is decoded."""
    width, height = image.size
    if width < 1 or height < 1:
        raise ImageError(f"{name} has no pixels ({width}×{height}); it is not a usable image")
    if width * height > MAX_PIXELS:
        raise ImageError(
            f"{name} is too large: {width}×{height} pixels ({width * height / 1e6:,.0f} "
            f"megapixels; the limit is {MAX_PIXELS / 1e6:.0f}); shrink it before using it"
        )


def _decode_error(
    name: str, image: Image.Image, exc: Exception, converting: bool = False
) -> ImageError:
    """The ImageError for an exception raised while decoding (or converting) pixels."""
    width, height = image.size
    if isinstance(exc, MemoryError):
        return ImageError(f"{name} could not be decoded: not enough memory for {width}×{height}")
    if isinstance(exc, Image.DecompressionBombError):
        return _too_large(name, exc)
    if converting:
        fmt = f"{image.format} " if image.format else ""
        return ImageError(
            f"{name} is a {fmt}image in a pixel format catdog cannot convert to RGB "
            f"({image.mode}: {exception_reason(exc)}); save it as an ordinary RGB JPEG or PNG"
        )
    fmt = f"{image.format}: " if image.format else ""
    return ImageError(f"{name} is a corrupt or truncated image ({fmt}{exception_reason(exc)})")


def flatten_rgb(image: Image.Image) -> Image.Image:
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
    if image.mode in ("I;16", "I;16B", "I;16L", "I;16N", "I"):
        # 16/32-bit greyscale: stretch to 8 bits (brightest pixel → 255) instead of letting
        # Pillow clip at 255. Done by Pillow in integer modes: no float64 copy of the image.
        if image.mode != "I;16":
            image = image.convert("I")
        top = image.getextrema()[1]
        scale = 255.0 / top if isinstance(top, (int, float)) and top > 0 else 1.0
        return image.point(lambda v: v * scale).convert("L").convert("RGB")
    return image.convert("RGB")


def _orient(image: Image.Image) -> None:
    """Apply the EXIF orientation in place, if the metadata allows."""
    # The pixels have decoded fine by now; only the orientation metadata (or rewriting it) is
    # left. If reading it fails on a corrupt EXIF block, keep the image as stored (at worst
    # shown sideways) rather than reject a good photo. (Should the failure come after the
    # rotation, the image stays rotated: still correct pixels.)
    with contextlib.suppress(Exception):
        ImageOps.exif_transpose(image, in_place=True)


def _decode(image: Image.Image, name: str) -> Image.Image:
    """Decode the pixels of an opened image, apply EXIF rotation, convert to RGB."""
    try:
        image.load()
    except Exception as exc:  # anything a decoder raises on a crafted file
        raise _decode_error(name, image, exc) from exc
    _orient(image)
    try:
        return flatten_rgb(image)
    except Exception as exc:
        raise _decode_error(name, image, exc, converting=True) from exc


@contextlib.contextmanager
def opened_rgb(
    source: str | Path | bytes | BinaryIO, name: str | None = None, *, min_side: int | None = None
) -> Iterator[Image.Image]:
    """Decode an image as RGB for the ``with`` block, holding its share of the decode budget.

    Use this rather than :func:`open_rgb` where many images are decoded on threads and each
    one is used before the next (the importer re-encodes it): the pixels count against
    :data:`DECODE_BUDGET_PIXELS` until the block ends.

    Args:
        source: a path, the file's bytes, or a binary file object.
        name: the name to use in error messages (defaults to the path's name).
        min_side: the caller will shrink the image so that neither side exceeds this; a JPEG
            may then be decoded at 1/2, 1/4 or 1/8 scale, each side kept ≥ ``min_side``.
            None decodes the full size.

    Yields:
        A loaded ``PIL.Image.Image`` in mode ``"RGB"``.

    Raises:
        ImageError: the file is empty, not an image, in a format catdog does not read,
            damaged, or too large; the message names the file and says which.
    """
    data, name = _read(source, name)
    image = _open_header(io.BytesIO(data), name)
    _check_size(image, name)  # from the header: nothing decoded yet
    if min_side is not None and min_side > 0 and image.format in ("JPEG", "MPO"):
        try:  # libjpeg's DCT scaling: decodes straight to the smaller size
            image.draft("RGB", (min_side, min_side))
        except Exception as exc:
            raise _decode_error(name, image, exc) from exc
    with _BUDGET.hold(image.width * image.height):
        rgb = _decode(image, name)
        del image  # the un-rotated / un-converted copy, if different, can go now
        yield rgb


def open_rgb(
    source: str | Path | bytes | BinaryIO, name: str | None = None, *, min_side: int | None = None
) -> Image.Image:
    """Open an image file, decode its pixels, apply EXIF rotation and return it as RGB.

    Grayscale, CMYK, palette, 16-bit and transparent images are converted (transparency is
    composited over white), never rejected. Only the decoding itself counts against the
    decode budget (see :func:`opened_rgb`).

    Args:
        source: a path, the file's bytes, or a binary file object.
        name: the name to use in error messages (defaults to the path's name).
        min_side: allow a reduced-size JPEG decode, each side ≥ this (see
            :func:`opened_rgb`); None for the full size.

    Returns:
        A fully loaded ``PIL.Image.Image`` in mode ``"RGB"``.

    Raises:
        ImageError: the file is empty, not an image, in a format catdog does not read,
            damaged, or too large; the message names the file and says which.
    """
    with opened_rgb(source, name, min_side=min_side) as image:
        return image


def image_header(source: str | Path | bytes, name: str | None = None) -> tuple[str, int, int]:
    """Read an image's format, width and height from its header only (no pixel decoded).

    Args:
        source: a path or the file's bytes.
        name: the name to use in error messages (defaults to the path's name).

    Returns:
        ``(format, width, height)``, e.g. ``("JPEG", 4032, 3024)``.

    Raises:
        ImageError: the file is unreadable, not an image or not in an accepted format.
    """
    if isinstance(source, bytes):
        return _header_of(io.BytesIO(source), name or "image")
    name = name or Path(source).name
    try:
        # Never blocking on a pipe; only the header is read, not the whole file.
        fd = os.open(source, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
        with os.fdopen(fd, "rb") as stream:
            mode = os.fstat(stream.fileno()).st_mode
            if not stat.S_ISREG(mode):
                raise ImageError(f"{name} {not_regular(mode)}")
            return _header_of(stream, name)
    except OSError as exc:
        raise ImageError(f"{name} could not be read ({os_words(exc)})") from exc


def _header_of(stream: BinaryIO, name: str) -> tuple[str, int, int]:
    """(format, width, height) of an open stream, through :func:`_open_header`."""
    with _open_header(stream, name) as image:
        return str(image.format), image.width, image.height
