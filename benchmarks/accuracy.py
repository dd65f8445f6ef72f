"""Test accuracy of a model preset over several seeds, on the real photos (the headline number).

    python benchmarks/accuracy.py                         # catdog-net, seeds 1 2 3 (~1.5 h)
    python benchmarks/accuracy.py --seeds 4 --epochs 60   # one more seed, a shorter schedule
    python benchmarks/accuracy.py --summarize RUN_DIR...  # rebuild the table from runs
    python benchmarks/accuracy.py --summarize RUN_DIR... --tta-zoom 1.1
                                    # ... reading the test split with other test-time views

Trains the preset with its registry defaults on ``../shared/data/cats_vs_dogs_small`` (the
seed's split: 2000 training, 1000 validation, 1000 test photos), one full run per seed, one
after the other so no two share the 2 cores. Each run chooses nothing on the test split: the
model it keeps is the one with the best validation accuracy, and the test split is read once,
by that model, when training ends.

Writes ``benchmarks/results/accuracy.{json,md}``: one row per run (best and final validation
accuracy, test accuracy, wall time, minutes to 82% validation, training images/second) and
the mean and standard deviation over the runs, next to the seed's two recipes from
``reproduce_seed.json``. Runs of other seeds already in the file are kept.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from common import DATA, RESULTS, machine, machine_line, merge_rows, summarize, train_logged


def run(model: str, seed: int, overrides: dict) -> Path:
    """Train one seed of the preset; returns the run folder."""
    return train_logged(f"{model} seed {seed}", model=model, seed=seed, **overrides)


def spread(values: list[float]) -> tuple[float, float]:
    """Mean and sample standard deviation (0 for a single value)."""
    return statistics.fmean(values), statistics.stdev(values) if len(values) > 1 else 0.0


def test_accuracy(path: Path, **views: object) -> float:
    """Test accuracy of a run's best model (with the run's test-time views unless given)."""
    from catdog.inference.evaluate import evaluate_run

    return float(evaluate_run(path, which="best", **views).accuracy)


def views(row: dict) -> str:
    """The test-time views a row's test accuracy averaged over."""
    if not row.get("tta"):  # (the seed's recipes: the image alone)
        return "image"
    zoom = row.get("tta_zoom") or 0
    return f"image, mirror, zoom {zoom:g} of both" if zoom > 1 else "image, mirror"


def markdown(model: str, rows: list[dict], seed_rows: list[dict], info: dict[str, str]) -> str:
    """Per-run table, the mean ± std line, and the seed's recipes for comparison."""
    lines = [
        "| preset | seed | epochs | image size | best val acc (epoch) | test acc | test views | "
        "wall time | first ≥ 82% val | train img/s |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in seed_rows + rows:
        at82 = (
            f"{r['minutes_to_82']} min (epoch {r['first_epoch_at_82']})"
            if r.get("minutes_to_82") is not None
            else "never"
        )
        lines.append(
            f"| {r['model']} | {r['seed']} | {r['epochs']} | {r.get('image_size', 150)} | "
            f"{r['best_val_accuracy']:.1%} ({r['best_epoch']}) | {r['test_accuracy']:.1%} | "
            f"{views(r)} | {r['wall_minutes']} min | {at82} | {r['train_images_per_second']} |"
        )
    tests = [r["test_accuracy"] for r in rows]
    vals = [r["best_val_accuracy"] for r in rows]
    walls = [r["wall_minutes"] for r in rows]
    t_mean, t_std = spread(tests)
    v_mean, v_std = spread(vals)
    w_mean, w_std = spread(walls)
    lines += [
        "",
        f"**{model}, {len(rows)} seeds: test accuracy {t_mean:.1%} ± {t_std:.1%} "
        f"(min {min(tests):.1%}, max {max(tests):.1%}); best validation {v_mean:.1%} ± "
        f"{v_std:.1%}; wall time {w_mean:.1f} ± {w_std:.1f} min.**",
        "",
        machine_line(info),
    ]
    return "\n".join(lines) + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="catdog-net")
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3])
    parser.add_argument("--epochs", type=int, help="override the preset's epochs")
    parser.add_argument("--image-size", type=int, help="override the preset's input size")
    parser.add_argument(
        "--summarize",
        nargs="+",
        metavar="RUN_DIR",
        help="do not train: rebuild the table from finished run folders",
    )
    parser.add_argument(
        "--tta-zoom",
        type=float,
        help="with --summarize: evaluate each run's best model on the test split with mirror "
        "and this zoom's views (for runs trained before their preset had it)",
    )
    args = parser.parse_args()
    if not DATA.is_dir() and not args.summarize:
        print(f"the real photos are not here: {DATA} does not exist", file=sys.stderr)
        return 2
    overrides = {
        key: value
        for key, value in (("epochs", args.epochs), ("image_size", args.image_size))
        if value is not None
    }
    RESULTS.mkdir(parents=True, exist_ok=True)
    out_json = RESULTS / "accuracy.json"
    info = machine()
    seed_file = RESULTS / "reproduce_seed.json"
    seed_rows = json.loads(seed_file.read_text())["rows"] if seed_file.exists() else []
    paths = [Path(p) for p in args.summarize] if args.summarize else None
    for path in paths or (run(args.model, seed, overrides) for seed in args.seeds):
        row = summarize(path) | {"machine": info}
        if args.tta_zoom is not None:  # other test-time views: read the test split with them
            views = {"tta": True, "tta_zoom": args.tta_zoom}
            row |= {"test_accuracy_as_trained": row["test_accuracy"], **views}
            row["test_accuracy"] = test_accuracy(path, **views)
        elif row["test_accuracy"] is None:  # trained with --no-test: read the test split now
            row["test_accuracy"] = test_accuracy(path)
        rows = merge_rows(out_json, row, key=("model", "seed"))
        ordered = sorted((r for r in rows if r["model"] == args.model), key=lambda r: r["seed"])
        (RESULTS / "accuracy.md").write_text(markdown(args.model, ordered, seed_rows, info))
    print((RESULTS / "accuracy.md").read_text())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
