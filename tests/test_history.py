"""catdog.train.history: overfitting onset, run tables, figures, job progress in words."""

from __future__ import annotations

from pathlib import Path

import pytest

from catdog.train.history import (
    batch_progress,
    best_epoch,
    best_run,
    curves_figure,
    epoch_progress,
    job_line,
    overfitting_onset,
    runs_table,
    short_id,
    story_runs,
)
from catdog.train.jobs import JobSnapshot
from catdog.train.runs import RunInfo

# The seed's baseline in miniature: validation loss bottoms out at epoch 3, then rises.
OVERFITTING = [
    {"epoch": 1, "loss": 0.69, "accuracy": 0.52, "val_loss": 0.68, "val_accuracy": 0.55},
    {"epoch": 2, "loss": 0.60, "accuracy": 0.66, "val_loss": 0.62, "val_accuracy": 0.65},
    {"epoch": 3, "loss": 0.48, "accuracy": 0.77, "val_loss": 0.57, "val_accuracy": 0.71},
    {"epoch": 4, "loss": 0.30, "accuracy": 0.88, "val_loss": 0.60, "val_accuracy": 0.72},
    {"epoch": 5, "loss": 0.15, "accuracy": 0.95, "val_loss": 0.74, "val_accuracy": 0.70},
]
STILL_LEARNING = [
    {"epoch": 1, "loss": 0.69, "accuracy": 0.50, "val_loss": 0.68, "val_accuracy": 0.56},
    {"epoch": 2, "loss": 0.63, "accuracy": 0.63, "val_loss": 0.61, "val_accuracy": 0.66},
]


def _run(run_id: str, model: str, state: str = "completed", best: float | None = 0.7) -> RunInfo:
    train = {
        "data": "/x/datasets/demo",
        "augment": model == "seed-dropout",
        "dropout": 0.5,
        "batch_size": 20,
        "learning_rate": 1e-4,
        "image_size": 150,
    }
    return RunInfo(
        id=run_id,
        path=Path("/x") / run_id,
        model=model,
        data=train["data"],
        state=state,
        epochs_done=5,
        epochs=30,
        best_val_accuracy=best,
        test_accuracy=None,
        created="2026-11-28T07:00:00",
        classes=["cats", "dogs"],
        config={"train": train},
    )


def test_overfitting_onset_is_where_validation_loss_bottoms_out() -> None:
    assert best_epoch(OVERFITTING, "val_loss") == 3
    assert best_epoch(OVERFITTING, "val_accuracy") == 4
    assert overfitting_onset(OVERFITTING) == 3


def test_no_onset_while_validation_loss_still_falls() -> None:
    assert overfitting_onset(STILL_LEARNING) is None
    assert overfitting_onset(OVERFITTING[:1]) is None
    assert overfitting_onset([]) is None
    assert best_epoch([{"epoch": 1, "loss": 0.5}], "val_loss") is None


def test_no_onset_for_noise_around_a_plateau() -> None:
    # Like seed-dropout late in training: the minimum is recent and later epochs only wobble.
    losses = [0.69, 0.5, 0.4, 0.36, 0.34, 0.33, 0.32, 0.34, 0.33, 0.35]
    rows = [{"epoch": e, "val_loss": v} for e, v in enumerate(losses, start=1)]
    assert overfitting_onset(rows) is None
    rows.append({"epoch": 11, "val_loss": 0.45})  # now it clearly climbs
    rows.append({"epoch": 12, "val_loss": 0.5})
    assert overfitting_onset(rows) == 7


def test_onset_ties_go_to_the_earliest_epoch() -> None:
    rows = [{"epoch": e, "val_loss": v} for e, v in enumerate([0.6, 0.5, 0.5, 0.7], start=1)]
    assert overfitting_onset(rows) == 2


def test_runs_table_rows_hold_settings_and_results() -> None:
    (row,) = runs_table([_run("r1", "seed-dropout", best=0.82)])
    assert row["run"] == "r1"
    assert row["dataset"] == "demo"
    assert row["epochs"] == "5/30"
    assert row["best_val_accuracy"] == pytest.approx(0.82)
    assert row["augment"] is True
    assert row["created"] == "2026-11-28 07:00:00"


def test_story_runs_pick_the_newest_finished_run_of_each_model() -> None:
    runs = [  # newest first, as list_runs() returns them
        _run("r4", "seed-dropout", state="running"),
        _run("r3", "seed-dropout"),
        _run("r2", "seed-baseline"),
        _run("r1", "seed-baseline"),
    ]
    assert story_runs(runs) == ["r3", "r2"]
    assert story_runs(runs, limit=1) == ["r3"]
    assert story_runs([_run("r9", "seed-baseline", state="failed")]) == ["r9"]


def test_best_run_has_the_highest_validation_accuracy() -> None:
    runs = [
        _run("a", "seed-baseline", best=0.72),
        _run("b", "seed-dropout", best=0.82),
        _run("c", "seed-dropout", best=None),
    ]
    assert best_run(runs).id == "b"
    assert best_run([_run("c", "seed-dropout", best=None)]) is None


def test_curves_figure_draws_the_seeds_figure_with_the_onset_marked() -> None:
    fig = curves_figure({"baseline": OVERFITTING}, "loss")
    names = [trace.name for trace in fig.data]
    assert names == ["training", "validation"]
    assert list(fig.data[1].y) == [r["val_loss"] for r in OVERFITTING]
    assert fig.layout.xaxis.title.text == "Epoch"
    assert fig.layout.yaxis.title.text == "Loss"
    assert [shape.x0 for shape in fig.layout.shapes] == [3]
    assert "overfitting starts" in fig.layout.annotations[0].text


def test_curves_figure_overlays_runs_and_batch_points() -> None:
    points = [{"x": 0.5, "loss": 0.7, "accuracy": 0.5}, {"x": 1.0, "loss": 0.6, "accuracy": 0.6}]
    fig = curves_figure({"a": OVERFITTING, "b": STILL_LEARNING}, "accuracy", batch_points=points)
    names = [trace.name for trace in fig.data]
    assert names == [
        "a: training (per batch)",
        "a: training",
        "a: validation",
        "b: training",
        "b: validation",
    ]
    assert fig.layout.yaxis.tickformat == ".0%"
    assert len(fig.layout.shapes) == 1  # only run a shows overfitting


def test_job_progress_in_words() -> None:
    snap = JobSnapshot(
        run_id="r",
        state="running",
        epoch=2,
        epochs=4,
        step=5,
        steps=10,
        batch_logs={"loss": 0.5, "accuracy": 0.75},
        history=OVERFITTING[:1],
    )
    assert job_line(snap) == "Training — epoch 2 of 4"
    fraction, text = epoch_progress(snap)
    assert fraction == pytest.approx(1.5 / 4)
    assert text == "Epoch 2 of 4 (1 done)"
    assert batch_progress(snap) == (0.5, "Batch 5 of 10 · loss 0.500 · accuracy 75.0%")

    done = JobSnapshot(run_id="r", state="completed", epoch=5, epochs=4, history=OVERFITTING[:4])
    assert job_line(done) == "Completed — 4 of 4 epochs"
    assert epoch_progress(done) == (1.0, "4 of 4 epochs done")
    assert batch_progress(done) is None
    assert job_line(JobSnapshot(run_id="r", state="loading")) == "Loading images"


def test_short_id_drops_the_time_stamp() -> None:
    assert short_id("20261128-071502-seed-baseline-3fa2") == "seed-baseline-3fa2"
    assert short_id("my-run") == "my-run"
