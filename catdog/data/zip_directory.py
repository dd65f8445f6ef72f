"""The structure of a zip file, read before :mod:`zipfile` parses anything: the end record,
the ZIP64 records and every central directory entry, with fixed limits, so a crafted archive
costs a few reads (see :mod:`catdog.data.archive`).
"""

from __future__ import annotations

import os
import stat
import struct
import zipfile
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import IO

try:  # Python may be built without bzip2 or LZMA; zipfile then cannot read those methods
    import bz2
except ImportError:  # pragma: no cover - depends on how Python was built
    bz2 = None  # type: ignore[assignment]
try:
    import lzma
except ImportError:  # pragma: no cover - depends on how Python was built
    lzma = None  # type: ignore[assignment]


# One entry's uncompressed size. catdog imports photos and the importer reads each file whole
# into memory; the biggest picture it decodes (100 megapixels) is 300 MB even stored as an
# uncompressed 8-bit RGB BMP or TIFF. A bigger entry is no usable photo, only a memory risk.
MAX_ENTRY_BYTES = 512 * 1024**2


# Compression methods zipfile can read (bzip2 and LZMA only if Python was built with them).
READABLE_METHODS = {zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED} | {
    method
    for method, module in [(zipfile.ZIP_BZIP2, bz2), (zipfile.ZIP_LZMA, lzma)]
    if module is not None
}
UTF8_FLAG = 0x800  # general-purpose flag bit 11: the entry's name is UTF-8

# Records of the zip format (PKWARE's APPNOTE 4.3), little-endian.
_EOCD = struct.Struct("<4s4H2LH")  # end of central directory: 22 bytes + comment


_LOCATOR = struct.Struct("<4sLQL")  # ZIP64 end of central directory locator: 20 bytes


_EOCD64 = struct.Struct("<4sQ2H2L4Q")  # ZIP64 end of central directory record: 56 bytes


_CENTRAL = struct.Struct("<4s4B4HL2L5H2L")  # central directory file header: 46 bytes + names


_TAIL = _EOCD.size + 0xFFFF  # the end record sits in the last 22 bytes + longest comment


_NEWEST_VERSION = 63  # zip format 6.3: the newest zipfile knows


# What zipfile, zlib, bz2 and lzma raise on malformed input.
READ_ERRORS = (
    zipfile.BadZipFile,
    zlib.error,
    *([lzma.LZMAError] if lzma is not None else []),
    EOFError,
    OSError,  # bz2 raises OSError("Invalid data stream")
    NotImplementedError,
    RuntimeError,
    ValueError,
    struct.error,
    IndexError,
    OverflowError,
)


class ArchiveError(ValueError):
    """A zip file is unreadable or unsafe; the message names the archive and the entry."""


@dataclass(frozen=True)
class ExtractLimits:
    """How much a zip may expand, and how big its directory may be, before it is refused."""

    # Total uncompressed bytes. Microsoft's PetImages zip expands to under 1 GB; 8 GiB leaves
    # room for bigger photo collections while still stopping a bomb before the disk fills.
    max_total_bytes: int = 8 * 1024**3
    # Uncompressed / compressed size of one entry. Photos barely compress (ratio ~1) and text
    # rarely beats 20; bombs reach 1000 and more.
    max_ratio: float = 100.0
    # The ratio rule only applies to entries at least this big, so a tiny, very repetitive
    # file (an empty-ish readme) does not trip it.
    ratio_min_bytes: int = 1024**2
    # Number of entries; 25,000 photos is a large pet dataset.
    max_entries: int = 500_000
    # Uncompressed bytes of one entry (see MAX_ENTRY_BYTES); bigger entries are skipped.
    max_entry_bytes: int = MAX_ENTRY_BYTES
    # Size of the central directory, which zipfile reads into memory in one go. PetImages'
    # is 2 MB; 128 MiB holds 500,000 entries with 200-byte names.
    max_directory_bytes: int = 128 * 1024**2


@dataclass(frozen=True)
class _Directory:
    """Where the central directory is and how many entries the end record declares."""

    entries: int
    start: int
    size: int


def quoted(name: str) -> str:
    """An entry name for a message: quoted, escapes visible, cut after 80 characters."""
    return f"{name[:80]!r}…" if len(name) > 80 else repr(name)


def _not_a_zip(f: IO[bytes], archive: str) -> ArchiveError:
    """The error for a file without an end record: truncated if it starts like a zip."""
    f.seek(0)
    if f.read(4) == b"PK\x03\x04":
        return ArchiveError(
            f"{archive} is not a readable zip file: it starts like one but its end (the central "
            "directory) is missing, so it was cut short, e.g. by an interrupted download or "
            "copy; get the file again"
        )
    return ArchiveError(
        f"{archive} is not a readable zip file (there is no zip end record in its last 64 KiB); "
        "choose a .zip archive"
    )


def _ends_file(tail: bytes, at: int) -> bool:
    """Whether an end record at ``at`` and the comment it announces end exactly at the end."""
    return at + _EOCD.size + _EOCD.unpack_from(tail, at)[-1] == len(tail)


def _find_end_record(f: IO[bytes], archive: str, size: int) -> tuple[int, tuple]:
    """Find the end-of-central-directory record as zipfile does; returns (offset, fields)."""
    tail_start = max(size - _TAIL, 0)
    f.seek(tail_start)
    tail = f.read()
    if tail[-_EOCD.size : -_EOCD.size + 4] == b"PK\x05\x06" and tail[-2:] == b"\0\0":
        pos = len(tail) - _EOCD.size  # no archive comment: the usual case
    else:
        pos = tail.rfind(b"PK\x05\x06")
        if pos < 0 or pos + _EOCD.size > len(tail):
            raise _not_a_zip(f, archive)
        earlier = tail.rfind(b"PK\x05\x06", 0, pos)
        if not _ends_file(tail, pos) and earlier >= 0 and _ends_file(tail, earlier):
            raise ArchiveError(
                f"{archive}: its archive comment holds a second zip end record, so tools disagree "
                "on what the archive contains; it is refused, re-create it"
            )
    return tail_start + pos, _EOCD.unpack_from(tail, pos)


def _zip64_record(f: IO[bytes], archive: str, eocd_at: int) -> tuple[int, tuple] | None:
    """The ZIP64 end record, if a locator precedes the end record; returns (offset, fields)."""
    if eocd_at < _LOCATOR.size:
        return None
    f.seek(eocd_at - _LOCATOR.size)
    sig, disk, _, disks = _LOCATOR.unpack(f.read(_LOCATOR.size))
    if sig != b"PK\x06\x07":
        return None
    if disk != 0 or disks > 1:
        raise ArchiveError(f"{archive} spans several disks (a split archive); join it first")
    at = eocd_at - _LOCATOR.size - _EOCD64.size  # where zipfile reads it
    record = b""
    if at >= 0:
        f.seek(at)
        record = f.read(_EOCD64.size)
    if len(record) != _EOCD64.size or record[:4] != b"PK\x06\x06":
        raise ArchiveError(
            f"{archive} has a ZIP64 locator but no ZIP64 end record before it; the archive is "
            "damaged or crafted, re-create it"
        )
    return at, _EOCD64.unpack(record)


def _read_directory(f: IO[bytes], archive: str, size: int, limits: ExtractLimits) -> _Directory:
    """Read the end records (ZIP64 too) and check the declared entry count and directory size
    against ``limits``; zipfile has parsed nothing yet."""
    eocd_at, (_, disk, cd_disk, here, count, cd_size, _, _) = _find_end_record(f, archive, size)
    record_at = eocd_at
    zip64 = _zip64_record(f, archive, eocd_at)
    if zip64 is not None:
        record_at, (_, _, _, _, disk, cd_disk, here64, count64, size64, _) = zip64
        # The classic record may say "see ZIP64" (all ones) or repeat the value; nothing else.
        lies = [
            what
            for what, classic, sentinel, value in [
                ("entry count", count, 0xFFFF, count64),
                ("directory size", cd_size, 0xFFFFFFFF, size64),
            ]
            if classic not in (sentinel, value)
        ]
        if lies:
            raise ArchiveError(
                f"{archive}: its end records disagree on the {' and '.join(lies)} (the ZIP64 "
                "record says one thing, the classic record another); the archive is damaged or "
                "crafted, re-create it"
            )
        here, count, cd_size = here64, count64, size64
    if disk != 0 or cd_disk != 0 or here != count:
        raise ArchiveError(f"{archive} spans several disks (a split archive); join it first")
    if count > limits.max_entries:
        raise ArchiveError(
            f"{archive} declares {count:,} entries (the limit is {limits.max_entries:,}); "
            "split it into smaller archives"
        )
    if cd_size > limits.max_directory_bytes:
        raise ArchiveError(
            f"{archive} has a {cd_size:,}-byte central directory (the limit is "
            f"{limits.max_directory_bytes:,}); split it into smaller archives"
        )
    if record_at - cd_size < 0:
        raise ArchiveError(
            f"{archive}: its central directory would start before the file does; the file is "
            "truncated or damaged, get it again"
        )
    return _Directory(entries=count, start=record_at - cd_size, size=cd_size)


def _check_extra(extra: bytes, sizes: tuple[int, int, int], archive: str, shown: str) -> None:
    """Refuse extra fields zipfile would choke on: blocks running past the end, or ZIP64
    sizes the header points to but that are missing. ``sizes``: (file, compressed, offset)."""
    needed = 8 * sum(value == 0xFFFFFFFF for value in sizes)
    found = 0
    while len(extra) >= 4:
        kind, length = struct.unpack_from("<HH", extra)
        if length + 4 > len(extra):
            raise ArchiveError(
                f"{archive}: entry {quoted(shown)} has a corrupt extra field (block "
                f"{kind:#06x} says {length} bytes, {len(extra) - 4} remain); the archive is "
                "refused, re-create it"
            )
        if kind == 0x0001:
            found = max(found, length)
        extra = extra[4 + length :]
    if found < needed:
        raise ArchiveError(
            f"{archive}: entry {quoted(shown)} says its sizes are in a ZIP64 field, but that field "
            f"holds {found} of the {needed} bytes needed; the archive is damaged or crafted, "
            "re-create it"
        )


def _walk_directory(f: IO[bytes], archive: str, where: _Directory, limits: ExtractLimits) -> None:
    """Walk the central directory record by record as zipfile will, stopping at the entry
    limit, and refuse what would make zipfile fail without naming the entry."""
    f.seek(where.start)
    data = f.read(where.size)
    pos = count = 0
    while pos < len(data):
        if pos + _CENTRAL.size > len(data) or data[pos : pos + 4] != b"PK\x01\x02":
            raise ArchiveError(
                f"{archive}: its central directory is damaged at byte {pos:,} of {where.size:,} "
                "(no entry header there); the file is truncated or corrupt, get it again"
            )
        fields = _CENTRAL.unpack_from(data, pos)
        version, flags, n, m, k = fields[3], fields[5], fields[12], fields[13], fields[14]
        sizes = (fields[11], fields[10], fields[18])
        raw = data[pos + _CENTRAL.size : pos + _CENTRAL.size + n]
        shown = raw.decode("utf-8", "replace")
        count += 1
        if count > limits.max_entries:
            raise ArchiveError(
                f"{archive} holds more than {limits.max_entries:,} entries although its end "
                f"record declares {where.entries:,}; split it into smaller archives"
            )
        end = pos + _CENTRAL.size + n + m + k
        if end > len(data):
            raise ArchiveError(
                f"{archive}: entry {quoted(shown)} runs past the end of the central directory; the "
                "file is truncated or corrupt, get it again"
            )
        if flags & UTF8_FLAG:
            try:
                raw.decode("utf-8")
            except UnicodeDecodeError:
                raise ArchiveError(
                    f"{archive}: entry {quoted(shown)} is marked as having a UTF-8 name but "
                    "its name is not valid UTF-8; re-create the archive"
                ) from None
        if version > _NEWEST_VERSION:
            raise ArchiveError(
                f"{archive}: entry {quoted(shown)} needs zip format {version / 10:.1f} to extract "
                f"(Python reads up to {_NEWEST_VERSION / 10:.1f}); re-create the archive with "
                "standard deflate"
            )
        extra = data[pos + _CENTRAL.size + n : pos + _CENTRAL.size + n + m]
        _check_extra(extra, sizes, archive, shown)
        pos = end
    if count != where.entries:
        raise ArchiveError(
            f"{archive}: its end record declares {where.entries:,} entries but its central "
            f"directory holds {count:,}; the archive is damaged or crafted, re-create it"
        )


@contextmanager
def open_zip(zip_path: Path, archive: str, limits: ExtractLimits) -> Iterator[zipfile.ZipFile]:
    """Open ``zip_path`` (a regular file only: never a FIFO or device), check its directory,
    then let zipfile parse it, on the same open file."""
    try:
        fd = os.open(zip_path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
    except OSError as exc:
        raise ArchiveError(f"{archive} could not be opened ({exc.strerror or exc})") from exc
    with os.fdopen(fd, "rb") as f:
        st = os.fstat(f.fileno())
        if not stat.S_ISREG(st.st_mode):
            raise ArchiveError(f"{archive} is not a regular file; give a .zip file")
        try:
            where = _read_directory(f, archive, st.st_size, limits)
            _walk_directory(f, archive, where, limits)
            zf = zipfile.ZipFile(f)
        except ArchiveError:
            raise
        except READ_ERRORS as exc:
            raise ArchiveError(f"{archive} is not a readable zip file ({exc})") from exc
        with zf:
            if len(zf.infolist()) != where.entries:  # zipfile read another directory than we did
                raise ArchiveError(
                    f"{archive}: zipfile finds {len(zf.infolist()):,} entries where the end "
                    f"record declares {where.entries:,}; the archive is damaged or crafted"
                )
            yield zf
