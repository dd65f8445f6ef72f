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
import zipfile
from contextlib import suppress
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Protocol

from catdog.data.zip_directory import (
    READ_ERRORS,
    READABLE_METHODS,
    UTF8_FLAG,
    ArchiveError,
    ExtractLimits,
    open_zip,
    quoted,
)
from catdog.data.zip_layout import LayoutError, PathClaims, check_layout, nested_archive
from catdog.progress import ProgressFn, report

_CHUNK = 1 << 20  # copy entries 1 MiB at a time


_DRIVE = re.compile(r"^[A-Za-z]:")


_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


# One file or folder name, in bytes of UTF-8: what ext4, APFS and NTFS store.
MAX_NAME_BYTES = 255


# A whole entry name: deep enough for any real layout while the extraction folder's own path
# plus the name stays far below Linux's 4096-byte path limit.
MAX_PATH_BYTES = 1024


_ENCRYPTED, _PATCHED, _STRONG = 0x1, 0x20, 0x40


class WriteBudget(Protocol):
    """What may bound an extraction beyond :class:`ExtractLimits` (hosted mode's quota, see
    :class:`catdog.data.import_bounds.ImportBudget`); each method raises to refuse."""

    def plan(self, declared_bytes: int, entries: int) -> None:
        """Called with the planned entries' declared total before anything is written."""

    def add(self, nbytes: int) -> None:
        """Called before each chunk of ``nbytes`` is written."""


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


class _Damaged(Exception):
    """An entry's data cannot be read; ``why`` says how, for the skip report."""

    def __init__(self, why: str) -> None:
        super().__init__(why)
        self.why = why


def _is_ignored(parts: tuple[str, ...]) -> bool:
    """macOS resource forks and dotfiles (``.DS_Store``) are not user content."""
    return parts[0] == "__MACOSX" or any(part.startswith(".") for part in parts)


def _entry_name(info: zipfile.ZipInfo) -> str:
    """The entry's name. Names without the UTF-8 flag are read as cp437 by zipfile; many tools
    (macOS's among them) write UTF-8 without setting the flag, so those are read as UTF-8."""
    name = info.orig_filename
    if not info.flag_bits & UTF8_FLAG and not name.isascii():
        # A genuine DOS/Windows (cp437) name is not UTF-8: then keep zipfile's reading.
        with suppress(UnicodeError):
            name = name.encode("cp437").decode("utf-8")
    return name


def _safe_parts(shown: str, archive: str) -> tuple[str, ...]:
    """Return the entry's path components, or raise if it could land outside the destination
    or means different names to different tools."""
    if "\0" in shown:
        raise ArchiveError(
            f"{archive}: entry {quoted(shown)} has a NUL character in its name, a trick to show "
            "one name and extract another; the archive is refused"
        )
    name = shown.replace("\\", "/")  # some Windows tools write backslashes
    if name.startswith("/") or _DRIVE.match(name):
        raise ArchiveError(
            f"{archive}: entry {quoted(shown)} has an absolute path; refusing to extract an "
            "archive that writes outside its folder"
        )
    parts = tuple(part for part in PurePosixPath(name).parts if part not in ("", "."))
    if ".." in parts:
        raise ArchiveError(
            f"{archive}: entry {quoted(shown)} contains '..'; refusing to extract an archive "
            "that writes outside its folder"
        )
    if any(":" in part for part in parts):
        raise ArchiveError(f"{archive}: entry {quoted(shown)} names a drive or stream; refused")
    return parts


def _refuse_unsafe(info: zipfile.ZipInfo, shown: str, archive: str, limits: ExtractLimits) -> None:
    """Refuse symlinks and entries whose declared sizes look like a bomb."""
    if stat.S_ISLNK(info.external_attr >> 16):
        raise ArchiveError(
            f"{archive}: entry {quoted(shown)} is a symbolic link; links in archives can "
            "point outside the extraction folder, so the archive is refused"
        )
    ratio = info.file_size / max(info.compress_size, 1)
    if info.file_size >= limits.ratio_min_bytes and ratio > limits.max_ratio:
        raise ArchiveError(
            f"{archive}: entry {quoted(shown)} would expand {ratio:,.0f}× "
            f"({info.compress_size:,} → {info.file_size:,} bytes; the limit is "
            f"{limits.max_ratio:,.0f}×); this looks like a zip bomb"
        )


def _skip_reason(
    info: zipfile.ZipInfo, shown: str, parts: tuple[str, ...], archive: str, limits: ExtractLimits
) -> str | None:
    """Why a file entry cannot be extracted though the archive is safe, or None."""
    entry = f"{archive}: entry {quoted(shown)}"
    if info.flag_bits & (_ENCRYPTED | _STRONG):
        return f"{entry} is encrypted; skipped. Unzip it with its password and import the folder"
    method = info.compress_type
    if method not in READABLE_METHODS or info.flag_bits & _PATCHED:
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
                f"{archive}: entry {quoted(shown)} appears twice; which copy is meant is "
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
                f"(reached at entry {quoted(shown)}); this looks like a zip bomb"
            )
        plan.append((info, shown, target))
    for parts, shown in files.items():
        if parts in folders:
            raise ArchiveError(
                f"{archive}: entry {quoted(shown)} is a file, but entry "
                f"{quoted(folders[parts])} makes it a folder; the archive is ambiguous and "
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


def _copy_entry(
    zf: zipfile.ZipFile, info: zipfile.ZipInfo, target: Path, budget: WriteBudget | None
) -> None:
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
        except READ_ERRORS as exc:
            raise _Damaged(_damage(exc)) from exc
        with src:
            while True:
                try:
                    chunk = src.read(_CHUNK)
                except READ_ERRORS as exc:
                    raise _Damaged(_damage(exc)) from exc
                if not chunk:
                    return
                if budget is not None:
                    budget.add(len(chunk))  # counted before it is written
                out.write(chunk)


def _extract_all(
    zf: zipfile.ZipFile,
    plan: list[tuple[zipfile.ZipInfo, str, tuple[str, ...]]],
    root: Path,
    archive: str,
    progress: ProgressFn | None,
    budget: WriteBudget | None = None,
) -> tuple[list[Path], list[SkippedEntry]]:
    """Extract the planned entries under ``root``; damaged ones are removed and reported."""
    files: list[Path] = []
    skipped: list[SkippedEntry] = []
    for done, (info, shown, parts) in enumerate(plan, start=1):
        target = root.joinpath(*parts)
        if not target.resolve().is_relative_to(root):  # a link already in the destination
            raise ArchiveError(
                f"{archive}: entry {quoted(shown)} would be written outside the folder"
            )
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            _copy_entry(zf, info, target, budget)
            files.append(target)
        except _Damaged as exc:
            target.unlink(missing_ok=True)
            reason = f"{archive}: entry {quoted(shown)} {exc.why}; skipped"
            skipped.append(SkippedEntry("/".join(parts), reason))
        except FileExistsError:
            raise ArchiveError(
                f"{archive}: entry {quoted(shown)} would replace a file already there (on a disk "
                "that ignores case, two names differing only in case collide); the archive is "
                "refused. Extract it into an empty folder, or rename one of the two"
            ) from None
        except OSError as exc:
            raise ArchiveError(
                f"{archive}: could not write entry {quoted(shown)} ({exc.strerror or exc}); "
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
    budget: WriteBudget | None = None,
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
        budget: told the declared total before anything is written and each chunk before it
            is written; what it raises ends the extraction (hosted mode's quota).

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
    with open_zip(zip_path, archive, limits) as zf:
        plan, skipped = _plan(zf, archive, limits)
        try:  # entries that share bytes, an absurd total: before a byte is extracted
            assert zf.fp is not None
            check_layout(zf.fp, zf.infolist(), archive, os.fstat(zf.fp.fileno()).st_size)
        except LayoutError as exc:
            raise ArchiveError(str(exc)) from None
        if budget is not None:
            budget.plan(sum(info.file_size for info, _, _ in plan), len(plan))
        dest.mkdir(parents=True, exist_ok=True)
        files, damaged = _extract_all(zf, plan, dest.resolve(), archive, progress, budget)
    skipped += damaged
    if skipped and not files:
        raise ArchiveError(
            f"{archive}: none of its {len(skipped):,} file(s) could be extracted; the first: "
            f"{skipped[0].reason}"
        )
    return Extraction(files, skipped)
