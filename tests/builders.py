"""Builders for import tests: source trees in each layout, bad files, zips, and tree digests."""

from __future__ import annotations

import hashlib
import io
import stat
import struct
import zipfile
from collections.abc import Iterable
from pathlib import Path

import numpy as np
from conftest import striped_image

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
