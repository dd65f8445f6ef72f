"""Datasets from loose photos: ``new-dataset`` and ``add-photos``.

``python -m catdog new-dataset pets --class cats a.jpg b.jpg … --class dogs photos/dogs/``
makes a dataset from loose photos (a folder stands for the photos directly in it), as the
dashboard's "New dataset" tab does, through :mod:`catdog.data.builder`; ``add-photos`` adds
some to a dataset later. The summary goes to standard output.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from catdog.data.datasets import DatasetError, is_visible, natural_key


def _photos(given: list[list[str]]) -> dict[str, list[Path]]:
    """``--class NAME PHOTO...`` groups as ``{name: paths}`` (a folder: the files in it)."""
    photos: dict[str, list[Path]] = {}
    for name, *paths in given:
        if name in photos:
            raise DatasetError(f"--class {name} is given twice; list all its photos once")
        found: list[Path] = []
        for text in paths:
            path = Path(text).expanduser()
            if path.is_dir():
                inside = [p for p in path.iterdir() if is_visible(p.name) and not p.is_dir()]
                found += sorted(inside, key=lambda p: natural_key(p.name))
            else:
                found.append(path)
        photos[name] = found
    return photos


def cmd_new_dataset(args: argparse.Namespace) -> int:
    """``new-dataset NAME --class C PHOTO... --class D PHOTO...``."""
    from catdog.data.builder import build_dataset

    report = build_dataset(args.name, _photos(args.classes or []), seed=args.seed)
    print(report.summary())
    print(report.out)
    return 0


def cmd_add_photos(args: argparse.Namespace) -> int:
    """``add-photos DATASET --class C PHOTO... [--in-place | --as NAME]``."""
    from catdog.data.builder import add_photos

    report = add_photos(args.dataset, _photos(args.classes or []), in_place=args.in_place,
                        new_name=args.new_name, seed=args.seed)  # fmt: skip
    print(report.summary())
    print(report.out)
    return 0


def _class_option(p: argparse.ArgumentParser) -> None:
    p.add_argument("--class", dest="classes", action="append", nargs="+", required=True,
                   metavar=("NAME", "PHOTO"), help="a class and its photos (files, or folders "
                   "standing for the files in them); repeat for each class")  # fmt: skip
    p.add_argument("--seed", type=int, default=0, help="seeds the split (default 0)")


def add_builder_commands(sub: Any) -> None:
    """Add ``new-dataset`` and ``add-photos`` to the command line's subcommands."""
    p = sub.add_parser("new-dataset", help="make a dataset from loose photos, class by class "
                       "(split per class; prints the summary, then its folder)")  # fmt: skip
    p.add_argument("name", help="the new dataset's name")
    _class_option(p)
    p.set_defaults(func=cmd_new_dataset)

    p = sub.add_parser("add-photos", help="add photos to a dataset: as a new version of it "
                       "(default) or --in-place (datasets made by new-dataset only)")  # fmt: skip
    p.add_argument("dataset", help="the dataset's name")
    _class_option(p)
    how = p.add_mutually_exclusive_group()
    how.add_argument("--in-place", action="store_true", help="add to the dataset itself "
                     "(only files are added; nothing there changes)")  # fmt: skip
    how.add_argument("--as", dest="new_name", metavar="NAME",
                     help="the new version's name (default: DATASET-v2, -v3 …)")  # fmt: skip
    p.set_defaults(func=cmd_add_photos)
