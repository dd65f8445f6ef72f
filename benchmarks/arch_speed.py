"""Training-step speed of catdog-net by batch-norm and optimizer implementation (why it uses
FusedBatchNorm and FusedAdamW).

    python benchmarks/arch_speed.py [--size 112] [--batch 32] [--steps 10] [--rounds 5]

Builds catdog-net three times — with catdog's ``FusedBatchNorm`` (TensorFlow's one-kernel
``FusedBatchNormV3``), with Keras' ``BatchNormalization``, and with no normalisation at all
(the floor: what the convolutions alone cost) — all with catdog's ``FusedAdamW`` — and once
more with catdog's normalisation but Keras' own ``AdamW`` (the same update in ~10 element-wise
operations per weight instead of one kernel); all in bfloat16. It times ``fit`` on one fixed
in-memory batch (pure compute, no input pipeline). The models are timed in turn, round
after round, in ONE process, so a slow spell of the machine hits all of them alike; the table
gives the median over rounds and every round. Writes ``benchmarks/results/arch_speed.{json,md}``.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from common import fixed_batch, machine, machine_line, write_results


def build(norm: str, size: int):
    """catdog-net with the given normalisation layer (``fused``, ``keras`` or ``none``), or
    (``keras-adamw``) with catdog's normalisation and Keras' own AdamW."""
    from catdog.model import catdognet
    from catdog.model.backend import keras
    from catdog.model.registry import compile_model

    original = catdognet.FusedBatchNorm
    if norm == "keras":
        catdognet.FusedBatchNorm = keras.layers.BatchNormalization
    elif norm == "none":
        catdognet.FusedBatchNorm = lambda dtype, name: keras.layers.Identity(name=name)
    try:
        model = catdognet.build_catdog_net(size, 2, 0.3, "mixed_bfloat16")
    finally:
        catdognet.FusedBatchNorm = original
    if norm == "keras-adamw":  # the same loss and metric as compile_model, Keras' optimizer
        optimizer = keras.optimizers.AdamW(learning_rate=1e-3, weight_decay=0.05)
        model.compile(optimizer=optimizer, loss="binary_crossentropy", metrics=["accuracy"])
        return model
    return compile_model(
        model, num_classes=2, learning_rate=1e-3, optimizer="adamw", weight_decay=0.05
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=112)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--steps", type=int, default=10, help="steps per timed round")
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()

    data = fixed_batch(args.size, args.batch)
    names = {
        "fused": "catdog FusedBatchNorm",
        "keras": "Keras BatchNormalization",
        "none": "no normalisation (floor)",
        "keras-adamw": "catdog FusedBatchNorm, Keras AdamW",
    }
    models = {norm: build(norm, args.size) for norm in names}
    for model in models.values():  # compile and warm up
        model.fit(data, steps_per_epoch=3, epochs=1, verbose=0)
    rates: dict[str, list[float]] = {norm: [] for norm in names}
    for _ in range(args.rounds):
        for norm, model in models.items():
            start = time.perf_counter()
            model.fit(data, steps_per_epoch=args.steps, epochs=1, verbose=0)
            rates[norm].append(args.batch * args.steps / (time.perf_counter() - start))
    rows = [
        {
            "normalisation": names[norm],
            "images_per_second": round(statistics.median(r), 1),
            "rounds": [round(v, 1) for v in r],
        }
        for norm, r in rates.items()
    ]
    info = machine()
    payload = {"rows": rows, "machine": info} | vars(args)
    lines = ["| catdog-net with | training images/s (median) | rounds |", "|---|---|---|"]
    lines += [f"| {r['normalisation']} | {r['images_per_second']} | {r['rounds']} |" for r in rows]
    lines += [
        "",
        f"bfloat16, {args.size}×{args.size}, batch {args.batch}, fit on one fixed batch, "
        f"{args.rounds} rounds of {args.steps} steps. " + machine_line(info),
    ]
    write_results("arch_speed", payload, lines)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
