"""Progress events: what a training run reports, as it goes, to whoever listens (the CLI's
printer, the dashboard's job).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


@dataclass
class ProgressEvent:
    """One progress report from a training run.

    ``kind`` is ``"precision"`` (choosing the arithmetic: ``message`` says what and why),
    ``"loading"`` (reading images: ``step`` of ``steps``), ``"features"`` (a pretrained
    model's frozen base computing its features once: ``step`` of ``steps`` images), ``"start"``,
    ``"batch"`` (after each training batch; ``logs`` hold the running epoch loss/accuracy),
    ``"epoch"`` (after each epoch; ``logs`` hold the epoch's metrics including ``val_*``),
    ``"evaluating"`` (test split) or ``"end"`` (``state`` says completed/stopped/failed).
    Epochs are numbered from 1.
    """

    kind: str
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
    "precision": "timing",
    "loading": "loading",
    "features": "features",
    "start": "training",
    "evaluating": "testing",
}
