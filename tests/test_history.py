"""catdog.train.history: overfitting onset, the start of fine-tuning, run tables and choices,
runs in words."""

from __future__ import annotations

from pathlib import Path

import pytest

from catdog.train.history import (
    best_epoch,
    best_run,
    best_run_line,
    fine_tuning_start,
    overfitting_onset,
    resumable_runs,
    run_label,
    run_note,
    runs_table,
    short_id,
    start_line,
    stopped_line,
    story_runs,
)
from catdog.train.runs import LAST_MODEL, RunInfo

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
# A pretrained model's run: the head alone on the frozen base, then fine-tuning from epoch 4.
TWO_PHASES = [
    {"epoch": e, "accuracy": 0.5, "val_accuracy": 0.5, "phase": 1 + (e > 3)} for e in range(1, 6)
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


def test_fine_tuning_starts_at_the_first_epoch_of_phase_2() -> None:
    assert fine_tuning_start(TWO_PHASES) == 4
    without = [{k: v for k, v in r.items() if k != "phase"} for r in TWO_PHASES]
    assert fine_tuning_start(without) is None  # a model that starts from random weights


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


def test_short_id_drops_the_time_stamp() -> None:
    assert short_id("20261128-071502-seed-baseline-3fa2") == "seed-baseline-3fa2"
    assert short_id("my-run") == "my-run"


def test_runs_in_words() -> None:
    run = _run("20261128-071502-seed-dropout-3fa2", "seed-dropout", best=0.82)
    assert run_label(run) == "seed-dropout-3fa2 (completed, best val 82.0%)"
    run.example = True
    assert run_label(run) == "seed-dropout-3fa2 (shared example, completed, best val 82.0%)"
    assert run_label(_run("r", "seed-baseline", state="failed", best=None)) == "r (failed)"
    assert run_note(run, OVERFITTING) == (
        "best validation accuracy 82.0%; validation loss bottoms out at epoch 3"
    )
    assert run_note(_run("r", "seed-baseline", best=None), STILL_LEARNING) == (
        "no validation yet; validation loss still falling (no overfitting yet)"
    )
    assert stopped_line(_run("r", "seed-baseline", state="stopped")) == (
        "stopped after 5 of 30 epochs"
    )
    best = _run("r1", "seed-dropout", best=0.82)
    assert best_run_line(best) == "r1 (seed-dropout) — validation 82.0%"
    best.test_accuracy = 0.801
    assert best_run_line(best) == "r1 (seed-dropout) — validation 82.0%, test 80.1%"


def test_resumable_runs_are_the_unfinished_ones_that_can_go_on(tmp_path: Path) -> None:
    def saved(run: RunInfo) -> RunInfo:
        run.path = tmp_path / run.id
        run.path.mkdir()
        (run.path / LAST_MODEL).write_bytes(b"PK")  # not empty: an empty model cannot resume
        return run

    lost = _run("r1", "seed-baseline", state="stopped")  # its folder holds no model
    finished = saved(_run("r2", "seed-baseline"))
    stopped = [saved(_run(f"s{k}", "seed-baseline", state="stopped")) for k in range(3)]
    assert resumable_runs([lost, finished, *stopped]) == stopped
    assert resumable_runs(stopped, limit=2) == stopped[:2]


def test_the_start_message_is_shown_with_the_run() -> None:
    info = RunInfo(
        id="r", path=Path("/x/r"), model="seed-baseline", data="/d", state="completed",
        epochs_done=1, epochs=1, best_val_accuracy=None, test_accuracy=None, created="",
        config={"train": {}, "start_message": "16 train / 8 validation images; streamed"},
    )  # fmt: skip
    assert start_line(info) == "Started: 16 train / 8 validation images; streamed."
    info.config.pop("start_message")
    assert start_line(info) is None  # a run recorded before catdog kept it
