"""Unpacking zip files safely: a zip a user hands us is untrusted input.

:func:`safe_extract` reads the archive's end record and walks its central directory itself,
with fixed limits, *before* :class:`zipfile.ZipFile` parses anything, so an archive claiming a
billion entries costs a few reads. Then it plans the extraction and refuses, naming the entry,
anything that could write outside the destination or mean two things (absolute paths, ``..``,
drive letters, NUL bytes, symlinks, duplicate names, a file and a folder of one name) and
archives that expand absurdly (zip bombs), judged by the sizes the archive *declares*: zipfile
never hands out more than an entry declares, and a header that declares less than the entry
holds ends in a checksum mismatch (the entry is then skipped as damaged).

Entries that are merely unusable (encrypted, an unsupported compression method, a damaged
checksum, a name no file system stores, too big for one photo) are skipped and reported in
:attr:`Extraction.skipped`, so the rest of an honest archive is still imported; whatever this
module cannot read raises :class:`ArchiveError`, never a raw ``zipfile``/``zlib`` exception.
"""

from __future__ import annotations

import os
import re
import stat
import struct
import zipfile
import zlib
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import IO

from catdog.data.zip_layout import LayoutError, PathClaims, check_layout, nested_archive
from catdog.progress import ProgressFn, report

try:  # Python may be built without bzip2 or LZMA; zipfile then cannot read those methods
    import bz2
except ImportError:  # pragma: no cover - depends on how Python was built
    bz2 = None  # type: ignore[assignment]
try:
    import lzma
except ImportError:  # pragma: no cover - depends on how Python was built
    lzma = None  # type: ignore[assignment]

_CHUNK = 1 << 20  # copy entries 1 MiB at a time
_DRIVE = re.compile(r"^[A-Za-z]:")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")

# One entry's uncompressed size. catdog imports photos and the importer reads each file whole
# into memory; the biggest picture it decodes (100 megapixels) is 300 MB even stored as an
# uncompressed 8-bit RGB BMP or TIFF. A bigger entry is no usable photo, only a memory risk.
MAX_ENTRY_BYTES = 512 * 1024**2
# One file or folder name, in bytes of UTF-8: what ext4, APFS and NTFS store.
MAX_NAME_BYTES = 255
# A whole entry name: deep enough for any real layout while the extraction folder's own path
# plus the name stays far below Linux's 4096-byte path limit.
MAX_PATH_BYTES = 1024

# Compression methods zipfile can read (bzip2 and LZMA only if Python was built with them).
_METHODS = {zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED} | {
    method
    for method, module in [(zipfile.ZIP_BZIP2, bz2), (zipfile.ZIP_LZMA, lzma)]
    if module is not None
}
_UTF8_FLAG, _ENCRYPTED, _PATCHED, _STRONG = 0x800, 0x1, 0x20, 0x40

# Records of the zip format (PKWARE's APPNOTE 4.3), little-endian.
_EOCD = struct.Struct("<4s4H2LH")  # end of central directory: 22 bytes + comment
_LOCATOR = struct.Struct("<4sLQL")  # ZIP64 end of central directory locator: 20 bytes
_EOCD64 = struct.Struct("<4sQ2H2L4Q")  # ZIP64 end of central directory record: 56 bytes
_CENTRAL = struct.Struct("<4s4B4HL2L5H2L")  # central directory file header: 46 bytes + names
_TAIL = _EOCD.size + 0xFFFF  # the end record sits in the last 22 bytes + longest comment
_NEWEST_VERSION = 63  # zip format 6.3: the newest zipfile knows

# What zipfile, zlib, bz2 and lzma raise on malformed input.
_READ_ERRORS = (
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
class SkippedEntry:
    """An archive entry that was not extracted; ``reason`` names the archive and the entry."""

    name: str  # the entry's path as it would have been extracted (``cats/a.jpg``)
    reason: str


@dataclass
class Extraction:
    """What :func:`safe_extract` wrote, and which entries it skipped and why."""

    files: list[Path]
    skipped: list[SkippedEntry] = field(default_factory=list)


@dataclass(frozen=True)
class _Directory:
    """Where the central directory is and how many entries the end record declares."""

    entries: int
    start: int
    size: int


class _Damaged(Exception):
    """An entry's data cannot be read; ``why`` says how, for the skip report."""

    def __init__(self, why: str) -> None:
        super().__init__(why)
        self.why = why


def _quote(name: str) -> str:
    """An entry name for a message: quoted, escapes visible, cut after 80 characters."""
    return f"{name[:80]!r}…" if len(name) > 80 else repr(name)


# ---------------------------------------------------------------------------------------------
# Reading the end record and walking the central directory, before zipfile parses anything


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
                f"{archive}: entry {_quote(shown)} has a corrupt extra field (block "
                f"{kind:#06x} says {length} bytes, {len(extra) - 4} remain); the archive is "
                "refused, re-create it"
            )
        if kind == 0x0001:
            found = max(found, length)
        extra = extra[4 + length :]
    if found < needed:
        raise ArchiveError(
            f"{archive}: entry {_quote(shown)} says its sizes are in a ZIP64 field, but that field "
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
                f"{archive}: entry {_quote(shown)} runs past the end of the central directory; the "
                "file is truncated or corrupt, get it again"
            )
        if flags & _UTF8_FLAG:
            try:
                raw.decode("utf-8")
            except UnicodeDecodeError:
                raise ArchiveError(
                    f"{archive}: entry {_quote(shown)} is marked as having a UTF-8 name but "
                    "its name is not valid UTF-8; re-create the archive"
                ) from None
        if version > _NEWEST_VERSION:
            raise ArchiveError(
                f"{archive}: entry {_quote(shown)} needs zip format {version / 10:.1f} to extract "
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
def _open_zip(zip_path: Path, archive: str, limits: ExtractLimits) -> Iterator[zipfile.ZipFile]:
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
        except _READ_ERRORS as exc:
            raise ArchiveError(f"{archive} is not a readable zip file ({exc})") from exc
        with zf:
            if len(zf.infolist()) != where.entries:  # zipfile read another directory than we did
                raise ArchiveError(
                    f"{archive}: zipfile finds {len(zf.infolist()):,} entries where the end "
                    f"record declares {where.entries:,}; the archive is damaged or crafted"
                )
            yield zf


# ---------------------------------------------------------------------------------------------
# Planning: which entries to extract, which to skip, which make the whole archive unsafe


def _is_ignored(parts: tuple[str, ...]) -> bool:
    """macOS resource forks and dotfiles (``.DS_Store``) are not user content."""
    return parts[0] == "__MACOSX" or any(part.startswith(".") for part in parts)


def _entry_name(info: zipfile.ZipInfo) -> str:
    """The entry's name. Names without the UTF-8 flag are read as cp437 by zipfile; many tools
    (macOS's among them) write UTF-8 without setting the flag, so those are read as UTF-8."""
    name = info.orig_filename
    if not info.flag_bits & _UTF8_FLAG and not name.isascii():
        # A genuine DOS/Windows (cp437) name is not UTF-8: then keep zipfile's reading.
        with suppress(UnicodeError):
            name = name.encode("cp437").decode("utf-8")
    return name


def _safe_parts(shown: str, archive: str) -> tuple[str, ...]:
    """Return the entry's path components, or raise if it could land outside the destination
    or means different names to different tools."""
    if "\0" in shown:
        raise ArchiveError(
            f"{archive}: entry {_quote(shown)} has a NUL character in its name, a trick to show "
            "one name and extract another; the archive is refused"
        )
    name = shown.replace("\\", "/")  # some Windows tools write backslashes
    if name.startswith("/") or _DRIVE.match(name):
        raise ArchiveError(
            f"{archive}: entry {_quote(shown)} has an absolute path; refusing to extract an "
            "archive that writes outside its folder"
        )
    parts = tuple(part for part in PurePosixPath(name).parts if part not in ("", "."))
    if ".." in parts:
        raise ArchiveError(
            f"{archive}: entry {_quote(shown)} contains '..'; refusing to extract an archive "
            "that writes outside its folder"
        )
    if any(":" in part for part in parts):
        raise ArchiveError(f"{archive}: entry {_quote(shown)} names a drive or stream; refused")
    return parts


def _refuse_unsafe(info: zipfile.ZipInfo, shown: str, archive: str, limits: ExtractLimits) -> None:
    """Refuse symlinks and entries whose declared sizes look like a bomb."""
    if stat.S_ISLNK(info.external_attr >> 16):
        raise ArchiveError(
            f"{archive}: entry {_quote(shown)} is a symbolic link; links in archives can "
            "point outside the extraction folder, so the archive is refused"
        )
    ratio = info.file_size / max(info.compress_size, 1)
    if info.file_size >= limits.ratio_min_bytes and ratio > limits.max_ratio:
        raise ArchiveError(
            f"{archive}: entry {_quote(shown)} would expand {ratio:,.0f}× "
            f"({info.compress_size:,} → {info.file_size:,} bytes; the limit is "
            f"{limits.max_ratio:,.0f}×); this looks like a zip bomb"
        )


def _skip_reason(
    info: zipfile.ZipInfo, shown: str, parts: tuple[str, ...], archive: str, limits: ExtractLimits
) -> str | None:
    """Why a file entry cannot be extracted though the archive is safe, or None."""
    entry = f"{archive}: entry {_quote(shown)}"
    if info.flag_bits & (_ENCRYPTED | _STRONG):
        return f"{entry} is encrypted; skipped. Unzip it with its password and import the folder"
    method = info.compress_type
    if method not in _METHODS or info.flag_bits & _PATCHED:
        return (
            f"{entry} uses compression method {method} (unsupported); skipped. Re-create the "
            "archive with standard deflate"
        )
    if _CONTROL.search(shown):
        return f"{entry} has control characters in its name; skipped. Rename the file"
    longest = max(len(part.encode()) for part in parts)
    if longest > MAX_NAME_BYTES or len("/".join(parts).encode()) > MAX_PATH_BYTES:
        return (
            f"{entry} has a name too long to store (a part of {longest} bytes, "
            f"{len('/'.join(parts).encode())} in all; the limits are {MAX_NAME_BYTES} and "
            f"{MAX_PATH_BYTES}); skipped. Shorten it"
        )
    if nested_archive(parts):
        return (
            f"{entry} is an archive inside the archive; skipped (catdog does not unpack "
            "archives within archives). Unpack it and import its folder"
        )
    if info.file_size > limits.max_entry_bytes:
        return (
            f"{entry} is {info.file_size:,} bytes, over the {limits.max_entry_bytes:,}-byte "
            "limit for one file (no photo is that big); skipped"
        )
    return None


def _plan(
    zf: zipfile.ZipFile, archive: str, limits: ExtractLimits
) -> tuple[list[tuple[zipfile.ZipInfo, str, tuple[str, ...]]], list[SkippedEntry]]:
    """Decide, before writing a byte, which entries to extract and which to skip; raise if
    the archive as a whole is unsafe or ambiguous."""
    plan, skipped = [], []
    files: dict[tuple[str, ...], str] = {}  # path parts → shown name of the file entry
    folders: dict[tuple[str, ...], str] = {}  # path parts → an entry that makes it a folder
    declared, claims = 0, PathClaims(archive)
    for info in zf.infolist():
        shown = _entry_name(info)
        parts = _safe_parts(shown, archive)
        if not parts or _is_ignored(parts):
            continue
        _refuse_unsafe(info, shown, archive, limits)
        if shown.replace("\\", "/").endswith("/"):
            folders.setdefault(parts, shown)
            _claim(claims, parts, shown, False)
            continue
        if parts in files:
            raise ArchiveError(
                f"{archive}: entry {_quote(shown)} appears twice; which copy is meant is "
                "ambiguous, so the archive is refused. Re-create it"
            )
        files[parts] = shown
        for depth in range(1, len(parts)):
            folders.setdefault(parts[:depth], shown)
        target = _claim(claims, parts, shown, True)
        reason = _skip_reason(info, shown, parts, archive, limits)
        if reason:
            skipped.append(SkippedEntry("/".join(parts), reason))
            continue
        declared += info.file_size
        if declared > limits.max_total_bytes:
            raise ArchiveError(
                f"{archive} would expand to more than {limits.max_total_bytes:,} bytes "
                f"(reached at entry {_quote(shown)}); this looks like a zip bomb"
            )
        plan.append((info, shown, target))
    for parts, shown in files.items():
        if parts in folders:
            raise ArchiveError(
                f"{archive}: entry {_quote(shown)} is a file, but entry "
                f"{_quote(folders[parts])} makes it a folder; the archive is ambiguous and "
                "refused. Re-create it"
            )
    return plan, skipped


def _claim(claims: PathClaims, parts: tuple[str, ...], shown: str, is_file: bool) -> tuple:
    """Where an entry is extracted, the same on every disk (:class:`PathClaims`)."""
    try:
        return claims.claim(parts, shown, is_file)
    except LayoutError as exc:
        raise ArchiveError(str(exc)) from None


# ---------------------------------------------------------------------------------------------
# Extracting


def _damage(exc: BaseException) -> str:
    """Say in words why an entry's data could not be read."""
    text = str(exc)
    if "CRC" in text:
        return "is damaged: its data does not match its CRC-32 checksum"
    if isinstance(exc, EOFError):
        return "is cut short: the archive ends inside its data (truncated)"
    if isinstance(exc, zipfile.BadZipFile):
        return f"has a damaged local header ({text})"
    return f"has corrupt compressed data ({text or type(exc).__name__})"


def _copy_entry(zf: zipfile.ZipFile, info: zipfile.ZipInfo, target: Path) -> None:
    """Stream one entry into a new file (never an existing one, never through a link).

    zipfile hands out at most the entry's declared size, which the plan checked against the
    limits; a header that declares less than the entry holds ends in a CRC mismatch.

    Raises:
        _Damaged: the entry's data cannot be read.
        OSError: the file cannot be written.
    """
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0)
    with os.fdopen(os.open(target, flags, 0o644), "wb") as out:
        try:
            src = zf.open(info)
        except _READ_ERRORS as exc:
            raise _Damaged(_damage(exc)) from exc
        with src:
            while True:
                try:
                    chunk = src.read(_CHUNK)
                except _READ_ERRORS as exc:
                    raise _Damaged(_damage(exc)) from exc
                if not chunk:
                    return
                out.write(chunk)


def _extract_all(
    zf: zipfile.ZipFile,
    plan: list[tuple[zipfile.ZipInfo, str, tuple[str, ...]]],
    root: Path,
    archive: str,
    progress: ProgressFn | None,
) -> tuple[list[Path], list[SkippedEntry]]:
    """Extract the planned entries under ``root``; damaged ones are removed and reported."""
    files: list[Path] = []
    skipped: list[SkippedEntry] = []
    for done, (info, shown, parts) in enumerate(plan, start=1):
        target = root.joinpath(*parts)
        if not target.resolve().is_relative_to(root):  # a link already in the destination
            raise ArchiveError(
                f"{archive}: entry {_quote(shown)} would be written outside the folder"
            )
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            _copy_entry(zf, info, target)
            files.append(target)
        except _Damaged as exc:
            target.unlink(missing_ok=True)
            reason = f"{archive}: entry {_quote(shown)} {exc.why}; skipped"
            skipped.append(SkippedEntry("/".join(parts), reason))
        except FileExistsError:
            raise ArchiveError(
                f"{archive}: entry {_quote(shown)} would replace a file already there (on a disk "
                "that ignores case, two names differing only in case collide); the archive is "
                "refused. Extract it into an empty folder, or rename one of the two"
            ) from None
        except OSError as exc:
            raise ArchiveError(
                f"{archive}: could not write entry {_quote(shown)} ({exc.strerror or exc}); "
                "check the free disk space"
            ) from exc
        report(progress, done, len(plan), f"Extracting {archive}")
    return files, skipped


def safe_extract(
    zip_path: str | Path,
    dest: str | Path,
    *,
    limits: ExtractLimits | None = None,
    progress: ProgressFn | None = None,
) -> Extraction:
    """Extract a zip into ``dest``, refusing anything unsafe before writing a byte.

    ``__MACOSX/`` folders and dotfiles are ignored. Entries that cannot be extracted though
    the archive is safe (encrypted, unsupported compression, damaged data, unstorable name,
    bigger than ``limits.max_entry_bytes``) are skipped and listed in the result. On an error
    the files already written stay in ``dest``; callers extract into a temporary folder they
    delete on failure.

    Args:
        zip_path: the archive to read (never modified).
        dest: folder to extract into (created if missing; existing files are never replaced).
        limits: entry count, directory and size limits against zip bombs (defaults:
            :class:`ExtractLimits`).
        progress: called as ``progress(done, total, message)`` per entry.

    Returns:
        An :class:`Extraction`: the files written, in archive order, and the skipped entries.

    Raises:
        ArchiveError: the file is not a readable zip; it declares too many entries or too
            big a directory; an entry is unsafe (absolute path, ``..``, drive letter, NUL,
            symlink, absurd size or ratio) or ambiguous (duplicate name, a file and a folder
            of one name); or no entry at all could be extracted. The message names the
            archive and the entry and says what to do.
    """
    limits = limits or ExtractLimits()
    zip_path, dest = Path(zip_path), Path(dest)
    archive = zip_path.name
    with _open_zip(zip_path, archive, limits) as zf:
        plan, skipped = _plan(zf, archive, limits)
        try:  # entries that share bytes, an absurd total: before a byte is extracted
            assert zf.fp is not None
            check_layout(zf.fp, zf.infolist(), archive, os.fstat(zf.fp.fileno()).st_size)
        except LayoutError as exc:
            raise ArchiveError(str(exc)) from None
        dest.mkdir(parents=True, exist_ok=True)
        files, damaged = _extract_all(zf, plan, dest.resolve(), archive, progress)
    skipped += damaged
    if skipped and not files:
        raise ArchiveError(
            f"{archive}: none of its {len(skipped):,} file(s) could be extracted; the first: "
            f"{skipped[0].reason}"
        )
    return Extraction(files, skipped)
