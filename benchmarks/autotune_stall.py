"""Why catdog's pipelines run without tf.data's autotuner: the end-of-iterator stall.

    python benchmarks/autotune_stall.py [--processes 3] [--rounds 8] [--steps 10]

Times ``fit`` calls of catdog-net (bfloat16, 112 px, batch 32) on one fixed in-memory batch —
pure compute, no augmentation — with the dataset's autotuner on (tf.data's default) and off
(``catdog.train.pipeline.pipeline_options``). Keras makes a new iterator per ``fit`` call, as it
does per training epoch and per validation pass; with the autotuner on, destroying that
iterator waits for the autotuner's thread, which on this machine often means about a second
with the CPU idle. Each round's wall time includes that teardown, as an epoch's does.

Each setting runs in fresh processes, alternating (on, off, on, off, ...): in one process the
autotuned iterators are freed late, by Python's garbage collector, so their stall can land in
the other setting's round.

Writes ``benchmarks/results/autotune_stall.{json,md}``: images/second per round, the median,
and how many rounds ran at less than 80% of the best round.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from common import fixed_batch, machine, machine_line, write_results

SIZE, BATCH = 112, 32


def child(autotune: bool, rounds: int, steps: int) -> list[float]:
    """Images/s of ``rounds`` fit calls in this process, with or without the autotuner."""
    from catdog.model.catdognet import build_catdog_net
    from catdog.model.registry import compile_model

    model = compile_model(
        build_catdog_net(SIZE, 2, 0.3, "mixed_bfloat16"),
        num_classes=2,
        learning_rate=1e-3,
        optimizer="adamw",
    )
    data = fixed_batch(SIZE, BATCH, autotune=autotune)
    model.fit(data, steps_per_epoch=3, epochs=1, verbose=0)  # compile and warm up
    rates = []
    for _ in range(rounds):
        start = time.perf_counter()
        model.fit(data, steps_per_epoch=steps, epochs=1, verbose=0)
        rates.append(BATCH * steps / (time.perf_counter() - start))
    return rates


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--processes", type=int, default=3, help="fresh processes per setting")
    parser.add_argument("--rounds", type=int, default=8, help="fit calls per process")
    parser.add_argument("--steps", type=int, default=10, help="training steps per fit call")
    parser.add_argument("--child", choices=("on", "off"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child(args.child == "on", args.rounds, args.steps)))
        return 0

    names = {"on": "autotuner on (tf.data default)", "off": "autotuner off (catdog)"}
    rates: dict[str, list[float]] = {name: [] for name in names.values()}
    for _ in range(args.processes):
        for setting, name in names.items():
            out = subprocess.run(
                [sys.executable, __file__, "--child", setting, "--rounds", str(args.rounds),
                 "--steps", str(args.steps)],
                capture_output=True, text=True, check=True,
            )  # fmt: skip
            rates[name] += json.loads(out.stdout.strip().splitlines()[-1])
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
    payload = {"rows": rows, "machine": info} | vars(args)
    total = args.processes * args.rounds
    lines = [
        "| dataset | images/s (median) | rounds < 80% of the best | every round |",
        "|---|---|---|---|",
    ]
    lines += [
        f"| {r['dataset']} | {r['images_per_second']} | {r['slow_rounds']} of {total} "
        f"| {r['rounds']} |"
        for r in rows
    ]
    lines += [
        "",
        f"catdog-net, bfloat16, {SIZE}×{SIZE}, batch {BATCH}, one fixed batch; each round is "
        f"one fit call of {args.steps} steps, timed from call to return; {args.processes} "
        f"fresh processes of {args.rounds} rounds per setting. " + machine_line(info),
    ]
    write_results("autotune_stall", payload, lines)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
