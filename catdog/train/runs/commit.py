"""Each finished epoch committed in one step: ``last.keras`` and the history always agree.

:func:`commit_steps` explains the protocol; :func:`recover_epochs` finishes or undoes a commit a
kill interrupted; :func:`truncate_epochs` forgets epochs a cluster redoes.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from catdog.train.runs.files import (
    BEST_MODEL,
    CHECKPOINT_FILE,
    HISTORY_FILE,
    LAST_MODEL,
    RunDamaged,
    atomic_copy,
    atomic_write_json,
    read_history,
    read_object,
    save_model_atomic,
    temporary_files,
    write_history,
)
from catdog.train.runs.ranges import (
    RangeError,
    check_checkpoint_epoch,
)

if TYPE_CHECKING:
    from catdog.model.backend import keras


def staged_model(run_path: Path, epoch: int) -> Path:
    """Where :func:`commit_epoch` saves epoch ``epoch``'s model before it becomes ``last.keras``."""
    return run_path / f"last.epoch-{epoch}.keras"


def commit_steps(
    run_path: Path,
    model: keras.Model,
    row: dict[str, Any],
    history: list[dict[str, Any]],
    best: bool,
) -> list[tuple[str, Callable[[], None]]]:
    """The steps of :func:`commit_epoch`, in order, as ``(name, step)`` pairs.

    1. ``save``: the model is saved, atomically, to ``last.epoch-N.keras``; nothing refers to
       it yet, so a kill before step 2 means epoch N never happened (last.keras, best.keras and
       history.csv are epoch N-1's; :func:`recover_epochs` deletes the staged file).
    2. ``commit``: ``checkpoint.json`` is replaced by ``{"epoch": N, "row": …, "best": …}``.
       This one atomic rename is the commit: from now on epoch N happened.
    3. ``last``: ``last.epoch-N.keras`` is renamed to ``last.keras``.
    4. ``best``: if N is the best epoch so far, ``last.keras`` is copied to ``best.keras``.
    5. ``history``: the row is appended to ``history`` and ``history.csv``.

    A kill after step 2 leaves steps 3–5 to :func:`recover_epochs`, which redoes them from
    ``checkpoint.json`` (each is idempotent). So whatever moment a kill hits, a resume finds
    ``last.keras`` holding exactly the epochs the history lists, and never trains one twice.
    """
    epoch = int(row["epoch"])
    checkpoint = {"epoch": epoch, "row": row, "best": bool(best)}

    def append() -> None:
        history.append(row)
        write_history(run_path, history)

    return [
        ("save", lambda: save_model_atomic(model, staged_model(run_path, epoch))),
        ("commit", lambda: atomic_write_json(run_path / CHECKPOINT_FILE, checkpoint)),
        ("last", lambda: os.replace(staged_model(run_path, epoch), run_path / LAST_MODEL)),
        ("best", lambda: best and atomic_copy(run_path / LAST_MODEL, run_path / BEST_MODEL)),
        ("history", append),
    ]


def commit_epoch(
    run_path: Path, model: keras.Model, row: dict[str, Any], history: list[dict[str, Any]],
    best: bool,
) -> None:  # fmt: skip
    """Record a finished epoch so a kill at any moment leaves a consistent run folder: its
    model as ``last.keras`` (and ``best.keras`` if ``best``) and ``row`` in ``history``
    (appended) and ``history.csv``. :func:`commit_steps` explains how."""
    for _name, step in commit_steps(run_path, model, row, history, best):
        step()


def read_checkpoint(run_path: Path) -> dict[str, Any] | None:
    """The run's ``checkpoint.json`` (``None`` for runs from before it existed).

    Raises:
        RunDamaged: the file is not a checkpoint catdog wrote.
    """
    checkpoint = read_object(run_path / CHECKPOINT_FILE)
    if checkpoint is None:
        return None
    epoch, row = checkpoint.get("epoch"), checkpoint.get("row")
    if type(epoch) is not int or epoch < 1:
        raise RunDamaged(f"{CHECKPOINT_FILE}: 'epoch' must be an int ≥ 1, got {epoch!r}")
    try:
        check_checkpoint_epoch(epoch)
    except RangeError as exc:
        raise RunDamaged(str(exc)) from exc
    if not isinstance(row, dict) or row.get("epoch") != epoch:
        raise RunDamaged(f"{CHECKPOINT_FILE}: 'row' must be the history row of epoch {epoch}")
    return checkpoint


def committed_history(run_path: Path) -> list[dict[str, float]]:
    """The run's history as far as it is committed: the rows of ``history.csv`` before the
    epoch in ``checkpoint.json``, then that epoch's row (which ``history.csv`` may not have
    yet). Reads only; :func:`recover_epochs` also writes it back.

    Raises:
        RunDamaged: a file cannot be read, or the history lacks epochs before the checkpoint.
    """
    history = read_history(run_path)
    checkpoint = read_checkpoint(run_path)
    if checkpoint is None:  # a run from before checkpoints: its history came after its model
        return history
    epoch = checkpoint["epoch"]
    rows = [row for row in history if row.get("epoch", 0) < epoch] + [checkpoint["row"]]
    if [row.get("epoch") for row in rows] != list(range(1, epoch + 1)):
        raise RunDamaged(f"{HISTORY_FILE} lacks epochs before epoch {epoch} of {CHECKPOINT_FILE}")
    return rows


def recover_epochs(run_path: Path) -> list[dict[str, float]]:
    """Finish or undo the epoch commit a kill interrupted (see :func:`commit_steps`) and return
    the run's history; ``last.keras`` then holds exactly its epochs. Only the holder of the
    run's :class:`RunLock` may call it.

    Raises:
        RunDamaged: a file cannot be read, or the history lacks committed epochs.
    """
    history = committed_history(run_path)
    checkpoint = read_checkpoint(run_path)
    committed = staged_model(run_path, checkpoint["epoch"]) if checkpoint else None
    if committed is not None and committed.exists():
        os.replace(committed, run_path / LAST_MODEL)  # step 3
    for leftover in [*run_path.glob("last.epoch-*.keras"), *temporary_files(run_path)]:
        leftover.unlink(missing_ok=True)  # an uncommitted epoch, a write a kill cut short
    if checkpoint is not None:
        if checkpoint.get("best") and (run_path / LAST_MODEL).exists():
            atomic_copy(run_path / LAST_MODEL, run_path / BEST_MODEL)  # step 4
        if history != read_history(run_path):
            write_history(run_path, history)  # step 5
    return history


def truncate_epochs(run_path: Path, epochs: int) -> list[dict[str, float]]:
    """Forget the run's epochs after its first ``epochs`` (a cluster redoes them from its
    backup) and return its history, of at most ``epochs`` rows. Only the holder of the run's
    :class:`RunLock` may call it.

    Raises:
        RunDamaged: a file cannot be read, or the history lacks committed epochs.
    """
    history = recover_epochs(run_path)
    if len(history) <= epochs:
        return history
    history = history[:epochs]
    if history:  # the commit record names the last epoch kept (best.keras stays as it is)
        checkpoint = {"epoch": epochs, "row": history[-1], "best": False}
        atomic_write_json(run_path / CHECKPOINT_FILE, checkpoint)
    else:
        (run_path / CHECKPOINT_FILE).unlink(missing_ok=True)
    write_history(run_path, history)
    return history
