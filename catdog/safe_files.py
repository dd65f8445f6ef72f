"""Opening and writing files where someone else may have put something first.

Every file catdog reads from a place a user controls (a run folder, a model file, a weights
file, a lock file) is opened without blocking (a named pipe would otherwise wait forever for a
writer) and checked to be a regular file on the open descriptor, so it cannot be swapped in
between. Every file catdog creates is written to a new temporary file beside it and then
renamed into place: a link planted where the file goes is replaced, never followed, and a
full disk leaves the old file (or nothing) rather than half a file.
"""

from __future__ import annotations

import contextlib
import errno
import os
import stat
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)
_NONBLOCK = getattr(os, "O_NONBLOCK", 0)


class FileProblem(OSError):
    """A file that is not what it should be (a folder, a pipe, empty, too big); the message
    names the file and says what it is (:attr:`what`: "is a named pipe (FIFO), not a regular
    file")."""

    def __init__(self, name: str, what: str) -> None:
        super().__init__(f"{name} {what}")
        self.what = what

    def __str__(self) -> str:
        return str(self.args[0])


def not_regular(mode: int) -> str:
    """What a file that is no regular file is (from its ``st_mode``): "is a folder",
    "is a named pipe (FIFO), not a regular file"…"""
    if stat.S_ISDIR(mode):
        return "is a folder, not a file"
    if stat.S_ISFIFO(mode):
        return "is a named pipe (FIFO), not a regular file"
    if stat.S_ISSOCK(mode):
        return "is a socket, not a regular file"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "is a device, not a regular file"
    return "is not a regular file"


def open_regular(path: str | Path, name: str | None = None, *, follow: bool = True) -> int:
    """Open a regular file for reading without ever blocking; returns the descriptor.

    Args:
        path: the file.
        name: how messages name it (default: the path).
        follow: follow a link at ``path`` (False: a link is refused).

    Raises:
        FileProblem: it is a folder, pipe, socket or device (or a link, with ``follow=False``).
        OSError: it cannot be opened (missing, no permission…); :func:`os_words` says it.
    """
    name = name or str(path)
    flags = os.O_RDONLY | _NONBLOCK | (0 if follow else _NOFOLLOW)
    try:
        fd = os.open(path, flags)
    except OSError as exc:
        if exc.errno == errno.ELOOP and not follow:
            raise FileProblem(name, "is a symbolic link; catdog never follows links") from exc
        raise
    mode = os.fstat(fd).st_mode
    if not stat.S_ISREG(mode):
        os.close(fd)
        raise FileProblem(name, not_regular(mode))
    return fd


def read_regular(path: str | Path, limit: int, name: str | None = None) -> bytes:
    """The whole of a regular file of at most ``limit`` bytes (see :func:`open_regular`).

    Raises:
        FileProblem: not a regular file, or bigger than ``limit``.
        OSError: it cannot be read.
    """
    name = name or str(path)
    with os.fdopen(open_regular(path, name), "rb") as f:
        size = os.fstat(f.fileno()).st_size
        if size > limit:
            raise FileProblem(name, f"is {size:,} bytes, far more than such a file holds (the "
                              f"limit is {limit:,})")  # fmt: skip
        data = f.read(limit + 1)
    if len(data) > limit:
        raise FileProblem(name, f"grew past {limit:,} bytes while it was read")
    return data


def check_regular(path: str | Path, name: str | None = None) -> int:
    """The size of a regular file, after checking it is one that is not empty (without
    opening it: nothing blocks).

    Raises:
        FileProblem: a folder, pipe, device, socket, or an empty file.
        OSError: it does not exist or cannot be looked at.
    """
    name = name or str(path)
    st = os.stat(path)
    if not stat.S_ISREG(st.st_mode):
        raise FileProblem(name, not_regular(st.st_mode))
    if st.st_size == 0:
        raise FileProblem(name, "is empty (0 bytes)")
    return st.st_size


def open_lock_file(path: Path) -> int:
    """Open (creating it if needed) a lock file read-write, never through a link and never
    blocking on a pipe; returns the descriptor.

    Raises:
        FileProblem: something other than a regular file (a link, a pipe…) is at ``path``.
        OSError: it cannot be created or opened.
    """
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT | _NOFOLLOW | _NONBLOCK, 0o644)
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise FileProblem(path.name, "is a symbolic link; catdog never follows links, "
                              "remove it") from exc  # fmt: skip
        raise
    mode = os.fstat(fd).st_mode
    if not stat.S_ISREG(mode):
        os.close(fd)
        raise FileProblem(path.name, f"{not_regular(mode)}; remove it")
    return fd


@contextlib.contextmanager
def staged_file(path: Path, *, replace: bool = True) -> Iterator[Path]:
    """A new temporary path beside ``path`` for the ``with`` block to write; on success it
    becomes ``path`` (fsynced first). A link at ``path`` is replaced, never followed; with
    ``replace=False`` an existing ``path`` (a link included) is left alone and
    :class:`FileExistsError` raised. On any failure nothing is left behind.
    """
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        yield tmp
        fd = os.open(tmp, os.O_RDONLY | _NOFOLLOW)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
        if replace:
            os.replace(tmp, path)
        else:
            os.link(tmp, path)  # fails on anything already at path, a dangling link too
    finally:
        tmp.unlink(missing_ok=True)


def write_new_file(path: Path, write: Callable[[Path], None], *, replace: bool = True) -> None:
    """Write a file through :func:`staged_file`: ``write(tmp)`` fills the temporary path."""
    with staged_file(path, replace=replace) as tmp:
        write(tmp)


def exists_or_link(path: Path) -> bool:
    """Whether anything, a dangling link included, is at ``path``."""
    return os.path.lexists(path)


# ------------------------------------------------------------------------------------ words

_WORDS = {
    errno.ENOSPC: "the disk is full",
    errno.EDQUOT: "the disk quota is used up",
    errno.EACCES: "permission denied",
    errno.EPERM: "permission denied",
    errno.EROFS: "the disk is read-only",
    errno.ENOENT: "it does not exist",
    errno.EISDIR: "it is a folder",
    errno.ENOTDIR: "a part of its path is not a folder",
    errno.ELOOP: "it is a symbolic link (or a loop of links)",
    errno.ENAMETOOLONG: "its name is too long",
    errno.EEXIST: "it exists already",
    errno.EIO: "the disk reported an input/output error",
    errno.ENXIO: "it is a device or pipe with nothing behind it",
    errno.EAGAIN: "it is busy (a pipe or device)",
    errno.EMFILE: "too many files are open",
    errno.ENOMEM: "not enough memory",
    errno.ETXTBSY: "it is in use",
    errno.EFBIG: "it is too big for the disk",
}


def os_words(exc: OSError) -> str:
    """An operating-system error in words, without ``[Errno N]`` and without the file's name:
    "the disk is full", "permission denied", "it is a named pipe (FIFO), not a regular file"."""
    if isinstance(exc, FileProblem):
        return f"it {exc.what}"
    words = _WORDS.get(exc.errno or -1)
    if words is None and exc.strerror:
        words = exc.strerror.rstrip(".").lower()
    return words or str(exc) or type(exc).__name__
