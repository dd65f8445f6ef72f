"""The dataset commands: import, download-petimages, demo-data, datasets."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from catdog.cli.common import EXIT_OK, CLIError, default_out, resolve_dataset
from catdog.progress import TextProgress


def cmd_import(args: argparse.Namespace) -> int:
    from catdog.data.importer import import_dataset, parse_split

    source = Path(args.source).expanduser()
    out = Path(args.out).expanduser() if args.out else default_out(source)
    split = parse_split(args.split) if args.split else None
    bar = TextProgress()
    try:
        report = import_dataset(source, out, split=split, seed=args.seed, progress=bar)
    finally:
        bar.close()  # an error starts on a line of its own
    print(report.summary())
    return EXIT_OK


def cmd_download_petimages(args: argparse.Namespace) -> int:
    from catdog.data.download import download_petimages
    from catdog.data.importer import parse_split
    from catdog.data.paths import datasets_dir

    out = Path(args.out).expanduser() if args.out else datasets_dir() / "petimages"
    kwargs: dict[str, Any] = {"split": parse_split(args.split), "progress": TextProgress()}
    if args.url:
        kwargs["url"] = args.url
    if args.sha256:
        kwargs["sha256"] = args.sha256
    report = download_petimages(out, **kwargs)
    print(report.summary())
    return EXIT_OK


def cmd_demo_data(args: argparse.Namespace) -> int:
    from catdog.data.demo import generate_demo_dataset
    from catdog.data.paths import demo_dataset_dir

    out = Path(args.out).expanduser() if args.out else demo_dataset_dir()
    counts = tuple(int(x) for x in args.counts.split(",")) if args.counts else None
    kwargs: dict[str, Any] = {"seed": args.seed, "progress": TextProgress()}
    if counts:
        if len(counts) != 3:
            raise CLIError(f"--counts needs TRAIN,VAL,TEST per class, got {args.counts!r}")
        kwargs["counts"] = counts
    path = generate_demo_dataset(out, **kwargs)
    print(path)
    return EXIT_OK


def cmd_datasets(args: argparse.Namespace) -> int:
    from catdog.data.datasets import list_datasets

    infos = list_datasets()
    if args.json:
        fields = ("name", "classes", "counts")
        for info in infos:
            print(json.dumps({"path": str(info.root)} | {f: getattr(info, f) for f in fields}))
        return EXIT_OK
    if not infos:
        print("no datasets yet: try `python -m catdog demo-data` or `python -m catdog import`")
    for info in infos:
        totals = ", ".join(f"{s} {sum(c.values())}" for s, c in info.counts.items())
        print(f"{info.name:24} {'/'.join(info.classes):20} {totals}   {info.root}")
    return EXIT_OK


def cmd_audit(args: argparse.Namespace) -> int:
    from catdog.data.health import audit_dataset
    from catdog.inference.audit_features import FEATURE_MODEL, pretrained_features, run_features

    given = {"--run": args.run is not None, "--features": args.features != "auto",
             "--cross-fit": args.cross_fit is not None}  # fmt: skip
    chosen = [flag for flag, used in given.items() if used]
    if len(chosen) > 1:
        raise CLIError(f"give one of {', '.join(chosen)}, not several")
    if args.cross_fit is not None:
        from catdog.inference.cross_fit import cross_fitted

        features = cross_fitted(args.cross_fit)  # an AuditError says what is wrong
    elif args.run is not None:
        features = run_features(args.run)  # a RunError says what is wrong with the run
    else:
        features = None if args.features == "quick" else pretrained_features()
    if args.features == "pretrained" and features is None:
        raise CLIError(f"--features pretrained needs {FEATURE_MODEL}'s weights in Keras' cache "
                       f"(training it once downloads them); or use --features quick")  # fmt: skip
    data, bar = resolve_dataset(args.dataset), TextProgress()
    try:
        result = audit_dataset(data, progress=bar, refresh=args.refresh, label_features=features)
    finally:
        bar.close()
    print(json.dumps(result.to_dict()) if args.json else result.summary())
    return EXIT_OK


def cmd_review(args: argparse.Namespace) -> int:
    from catdog.data.review import apply_review

    print(apply_review(resolve_dataset(args.dataset), name=args.name, progress=TextProgress()))
    return EXIT_OK


def add_dataset_commands(sub: Any) -> None:
    """``import``, ``download-petimages``, ``demo-data``, ``audit``, ``review`` and
    ``datasets``."""
    p = sub.add_parser("import", help="import a folder or .zip of images as a dataset")
    p.add_argument("source", help="folder or .zip: folder-per-class, Kaggle flat, or PetImages")
    p.add_argument("--out", help="dataset folder to create (default: <data home>/datasets/NAME)")
    p.add_argument(
        "--split",
        help="'seed' (1000/500/500 per class by file number) or "
        "TRAIN,VAL,TEST fractions (default: keep existing split, else 50,25,25)",
    )
    p.add_argument("--seed", type=int, default=0, help="seed for fractional splits (default 0)")
    p.set_defaults(func=cmd_import)

    p = sub.add_parser(
        "download-petimages",
        help="download Microsoft's Cats-and-Dogs archive (~800 MB) and import it",
    )
    p.add_argument("--out", help="dataset folder (default: <data home>/datasets/petimages)")
    p.add_argument("--split", default="seed", help="as for import (default: seed)")
    p.add_argument("--url", help=argparse.SUPPRESS)
    p.add_argument("--sha256", help=argparse.SUPPRESS)
    p.set_defaults(func=cmd_download_petimages)

    p = sub.add_parser("demo-data", help="generate the built-in synthetic demo dataset")
    p.add_argument("--out", help="dataset folder (default: <data home>/datasets/demo)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--counts", help="images per class as TRAIN,VAL,TEST")
    p.set_defaults(func=cmd_demo_data)

    p = sub.add_parser(
        "audit",
        help="find duplicates, leaks between splits, suspect labels and odd images "
        "(cached per dataset version)",
    )
    p.add_argument("dataset", help="dataset name or folder (or demo)")
    p.add_argument("--json", action="store_true", help="the whole report as one JSON object")
    p.add_argument("--refresh", action="store_true", help="audit again even if cached")
    p.add_argument(
        "--features",
        choices=("auto", "quick", "pretrained"),
        default="auto",
        help="what the label check learns from: MobileNetV3Small's features (pretrained; auto "
        "where its weights are in Keras' cache, never downloaded) or colour and gradient "
        "features (quick)",
    )
    p.add_argument(
        "--run",
        help="learn the label check from this trained run's features instead (id or prefix; "
        "a run trained on these labels may have learned a few wrong ones by heart)",
    )
    p.add_argument(
        "--cross-fit",
        type=float,
        metavar="MINUTES",
        help="judge the labels with 3 catdog-net networks, each trained for MINUTES/3 on two "
        "thirds of the training and validation photos and judging the third it never saw (the "
        "strongest check without pretrained weights; not on a shared server)",
    )
    p.set_defaults(func=cmd_audit)

    p = sub.add_parser(
        "review",
        help="write a new dataset version with the review decisions made on the Dataset page "
        "applied (the dataset itself is never changed); prints its folder",
    )
    p.add_argument("dataset", help="dataset name or folder")
    p.add_argument("--name", help="the new dataset's name (default NAME-reviewed)")
    p.set_defaults(func=cmd_review)

    p = sub.add_parser("datasets", help="list datasets in the data home")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_datasets)
