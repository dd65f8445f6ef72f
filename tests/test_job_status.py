"""catdog.job_status: a training job's progress, numbers and queue place in words."""

from __future__ import annotations

import pytest
from test_history import OVERFITTING

from catdog.job_snapshot import JobSnapshot, JobState, fold_event
from catdog.job_status import (
    batch_progress,
    best_so_far_line,
    capacity_line,
    epoch_progress,
    job_line,
    job_metrics,
    loading_progress,
    outcome_line,
    progress_bars,
    queue_place,
    run_notes,
)
from catdog.train.events import EventKind, ProgressEvent


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

    assert progress_bars(snap) == [epoch_progress(snap), batch_progress(snap)]
    assert progress_bars(done) == [(1.0, "4 of 4 epochs done")]


def test_loading_progress_only_while_loading() -> None:
    loading = JobSnapshot(run_id="r", state="loading", loading_done=1500, loading_total=2000)
    assert loading_progress(loading) == (0.75, "Loading images: 1,500/2,000")
    assert loading_progress(JobSnapshot(run_id="r", state="loading")) is None
    assert loading_progress(JobSnapshot(run_id="r", state="running", loading_total=9)) is None
    computing = JobSnapshot(run_id="r", state="features", loading_done=30, loading_total=120)
    assert loading_progress(computing) == (0.25, "Computing features: 30/120")
    assert job_line(computing) == "Computing the frozen base's features (once: no augmentation)"
    assert progress_bars(loading) == [
        (0.75, "Loading images: 1,500/2,000"),
        (0.0, "Epoch 1 of ? (0 done)"),
    ]


def test_job_metrics_and_outcome() -> None:
    snap = JobSnapshot(
        run_id="r1",
        state="completed",
        epochs=4,
        seconds=1234.4,
        history=OVERFITTING[:4],
        metrics={"test_accuracy": 0.705},
    )
    assert job_metrics(snap) == [
        ("Elapsed", "1,234 s"),
        ("Best validation accuracy", "72.0%"),
        ("Last validation loss", "0.600"),
        ("Test accuracy", "70.5%"),
    ]
    assert outcome_line(snap) == "Run r1 completed after 4 epoch(s)."
    starting = JobSnapshot(run_id="r2", state="starting")
    assert [value for _, value in job_metrics(starting)] == ["0 s", "–", "–", "–"]


def test_queue_in_words() -> None:
    assert queue_place(2, 150.0) == "number 2 in the queue, so it should start in about 2 min"
    assert queue_place(1, 5.0) == "number 1 in the queue, so it should start in about 1 min"
    assert queue_place(3, None) == "number 3 in the queue"
    assert capacity_line(1, 1, 2) == (
        "This server trains 1 run(s) at a time (now 1 training, 2 waiting); a new run waits "
        "for its turn in the queue."
    )


def test_the_first_model_is_offered_once_an_epoch_is_saved() -> None:
    rows = [{"epoch": 1, "val_accuracy": 0.6875}, {"epoch": 2, "val_accuracy": 0.625}]
    assert best_so_far_line(JobSnapshot(run_id="r", state="running")) is None
    assert best_so_far_line(JobSnapshot(run_id="r", state="running", history=rows[:1])) == (
        "A first model is ready: 68.8% validation accuracy (the best of 1 epoch so far); "
        "training goes on and keeps the best."
    )
    assert "(the best of 2 epochs so far)" in best_so_far_line(
        JobSnapshot(run_id="r", state="running", history=rows)
    )
    assert best_so_far_line(JobSnapshot(run_id="r", state="completed", history=rows)) is None


def test_each_event_is_shown_with_its_own_words() -> None:
    """The input-size decision is not "timing", and the start message reaches the page."""
    snap = JobSnapshot(run_id="r", state=JobState.STARTING)
    steps = [
        (EventKind.PRECISION, "timing float32 and bfloat16 (once)", JobState.TIMING),
        (EventKind.PRECISION, "precision float32: bfloat16 was not faster", JobState.TIMING),
        (EventKind.IMAGE_SIZE, "input size 96 px: about 60 epochs of 112 px fit", JobState.TIMING),
        (EventKind.LOADING, "", JobState.LOADING),
        (EventKind.START, "16 train / 8 validation images; in memory; 1 device", JobState.RUNNING),
    ]
    for kind, message, state in steps:
        fold_event(snap, ProgressEvent(kind=kind, run_id="r", message=message, epochs=4))
        assert snap.state == state, kind
    assert job_line(snap).startswith("Training")
    assert run_notes(snap) == [
        "Precision float32: bfloat16 was not faster",
        "Input size 96 px: about 60 epochs of 112 px fit",
        "16 train / 8 validation images; in memory; 1 device",
    ]
    fold_event(snap, ProgressEvent(kind=EventKind.END, run_id="r", state="completed"))
    assert snap.state is JobState.COMPLETED
