"""The command line, driven in-process: outputs scripts rely on, exit codes, clear errors."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import damaged_runs
import numpy as np
import pytest
from PIL import Image

from catdog.cli import main

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def trained_run(tiny_dataset: Path, capsys: pytest.CaptureFixture[str]) -> str:
    """Train a 1-epoch run through the CLI and return its id (the last line of stdout)."""
    code = main(
        [
            "train",
            "--data",
            str(tiny_dataset),
            "--epochs",
            "1",
            "--image-size",
            "48",
            "--batch-size",
            "8",
            "--precision",
            "float32",
        ]
    )
    out = capsys.readouterr()
    assert code == 0, out.err
    run_id = out.out.strip().splitlines()[-1]
    assert out.out.strip() == run_id  # stdout holds the run id alone
    assert "epoch   1/1" in out.err
    assert "probabilities calibrated (temperature " in out.err  # and when to say "not sure"
    return run_id


def test_train_then_runs_evaluate_predict(
    trained_run: str, tiny_dataset: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["runs"]) == 0
    listing = capsys.readouterr().out
    assert trained_run in listing and "completed" in listing and "1/1" in listing

    assert main(["evaluate", trained_run, "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["classes"] == ["cats", "dogs"] and report["count"] == 16
    assert sum(map(sum, report["confusion_matrix"])) == 16
    assert main(["evaluate", trained_run, "--tta", "--tta-zoom", "1.1", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["count"] == 16  # other test-time views
    assert main(["evaluate", trained_run, "--tta-zoom", "5"]) == 2
    assert "test-time zoom must be 0 (off) or between 1 and 2, got 5" in capsys.readouterr().err

    good = tmp_path / "photo.png"
    Image.fromarray(np.full((60, 80, 4), 200, np.uint8), "RGBA").save(good)
    bad = tmp_path / "notes.jpg"
    bad.write_text("not a photo")
    code = main(["predict", trained_run, str(good), str(bad), "--json"])
    out = capsys.readouterr()
    assert code == 1  # something failed, and the exit code says so
    lines = [json.loads(line) for line in out.out.splitlines()]
    assert lines[0]["file"] == str(good) and lines[0]["label"] in ("cats", "dogs")
    assert sum(lines[0]["probabilities"].values()) == pytest.approx(1.0)
    assert "notes.jpg" in lines[1]["error"]
    assert f"error: {bad} is not an image (got 11 bytes of text)" in out.err

    assert main(["predict", trained_run, str(good)]) == 0
    assert capsys.readouterr().out.startswith(f"{good}: ")

    maps = tmp_path / "maps"
    for _ in range(2):  # the second time writes new files beside the first
        assert main(["predict", trained_run, str(good), "--heatmaps", str(maps), "--json"]) == 0
    first, second = (json.loads(line)["heatmap"] for line in capsys.readouterr().out.splitlines())
    assert (first, second) == (str(maps / "photo.heatmap.png"), str(maps / "photo.heatmap-2.png"))
    assert Image.open(first).size == (80, 60)  # the photo's own size
    assert main(["predict", trained_run, str(good), "--heatmaps", str(good)]) == 2
    assert f"--heatmaps {good} exists and is not a folder" in capsys.readouterr().err


def test_models_lists_the_seed_parameter_count(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["models"]) == 0
    out = capsys.readouterr().out
    assert "seed-baseline" in out and "3,453,121" in out and "150×150" in out


def test_import_prints_a_summary(
    tiny_dataset: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out_dir = tmp_path / "imported"
    assert main(["import", str(tiny_dataset), "--out", str(out_dir)]) == 0
    summary = capsys.readouterr().out
    assert "train" in summary and "cats" in summary
    assert len(list((out_dir / "train" / "cats").iterdir())) == 16


def test_errors_are_one_clear_line_with_exit_code_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["train", "--data", str(tmp_path / "missing")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: dataset") and "missing" in err and "Traceback" not in err
    assert main(["evaluate", "no-such-run"]) == 2
    assert "no run 'no-such-run'" in capsys.readouterr().err
    assert main(["train", "--data", str(tmp_path), "--model", "nope"]) == 2
    assert "unknown model 'nope'" in capsys.readouterr().err
    assert main(["train", "--data", str(tmp_path), "--minutes", "-1"]) == 2
    assert "the time limit must be a number of minutes ≥ 0" in capsys.readouterr().err
    assert main(["train", "--data", str(tmp_path), "--weight-decay", "-1"]) == 2
    assert "weight decay must be in [0, 1), got -1.0" in capsys.readouterr().err


def test_help_starts_without_tensorflow() -> None:
    code = (
        "import sys; from catdog.cli import main\n"
        "try:\n    main(['--help'])\nexcept SystemExit:\n    pass\n"
        "print('tensorflow' in sys.modules)"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=True
    )
    assert out.stdout.strip().endswith("False")


def test_runs_lists_damaged_folders_with_the_reason(
    trained_run: str, capsys: pytest.CaptureFixture[str]
) -> None:
    damaged = damaged_runs.all_damaged()  # {run id: the reason it must show}
    assert main(["runs"]) == 0
    lines = {line.split()[0]: line for line in capsys.readouterr().out.splitlines()[1:]}
    assert set(lines) == {trained_run, *damaged}
    for run_id, reason in damaged.items():
        assert lines[run_id].split(None, 1)[1].startswith(f"damaged: {reason}"), run_id
    assert lines[trained_run].endswith(" completed")

    assert main(["runs", "--json"]) == 0
    listed = {r["id"]: r for r in map(json.loads, capsys.readouterr().out.splitlines())}
    assert {i: r["state"] for i, r in listed.items() if i != trained_run} == dict.fromkeys(
        damaged, "damaged"
    )
    assert all(reason in listed[i]["error"] for i, reason in damaged.items())

    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}  # a real process, as a user runs it
    out = subprocess.run([sys.executable, "-m", "catdog", "runs"], cwd=ROOT, env=env,
                         capture_output=True, text=True, timeout=120)  # fmt: skip
    assert out.returncode == 0 and out.stderr == ""
    assert sum(" damaged: " in line for line in out.stdout.splitlines()) == len(damaged)

    assert main(["evaluate", trained_run, "--json"]) == 0  # the good run is still usable
    assert json.loads(capsys.readouterr().out)["count"] == 16
    for command in (
        ["evaluate", "damaged-epochs-a-str"],
        ["train", "--resume", "damaged-epochs-a-str"],
    ):
        assert main(command) == 2
        err = capsys.readouterr().err
        assert err.startswith("error: run damaged-epochs-a-str is damaged: config.json: "), err


def test_train_flags_are_the_training_settings(tmp_path: Path) -> None:
    """Every setting of TrainConfig (but the dashboard's augmentation sliders) has its flag,
    and the parsed flags build the config they spell."""
    from catdog.cli import build_parser, train_config
    from catdog.train.config import TrainConfig

    parser = build_parser()
    argv = ["train", "--data", str(tmp_path), "--model", "catdog-net", "--epochs", "3",
            "--batch-size", "4", "--learning-rate", "0.01", "--image-size", "64", "--no-augment",
            "--dropout", "0.2", "--steps-per-epoch", "5", "--early-stopping", "2",
            "--lr-schedule", "cosine", "--warmup-epochs", "1", "--label-smoothing", "0.1",
            "--weight-decay", "0.01", "--precision", "bfloat16", "--tta", "--tta-zoom", "1.1",
            "--minutes", "2.5", "--seed", "7", "--no-test"]  # fmt: skip
    assert train_config(parser.parse_args(argv)) == TrainConfig(
        data=str(tmp_path), model="catdog-net", epochs=3, batch_size=4, learning_rate=0.01,
        image_size=64, augment=False, dropout=0.2, steps_per_epoch=5, early_stopping=2,
        lr_schedule="cosine", warmup_epochs=1, label_smoothing=0.1, weight_decay=0.01,
        precision="bfloat16", tta=True, tta_zoom=1.1, time_limit_minutes=2.5, seed=7, test=False,
    )  # fmt: skip
    pretrained = ["train", "--data", str(tmp_path), "--model", "vgg16", "--weights", "w.h5",
                  "--fine-tune-epochs", "4", "--fine-tune-lr", "1e-6",
                  "--fine-tune-from", "block4_conv1"]  # fmt: skip
    assert train_config(parser.parse_args(pretrained)) == TrainConfig(
        data=str(tmp_path), model="vgg16", weights="w.h5", fine_tune_epochs=4, fine_tune_lr=1e-6,
        fine_tune_from="block4_conv1",
    )  # fmt: skip
    assert train_config(parser.parse_args(["train", "--data", str(tmp_path)])) == TrainConfig(
        data=str(tmp_path)
    )
    for flag, precision in (("--mixed-precision", "bfloat16"), ("--no-mixed-precision", "float32")):
        args = parser.parse_args(["train", "--data", str(tmp_path), flag])  # the older spelling
        assert train_config(args).precision == precision
