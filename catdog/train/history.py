"""Reading training histories: where overfitting starts, which runs to show, and in what words.

The seed judges a run by two figures, training vs validation accuracy and loss per epoch, and
reads overfitting off them: validation loss bottoms out while training loss keeps falling.
:func:`overfitting_onset` finds that epoch (:mod:`catdog.figures` marks it on the curves);
:func:`runs_table`, :func:`story_runs` and :func:`best_run` pick and summarise runs, and
:func:`run_label`, :func:`run_note` and :func:`best_run_line` say it in words. Plain Python:
no TensorFlow, no Streamlit, no Plotly.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from catdog.train.distribute import describe
from catdog.train.runs import RunInfo, can_resume


def best_epoch(history: Sequence[Mapping[str, float]], metric: str = "val_loss") -> int | None:
    """The epoch (from 1) where ``metric`` is best: lowest for losses, highest otherwise.

    Args:
        history: per-epoch rows as read by :func:`catdog.train.runs.read_history`.
        metric: a column of those rows, e.g. ``"val_loss"`` or ``"val_accuracy"``.

    Returns:
        The epoch number, or None if no row has ``metric``. Ties go to the earliest epoch.
    """
    points = [
        (row.get("epoch", i + 1), row[metric])
        for i, row in enumerate(history)
        if row.get(metric) is not None
    ]
    if not points:
        return None
    lower_is_better = "loss" in metric
    pick = min if lower_is_better else max
    value = pick(v for _, v in points)
    return int(next(epoch for epoch, v in points if v == value))


# Validation loss must have risen this much above its minimum (relative, averaged over the
# last few epochs) before a curve counts as overfitting rather than noise around a plateau.
OVERFITTING_RISE = 0.10
OVERFITTING_WINDOW = 3


def overfitting_onset(history: Sequence[Mapping[str, float]]) -> int | None:
    """The epoch where overfitting starts: validation loss bottoms out there and has since
    risen clearly (its mean over the last few epochs is ≥ 10% above the minimum).

    Args:
        history: per-epoch rows with ``val_loss``.

    Returns:
        The epoch of the lowest validation loss, or None while there is no clear sign of
        overfitting (validation loss still falling, or only wobbling around its minimum).
    """
    points = [
        (int(row.get("epoch", i + 1)), float(row["val_loss"]))
        for i, row in enumerate(history)
        if row.get("val_loss") is not None
    ]
    epoch = best_epoch(history, "val_loss")
    if epoch is None:
        return None
    lowest = min(loss for _, loss in points)
    after = [loss for e, loss in points if e > epoch][-OVERFITTING_WINDOW:]
    if not after or sum(after) / len(after) < lowest * (1 + OVERFITTING_RISE):
        return None
    return epoch


def fine_tuning_start(history: Sequence[Mapping[str, float]]) -> int | None:
    """The first fine-tuning epoch of a pretrained model's run (``phase`` 2), or None."""
    return next((int(r["epoch"]) for r in history if r.get("phase") == 2), None)


def short_id(run_id: str) -> str:
    """A run id without its date and time stamp, for legends: ``seed-baseline-3fa2``."""
    return re.sub(r"-([0-9a-f]{4})[0-9a-f]{12}$", r"-\1", re.sub(r"^\d{8}-\d{6}-", "", run_id))


def dataset_name(data: str) -> str:
    """A run's dataset as people name it: the folder name of the path it was trained on."""
    return Path(data).name if data and data != "?" else "?"


def runs_table(infos: Sequence[RunInfo]) -> list[dict[str, Any]]:
    """One row per run with its settings and results, for a table.

    Accuracies are fractions (0–1) or None when unknown; ``onset`` is the overfitting epoch.
    When some run is a shared example (hosted mode), every row says whether it is one.
    """
    examples = any(info.example for info in infos)
    rows = []
    for info in infos:
        train = info.config.get("train", {})
        rows.append(
            {
                "run": info.id,
                "model": info.model,
                "dataset": dataset_name(info.data),
                "state": info.state,
                "epochs": f"{info.epochs_done}/{info.epochs}",
                "best_val_accuracy": info.best_val_accuracy,
                "test_accuracy": info.test_accuracy,
                "augment": bool(train.get("augment")),
                "dropout": train.get("dropout"),
                "batch_size": train.get("batch_size"),
                "learning_rate": train.get("learning_rate"),
                "image_size": train.get("image_size"),
                "created": info.created.replace("T", " "),
                **({"example": info.example} if examples else {}),
            }
        )
    return rows


def finished_runs(infos: Sequence[RunInfo]) -> list[RunInfo]:
    """Runs that finished (completed or stopped by the user) with at least one epoch."""
    return [i for i in infos if i.state in ("completed", "stopped") and i.epochs_done > 0]


def best_run(infos: Sequence[RunInfo]) -> RunInfo | None:
    """The run with the highest best validation accuracy (None if no run has one)."""
    scored = [i for i in infos if i.best_val_accuracy is not None]
    return max(scored, key=lambda i: (i.best_val_accuracy, i.id)) if scored else None


def story_runs(infos: Sequence[RunInfo], limit: int = 2) -> list[str]:
    """Run ids to compare by default: the newest finished run of each model, newest first.

    With a seed-baseline and a seed-dropout run this is the seed's story (72% → 82%).

    Args:
        infos: runs, newest first (as :func:`catdog.train.runs.list_runs` returns them).
        limit: at most this many runs.
    """
    chosen: dict[str, str] = {}
    for info in finished_runs(infos) or list(infos):
        chosen.setdefault(info.model, info.id)
    return list(chosen.values())[:limit]


def resumable_runs(infos: Sequence[RunInfo], limit: int = 5) -> list[RunInfo]:
    """Runs that were interrupted, stopped or failed and can go on, at most ``limit`` of them
    (in the order given: newest first from :func:`catdog.train.runs.list_runs`)."""
    return [info for info in infos if can_resume(info)][:limit]


def run_label(info: RunInfo) -> str:
    """A run as a run picker names it: ``seed-baseline-3fa2 (completed, best val 72.0%)``,
    with ``shared example`` first when it is one."""
    best = f", best val {info.best_val_accuracy:.1%}" if info.best_val_accuracy is not None else ""
    example = "shared example, " if info.example else ""
    return f"{short_id(info.id)} ({example}{info.state}{best})"


def run_note(info: RunInfo, history: Sequence[Mapping[str, float]]) -> str:
    """One sentence under a run's curves: its best validation accuracy and where overfitting
    starts (``history`` is the run's per-epoch rows)."""
    onset = overfitting_onset(history)
    best = (
        f"best validation accuracy {info.best_val_accuracy:.1%}"
        if info.best_val_accuracy is not None
        else "no validation yet"
    )
    where = (
        f"validation loss bottoms out at epoch {onset}"
        if onset
        else "validation loss still falling (no overfitting yet)"
    )
    return f"{best}; {where}"


def distribution_line(info: RunInfo) -> str | None:
    """Where a run trained, in a sentence: ``Trained with mirrored: 2 replicas (on /GPU:0,
    /GPU:1), global batch 64, learning rate ×2.``, and the epochs after which a cluster
    continued from its backup; None for a run recorded before catdog recorded it."""
    record = info.config.get("distribution")
    if not isinstance(record, dict):
        return None
    batch = (info.config.get("train") or {}).get("batch_size")
    line = f"Trained with {describe(record, batch if isinstance(batch, int) else None)}"
    restored = [e for e in record.get("restored_after_epochs") or [] if isinstance(e, int)]
    if restored:
        epochs = ", ".join(str(e) for e in restored)
        line += f"; a worker was lost and the run continued from its backup after epoch {epochs}"
    return line + "."


def start_line(info: RunInfo) -> str | None:
    """What the run said as its first epoch began (in memory or streamed, devices, feature
    cache, a resume without mixup), as a sentence; None for a run recorded before catdog kept
    it, or one that never started."""
    message = info.config.get("start_message")
    if not isinstance(message, str) or not message:
        return None
    return f"Started: {message}."


def stopped_line(info: RunInfo) -> str:
    """How far an unfinished run got: ``stopped after 4 of 30 epochs``."""
    return f"{info.state} after {info.epochs_done} of {info.epochs} epochs"


def best_run_line(info: RunInfo) -> str:
    """The best run in one line: ``r1 (seed-dropout) — validation 82.0%, test 80.1%``."""
    test = f", test {info.test_accuracy:.1%}" if info.test_accuracy is not None else ""
    return f"{info.id} ({info.model}) — validation {info.best_val_accuracy:.1%}{test}"
