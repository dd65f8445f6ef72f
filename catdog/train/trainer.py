"""Training runs: one function call trains a registry model on a dataset and records the run.

``train(config, on_event=..., stop=...)`` is what the CLI and the dashboard both call. Progress
goes out as :class:`ProgressEvent` objects through a plain callable (pass ``queue.put`` to get a
queue); a ``threading.Event`` asks training to stop after the current batch. Everything the run
learns is written into its folder (see :mod:`catdog.train.runs`) as it goes, so a stopped, crashed
or killed run keeps its best and last model and can be resumed with :func:`resume`.
"""

from __future__ import annotations

import math
import shutil
import threading
import time
import traceback
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from catdog.data.paths import data_home
from catdog.failures import TrainingFailed, failure_message
from catdog.model.backend import keras
from catdog.model.registry import build_model, compile_model, get_spec
from catdog.policy import HostedLimitError, current_policy
from catdog.train import cluster, features, phases, runs
from catdog.train.config import TrainConfig, TrainingError, retired_mixup
from catdog.train.distribute import Distribution, distribution, replica_rule
from catdog.train.pipeline import LoadedSplit, StreamedSplit, make_dataset, open_splits


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

# Said when a run trained with mixup (a setting catdog no longer offers) is resumed.
RESUMED_WITHOUT_MIXUP = "this run was trained with mixup, which catdog no longer offers: " \
    "its remaining epochs train without it"  # fmt: skip


@dataclass
class TrainResult:
    """What a finished (completed, stopped or failed) run produced."""

    run_id: str
    path: Path
    state: str
    history: list[dict[str, float]]
    metrics: dict[str, Any]


def train(
    config: TrainConfig,
    *,
    on_event: EventFn | None = None,
    stop: threading.Event | None = None,
    run_id: str | None = None,
) -> TrainResult:
    """Train ``config.model`` on ``config.data`` in a new run folder and return the result.

    Args:
        config: what to train; ``None`` fields take the model's defaults.
        on_event: called with every :class:`ProgressEvent` (from the training thread).
        stop: when set, training ends after the current batch, keeping what it learned.
        run_id: use this id instead of a fresh one (the folder must not exist yet).

    Returns:
        The run's id, folder, final state, history and metrics.
    """
    path = runs.create_run(config, run_id)
    return train_created(path, on_event=on_event, stop=stop)


def train_created(
    run: str | Path,
    *,
    on_event: EventFn | None = None,
    stop: threading.Event | None = None,
    lock: runs.RunLock | None = None,
) -> TrainResult:
    """Train a run that :func:`catdog.train.runs.create_run` made and nothing has trained yet.

    Args:
        run: the run's id, id prefix or folder.
        on_event: called with every :class:`ProgressEvent`.
        stop: when set, training ends after the current batch.
        lock: the run's :class:`~catdog.train.runs.RunLock` if the caller holds it already (it
            stays the caller's to release); otherwise training takes it and gives it back.

    Raises:
        runs.RunBusy: another process or thread is training the run.
        runs.RunError: the run does not exist, is damaged, or has already trained epochs.
    """
    path = runs.resolve_run(run)
    with _claimed(path, lock):
        info = runs.usable_run_info(path)
        if info.epochs_done or (path / runs.CHECKPOINT_FILE).exists():
            raise runs.RunError(f"run {info.id} has already trained; resume it instead")
        cfg = TrainConfig.from_dict(info.config["train"])
        return _run(path, cfg, info.classes, on_event=on_event, stop=stop, history=[])


def resume(
    run: str | Path,
    *,
    on_event: EventFn | None = None,
    stop: threading.Event | None = None,
    lock: runs.RunLock | None = None,
) -> TrainResult:
    """Continue a stopped, crashed or killed run from its last committed epoch.

    A kill in the middle of recording an epoch is first finished or undone (see
    :func:`catdog.train.runs.commit_steps`), so no epoch is trained twice. A run that never finished
    an epoch starts again from the beginning, in its own folder.

    Args:
        run: the run's id, id prefix or folder.
        on_event: called with every :class:`ProgressEvent`.
        stop: when set, training ends after the current batch.
        lock: the run's :class:`~catdog.train.runs.RunLock` if the caller holds it already (it
            stays the caller's to release); otherwise resuming takes it and gives it back.

    Raises:
        runs.RunBusy: another process or thread is training the run ("stop it first").
        runs.RunError: the run does not exist, is damaged, or is already complete.
    """
    path = runs.resolve_run(run)
    with _claimed(path, lock) as held:
        info = runs.usable_run_info(path)
        cfg = TrainConfig.from_dict(info.config["train"])
        done = runs.committed_history(path)
        cut_short = planned_epochs(cfg, done) <= len(done) < int(cfg.epochs or 0)
        if info.state == "completed" and cut_short:
            raise runs.RunError(
                f"run {info.id} already used its {cfg.time_limit_minutes:g}-minute time limit"
            )
        problem = runs.resume_problem(info, holding_lock=held.exclusive)
        if problem is not None:
            raise runs.RunError(problem)
        history = runs.recover_epochs(path)
        runs.write_status(path, "running", error=None)
        note = RESUMED_WITHOUT_MIXUP if retired_mixup(info.config["train"]) else ""
        return _run(path, cfg, info.classes, on_event=on_event, stop=stop, history=history,
                    note=note)  # fmt: skip


def train_on_cluster(
    config: TrainConfig,
    run_id: str,
    *,
    on_event: EventFn | None = None,
    stop: threading.Event | None = None,
) -> TrainResult:
    """Train ``config`` as this machine's worker of a cluster (``strategy`` multiworker, in a
    process started as a cluster worker: see :mod:`catdog.train.distribute`).

    Every worker calls it with the same ``config`` and ``run_id``. The chief trains in the run
    folder ``run_id``: a new one, or, when it exists (the same command run again after a
    worker was lost), the same run continued from its backup. The other workers train in a
    temporary folder they delete at the end (or, killed, when run again); their result's
    ``path`` is that deleted folder.

    Raises:
        runs.RunError: the run ``run_id`` exists but has completed or has other settings.
    """
    dist = distribution(config.strategy)
    if dist.chief:
        path = runs.runs_dir() / run_id
        if not (path / runs.CONFIG_FILE).exists():
            return train(config, on_event=on_event, stop=stop, run_id=run_id)
        return _continue_on_cluster(path, config, on_event, stop)
    # A fixed name in the data home (the user's own, not a shared /tmp another user could plant
    # a link in): a worker run again after a kill first removes what the killed one left.
    folder = data_home() / "workers" / f"{run_id}-worker{dist.task}"
    shutil.rmtree(folder, ignore_errors=True)
    try:  # the test split is the chief's to evaluate
        path = runs.create_run(replace(config, test=False), run_id, root=folder)
        return train_created(path, on_event=on_event, stop=stop)
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def _continue_on_cluster(
    path: Path, config: TrainConfig, on_event: EventFn | None, stop: threading.Event | None
) -> TrainResult:
    """The chief's part of a cluster run started before: on from its backup."""
    with runs.RunLock.acquire(path) as held:
        info = runs.usable_run_info(path)
        saved = TrainConfig.from_dict(info.config["train"])
        settings = [cfg.resolved().to_dict() | {"precision": None} for cfg in (saved, config)]
        if settings[0] != settings[1]:
            raise runs.RunError(
                f"run {info.id} was started with other settings; give this command "
                "another --run-id, or run that run's own command again"
            )
        problem = runs.resume_problem(info, holding_lock=held.exclusive)
        if info.state == "completed" or problem:
            raise runs.RunError(problem or f"run {info.id} has completed; choose another --run-id")
        history = runs.recover_epochs(path)
        runs.write_status(path, "running", error=None)
        return _run(path, saved, info.classes, on_event=on_event, stop=stop, history=history)


@contextmanager
def _claimed(path: Path, lock: runs.RunLock | None) -> Iterator[runs.RunLock]:
    """The caller's lock on the run if it passed one, else the run's lock for the duration."""
    if lock is not None:
        yield lock
        return
    with runs.RunLock.acquire(path) as held:
        yield held


# val_loss must improve by more than this to count as progress for early stopping.
EARLY_STOPPING_MIN_DELTA = 1e-4


class _RunRecorder(keras.callbacks.Callback):
    """Keras callback: progress events, stop requests, history/model files, early stopping."""

    def __init__(
        self, run: _RunState, model: keras.Model, steps: int, image_cap: int | None, batch: int
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


def planned_epochs(cfg: TrainConfig, history: list[dict[str, float]]) -> int:
    """How many epochs the run will train, given the epochs it has trained so far.

    Without a time limit, ``cfg.epochs``. With one, the epochs done plus as many more as fit
    in the time left (the limit minus the ``seconds`` of the epochs done), at the median
    duration of the last 5 epochs (leaving out the first, which also compiles), and never
    more than ``cfg.epochs``. Before the first epoch, ``cfg.epochs``: the first epochs'
    learning rates (warm-up) do not depend on the total.

    Args:
        cfg: the run's configuration.
        history: one row per epoch done, each with its ``seconds``.

    Returns:
        The number of epochs, at least ``len(history)``.
    """
    epochs = int(cfg.epochs or 1)
    limit = float(cfg.time_limit_minutes or 0) * 60.0
    seconds = [float(row.get("seconds", 0.0)) for row in history]
    if not limit or not seconds:
        return max(epochs, len(seconds))
    recent = sorted((seconds[1:] or seconds)[-5:])
    per_epoch = max(recent[len(recent) // 2], 1e-3)
    fit = len(seconds) + int(max(limit - sum(seconds), 0.0) // per_epoch)
    return max(len(seconds), min(epochs, fit))


def epoch_learning_rate(cfg: TrainConfig, epoch: int, epochs: int | None = None) -> float:
    """The scheduled learning rate of epoch ``epoch`` (from 0): linear warm-up, then
    constant or cosine decay towards 0 over the remaining epochs, of ``epochs`` in all
    (default ``cfg.epochs``; a time-limited run passes its :func:`planned_epochs`)."""
    base, epochs = float(cfg.learning_rate or 0), int(epochs or cfg.epochs or 1)
    warmup = int(cfg.warmup_epochs or 0)
    if epoch < warmup:
        return base * (epoch + 1) / (warmup + 1)
    if cfg.lr_schedule == "cosine":
        return base * 0.5 * (1 + math.cos(math.pi * (epoch - warmup) / max(epochs - warmup, 1)))
    return base


def _schedule(cfg: TrainConfig, plan: Callable[[], int]) -> list[Any]:
    """The learning-rate callbacks for ``cfg`` (none for a constant rate without warm-up);
    ``plan()`` gives the number of epochs the schedule spans (see :func:`planned_epochs`)."""
    callbacks: list[Any] = []
    if cfg.lr_schedule == "cosine" or cfg.warmup_epochs:
        # A function of the epoch and the plan only, so a resumed run picks up where it was.
        callbacks.append(
            keras.callbacks.LearningRateScheduler(
                lambda epoch, lr: epoch_learning_rate(cfg, epoch, plan())
            )
        )
    if cfg.lr_schedule == "plateau":
        base = float(cfg.learning_rate or 0)
        callbacks.append(
            keras.callbacks.ReduceLROnPlateau(
                monitor="val_loss", factor=0.5, patience=3, min_lr=base / 100
            )
        )
    return callbacks


# The phase status.json names while a run is in it, by the progress event that starts it (the
# recorder adds "validating", and "training" again after each epoch's commit).
_PHASES = {
    "precision": "timing",
    "loading": "loading",
    "features": "features",
    "start": "training",
    "evaluating": "testing",
}


@dataclass
class _RunState:
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
    stop_reason: str = ""  # why the run stopped by itself before its end (hosted quota)

    @property
    def workers(self) -> int:
        """Machines training the run together (1 unless it trains on a cluster)."""
        return self.dist.workers if self.dist is not None else 1

    def emit(self, kind: str, **kwargs: Any) -> None:
        """Send a :class:`ProgressEvent`; an event that starts a phase names it in status.json."""
        phase = _PHASES.get(kind)
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


def _run(
    path: Path,
    cfg: TrainConfig,
    classes: list[str],
    *,
    on_event: EventFn | None,
    stop: threading.Event | None,
    history: list[dict[str, float]],
    note: str = "",
) -> TrainResult:
    """Train (a new run: ``history`` empty) or continue (its epochs so far) the run at ``path``.

    The caller holds the run's lock. A :class:`~catdog.train.runs.Heartbeat` keeps ``status.json``
    fresh, with the phase the run is in, from start to end, whatever the phase. ``note`` is
    added to the start event's message. On a cluster, every worker calls it at once (each
    with its own folder: the chief's is the run's).
    """
    heartbeat = runs.Heartbeat(path, lambda: len(history))
    run = _RunState(path, cfg, history, heartbeat, on_event, stop, planned_epochs(cfg, history))
    try:
        heartbeat.start()
        try:
            run.dist = distribution(cfg.strategy)
            if run.workers > 1:
                _join_cluster(run)
            if run.restored:
                note = f"continued from its backup after epoch {run.restored} (a worker stopped)"
            if not history or run.cfg.precision == "auto":
                # A new run (or one restarting from scratch) settles its arithmetic.
                _pretrained_weights(run.cfg, run.emit)  # first: missing weights say so
                run.cfg, speed = _settle_precision(path, run.cfg, run.emit, run.workers)
                run.cfg = _settle_image_size(path, run.cfg, classes, speed, run.emit)
            _record_distribution(run)
            state, metrics = _train_and_test(run, classes, note)
            metrics = _final_metrics(run) | metrics
            runs.atomic_write_json(path / runs.METRICS_FILE, metrics)
        finally:
            heartbeat.stop()  # before the final state, which a last beat would overwrite
        reason = run.stop_reason or None
        runs.write_status(path, state, epochs_done=len(history), phase=None, reason=reason)
        run.emit("end", epoch=len(history), state=state, message=run.stop_reason)
        return TrainResult(path.name, path, state, history, metrics)
    except BaseException as exc:
        message = failure_message(exc, run.cfg.precision)
        _write_error_log(path, exc)
        runs.write_status(path, "failed", epochs_done=len(history), error=message, phase=None)
        run.emit("end", epoch=len(history), state="failed", message=message)
        if isinstance(exc, ValueError | KeyboardInterrupt | SystemExit):
            raise  # catdog's own errors already say what to do; interrupts stay interrupts
        raise TrainingFailed(message) from exc


def _join_cluster(run: _RunState) -> None:
    """Agree with the cluster's other workers on where training continues (the chief's
    backup, see :func:`catdog.train.cluster.continue_from_backup`) and on the epochs planned."""
    run.restored = cluster.continue_from_backup(run.dist, run.path, run.history)
    chief_plan = planned_epochs(run.cfg, run.history)
    run.planned = int(cluster.agree(run.dist, [chief_plan], [])[0][0])


def _record_distribution(run: _RunState) -> None:
    """Record in ``config.json`` where the run trains (``distribution``: strategy, devices,
    replicas, workers, global batch, scaled learning rate, and the epochs a cluster continued
    from its backup)."""
    dist, cfg = run.dist, run.cfg
    saved = (runs.read_json(run.path / runs.CONFIG_FILE, {}) or {}).get("distribution") or {}
    restored = list(saved.get("restored_after_epochs") or [])
    if run.restored:
        restored.append(run.restored)
    scaled = replica_rule(cfg, dist.replicas)
    record = dist.to_dict() | {
        "global_batch_size": int(cfg.batch_size or 32) * dist.replicas,
        "learning_rate": scaled.learning_rate,
        "warmup_epochs": scaled.warmup_epochs,
        "restored_after_epochs": restored,
    }
    runs.update_config(run.path, distribution=record)


def _train_and_test(run: _RunState, classes: list[str], note: str) -> tuple[str, dict[str, Any]]:
    """Load the images and the model, train the epochs left; returns the final state and
    ``{"early_stopped": ...}``. The model, its optimizer and metrics live in the strategy's
    scope, with the batch and learning rate of :func:`~catdog.train.distribute.replica_rule`."""
    cfg, history, dist = run.cfg, run.history, run.dist
    scaled = replica_rule(cfg, dist.replicas)
    keras.utils.set_random_seed(cfg.seed + len(history))
    data = _datasets(scaled, classes, run.emit, dist)
    runs.update_config(run.path, input=data.input)  # in memory or streamed, and why
    with dist.strategy.scope():
        # A cluster restores the chief's backup instead of the chief's last.keras.
        model = _model(run.path, scaled, classes, resume=bool(history) and run.workers == 1)
        cache, fast = _feature_cache(run, model, data)
        cap = data.train_images if data.steps == data.one_pass else None
        recorder = _RunRecorder(run, model, data.steps, cap, data.batch)
        sizes = f"{data.train_images} train / {data.val_images} validation images"
        sizes += f"; {data.input['summary']}"
        where = dist.describe(int(cfg.batch_size or 32))
        message = "; ".join(part for part in (sizes, where, fast, note) if part)
        run.emit("start", epoch=len(history) + 1, steps=data.steps, message=message)
        _fit_phases(run, model, data, recorder, scaled, len(classes), cache)
    stopped = recorder.stopped_by_user or (run.workers == 1 and run.stop_requested())
    state = "stopped" if stopped and len(history) < run.planned else "completed"
    if state == "completed":
        cluster.discard_backup(run.path)
    return state, {"early_stopped": recorder.early_stopped}


def _fit_phases(
    run: _RunState, model: keras.Model, data: _Data, recorder: _RunRecorder, cfg: TrainConfig,
    num_classes: int, cache: features.FeatureCache | None,
) -> None:  # fmt: skip
    """One ``model.fit`` per phase left (a pretrained model: feature extraction, then
    fine-tuning), until the run ends; ``cfg`` has the replicas' learning rates, and ``cache``
    the frozen base's features if the head trains on them. On a cluster, every worker backs up
    its state at each epoch's end and restores the chief's at each fit's start
    (:class:`~catdog.train.cluster.ClusterBackup`)."""
    history = run.history
    for settings, end in phases.segments(cfg, len(history)):
        if recorder.ended():
            break
        phases.enter(model, cfg, len(history), num_classes)
        recorder.cached = cache is not None and features.applies(cfg, len(history))
        fitted, train, val = model, data.train, data.val
        if cache is not None and recorder.cached:  # the head alone, on the base's features
            fitted, train, val = features.compile_head(cache, model), cache.train, cache.val
        callbacks = [recorder, *_schedule(settings, lambda: run.planned)]
        if run.workers > 1:
            restore = 0 < run.restored == len(history)  # the first fit after a restart
            backup = cluster.ClusterBackup(run.path / cluster.BACKUP_DIR, run.dist, restore)
            callbacks.insert(1, backup)
        fitted.fit(
            train,
            validation_data=val,
            epochs=end,
            initial_epoch=len(history),
            steps_per_epoch=data.steps if data.steps != data.one_pass else None,
            callbacks=callbacks,
            verbose=0,
            shuffle=False,  # the tf.data pipeline shuffles (and Keras would ignore this)
        )


def _feature_cache(
    run: _RunState, model: keras.Model, data: _Data
) -> tuple[features.FeatureCache | None, str]:
    """When the run's next epochs train a pretrained model's head on its frozen base without
    augmentation, the base's features of every image, computed once (with ``features``
    events) and recorded in ``config.json``; with what to say of it in the progress text."""
    if not features.applies(run.cfg, len(run.history)):
        return None, ""
    if run.dist is not None and run.dist.replicas > 1:
        return None, "the frozen base runs every epoch: its features are cached on one device only"
    if problem := features.too_big(model, data.train_images + data.val_images):
        return None, problem
    if not isinstance(data.train_split, LoadedSplit) or not isinstance(data.val_split, LoadedSplit):
        return None, "the base runs every epoch: the images are streamed from disk"

    def progress(done: int, total: int, message: str) -> None:
        run.emit("features", step=done, steps=total, message=message)

    cache = features.cache_features(
        model,
        data.train_split,
        data.val_split,
        batch_size=int(run.cfg.batch_size or 32),
        seed=run.cfg.seed,
        label_mode=data.label_mode,
        repeat=data.steps > data.one_pass,
        progress=progress,
        stop=run.stop_requested,
    )
    if cache is None:  # stopped meanwhile
        return None, ""
    runs.update_config(run.path, feature_cache=cache.to_dict())
    return cache, cache.describe()


@dataclass
class _Data:
    """A run's training and validation datasets, and the sizes the training loop needs."""

    train: Any
    val: Any | None
    steps: int  # batches per epoch
    one_pass: int  # batches in one pass over the training images
    train_images: int
    val_images: int
    input: dict[str, Any]  # how the images are held (in memory or streamed) and why
    train_split: LoadedSplit | StreamedSplit  # a pretrained run may cache their features
    val_split: LoadedSplit | StreamedSplit
    label_mode: str
    batch: int  # images per step, over all replicas


def _datasets(
    cfg: TrainConfig, classes: list[str], emit: Callable[..., None], dist: Distribution
) -> _Data:
    """Read the training and validation images (with ``loading`` events) into datasets of
    global batches (``cfg.batch_size`` per replica)."""
    size, data = int(cfg.image_size or 150), Path(cfg.data)
    label_mode = "binary" if len(classes) == 2 else "categorical"

    def loading(done: int, total: int, message: str = "") -> None:
        emit("loading", step=done, steps=total, message=message)

    opened = open_splits(data, ("train", "validation"), classes, size, progress=loading)
    train_split, val_split = opened.splits
    if len(train_split.labels) == 0:
        raise TrainingError(f"{data}/train has no usable images")
    batch = int(cfg.batch_size or 32) * dist.replicas
    train_ds = make_dataset(
        train_split,
        batch_size=batch,
        shuffle=True,
        augment=cfg.augmentation if cfg.augment else None,
        seed=cfg.seed,
        label_mode=label_mode,
    )
    one_pass = math.ceil(len(train_split.labels) / batch)
    steps = int(cfg.steps_per_epoch or 0) or one_pass
    if steps > one_pass:
        train_ds = train_ds.repeat()
    val_ds = None
    if len(val_split.labels):
        val_ds = make_dataset(
            val_split, batch_size=batch, shuffle=False, augment=None, label_mode=label_mode
        )
    if dist.workers > 1:  # each worker reads every image; tf.distribute gives it its share
        train_ds, val_ds = (cluster.shared_by_workers(d) for d in (train_ds, val_ds))
    return _Data(train_ds, val_ds, steps, one_pass, len(train_split.labels),
                 len(val_split.labels), opened.to_dict(), train_split, val_split,
                 label_mode, batch)  # fmt: skip


def _model(path: Path, cfg: TrainConfig, classes: list[str], resume: bool) -> keras.Model:
    """The run's ``last.keras`` when resuming, else a new compiled model."""
    if resume:
        return runs.load_model(path, which="last")
    weights = _pretrained_weights(cfg, None)
    model = build_model(
        cfg.model,
        image_size=int(cfg.image_size or 150),
        num_classes=len(classes),
        dropout=cfg.dropout,
        precision=str(cfg.precision),
        weights=None if weights is None else str(weights),
    )
    compile_model(
        model,
        num_classes=len(classes),
        learning_rate=float(cfg.learning_rate),
        optimizer=get_spec(cfg.model).optimizer,
        label_smoothing=float(cfg.label_smoothing or 0),
        weight_decay=float(cfg.weight_decay or 0),
    )
    return model


def _pretrained_weights(cfg: TrainConfig, emit: Callable[..., None] | None) -> Path | None:
    """A pretrained model's weights file (downloaded into Keras' cache on first use, with
    ``loading`` events); None for a model that starts from random weights.

    Raises:
        catdog.model.weights.WeightsMissing: no weights here and none to download.
    """
    from catdog.model.weights import find_weights

    def downloading(done: int, total: int) -> None:
        if emit is not None:
            emit("loading", step=done >> 20, steps=total >> 20,
                 message=f"downloading {cfg.model}'s pretrained weights (MB)")  # fmt: skip

    return find_weights(cfg.model, cfg.weights, on_progress=downloading)


def _settle_precision(
    path: Path, cfg: TrainConfig, emit: Callable[..., None], workers: int = 1
) -> tuple[TrainConfig, float | None]:
    """Resolve the run's precision (``auto``: measured on this machine, see
    :mod:`catdog.train.precision`; float32 on a cluster of ``workers`` machines, which must
    compute alike), say what was chosen and why, and record it in ``config.json``; with the
    training images/s measured in it (None if not timed: float32 chosen by hand)."""
    from catdog.train.precision import PrecisionChoice, choose_precision

    saved = runs.read_json(path / runs.CONFIG_FILE, {}) or {}
    requested = (saved.get("precision") or {}).get("requested") or cfg.precision or "auto"
    if workers > 1 and requested == "auto":
        reason = "float32: the workers of a cluster compute alike (auto would time each alone)"
        choice = PrecisionChoice("float32", "auto", reason)
    else:
        choice = choose_precision(
            cfg.model,
            int(cfg.image_size or 150),
            int(cfg.batch_size or 32),
            requested,
            on_progress=lambda message: emit("precision", message=message),
        )
    emit("precision", message=f"precision {choice.reason}")
    cfg = replace(cfg, precision=choice.precision)
    runs.update_config(path, train=cfg.to_dict(), precision=choice.to_dict())
    return cfg, (choice.speeds or {}).get(choice.precision)


def _settle_image_size(
    path: Path,
    cfg: TrainConfig,
    classes: list[str],
    speed: float | None,
    emit: Callable[..., None],
) -> TrainConfig:
    """Where the run's preset has a smaller input for machines its time limit buys few epochs
    of its own size on (:mod:`catdog.train.recipe`), decide from the training ``speed`` just
    measured (images/s), say so and record it in ``config.json``."""
    from catdog.data.datasets import labelled_images
    from catdog.train.precision import cached_choice
    from catdog.train.recipe import choose_image_size

    if not cfg.fit_image_size:
        return cfg
    if not speed:  # float32 chosen by hand is not timed: what auto measured before, if it did
        known = cached_choice(cfg.model, int(cfg.image_size or 0), int(cfg.batch_size or 32))
        speed = known.speeds.get(cfg.precision) if known else None
    if not speed:
        return cfg
    data = Path(cfg.data)
    counts = [len(labelled_images(data / split, classes)[0]) for split in ("train", "validation")]
    minutes = float(cfg.time_limit_minutes or 0)
    choice = choose_image_size(
        cfg.model, int(cfg.image_size or 0), int(cfg.epochs or 1), minutes, float(speed), *counts
    )
    if choice is None:
        return cfg
    emit("precision", message=f"input size {choice.reason}")
    cfg = replace(cfg, image_size=choice.image_size)
    runs.update_config(path, train=cfg.to_dict(), image_size=choice.to_dict())
    return cfg


def _write_error_log(path: Path, exc: BaseException) -> None:
    """Keep the full traceback of a failure in the run folder (the user sees one line)."""
    try:
        text = "".join(traceback.format_exception(exc))
        runs.atomic_write_text(path / runs.ERROR_LOG, text)
    except OSError:
        pass  # a full disk must not hide the original failure


def _final_metrics(run: _RunState) -> dict[str, Any]:
    """Best/final validation accuracy from the history, and test accuracy of the best model
    (unless the run leaves the test split unseen)."""
    path, history, cfg = run.path, run.history, run.cfg
    data, batch = Path(cfg.data) if cfg.test else None, int(cfg.batch_size or 32)
    previous = runs.read_json(path / runs.METRICS_FILE, {}) or {}
    val = [r["val_accuracy"] for r in history if "val_accuracy" in r]
    metrics: dict[str, Any] = {
        "epochs_done": len(history),
        "best_val_accuracy": max(val) if val else None,
        "best_epoch": (val.index(max(val)) + 1) if val else None,
        "final_val_accuracy": val[-1] if val else None,
        "final_train_accuracy": history[-1].get("accuracy") if history else None,
        "train_seconds": round(previous.get("train_seconds", 0.0) + run.seconds(), 1),
    }
    if run.dist is not None:  # where it trained (config.json's "distribution" has the details)
        metrics |= {"strategy": run.dist.name, "replicas": run.dist.replicas}
    if data is None:  # tuning: the test split stays unseen
        return metrics
    if history and (path / runs.BEST_MODEL).exists() and any((data / "test").glob("*/*")):
        # The same one-pass evaluation as `catdog evaluate` (mirror-averaged if the run's
        # config asks for it), so metrics.json and the History page always agree.
        from catdog.inference.evaluate import evaluate_run

        run.emit("evaluating", epoch=len(history), message="test split")
        evaluation = evaluate_run(path, which="best", batch_size=batch)
        metrics["test_accuracy"] = float(evaluation.accuracy)
        metrics["test_images"] = int(evaluation.count)
    return metrics
