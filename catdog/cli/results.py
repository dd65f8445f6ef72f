"""The commands that use a trained run: evaluate, predict, export."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from catdog.cli.common import EXIT_FAILED, EXIT_OK, CLIError, resolve_dataset
from catdog.cli.training import _add_settings


def cmd_evaluate(args: argparse.Namespace) -> int:
    from catdog.inference.evaluate import evaluate_run

    data = resolve_dataset(args.data) if args.data else None
    evaluation = evaluate_run(
        args.run, data, which=args.which, tta=args.tta, tta_zoom=args.tta_zoom
    )
    print(json.dumps(evaluation.to_dict()) if args.json else evaluation.summary())
    return EXIT_OK


def cmd_predict(args: argparse.Namespace) -> int:
    from catdog.data.names import shown
    from catdog.inference.heatmap_files import HeatmapWriter
    from catdog.inference.predict import Predictor

    out = Path(args.heatmaps) if args.heatmaps else None
    if out is not None and out.exists() and not out.is_dir():
        raise CLIError(f"--heatmaps {out} exists and is not a folder")
    predictor = Predictor.from_run(args.run, which=args.which)
    rule = None
    if predictor.trust is None:
        print(f"note: every image gets a class, with the model's own probabilities: "
              f"{predictor.trust_problem}", file=sys.stderr)  # fmt: skip
    elif args.coverage is not None:
        rule = predictor.trust.rule.with_coverage(args.coverage)
    images = [Path(p) for p in args.images]
    predictions = predictor.predict(images, heatmaps=out is not None, rule=rule)
    failed, heatmaps = 0, HeatmapWriter(out)
    for pred in predictions:
        if pred.error:
            failed += 1
            print(f"error: {shown(pred.error)}", file=sys.stderr)
            if args.json:
                print(json.dumps(pred.to_dict()))
            continue
        data = pred.to_dict()
        if (written := heatmaps.write(Path(pred.file), pred.heatmap)) is not None:
            data["heatmap"] = str(written)
        if args.json:
            print(json.dumps(data))
        else:
            probs = "  ".join(f"{c} {p:.3f}" for c, p in pred.probabilities.items())
            where = f"  heatmap {shown(data['heatmap'])}" if "heatmap" in data else ""
            answer = pred.label if pred.answered else f"neither class / not sure: {pred.reason}"
            print(f"{shown(pred.file)}: {answer}   ({probs}){where}")
    if heatmaps.problem:
        print(f"error: {shown(heatmaps.problem)}", file=sys.stderr)
    return EXIT_FAILED if failed or heatmaps.problem else EXIT_OK


def cmd_export(args: argparse.Namespace) -> int:
    from catdog.inference.export import export_run

    print("exporting and checking the export against the run's model…", file=sys.stderr)
    result = export_run(args.run, args.format, args.out, quantize=args.quantize, which=args.which)
    print(result.summary(), file=sys.stderr)
    print(result.path)
    return EXIT_OK


def _share(text: str) -> float:
    """``--coverage``: a number in (0, 1]."""
    try:
        value = float(text)
    except ValueError:
        value = float("nan")
    if not 0.0 < value <= 1.0:
        raise argparse.ArgumentTypeError(f"must be a share in (0, 1], e.g. 0.95; got {text!r}")
    return value


def add_model_commands(sub: Any) -> None:
    """``evaluate``, ``predict`` and ``export``: what a trained run's model does."""
    p = sub.add_parser("evaluate", help="evaluate a run on its test split or another folder")
    p.add_argument("run", help="run id (or a unique prefix)")
    p.add_argument("--data", help="folder-per-class DIR (with or without test/) to evaluate on")
    p.add_argument("--which", default="best", choices=["best", "last"])
    _add_settings(p, ("tta", "tta_zoom"), unset="default: as the run was trained")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_evaluate)

    p = sub.add_parser("predict", help="classify images with a trained run")
    p.add_argument("run", help="run id (or a unique prefix)")
    p.add_argument(
        "images",
        nargs="+",
        help="image files (JPEG, PNG, BMP, GIF, WebP, TIFF, PPM/PGM); put -- before them if a "
        "name starts with -",
    )
    p.add_argument("--which", default="best", choices=["best", "last"])
    p.add_argument("--json", action="store_true", help="one JSON object per line and image")
    p.add_argument(
        "--coverage",
        type=_share,
        metavar="SHARE",
        help="answer 'neither class / not sure' less or more often: the share of the run's "
        "validation photos that would be answered, in (0, 1] (default: the run's, 0.95; "
        "1 answers nearly everything)",
    )
    p.add_argument(
        "--heatmaps",
        metavar="DIR",
        help="also save each image with a Grad-CAM heatmap of where the model saw its label "
        "(new files DIR/NAME.heatmap.png; nothing is overwritten)",
    )
    p.set_defaults(func=cmd_predict)

    p = sub.add_parser(
        "export",
        help="write a run's model for use without catdog (raw RGB pixels in, probabilities "
        "out), checked against the run's model; prints the path",
    )
    p.add_argument("run", help="run id (or a unique prefix)")
    p.add_argument("--format", default="keras", choices=["keras", "savedmodel", "tflite"])
    p.add_argument("--quantize", action="store_true", help="tflite: 8-bit weights (~4× smaller)")
    p.add_argument("--out", help="file or folder to write (default: RUN/exports/...)")
    p.add_argument("--which", default="best", choices=["best", "last"])
    p.set_defaults(func=cmd_export)
