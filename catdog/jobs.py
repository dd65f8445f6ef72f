"""Background training jobs: training in a worker thread, progress in a plain shared object.

The dashboard starts a :class:`TrainingJob` and keeps it in its session state; the job's
thread runs :func:`catdog.train.trainer.train`, and the training callbacks write every progress
event into the job (under a lock). The UI only ever reads :meth:`TrainingJob.snapshot`. The worker
never touches any UI.

Jobs are also registered in a process-wide :class:`JobManager`, so a page switch, a browser
refresh or a second browser tab finds a running job again by its run id. A job holds its run's
:class:`~catdog.train.runs.RunLock` from the moment it is created until its worker ends, so no other
job, thread or process (e.g. ``train --resume`` on the command line) can train the same run
folder at the same time: a second one is refused at once, with the reason. This module does
not import TensorFlow; the worker thread does, when it starts.

The manager also keeps a queue: at most :meth:`JobManager.limit` jobs train at once (hosted
mode's ``max_trainings``; no limit locally). A job over the limit is created all the same (its
run is on disk with status ``queued``) and waits, first in first out, holding no file open: it
takes its run's lock when it starts. The worker of the job that ends starts the next one,
whoever is watching. A queued job can be cancelled (its run becomes ``cancelled``, resumable
later: nothing is lost). Each job belongs to the workspace that started it, is known by its
workspace and run id, and the manager shows each workspace only its own jobs. The policy
(:mod:`catdog.policy`) bounds the rest in hosted mode: one training per workspace, a cap on the
jobs waiting, and a queued job whose workspace nobody visited for a while is cancelled.
"""

from __future__ import annotations

import contextlib
import copy
import heapq
import os
import threading
import time
from collections.abc import Callable
from typing import Any

from catdog import workspaces
from catdog.data.paths import current_workspace, set_workspace
from catdog.job_snapshot import JobSnapshot, JobState, fold_event
from catdog.policy import HostedLimitError, Policy, current_policy
from catdog.train import runs
from catdog.train.config import TrainConfig
from catdog.train.events import EventKind

# In hosted mode a job is stopped this long after its training-minutes cap (loading the images,
# timing the precision and the test evaluation are not part of a run's own time limit).
HARD_STOP_GRACE_SECONDS = 120.0
# What a queue estimate adds to a run's time limit: loading the images, the test evaluation.
OVERHEAD_SECONDS = 60.0


class TrainingJob:
    """One training run in a background thread (started at once, or later from a queue).

    Args:
        config: what to train (``None`` fields take the model's defaults).
        resume_run: instead of a new run, continue this interrupted run.
        on_end: called (in the worker thread) when the worker ends; the manager starts the
            next queued job from it.

    Raises:
        catdog.train.runs.RunBusy: ``resume_run`` is being trained by another process or thread.
        catdog.train.runs.RunError: ``resume_run`` does not exist or cannot be resumed (the message
            says why: a shared example, damaged, already complete, lost its model).
        ValueError: ``config`` cannot work (see :func:`catdog.train.runs.create_run`).
        catdog.policy.HostedLimitError: in hosted mode, a read-only visitor, or as
            :func:`~catdog.train.runs.create_run`.
    """

    def __init__(
        self,
        config: TrainConfig | None = None,
        resume_run: str | None = None,
        on_end: Callable[[TrainingJob], None] | None = None,
    ) -> None:
        if (config is None) == (resume_run is None):
            raise ValueError("give either a config to train or a run to resume")
        self.resuming = resume_run is not None
        policy = current_policy()
        self.workspace = policy.workspace  # the worker trains in it; only it sees the job
        self._cap_seconds = policy.max_training_seconds  # hosted mode stops it after this
        self._shown = policy.shown  # hosted mode: messages name no server folder
        if config is not None:  # on disk now: the run is listed (and survives a refresh)
            path = runs.create_run(config)  # before the thread loads TensorFlow
            self._run_lock = runs.RunLock.acquire(path)
        else:
            policy.check_writable(f"resuming run {resume_run}")
            path = runs.resolve_run(str(resume_run))
            if (shared := runs.run_info(path)).example:  # refused before touching any file
                raise runs.RunError(runs.resume_problem(shared) or f"{path.name} is shared")
            self._run_lock = runs.RunLock.acquire(path)  # refused here, not in the thread
            try:
                info = runs.run_info(path)
                problem = runs.resume_problem(info, holding_lock=self._run_lock.exclusive)
                if problem is not None:
                    raise runs.RunError(problem)
            except BaseException:
                self._run_lock.release()
                raise
        self.path, self.run_id = path, path.name
        self.key = (self.workspace, self.run_id)
        train = (runs.read_object(path / runs.CONFIG_FILE) or {}).get("train", {})
        self.time_limit_seconds = float(train.get("time_limit_minutes") or 0) * 60 or None
        self._on_end = on_end
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._ended = threading.Event()
        self._started = False
        self._state = JobSnapshot(run_id=self.run_id, state=JobState.STARTING)
        if self.resuming:
            self._state.history = runs.committed_history(path)
        self._thread = threading.Thread(
            target=self._work, name=f"catdog-{self.run_id}", daemon=True
        )
        self.started_at = time.time()
        self.began_at: float | None = None  # monotonic time the worker started
        self.ended_at: float | None = None  # ... and ended (or the queue dropped the job)
        self._hard_stop: float | None = None  # monotonic time hosted mode stops it at
        self._waited_unlocked = False  # queued: its run's lock let go until it starts

    def start(self) -> TrainingJob:
        """Start the worker thread (returns self, for chaining); a job that waited in the
        queue takes its run's lock again first (failed if someone else holds it now)."""
        if self._waited_unlocked:
            try:
                self._run_lock = runs.RunLock.acquire(self.path, wait=0)
            except runs.RunError as exc:
                self._end_unstarted("failed", f"it could not start: {exc}")
                raise
            self._waited_unlocked = False
        with self._lock:
            self._started = True
            if self._state.state == "queued":
                self._state.state, self._state.message = JobState.STARTING, ""
        try:
            self._thread.start()
        except BaseException as exc:
            self._end_unstarted("failed", f"the training thread could not start: {exc}")
            raise
        return self

    def enqueue(self) -> None:
        """Mark the job as waiting for a free training slot (``queued``, on disk too), and
        let its run's lock go meanwhile (no file is held open while a job waits)."""
        runs.write_status(self.path, "queued", error=None)
        with self._lock:
            self._state.state = JobState.QUEUED
        self._run_lock.release()
        self._waited_unlocked = True

    def cancel(self, reason: str = "") -> None:
        """Cancel a job that has not started: its run becomes ``cancelled`` (resumable);
        ``reason`` says why when it was not the visitor's own choice."""
        if self._started:
            raise RuntimeError(f"job {self.run_id} has started; stop it instead")
        self._end_unstarted("cancelled", reason or "cancelled while waiting in the queue", reason)

    def _end_unstarted(self, state: str, message: str, reason: str = "") -> None:
        try:
            error = message if state == "failed" else None
            runs.write_status(self.path, state, error=error, reason=reason or None)
        except OSError:
            pass  # the in-memory snapshot still says it
        finally:
            with self._lock:
                self._state.state, self._state.message = state, message
                self._state.reason = reason
                if state == "failed":
                    self._state.error = message
            self._run_lock.release()
            self.ended_at = time.monotonic()
            self._ended.set()

    def stop(self) -> None:
        """Ask training to stop after the current batch; what it learned is kept."""
        self._stop.set()

    @property
    def running(self) -> bool:
        """True until the job has ended: waiting in the queue or training."""
        return not self._ended.is_set()

    @property
    def queued(self) -> bool:
        """True while the job waits in the queue."""
        return not self._started and not self._ended.is_set()

    @property
    def training(self) -> bool:
        """True while the worker has started and not ended (the job takes a slot)."""
        return self._started and not self._ended.is_set()

    @property
    def stop_requested(self) -> bool:
        """True once :meth:`stop` has been called."""
        return self._stop.is_set()

    def join(self, timeout: float | None = None) -> bool:
        """Wait for the job to end (queued jobs too); returns True if it has."""
        return self._ended.wait(timeout)

    def snapshot(self) -> JobSnapshot:
        """A deep copy of the current progress (never blocks for long)."""
        with self._lock:
            return copy.deepcopy(self._state)

    def remaining_seconds(self, now: float | None = None) -> float | None:
        """About how long this training job has left: the soonest of its progress so far, its
        time limit and hosted mode's hard stop; ``None`` if nothing tells yet."""
        now = time.monotonic() if now is None else now
        elapsed = now - (self.began_at or now)
        guesses = []
        fraction = self.snapshot().fraction
        if fraction > 0.02:
            guesses.append(elapsed / fraction * (1 - fraction))
        if self.time_limit_seconds:
            guesses.append(self.time_limit_seconds + OVERHEAD_SECONDS - elapsed)
        if self._hard_stop is not None:
            guesses.append(self._hard_stop - now)
        return max(min(guesses), 0.0) if guesses else None

    def expected_seconds(self) -> float | None:
        """About how long this job will train once started (its time limit, or hosted mode's
        cap); ``None`` if nothing bounds it."""
        if self.time_limit_seconds:
            return self.time_limit_seconds + OVERHEAD_SECONDS
        if self._cap_seconds is not None:
            return self._cap_seconds + HARD_STOP_GRACE_SECONDS
        return None

    # -- worker side ------------------------------------------------------------------

    def _on_event(self, event: Any) -> None:
        """Training callback: fold one ProgressEvent into the shared state."""
        if self._hard_stop is not None and time.monotonic() > self._hard_stop:
            self._stop.set()  # hosted mode's cap on minutes, whatever the run's own limit did
        with self._lock:
            fold_event(self._state, event)
            if event.kind == EventKind.END and self._state.reason:
                self._state.reason = self._shown(self._state.reason)

    def _work(self) -> None:
        from catdog.inference.evaluate import final_test
        from catdog.inference.predict import learn_trust
        from catdog.train import trainer

        set_workspace(self.workspace)  # a new thread starts without one
        self.began_at = time.monotonic()
        if self._cap_seconds is not None:
            self._hard_stop = time.monotonic() + self._cap_seconds + HARD_STOP_GRACE_SECONDS
        try:
            start = trainer.resume if self.resuming else trainer.train_created
            result = start(self.run_id, on_event=self._on_event, stop=self._stop,
                           lock=self._run_lock, test_with=final_test)  # fmt: skip
            if result.state in ("completed", "stopped"):  # when to say "not sure", learned
                with contextlib.suppress(ValueError, OSError):  # else on first use
                    learn_trust(self.run_id)
            with self._lock:
                self._state.metrics = dict(result.metrics)
                self._state.state = result.state
        except BaseException as exc:  # the UI shows it; nothing else would
            with self._lock:
                self._state.state = JobState.FAILED
                error = self._state.error or f"{type(exc).__name__}: {exc}"
                self._state.error = self._shown(error)
                error = self._state.error
            self._record_failure(error)
        finally:
            self._run_lock.release()
            self.ended_at = time.monotonic()
            self._ended.set()
            if self._on_end is not None:
                self._on_end(self)  # the manager starts the next queued job

    def _record_failure(self, error: str) -> None:
        """Mark the run failed on disk if this process left it ``running`` (not another's);
        the worker still holds the run's lock when it calls this."""
        try:
            path = self.path
            status = runs.read_json(path / runs.STATUS_FILE, {}) or {}
            if status.get("state") == "running" and status.get("pid") == os.getpid():
                runs.write_status(path, "failed", error=error)
        except (OSError, ValueError):
            pass  # the in-memory snapshot still shows the error


def hosted_limit() -> int | None:
    """How many jobs may train at once: the policy's ``max_trainings`` (no limit locally)."""
    return current_policy().max_trainings


class JobManager:
    """All training jobs of this process, by workspace and run id, and the queue of those
    waiting (thread-safe).

    Each job belongs to the workspace that started it (``None`` locally): :meth:`get`,
    :meth:`active` and :meth:`all` only ever return the calling thread's workspace's jobs, so
    a visitor can watch, stop or cancel only their own.

    Args:
        limit: how many jobs may train at once: a number, ``None`` for no limit, or a function
            asked each time (default :func:`hosted_limit`).
    """

    def __init__(self, limit: int | Callable[[], int | None] | None = hosted_limit) -> None:
        self._jobs: dict[tuple[str | None, str], TrainingJob] = {}
        self._queue: list[TrainingJob] = []  # first in, first out
        self._lock = threading.RLock()
        self._limit = limit if callable(limit) else (lambda: limit)

    def limit(self) -> int | None:
        """How many jobs may train at once (``None``: no limit)."""
        return self._limit()

    def start(
        self, config: TrainConfig | None = None, resume_run: str | None = None
    ) -> TrainingJob:
        """Create and register a job, and start it, or queue it if every slot is taken.

        Raises:
            catdog.policy.HostedLimitError: in hosted mode, the workspace has a training
                running or waiting already, or the server's queue is full (no run is made).
            As :class:`TrainingJob` (nothing is queued then).
        """
        policy = current_policy()
        with self._lock:  # the run is made under it: two clicks cannot both pass the checks
            self._drop_unvisited(policy)
            must_wait = bool(self._queue) or self._free_slots() <= 0
            self._check_room(policy, must_wait)
            job = TrainingJob(config, resume_run=resume_run, on_end=self._job_ended)
            self._jobs[job.key] = job
            if not must_wait:
                return job.start()
            try:
                job.enqueue()
            except BaseException:
                job.cancel()
                raise
            self._queue.append(job)
        return job

    def _check_room(self, policy: Policy, must_wait: bool) -> None:
        """Refuse a job the policy has no room for: one per workspace, a cap on the queue."""
        mine = [j for j in self._jobs.values() if j.workspace == policy.workspace and j.running]
        if policy.jobs_per_workspace is not None and len(mine) >= policy.jobs_per_workspace:
            what = "waiting in the queue" if mine[0].queued else "training"
            raise HostedLimitError(
                f"your workspace already has a run {what} ({mine[0].run_id}); one at a time "
                "on this shared server: wait for it, or stop it, then start another"
            )
        waiting, cap = len(self._queue), policy.max_queued_jobs
        if must_wait and cap is not None and waiting >= cap:
            raise HostedLimitError(
                f"the server's training queue is full ({waiting} waiting); try again in a few "
                "minutes"
            )

    def _drop_unvisited(self, policy: Policy) -> None:
        """Cancel queued jobs whose workspace nobody visited for the policy's while."""
        if (idle := policy.queued_idle_seconds) is None:
            return
        cutoff = time.time() - idle
        for job in list(self._queue):
            seen = workspaces.last_visit(job.workspace) if job.workspace else None
            if job.workspace and max(seen or 0.0, job.started_at) < cutoff:
                self._queue.remove(job)
                job.cancel(f"nobody visited its workspace for {idle / 60:g} minutes while it "
                           "waited in the queue")  # fmt: skip

    def _free_slots(self) -> float:
        limit = self.limit()
        training = sum(1 for job in self._jobs.values() if job.training)
        return float("inf") if limit is None else limit - training

    def _job_ended(self, job: TrainingJob) -> None:
        """A worker ended: start queued jobs while slots are free (in that worker's thread)."""
        with self._lock:
            self._drop_unvisited(current_policy())
            while self._queue and self._free_slots() > 0:
                following = self._queue.pop(0)
                if following.stop_requested:
                    following.cancel()
                    continue
                try:
                    following.start()
                except Exception:  # start() marked it failed: on to the next
                    continue

    def cancel(self, run_id: str) -> bool:
        """Cancel the caller's queued job (its run becomes ``cancelled``, resumable later), or
        ask the caller's training job to stop; False if the caller has no such job."""
        job = self.get(run_id)
        if job is None:
            return False
        with self._lock:
            if job in self._queue:
                self._queue.remove(job)
                job.cancel()
                return True
        job.stop()
        return True

    def position(self, run_id: str) -> int | None:
        """The caller's queued job's place in the queue (1 = next), else ``None``."""
        job = self.get(run_id)
        with self._lock:
            return self._queue.index(job) + 1 if job in self._queue else None

    def estimated_start(self, run_id: str) -> float | None:
        """About how many seconds until the caller's queued job starts, from the training
        jobs' progress and time limits and the time limits of the jobs ahead of it; ``None``
        if it is not queued or some job's length cannot be told."""
        job, now = self.get(run_id), time.monotonic()
        with self._lock:
            if job not in self._queue:
                return None
            ahead = self._queue[: self._queue.index(job)]
            training = [j for j in self._jobs.values() if j.training]
            limit = self.limit() or len(training) + 1
        free_at = [j.remaining_seconds(now) for j in training]
        free_at += [0.0] * max(limit - len(training), 0)
        lengths = [j.expected_seconds() for j in ahead]
        if None in free_at or None in lengths or not free_at:
            return None
        heapq.heapify(free_at)
        for length in lengths:  # each job ahead takes the slot that frees first
            heapq.heappush(free_at, heapq.heappop(free_at) + length)
        return free_at[0]

    def load(self) -> tuple[int, int]:
        """How many jobs of this process train now and how many wait (every workspace's)."""
        with self._lock:
            return sum(1 for j in self._jobs.values() if j.training), len(self._queue)

    def _mine(self) -> list[TrainingJob]:
        workspace = current_workspace()
        with self._lock:
            return [job for job in self._jobs.values() if job.workspace == workspace]

    def get(self, run_id: str) -> TrainingJob | None:
        """The job for ``run_id`` if this process started it in the caller's workspace."""
        with self._lock:
            return self._jobs.get((current_workspace(), run_id))

    def active(self) -> list[TrainingJob]:
        """The caller's jobs that have not ended (training or queued), oldest first."""
        return [job for job in self._mine() if job.running]

    def all(self) -> list[TrainingJob]:
        """Every job started in this process in the caller's workspace, oldest first."""
        return self._mine()

    def busy_workspaces(self) -> set[str]:
        """The workspaces with a job training or queued (never swept as idle)."""
        with self._lock:
            return {j.workspace for j in self._jobs.values() if j.running and j.workspace}


_MANAGER = JobManager()


def manager() -> JobManager:
    """The process-wide job manager (survives Streamlit reruns, page switches and refreshes)."""
    return _MANAGER
