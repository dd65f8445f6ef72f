"""The hostile corpus: files and archives that entry points taking user files must survive.

Everything is generated here, by the tests; nothing is downloaded: broken, disguised and
oversized images (:data:`BROKEN_IMAGES`, :data:`BOMB_IMAGES`, each with what its message says
after the file's name) and malformed and malicious zips (:data:`ARCHIVES`, with zip bombs).
"""

from __future__ import annotations

import functools
import re
import struct
import zipfile
import zlib
from collections.abc import Callable
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
    png_declaring,
    raw_zip,
    tiff_with,
)

from catdog.archive import ExtractLimits

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
