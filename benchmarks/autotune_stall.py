"""Why catdog's pipelines run without tf.data's autotuner: the end-of-iterator stall.

    python benchmarks/autotune_stall.py [--rounds 12] [--steps 10]

Times ``fit`` calls of catdog-net (bfloat16, 112 px, batch 32) on one fixed in-memory batch —
pure compute, no augmentation — with the dataset's autotuner on (tf.data's default) and off
(``catdog.pipeline.pipeline_options``), alternating the two in one process so a slow spell of
the machine hits both alike. Keras makes a new iterator per ``fit`` call, as it does per
training epoch and per validation pass; with the autotuner on, destroying that iterator waits
for the autotuner's thread, which on this machine often means about a second with the CPU
idle. Each round's wall time includes that teardown, as an epoch's does.

Writes ``benchmarks/results/autotune_stall.{json,md}``: images/second per round, the median,
and how many rounds ran at less than 80% of the best round.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from common import RESULTS, machine, machine_line

SIZE, BATCH = 112, 32


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=12)
    parser.add_argument("--steps", type=int, default=10, help="training steps per fit call")
    args = parser.parse_args()

    import numpy as np

    from catdog.backend import tf
    from catdog.catdognet import build_catdog_net
    from catdog.models import compile_model
    from catdog.pipeline import pipeline_options

    model = compile_model(
        build_catdog_net(SIZE, 2, 0.3, "mixed_bfloat16"),
        num_classes=2,
        learning_rate=1e-3,
        optimizer="adamw",
    )
    rng = np.random.default_rng(0)
    x = rng.random((BATCH, SIZE, SIZE, 3), dtype=np.float32)
    y = rng.integers(0, 2, (BATCH, 1)).astype(np.float32)
    base = tf.data.Dataset.from_tensors((x, y)).repeat()
    datasets = {
        "autotuner on (tf.data default)": base,
        "autotuner off (catdog)": base.with_options(pipeline_options()),
    }
    for data in datasets.values():  # compile and warm up
        model.fit(data, steps_per_epoch=3, epochs=1, verbose=0)
    rates: dict[str, list[float]] = {name: [] for name in datasets}
    for _ in range(args.rounds):
        for name, data in datasets.items():
            start = time.perf_counter()
            model.fit(data, steps_per_epoch=args.steps, epochs=1, verbose=0)
            rates[name].append(BATCH * args.steps / (time.perf_counter() - start))
    best = max(max(r) for r in rates.values())
    rows = [
        {
            "dataset": name,
            "images_per_second": round(statistics.median(r), 1),
            "slow_rounds": sum(v < 0.8 * best for v in r),
            "rounds": [round(v, 1) for v in r],
        }
        for name, r in rates.items()
    ]
    info = machine()
    RESULTS.mkdir(parents=True, exist_ok=True)
    payload = {"rows": rows, "machine": info} | vars(args)
    (RESULTS / "autotune_stall.json").write_text(json.dumps(payload, indent=2) + "\n")
    lines = [
        "| dataset | images/s (median) | rounds < 80% of the best | every round |",
        "|---|---|---|---|",
    ]
    lines += [
        f"| {r['dataset']} | {r['images_per_second']} | {r['slow_rounds']} of {args.rounds} "
        f"| {r['rounds']} |"
        for r in rows
    ]
    lines += [
        "",
        f"catdog-net, bfloat16, {SIZE}×{SIZE}, batch {BATCH}, one fixed batch; each round is "
        f"one fit call of {args.steps} steps, timed from call to return. " + machine_line(info),
    ]
    (RESULTS / "autotune_stall.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
