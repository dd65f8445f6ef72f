"""Answers you can trust, measured on a trained run: "not sure", calibration and latency.

    python benchmarks/trust.py --run RUN                # e.g. catdog-net on the seed's photos
    python benchmarks/trust.py --run RUN --ood 400 --latency 50

For the run's ``best`` model, with its trust (learned now if the run has none yet, timed):

- out-of-distribution pictures answered "neither class / not sure": ``ood_images``
  (:mod:`catdog.data.ood`) with seed 1 (the rule chose its score on seed 0's 64 pictures),
  160 px, every kind in turn, sent as PNG files through the path a user's upload takes;
- in-distribution coverage: the share of the run's test photos answered, and the accuracy of
  those answered beside the accuracy on all;
- expected calibration error on the test split, before and after temperature scaling;
- every doubt score the run compared, each at its own 95% validation threshold: test coverage
  and out-of-distribution rejection (the rule picks one of them);
- warm latency of one photo (a test JPEG, as bytes) through ``Predictor.predict`` with
  calibration and rejection: median and 90th percentile.

Writes ``benchmarks/results/trust.{json,md}`` (one row per run, kept across invocations).
"""

from __future__ import annotations

import argparse
import io
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np
from common import RESULTS, machine, merge_rows

from catdog.data.datasets import labelled_images
from catdog.data.model_input import load_for_model, to_model_input
from catdog.data.ood import ood_images
from catdog.inference.evaluate import evaluate_run
from catdog.inference.predict import Predictor
from catdog.inference.trust import doubt, trust_files
from catdog.train import runs


def _png(image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, "PNG")
    return buffer.getvalue()


def ood_rejection(predictor: Predictor, count: int) -> tuple[float, dict[str, float], list]:
    """Share of generated pictures not answered, overall and per kind; and the pictures."""
    pictures = ood_images(count, 160, seed=1)
    predictions = predictor.predict([(f"{k}-{i}.png", _png(p)) for i, (k, p) in
                                     enumerate(pictures)])  # fmt: skip
    refused = np.array([not p.answered for p in predictions])
    kinds = np.array([k for k, _ in pictures])
    per_kind = {k: float(refused[kinds == k].mean()) for k in dict.fromkeys(kinds)}
    return float(refused.mean()), per_kind, pictures


def score_table(predictor: Predictor, test: Path, pictures: list) -> dict[str, dict[str, float]]:
    """Every compared score at its validation threshold: test coverage, OOD rejection."""
    trust = predictor.trust
    paths, _ = labelled_images(test, predictor.classes)
    size = predictor.image_size
    photos = predictor.outputs(np.stack([load_for_model(p, size) for p in paths]))
    drawn = predictor.outputs(np.stack([to_model_input(p, size) for _, p in pictures]))
    table = {}
    for kind, seen in trust.compared.items():
        limit = seen["threshold"]
        on_photos = doubt(kind, photos, trust.temperature, trust.arrays)
        on_drawn = doubt(kind, drawn, trust.temperature, trust.arrays)
        table[kind] = {
            "test_answered": float(np.mean(on_photos <= limit)),
            "ood_rejected": float(np.mean(on_drawn > limit)),
            "ood_rejected_seed0": seen["ood_rejected"],
        }
    return table


def latency_ms(predictor: Predictor, test: Path, count: int) -> tuple[float, float]:
    """Median and 90th percentile of one warm prediction (a test photo's bytes), in ms."""
    paths, _ = labelled_images(test, predictor.classes)
    photos = [(p.name, p.read_bytes()) for p in paths[:: max(1, len(paths) // count)][:count]]
    for photo in photos[:3]:
        predictor.predict([photo])  # warm: compiled, caches filled
    times = []
    for photo in photos:
        start = time.perf_counter()
        predictor.predict([photo])
        times.append((time.perf_counter() - start) * 1000)
    return float(np.median(times)), float(np.percentile(times, 90))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", required=True, help="run id, unique prefix or folder")
    parser.add_argument("--ood", type=int, default=400, help="generated pictures (default 400)")
    parser.add_argument("--latency", type=int, default=50, help="photos timed one at a time")
    args = parser.parse_args()

    path = runs.resolve_run(args.run)
    had_trust = trust_files(path)[0].exists()
    start = time.perf_counter()
    predictor = Predictor.from_run(path)
    loaded = time.perf_counter() - start
    if predictor.trust is None:
        raise SystemExit(f"no trust for this run: {predictor.trust_problem}")
    evaluation = evaluate_run(path)
    test = Path(evaluation.data)
    rejected, per_kind, pictures = ood_rejection(predictor, args.ood)
    median, p90 = latency_ms(predictor, test, args.latency)
    c, r = evaluation.calibration, evaluation.rejection
    info = runs.run_info(path)
    row = {
        "run": info.id, "model": info.model, "data": Path(info.data).name,
        "image_size": predictor.image_size, "views": predictor.views,
        "test_images": evaluation.count, "ood_images": args.ood,
        "score": r["score"], "temperature": predictor.trust.temperature,
        "ood_rejected": rejected, "ood_rejected_by_kind": per_kind,
        "test_answered": r["answered"], "accuracy_answered": r["accuracy_answered"],
        "accuracy_all": evaluation.accuracy,
        "ece_before": c["ece_before"], "ece_after": c["ece_after"],
        "latency_ms_median": median, "latency_ms_p90": p90,
        "trust_seconds": None if had_trust else loaded,
        "scores": score_table(predictor, test, pictures),
        "machine": machine(), "date": time.strftime("%Y-%m-%d"),
    }  # fmt: skip
    rows = merge_rows(RESULTS / "trust.json", row, key=("run",))
    lines = _markdown(rows)
    (RESULTS / "trust.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


def _markdown(rows: list[dict]) -> list[str]:
    lines = [
        "| run | model, data | rule | OOD refused | test answered | acc. answered / all | "
        "ECE before → after | warm latency p50 / p90 | machine, date |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['run']} | {r['model']}, {r['data']} ({r['test_images']} test) | {r['score']} "
            f"(T {r['temperature']:.2f}) | **{r['ood_rejected']:.1%}** of {r['ood_images']} | "
            f"**{r['test_answered']:.1%}** | {r['accuracy_answered']:.1%} / "
            f"{r['accuracy_all']:.1%} | "
            f"{r['ece_before']:.1%} → **{r['ece_after']:.1%}** | {r['latency_ms_median']:.0f} / "
            f"{r['latency_ms_p90']:.0f} ms | {r['machine']['cpu']}, {r['date']} |"
        )
    for r in rows:
        lines += ["", f"{r['run']}: every score at its 95% validation threshold", "",
                  "| score | test answered | OOD refused (seed 1) | OOD refused (seed 0, chose) |",
                  "|---|---|---|---|"]  # fmt: skip
        for kind, s in r["scores"].items():
            lines.append(f"| {kind} | {s['test_answered']:.1%} | {s['ood_rejected']:.1%} | "
                         f"{s['ood_rejected_seed0']:.1%} |")  # fmt: skip
        kinds = ", ".join(f"{k} {v:.0%}" for k, v in r["ood_rejected_by_kind"].items())
        lines += ["", f"Refused by kind: {kinds}."]
    return lines


if __name__ == "__main__":
    main()
