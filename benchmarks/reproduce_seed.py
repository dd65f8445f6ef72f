"""Reproduce the seed's two results on the real photos, with catdog's own training runs.

    python benchmarks/reproduce_seed.py                    # both models (about 1 hour on 2 cores)
    python benchmarks/reproduce_seed.py --only seed-baseline

Trains on ``../shared/data/cats_vs_dogs_small`` (the seed's exact 2000/1000/1000 split):

- ``seed-baseline``: 30 epochs, batch 20, no augmentation (the seed: ≈72% validation);
- ``seed-dropout``: 100 epochs of 100 batches of 32, the seed's augmentation (≈82%).

Writes ``benchmarks/results/reproduce_seed.{json,md}`` (one row per model: best and final
validation accuracy, test accuracy of the best model, wall time, training images/second, the
machine and library versions). Rows of models not re-run are kept from the previous file.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from common import (
    DATA,
    RESULTS,
    machine,
    machine_line,
    merge_rows,
    summarize,
    train_logged,
)

# The seed's two recipes (Deep Learning with Python §5.2), as catdog training configs.
RECIPES = {
    "seed-baseline": {"epochs": 30, "batch_size": 20, "augment": False},
    "seed-dropout": {"epochs": 100, "batch_size": 32, "steps_per_epoch": 100, "augment": True},
}


def run(model: str, seed: int) -> Path:
    """Train one recipe; returns the run folder."""
    return train_logged(model, model=model, seed=seed, **RECIPES[model])


def markdown(rows: list[dict], info: dict[str, str]) -> str:
    """The results as a Markdown table for the README."""
    lines = [
        "| model | epochs × batch | augmentation | best val acc (epoch) | final val acc | "
        "test acc | wall time | s/epoch | train img/s |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['model']} | {r['epochs']} × {r['batch_size']} | "
            f"{'seed settings' if r['augment'] else 'none'} | "
            f"{r['best_val_accuracy']:.1%} ({r['best_epoch']}) | {r['final_val_accuracy']:.1%} | "
            f"{r['test_accuracy']:.1%} | {r['wall_minutes']} min | {r['seconds_per_epoch']} | "
            f"{r['train_images_per_second']} |"
        )
    lines.append("")
    lines.append(machine_line(info))
    return "\n".join(lines) + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", choices=sorted(RECIPES), action="append")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--summarize",
        nargs="+",
        metavar="RUN_DIR",
        help="do not train: rebuild the table from finished run folders",
    )
    args = parser.parse_args()
    if not DATA.is_dir() and not args.summarize:
        print(f"the real photos are not here: {DATA} does not exist", file=sys.stderr)
        return 2
    RESULTS.mkdir(parents=True, exist_ok=True)
    out_json = RESULTS / "reproduce_seed.json"
    info = machine()
    paths = [Path(p) for p in args.summarize] if args.summarize else None
    for path in paths or (run(model, args.seed) for model in args.only or list(RECIPES)):
        rows = merge_rows(out_json, summarize(path) | {"machine": info}, key=("model",))
        ordered = sorted(rows, key=lambda r: list(RECIPES).index(r["model"]))
        (RESULTS / "reproduce_seed.md").write_text(markdown(ordered, info))
    print((RESULTS / "reproduce_seed.md").read_text())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
