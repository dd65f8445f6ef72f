"""What the operating system says about processes and disks, asked in one way everywhere.

Sizes in messages are in MB of 2**20 bytes (:data:`MB`), the unit Streamlit's upload limit and
every ``CATDOG_*_MB`` setting use; :func:`megabytes` writes one.
"""

from __future__ import annotations

import errno
import os

MB = 1024 * 1024  # the MB of every message and setting (2**20 bytes)


def megabytes(nbytes: float) -> str:
    """``"12.3 MB"``: a size in bytes as messages show it (MB of :data:`MB` bytes)."""
    return f"{nbytes / MB:,.1f} MB"


def process_alive(pid: int) -> bool:
    """Whether process ``pid`` still runs on this computer (True when that cannot be told)."""
    if os.name == "nt":  # os.kill would terminate the process there
        return True
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except (ProcessLookupError, OverflowError):
        return False
    except OSError:  # PermissionError: it runs, as another user
        return True
    return True


def disk_full(exc: BaseException | None) -> bool:
    """Whether ``exc``, or what caused it, is the disk (or the user's quota) running full."""
    while exc is not None:
        if isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT):
            return True
        if "No space left on device" in str(exc):  # TensorFlow's writer says it in words
            return True
        exc = exc.__cause__ or exc.__context__
    return False
