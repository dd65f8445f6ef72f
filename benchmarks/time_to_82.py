"""Wall time until validation accuracy first reaches the seed's 82%, on the real photos.

    python benchmarks/time_to_82.py                       # catdog-net-quick, seeds 1 2 3
    python benchmarks/time_to_82.py --model catdog-net    # the accuracy preset (130 epochs)
    python benchmarks/time_to_82.py --model seed-dropout  # the seed's recipe (~50 min per seed)

The clock starts when ``catdog.train.trainer.train`` is called — so it includes decoding the photos
into memory and building the model — and stops at the end of the first epoch whose validation
accuracy is ≥ 82% (training is then stopped: nothing after that point is timed). A run that
finishes its schedule without reaching 82% is reported as "never".

Every model runs its registry preset (``--epochs`` overrides the schedule's length).
``catdog-net-quick`` is catdog-net on a 40-epoch schedule at 112 px: the schedule's length
sets how soon the learning rate comes down, so a short one reaches 82% sooner than the
130-epoch accuracy preset does.
``seed-dropout`` runs the seed's own recipe (100 epochs of 100 batches of 32, RMSprop 1e-4,
the seed's augmentation) in catdog's pipeline. Runs go one after the other, never sharing the
2 cores.

Writes ``benchmarks/results/time_to_82.{json,md}`` (one row per run, the median over seeds per
model, the machine and library versions); rows already in the file for other models or seeds
are kept.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
TARGET = 0.82

from common import DATA, RESULTS, machine, machine_line, merge_rows, train_logged  # noqa: E402

# The seed's recipe as the seed ran it (100 batches of 32 per epoch); others: their preset.
RECIPES = {
    "seed-dropout": {"epochs": 100, "batch_size": 32, "steps_per_epoch": 100, "augment": True},
}


def run(model: str, seed: int, epochs: int | None) -> dict:
    """Train until validation accuracy reaches TARGET (or the schedule ends); one result row."""
    from catdog.train.presets import get_preset

    recipe = dict(RECIPES.get(model, {}))
    if epochs is not None:
        recipe["epochs"] = epochs
    recipe.setdefault("epochs", get_preset(model).epochs)
    stop = threading.Event()
    reached: dict = {}
    started = time.perf_counter()

    def on_epoch(event) -> None:
        val = event.logs.get("val_accuracy", 0.0)
        if val >= TARGET and not reached:
            reached.update(epoch=event.epoch, seconds=time.perf_counter() - started)
            reached["val_accuracy"] = val
            stop.set()

    path = train_logged(
        f"{model} seed {seed}", stop, on_epoch, model=model, seed=seed, test=False, **recipe
    )
    return {
        "model": model,
        "seed": seed,
        "schedule_epochs": recipe["epochs"],
        "run_id": path.name,
        "epoch_at_82": reached.get("epoch"),
        "minutes_to_82": round(reached["seconds"] / 60, 2) if reached else None,
        "val_accuracy_then": reached.get("val_accuracy"),
    }


def markdown(rows: list[dict], info: dict[str, str]) -> str:
    """Per-run rows plus the median per model."""
    lines = [
        "| model | seed | schedule (epochs) | first ≥ 82% val | wall time to it |",
        "|---|---|---|---|---|",
    ]
    for r in rows:
        when = f"epoch {r['epoch_at_82']}" if r["epoch_at_82"] else "never"
        minutes = f"{r['minutes_to_82']:.1f} min" if r["minutes_to_82"] is not None else "—"
        lines.append(
            f"| {r['model']} | {r['seed']} | {r['schedule_epochs']} | {when} | {minutes} |"
        )
    lines.append("")
    for model in dict.fromkeys(r["model"] for r in rows):
        times = [r["minutes_to_82"] for r in rows if r["model"] == model]
        done = [t for t in times if t is not None]
        if done:
            lines.append(
                f"- {model}: median {statistics.median(done):.1f} min to 82% "
                f"({len(done)} of {len(times)} runs reached it)"
            )
        else:
            lines.append(f"- {model}: no run reached 82%")
    lines += [
        "",
        machine_line(info),
    ]
    return "\n".join(lines) + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="catdog-net-quick")
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3])
    parser.add_argument("--epochs", type=int, help="override the preset's schedule length")
    args = parser.parse_args()
    if not DATA.is_dir():
        print(f"the real photos are not here: {DATA} does not exist", file=sys.stderr)
        return 2
    RESULTS.mkdir(parents=True, exist_ok=True)
    out_json = RESULTS / "time_to_82.json"
    info = machine()
    for seed in args.seeds:
        row = run(args.model, seed, args.epochs) | {"machine": info}
        rows = merge_rows(out_json, row, key=("model", "seed"))
        ordered = sorted(rows, key=lambda r: (r["model"], r["seed"]))
        (RESULTS / "time_to_82.md").write_text(markdown(ordered, info))
    print((RESULTS / "time_to_82.md").read_text())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
