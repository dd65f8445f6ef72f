"""The disk cache's folders: where entries live, who may read or write one, and clean-up.

``<data home>/cache/decoded/`` holds one folder per *entry* (a split decoded at one image size,
named by its key: 32 hex digits; see :mod:`catdog.train.shards` for what is in it) and
``locks/<key>.lock``, one lock file per entry:

* a reader holds a **shared** lock on its entry (a :class:`CacheLease`) while it may read it;
* a writer holds the **exclusive** lock while it writes, in a hidden
  ``.<key>.writing-<pid>-<random>`` folder (:func:`work_folder`) that it renames into place
  when whole; a killed writer leaves only that folder, and its lock free;
* :func:`clean_cache` deletes an entry only if it can take the exclusive lock at once (nobody
  reads it), hiding it first by a rename (``.<key>.removing-…``) so no one sees half of it.

Only folders whose names match what catdog makes are ever deleted, and links are never
followed. Where there is no ``flock`` (Windows), nothing is cleaned that might be in use.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import tempfile
import weakref
from collections.abc import Collection
from dataclasses import dataclass
from pathlib import Path

from catdog.data.paths import data_home
from catdog.policy import current_policy
from catdog.train.budget import human_bytes

try:
    import fcntl
except ImportError:  # not on Windows: there, entries are never cleaned while they may be read
    fcntl = None  # type: ignore[assignment]

MANIFEST = "manifest.json"  # an entry's description, written last: an entry without it is not one
LAST_USED = "last-used"  # touched at each use: the least recently used entry is cleaned first
# The cache may take this share of the disk space it could have (free space plus its own), at
# most MAX_CACHE_BYTES; clean-up after each new entry brings it back under that.
CACHE_SHARE = 0.5
MAX_CACHE_BYTES = 64 * 1024**3
# Disk space a new entry must leave free (beyond 5% over its size): other files need room too.
SPARE_BYTES = 64 * 1024 * 1024
_KEY = re.compile(r"^[0-9a-f]{32}$")
_LEFTOVER = re.compile(r"^\.(?P<key>[0-9a-f]{32})\.(?P<what>writing|removing)-\d+-[a-z0-9_]+$")


class CacheError(ValueError):
    """The disk cache cannot hold a split (a full disk); the message says what to do."""


def cache_root() -> Path:
    """The folder holding every cache entry: ``<data home>/cache/decoded`` (created)."""
    root = data_home() / "cache" / "decoded"
    (root / "locks").mkdir(parents=True, exist_ok=True)
    return root


class EntryLock:
    """The lock of one entry, open for this holder (each holder opens its own: ``flock`` locks
    belong to an open file, so two holders in one process exclude each other too)."""

    def __init__(self, root: Path, key: str) -> None:
        self.key = key
        path = root / "locks" / f"{key}.lock"
        self.fd = None if fcntl is None else os.open(path, os.O_RDWR | os.O_CREAT, 0o644)

    def take(self, exclusive: bool, wait: bool = True) -> bool:
        """Take (or convert to) the shared or exclusive lock; False if ``wait`` is off and
        someone else holds it."""
        if self.fd is None:
            return True
        mode = (fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH) | (0 if wait else fcntl.LOCK_NB)
        try:
            fcntl.flock(self.fd, mode)
        except BlockingIOError:
            return False
        return True

    def close(self) -> None:
        """Drop the lock (closing the file releases it)."""
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None

    def lease(self) -> CacheLease:
        """Hand this lock (held shared) over to a :class:`CacheLease`."""
        fd, self.fd = self.fd, None
        return CacheLease(self.key, fd)


class CacheLease:
    """A shared lock on one cache entry: while it is held, :func:`clean_cache` leaves the entry
    alone. Released by :meth:`release`, or when the lease is garbage-collected."""

    def __init__(self, key: str, fd: int | None) -> None:
        self.key = key
        self._close = weakref.finalize(self, _close_fd, fd)

    @classmethod
    def take(cls, root: Path, key: str) -> CacheLease:
        """A new shared lock on entry ``key`` (waits while someone writes or removes it)."""
        lock = EntryLock(root, key)
        lock.take(exclusive=False)
        return lock.lease()

    def release(self) -> None:
        """Let the entry go (it stays in the cache, and may now be cleaned)."""
        self._close()


def _close_fd(fd: int | None) -> None:
    if fd is not None:
        os.close(fd)


def work_folder(root: Path, key: str) -> Path:
    """A new hidden folder to write entry ``key`` in (then renamed to ``root/key``)."""
    return Path(tempfile.mkdtemp(prefix=f".{key}.writing-{os.getpid()}-", dir=root))


def touch(entry: Path) -> None:
    """Record that ``entry`` was used now (clean-up removes the least recently used first)."""
    with contextlib.suppress(OSError):
        (entry / LAST_USED).touch()


# ------------------------------------------------------------------------------ disk space


def space_message(root: Path, need: int, images: int) -> str:
    """The one line a full disk gets: what was needed, what is free, what to do."""
    free = shutil.disk_usage(root).free
    return (
        f"streaming {images:,} images needs {human_bytes(need)} of disk in {root} for their "
        f"decoded pixels, but only {human_bytes(free)} is free; free some disk space, or train "
        "at a smaller image size"
    )


def check_space(root: Path, need: int, images: int) -> None:
    """Refuse, before decoding anything, a split the disk has no room for (with a margin).

    Raises:
        CacheError: saying how much is needed and free.
    """
    if shutil.disk_usage(root).free < need * 1.05 + SPARE_BYTES:
        raise CacheError(space_message(root, need, images))


def write_synced(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` and sync it to the disk."""
    flags = os.O_WRONLY | os.O_CREAT | os.O_TRUNC | getattr(os, "O_NOFOLLOW", 0)
    with os.fdopen(os.open(path, flags, 0o644), "wb") as out:  # never through a planted link
        out.write(data)
        out.flush()
        os.fsync(out.fileno())


def sync_folder(folder: Path) -> None:
    """Make a rename in ``folder`` durable (where folders can be synced)."""
    with contextlib.suppress(OSError):
        fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


# ------------------------------------------------------------------------------- clean-up


def remove_leftovers(root: Path, key: str) -> None:
    """Delete entry ``key`` (broken: no whole manifest) and the hidden folders killed writers
    of it left. The caller holds the entry's exclusive lock, so no one else writes it."""
    with os.scandir(root) as entries:
        names = [e.name for e in entries if e.is_dir(follow_symlinks=False)]
    for name in names:
        found = _LEFTOVER.match(name)
        if name == key or (found and found["key"] == key):
            shutil.rmtree(root / name, ignore_errors=True)


@dataclass
class _Entry:
    key: str
    path: Path
    size: int
    last_used: float
    source: str | None  # the split folder it was decoded from


def _entries(root: Path) -> list[_Entry]:
    """The entries of the cache, with their size, last use and source folder."""
    found = []
    with os.scandir(root) as scan:
        folders = [e for e in scan if _KEY.match(e.name) and e.is_dir(follow_symlinks=False)]
    for entry in folders:
        path = Path(entry.path)
        try:
            with os.scandir(path) as inside:
                files = [e for e in inside if e.is_file(follow_symlinks=False)]
            size = sum(e.stat(follow_symlinks=False).st_size for e in files)
            used = max([e.stat(follow_symlinks=False).st_mtime for e in files] or [0.0])
            source = json.loads((path / MANIFEST).read_text()).get("folder")
        except (OSError, ValueError, AttributeError):
            size, used, source = 0, 0.0, None  # half removed or broken: first to go
        found.append(_Entry(entry.name, path, size, used, source))
    return found


def _remove_unused(root: Path, entry: _Entry) -> bool:
    """Delete an entry if no one holds it (hidden by a rename first, so a reader never sees
    half of it); whether it was deleted."""
    lock = EntryLock(root, entry.key)
    try:
        if lock.fd is None or not lock.take(exclusive=True, wait=False):
            return False  # in use, or no way to tell: keep it
        hidden = root / f".{entry.key}.removing-{os.getpid()}-{os.urandom(4).hex()}"
        try:
            os.rename(entry.path, hidden)
        except OSError:
            return False
        shutil.rmtree(hidden, ignore_errors=True)
        return True
    finally:
        lock.close()


def clean_cache(keep: Collection[str] = (), cap_bytes: int | None = None) -> list[str]:
    """Delete what the cache no longer needs; returns the keys of the entries deleted.

    In order: hidden folders of killed writers (whose entry's lock is free) and of interrupted
    removals; entries whose dataset folder is gone; then the least recently used entries while
    the cache is over ``cap_bytes`` (default: half the disk space it could have, at most
    :data:`MAX_CACHE_BYTES`, and in hosted mode the policy's cap). Entries in ``keep`` and
    entries someone reads (holds a :class:`CacheLease` on) are never deleted.
    """
    root = cache_root()
    _remove_dead_writers(root)
    entries = [e for e in _entries(root) if e.key not in keep]
    removed = []
    for entry in entries:
        gone = entry.source is not None and not Path(entry.source).is_dir()
        if gone and _remove_unused(root, entry):
            removed.append(entry.key)
    left = [e for e in entries if e.key not in removed]
    total = sum(e.size for e in _entries(root))
    if cap_bytes is None:
        cap_bytes = int(min(MAX_CACHE_BYTES, (shutil.disk_usage(root).free + total) * CACHE_SHARE))
        if (hosted_cap := current_policy().cache_cap_bytes) is not None:
            cap_bytes = min(cap_bytes, hosted_cap)
    for entry in sorted(left, key=lambda e: e.last_used):
        if total <= cap_bytes:
            break
        if _remove_unused(root, entry):
            removed.append(entry.key)
            total -= entry.size
    return removed


def _remove_dead_writers(root: Path) -> None:
    """Delete the hidden folders of writers that were killed (their entry's lock is free) and
    of removals that were interrupted."""
    with os.scandir(root) as scan:
        leftovers = [e.name for e in scan if e.is_dir(follow_symlinks=False)]
    for name in leftovers:
        found = _LEFTOVER.match(name)
        if found is None:
            continue
        if found["what"] == "removing":
            shutil.rmtree(root / name, ignore_errors=True)
            continue
        lock = EntryLock(root, found["key"])
        try:
            if lock.fd is not None and lock.take(exclusive=True, wait=False):
                shutil.rmtree(root / name, ignore_errors=True)  # no writer of it is alive
        finally:
            lock.close()
