"""The lock file of a run folder: only the one process that trains a run holds it.

Holding it is :class:`catdog.train.runs.RunLock`'s job; this module only names the file and
tells, from outside, whether someone holds it — which is all the hosted workspace sweeper
needs (so it does not depend on the whole run-folder module).
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

try:
    import fcntl
except ImportError:  # not on Windows: the pid/heartbeat check is all there is there
    fcntl = None  # type: ignore[assignment]

LOCK_FILE = "train.lock"


def lock_taken(run_path: Path) -> bool | None:
    """Whether someone trains the run now: True (its lock is held), False (it is free, so
    whoever trained it has exited), None (cannot tell: no flock, or no lock file yet)."""
    if fcntl is None:
        return None
    try:
        flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_NOFOLLOW", 0)
        fd = os.open(run_path / LOCK_FILE, flags)  # a pipe planted there must not block us
    except OSError:
        return None
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        return None
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    except OSError:
        return None
    finally:
        os.close(fd)  # also drops the shared lock just taken, at once
    return False
