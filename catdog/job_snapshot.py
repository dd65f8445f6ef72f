"""A training job's progress as one plain object: its states, its snapshot, and the one
function that folds each progress event into it (:func:`fold_event`), so a new event cannot be
shown with another event's words. Plain Python: no TensorFlow, no Streamlit.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from catdog.train.events import EventKind, ProgressEvent

# How many recent batch points to keep for live curves (older ones are thinned out).
MAX_BATCH_POINTS = 2000


class JobState(StrEnum):
    """What a job is doing now (a ``str``: it compares equal to its value)."""

    QUEUED = "queued"
    CANCELLED = "cancelled"
    STARTING = "starting"
    TIMING = "timing"  # timing float32 and bfloat16 (precision auto)
    LOADING = "loading"
    FEATURES = "features"
    RUNNING = "running"
    EVALUATING = "evaluating"
    COMPLETED = "completed"
    STOPPED = "stopped"
    FAILED = "failed"


@dataclass
class JobSnapshot:
    """A consistent copy of a job's progress, safe to read while training goes on."""

    run_id: str
    state: JobState
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
    input_size: str = ""  # the input size the time limit chose and why ("input size 96 px: …")
    start_message: str = ""  # in memory or streamed, devices, feature cache, notes
    error: str | None = None
    reason: str = ""  # why it stopped or was cancelled by itself (a quota, an unvisited queue)
    metrics: dict[str, Any] = field(default_factory=dict)

    @property
    def finished(self) -> bool:
        """True once the job has completed, stopped, failed or was cancelled in the queue."""
        return self.state in ("completed", "stopped", "failed", "cancelled")

    @property
    def fraction(self) -> float:
        """Overall progress in [0, 1] (epochs and batches)."""
        if not self.epochs:
            return 0.0
        done_epochs = len(self.history)
        within = self.step / self.steps if self.steps and self.epoch > done_epochs else 0.0
        return min(1.0, (done_epochs + within) / self.epochs)


def fold_event(s: JobSnapshot, event: ProgressEvent) -> None:
    """Fold one training :class:`~catdog.train.events.ProgressEvent` into a job's snapshot: the
    one place an event kind becomes a job state or a field the pages show."""
    s.seconds = event.seconds
    s.epochs = event.epochs or s.epochs
    if event.message:
        s.message = event.message
    if event.kind == EventKind.PRECISION:
        if event.message.startswith("precision "):
            s.precision = event.message
        else:
            s.state = JobState.TIMING
    elif event.kind == EventKind.IMAGE_SIZE:
        s.input_size = event.message
    elif event.kind in (EventKind.LOADING, EventKind.FEATURES):
        s.state = JobState(event.kind)
        s.loading_done, s.loading_total = event.step, event.steps
    elif event.kind == EventKind.START:
        s.state, s.epoch, s.steps, s.step = JobState.RUNNING, event.epoch, event.steps, 0
        s.start_message = event.message
    elif event.kind == EventKind.BATCH:
        s.state, s.epoch, s.step = JobState.RUNNING, event.epoch, event.step
        s.batch_logs = dict(event.logs)
        s.learning_rate = event.learning_rate
        if s.steps:
            point = {"x": event.epoch - 1 + event.step / s.steps, **event.logs}
            s.batch_points.append(point)
            if len(s.batch_points) > MAX_BATCH_POINTS:
                s.batch_points = s.batch_points[::2]
    elif event.kind == EventKind.EPOCH:
        s.history.append(dict(event.logs))
        s.epoch, s.step = event.epoch + 1, 0
        s.learning_rate = event.learning_rate
    elif event.kind == EventKind.EVALUATING:
        s.state = JobState.EVALUATING
    elif event.kind == EventKind.END:
        s.state = JobState(event.state)
        if event.state == "failed":
            s.error = event.message
        elif event.message:  # why it stopped by itself (a quota)
            s.reason = event.message
