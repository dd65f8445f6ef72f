"""The checks an import request passes before any image is read: the split, the paths, hosted
mode's sources and caps, and whether the output already holds this very import.
"""

from __future__ import annotations

import hashlib
import json
import tempfile
from pathlib import Path

from catdog.data.datasets import (
    MANIFEST_NAME,
    DatasetError,
)
from catdog.data.importer.layouts import walk_files
from catdog.data.importer.report import ImportReport, SkippedFile
from catdog.data.importer.splits import SplitSpec, check_split
from catdog.data.importer.sweep import upload_dir_prefix
from catdog.data.names import case_twins, look_alike_letters, shown
from catdog.data.paths import datasets_dir
from catdog.policy import Policy


def check_request(split: SplitSpec, seed_counts: tuple[int, int, int]) -> SplitSpec:
    """Validate the split (:func:`check_split`) and, for the seed split, its counts."""
    split = check_split(split)
    if split == "seed" and (len(seed_counts) != 3 or min(seed_counts) < 1):
        raise DatasetError(
            f"seed_counts must be three positive numbers (train, validation, test), "
            f"got {seed_counts!r}"
        )
    return split


def check_paths(source: Path, out: Path) -> tuple[Path, Path]:
    """Resolve the source and the output, refusing a missing or special source and overlaps."""
    if not source.exists():
        raise DatasetError(f"{source} does not exist; give a folder of images or a .zip")
    src, dst = source.resolve(), out.resolve()
    if not (src.is_dir() or src.is_file()):
        raise DatasetError(
            f"{source} is neither a folder nor a file (a pipe, device or socket); give a folder "
            "of images or a .zip"
        )
    if dst == src or dst.is_relative_to(src) or (src.is_dir() and src.is_relative_to(dst)):
        raise DatasetError(f"{out} overlaps the source {source}; import into another folder")
    _refuse_data_folders(dst, out)
    return src, dst


def _refuse_data_folders(dst: Path, out: Path) -> None:
    """An import makes a new dataset folder inside the datasets folder (or anywhere else):
    never the datasets folder itself or a folder above it, nor a folder inside a dataset."""
    home = datasets_dir().resolve()
    if home.is_relative_to(dst):
        raise DatasetError(
            f"{shown(str(out))} is the folder that holds all datasets (or one above it); an "
            "import makes a new dataset folder: give --out a new folder's name"
        )
    if dst.is_relative_to(home) and dst.parent != home:
        dataset = dst.relative_to(home).parts[0]
        raise DatasetError(
            f"{shown(str(out))} is inside the dataset {shown(dataset)}; catdog never imports "
            "into or over a dataset. Give --out a new folder's name"
        )


def refuse_case_twins(classes: list[str], source: Path) -> None:
    """Class folders whose names differ only in case are one folder on most disks and two on
    Linux': which is meant cannot be known, so the import is refused, saying which."""
    if twins := case_twins(classes):
        pairs = "; ".join(f"{shown(a)}/ and {shown(b)}/" for a, b in twins)
        raise DatasetError(
            f"{shown(str(source))} has class folders whose names differ only in case ({pairs}): "
            "one class or two? Merge them into one folder, or rename one, and import again"
        )


def check_hosted_source(source: Path, policy: Policy) -> None:
    """In hosted mode, read only what a visitor uploaded: a file the dashboard wrote into this
    process' upload folder (:func:`upload_dir_prefix`), within the upload cap."""
    if policy.allows_server_files:
        return
    src = source.resolve()
    folder = src.parent
    uploaded = (
        src.is_file()
        and folder.parent == Path(tempfile.gettempdir()).resolve()
        and folder.name.startswith(upload_dir_prefix())
    )
    if not uploaded:
        policy.refuse_server_files(f"importing {source}")
    policy.check_upload(src.stat().st_size, src.name)
    policy.check_quota(src.stat().st_size, src.name)


def _fingerprint(source: Path) -> str:
    """A cheap identity of the source's content: names, sizes and modification times."""
    digest = hashlib.sha256()
    paths = [source] if source.is_file() else walk_files(source)
    for path in paths:
        st = path.lstat()
        name = path.name if path == source else path.relative_to(source).as_posix()
        line = f"{name}\0{st.st_size}\0{st.st_mtime_ns}\n"
        digest.update(line.encode("utf-8", "surrogateescape"))  # names need not be UTF-8
    return digest.hexdigest()


def import_options(
    src: Path, split: SplitSpec, seed: int, seed_counts: tuple[int, int, int]
) -> dict:
    """What makes an import this import: the source, its fingerprint and the split asked for
    (kept in the manifest; an import with the same options is not done twice)."""
    return {
        "source": str(src),
        "fingerprint": _fingerprint(src),
        "split": list(split) if isinstance(split, tuple) else split,
        "seed": seed,
        "seed_counts": list(seed_counts) if split == "seed" else None,
    }


def existing_import(out: Path, options: dict) -> ImportReport | None:
    """Return the earlier report if ``out`` holds this very import; raise if it holds other
    content; return None if ``out`` is free (missing or an empty folder)."""
    if not out.exists():
        return None
    if not out.is_dir():
        raise DatasetError(f"{out} exists and is a file; choose another output folder")
    manifest = out / MANIFEST_NAME
    if manifest.is_file():
        try:
            saved = json.loads(manifest.read_text())
        except (OSError, ValueError) as exc:
            raise DatasetError(
                f"{manifest} is unreadable ({exc}); choose another output folder"
            ) from exc
        if saved.get("options") == options:
            saved_report = saved["report"]
            saved_report["skipped"] = [SkippedFile(**s) for s in saved_report["skipped"]]
            return ImportReport(**{**saved_report, "out": out, "already_imported": True})
        raise DatasetError(
            f"{out} already holds a dataset imported from {saved.get('options', {}).get('source')}"
            " with other options or an older version of the source; catdog never overwrites a "
            "dataset. Choose another output folder, or delete that one yourself first"
        )
    if any(out.iterdir()):
        raise DatasetError(
            f"{out} already exists and is not empty; catdog never overwrites or deletes what is "
            "there. Choose another output folder"
        )
    return None


def name_warnings(classes: list[str]) -> list[str]:
    """Class names written in Latin letters with look-alikes from another script."""
    warnings = []
    for cls in classes:
        if letters := look_alike_letters(cls):
            warnings.append(
                f"class {shown(cls)} mixes Latin letters with look-alikes from another script "
                f"({'; '.join(letters)}): it only looks like a name spelled in Latin letters"
            )
    return warnings
