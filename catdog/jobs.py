"""Background training jobs: training in a worker thread, progress in a plain shared object.

The dashboard starts a :class:`TrainingJob` and keeps it in its session state; the job's
thread runs :func:`catdog.training.train`, and the training callbacks write every progress event
into the job (under a lock). The UI only ever reads :meth:`TrainingJob.snapshot`. The worker
never touches any UI.

Jobs are also registered in a process-wide :class:`JobManager`, so a page switch, a browser
refresh or a second browser tab finds a running job again by its run id. A job holds its run's
:class:`~catdog.runs.RunLock` from the moment it is created until its worker ends, so no other
job, thread or process (e.g. ``train --resume`` on the command line) can train the same run
folder at the same time: a second one is refused at once, with the reason. This module does
not import TensorFlow; the worker thread does, when it starts.
"""

from __future__ import annotations

import copy
import os
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from catdog import hosting, runs
from catdog.config import TrainConfig
from catdog.home import current_workspace, set_workspace

# How many recent batch points to keep for live curves (older ones are thinned out).
MAX_BATCH_POINTS = 2000
# In hosted mode a job is stopped this long after its training-minutes cap (loading the images,
# timing the precision and the test evaluation are not part of a run's own time limit).
HARD_STOP_GRACE_SECONDS = 120.0


@dataclass
class JobSnapshot:
    """A consistent copy of a job's progress, safe to read while training goes on."""

    run_id: str
    # starting | timing | loading | running | evaluating | completed | stopped | failed
    state: str
    epoch: int = 0  # current epoch, from 1
    epochs: int = 0
    step: int = 0  # batches done in the current epoch
    steps: int = 0  # batches per epoch
    loading_done: int = 0
    loading_total: int = 0
    batch_logs: dict[str, float] = field(default_factory=dict)
    history: list[dict[str, float]] = field(default_factory=list)  # one row per finished epoch
    batch_points: list[dict[str, float]] = field(default_factory=list)  # x = fractional epoch
    seconds: float = 0.0
    learning_rate: float | None = None
    message: str = ""
    precision: str = ""  # what the run computes in and why ("precision bfloat16: 1.5× ...")
    error: str | None = None
    metrics: dict[str, Any] = field(default_factory=dict)

    @property
    def finished(self) -> bool:
        """True once the job has completed, stopped or failed."""
        return self.state in ("completed", "stopped", "failed")

    @property
    def fraction(self) -> float:
        """Overall progress in [0, 1] (epochs and batches)."""
        if not self.epochs:
            return 0.0
        done_epochs = len(self.history)
        within = self.step / self.steps if self.steps and self.epoch > done_epochs else 0.0
        return min(1.0, (done_epochs + within) / self.epochs)


class TrainingJob:
    """One training run in a background thread.

    Args:
        config: what to train (``None`` fields take the model's defaults).
        resume_run: instead of a new run, continue this interrupted run.

    Raises:
        catdog.runs.RunBusy: ``resume_run`` is being trained by another process or thread.
        catdog.runs.RunError: ``resume_run`` does not exist or cannot be resumed (the message
            says why: damaged, already complete, lost its model).
        ValueError: ``config`` cannot work (see :func:`catdog.runs.create_run`).
    """

    def __init__(self, config: TrainConfig | None = None, resume_run: str | None = None) -> None:
        if (config is None) == (resume_run is None):
            raise ValueError("give either a config to train or a run to resume")
        self.resuming = resume_run is not None
        self.workspace = current_workspace()  # the worker trains in it; only it sees the job
        if config is not None:  # on disk now: the run is listed (and survives a refresh)
            path = runs.create_run(config)  # before the thread loads TensorFlow
            self._run_lock = runs.RunLock.acquire(path)
        else:
            path = runs.resolve_run(str(resume_run))
            self._run_lock = runs.RunLock.acquire(path)  # refused here, not in the thread
            try:
                info = runs.run_info(path)
                problem = runs.resume_problem(info, holding_lock=self._run_lock.exclusive)
                if problem is not None:
                    raise runs.RunError(problem)
            except BaseException:
                self._run_lock.release()
                raise
        self.run_id = path.name
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._state = JobSnapshot(run_id=self.run_id, state="starting")
        if self.resuming:
            self._state.history = runs.committed_history(path)
        self._thread = threading.Thread(
            target=self._work, name=f"catdog-{self.run_id}", daemon=True
        )
        self.started_at = time.time()
        self._hard_stop: float | None = None  # monotonic time hosted mode stops it at

    def start(self) -> TrainingJob:
        """Start the worker thread (returns self, for chaining)."""
        try:
            self._thread.start()
        except BaseException:
            self._run_lock.release()
            raise
        return self

    def stop(self) -> None:
        """Ask training to stop after the current batch; what it learned is kept."""
        self._stop.set()

    @property
    def running(self) -> bool:
        """True while the worker thread is alive."""
        return self._thread.is_alive()

    @property
    def stop_requested(self) -> bool:
        """True once :meth:`stop` has been called."""
        return self._stop.is_set()

    def join(self, timeout: float | None = None) -> bool:
        """Wait for the worker; returns True if it has finished."""
        self._thread.join(timeout)
        return not self._thread.is_alive()

    def snapshot(self) -> JobSnapshot:
        """A deep copy of the current progress (never blocks for long)."""
        with self._lock:
            return copy.deepcopy(self._state)

    # -- worker side ------------------------------------------------------------------

    def _on_event(self, event: Any) -> None:
        """Training callback: fold one ProgressEvent into the shared state."""
        if self._hard_stop is not None and time.monotonic() > self._hard_stop:
            self._stop.set()  # hosted mode's cap on minutes, whatever the run's own limit did
        with self._lock:
            s = self._state
            s.seconds = event.seconds
            s.epochs = event.epochs or s.epochs
            if event.message:
                s.message = event.message
            if event.kind == "precision":
                if event.message.startswith("precision "):
                    s.precision = event.message
                else:
                    s.state = "timing"
            elif event.kind == "loading":
                s.state = "loading"
                s.loading_done, s.loading_total = event.step, event.steps
            elif event.kind == "start":
                s.state, s.epoch, s.steps, s.step = "running", event.epoch, event.steps, 0
            elif event.kind == "batch":
                s.state, s.epoch, s.step = "running", event.epoch, event.step
                s.batch_logs = dict(event.logs)
                s.learning_rate = event.learning_rate
                if s.steps:
                    point = {"x": event.epoch - 1 + event.step / s.steps, **event.logs}
                    s.batch_points.append(point)
                    if len(s.batch_points) > MAX_BATCH_POINTS:
                        s.batch_points = s.batch_points[::2]
            elif event.kind == "epoch":
                s.history.append(dict(event.logs))
                s.epoch, s.step = event.epoch + 1, 0
                s.learning_rate = event.learning_rate
            elif event.kind == "evaluating":
                s.state = "evaluating"
            elif event.kind == "end":
                s.state = event.state
                if event.state == "failed":
                    s.error = event.message

    def _work(self) -> None:
        from catdog import training

        set_workspace(self.workspace)  # a new thread starts without one
        if hosting.hosted():
            minutes = hosting.settings().max_training_minutes
            self._hard_stop = time.monotonic() + minutes * 60 + HARD_STOP_GRACE_SECONDS
        try:
            start = training.resume if self.resuming else training.train_created
            result = start(
                self.run_id, on_event=self._on_event, stop=self._stop, lock=self._run_lock
            )
            with self._lock:
                self._state.metrics = dict(result.metrics)
                self._state.state = result.state
        except BaseException as exc:  # the UI shows it; nothing else would
            with self._lock:
                self._state.state = "failed"
                self._state.error = self._state.error or f"{type(exc).__name__}: {exc}"
                error = self._state.error
            self._record_failure(error)
        finally:
            self._run_lock.release()

    def _record_failure(self, error: str) -> None:
        """Mark the run failed on disk if this process left it ``running`` (not another's);
        the worker still holds the run's lock when it calls this."""
        try:
            path = runs.resolve_run(self.run_id)
            status = runs.read_json(path / runs.STATUS_FILE, {}) or {}
            if status.get("state") == "running" and status.get("pid") == os.getpid():
                runs.write_status(path, "failed", error=error)
        except (OSError, ValueError):
            pass  # the in-memory snapshot still shows the error


class JobManager:
    """All training jobs of this process, by run id (thread-safe).

    Each job belongs to the workspace that started it (``None`` locally): :meth:`get`,
    :meth:`active` and :meth:`all` only ever return the calling thread's workspace's jobs, so
    a visitor can watch, stop or cancel only their own.
    """

    def __init__(self) -> None:
        self._jobs: dict[str, TrainingJob] = {}
        self._lock = threading.Lock()

    def start(
        self, config: TrainConfig | None = None, resume_run: str | None = None
    ) -> TrainingJob:
        """Create, register and start a job; returns it."""
        job = TrainingJob(config, resume_run=resume_run)
        with self._lock:
            self._jobs[job.run_id] = job
        return job.start()

    def _mine(self) -> list[TrainingJob]:
        workspace = current_workspace()
        with self._lock:
            return [job for job in self._jobs.values() if job.workspace == workspace]

    def get(self, run_id: str) -> TrainingJob | None:
        """The job for ``run_id`` if this process started it in the caller's workspace."""
        return next((job for job in self._mine() if job.run_id == run_id), None)

    def active(self) -> list[TrainingJob]:
        """The caller's jobs whose worker is still running, oldest first."""
        return [job for job in self._mine() if job.running]

    def all(self) -> list[TrainingJob]:
        """Every job started in this process in the caller's workspace, oldest first."""
        return self._mine()


_MANAGER = JobManager()


def manager() -> JobManager:
    """The process-wide job manager (survives Streamlit reruns, page switches and refreshes)."""
    return _MANAGER
