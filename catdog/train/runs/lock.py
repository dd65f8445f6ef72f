"""One writer per run folder: the run's lock (``train.lock``) and the heartbeat of its trainer.

:func:`lock_taken` tells from outside whether someone trains a run (all the hosted workspace
sweeper needs); :class:`RunLock` is the claim itself; :class:`Heartbeat` keeps ``status.json``
fresh while training; :func:`effective_state` tells a running run from an interrupted one.
"""

from __future__ import annotations

import contextlib
import os
import socket
import stat
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from catdog.safe_files import FileProblem, open_lock_file, os_words, read_regular
from catdog.system import process_alive
from catdog.train.runs.files import RunBusy, RunError, write_status

try:
    import fcntl
except ImportError:  # not on Windows: the pid/heartbeat check is all there is there
    fcntl = None  # type: ignore[assignment]

LOCK_FILE = "train.lock"

# Where a run's lock cannot be checked (no flock, another host), a "running" run whose heartbeat
# is older than this, or whose process is gone, was interrupted.
STALE_AFTER_SECONDS = 300.0
HEARTBEAT_SECONDS = 10.0  # a training run rewrites its status this often, whatever it is doing
DAMAGED = "damaged"  # the state of a run folder whose files cannot be read
RESUMABLE_STATES = ("interrupted", "stopped", "failed", "cancelled")
# A run waiting in the dashboard's training queue: its job holds the run's lock meanwhile.
QUEUED = "queued"


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


class RunLock:
    """The claim of the one process (and thread) that trains a run: an exclusive, non-blocking
    ``fcntl.flock`` on ``train.lock`` in the run folder.

    The kernel drops the lock when its holder exits in any way, SIGKILL included, so a killed
    trainer never leaves a stale lock, and :func:`effective_state` tells a running run from an
    interrupted one by trying the lock rather than trusting the heartbeat's age. Each
    :meth:`acquire` opens the file anew, so a second thread of the same process is refused
    like another process. Where ``flock`` is not available (no ``fcntl``, a file system
    without locks) the lock holds nothing (:attr:`exclusive` is False) and callers fall back
    to the status file's pid and heartbeat.
    """

    def __init__(self, run_path: Path, fd: int | None) -> None:
        self.run_path, self._fd = run_path, fd

    @property
    def exclusive(self) -> bool:
        """True while this object holds a real flock on the run."""
        return self._fd is not None

    @classmethod
    def acquire(cls, run_path: Path, wait: float = 0.5) -> RunLock:
        """Take the run's lock, or say who has it.

        Args:
            run_path: the run folder.
            wait: keep trying this many seconds (a listing looks at the lock for an instant).

        Raises:
            RunBusy: another process or thread holds it ("run X is being trained by process
                N; stop it first").
            RunError: the lock file cannot be created (e.g. a read-only folder).
        """
        if fcntl is None:
            return cls(run_path, None)
        try:  # never through a link planted there, never blocking on a pipe
            fd = open_lock_file(run_path / LOCK_FILE)
        except FileProblem as exc:
            raise RunError(f"cannot lock run {run_path.name} for training: {exc}") from exc
        except OSError as exc:
            raise RunError(
                f"cannot lock run {run_path.name} for training ({os_words(exc)}); "
                "is its folder writable?"
            ) from exc
        deadline = time.monotonic() + wait
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    os.close(fd)
                    raise RunBusy(
                        f"run {run_path.name} is being trained by {_lock_holder(run_path)}; "
                        "stop it first"
                    ) from None
                time.sleep(0.02)
            except OSError:  # a file system without flock
                os.close(fd)
                return cls(run_path, None)
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()} {socket.gethostname()}\n".encode())
        return cls(run_path, fd)

    def release(self) -> None:
        """Give the run up (idempotent)."""
        fd, self._fd = self._fd, None
        if fd is not None:
            os.close(fd)  # closing the descriptor drops the flock

    def __enter__(self) -> RunLock:
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


def _lock_holder(run_path: Path) -> str:
    """Who holds a run's lock, from what the holder wrote into it: ``"process 1234"``."""
    try:
        held = read_regular(run_path / LOCK_FILE, 4096).decode("utf-8")  # a pipe: no wait
        pid, host = held.split()[:2]
        int(pid)
    except (OSError, ValueError):
        return "another process"
    where = "" if host == socket.gethostname() else f" on {host}"
    this = " (this one)" if int(pid) == os.getpid() and not where else ""
    return f"process {pid}{where}{this}"


class Heartbeat:
    """Keeps a training run's ``status.json`` fresh from a daemon thread for as long as it
    trains: loading images, timing the precision, epochs, validation and test evaluation alike,
    every :data:`HEARTBEAT_SECONDS`. :meth:`beat` also writes at once, e.g. on a phase change.

    Start it with :meth:`start` and always :meth:`stop` it (in a ``finally``) before writing
    the run's final state, which it would otherwise overwrite with ``running``.

    Args:
        run_path: the run folder.
        epochs_done: how many epochs the run has finished (called at every beat).
    """

    def __init__(self, run_path: Path, epochs_done: Callable[[], int]) -> None:
        self.run_path, self.epochs_done = run_path, epochs_done
        self.phase = "starting"
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(
            target=self._loop, name=f"catdog-heartbeat-{run_path.name}", daemon=True
        )

    def start(self) -> Heartbeat:
        """Beat now, then every :data:`HEARTBEAT_SECONDS` (returns self)."""
        self.beat()
        self._thread.start()
        return self

    def beat(self, phase: str | None = None) -> None:
        """Write ``running`` with the time, the epochs done and the phase (``phase`` if given)."""
        with self._lock:
            self.phase = phase or self.phase
            with contextlib.suppress(OSError):  # a full disk for a moment: the next beat retries
                write_status(
                    self.run_path, "running", epochs_done=self.epochs_done(), phase=self.phase
                )

    def _loop(self) -> None:
        while not self._stop.wait(HEARTBEAT_SECONDS):
            self.beat()

    def stop(self) -> None:
        """Stop beating and wait for the thread (idempotent)."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join()


def effective_state(status: dict[str, Any], run_path: Path | None = None) -> str:
    """The run's state, with a ``running`` run whose trainer is gone reported as ``interrupted``.

    With ``run_path`` on the host that wrote the status, the run's :class:`RunLock` decides:
    held means running, free means its trainer exited (even a second ago). Otherwise (no
    ``run_path``, no lock file, no flock, another host) a dead process or a heartbeat older than
    :data:`STALE_AFTER_SECONDS` means interrupted.
    """
    state = status.get("state", "unknown")
    if state not in ("running", QUEUED):
        return state
    same_host = status.get("host") == socket.gethostname()
    if state == QUEUED:  # its job holds no lock while it waits: its process must be alive
        alive = not same_host or process_alive(int(status.get("pid", -1)))
        return state if alive else "interrupted"
    if same_host and run_path is not None:
        taken = lock_taken(run_path)
        if taken is not None:
            return state if taken else "interrupted"
    if same_host and not process_alive(int(status.get("pid", -1))):
        return "interrupted"
    if time.time() - float(status.get("heartbeat", 0)) > STALE_AFTER_SECONDS:
        return "interrupted"
    return state
