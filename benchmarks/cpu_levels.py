"""catdog on the CPU the user has: speed of every preset in float32 and bfloat16, what the
precision setting ``auto`` picks, and what catdog-net reaches in its 30-minute budget.

    python benchmarks/cpu_levels.py                          # this CPU as it is
    ONEDNN_MAX_CPU_ISA=AVX512_CORE python benchmarks/cpu_levels.py   # AVX-512, no bfloat16
    ONEDNN_MAX_CPU_ISA=AVX2 python benchmarks/cpu_levels.py          # as on most laptops
    python benchmarks/cpu_levels.py --speeds-only            # skip the 30-minute training run

``ONEDNN_MAX_CPU_ISA`` makes oneDNN (TensorFlow's CPU kernels) use only the instructions of a
lesser CPU, so one machine can stand in for several. For the level in force this script

1. times each preset's real training step in float32 and in bfloat16 (the same child-process
   probe ``auto`` uses, at the preset's image and batch size) and records what ``auto`` picks;
2. trains catdog-net with its defaults (``auto`` precision, 28-minute limit) on the real photos
   in ``../shared/data/cats_vs_dogs_small`` (the seed's split) and reads the test split once,
   when training ends; the time to the seed's 82% validation comes from the same run.

Writes one row per level (and seed) into ``benchmarks/results/cpu_levels.{json,md}``.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from datetime import date
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from common import DATA, RESULTS, merge_rows, summarize, train_logged

from catdog.train.precision import cpu_description, decide_auto, measure
from catdog.train.presets import PRESETS


def speeds() -> dict[str, dict]:
    """Training images/s of every from-scratch preset in float32 and bfloat16, and auto's pick
    (pretrained presets need their ImageNet weights: ``benchmarks/pretrained.py``)."""
    table = {}
    for spec in (s for s in PRESETS.values() if s.backbone is None):
        rates, errors = measure(
            spec.name, spec.image_size, spec.batch_size, ("float32", "bfloat16")
        )
        pick = decide_auto(rates, errors, "").precision if "float32" in rates else "none"
        table[spec.name] = {"speeds": rates, "errors": errors, "auto": pick}
        print(f"{spec.name}: {rates} {errors or ''} → auto {pick}", flush=True)
    return table


def markdown(rows: list[dict]) -> list[str]:
    """The results table, one row per CPU level and seed."""
    lines = [
        "| CPU (oneDNN level) | date | catdog-net img/s float32 / bfloat16 → auto | "
        "seed-dropout img/s float32 / bfloat16 → auto | catdog-net epochs in 28 min | "
        "best val | test | min to 82% val | run |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        run = r.get("run") or {}
        net, seed = _speed_cell(r["speeds"]["catdog-net"]), _speed_cell(r["speeds"]["seed-dropout"])
        lines.append(
            f"| {r['cpu']} | {r['date']} | {net} | {seed} | "
            f"{run.get('epochs', '–')} | {_pct(run.get('best_val_accuracy'))} | "
            f"{_pct(run.get('test_accuracy'))} | {run.get('minutes_to_82') or '–'} | "
            f"{run.get('run_id', '–')} |"
        )
    lines += [
        "",
        "Command per row: `ONEDNN_MAX_CPU_ISA=LEVEL python benchmarks/cpu_levels.py` "
        "(no variable: the CPU as it is). 2 cores; TensorFlow 2.21, Keras 3.15.1.",
    ]
    return lines


def _speed_cell(entry: dict) -> str:
    f32, b16 = entry["speeds"].get("float32"), entry["speeds"].get("bfloat16")
    bf = f"{b16:.0f}" if b16 else "fails"
    return f"{f32:.0f} / {bf} → {entry['auto']}" if f32 else "fails"


def _pct(value: float | None) -> str:
    return f"{100 * value:.1f}%" if value is not None else "–"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--speeds-only", action="store_true")
    args = parser.parse_args()
    if not args.speeds_only and not DATA.is_dir():
        parser.error(f"the real photos are not at {DATA}")
    level = os.environ.get("ONEDNN_MAX_CPU_ISA", "") or "native"
    row: dict = {"cpu": cpu_description(), "level": level, "seed": args.seed,
                 "date": date.today().isoformat(), "speeds": speeds()}  # fmt: skip
    if not args.speeds_only:
        path = train_logged(f"catdog-net ({level})", model="catdog-net", seed=args.seed)
        row["run"] = summarize(path)
        row["run"]["precision"] = json.loads((path / "config.json").read_text())["precision"]
    rows = merge_rows(RESULTS / "cpu_levels.json", row, key=("level", "seed"))
    lines = markdown(rows)
    (RESULTS / "cpu_levels.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
