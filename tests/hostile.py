"""The hostile corpus: every kind of file, name, archive and dataset an entry point must survive.

Everything is generated here, by the tests; nothing is downloaded. A :class:`Case` is one
hostile input and what each entry point that takes files must do with it (:class:`Expect`):

* broken, disguised, oversized (decompression bombs) and crafted images, and files that are
  no regular file at all (a FIFO, a link, a 600 MB sparse file, a link to ``/dev/zero``);
* good photos under odd names: bytes that are not UTF-8, 255 bytes long, Windows' reserved
  names, look-alike letters, NFC and NFD forms of one name, leading dashes, newlines, terminal
  escapes, right-to-left overrides, Markdown;
* malformed and malicious zips (:data:`ARCHIVES`) and two zip bombs;
* degenerate datasets: one class, an empty class, one image, a class whose every training
  file is unreadable, 1:50 imbalance.

Bombs (:attr:`Case.bomb`) must also be dealt with in bounded time and memory.

:func:`source` writes a case as a folder (the case's files in ``cats/``, beside good photos of
cats and dogs), :func:`zipped` as a zip of that folder, :func:`place` only the case's files
(for ``predict``). :data:`CORPUS` lists every case; ``tests/test_entry_points.py`` runs each
through every entry point its :attr:`Case.expect` names.
"""

from __future__ import annotations

import functools
import gzip
import io
import json
import os
import re
import struct
import unicodedata
import zipfile
import zlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from builders import (
    RawEntry,
    bmp_declaring,
    deflated,
    encode,
    gif_with,
    halved,
    image_bytes,
    noise_rgb,
    orientation,
    png_chunk,
    png_declaring,
    raw_zip,
    tiff_with,
    with_exif,
    write,
)
from PIL import Image

from catdog.data.archive import ExtractLimits
from catdog.data.names import shown

# ---------------------------------------------------------------------------------------------
# Hostile image files: name → (bytes, what the message says after the name, as a regex)


BROKEN_IMAGES: dict[str, tuple[Callable[[], bytes], str]] = {
    "empty.jpg": (lambda: b"", r"is not an image: it is empty \(0 bytes\)"),
    "notes.jpg": (
        lambda: b"this is not a photo of a dog",
        r"is not an image \(got 28 bytes of text\)",
    ),
    "noise.jpg": (
        lambda: bytes(np.random.default_rng(1).integers(0, 256, 1000, dtype=np.uint8)),
        r"is not an image \(got 1,000 bytes of binary data\)",
    ),
    "cut.jpg": (
        lambda: halved(encode(noise_rgb(), "JPEG")),
        r"is a corrupt or truncated image \(JPEG: image file is truncated",
    ),
    "cut.png": (
        lambda: halved(encode(noise_rgb(), "PNG")),
        r"is a corrupt or truncated image \(PNG: image file is truncated\)",
    ),
    "header.png": (
        lambda: encode(noise_rgb(), "PNG")[:30],
        r"looks like a PNG image but its header is damaged \(broken PNG file",
    ),
    "header.jpg": (
        lambda: encode(noise_rgb(), "JPEG")[:20],
        r"looks like a JPEG image but its header is damaged",
    ),
    "zero-width.png": (
        lambda: png_declaring(0, 10),
        r"looks like a PNG image but its header is damaged",
    ),
    "lzw.gif": (  # LZW minimum code size 12: more than GIF allows
        lambda: gif_with(10, b"\x0c"),
        r"is a corrupt or truncated image \(GIF: broken data stream",
    ),
    "frame.gif": (  # the frame declares 0×0 pixels
        lambda: gif_with(5, b"\0\0\0\0"),
        r"is a corrupt or truncated image \(GIF: tile cannot extend outside image\)",
    ),
    "compression.tif": (
        lambda: tiff_with(t259=999),  # Compression: no such scheme
        r"looks like a TIFF image but its header is damaged \(KeyError: 999\)",
    ),
    "samples.tif": (
        lambda: tiff_with(t277=40),  # SamplesPerPixel 40
        r"looks like a TIFF image but its header is damaged \(Invalid value for "
        r"samples per pixel\)",
    ),
    "strips.tif": (
        lambda: tiff_with(t278=0),  # RowsPerStrip 0
        r"is a corrupt or truncated image \(TIFF: tile cannot extend outside image\)",
    ),
    "cut.tif": (
        lambda: encode(noise_rgb(), "TIFF")[:200],
        r"is a corrupt or truncated image \(TIFF: image file is truncated",
    ),
    "eps.jpg": (
        lambda: b"%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 10 10\nshowpage\n",
        r"is a PostScript/EPS file, not an image format catdog reads \(catdog reads "
        r"JPEG, PNG, BMP, GIF, WebP, TIFF or PPM/PGM; convert it to JPEG or PNG\)",
    ),
    "pdf.jpg": (
        lambda: b"%PDF-1.4\n1 0 obj\n<< /Type /Catalog >>\nendobj\n%%EOF\n",
        r"is a PDF document, not an image format catdog reads",
    ),
    "iphone.jpg": (
        lambda: b"\x00\x00\x00\x18ftypheic\x00\x00\x00\x00mif1heic" + b"\0" * 64,
        r"is a HEIC/HEIF photo, not an image format catdog reads",
    ),
    "drawing.png": (
        lambda: b'<?xml version="1.0"?>\n<svg xmlns="http://www.w3.org/2000/svg"></svg>\n',
        r"is an SVG drawing, not an image format catdog reads",
    ),
    "icon.jpg": (
        lambda: encode(noise_rgb(32, 32), "ICO"),
        r"is an icon \(ICO\) file, not an image format catdog reads",
    ),
}


BOMB_IMAGES: dict[str, tuple[Callable[[], bytes], str]] = {
    "bomb.png": (
        lambda: png_declaring(100_000, 100_000),
        r"is too large: 10,000 megapixels \(the limit is 50\); shrink it",
    ),
    "wide.png": (  # under Pillow's own bomb limit (89 MP), over ours
        lambda: png_declaring(8_000, 7_000),
        r"is too large: 8000×7000 pixels \(56 megapixels; the limit is 50\); shrink",
    ),
    "bomb.bmp": (
        lambda: bmp_declaring(60_000, 60_000),
        r"is too large: 3,600 megapixels \(the limit is 50\)",
    ),
    "screen.gif": (  # logical screen 65535×65535
        lambda: gif_with(6, struct.pack("<HH", 65535, 65535), from_descriptor=False),
        r"is too large: 4,295 megapixels \(the limit is 50\)",
    ),
    "canvas.gif": (  # a frame placed at (60000, 60000) grows the canvas while decoding
        lambda: gif_with(1, struct.pack("<HH", 60000, 60000)),
        r"is too large: 3,609 megapixels \(the limit is 50\)",
    ),
    "bomb.tif": (
        lambda: tiff_with(t256=65535, t257=65535),
        r"is too large: 4,295 megapixels \(the limit is 50\)",
    ),
}


# Files whose decoding work is not bounded by their pixels: scans, segments, chunks, inflated
# metadata, frames, pages, strips (catdog.data.image_work). Each is tiny and would cost a
# decoder minutes or gigabytes; each is refused from its structure, before any decoder runs.


def _progressive(size: int = 48) -> bytes:
    return encode(noise_rgb(size, size), "JPEG", progressive=True)


def _repeated_scans(times: int, declare: tuple[int, int] | None = None) -> bytes:
    """A progressive JPEG whose first scan is repeated ``times`` times (libjpeg warns and
    decodes each again), its frame header declaring ``declare`` (width, height) if given."""
    data = bytearray(_progressive())
    if declare is not None:
        sof = data.index(b"\xff\xc2")
        data[sof + 5 : sof + 9] = struct.pack(">HH", declare[1], declare[0])
    first, second = [m.start() for m in re.finditer(rb"\xff\xda", bytes(data))][:2]
    scan = bytes(data[first:second])
    return bytes(data[:second]) + scan * times + bytes(data[second:])


def _segments(count: int) -> bytes:
    """A JPEG with ``count`` empty comment segments after its start marker."""
    data = encode(noise_rgb(), "JPEG")
    return data[:2] + b"\xff\xfe\x00\x02" * count + data[2:]


def _png_with(*chunks: bytes) -> bytes:
    """A small PNG (10×10) with ``chunks`` inserted before its image data."""
    header = png_chunk(b"IHDR", struct.pack(">IIBBBBB", 10, 10, 8, 2, 0, 0, 0))
    pixels = png_chunk(b"IDAT", zlib.compress(b"\0" * (10 * 31)))
    return b"\x89PNG\r\n\x1a\n" + header + b"".join(chunks) + pixels + png_chunk(b"IEND", b"")


INFLATED = zlib.compress(bytes(8 << 20), 9)  # 8 MiB of zeros in about 8 kB


def _gif_frames(count: int) -> bytes:
    """A GIF whose one frame is repeated ``count`` times."""
    data = encode(noise_rgb(8, 8).convert("P"), "GIF")
    palette = 3 * 2 ** ((data[10] & 7) + 1) if data[10] & 0x80 else 0
    start = data.index(b"\x2c", 13 + palette)
    return data[:start] + data[start:-1] * count + b"\x3b"


def _tiff_pages(count: int) -> bytes:
    """A TIFF whose one page (IFD) is chained ``count`` times (each copy points at the
    same pixels)."""
    data = bytearray(encode(noise_rgb(8, 8), "TIFF"))
    ifd = struct.unpack("<I", data[4:8])[0]
    entries = struct.unpack("<H", data[ifd : ifd + 2])[0]
    block = bytes(data[ifd : ifd + 2 + 12 * entries])
    next_at = ifd + 2 + 12 * entries
    for _ in range(count - 1):
        while len(data) % 2:
            data += b"\0"
        data[next_at : next_at + 4] = struct.pack("<I", len(data))
        next_at = len(data) + len(block)
        data += block + b"\0\0\0\0"
    return bytes(data)


def _tiff_strips(count: int) -> bytes:
    """A TIFF whose StripOffsets declare ``count`` strips."""
    data = bytearray(encode(noise_rgb(), "TIFF"))
    ifd = struct.unpack("<I", data[4:8])[0]
    for i in range(struct.unpack("<H", data[ifd : ifd + 2])[0]):
        entry = ifd + 2 + 12 * i
        if struct.unpack("<H", data[entry : entry + 2])[0] in (273, 279):
            data[entry + 4 : entry + 8] = struct.pack("<I", count)
    return bytes(data)


def _webp_frames(count: int) -> bytes:
    """An animated WebP of ``count`` (empty) frames."""

    def chunk(kind: bytes, body: bytes) -> bytes:
        return kind + struct.pack("<I", len(body)) + body + b"\0" * (len(body) & 1)

    body = chunk(b"VP8X", b"\x02\0\0\0" + b"\x09\0\0" + b"\x09\0\0")
    body += chunk(b"ANIM", b"\0" * 6) + chunk(b"ANMF", b"\0" * 16) * count
    return b"RIFF" + struct.pack("<I", len(body) + 4) + b"WEBP" + body


def _ztxt(size_mb: int = 8) -> bytes:
    return png_chunk(b"zTXt", b"Comment\0\0" + zlib.compress(bytes(size_mb << 20), 9))


WORK_BOMBS: dict[str, tuple[Callable[[], bytes], str]] = {
    "scans.jpg": (lambda: _repeated_scans(500),
                  r"has more than 100 progressive scans \(photos have about 10\)"),
    "scan-work.jpg": (lambda: _repeated_scans(30, declare=(8000, 6000)),
                      r"has \d+ progressive scans of 48 megapixels, more decoding work than the "
                      r"limit \(1,000 megapixel-scans\)"),
    "segments.jpg": (lambda: _segments(6000), r"has more than 5,000 JPEG segments"),
    "chunks.png": (lambda: _png_with(*[png_chunk(b"tEXt", b"k\0v")] * 1100),
                   r"has more than 1,000 PNG metadata chunks"),
    "ztxt.png": (lambda: _png_with(_ztxt()),
                 r"has a compressed text chunk \(zTXt\) that inflates past 4 MB of metadata"),
    "ztxt-many.png": (lambda: _png_with(*[_ztxt(1)] * 6),
                      r"has a compressed text chunk \(zTXt\) that inflates past 4 MB"),
    "iccp.png": (lambda: _png_with(png_chunk(b"iCCP", b"icc\0\0" + INFLATED)),
                 r"has a compressed colour profile chunk \(iCCP\) that inflates past 4 MB"),
    "itxt.png": (lambda: _png_with(png_chunk(b"iTXt", b"k\0\x01\0en\0\0" + INFLATED)),
                 r"has a compressed text chunk \(iTXt\) that inflates past 4 MB"),
    "frames.png": (lambda: _png_with(png_chunk(b"acTL", struct.pack(">II", 5000, 0))),
                   r"is an animation of 5,000 frames \(the limit is 1,000\)"),
    "frames.gif": (lambda: _gif_frames(1100), r"is an animation of more than 1,000 frames"),
    "pages.tif": (lambda: _tiff_pages(1100), r"is a TIFF of more than 1,000 pages"),
    "strips.tiff": (lambda: _tiff_strips(200_000),
                    r"is a TIFF cut into 200,000 strips or tiles \(the limit is 100,000\)"),
    "frames.webp": (lambda: _webp_frames(1100), r"is an animation of more than 1,000 frames"),
}  # fmt: skip

# Work that real photos do ask for: never refused.
REAL_WORK: dict[str, Callable[[], bytes]] = {
    "progressive.jpg": _progressive,
    "animated.gif": lambda: _gif_frames(12),
    "animated.png": lambda: encode(noise_rgb(), "PNG", save_all=True,
                                   append_images=[noise_rgb(seed=k) for k in range(1, 6)]),
    "pages.tif": lambda: _tiff_pages(3),
    "profile.png": lambda: _png_with(png_chunk(b"iCCP", b"icc\0\0" + zlib.compress(bytes(4000)))),
}  # fmt: skip


# ---------------------------------------------------------------------------------------------
# Hostile zips: each is refused, or its bad entry skipped, with a message naming the entry


def good_entries() -> list[RawEntry]:
    """Three cats and three dogs: enough for an import, whatever else the archive holds."""
    return [
        RawEntry(f"{cls}/{cls[:-1]}.{i}.jpg", image_bytes(k, seed=10 * k + i))
        for k, cls in enumerate(("cats", "dogs"))
        for i in range(3)
    ]


GOOD_NAMES = sorted(e.name for e in good_entries())
PHOTO = image_bytes(0, seed=99)


@dataclass(frozen=True)
class Archive:
    """A hostile archive and what must happen to it."""

    id: str
    build: Callable[[Path], Path]  # writes the archive at the path given, returns it
    message: str | re.Pattern[str]  # the error, or the skipped entry's reason, exactly
    skipped: str | None = None  # the skipped entry's name; None: the archive is refused
    limits: ExtractLimits | None = None


def raw(*extra: RawEntry, **options) -> Callable[[Path], Path]:
    """Build the good entries plus ``extra`` with :func:`raw_zip`."""
    return lambda path: raw_zip(path, [*good_entries(), *extra], **options)


def edited(edit: Callable[[bytearray], None], *extra: RawEntry) -> Callable[[Path], Path]:
    """Build a raw zip, then change its bytes with ``edit``."""

    def build(path: Path) -> Path:
        raw_zip(path, [*good_entries(), *extra])
        data = bytearray(path.read_bytes())
        edit(data)
        path.write_bytes(bytes(data))
        return path

    return build


def _break_last_local_header(data: bytearray) -> None:
    data[data.rindex(b"PK\x03\x04") : data.rindex(b"PK\x03\x04") + 4] = b"XXXX"


def _truncate(data: bytearray) -> None:
    del data[len(data) // 2 :]


def with_comment(comment: bytes) -> Callable[[Path], Path]:
    """Build the good entries with zipfile, with an archive comment."""

    def build(path: Path) -> Path:
        with zipfile.ZipFile(path, "w") as zf:
            for entry in good_entries():
                zf.writestr(str(entry.name), entry.data)
            zf.comment = comment
        return path

    return build


def _point_at_first(*names: str) -> Callable[[bytearray], None]:
    """Make the central records of ``names`` point at the first one's local header: entries
    that share one stretch of data, as Fifield's overlapping zip bombs do."""

    def edit(data: bytearray) -> None:
        records = {}
        at = data.index(b"PK\x01\x02")
        while data[at : at + 4] == b"PK\x01\x02":
            n, m, k = struct.unpack_from("<3H", data, at + 28)
            records[bytes(data[at + 46 : at + 46 + n]).decode()] = at
            at += 46 + n + m + k
        first = struct.unpack_from("<L", data, records[names[0]] + 42)[0]
        for name in names[1:]:
            struct.pack_into("<L", data, records[name] + 42, first)

    return edit


_ZEROS = deflated("x", bytes(900 * 1024)).data  # 900 KiB of zeros: under the per-entry rules
TARBALL = gzip.compress(b"a tar archive would be here" * 10)


P = "photos.zip"
AMBIGUOUS = "the archive is damaged or crafted, re-create it"
LONG = "cats/" + "a" * 300 + ".jpg"
DEEP = "cats/" + "/".join(["e" * 200] * 6) + "/x.jpg"
GOOD_BYTES = sum(len(e.data) for e in good_entries())

ARCHIVES = [
    # --- not a zip, or cut short ------------------------------------------------------------
    Archive("not-a-zip", lambda p: (p.write_text("just some text\n"), p)[1],
            f"{P} is not a readable zip file (there is no zip end record in its last 64 KiB); "
            "choose a .zip archive"),
    Archive("empty-file", lambda p: (p.write_bytes(b""), p)[1],
            f"{P} is not a readable zip file (there is no zip end record in its last 64 KiB); "
            "choose a .zip archive"),
    Archive("truncated", edited(_truncate),
            f"{P} is not a readable zip file: it starts like one but its end (the central "
            "directory) is missing, so it was cut short, e.g. by an interrupted download or copy; "
            "get the file again"),
    # --- entries that are skipped, the rest imported ------------------------------------------
    Archive("unsupported-method", raw(RawEntry("cats/b.jpg", b"\x00" * 50, plain=PHOTO, method=99)),
            f"{P}: entry 'cats/b.jpg' uses compression method 99 (unsupported); skipped. "
            "Re-create the archive with standard deflate", skipped="cats/b.jpg"),
    Archive("deflate64", raw(RawEntry("cats/b.jpg", b"\x00" * 50, plain=PHOTO, method=9)),
            f"{P}: entry 'cats/b.jpg' uses compression method 9 (unsupported); skipped. "
            "Re-create the archive with standard deflate", skipped="cats/b.jpg"),
    Archive("encrypted", raw(RawEntry("cats/b.jpg", b"\x13" * 60, plain=PHOTO, flags=0x1)),
            f"{P}: entry 'cats/b.jpg' is encrypted; skipped. Unzip it with its password and "
            "import the folder", skipped="cats/b.jpg"),
    Archive("bad-crc", raw(deflated("cats/b.jpg", PHOTO, crc=zlib.crc32(PHOTO) ^ 1)),
            f"{P}: entry 'cats/b.jpg' is damaged: its data does not match its CRC-32 checksum; "
            "skipped", skipped="cats/b.jpg"),
    Archive("corrupt-deflate", raw(RawEntry("cats/b.jpg", b"\xff" * 64, plain=PHOTO, method=8)),
            re.compile(re.escape(f"{P}: entry 'cats/b.jpg' has corrupt compressed data (Error -3 "
                                 "while decompressing data: ") + r"[^)]+\); skipped"),
            skipped="cats/b.jpg"),
    Archive("data-cut-short", raw(RawEntry("dogs/z.jpg", PHOTO, size=10_000, csize=10_000)),
            f"{P}: entry 'dogs/z.jpg' is cut short: the archive ends inside its data (truncated); "
            "skipped", skipped="dogs/z.jpg"),
    Archive("bad-local-header", edited(_break_last_local_header, RawEntry("dogs/z.jpg", PHOTO)),
            f"{P}: entry 'dogs/z.jpg' has a damaged local header (Bad magic number for file "
            "header); skipped", skipped="dogs/z.jpg"),
    Archive("name-too-long", raw(RawEntry(LONG, PHOTO)),
            f"{P}: entry {LONG[:80]!r}… has a name too long to store (a part of 304 bytes, 309 in "
            "all; the limits are 255 and 1024); skipped. Shorten it", skipped=LONG),
    Archive("path-too-long", raw(RawEntry(DEEP, PHOTO)),
            f"{P}: entry {DEEP[:80]!r}… has a name too long to store (a part of 200 bytes, 1216 in "
            "all; the limits are 255 and 1024); skipped. Shorten it", skipped=DEEP),
    Archive("control-character", raw(RawEntry("cats/a\nb.jpg", PHOTO)),
            f"{P}: entry 'cats/a\\nb.jpg' has control characters in its name; skipped. Rename the "
            "file", skipped="cats/a\nb.jpg"),
    Archive("over-entry-cap", raw(RawEntry("cats/big.bmp", bytes(5000))),
            f"{P}: entry 'cats/big.bmp' is 5,000 bytes, over the 4,000-byte limit for one file "
            "(no photo is that big); skipped", skipped="cats/big.bmp",
            limits=ExtractLimits(max_entry_bytes=4000)),
    # --- names that escape or deceive: refused --------------------------------------------
    Archive("absolute", raw(RawEntry("/etc/cron.d/evil", b"x")),
            f"{P}: entry '/etc/cron.d/evil' has an absolute path; refusing to extract an archive "
            "that writes outside its folder"),
    Archive("dotdot", raw(RawEntry("cats/../../evil.jpg", b"x")),
            f"{P}: entry 'cats/../../evil.jpg' contains '..'; refusing to extract an archive that "
            "writes outside its folder"),
    Archive("backslash-dotdot", raw(RawEntry("..\\..\\evil.jpg", b"x")),
            f"{P}: entry '..\\\\..\\\\evil.jpg' contains '..'; refusing to extract an archive that "
            "writes outside its folder"),
    Archive("drive-letter", raw(RawEntry("C:\\Windows\\evil.dll", b"x")),
            f"{P}: entry 'C:\\\\Windows\\\\evil.dll' has an absolute path; refusing to extract an "
            "archive that writes outside its folder"),
    Archive("nul-in-name", raw(RawEntry(b"cats/a.jpg\x00.exe", b"x")),
            f"{P}: entry 'cats/a.jpg\\x00.exe' has a NUL character in its name, a trick to show "
            "one name and extract another; the archive is refused"),
    Archive("bad-utf8-name", raw(RawEntry(b"cats/\xff\xfe.jpg", PHOTO, flags=0x800)),
            f"{P}: entry 'cats/\ufffd\ufffd.jpg' is marked as having a UTF-8 name but its name is "
            "not valid UTF-8; re-create the archive"),
    Archive("symlink", raw(RawEntry("cats/link.jpg", b"/etc/passwd", mode=0o120777)),
            f"{P}: entry 'cats/link.jpg' is a symbolic link; links in archives can point outside "
            "the extraction folder, so the archive is refused"),
    # --- ambiguous archives: refused -------------------------------------------------------
    Archive("file-and-folder", raw(RawEntry("cats", b"not a folder")),
            f"{P}: entry 'cats' is a file, but entry 'cats/cat.0.jpg' makes it a folder; the "
            "archive is ambiguous and refused. Re-create it"),
    Archive("folder-entry-and-file", raw(RawEntry("birds/", b""), RawEntry("birds", b"x")),
            f"{P}: entry 'birds' is a file, but entry 'birds/' makes it a folder; the archive is "
            "ambiguous and refused. Re-create it"),
    Archive("duplicate", raw(RawEntry("cats/cat.0.jpg", PHOTO)),
            f"{P}: entry 'cats/cat.0.jpg' appears twice; which copy is meant is ambiguous, so the "
            "archive is refused. Re-create it"),
    Archive("duplicate-by-backslash", raw(RawEntry("cats\\cat.1.jpg", PHOTO)),
            f"{P}: entry 'cats\\\\cat.1.jpg' appears twice; which copy is meant is ambiguous, so "
            "the archive is refused. Re-create it"),
    # --- end records and directory that lie: refused before zipfile parses ---------------------
    Archive("too-many-entries", raw(),
            f"{P} declares 6 entries (the limit is 5); split it into smaller archives",
            limits=ExtractLimits(max_entries=5)),
    Archive("count-lies-low", raw(count=1),
            f"{P} holds more than 5 entries although its end record declares 1; split it into "
            "smaller archives", limits=ExtractLimits(max_entries=5)),
    Archive("count-disagrees", raw(count=2),
            f"{P}: its end record declares 2 entries but its central directory holds 6; "
            f"{AMBIGUOUS}"),
    Archive("directory-too-big", raw(),
            f"{P} has a 360-byte central directory (the limit is 100); split it into smaller "
            "archives", limits=ExtractLimits(max_directory_bytes=100)),
    Archive("directory-size-lies", raw(cd_size=100_000),
            f"{P}: its central directory would start before the file does; the file is truncated "
            "or damaged, get it again"),
    Archive("directory-size-short", raw(cd_size=330),
            f"{P}: its central directory is damaged at byte 0 of 330 (no entry header there); "
            "the file is truncated or corrupt, get it again"),
    Archive("fake-end-record-in-comment", with_comment(b"PK\x05\x06 looks like an end record"),
            f"{P}: its archive comment holds a second zip end record, so tools disagree on what "
            "the archive contains; it is refused, re-create it"),
    Archive("split-archive", raw(disk=1),
            f"{P} spans several disks (a split archive); join it first"),
    Archive("zip64-billions", raw(zip64={"count": 10**12}),
            f"{P} declares 1,000,000,000,000 entries (the limit is 500,000); split it into smaller "
            "archives"),
    Archive("zip64-locator-to-nothing", raw(zip64={"record": False}),
            f"{P} has a ZIP64 locator but no ZIP64 end record before it; {AMBIGUOUS}"),
    Archive("zip64-records-disagree", raw(zip64={"count": 6, "classic_count": 4}),
            f"{P}: its end records disagree on the entry count (the ZIP64 record says one thing, "
            f"the classic record another); {AMBIGUOUS}"),
    Archive("zip64-size-field-missing", raw(RawEntry("cats/b.jpg", PHOTO, size=0xFFFFFFFF)),
            f"{P}: entry 'cats/b.jpg' says its sizes are in a ZIP64 field, but that field holds 0 "
            f"of the 8 bytes needed; {AMBIGUOUS}"),
    Archive("zip64-size-lies-huge", raw(RawEntry("cats/b.jpg", PHOTO, size=0xFFFFFFFF,
                                                 extra=struct.pack("<HHQ", 1, 8, 1 << 40))),
            re.compile(re.escape(f"{P}: entry 'cats/b.jpg' would expand ") + r"[\d,]+× \("
                       + re.escape(f"{len(PHOTO):,} → 1,099,511,627,776 bytes; the limit is 100×); "
                                   "this looks like a zip bomb"))),
    Archive("corrupt-extra-field", raw(RawEntry("cats/b.jpg", PHOTO, extra=b"UT\x28\x00abcde")),
            f"{P}: entry 'cats/b.jpg' has a corrupt extra field (block 0x5455 says 40 bytes, 5 "
            "remain); the archive is refused, re-create it"),
    Archive("needs-newer-zip", raw(RawEntry("cats/b.jpg", PHOTO, version=64)),
            f"{P}: entry 'cats/b.jpg' needs zip format 6.4 to extract (Python reads up to 6.3); "
            "re-create the archive with standard deflate"),
    Archive("declared-total-over-cap", raw(RawEntry("cats/b.bmp", bytes(3000))),
            f"{P} would expand to more than {GOOD_BYTES + 1000:,} bytes (reached at entry "
            "'cats/b.bmp'); this looks like a zip bomb",
            limits=ExtractLimits(max_total_bytes=GOOD_BYTES + 1000)),
    # --- entries that share bytes, an archive that claims far more than it holds ----------
    Archive("overlapping-entries",
            edited(_point_at_first("cats/a.jpg", "cats/b.jpg"),
                   RawEntry("cats/a.jpg", PHOTO), RawEntry("cats/b.jpg", PHOTO)),
            f"{P}: entries 'cats/a.jpg' and 'cats/b.jpg' share bytes (their data overlap), a "
            "trick of zip bombs; the archive is refused, re-create it"),
    Archive("overlapping-many",
            edited(_point_at_first(*(f"dogs/{k}.jpg" for k in range(8))),
                   *(RawEntry(f"dogs/{k}.jpg", PHOTO) for k in range(8))),
            f"{P}: entries 'dogs/0.jpg' and 'dogs/1.jpg' share bytes (their data overlap), a "
            "trick of zip bombs; the archive is refused, re-create it"),
    Archive("overlapping-by-size",
            raw(RawEntry("cats/a.jpg", PHOTO, csize=len(PHOTO) + 40),
                RawEntry("cats/b.jpg", PHOTO)),
            f"{P}: entries 'cats/a.jpg' and 'cats/b.jpg' share bytes (their data overlap), a "
            "trick of zip bombs; the archive is refused, re-create it"),
    Archive("declared-total-vs-size",
            raw(*(RawEntry(f"cats/z{k}.bmp", _ZEROS, plain=bytes(900 * 1024), method=8)
                  for k in range(80))),
            re.compile(re.escape(f"{P} declares 73,") + r"[\d,]+ bytes of contents in [\d,]+ "
                       r"bytes \([\d,]+×; photos barely compress, the limit is 50×\); this "
                       r"looks like a zip bomb")),
    # --- archives inside the archive: skipped, never unpacked -------------------------------
    Archive("nested-zip", raw(RawEntry("cats/more.zip", PHOTO)),
            f"{P}: entry 'cats/more.zip' is an archive inside the archive; skipped (catdog does "
            "not unpack archives within archives). Unpack it and import its folder",
            skipped="cats/more.zip"),
    Archive("nested-tarball", raw(RawEntry("dogs/more.tar.gz", TARBALL)),
            f"{P}: entry 'dogs/more.tar.gz' is an archive inside the archive; skipped (catdog "
            "does not unpack archives within archives). Unpack it and import its folder",
            skipped="dogs/more.tar.gz"),
    # --- names one disk holds as one and another as two -----------------------------------
    Archive("case-twin-folders", raw(RawEntry("Cats/x.jpg", PHOTO)),
            f"{P}: entry 'Cats/x.jpg' is named like 'cats' but for case; most disks hold the "
            "two as one, so which is meant is ambiguous. Rename one and re-create the archive"),
    Archive("case-twin-files", raw(RawEntry("cats/CAT.0.jpg", PHOTO)),
            f"{P}: entry 'cats/CAT.0.jpg' is named like 'cats/cat.0.jpg' but for case; most "
            "disks hold the two as one, so which is meant is ambiguous. Rename one and re-create "
            "the archive"),
    Archive("nothing-extractable",
            lambda p: raw_zip(p, [RawEntry("cats/a.jpg", b"?" * 9, plain=PHOTO, flags=1),
                                  RawEntry("cats/b.jpg", b"?" * 9, plain=PHOTO, method=99)]),
            f"{P}: none of its 2 file(s) could be extracted; the first: {P}: entry 'cats/a.jpg' is "
            "encrypted; skipped. Unzip it with its password and import the folder"),
]  # fmt: skip


@functools.cache
def bomb_stream() -> tuple[bytes, int]:
    """Raw deflate of 256 MiB of zeros (about 250 KB) and its CRC."""
    packer, crc, parts = zlib.compressobj(9, zlib.DEFLATED, -15), 0, []
    block = bytes(1 << 20)
    for _ in range(256):
        parts.append(packer.compress(block))
        crc = zlib.crc32(block, crc)
    parts.append(packer.flush())
    return b"".join(parts), crc


def zip_bomb(declared: str) -> Callable[[Path], Path]:
    """The good entries plus 256 MiB of zeros; ``declared`` "honest" or "lying" (1000 bytes)."""

    def build(path: Path) -> Path:
        data, crc = bomb_stream()
        size = 256 << 20 if declared == "honest" else 1000
        bomb = RawEntry("cats/zeros.jpg", data, method=8, crc=crc, size=size)
        return raw_zip(path, [*good_entries(), bomb])

    return build


# ---------------------------------------------------------------------------------------------
# The corpus: each case, and what each entry point that takes files must do with it

FOLDER, ZIP, PAGE = "folder-import", "zip-import", "predict-page"
PREDICT, EVALUATE, TRAIN = "predict-cli", "evaluate-cli", "train-cli"
ENTRY_POINTS = (FOLDER, ZIP, PAGE, PREDICT, EVALUATE, TRAIN)
FILE_ENTRY_POINTS = (FOLDER, ZIP, PAGE, PREDICT, EVALUATE)

KEPT = "kept"  # the file is used: imported, classified, evaluated
SKIPPED = "skipped"  # the file is left out with its reason; the files beside it are used
REFUSED = "refused"  # the whole request is refused with one message; nothing is written
WARNED = "warned"  # done, with a warning that gives the counts

CLASSES = ("cats", "dogs")
GOOD_PER_CLASS = 4  # good photos beside a case's files, per class

# A file's bytes, or what makes it at the path given (a FIFO, a link, a sparse file).
Content = bytes | Callable[[Path], None]


@dataclass(frozen=True)
class Expect:
    """What one entry point must do with a case."""

    outcome: str  # KEPT, SKIPPED, REFUSED or WARNED
    pattern: str = ""  # a regex found in the message: the skip reason, the error, the warning
    named: bool = True  # the message shows each file's name as catdog.data.names.shown shows it


@dataclass(frozen=True)
class Case:
    """One hostile input and what every entry point that takes it must do."""

    id: str
    group: str  # "image", "file", "name", "dataset" or "archive"
    expect: Mapping[str, Expect]  # entry points not listed have nothing to say about the case
    files: tuple[tuple[str, Content], ...] = ()  # written into cats/ beside good photos
    tree: Callable[[Path], Path] | None = None  # or: writes the whole source (an archive)
    limits: ExtractLimits | None = None  # archive limits the case needs instead of the defaults
    bomb: bool = False  # must be dealt with in bounded time and memory
    cli: bool = False  # also run through `python -m catdog import` in a process of its own

    @property
    def names(self) -> list[str]:
        """The names of the case's own files (none for whole-source cases)."""
        return [name for name, _ in self.files]


def everywhere(outcome: str, pattern: str = "", **but: Expect | None) -> dict[str, Expect]:
    """The same expectation at every file entry point but those given as keywords
    (``zip_import=Expect(...)``, or None where the case is not run)."""
    expect = {entry: Expect(outcome, pattern) for entry in FILE_ENTRY_POINTS}
    for key, value in but.items():
        entry = key.replace("_", "-")
        assert entry in expect, key
        if value is None:
            del expect[entry]
        else:
            expect[entry] = value
    return expect


def photo(seed: int = 0, kind: int = 0, size: int = 40) -> bytes:
    """A good small JPEG (``kind`` 0 for cats, 1 for dogs)."""
    return image_bytes(kind, size=size, seed=seed)


def _zip_bytes() -> bytes:
    """A zip holding a photo."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("cat.jpg", photo())
    return buffer.getvalue()


# Disguised files beyond BROKEN_IMAGES: archives named as photos.
DISGUISED: dict[str, tuple[Callable[[], bytes], str]] = {
    "archive.jpg": (_zip_bytes, r"is a zip archive, not an image format catdog reads"),
    "gzip.png": (lambda: gzip.compress(photo()), r"is a gzip archive, not an image format"),
}

# Odd but good images: each is converted and used, never refused.
ODD_BUT_GOOD: dict[str, Callable[[], bytes]] = {
    "exif-rewrite.jpg": lambda: with_exif(  # rotating works, rewriting the EXIF fails
        encode(noise_rgb(), "JPEG"), orientation(6), (0x010E, 5, 1, b"\0" * 4)
    ),
    "cmyk.jpg": lambda: encode(Image.new("RGB", (40, 30), (200, 40, 10)).convert("CMYK"), "JPEG"),
    "deep.png": lambda: encode(
        Image.fromarray(np.arange(16 * 64, dtype=np.uint16).reshape(16, 64) * 50), "PNG"
    ),
    "bitmap.jpg": lambda: image_bytes(0, fmt="BMP"),
    "dot.png": lambda: encode(Image.new("RGB", (1, 1), (10, 200, 30)), "PNG"),
    "camera.jpg": lambda: encode(noise_rgb(), "MPO", save_all=True, append_images=[noise_rgb()]),
    "strip.jpg": lambda: encode(Image.new("RGB", (20_000, 1), (10, 200, 30)), "JPEG"),
}


def _image_cases() -> list[Case]:
    """Broken, disguised, oversized and crafted images: one file each."""
    cases = [
        Case(f"image:{name}", "image", everywhere(SKIPPED, reason), files=((name, build()),))
        for name, (build, reason) in {**BROKEN_IMAGES, **DISGUISED}.items()
    ]
    cases += [
        Case(f"bomb:{name}", "image", everywhere(SKIPPED, reason), ((name, build()),), bomb=True)
        for name, (build, reason) in BOMB_IMAGES.items()
    ]
    cases += [
        Case(f"odd:{name}", "image", everywhere(KEPT), files=((name, build()),))
        for name, build in ODD_BUT_GOOD.items()
    ]
    cases += [
        Case(f"work:{name}", "image", everywhere(SKIPPED, reason), ((name, build()),), bomb=True)
        for name, (build, reason) in WORK_BOMBS.items()
    ]
    cases += [
        Case(f"real-work:{name}", "image", everywhere(KEPT), files=((name, build()),))
        for name, build in REAL_WORK.items()
    ]
    return cases


# --- files that are no regular file ---------------------------------------------------------

BIGGER_THAN_A_PHOTO = 600_000_000  # over the 512 MiB a photo may have; sparse, so free


def _fifo(path: Path) -> None:
    """A named pipe: opening it to read blocks until someone writes."""
    os.mkfifo(path)


def _link_to_a_photo(path: Path) -> None:
    """A link to a good photo beside it (hidden, so nothing lists the photo itself)."""
    target = path.with_name(f".target-{path.name}")
    target.write_bytes(photo(seed=77))
    path.symlink_to(target.name)


def _sparse(path: Path) -> None:
    """A file of :data:`BIGGER_THAN_A_PHOTO` zero bytes that takes no disk space."""
    with open(path, "wb") as f:
        f.truncate(BIGGER_THAN_A_PHOTO)


def _link_to_dev_zero(path: Path) -> None:
    """A link to a device that never ends."""
    path.symlink_to("/dev/zero")


def _file_cases() -> list[Case]:
    """A FIFO, links and a file far bigger than any photo, where a photo is expected."""
    link = r"is a symbolic link; catdog never follows links"
    limit = r"is 600,000,000 bytes, over the 536,870,912-byte limit for one photo"
    not_in_zip = {"zip_import": None, "predict_page": None}
    return [
        Case("file:fifo", "file", everywhere(
            SKIPPED, r"is a named pipe \(FIFO\), not a regular file", **not_in_zip
        ), files=(("fifo.jpg", _fifo),)),
        Case("file:link", "file", everywhere(
            KEPT, folder_import=Expect(SKIPPED, link), predict_page=None,
            zip_import=Expect(REFUSED, r"is a symbolic link; links in archives can point outside"),
        ), files=(("link.jpg", _link_to_a_photo),)),
        Case("file:huge", "file", everywhere(SKIPPED, limit, **not_in_zip),
             files=(("huge.jpg", _sparse),), bomb=True),
        Case("file:dev-zero", "file", everywhere(
            SKIPPED, r"is a device, not a regular file", folder_import=Expect(SKIPPED, link),
            **not_in_zip,
        ), files=(("zero.jpg", _link_to_dev_zero),), bomb=True),
    ]  # fmt: skip


# --- good photos under odd names, and bad files under odd names -------------------------------

NON_UTF8 = os.fsdecode(b"caf\xe9-\xff.jpg")  # Latin-1 é and a stray byte: not UTF-8
NOT_AN_IMAGE = b"this is not a photo"
ESCAPES = "\x1b[2J\x1b[31mred.jpg"  # clears the terminal, then writes in red


def _named(name: str, data: bytes | None = None) -> tuple[tuple[str, Content], ...]:
    """One file called ``name`` holding ``data`` (default: a good photo)."""
    return ((name, photo(seed=len(name)) if data is None else data),)


def _bad_name_expect(name: str, in_zip: Expect | None = None) -> dict[str, Expect]:
    """A text file under ``name``: skipped everywhere, the name shown escaped on one line
    (``in_zip``: what zip import says instead, if it says something else)."""
    expect = everywhere(SKIPPED, re.escape(shown(name)) + r" is not an image")
    return expect | ({ZIP: in_zip} if in_zip else {})


def _name_cases() -> list[Case]:
    """Odd names: undecodable, long, reserved, look-alike, NFC/NFD, dashes, control
    characters, reordering characters, Markdown."""
    control = Expect(SKIPPED, r"has control characters in its name; skipped", named=False)
    nfc, nfd = (unicodedata.normalize(form, "Müller.jpg") for form in ("NFC", "NFD"))
    long = "x" * 251 + ".jpg"  # 255 bytes: the most a name may have
    twins = ("y" * 251 + ".png", "y" * 251 + ".jpg")  # one stem: the second needs "-2"
    reserved = ("CON.jpg", "nul.png", "aux.jpeg", "COM1.jpg", "lpt9.gif")
    markdown = "*bold* _it_ [x](e.x) <b>.jpg"
    cases = [
        Case("name:non-utf8", "name", everywhere(KEPT, predict_page=None), _named(NON_UTF8),
             cli=True),
        Case("name:non-utf8-bad", "name", everywhere(
            SKIPPED, re.escape(shown(NON_UTF8)) + " is not an image", predict_page=None,
            zip_import=Expect(SKIPPED, r"is not an image", named=False),
        ), _named(NON_UTF8, NOT_AN_IMAGE)),
        Case("name:255-bytes", "name", everywhere(KEPT), _named(long)),
        Case("name:255-bytes-twins", "name", everywhere(KEPT),
             tuple((n, photo(seed=200 + i)) for i, n in enumerate(twins))),
        Case("name:reserved", "name", everywhere(KEPT),
             tuple((n, photo(seed=200 + i)) for i, n in enumerate(reserved))),
        Case("name:nfc-nfd", "name", everywhere(KEPT),
             ((nfc, photo(seed=201)), (nfd, photo(seed=202)))),
        Case("name:leading-dashes", "name", everywhere(KEPT),
             (("-rf.jpg", photo(seed=201)), ("--help.jpg", photo(seed=202)))),
        Case("name:newline", "name", everywhere(KEPT, zip_import=control), _named("a\nb.jpg")),
        Case("name:newline-bad", "name", _bad_name_expect("c\nd.jpg", control),
             _named("c\nd.jpg", NOT_AN_IMAGE)),
        Case("name:terminal-escape-bad", "name", _bad_name_expect(ESCAPES, control),
             _named(ESCAPES, NOT_AN_IMAGE)),
        Case("name:right-to-left-bad", "name", _bad_name_expect("photo\u202egpj.png"),
             _named("photo\u202egpj.png", NOT_AN_IMAGE)),
        Case("name:markdown", "name", everywhere(KEPT), _named(markdown)),
        Case("name:markdown-bad", "name", _bad_name_expect("**loud** `x` <i>.png"),
             _named("**loud** `x` <i>.png", NOT_AN_IMAGE)),
    ]  # fmt: skip
    return cases + _class_name_cases()


def _class_folders(counts: Mapping[str, int]) -> Callable[[Path], Path]:
    """Unsplit class folders holding ``counts[class]`` good photos each."""

    def build(root: Path) -> Path:
        for k, (cls, n) in enumerate(counts.items()):
            for i in range(n):
                write(root / cls / f"{i}.jpg", photo(seed=100 * k + i, kind=k % 2))
        return root

    return build


def _class_name_cases() -> list[Case]:
    """Class folders whose names look like another's, or are one name in two forms."""
    lookalike = "c\u0430ts"  # Cyrillic а
    note = r"\u0430 is U\+0430 CYRILLIC SMALL LETTER A"
    warned = Expect(WARNED, rf"class {lookalike} .*{note}", named=False)
    nfc, nfd = (unicodedata.normalize(form, "Kätzchen") for form in ("NFC", "NFD"))
    return [
        Case("name:look-alike-class", "name", {
            FOLDER: warned, ZIP: warned,
            EVALUATE: Expect(REFUSED, rf"unexpected {lookalike} \({note}\)", named=False),
        }, tree=_class_folders({"cats": 4, lookalike: 4, "dogs": 4})),
        Case("name:nfc-nfd-class", "name", {FOLDER: Expect(KEPT), ZIP: Expect(KEPT)},
             tree=_class_folders({nfc: 3, nfd: 3, "Hunde": 6})),
        *_case_twin_cases(),
    ]  # fmt: skip


def _case_twin_cases() -> list[Case]:
    """Class folders one disk holds as one and another as two, and names that hide things."""
    twins = r"has class folders whose names differ only in case \(Cats/ and cats/\)"
    in_zip = Expect(REFUSED, r"is named like '(Cats|cats)' but for case", named=False)
    escape = "\x1b[31mcats"
    return [
        Case("name:class-case-twins", "name", {
            FOLDER: Expect(REFUSED, twins), ZIP: in_zip, EVALUATE: Expect(REFUSED, twins),
        }, tree=_class_folders({"Cats": 4, "cats": 4, "dogs": 8})),
        Case("name:class-case-triplets", "name", {
            FOLDER: Expect(REFUSED, r"differ only in case \(CATS/ and Cats/; CATS/ and cats/\)"),
            ZIP: Expect(REFUSED, r"is named like '(CATS|Cats|cats)' but for case", named=False),
            EVALUATE: Expect(REFUSED, r"differ only in case \(CATS/ and Cats/"),
        }, tree=_class_folders({"CATS": 3, "Cats": 3, "cats": 3, "dogs": 9})),
        Case("name:class-other-case", "name", {
            FOLDER: Expect(KEPT), ZIP: Expect(KEPT),
            EVALUATE: Expect(REFUSED, r"missing cats; unexpected CATS \(the names differ only in "
                             r"case: rename the folders as the run names them\)", named=False),
        }, tree=_class_folders({"CATS": 4, "dogs": 4})),
        Case("name:class-terminal-escape", "name", {
            FOLDER: Expect(KEPT),
            ZIP: Expect(REFUSED, r"cannot find a dataset in .* entry '\\x1b\[31mcats/0\.jpg' has "
                        r"control characters in its name; skipped", named=False),
            EVALUATE: Expect(REFUSED, r"unexpected \\x1b\[31mcats", named=False),
        }, tree=_class_folders({escape: 4, "dogs": 4})),
    ]  # fmt: skip


# --- degenerate datasets ------------------------------------------------------------------------

SPLITS = ("train", "validation", "test")


def _split_folders(counts: Mapping[str, tuple[int, int, int]]) -> Callable[[Path], Path]:
    """train/validation/test folders of class folders (empty ones too) with tiny photos."""

    def build(root: Path) -> Path:
        for k, (cls, per_split) in enumerate(counts.items()):
            for split, n in zip(SPLITS, per_split, strict=True):
                (root / split / cls).mkdir(parents=True, exist_ok=True)
                for i in range(n):
                    data = photo(seed=1000 * k + 100 * SPLITS.index(split) + i, kind=k, size=32)
                    write(root / split / cls / f"{cls[:-1]}.{i}.jpg", data)
        return root

    return build


def _with_broken_dogs(build: Callable[[Path], Path]) -> Callable[[Path], Path]:
    """The tree ``build`` writes, with three text files as the only training dogs."""

    def broken(root: Path) -> Path:
        build(root)
        for i in range(3):
            write(root / "train" / "dogs" / f"dog.{i}.jpg", NOT_AN_IMAGE)
        return root

    return broken


def _dataset_cases() -> list[Case]:
    """One class, an empty class, one image, a class whose files are all unreadable, 1:50
    imbalance: refused or warned, with the counts. (A zip keeps no empty folder, so zip
    import cannot name the empty class.)"""
    unequal = r"dogs has 150 images, cats 3 \(50 to 1\)"
    no_dogs = r"train/ has no images of dogs \(cats 4, dogs 0\)"
    unreadable = (
        r"the train split has no usable images of dogs: none of its 3 file\(s\) could be read "
        r"\(the first: train/dogs/dog\.0\.jpg is not an image"
    )
    return [
        Case("dataset:one-class", "dataset", {
            FOLDER: Expect(REFUSED, r"holds 1 class\(es\) of images \(cats: 8 files\)"),
            ZIP: Expect(REFUSED, r"holds 1 class\(es\) of images \(cats: 8 files\)"),
            TRAIN: Expect(REFUSED, r"train/ has 1 class folder\(s\) \(cats\)"),
            EVALUATE: Expect(REFUSED, r"do not match the run's classes .*missing dogs"),
        }, tree=_split_folders({"cats": (4, 2, 2)}), cli=True),
        Case("dataset:empty-class", "dataset", {
            FOLDER: Expect(REFUSED, r"holds 1 class\(es\) of images \(cats: 8 files; dogs: none\)"),
            ZIP: Expect(REFUSED, r"holds 1 class\(es\) of images \(cats: 8 files\)"),
            TRAIN: Expect(REFUSED, no_dogs),
            EVALUATE: Expect(WARNED, r"No dogs among these 2 images"),
        }, tree=_split_folders({"cats": (4, 2, 2), "dogs": (0, 0, 0)})),
        Case("dataset:one-image", "dataset", {
            FOLDER: Expect(REFUSED, r"holds 1 class\(es\) of images \(cats: 1 file; dogs: none\)"),
            ZIP: Expect(REFUSED, r"holds 1 class\(es\) of images \(cats: 1 file\)"),
            TRAIN: Expect(REFUSED, r"train/ has no images of dogs \(cats 1, dogs 0\)"),
            EVALUATE: Expect(REFUSED, r"has no images in its class folders"),
        }, tree=_split_folders({"cats": (1, 0, 0), "dogs": (0, 0, 0)})),
        Case("dataset:class-unreadable", "dataset", {
            FOLDER: Expect(REFUSED, unreadable), ZIP: Expect(REFUSED, unreadable),
        }, tree=_with_broken_dogs(_split_folders({"cats": (4, 2, 2), "dogs": (0, 2, 2)}))),
        *_duplicate_cases(),
        Case("dataset:imbalance-1-50", "dataset", {
            FOLDER: Expect(WARNED, unequal), ZIP: Expect(WARNED, unequal),
            TRAIN: Expect(WARNED, unequal),
        }, tree=_split_folders({"cats": (1, 1, 1), "dogs": (100, 25, 25)}), cli=True),
    ]  # fmt: skip


def _with_copies(build: Callable[[Path], Path], *copies: tuple[str, str]) -> Callable[[Path], Path]:
    """The tree ``build`` writes, with files copied byte for byte (``(from, to)``)."""

    def copied(root: Path) -> Path:
        build(root)
        for source, target in copies:
            write(root / target, (root / source).read_bytes())
        return root

    return copied


def _duplicate_cases() -> list[Case]:
    """The same photo twice: in one split, in two splits (a leak), in two classes. Imported
    as it is, the count said with a pointer to the audit."""
    tree = _split_folders({"cats": (4, 2, 2), "dogs": (4, 2, 2)})
    said = r"1 exact duplicate photo\(s\): 1 {}\. They were imported as they are; see them " \
        r"with `python -m catdog audit [\w-]+`"  # fmt: skip
    cases = {
        "within-split": (("train/cats/cat.0.jpg", "train/cats/again.jpg"),
                         "repeated within a split"),
        "across-splits": (("train/dogs/dog.0.jpg", "test/dogs/again.jpg"),
                          r"in two splits \(tested on what it trained on\)"),
        "across-classes": (("train/cats/cat.1.jpg", "train/dogs/cat.jpg"),
                           r"in two classes \(two labels for one photo\)"),
    }  # fmt: skip
    return [
        Case(f"dataset:duplicate-{key}", "dataset",
             {FOLDER: Expect(WARNED, said.format(what)), ZIP: Expect(WARNED, said.format(what))},
             tree=_with_copies(tree, copy))
        for key, (copy, what) in cases.items()
    ]  # fmt: skip


def _archive_cases() -> list[Case]:
    """The hostile zips, and two zip bombs (256 MiB of zeros, declared or hidden)."""
    cli = {"truncated", "dotdot", "symlink", "encrypted"}
    cases = []
    for archive in ARCHIVES:
        message = archive.message
        pattern = message.pattern if isinstance(message, re.Pattern) else re.escape(message)
        outcome = REFUSED if archive.skipped is None else SKIPPED
        expect = {ZIP: Expect(outcome, pattern, named=False)}
        cases.append(Case(f"zip:{archive.id}", "archive", expect, tree=archive.build,
                          limits=archive.limits, cli=archive.id in cli))  # fmt: skip
    bomb = r"entry 'cats/zeros.jpg' would expand [\d,]+× .*this looks like a zip bomb"
    hidden = r"entry 'cats/zeros.jpg' is damaged: its data does not match its CRC-32 checksum"
    return [
        *cases,
        Case("zip:bomb", "archive", {ZIP: Expect(REFUSED, bomb, named=False)},
             tree=zip_bomb("honest"), bomb=True, cli=True),
        Case("zip:bomb-lying-header", "archive", {ZIP: Expect(SKIPPED, hidden, named=False)},
             tree=zip_bomb("lying"), bomb=True),
    ]  # fmt: skip


CORPUS: list[Case] = [
    *_image_cases(),
    *_file_cases(),
    *_name_cases(),
    *_dataset_cases(),
    *_archive_cases(),
]
assert len({case.id for case in CORPUS}) == len(CORPUS), "case ids must be unique"


def cases_for(entry: str) -> list[Case]:
    """The cases ``entry`` has something to say about."""
    return [case for case in CORPUS if entry in case.expect]


# ---------------------------------------------------------------------------------------------
# Writing a case


def place(case: Case, folder: Path) -> list[Path]:
    """Write the case's own files into ``folder``; returns their paths."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for name, content in case.files:
        path = folder / name
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            content(path)
        paths.append(path)
    return paths


def good_photos(folder: Path, kind: int, n: int = GOOD_PER_CLASS) -> list[Path]:
    """``n`` good photos of class ``kind`` in ``folder``."""
    name = CLASSES[kind][:-1]
    return [
        write(folder / f"{name}.{i}.jpg", photo(seed=10 * kind + i, kind=kind)) for i in range(n)
    ]


def source(case: Case, root: Path) -> Path:
    """Write the case as a source folder at ``root``: its files in ``cats/`` beside
    :data:`GOOD_PER_CLASS` good photos, and as many in ``dogs/`` (or its own tree)."""
    if case.tree is not None:
        return case.tree(root)
    for kind, cls in enumerate(CLASSES):
        good_photos(root / cls, kind)
    place(case, root / "cats")
    return root


def zipped(case: Case, folder: Path) -> Path:
    """Write the case as ``folder/photos.zip``: an archive case as it is, any other as a zip
    of its :func:`source` (names stored byte for byte, links as links)."""
    archive = folder / P
    if case.group == "archive":
        assert case.tree is not None
        return case.tree(archive)
    return zip_tree(source(case, folder / "source"), archive)


def _utf8(name: bytes) -> bool:
    """Whether a name's bytes are UTF-8."""
    try:
        name.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def zip_tree(root: Path, archive: Path) -> Path:
    """Zip everything under ``root``: regular files, links (as links), empty folders; names
    as their bytes, flagged as UTF-8 when they are."""
    entries = []
    for path in sorted(root.rglob("*")):
        name = os.fsencode(path.relative_to(root).as_posix())
        flags = 0x800 if _utf8(name) else 0
        if path.is_symlink():
            target = os.fsencode(os.readlink(path))
            entries.append(RawEntry(name, target, flags=flags, mode=0o120777))
        elif path.is_dir() and not any(path.iterdir()):
            entries.append(RawEntry(name + b"/", b"", flags=flags, mode=0o40755))
        elif path.is_file():
            entries.append(RawEntry(name, path.read_bytes(), flags=flags))
    return raw_zip(archive, entries)


# ---------------------------------------------------------------------------------------------
# Hostile model files (a run's best.keras / last.keras) and weights files (--weights, uploads):
# each refused in one sentence, before Keras or h5py allocates what the file declares.


@dataclass(frozen=True)
class ModelFile:
    """A hostile model or weights file: how to make it, and what the refusal says."""

    id: str
    build: Callable[[Path, bytes], None]  # writes at the path, given a good file's bytes
    message: str  # a regex found in the one-line error
    upload: bool = True  # bytes only: can be uploaded (no FIFO, folder or link)


def _keras_parts(good: bytes) -> dict[str, bytes]:
    with zipfile.ZipFile(io.BytesIO(good)) as zf:
        return {info.filename: zf.read(info) for info in zf.infolist()}


def _zipped(parts: Mapping[str, bytes], method: int = zipfile.ZIP_STORED) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=method) as zf:
        for name, data in parts.items():
            zf.writestr(name, data)
    return buffer.getvalue()


def _parts(**change: bytes | None) -> Callable[[Path, bytes], None]:
    """The good .keras file with parts replaced (``config_json=...``) or left out (None)."""

    def build(path: Path, good: bytes) -> None:
        parts = _keras_parts(good)
        for key, value in change.items():
            name = key.replace("_json", ".json").replace("_h5", ".h5").replace("model_", "model.")
            if value is None:
                del parts[name]
            else:
                parts[name] = value
        path.write_bytes(_zipped(parts))

    return build


def _config(edit: Callable[[dict], None]) -> Callable[[Path, bytes], None]:
    """The good .keras file with its config.json edited."""

    def build(path: Path, good: bytes) -> None:
        parts = _keras_parts(good)
        config = json.loads(parts["config.json"])
        edit(config)
        parts["config.json"] = json.dumps(config).encode()
        path.write_bytes(_zipped(parts))

    return build


def _layer(config: dict, index: int = -1) -> dict:
    """A layer's own settings in a saved Sequential/functional model's config."""
    return config["config"]["layers"][index]


def _h5(**datasets: tuple[tuple[int, ...], dict]) -> bytes:
    """An HDF5 file declaring datasets of the shapes given (no data written)."""
    import h5py

    buffer = io.BytesIO()
    with h5py.File(buffer, "w") as h5:
        for name, (shape, options) in datasets.items():
            h5.create_dataset(name.replace("__", "/"), shape=shape, dtype="f4", **options)
    return buffer.getvalue()


def _h5_with_data() -> bytes:
    """A small honest HDF5 file: one 100×100 tensor, stored."""
    import h5py

    buffer = io.BytesIO()
    with h5py.File(buffer, "w") as h5:
        h5.create_dataset("layers/dense/vars/0", data=np.ones((100, 100), dtype="f4"))
    return buffer.getvalue()


HUGE_TENSOR = _h5(layers__dense__vars__0=((100_000, 100_000), {}))
HUGE_COMPRESSED = _h5(a=((30_000, 30_000), {"compression": "gzip", "chunks": (1000, 1000)}))


def _fifo_file(path: Path, good: bytes) -> None:
    os.mkfifo(path)


def _folder(path: Path, good: bytes) -> None:
    path.mkdir()


def _dev_zero(path: Path, good: bytes) -> None:
    path.symlink_to("/dev/zero")


def _data(data: bytes | Callable[[bytes], bytes]) -> Callable[[Path, bytes], None]:
    return lambda path, good: path.write_bytes(data(good) if callable(data) else data)


MODEL_FILES = [
    ModelFile("empty", _data(b""), r"(best|last)\.keras is empty \(0 bytes\)"),
    ModelFile("fifo", _fifo_file, r"is a named pipe \(FIFO\), not a regular file", upload=False),
    ModelFile("folder", _folder, r"(best|last)\.keras is a folder, not a file", upload=False),
    ModelFile("dev-zero", _dev_zero, r"is a device, not a regular file", upload=False),
    ModelFile("text", _data(b"a model, honestly"), r"is not a Keras model file: it is not a zip"),
    ModelFile("truncated", _data(halved), r"is not a Keras model file: it is not a zip archive"),
    ModelFile("no-weights", _parts(model_weights_h5=None),
              r"is not a whole Keras model file: it lacks model\.weights\.h5"),
    ModelFile("no-config", _parts(config_json=None),
              r"is not a whole Keras model file: it lacks config\.json"),
    ModelFile("config-not-json", _parts(config_json=b"{not json"),
              r"its config\.json cannot be read"),
    ModelFile("config-a-list", _parts(config_json=b"[1, 2]"),
              r"its config\.json does not describe a Keras model"),
    ModelFile("config-zip-bomb", lambda path, good: path.write_bytes(_zipped(
        {**_keras_parts(good), "config.json": b" " * (20 << 20)}, zipfile.ZIP_DEFLATED)),
        r"its part config\.json would expand [\d,]+×; this looks like a zip bomb"),
    ModelFile("unknown-class", _config(lambda c: _layer(c).update(class_name="Foo")),
              r"uses a layer or object class Keras and catdog do not define "
              r"\(keras\.layers\.Foo\)"),
    ModelFile("foreign-module",
              _config(lambda c: _layer(c).update(module="evil.layers", class_name="Thing")),
              r"do not define \(evil\.layers\.Thing\); it was made by other software"),
    ModelFile("huge-units", _config(lambda c: _layer(c)["config"].update(units=10**8)),
              r"layer Dense dense_1 declares units 100,000,000, beyond any model catdog loads"),
    ModelFile("huge-input",
              _config(lambda c: _layer(c, 0)["config"].update(batch_shape=[None, 10**6, 10**6, 3])),
              r"declares batch_shape 1,000,000"),
    ModelFile("wrong-type", _config(lambda c: _layer(c)["config"].update(units="many")),
              r"(best|last)\.keras cannot be loaded \(TypeError"),
    ModelFile("huge-tensor", _parts(model_weights_h5=HUGE_TENSOR),
              r"declares a tensor layers/dense/vars/0 of shape \(100000, 100000\) "
              r"\(40,000,000,000 bytes\) but holds 0 bytes of it"),
    ModelFile("huge-compressed", _parts(model_weights_h5=HUGE_COMPRESSED),
              r"declares 3,600,000,000 bytes of tensors"),
    ModelFile("weights-not-hdf5", _parts(model_weights_h5=b"\x89HDF\r\n\x1a\n" + bytes(100)),
              r"is not a readable HDF5 weights file"),
]  # fmt: skip

WEIGHTS_FILES = [
    ModelFile("empty", _data(b""), r"is not a weights file: it is empty"),
    ModelFile("fifo", _fifo_file, r"is a named pipe \(FIFO\), not a regular file; give the path",
              upload=False),
    ModelFile("folder", _folder, r"is a folder, not a file; give the path of a weights file",
              upload=False),
    ModelFile("dev-zero", _dev_zero, r"is a device, not a regular file", upload=False),
    ModelFile("text", _data(b"weights, honestly"), r"not in the HDF5 format of Keras' \.h5 files"),
    ModelFile("a-keras-zip", _data(lambda good: _zipped({"config.json": b"{}"})),
              r"it is a zip archive \(a saved \.keras model\?\), not an HDF5 file"),
    ModelFile("huge-tensor", _data(HUGE_TENSOR),
              r"declares a tensor layers/dense/vars/0 of shape \(100000, 100000\)"),
    ModelFile("huge-compressed", _data(HUGE_COMPRESSED),
              r"declares 3,600,000,000 bytes of tensors"),
    ModelFile("damaged-hdf5", _data(b"\x89HDF\r\n\x1a\n" + bytes(100)),
              r"is not a readable HDF5 weights file"),
    ModelFile("truncated-hdf5", _data(lambda good: halved(_h5_with_data())),
              r"is not a readable HDF5 weights file"),
]  # fmt: skip
