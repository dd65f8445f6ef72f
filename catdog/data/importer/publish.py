"""Putting a finished import in place: images moved into ``split/class/``, the manifest written,
the folder renamed into place; a full disk said in one sentence.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
from collections.abc import Iterator
from dataclasses import asdict
from pathlib import Path

from catdog.data.datasets import (
    MANIFEST_NAME,
    DatasetError,
    natural_key,
    remember_sizes,
)
from catdog.data.importer.report import ImportReport
from catdog.data.names import portable_name
from catdog.system import disk_full, megabytes


def place_images(assignment: dict, staged: dict[Path, Path], dataset: Path) -> dict:
    """Move staged images into ``dataset/split/class/``, keeping each source stem as a name
    every disk stores (:func:`catdog.data.names.portable_name`; ``-2``, ``-3`` … added to repeated
    names, in natural order of the source paths)."""
    counts: dict[str, dict[str, int]] = {}
    for s, per_class in assignment.items():
        counts[s] = {}
        for cls, chosen in per_class.items():
            folder = dataset / s / cls
            folder.mkdir(parents=True, exist_ok=True)
            taken: set[str] = set()
            for item in sorted(chosen, key=lambda i: natural_key(i.rel)):
                stem, k = item.path.stem, 1
                name = portable_name(stem, ".jpg")
                while name.casefold() in taken:
                    k += 1
                    name = portable_name(stem, f"-{k}.jpg")
                taken.add(name.casefold())
                os.replace(staged[item.path], folder / name)
            counts[s][cls] = len(chosen)
    return counts


@contextlib.contextmanager
def disk_space(folder: Path) -> Iterator[None]:
    """Turn the disk holding ``folder`` filling up into one :class:`DatasetError` that says so
    (raised after the ``with`` block's own clean-up, so it reports the space really free)."""
    try:
        yield
    except (OSError, DatasetError) as exc:
        if not disk_full(exc):
            raise
        free = shutil.disk_usage(folder).free
        raise DatasetError(
            f"the disk holding {folder} is full ({megabytes(free)} free): nothing was "
            "imported and nothing is left behind; free some space (about the size of the "
            "photos, twice that for a zip) and import again"
        ) from exc


def publish(result: ImportReport, options: dict, dataset: Path, dst: Path) -> None:
    """Write the manifest into the finished ``dataset`` and rename it into place as ``dst``."""
    saved = asdict(result)
    saved["out"] = str(dst)
    del saved["already_imported"]
    manifest = {"format": 1, "options": options, "report": saved}
    # ASCII with escapes: a source path or file name that is not UTF-8 survives the round trip
    (dataset / MANIFEST_NAME).write_text(json.dumps(manifest, indent=1))
    if dst.exists():
        dst.rmdir()  # an empty folder the user made for us (checked before)
    os.rename(dataset, dst)
    remember_sizes(dst)  # the Dataset page's first visit reads none of the headers again
