"""How much work a file's structure asks of a decoder, read before any decoder sees it.

A pixel limit bounds the memory an image takes, not the time it takes: a 300 kB progressive
JPEG can repeat its scans thousands of times, each one a pass over every pixel; a PNG can hold
millions of chunks or metadata that inflates a thousandfold; a TIFF can chain thousands of
pages or cut one into millions of strips; a GIF or WebP can hold thousands of frames. None of
that is a photo. :func:`check_work` walks the file's own structure (segments, chunks, blocks,
directories: cheap, linear in the file's size, never decompressing pixels) and refuses, in one
sentence, a file whose declared work is over the limits below. Real photos sit far under them.
"""

from __future__ import annotations

import re
import struct
import zlib

# A progressive JPEG decodes in scans, each a pass over the image: encoders write ~10 (libjpeg's
# default script), optimizing ones up to ~20. Repeated scans are the classic way to make a tiny
# file cost minutes.
MAX_JPEG_SCANS = 100
# Scans × megapixels: 100 scans of a 1 MP image, or 20 of a 50 MP one (each scan of 50 MP is
# about a second of decoding here).
MAX_JPEG_SCAN_MEGAPIXELS = 1000
# Segments (markers) of a JPEG: photos carry tens (EXIF, ICC profile split into 64 kB pieces,
# quantization and Huffman tables); the parser walks each one in Python.
MAX_JPEG_SEGMENTS = 5000
# PNG chunks other than image data (IDAT): photos carry a handful.
MAX_PNG_CHUNKS = 1000
# PNG image-data chunks: 100,000 of 8 KiB (a common encoder size) is 800 MB, past any photo.
MAX_PNG_DATA_CHUNKS = 100_000
# Compressed PNG metadata (zTXt, iTXt, iCCP) inflated: ICC profiles are under 1 MB.
MAX_PNG_METADATA_BYTES = 4 * 1024**2
# Frames of an animation (GIF, APNG, WebP) or pages of a TIFF: only the first is used, but the
# file is walked to find it and a thousand frames is no photo.
MAX_FRAMES = 1000
# Strips or tiles of one TIFF page: each becomes an entry the decoder loops over.
MAX_TIFF_BLOCKS = 100_000

_JPEG_MARKER = re.compile(rb"\xff+([^\x00\xff\xd0-\xd7])")  # a marker, not stuffing or RSTn
_STANDALONE = frozenset(range(0xD0, 0xD8)) | {0x01, 0xD8, 0xD9}
_SOF = frozenset({0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF})


class WorkError(ValueError):
    """The file asks for more decoding work than any photo does; the message says what (it
    is completed with the file's name by the caller)."""


def check_work(data: bytes) -> None:
    """Refuse a file whose structure declares more decoding work than :data:`the limits`.

    Only the formats catdog reads are walked (chosen by their first bytes); a damaged
    structure is left for the decoder to report, so only work is judged here.

    Raises:
        WorkError: the reason, e.g. "has 5,000 progressive scans (the limit is 100)".
    """
    view = memoryview(data)
    try:
        if data[:3] == b"\xff\xd8\xff":
            _jpeg(view)
        elif data[:8] == b"\x89PNG\r\n\x1a\n":
            _png(view)
        elif data[:6] in (b"GIF87a", b"GIF89a"):
            _gif(view)
        elif data[:4] in (b"II*\x00", b"MM\x00*"):
            _tiff(data)
        elif data[:4] == b"RIFF" and data[8:12] == b"WEBP":
            _webp(view)
    except (IndexError, struct.error):
        return  # a structure cut short: the decoder says how it is damaged


def _jpeg(data: memoryview) -> None:
    """Count the segments and scans of the first image (an MPO's others are never decoded)."""
    raw = data.obj if isinstance(data.obj, bytes) else bytes(data)
    pos, segments, scans, pixels = 2, 0, 0, 0
    while pos < len(raw):
        found = _JPEG_MARKER.match(raw, pos) if raw[pos] == 0xFF else None
        if found is None:
            return  # not at a marker: damaged, the decoder will say so
        marker, pos = found.group(1)[0], found.end()
        segments += 1
        if segments > MAX_JPEG_SEGMENTS:
            raise WorkError(f"has more than {MAX_JPEG_SEGMENTS:,} JPEG segments; no photo has "
                            "that many")  # fmt: skip
        if marker == 0xD9:
            return
        if marker in _STANDALONE:
            continue
        length = struct.unpack_from(">H", raw, pos)[0]
        if marker in _SOF:
            height, width = struct.unpack_from(">HH", raw, pos + 3)
            pixels = width * height
        pos += length
        if marker == 0xDA:
            scans += 1
            _check_scans(scans, pixels)
            following = _JPEG_MARKER.search(raw, pos)  # the entropy-coded data runs to it
            if following is None:
                return
            pos = following.start()


def _check_scans(scans: int, pixels: int) -> None:
    if scans > MAX_JPEG_SCANS:
        raise WorkError(f"has more than {MAX_JPEG_SCANS} progressive scans (photos have about "
                        "10); each scan is a pass over the whole image")  # fmt: skip
    if scans * pixels / 1e6 > MAX_JPEG_SCAN_MEGAPIXELS:
        raise WorkError(
            f"has {scans} progressive scans of {pixels / 1e6:,.0f} megapixels, more decoding "
            f"work than the limit ({MAX_JPEG_SCAN_MEGAPIXELS:,} megapixel-scans); save it as "
            "an ordinary JPEG"
        )


def _png(data: memoryview) -> None:
    """Count chunks and frames, and inflate compressed metadata up to its limit."""
    pos, other, image_data, frames, inflated = 8, 0, 0, 0, 0
    while pos + 8 <= len(data):
        length, kind = struct.unpack_from(">I4s", data, pos)
        body = data[pos + 8 : pos + 8 + length]
        pos += 12 + length
        if kind in (b"IDAT", b"fdAT"):
            image_data += 1
            if image_data > MAX_PNG_DATA_CHUNKS:
                raise WorkError(f"has more than {MAX_PNG_DATA_CHUNKS:,} PNG image-data chunks")
            continue
        other += 1
        if other > MAX_PNG_CHUNKS:
            raise WorkError(f"has more than {MAX_PNG_CHUNKS:,} PNG metadata chunks; no photo "
                            "has that many")  # fmt: skip
        if kind == b"fcTL":
            frames += 1
        elif kind == b"acTL" and length >= 4:
            frames = max(frames, struct.unpack_from(">I", body)[0])
        if frames > MAX_FRAMES:
            raise WorkError(f"is an animation of {frames:,} frames (the limit is {MAX_FRAMES:,})")
        inflated += _png_metadata(kind, bytes(body), MAX_PNG_METADATA_BYTES - inflated)
        if kind == b"IEND":
            return


def _png_metadata(kind: bytes, body: bytes, room: int) -> int:
    """The inflated size of a compressed metadata chunk (0 for others), refusing one that
    would pass ``room`` bytes: a zlib bomb hidden in a profile or a text."""
    if kind in (b"zTXt", b"iCCP"):
        stream = body[body.find(b"\0") + 2 :]  # name, NUL, compression method
    elif kind == b"iTXt":
        keyword_end = body.find(b"\0")
        if body[keyword_end + 1 : keyword_end + 2] != b"\x01":
            return 0  # not compressed
        rest = body[keyword_end + 3 :]
        for _ in range(2):  # language tag, translated keyword
            rest = rest[rest.find(b"\0") + 1 :]
        stream = rest
    else:
        return 0
    inflater = zlib.decompressobj()
    try:
        size = len(inflater.decompress(stream, max(room, 0) + 1))
    except zlib.error:
        return 0  # damaged: Pillow reports it
    if size > room:
        what = {b"iCCP": "colour profile", b"zTXt": "text", b"iTXt": "text"}[kind]
        raise WorkError(
            f"has a compressed {what} chunk ({kind.decode()}) that inflates past "
            f"{MAX_PNG_METADATA_BYTES // 1024**2} MB of metadata ({len(stream):,} bytes "
            "stored): a decompression bomb"
        )
    return size


def _gif(data: memoryview) -> None:
    """Count the frames (image descriptors), stepping over every block."""
    flags = data[10]
    pos = 13 + (3 * 2 ** ((flags & 7) + 1) if flags & 0x80 else 0)
    frames = 0
    while pos < len(data):
        kind = data[pos]
        if kind == 0x3B:  # trailer
            return
        if kind == 0x21:  # extension: label, then sub-blocks
            pos = _skip_sub_blocks(data, pos + 2)
        elif kind == 0x2C:  # image descriptor
            frames += 1
            if frames > MAX_FRAMES:
                raise WorkError(f"is an animation of more than {MAX_FRAMES:,} frames")
            local = data[pos + 9]
            pos += 10 + (3 * 2 ** ((local & 7) + 1) if local & 0x80 else 0)
            pos = _skip_sub_blocks(data, pos + 1)  # LZW minimum code size, then data
        else:
            return  # damaged: the decoder says so


def _skip_sub_blocks(data: memoryview, pos: int) -> int:
    while pos < len(data):
        size = data[pos]
        pos += 1 + size
        if size == 0:
            break
    return pos


def _tiff(data: bytes) -> None:
    """Follow the chain of pages (IFDs), counting pages, tags and strips or tiles."""
    order = "<" if data[:2] == b"II" else ">"
    offset = struct.unpack_from(order + "I", data, 4)[0]
    seen: set[int] = set()
    while offset and offset not in seen:
        seen.add(offset)
        if len(seen) > MAX_FRAMES:
            raise WorkError(f"is a TIFF of more than {MAX_FRAMES:,} pages")
        count = struct.unpack_from(order + "H", data, offset)[0]
        for i in range(count):
            tag, _kind, values = struct.unpack_from(order + "HHI", data, offset + 2 + 12 * i)
            if tag in (273, 324) and values > MAX_TIFF_BLOCKS:  # StripOffsets, TileOffsets
                raise WorkError(f"is a TIFF cut into {values:,} strips or tiles (the limit is "
                                f"{MAX_TIFF_BLOCKS:,})")  # fmt: skip
        offset = struct.unpack_from(order + "I", data, offset + 2 + 12 * count)[0]


def _webp(data: memoryview) -> None:
    """Count the animation frames (ANMF chunks)."""
    pos, frames = 12, 0
    while pos + 8 <= len(data):
        kind, length = bytes(data[pos : pos + 4]), struct.unpack_from("<I", data, pos + 4)[0]
        if kind == b"ANMF":
            frames += 1
            if frames > MAX_FRAMES:
                raise WorkError(f"is an animation of more than {MAX_FRAMES:,} frames")
        pos += 8 + length + (length & 1)
