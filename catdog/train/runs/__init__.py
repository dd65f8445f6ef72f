"""Training runs on disk: one folder per run under ``<data home>/runs/``.

A run folder holds:

- ``config.json``  — the full :class:`~catdog.train.config.TrainConfig` (enough to re-run it), the
  class names and the run id;
- ``status.json``  — state (``running``/``completed``/``stopped``/``failed``, or ``queued``/
  ``cancelled`` for a dashboard job waiting for its turn or cancelled meanwhile), process id,
  heartbeat time, the phase training is in, epochs done, error message;
- ``history.csv``  — one row per finished epoch (loss, accuracy, val_loss, val_accuracy,
  learning rate, seconds);
- ``best.keras`` / ``last.keras`` — the model with the best validation accuracy so far and the
  model after the last finished epoch (with optimizer state, for resuming);
- ``checkpoint.json`` — which epoch ``last.keras`` holds, with that epoch's history row: the
  commit record of :func:`commit_epoch`, so a resume never trains an epoch twice;
- ``train.lock`` — locked (``flock``) by the one process that trains the run (:class:`RunLock`);
- ``metrics.json`` — final metrics (best/final validation accuracy, test accuracy, wall time).

Every file is written atomically (temporary file in the same folder, then ``os.replace``), so
a run killed at any moment never leaves a file that cannot be read. A folder damaged some other
way (edited by hand, a disk error) is listed with state ``damaged`` and the reason, never an
exception. Nothing here imports TensorFlow but :mod:`.models`, lazily.

The package, by concept: :mod:`.files` (names, atomic writes, checked reads), :mod:`.store`
(create, find, list, summarise, delete), :mod:`.lock` (one writer, heartbeat, live state),
:mod:`.commit` (one epoch committed in one step), :mod:`.checks` (the files' value types),
:mod:`.ranges` (their values' ranges), :mod:`.models` (saving and loading a run's models).
Everything public is re-exported here, so callers write ``runs.create_run``.
"""

from __future__ import annotations

from catdog.train.runs.checks import (
    read_run_files,
)
from catdog.train.runs.commit import (
    commit_epoch,
    commit_steps,
    committed_history,
    read_checkpoint,
    recover_epochs,
    staged_model,
    truncate_epochs,
)
from catdog.train.runs.files import (
    BEST_MODEL,
    CHECKPOINT_FILE,
    CONFIG_FILE,
    ERROR_LOG,
    HISTORY_COLUMNS,
    HISTORY_FILE,
    LAST_MODEL,
    METRICS_FILE,
    STATUS_FILE,
    RunBusy,
    RunDamaged,
    RunError,
    atomic_copy,
    atomic_path,
    atomic_write_json,
    atomic_write_text,
    json_type,
    read_history,
    read_json,
    read_object,
    save_model_atomic,
    temporary_files,
    write_history,
    write_status,
)
from catdog.train.runs.lock import (
    DAMAGED,
    HEARTBEAT_SECONDS,
    LOCK_FILE,
    QUEUED,
    RESUMABLE_STATES,
    STALE_AFTER_SECONDS,
    Heartbeat,
    RunLock,
    effective_state,
    lock_taken,
)
from catdog.train.runs.models import (
    load_model,
    model_file,
)
from catdog.train.runs.store import (
    RunInfo,
    can_resume,
    check_run_id,
    create_run,
    delete_run,
    list_runs,
    new_run_id,
    resolve_run,
    resume_problem,
    run_info,
    runs_training_on,
    update_config,
    usable_run_info,
)

__all__ = [
    "BEST_MODEL",
    "CHECKPOINT_FILE",
    "CONFIG_FILE",
    "DAMAGED",
    "ERROR_LOG",
    "HEARTBEAT_SECONDS",
    "HISTORY_COLUMNS",
    "HISTORY_FILE",
    "LAST_MODEL",
    "LOCK_FILE",
    "METRICS_FILE",
    "QUEUED",
    "RESUMABLE_STATES",
    "STALE_AFTER_SECONDS",
    "STATUS_FILE",
    "Heartbeat",
    "RunBusy",
    "RunDamaged",
    "RunError",
    "RunInfo",
    "RunLock",
    "atomic_copy",
    "atomic_path",
    "atomic_write_json",
    "atomic_write_text",
    "can_resume",
    "check_run_id",
    "commit_epoch",
    "commit_steps",
    "committed_history",
    "create_run",
    "delete_run",
    "effective_state",
    "json_type",
    "list_runs",
    "load_model",
    "lock_taken",
    "model_file",
    "new_run_id",
    "read_checkpoint",
    "read_history",
    "read_json",
    "read_object",
    "read_run_files",
    "recover_epochs",
    "resolve_run",
    "resume_problem",
    "run_info",
    "runs_training_on",
    "save_model_atomic",
    "staged_model",
    "temporary_files",
    "truncate_epochs",
    "update_config",
    "usable_run_info",
    "write_history",
    "write_status",
]
