"""Crash leftovers: the work folders of killed imports and uploads, swept when it is safe."""

from __future__ import annotations

import os
import re
import shutil
import tempfile
import time
from collections.abc import Callable, Iterable
from pathlib import Path

from catdog.data.paths import datasets_dir
from catdog.system import process_alive

UPLOAD_DIR_PREFIX = "catdog-upload-"


# A leftover must be this old (nothing in it changed for so long) to be swept: an import
# writes to its staging folder for every image, and extracting even 8 GiB takes minutes.
STALE_AFTER_MINUTES = 60


WORK_DIR = re.compile(r"^\.(?P<name>.+)\.importing-(?:(?P<pid>\d+)-)?[a-z0-9_]+$")


_UPLOAD_DIR = re.compile(r"^catdog-upload-(?:(?P<pid>\d+)-)?[a-z0-9_]+$")


_WORK_PARTS = {"extracted", "staging", "dataset"}  # all an import ever makes in its folder


def work_dir_prefix(name: str) -> str:
    """Prefix of the hidden work folder an import into ``name`` makes beside it."""
    return f".{name}.importing-{os.getpid()}-"


def upload_dir_prefix() -> str:
    """Prefix of the temporary folder an uploaded archive is written to."""
    return f"{UPLOAD_DIR_PREFIX}{os.getpid()}-"


def _holds_work(found: list[os.DirEntry]) -> bool:
    """An import's work folder holds at most its extracted/, staging/ and dataset/ folders."""
    return all(e.name in _WORK_PARTS and e.is_dir(follow_symlinks=False) for e in found)


def _holds_upload(found: list[os.DirEntry]) -> bool:
    """An upload folder holds at most the one uploaded file."""
    return len(found) <= 1 and all(e.is_file(follow_symlinks=False) for e in found)


def _looks_like_ours(entry: os.DirEntry, holds_ours: Callable[[list], bool]) -> bool:
    """A real folder (not a link) of this user holding only what catdog puts there."""
    if not entry.is_dir(follow_symlinks=False):
        return False
    if hasattr(os, "getuid") and entry.stat(follow_symlinks=False).st_uid != os.getuid():
        return False
    with os.scandir(entry.path) as inside:
        return holds_ours(list(inside))


def _last_change(path: str) -> float:
    """Newest modification time of a folder and of its direct entries."""
    with os.scandir(path) as inside:
        times = [e.stat(follow_symlinks=False).st_mtime for e in inside]
    return max([os.lstat(path).st_mtime, *times])


def sweep_folder(
    folder: Path, pattern: re.Pattern[str], cutoff: float, name: str | None = None
) -> list[Path]:
    """Delete the stale leftovers matching ``pattern`` (:data:`WORK_DIR` or
    :data:`_UPLOAD_DIR`) directly in ``folder``, only those of the output ``name`` if given;
    returns what was deleted."""
    holds_ours = _holds_work if pattern is WORK_DIR else _holds_upload
    removed: list[Path] = []
    try:
        with os.scandir(folder) as entries:
            candidates = [e for e in entries if pattern.match(e.name)]
    except OSError:
        return removed
    for entry in candidates:
        found = pattern.match(entry.name)
        if name is not None and found.groupdict().get("name") != name:
            continue
        pid = found.group("pid")
        try:
            if not _looks_like_ours(entry, holds_ours) or (pid and process_alive(int(pid))):
                continue
            if _last_change(entry.path) > cutoff:
                continue
            shutil.rmtree(entry.path)
        except OSError:  # gone meanwhile, or not ours to delete: leave it
            continue
        removed.append(Path(entry.path))
    return removed


def sweep_stale_imports(
    folders: Iterable[str | Path] | None = None,
    *,
    temp_dir: str | Path | None = None,
    older_than_minutes: float = STALE_AFTER_MINUTES,
) -> list[Path]:
    """Delete what killed imports left behind; returns the folders deleted.

    Looks, without descending, in ``folders`` for hidden ``.NAME.importing-*`` work folders
    and in ``temp_dir`` for ``catdog-upload-*`` folders. One is deleted only if all of these
    hold: it is a real folder (not a link) of this user; it holds nothing but what an import
    puts there; the process that made it is gone (its name carries the pid; older names
    without one are judged by age alone); and nothing directly in it changed for
    ``older_than_minutes``. Datasets and anything else are never touched. Cheap enough for
    every start of the dashboard or the command line: one listing per folder and a few stats
    per leftover. (:func:`import_dataset` also sweeps its own output name's leftovers.)

    Whether a process is gone is known only on this computer: a data home shared between
    computers relies on the age rule, and on Windows, where that check is not made, folders
    carrying a pid are never swept.

    Args:
        folders: where imports write (default: the data home's datasets folder).
        temp_dir: where uploads are written (default: the system's temporary folder).
        older_than_minutes: how long a leftover must have been untouched.

    Returns:
        The deleted folders.
    """
    cutoff = time.time() - older_than_minutes * 60
    removed = []
    for folder in folders if folders is not None else [datasets_dir()]:
        removed += sweep_folder(Path(folder), WORK_DIR, cutoff)
    temp = Path(temp_dir) if temp_dir is not None else Path(tempfile.gettempdir())
    return removed + sweep_folder(temp, _UPLOAD_DIR, cutoff)
