"""Training runs: one function call trains a registry model on a dataset and records the run.

``train(config, on_event=..., stop=...)`` is what the CLI and the dashboard both call. Progress
goes out as :class:`ProgressEvent` objects through a plain callable (pass ``queue.put`` to get a
queue); a ``threading.Event`` asks training to stop after the current batch. Everything the run
learns is written into its folder (see :mod:`catdog.train.runs`) as it goes, so a stopped, crashed
or killed run keeps its best and last model and can be resumed with :func:`resume`.
"""

from __future__ import annotations

import shutil
import threading
import traceback
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from catdog.data.paths import data_home, runs_dir
from catdog.failures import TrainingFailed, failure_message
from catdog.model.backend import keras
from catdog.train import cluster, features, phases, runs
from catdog.train.config import TrainConfig, retired_mixup
from catdog.train.distribute import distribution, replica_rule
from catdog.train.events import EventFn, TestFn
from catdog.train.preparation import (
    RunData,
    feature_cache,
    make_model,
    open_data,
    pretrained_weights,
    settle_image_size,
    settle_precision,
)
from catdog.train.recorder import RunRecorder, RunState
from catdog.train.schedule import planned_epochs, schedule_callbacks

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
    test_with: TestFn | None = None,
) -> TrainResult:
    """Train ``config.model`` on ``config.data`` in a new run folder and return the result.

    Args:
        config: what to train; ``None`` fields take the model's defaults.
        on_event: called with every :class:`ProgressEvent` (from the training thread).
        stop: when set, training ends after the current batch, keeping what it learned.
        test_with: the final test evaluation of the best model (``test_with(run folder, batch
            size) -> metrics``; the job and the CLI pass
            :func:`catdog.inference.evaluate.final_test`); None: no test accuracy.
        run_id: use this id instead of a fresh one (the folder must not exist yet).

    Returns:
        The run's id, folder, final state, history and metrics.
    """
    path = runs.create_run(config, run_id)
    return train_created(path, on_event=on_event, stop=stop, test_with=test_with)


def train_created(
    run: str | Path,
    *,
    on_event: EventFn | None = None,
    stop: threading.Event | None = None,
    lock: runs.RunLock | None = None,
    test_with: TestFn | None = None,
) -> TrainResult:
    """Train a run that :func:`catdog.train.runs.create_run` made and nothing has trained yet.

    Args:
        run: the run's id, id prefix or folder.
        on_event: called with every :class:`ProgressEvent`.
        stop: when set, training ends after the current batch.
        test_with: the final test evaluation of the best model (``test_with(run folder, batch
            size) -> metrics``; the job and the CLI pass
            :func:`catdog.inference.evaluate.final_test`); None: no test accuracy.
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
        return _run(path, cfg, info.classes, on_event=on_event, stop=stop, history=[],
                    test_with=test_with)  # fmt: skip


def resume(
    run: str | Path,
    *,
    on_event: EventFn | None = None,
    stop: threading.Event | None = None,
    lock: runs.RunLock | None = None,
    test_with: TestFn | None = None,
) -> TrainResult:
    """Continue a stopped, crashed or killed run from its last committed epoch.

    A kill in the middle of recording an epoch is first finished or undone (see
    :func:`catdog.train.runs.commit_steps`), so no epoch is trained twice. A run that never finished
    an epoch starts again from the beginning, in its own folder.

    Args:
        run: the run's id, id prefix or folder.
        on_event: called with every :class:`ProgressEvent`.
        stop: when set, training ends after the current batch.
        test_with: the final test evaluation of the best model (``test_with(run folder, batch
            size) -> metrics``; the job and the CLI pass
            :func:`catdog.inference.evaluate.final_test`); None: no test accuracy.
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
                    note=note, test_with=test_with)  # fmt: skip


def train_on_cluster(
    config: TrainConfig,
    run_id: str,
    *,
    on_event: EventFn | None = None,
    stop: threading.Event | None = None,
    test_with: TestFn | None = None,
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
        path = runs_dir() / run_id
        if not (path / runs.CONFIG_FILE).exists():
            return train(config, on_event=on_event, stop=stop, run_id=run_id, test_with=test_with)
        return _continue_on_cluster(path, config, on_event, stop, test_with)
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
    path: Path, config: TrainConfig, on_event: EventFn | None, stop: threading.Event | None,
    test_with: TestFn | None,
) -> TrainResult:  # fmt: skip
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
        return _run(path, saved, info.classes, on_event=on_event, stop=stop, history=history,
                    test_with=test_with)  # fmt: skip


@contextmanager
def _claimed(path: Path, lock: runs.RunLock | None) -> Iterator[runs.RunLock]:
    """The caller's lock on the run if it passed one, else the run's lock for the duration."""
    if lock is not None:
        yield lock
        return
    with runs.RunLock.acquire(path) as held:
        yield held


def _run(
    path: Path,
    cfg: TrainConfig,
    classes: list[str],
    *,
    on_event: EventFn | None,
    stop: threading.Event | None,
    history: list[dict[str, float]],
    note: str = "",
    test_with: TestFn | None = None,
) -> TrainResult:
    """Train (a new run: ``history`` empty) or continue (its epochs so far) the run at ``path``.

    The caller holds the run's lock. A :class:`~catdog.train.runs.Heartbeat` keeps ``status.json``
    fresh, with the phase the run is in, from start to end, whatever the phase. ``note`` is
    added to the start event's message. On a cluster, every worker calls it at once (each
    with its own folder: the chief's is the run's).
    """
    heartbeat = runs.Heartbeat(path, lambda: len(history))
    run = RunState(path, cfg, history, heartbeat, on_event, stop, planned_epochs(cfg, history))
    run.test_with = test_with
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
                pretrained_weights(run.cfg, run.emit)  # first: missing weights say so
                run.cfg, speed = settle_precision(path, run.cfg, run.emit, run.workers)
                run.cfg = settle_image_size(path, run.cfg, classes, speed, run.emit)
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


def _join_cluster(run: RunState) -> None:
    """Agree with the cluster's other workers on where training continues (the chief's
    backup, see :func:`catdog.train.cluster.continue_from_backup`) and on the epochs planned."""
    run.restored = cluster.continue_from_backup(run.dist, run.path, run.history)
    chief_plan = planned_epochs(run.cfg, run.history)
    run.planned = int(cluster.agree(run.dist, [chief_plan], [])[0][0])


def _record_distribution(run: RunState) -> None:
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


def _train_and_test(run: RunState, classes: list[str], note: str) -> tuple[str, dict[str, Any]]:
    """Load the images and the model, train the epochs left; returns the final state and
    ``{"early_stopped": ...}``. The model, its optimizer and metrics live in the strategy's
    scope, with the batch and learning rate of :func:`~catdog.train.distribute.replica_rule`."""
    cfg, history, dist = run.cfg, run.history, run.dist
    scaled = replica_rule(cfg, dist.replicas)
    keras.utils.set_random_seed(cfg.seed + len(history))
    data = open_data(scaled, classes, run.emit, dist)
    runs.update_config(run.path, input=data.input)  # in memory or streamed, and why
    with dist.strategy.scope():
        # A cluster restores the chief's backup instead of the chief's last.keras.
        model = make_model(run.path, scaled, classes, resume=bool(history) and run.workers == 1)
        cache, fast = feature_cache(run, model, data)
        cap = data.train_images if data.steps == data.one_pass else None
        recorder = RunRecorder(run, model, data.steps, cap, data.batch)
        sizes = f"{data.train_images} train / {data.val_images} validation images"
        sizes += f"; {data.input['summary']}"
        where = dist.describe(int(cfg.batch_size or 32))
        message = "; ".join(part for part in (sizes, where, fast, note) if part)
        runs.update_config(run.path, start_message=message)  # shown on the History page
        run.emit("start", epoch=len(history) + 1, steps=data.steps, message=message)
        _fit_phases(run, model, data, recorder, scaled, len(classes), cache)
    stopped = recorder.stopped_by_user or (run.workers == 1 and run.stop_requested())
    state = "stopped" if stopped and len(history) < run.planned else "completed"
    if state == "completed":
        cluster.discard_backup(run.path)
    return state, {"early_stopped": recorder.early_stopped}


def _fit_phases(
    run: RunState, model: keras.Model, data: RunData, recorder: RunRecorder, cfg: TrainConfig,
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
        callbacks = [recorder, *schedule_callbacks(settings, lambda: run.planned)]
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


def _write_error_log(path: Path, exc: BaseException) -> None:
    """Keep the full traceback of a failure in the run folder (the user sees one line)."""
    try:
        text = "".join(traceback.format_exception(exc))
        runs.atomic_write_text(path / runs.ERROR_LOG, text)
    except OSError:
        pass  # a full disk must not hide the original failure


def _final_metrics(run: RunState) -> dict[str, Any]:
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
    tested = history and (path / runs.BEST_MODEL).exists() and any((data / "test").glob("*/*"))
    if tested and run.test_with is not None:
        run.emit("evaluating", epoch=len(history), message="test split")
        metrics |= run.test_with(path, batch)
    return metrics
