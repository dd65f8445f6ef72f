"""A hosted server's workspaces over time: the last visit of each, and the sweep that deletes
the ones unused for too long.

Visitors of a hosted demo each have a private workspace (:mod:`catdog.data.paths`); a visit
touches :data:`LAST_SEEN` in it, and a daemon thread (:func:`start_sweeper`) deletes the
workspaces nothing touched for the policy's ``workspace_idle_hours``. Plain Python.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import threading
import time
from collections.abc import Callable, Iterable
from pathlib import Path

from catdog.data.paths import valid_workspace_token, workspace_dir, workspaces_dir

LAST_SEEN = ".last-seen"  # touched in a workspace at each visit (at most once a minute)
TOUCH_EVERY_SECONDS = 60.0
SWEEP_EVERY_SECONDS = 300.0
_log = logging.getLogger(__name__)
_sweeper_lock = threading.Lock()
_sweeper: threading.Thread | None = None


def touch_workspace(token: str | None = None) -> None:
    """Record that a workspace (default: the current one) is in use now, so the sweep keeps
    it; cheap enough for every page view (it writes at most once a minute)."""
    folder = workspace_dir(token)
    if folder is None:
        return
    marker = folder / LAST_SEEN
    with contextlib.suppress(OSError):
        if time.time() - marker.stat().st_mtime < TOUCH_EVERY_SECONDS:
            return
    folder.mkdir(parents=True, exist_ok=True)
    marker.touch()


def last_visit(token: str) -> float | None:
    """When workspace ``token`` was last visited (:func:`touch_workspace`), or None if never."""
    folder = workspace_dir(token)
    try:
        return None if folder is None else (folder / LAST_SEEN).stat().st_mtime
    except OSError:
        return None


def last_activity(folder: str | os.PathLike[str]) -> float:
    """The newest modification time of ``folder`` and anything in it (links not followed)."""
    newest = os.lstat(folder).st_mtime
    for path, dirs, files in os.walk(folder):
        for name in dirs + files:
            with contextlib.suppress(OSError):  # vanished meanwhile
                newest = max(newest, os.lstat(os.path.join(path, name)).st_mtime)
    return newest


def _training_there(folder: Path) -> bool:
    """Whether some process trains one of the workspace's runs now (holds its lock)."""
    from catdog.train.runs.lock import lock_taken

    runs_folder = folder / "runs"
    return runs_folder.is_dir() and any(
        lock_taken(run) for run in runs_folder.iterdir() if run.is_dir()
    )


def sweep_idle_workspaces(
    busy: Iterable[str] = (),
    *,
    now: float | None = None,
    idle_hours: float | None = None,
    root: Path | None = None,
) -> list[Path]:
    """Delete the workspaces nothing touched for ``idle_hours`` (default: the setting).

    Only folders of ``root`` (default ``<data home>/workspaces/``) named like a workspace
    token are considered;
    the shared data and anything else are never touched. A workspace is kept if its token is
    in ``busy`` (a job training or queued, see
    :meth:`catdog.jobs.JobManager.busy_workspaces`),
    if any process holds the lock of one of its runs, or if anything in it changed since the
    cutoff (a visit touches :data:`LAST_SEEN`).

    Returns:
        The workspace folders deleted.
    """
    root = workspaces_dir() if root is None else root
    if not root.is_dir():
        return []
    if idle_hours is None:
        from catdog.policy import HostedSettings

        idle_hours = HostedSettings.from_env().workspace_idle_hours
    hours = idle_hours
    cutoff = (time.time() if now is None else now) - hours * 3600
    keep, removed = set(busy), []
    for entry in os.scandir(root):
        if not valid_workspace_token(entry.name) or not entry.is_dir(follow_symlinks=False):
            continue
        folder = Path(entry.path)
        try:
            if entry.name in keep or _training_there(folder) or last_activity(folder) > cutoff:
                continue
            shutil.rmtree(folder)
        except OSError as exc:  # in use or gone meanwhile: the next sweep sees it again
            _log.warning("could not sweep workspace %s: %s", entry.name, exc)
            continue
        removed.append(folder)
    return removed


def start_sweeper(busy: Callable[[], Iterable[str]], every_seconds: float = SWEEP_EVERY_SECONDS
                  ) -> bool:  # fmt: skip
    """Sweep idle workspaces now and then every ``every_seconds``, in a daemon thread (one
    per process: later calls do nothing and return False). It sweeps the data home of the
    moment it starts.

    Args:
        busy: gives the tokens of the workspaces with a job training or queued, at each sweep.
    """
    global _sweeper
    with _sweeper_lock:
        if _sweeper is not None and _sweeper.is_alive():
            return False

        root = workspaces_dir()

        def loop() -> None:
            while True:
                try:
                    for folder in sweep_idle_workspaces(busy(), root=root):
                        _log.info("removed idle workspace %s", folder.name)
                except Exception:  # a sweep that fails must not end the sweeping
                    _log.exception("sweeping idle workspaces failed")
                time.sleep(every_seconds)

        _sweeper = threading.Thread(target=loop, name="catdog-workspace-sweeper", daemon=True)
        _sweeper.start()
        return True
