"""Reading training histories: where overfitting starts, tables of runs, and the seed's curves.

The seed judges a run by two figures, training vs validation accuracy and loss per epoch, and
reads overfitting off them: validation loss bottoms out while training loss keeps falling.
:func:`overfitting_onset` finds that epoch; :func:`curves_figure` draws the figures (one run,
or several overlaid to compare them); :func:`runs_table` and :func:`story_runs` pick and
summarise runs. Plain Python: no TensorFlow, no Streamlit (Plotly is imported when drawing).
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from catdog.train.runs import RunInfo

if TYPE_CHECKING:
    import plotly.graph_objects as go

    from catdog.train.jobs import JobSnapshot

# Run colours for overlaid curves: one hue per run, train dotted and validation solid.
PALETTE = ("#1f77b4", "#e4572e", "#2ca02c", "#9467bd", "#8c564b", "#17becf", "#bcbd22")

METRIC_TITLES = {"accuracy": "Accuracy", "loss": "Loss"}


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


def short_id(run_id: str) -> str:
    """A run id without its date and time stamp, for legends: ``seed-baseline-3fa2``."""
    return re.sub(r"^\d{8}-\d{6}-", "", run_id)


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


def fine_tuning_start(history: Sequence[Mapping[str, float]]) -> int | None:
    """The first fine-tuning epoch of a pretrained model's run (``phase`` 2), or None."""
    return next((int(r["epoch"]) for r in history if r.get("phase") == 2), None)


def curves_figure(
    histories: Mapping[str, Sequence[Mapping[str, float]]],
    metric: str = "accuracy",
    *,
    batch_points: Sequence[Mapping[str, float]] | None = None,
    mark_onset: bool = True,
    height: int = 360,
) -> go.Figure:
    """The seed's figure for ``metric``: training (dots) vs validation (line) per epoch.

    Args:
        histories: ``{label: per-epoch rows}``; several labels overlay runs, one colour each.
        metric: ``"accuracy"`` or ``"loss"``.
        batch_points: running per-batch values (``x`` = fractional epoch) to draw as a thin
            line under the first run's curves, as during training.
        mark_onset: draw a vertical line where each run's validation loss bottoms out,
            annotated "overfitting starts".
        height: figure height in pixels.

    Returns:
        A Plotly figure with labelled axes.
    """
    import plotly.graph_objects as go

    title = METRIC_TITLES.get(metric, metric)
    fig = go.Figure()
    single = len(histories) == 1
    last = max((int(r["epoch"]) for rows in histories.values() for r in rows), default=1)
    for k, (label, rows) in enumerate(histories.items()):
        colour = PALETTE[k % len(PALETTE)]
        name = "" if single else f"{label}: "
        if batch_points and k == 0:
            fig.add_scatter(
                x=[p["x"] for p in batch_points if metric in p],
                y=[p[metric] for p in batch_points if metric in p],
                mode="lines",
                name=f"{name}training (per batch)",
                line={"color": colour, "width": 1},
                opacity=0.35,
            )
        for key, mode, style in (
            (metric, "markers", {"marker": {"color": colour, "size": 7}}),
            (
                f"val_{metric}",
                "lines+markers",
                {"line": {"color": colour, "width": 2.5}, "marker": {"size": 5}},
            ),
        ):
            points = [(r["epoch"], r[key]) for r in rows if r.get(key) is not None]
            fig.add_scatter(
                x=[p[0] for p in points],
                y=[p[1] for p in points],
                mode=mode,
                name=f"{name}{'validation' if key.startswith('val_') else 'training'}",
                **style,
            )
        tuning = fine_tuning_start(rows)
        if tuning is not None:  # where a pretrained model's base starts to train too
            fig.add_vline(x=tuning - 0.5, line={"color": colour, "dash": "dot", "width": 1.5})
            fig.add_annotation(x=tuning - 0.5, y=0.02 + 0.08 * k, yref="paper", yanchor="bottom",
                               showarrow=False, text=f"fine-tuning from epoch {tuning}",
                               font={"color": colour, "size": 12}, xanchor="left", xshift=4,
                               bgcolor="rgba(255,255,255,0.8)")  # fmt: skip
        onset = overfitting_onset(rows) if mark_onset else None
        if onset is not None:
            fig.add_vline(x=onset, line={"color": colour, "dash": "dash", "width": 1.5})
            late = onset > (1 + last) / 2  # write towards the middle, never off the plot
            fig.add_annotation(
                x=onset,
                y=1 - 0.08 * k,
                yref="paper",
                yanchor="top",
                showarrow=False,
                text=f"overfitting starts (epoch {onset})",
                font={"color": colour, "size": 12},
                bgcolor="rgba(255,255,255,0.8)",
                xanchor="right" if late else "left",
                xshift=-4 if late else 4,
            )
    fig.update_layout(
        title={"text": f"Training and validation {title.lower()}", "x": 0, "xanchor": "left"},
        height=height,
        margin={"l": 10, "r": 10, "t": 60, "b": 10},
        legend={"orientation": "h", "yanchor": "top", "y": -0.2, "x": 0},
        hovermode="x unified",
    )
    fig.update_xaxes(
        title_text="Epoch", tick0=0 if batch_points else 1, dtick=max(1, math.ceil(last / 10))
    )
    fig.update_yaxes(title_text=title, tickformat=".0%" if metric == "accuracy" else None)
    return fig


# ---------------------------------------------------------------------------------------------
# A training job in progress (a catdog.train.jobs.JobSnapshot), in words

STATE_LABELS = {
    "queued": "Waiting in the training queue",
    "cancelled": "Cancelled in the queue",
    "starting": "Starting",
    "timing": "Timing float32 and bfloat16 on this machine (once)",
    "loading": "Loading images",
    "running": "Training",
    "evaluating": "Evaluating on the test split",
    "completed": "Completed",
    "stopped": "Stopped",
    "failed": "Failed",
}


def job_line(snap: JobSnapshot) -> str:
    """One line about a job: ``Training — epoch 3 of 30`` or ``Completed — 30 of 30 epochs``."""
    state = STATE_LABELS.get(snap.state, snap.state)
    total = snap.epochs or "?"
    if snap.finished:
        return f"{state} — {len(snap.history)} of {total} epochs"
    if snap.state in ("running", "evaluating"):
        return f"{state} — epoch {min(max(snap.epoch, 1), snap.epochs or snap.epoch)} of {total}"
    return state


def epoch_progress(snap: JobSnapshot) -> tuple[float, str]:
    """Fraction of the run done (epochs and batches) and a label for a progress bar."""
    done = len(snap.history)
    if snap.finished:
        return done / max(snap.epochs, 1), f"{done} of {snap.epochs or '?'} epochs done"
    current = min(max(snap.epoch, 1), snap.epochs or 1)
    return snap.fraction, f"Epoch {current} of {snap.epochs or '?'} ({done} done)"


def batch_progress(snap: JobSnapshot) -> tuple[float, str] | None:
    """Fraction of the current epoch's batches done and a label with the running loss and
    accuracy; None when no epoch is under way."""
    if snap.finished or not snap.steps or snap.state != "running":
        return None
    logs = snap.batch_logs
    detail = ""
    if "loss" in logs and "accuracy" in logs:
        detail = f" · loss {logs['loss']:.3f} · accuracy {logs['accuracy']:.1%}"
    return min(snap.step / snap.steps, 1.0), f"Batch {snap.step} of {snap.steps}{detail}"
