"""A workspace's disk quota, held while bytes are written, not only checked before.

:func:`check` refuses adding bytes a workspace has no room for; a :class:`DiskMeter` counts
bytes as they are written (an import's extracted and staged files, a run's checkpoints) and
refuses the first chunk past the room left. Meters of one workspace running at once see each
other's bytes, so two writers cannot each take the same free megabytes. Plain Python: the
policy (:mod:`catdog.policy`) decides the quotas; this module only counts.
"""

from __future__ import annotations

import os
import stat
import threading
from types import TracebackType

from catdog.system import megabytes

_lock = threading.Lock()
_metered: dict[str, int] = {}  # workspace → bytes its running meters counted so far


class HostedLimitError(ValueError):
    """Something hosted mode does not allow (over a cap, or the server's own files)."""


def folder_size(path: str | os.PathLike[str]) -> int:
    """Bytes of the regular files under ``path`` (links not followed; 0 if it is missing)."""
    total = 0
    for folder, _dirs, files in os.walk(path):
        for name in files:
            try:
                info = os.lstat(os.path.join(folder, name))
            except OSError:
                continue  # vanished meanwhile
            total += info.st_size if stat.S_ISREG(info.st_mode) else 0
    return total


def _usage(workspace: str) -> int:
    from catdog.data.paths import workspace_dir

    folder = workspace_dir(workspace)
    return 0 if folder is None else folder_size(folder)


def _over(used: int, adding: int, cap: int, what: str) -> HostedLimitError:
    more = f" and {what} would add {megabytes(adding)}" if adding else ""
    return HostedLimitError(
        f"your workspace holds {megabytes(used)}{more}: over its quota of {megabytes(cap)}; delete "
        "runs or datasets you no longer need (History and Dataset pages), then try again"
    )


def check(workspace: str, cap: int, adding: int = 0, what: str = "") -> None:
    """Refuse adding ``adding`` bytes to ``workspace`` if it would then hold more than ``cap``
    (counting what running meters of it have written), or if it is full already.

    Raises:
        HostedLimitError: the message gives both sizes and what to do.
    """
    with _lock:
        used = _usage(workspace) + _metered.get(workspace, 0)
    if used + adding <= cap and (adding or used < cap):
        return
    raise _over(used, adding, cap, what)


class DiskMeter:
    """Counts bytes about to be written into a workspace, refusing the first chunk that would
    take it past its quota (``quota``: None for no quota) or past ``cap`` (None: none).

    Use it as a context manager: its count is the workspace's "in flight" bytes until the
    block ends (then the files are on disk, or deleted by the writer). Thread-safe.

    Args:
        workspace: the workspace written into (None: no workspace, only ``cap`` applies).
        quota: the workspace's quota in bytes, or None.
        what: what writes, for messages (``"importing pets.zip"``).
        cap: a cap of the writer's own in bytes, or None.
    """

    def __init__(self, workspace: str | None, quota: int | None, what: str,
                 cap: int | None = None) -> None:  # fmt: skip
        self.workspace, self.what, self.cap = workspace, what, cap
        self.written = 0
        self._room: int | None = None
        self._quota = quota if workspace is not None else None
        self._lock = threading.Lock()
        self._open = False

    def __enter__(self) -> DiskMeter:
        if self._quota is not None and self.workspace is not None:
            with _lock:
                used = _usage(self.workspace) + _metered.get(self.workspace, 0)
                _metered[self.workspace] = _metered.get(self.workspace, 0)
            self._used_at_start = used
            self._room = self._quota - used
            if self._room <= 0:
                raise _over(used, 0, self._quota, self.what)
        self._open = True
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:  # fmt: skip
        self._open = False
        if self._room is not None and self.workspace is not None:
            with _lock:
                left = _metered.get(self.workspace, 0) - self.written
                if left > 0:
                    _metered[self.workspace] = left
                else:
                    _metered.pop(self.workspace, None)

    @property
    def room(self) -> int | None:
        """Bytes that may still be written (None: no bound)."""
        bounds = [b - self.written for b in (self._room, self.cap) if b is not None]
        return min(bounds) if bounds else None

    def add(self, nbytes: int) -> None:
        """Count ``nbytes`` about to be written.

        Raises:
            HostedLimitError: they would pass the quota or the cap (nothing is counted then).
        """
        with self._lock:
            if self.cap is not None and self.written + nbytes > self.cap:
                raise HostedLimitError(
                    f"{self.what} stopped: it would write more than {megabytes(self.cap)}, hosted "
                    "mode's cap; nothing was kept. Import fewer or smaller photos"
                )
            if self._room is not None and self.written + nbytes > self._room:
                total = self._used_at_start + self.written + nbytes
                raise HostedLimitError(
                    f"{self.what} stopped: it would take your workspace to {megabytes(total)}, "
                    f"over its quota of {megabytes(self._quota or 0)}; nothing was kept. Delete "
                    "runs or datasets you no longer need (History and Dataset pages), then try "
                    "again"
                )
            self.written += nbytes
            if self._room is not None and self.workspace is not None:
                with _lock:
                    _metered[self.workspace] = _metered.get(self.workspace, 0) + nbytes
