"""Shared helpers of the benchmark scripts: the machine a number came from, and one results
row per finished training run (computed from its folder, so any run can be summarised again)."""

from __future__ import annotations

import os
import platform
from pathlib import Path


def machine() -> dict[str, str]:
    """CPU model, core count and library versions, for the results table."""
    cpu = platform.processor() or "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    import keras
    import tensorflow as tf

    return {
        "cpu": cpu,
        "cores": str(os.cpu_count()),
        "python": platform.python_version(),
        "tensorflow": tf.__version__,
        "keras": keras.__version__,
    }


def summarize(run_path: Path) -> dict:
    """One results row, computed from a run folder's files (so any finished run can be
    summarised again later)."""
    from catdog import runs

    config = runs.read_json(run_path / runs.CONFIG_FILE)["train"]
    metrics = runs.read_json(run_path / runs.METRICS_FILE)
    history = runs.read_history(run_path)
    val = [row["val_accuracy"] for row in history]
    reached = next((row for row in history if row["val_accuracy"] >= 0.82), None)
    images = sum(row["images"] for row in history)
    train_seconds = sum(row["train_seconds"] for row in history)
    wall = sum(row["seconds"] for row in history)
    return {
        "model": config["model"],
        "run_id": run_path.name,
        "epochs": len(history),
        "batch_size": config["batch_size"],
        "image_size": config["image_size"],
        "augment": bool(config["augment"]),
        "best_val_accuracy": max(val),
        "best_epoch": val.index(max(val)) + 1,
        "final_val_accuracy": val[-1],
        "test_accuracy": metrics.get("test_accuracy"),
        "wall_minutes": round(wall / 60, 1),
        "seconds_per_epoch": round(wall / len(history), 1),
        "train_images_per_second": round(images / train_seconds, 1),
        "first_epoch_at_82": reached["epoch"] if reached else None,
        "minutes_to_82": round(sum(r["seconds"] for r in history[: reached["epoch"]]) / 60, 1)
        if reached
        else None,
        "seed": config["seed"],
    }
