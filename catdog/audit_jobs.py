"""Data audits in the background: an audit that takes minutes (the cross-fitted label check
trains networks for as long as it is given) runs in a worker thread, so the dashboard stays
responsive and the audit survives page switches and refreshes.

:func:`start_audit` starts one audit of a dataset and returns its :class:`AuditJob`;
:func:`audit_job` finds it again (by workspace and dataset folder) from any page or tab. The
worker writes its progress into the job under a lock; pages read :meth:`AuditJob.snapshot`.
The report itself lands in the audit cache (:func:`catdog.data.health.cached_audit`), where
the page reads it once the job is done. :meth:`AuditJob.stop` asks the worker to stop at its
next progress step (an epoch while networks train). One audit runs at a time per workspace
(:func:`catdog.data.health.audit_dataset` refuses a second with the reason). No TensorFlow
here; no Streamlit.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from pathlib import Path

from catdog.data.datasets import DatasetError
from catdog.data.health import AuditError, LabelFeatures, audit_dataset
from catdog.data.paths import current_workspace, set_workspace
from catdog.policy import HostedLimitError


class AuditStopped(AuditError):
    """The audit was stopped on request."""


@dataclass(frozen=True)
class AuditSnapshot:
    """What a page shows of an audit: ``state`` is running, done, failed or stopped;
    ``fraction`` of the work done and the worker's last ``message`` (with the time left);
    ``error`` says why it failed."""

    state: str
    fraction: float
    message: str
    error: str


class AuditJob:
    """One audit of a dataset in a worker thread (started by :func:`start_audit`)."""

    def __init__(self, root: Path, label_features: LabelFeatures | None, refresh: bool) -> None:
        self.root, self.workspace = root, current_workspace()
        self._features, self._refresh = label_features, refresh
        self.label_model = label_features.name if label_features else ""
        self._lock, self._stop = threading.Lock(), threading.Event()
        self._state, self._fraction, self._message, self._error = "running", 0.0, "Starting…", ""
        self.ended = 0.0  # when the worker ended (time.time())
        self._thread = threading.Thread(target=self._work, name="catdog-audit", daemon=True)

    def _progress(self, done: int, total: int, message: str) -> None:
        if self._stop.is_set():
            raise AuditStopped("the audit was stopped; start it again when you like")
        with self._lock:
            self._fraction, self._message = min(done / max(total, 1), 1.0), message

    def _work(self) -> None:
        set_workspace(self.workspace)
        try:
            audit_dataset(self.root, self._progress, self._refresh, self._features)
        except AuditStopped as exc:
            self._end("stopped", str(exc))
        except (AuditError, DatasetError, HostedLimitError, OSError) as exc:
            self._end("failed", str(exc))
        except Exception as exc:  # the worker must end with a state, whatever happened
            self._end("failed", f"the audit failed unexpectedly ({type(exc).__name__}: {exc})")
        else:  # the report is in the audit cache (cached_audit), not kept here
            self._end("done", "")
        finally:
            self._features = None  # whatever the label check holds (a model) can go

    def _end(self, state: str, error: str) -> None:
        with self._lock:
            self._state, self._error, self.ended = state, error, time.time()

    def stop(self) -> None:
        """Ask the worker to stop at its next progress step."""
        self._stop.set()

    @property
    def running(self) -> bool:
        """Whether the worker has not ended yet."""
        with self._lock:
            return self._state == "running"

    def join(self, timeout: float | None = None) -> bool:
        """Wait for the worker; whether it has ended."""
        self._thread.join(timeout)
        return not self._thread.is_alive()

    def snapshot(self) -> AuditSnapshot:
        """A consistent copy of the job's progress."""
        with self._lock:
            return AuditSnapshot(self._state, self._fraction, self._message, self._error)


KEEP_ENDED_SECONDS = 3600.0  # an ended audit's outcome waits this long for its page
_JOBS: dict[tuple[str | None, str], AuditJob] = {}
_JOBS_LOCK = threading.Lock()


def _key(root: str | Path) -> tuple[str | None, str]:
    return current_workspace(), str(Path(root).resolve())


def start_audit(
    root: str | Path, label_features: LabelFeatures | None = None, refresh: bool = False
) -> AuditJob:
    """Start auditing ``root`` in the background (see :func:`catdog.data.health.audit_dataset`
    for the arguments); the running job if this dataset's audit is already under way."""
    with _JOBS_LOCK:
        job = _JOBS.get(_key(root))
        if job is not None and job.running:
            return job
        stale = time.time() - KEEP_ENDED_SECONDS  # ended jobs nobody came back to read
        for key in [k for k, j in _JOBS.items() if not j.running and j.ended < stale]:
            del _JOBS[key]
        job = _JOBS[_key(root)] = AuditJob(Path(root), label_features, refresh)
    job._thread.start()
    return job


def audit_job(root: str | Path) -> AuditJob | None:
    """This workspace's latest audit job of ``root`` (running or ended), if any."""
    with _JOBS_LOCK:
        return _JOBS.get(_key(root))


def forget_audit(root: str | Path) -> None:
    """Forget an ended audit job of ``root`` (its report stays cached)."""
    with _JOBS_LOCK:
        job = _JOBS.get(_key(root))
        if job is not None and not job.running:
            del _JOBS[_key(root)]
