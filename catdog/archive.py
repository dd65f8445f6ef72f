"""Unpacking zip files safely: a zip a user hands us is untrusted input.

:func:`safe_extract` refuses, naming the entry, anything that could write outside the
destination (absolute paths, ``..``, drive letters, symlinks) and archives that expand absurdly
(zip bombs). Sizes are checked twice: first the sizes the archive *declares*, then the bytes
really written, because headers can lie.
"""

from __future__ import annotations

import re
import stat
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import IO

from catdog.progress import ProgressFn, report

_CHUNK = 1 << 20  # copy entries 1 MiB at a time
_DRIVE = re.compile(r"^[A-Za-z]:")


class ArchiveError(ValueError):
    """A zip file is unreadable or unsafe; the message names the archive and the entry."""


@dataclass(frozen=True)
class ExtractLimits:
    """How much a zip may expand before it is treated as a zip bomb."""

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


def _is_ignored(parts: tuple[str, ...]) -> bool:
    """macOS resource forks and dotfiles (``.DS_Store``) are not user content."""
    return parts[0] == "__MACOSX" or any(part.startswith(".") for part in parts)


def _safe_parts(info: zipfile.ZipInfo, archive: str) -> tuple[str, ...]:
    """Return the entry's path components, or raise if it would land outside the destination."""
    name = info.filename.replace("\\", "/")  # some Windows tools write backslashes
    if name.startswith("/") or _DRIVE.match(name):
        raise ArchiveError(
            f"{archive}: entry {info.filename!r} has an absolute path; refusing to extract an "
            "archive that writes outside its folder"
        )
    parts = tuple(part for part in PurePosixPath(name).parts if part not in ("", "."))
    if ".." in parts:
        raise ArchiveError(
            f"{archive}: entry {info.filename!r} contains '..'; refusing to extract an archive "
            "that writes outside its folder"
        )
    if any(_DRIVE.match(part) or ":" in part for part in parts):
        raise ArchiveError(f"{archive}: entry {info.filename!r} names a drive or stream; refused")
    return parts


def _check_entry(info: zipfile.ZipInfo, archive: str, limits: ExtractLimits) -> None:
    """Refuse symlinks, encrypted entries and entries whose declared sizes look like a bomb."""
    mode = info.external_attr >> 16
    if stat.S_ISLNK(mode):
        raise ArchiveError(
            f"{archive}: entry {info.filename!r} is a symbolic link; links in archives can "
            "point outside the extraction folder, so the archive is refused"
        )
    if info.flag_bits & 0x1:
        raise ArchiveError(
            f"{archive}: entry {info.filename!r} is encrypted; unzip it yourself and import "
            "the folder instead"
        )
    ratio = info.file_size / max(info.compress_size, 1)
    if info.file_size >= limits.ratio_min_bytes and ratio > limits.max_ratio:
        raise ArchiveError(
            f"{archive}: entry {info.filename!r} would expand {ratio:,.0f}× "
            f"({info.compress_size:,} → {info.file_size:,} bytes; the limit is "
            f"{limits.max_ratio:,.0f}×); this looks like a zip bomb"
        )


def _copy_entry(src: IO[bytes], dst: Path, info: zipfile.ZipInfo, archive: str, budget: int) -> int:
    """Copy one entry, counting real bytes; return how many were written."""
    written = 0
    with open(dst, "wb") as out:
        while chunk := src.read(_CHUNK):
            written += len(chunk)
            if written > info.file_size:
                raise ArchiveError(
                    f"{archive}: entry {info.filename!r} holds more than the {info.file_size:,} "
                    "bytes its header declares; the archive is refused"
                )
            if written > budget:
                raise ArchiveError(
                    f"{archive}: extracting {info.filename!r} goes past the limit on total "
                    "uncompressed size; this looks like a zip bomb"
                )
            out.write(chunk)
    return written


def safe_extract(
    zip_path: str | Path,
    dest: str | Path,
    *,
    limits: ExtractLimits | None = None,
    progress: ProgressFn | None = None,
) -> list[Path]:
    """Extract a zip into ``dest``, refusing anything unsafe before writing a byte.

    ``__MACOSX/`` folders and dotfiles are skipped. On any error the files already written
    stay in ``dest``; callers extract into a temporary folder they delete on failure.

    Args:
        zip_path: the archive to read (never modified).
        dest: folder to extract into (created if missing).
        limits: size limits against zip bombs (defaults: :class:`ExtractLimits`).
        progress: called as ``progress(done, total, message)`` per entry.

    Returns:
        The extracted files, in archive order.

    Raises:
        ArchiveError: the file is not a readable zip, or an entry is unsafe (absolute path,
            ``..``, drive letter, symlink, encrypted, absurd size or ratio); the message names
            the entry.
    """
    limits = limits or ExtractLimits()
    zip_path, dest = Path(zip_path), Path(dest)
    archive = zip_path.name
    try:
        zf = zipfile.ZipFile(zip_path)
    except (zipfile.BadZipFile, OSError) as exc:
        raise ArchiveError(f"{zip_path} is not a readable zip file ({exc})") from exc
    with zf:
        infos = zf.infolist()
        if len(infos) > limits.max_entries:
            raise ArchiveError(
                f"{archive} has {len(infos):,} entries (the limit is {limits.max_entries:,})"
            )
        plan: list[tuple[zipfile.ZipInfo, tuple[str, ...]]] = []
        declared = 0
        seen: set[tuple[str, ...]] = set()
        for info in infos:
            parts = _safe_parts(info, archive)
            if not parts or _is_ignored(parts):
                continue
            _check_entry(info, archive, limits)
            if info.is_dir():
                continue
            if parts in seen:
                raise ArchiveError(f"{archive}: entry {info.filename!r} appears twice")
            seen.add(parts)
            declared += info.file_size
            if declared > limits.max_total_bytes:
                raise ArchiveError(
                    f"{archive} would expand to more than {limits.max_total_bytes:,} bytes "
                    f"(reached at entry {info.filename!r}); this looks like a zip bomb"
                )
            plan.append((info, parts))

        dest.mkdir(parents=True, exist_ok=True)
        root = dest.resolve()
        extracted: list[Path] = []
        total_written = 0
        for done, (info, parts) in enumerate(plan, start=1):
            target = root.joinpath(*parts)
            if not target.resolve().is_relative_to(root):  # belt and braces after _safe_parts
                raise ArchiveError(f"{archive}: entry {info.filename!r} escapes {dest}")
            target.parent.mkdir(parents=True, exist_ok=True)
            try:
                with zf.open(info) as src:
                    total_written += _copy_entry(
                        src, target, info, archive, limits.max_total_bytes - total_written
                    )
            except (zipfile.BadZipFile, zlib.error, EOFError) as exc:
                raise ArchiveError(
                    f"{archive}: entry {info.filename!r} is corrupt ({exc})"
                ) from exc
            except OSError as exc:
                raise ArchiveError(
                    f"{archive}: could not write entry {info.filename!r} to {target} "
                    f"({exc.strerror or exc})"
                ) from exc
            extracted.append(target)
            report(progress, done, len(plan), f"Extracting {archive}")
    return extracted


def is_zip(path: str | Path) -> bool:
    """Return True if ``path`` is a file that looks like a zip archive."""
    path = Path(path)
    return path.is_file() and zipfile.is_zipfile(path)
