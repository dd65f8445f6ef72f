"""What a training run shares with its callbacks (:class:`RunState`), and the Keras callback
that records each batch and epoch (:class:`RunRecorder`): events, stop requests, the epoch commit,
early stopping.
"""

from __future__ import annotations

import math
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from catdog.model.backend import keras
from catdog.policy import HostedLimitError, current_policy
from catdog.train import cluster, phases, runs
from catdog.train.config import TrainConfig
from catdog.train.distribute import Distribution
from catdog.train.events import PHASES, EventFn, ProgressEvent, TestFn
from catdog.train.schedule import planned_epochs

# val_loss must improve by more than this to count as progress for early stopping.
EARLY_STOPPING_MIN_DELTA = 1e-4


@dataclass
class RunState:
    """What a training run shares with its callbacks while it trains."""

    path: Path  # the run's folder
    cfg: TrainConfig  # its settings (precision settled once training starts)
    history: list[dict[str, float]]  # one row per epoch done; the recorder appends to it
    heartbeat: runs.Heartbeat  # keeps status.json fresh with the phase the run is in
    on_event: EventFn | None
    stop: threading.Event | None  # set: end after the current batch
    planned: int = 0  # epochs the run will train; a time limit revises it after each epoch
    started: float = field(default_factory=time.monotonic)
    dist: Distribution | None = None  # where it trains (settled once training starts)
    restored: int = 0  # on a cluster: the epochs restored from its backup, 0 for none
    test_with: TestFn | None = None  # the final test evaluation the caller passed
    stop_reason: str = ""  # why the run stopped by itself before its end (hosted quota)

    @property
    def workers(self) -> int:
        """Machines training the run together (1 unless it trains on a cluster)."""
        return self.dist.workers if self.dist is not None else 1

    def emit(self, kind: str, **kwargs: Any) -> None:
        """Send a :class:`ProgressEvent`; an event that starts a phase names it in status.json."""
        phase = PHASES.get(kind)
        if phase is not None and phase != self.heartbeat.phase:
            self.heartbeat.beat(phase)
        if self.on_event is not None:
            self.on_event(ProgressEvent(kind=kind, run_id=self.path.name, epochs=self.planned,
                                        seconds=self.seconds(), **kwargs))  # fmt: skip

    def seconds(self) -> float:
        """Seconds since the run (or resumed run) started."""
        return time.monotonic() - self.started

    def stop_requested(self) -> bool:
        """Whether the caller asked training to stop."""
        return self.stop is not None and self.stop.is_set()


class RunRecorder(keras.callbacks.Callback):
    """Keras callback: progress events, stop requests, history/model files, early stopping."""

    def __init__(
        self, run: RunState, model: keras.Model, steps: int, image_cap: int | None, batch: int
    ) -> None:
        super().__init__()
        self.run = run  # the run's settings, history, plan and heartbeat, shared with it
        self.saved = model  # the full model, saved each epoch (the fit may train its head alone)
        self.cached = False  # whether the epochs train on cached features (see features.py)
        self.path, self.cfg, self.history, self.emit = run.path, run.cfg, run.history, run.emit
        self.steps = steps
        self.image_cap = image_cap  # one-pass epochs: the last batch may be short
        self.batch = batch  # images per step, over all replicas
        self.steps_done = 0
        self.train_seconds: float | None = None
        self.stopped_by_user = False
        self.early_stopped = False
        val = [r["val_accuracy"] for r in self.history if "val_accuracy" in r]
        self.best_val_accuracy = max(val) if val else -1.0
        losses = [r["val_loss"] for r in self.history if "val_loss" in r]
        self.best_val_loss = min(losses) if losses else math.inf
        self.since_best_loss = 0
        if losses:
            self.since_best_loss = len(losses) - 1 - losses.index(min(losses))
        self.epoch_started = time.monotonic()
        self.policy = current_policy()  # hosted mode: the workspace's quota holds every epoch

    def _quota_problem(self, epoch: int) -> str | None:
        """Why saving epoch ``epoch`` would take the workspace over its quota, else None.

        A commit writes the model (weights and optimizer state) beside ``last.keras`` before
        it replaces it; the first also copies it to ``best.keras``: so it needs one model's
        size of room, two for the first epoch of a run.
        """
        if self.policy.quota_bytes is None:
            return None
        variables = [*self.saved.weights, *self.model.optimizer.variables]
        size = sum(int(math.prod(v.shape)) * 4 for v in variables)
        needed = size if (self.path / runs.LAST_MODEL).exists() else 2 * size
        try:
            self.policy.check_quota(needed, f"saving epoch {epoch}")
        except HostedLimitError as exc:
            return f"stopped before saving epoch {epoch}: {exc}"
        return None

    def _lr(self) -> float:
        return float(keras.ops.convert_to_numpy(self.model.optimizer.learning_rate))

    def on_epoch_begin(self, epoch: int, logs: Any = None) -> None:
        self.epoch_started = time.monotonic()
        self.steps_done = 0
        self.train_seconds = None

    def on_test_begin(self, logs: Any = None) -> None:
        # Validation starts: the epoch's training part is over (for images/second).
        if self.train_seconds is None:
            self.train_seconds = time.monotonic() - self.epoch_started
        self.run.heartbeat.beat("validating")

    def _images_seen(self) -> int:
        seen = self.steps_done * self.batch
        return seen if self.image_cap is None else min(seen, self.image_cap)

    def on_train_batch_end(self, batch: int, logs: Any = None) -> None:
        self.steps_done = batch + 1
        logs = {k: float(v) for k, v in (logs or {}).items()}
        self.emit(
            "batch",
            epoch=len(self.history) + 1,
            step=batch + 1,
            steps=self.steps,
            logs=logs,
            learning_rate=self._lr(),
        )
        stop = self.run.stop_requested()
        if self.run.workers > 1:  # every worker stops after the same batch
            stop = cluster.agree(self.run.dist, [], [stop])[1][0]
        if stop:
            self.stopped_by_user = True
            self.model.stop_training = True

    def on_epoch_end(self, epoch: int, logs: Any = None) -> None:
        logs = {k: float(v) for k, v in (logs or {}).items()}
        row = {
            "epoch": epoch + 1,
            "loss": logs.get("loss"),
            "accuracy": logs.get("accuracy"),
            "val_loss": logs.get("val_loss"),
            "val_accuracy": logs.get("val_accuracy"),
            "learning_rate": self._lr(),
            "phase": phases.phase_of(self.cfg, epoch),  # pretrained: 1 frozen base, 2 tuning
            "cached_features": 1 if self.cached else None,
            "seconds": round(time.monotonic() - self.epoch_started, 3),
            "steps": self.steps_done,
            "images": self._images_seen(),
            "train_seconds": round(
                self.train_seconds
                if self.train_seconds is not None
                else time.monotonic() - self.epoch_started,
                3,
            ),
        }
        row = {k: v for k, v in row.items() if v is not None}
        if (problem := self._quota_problem(epoch + 1)) is not None:
            self.run.stop_reason = problem  # the epochs saved so far are kept
            self.stopped_by_user = self.model.stop_training = True
            return
        # last.keras, best.keras and the history row are committed together (a kill at any
        # moment leaves a state a resume continues from without training an epoch twice).
        val_acc = row.get("val_accuracy", -1.0)
        best = val_acc > self.best_val_accuracy or not (self.path / runs.BEST_MODEL).exists()
        self.best_val_accuracy = max(val_acc, self.best_val_accuracy)
        runs.commit_epoch(self.path, self.saved, row, self.history, best=best)
        self.run.heartbeat.beat("training")
        self.run.planned = planned_epochs(self.cfg, self.history)
        if len(self.history) >= self.run.planned:  # the time limit is used up
            self.model.stop_training = True
        self.emit(
            "epoch",
            epoch=epoch + 1,
            step=self.steps_done,
            steps=self.steps,
            logs=row,
            learning_rate=row["learning_rate"],
        )
        val_loss = row.get("val_loss")
        if val_loss is not None and self.cfg.early_stopping > 0:
            if val_loss < self.best_val_loss - EARLY_STOPPING_MIN_DELTA:
                self.best_val_loss, self.since_best_loss = val_loss, 0
            else:
                self.since_best_loss += 1
            if self.since_best_loss >= self.cfg.early_stopping:
                self.early_stopped = True
                self.model.stop_training = True
        if self.run.workers > 1:
            self._agree_on_epoch_end()

    def _agree_on_epoch_end(self) -> None:
        """On a cluster, take the chief's plan and decisions (its time limit and early stopping
        judge its own history) and any worker's stop request, so every worker trains alike."""
        stop = self.run.stop_requested()
        (planned, early), (stop,) = cluster.agree(
            self.run.dist, [self.run.planned, self.early_stopped], [stop]
        )
        self.run.planned, self.early_stopped = int(planned), bool(early)
        self.stopped_by_user = self.stopped_by_user or stop
        self.model.stop_training = (
            self.early_stopped or self.stopped_by_user or len(self.history) >= self.run.planned
        )

    def ended(self) -> bool:
        """Whether the run ends before the next phase: early stopping, a stop request or the
        time limit (on a cluster, as all its workers agreed)."""
        stop = self.stopped_by_user or (self.run.workers == 1 and self.run.stop_requested())
        return self.early_stopped or stop or len(self.history) >= self.run.planned
