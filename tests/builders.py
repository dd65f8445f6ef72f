"""Builders for tests: source trees in each layout, bad files, hand-made images and zips, and
tree digests."""

from __future__ import annotations

import hashlib
import io
import stat
import struct
import zipfile
import zlib
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from conftest import striped_image
from PIL import Image

SPLITS = ("train", "validation", "test")


def image_bytes(kind: int = 0, size: int = 40, seed: int = 0, fmt: str = "JPEG") -> bytes:
    """A tiny striped RGB picture encoded as ``fmt`` (class ``kind`` picks the stripes)."""
    buffer = io.BytesIO()
    striped_image(kind, size, np.random.default_rng(seed)).save(buffer, fmt)
    return buffer.getvalue()


def write(path: Path, data: bytes) -> Path:
    """Write ``data`` to ``path``, creating folders."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


def class_folders(
    root: Path,
    counts: tuple[int, ...] = (6, 3, 3),
    classes: tuple[str, ...] = ("cats", "dogs"),
    split_names: tuple[str, ...] | None = SPLITS,
) -> Path:
    """Folder-per-class tree; split into ``split_names`` folders, or flat if None.

    With ``split_names=None`` each class gets ``sum(counts)`` images.
    """
    groups = zip(split_names, counts, strict=True) if split_names else [("", sum(counts))]
    for g, (split, n) in enumerate(groups):
        for k, cls in enumerate(classes):
            for i in range(n):
                name = f"{cls[:-1]}.{i}.{split or 'all'}.jpg"
                write(root / split / cls / name, image_bytes(k, seed=1000 * g + 100 * k + i))
    return root


def kaggle_flat(root: Path, n: int = 12) -> Path:
    """Kaggle's train folder: ``root/train/cat.N.jpg`` and ``dog.N.jpg`` for N < n."""
    for k, animal in enumerate(("cat", "dog")):
        for i in range(n):
            write(root / "train" / f"{animal}.{i}.jpg", image_bytes(k, seed=i + 100 * k))
    return root


def truncated_jpeg() -> bytes:
    """A JPEG cut off half way (decoding fails)."""
    data = image_bytes(0, size=64)
    return data[: len(data) // 2]


def pet_images(root: Path, n: int = 10) -> dict[str, str]:
    """Microsoft's layout ``root/PetImages/{Cat,Dog}/N.jpg`` plus its known bad files.

    Returns:
        ``{relative path: kind}`` for the files that must be skipped (zero-byte, text,
        truncated, Thumbs.db); the BMP named .jpg is a good image and is not listed.
    """
    pet = root / "PetImages"
    for k, animal in enumerate(("Cat", "Dog")):
        for i in range(n):
            write(pet / animal / f"{i}.jpg", image_bytes(k, seed=i + 100 * k))
    write(pet / "Cat" / f"{n}.jpg", image_bytes(0, fmt="BMP"))  # a BMP named .jpg: kept
    bad = {
        f"PetImages/Cat/{n + 1}.jpg": b"",  # zero bytes, as Cat/666.jpg
        f"PetImages/Dog/{n}.jpg": b"<html>Not found</html>\n",  # text
        f"PetImages/Dog/{n + 1}.jpg": truncated_jpeg(),
        "PetImages/Cat/Thumbs.db": b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + bytes(500),
        "PetImages/Dog/Thumbs.db": b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + bytes(500),
    }
    for rel, data in bad.items():
        write(root / rel, data)
    write(root / "readme[1].txt", b"Cats and dogs from Asirra.\n")
    return {rel: "bad" for rel in bad} | {"readme[1].txt": "stray"}


def zip_folder(folder: Path, zip_path: Path, prefix: str = "") -> Path:
    """Zip every file under ``folder`` (with ``prefix/`` before each name), plus macOS junk."""
    with zipfile.ZipFile(zip_path, "w", zipfile.ZIP_DEFLATED) as zf:
        for path in sorted(folder.rglob("*")):
            if path.is_file():
                zf.write(path, f"{prefix}{path.relative_to(folder).as_posix()}")
        zf.writestr(f"__MACOSX/{prefix}._junk", b"resource fork")
        zf.writestr(f"{prefix}.DS_Store", b"finder")
    return zip_path


def zip_entries(zip_path: Path, entries: Iterable[tuple[str | zipfile.ZipInfo, bytes]]) -> Path:
    """Write a zip holding exactly ``entries`` (names are kept as given, even unsafe ones)."""
    with zipfile.ZipFile(zip_path, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in entries:
            zf.writestr(name, data)
    return zip_path


def symlink_info(name: str) -> zipfile.ZipInfo:
    """A zip entry marked as a Unix symbolic link."""
    info = zipfile.ZipInfo(name)
    info.create_system = 3
    info.external_attr = (stat.S_IFLNK | 0o777) << 16
    return info


def lying_zip(zip_path: Path, name: str = "big.bin", real: int = 3 << 20, claim: int = 1000):
    """A zip whose headers declare ``claim`` bytes for an entry that really holds ``real``."""
    zip_entries(zip_path, [(name, bytes(real))])
    data = bytearray(zip_path.read_bytes())
    local = data.index(b"PK\x03\x04")
    struct.pack_into("<I", data, local + 22, claim)  # local header: uncompressed size
    central = data.index(b"PK\x01\x02")
    struct.pack_into("<I", data, central + 24, claim)  # central directory: uncompressed size
    zip_path.write_bytes(bytes(data))
    return zip_path


def tree_digest(root: Path) -> dict[str, str]:
    """SHA-256 of every file under ``root`` (or of ``root`` itself if it is a file)."""
    if root.is_file():
        return {root.name: hashlib.sha256(root.read_bytes()).hexdigest()}
    return {
        p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def names(folder: Path) -> list[str]:
    """File names in a folder, sorted."""
    return sorted(p.name for p in folder.iterdir())


# --- hand-made images: headers and chunks as the test says ---------------------------------


def encode(image: Image.Image, fmt: str, **options: object) -> bytes:
    """``image`` saved as ``fmt`` (with Pillow's ``options``), as bytes."""
    buffer = io.BytesIO()
    image.save(buffer, fmt, **options)
    return buffer.getvalue()


def noise_rgb(width: int = 80, height: int = 64, seed: int = 0) -> Image.Image:
    """An RGB image of random pixels."""
    rng = np.random.default_rng(seed)
    return Image.fromarray(rng.integers(0, 256, (height, width, 3), dtype=np.uint8))


def png_chunk(kind: bytes, body: bytes) -> bytes:
    """One PNG chunk with its length and CRC."""
    crc = zlib.crc32(kind + body) & 0xFFFFFFFF
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", crc)


def png_declaring(width: int, height: int) -> bytes:
    """A valid-looking PNG header declaring ``width``×``height`` RGB, with a tiny IDAT."""
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + png_chunk(b"IHDR", header)
        + png_chunk(b"IDAT", zlib.compress(b"\0" * 64))
        + png_chunk(b"IEND", b"")
    )


def bmp_declaring(width: int, height: int) -> bytes:
    """A small BMP whose header claims ``width``×``height``."""
    data = encode(noise_rgb(), "BMP")
    return data[:18] + struct.pack("<ii", width, height) + data[26:]


def halved(data: bytes) -> bytes:
    """The first half of ``data`` (a file cut short)."""
    return data[: len(data) // 2]


def gif_with(offset: int, patch: bytes, from_descriptor: bool = True) -> bytes:
    """A small GIF with ``patch`` written at ``offset`` (from its image descriptor, 0x2C)."""
    data = encode(noise_rgb().convert("P"), "GIF")
    if from_descriptor:
        offset += data.index(b"\x2c", 13 + 3 * 256)  # after header + global palette
    return data[:offset] + patch + data[offset + len(patch) :]


def tiff_with(**fields: int) -> bytes:
    """A small little-endian TIFF with header fields (``t256=...``) overwritten."""
    data = bytearray(encode(noise_rgb(), "TIFF"))
    ifd = struct.unpack("<I", data[4:8])[0]
    todo = {int(key[1:]): value for key, value in fields.items()}
    for i in range(struct.unpack("<H", data[ifd : ifd + 2])[0]):
        entry = ifd + 2 + 12 * i
        tag, kind = struct.unpack("<HH", data[entry : entry + 4])
        if tag in todo:
            value = todo.pop(tag)
            data[entry + 8 : entry + 12] = (
                struct.pack("<HH", value, 0) if kind == 3 else struct.pack("<I", value)
            )
    assert not todo, f"tags {sorted(todo)} not in the TIFF"
    return bytes(data)


def with_exif(jpeg: bytes, *entries: tuple[int, int, int, bytes]) -> bytes:
    """Insert an APP1 EXIF segment holding one IFD of raw ``(tag, type, count, value)``."""
    ifd = b"II*\x00" + struct.pack("<IH", 8, len(entries))
    for tag, kind, count, value in entries:
        ifd += struct.pack("<HHI", tag, kind, count) + value
    payload = b"Exif\0\0" + ifd + b"\0" * 20
    return jpeg[:2] + b"\xff\xe1" + struct.pack(">H", len(payload) + 2) + payload + jpeg[2:]


def orientation(value: int) -> tuple[int, int, int, bytes]:
    """The EXIF Orientation entry for :func:`with_exif`."""
    return (0x0112, 3, 1, struct.pack("<HH", value, 0))  # SHORT Orientation


# --- hand-made zips: every header field as the test says, however wrong --------------------


@dataclass
class RawEntry:
    """One entry of :func:`raw_zip`; fields left as None are computed honestly."""

    name: str | bytes
    data: bytes = b""  # the bytes stored (already compressed when method is not 0)
    plain: bytes | None = None  # the uncompressed content (default: ``data``)
    method: int = 0
    flags: int = 0
    crc: int | None = None
    size: int | None = None  # declared uncompressed size
    csize: int | None = None  # declared compressed size
    version: int = 20  # version needed to extract
    extra: bytes = b""  # central directory extra field
    mode: int = 0o100644  # Unix mode, stored in the external attributes


def deflated(name: str | bytes, plain: bytes, **fields) -> RawEntry:
    """A raw-deflate entry holding ``plain``."""
    packer = zlib.compressobj(9, zlib.DEFLATED, -15)
    return RawEntry(name, packer.compress(plain) + packer.flush(), plain=plain, method=8, **fields)


def raw_zip(
    path: Path,
    entries: Iterable[RawEntry],
    *,
    count: int | None = None,
    cd_size: int | None = None,
    disk: int = 0,
    zip64: dict | None = None,
) -> Path:
    """Write a zip byte by byte. ``count`` and ``cd_size`` override the end record's entry
    count and directory size; ``zip64`` adds ZIP64 end records: keys ``count``, ``here``,
    ``size`` (default honest), ``record`` (False: a locator pointing at nothing), and
    ``classic_count`` / ``classic_size`` for the classic record (default: all ones)."""
    out = bytearray()
    central = bytearray()
    entries = list(entries)
    for e in entries:
        name = e.name.encode() if isinstance(e.name, str) else e.name
        plain = e.data if e.plain is None else e.plain
        crc = zlib.crc32(plain) if e.crc is None else e.crc
        size = len(plain) if e.size is None else e.size
        csize = len(e.data) if e.csize is None else e.csize
        sizes = (crc, min(csize, 0xFFFFFFFF), min(size, 0xFFFFFFFF))
        central += struct.pack(
            "<4s4B4HL2L5H2L", b"PK\x01\x02", 20, 3, e.version, 0, e.flags, e.method, 0, 0x21,
            *sizes, len(name), len(e.extra), 0, 0, 0, e.mode << 16, len(out),
        ) + name + e.extra  # fmt: skip
        out += struct.pack(
            "<4s5H3L2H", b"PK\x03\x04", e.version, e.flags, e.method, 0, 0x21, *sizes,
            len(name), 0,
        ) + name + e.data  # fmt: skip
    cd_start = len(out)
    out += central
    n = len(entries) if count is None else count
    size_field = len(central) if cd_size is None else cd_size
    offset = cd_start
    if zip64 is not None:
        record_at = len(out)
        n64, size64 = zip64.get("count", n), zip64.get("size", size_field)
        if zip64.get("record", True):
            here = zip64.get("here", n64)
            out += struct.pack(
                "<4sQ2H2L4Q", b"PK\x06\x06", 44, 45, 45, 0, 0, here, n64, size64, cd_start
            )
        out += struct.pack("<4sLQL", b"PK\x06\x07", 0, record_at, 1)
        n, size_field = zip64.get("classic_count", 0xFFFF), zip64.get("classic_size", 0xFFFFFFFF)
        offset = 0xFFFFFFFF
    out += struct.pack(
        "<4s4H2LH", b"PK\x05\x06", disk, disk, n & 0xFFFF, n & 0xFFFF, size_field, offset, 0
    )
    path.write_bytes(bytes(out))
    return path
