"""Progress events: what a training run reports, as it goes, to whoever listens (the CLI's
printer, the dashboard's job).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any


class EventKind(StrEnum):
    """What a :class:`ProgressEvent` reports (a ``str``: it compares equal to its value)."""

    PRECISION = "precision"  # choosing the arithmetic: what is timed, then "precision …" and why
    IMAGE_SIZE = "image_size"  # the input size chosen for the time limit, and why
    LOADING = "loading"  # reading images: step of steps
    FEATURES = "features"  # a frozen base computing its features once: step of steps images
    START = "start"  # the first epoch begins; message: in memory or streamed, devices, notes
    BATCH = "batch"  # after each batch; logs hold the running epoch loss and accuracy
    EPOCH = "epoch"  # after each epoch; logs hold its metrics, val_* included
    EVALUATING = "evaluating"  # the final test evaluation
    END = "end"  # state says completed, stopped or failed


class RunState(StrEnum):
    """A run's state in ``status.json`` and in a :class:`ProgressEvent` of kind ``end``."""

    QUEUED = "queued"
    RUNNING = "running"
    COMPLETED = "completed"
    STOPPED = "stopped"
    FAILED = "failed"
    CANCELLED = "cancelled"
    INTERRUPTED = "interrupted"  # its trainer is gone (seen from outside, never written)
    DAMAGED = "damaged"  # its files cannot be read (seen from outside, never written)


@dataclass
class ProgressEvent:
    """One progress report from a training run (see :class:`EventKind`); epochs from 1."""

    kind: EventKind
    run_id: str
    epoch: int = 0
    epochs: int = 0
    step: int = 0
    steps: int = 0
    logs: dict[str, float] = field(default_factory=dict)
    seconds: float = 0.0  # since the run (or resumed run) started
    learning_rate: float | None = None
    state: str = "running"
    message: str = ""


EventFn = Callable[[ProgressEvent], None]


# The final test evaluation: (run folder, batch size) -> metrics such as test_accuracy. Training
# never imports inference: the job and the CLI pass catdog.inference.evaluate.final_test.
TestFn = Callable[[Path, int], dict[str, Any]]


# The phase status.json names while a run is in it, by the progress event that starts it (the
# recorder adds "validating", and "training" again after each epoch's commit).
PHASES = {
    EventKind.PRECISION: "timing",
    EventKind.LOADING: "loading",
    EventKind.FEATURES: "features",
    EventKind.START: "training",
    EventKind.EVALUATING: "testing",
}
