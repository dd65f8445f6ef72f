"""Importing photos into a dataset, from the layouts people have.

:func:`import_dataset` turns any of these, given as a folder or a .zip, into the dataset shape
that :mod:`catdog.data.datasets` reads (``DIR/{train,validation,test}/<class>/<images>``):

* class folders (``cats/``, ``dogs/`` …), already split into train/validation/test or not
  (``val``/``valid`` are accepted for validation, and a single wrapping folder is looked into);
* Kaggle's "Dogs vs. Cats" ``train/``: one flat folder of ``cat.N.jpg`` and ``dog.N.jpg``;
* Microsoft's ``PetImages/Cat`` and ``PetImages/Dog`` (with its empty, broken and BMP files).

Every file is fully decoded; unusable ones are skipped and listed in the report, never silently
dropped. The source is only read. The dataset is built in a hidden sibling folder and renamed
into place at the end, so a crash never leaves half a dataset behind.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import io
import json
import os
import random
import re
import shutil
import stat
import tempfile
import time
import unicodedata
import warnings
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path

from PIL import Image

from catdog import hosting
from catdog.data.archive import MAX_ENTRY_BYTES, ArchiveError, ExtractLimits, safe_extract
from catdog.data.datasets import (
    MANIFEST_NAME,
    SPLITS,
    DatasetError,
    balance_warnings,
    is_visible,
    natural_key,
)
from catdog.data.images import IMAGE_SUFFIXES, ImageError, not_regular, opened_rgb
from catdog.data.names import look_alike_letters, portable_name, shown
from catdog.data.paths import datasets_dir
from catdog.progress import ProgressFn, TimeLeft, report

# The seed's split: per class, the first 1000 images for training, 500 for validation, 500 test.
SEED_COUNTS = (1000, 500, 500)
# Default fractions for an unsplit source: the seed's proportions.
DEFAULT_FRACTIONS = (0.5, 0.25, 0.25)
# JPEG quality for re-encoded images: high enough that re-encoding loses nothing visible.
JPEG_QUALITY = 95

# Folder names accepted for each split (compared case-insensitively).
_SPLIT_NAMES = {
    "train": "train",
    "training": "train",
    "validation": "validation",
    "val": "validation",
    "valid": "validation",
    "dev": "validation",
    "test": "test",
    "testing": "test",
}
_KAGGLE_NAME = re.compile(r"^(cat|dog)\.\d+\.[a-z0-9]+$", re.IGNORECASE)
_PET_CLASSES = {"cat": "cats", "dog": "dogs"}
_LAST_NUMBER = re.compile(r"(\d+)(?!.*\d)")
_MAX_LISTED_SKIPS = 30  # the summary lists this many skipped files; the manifest lists all

SplitSpec = str | tuple[float, float, float] | None


# ---------------------------------------------------------------------------------------------
# Split rules


def check_split(split: SplitSpec) -> SplitSpec:
    """Validate a split request and return it normalized.

    Args:
        split: None (keep an existing split, else :data:`DEFAULT_FRACTIONS`), ``"seed"``, or
            three positive fractions (train, validation, test) that add up to 1.

    Returns:
        None, ``"seed"``, or a tuple of three floats.
    """
    if split is None or split == "seed":
        return split
    if isinstance(split, str):
        return parse_split(split)
    try:
        fractions = tuple(float(x) for x in split)
    except (TypeError, ValueError) as exc:
        raise DatasetError(f"split must be 'seed' or three fractions, got {split!r}") from exc
    if len(fractions) != 3 or any(not f > 0 for f in fractions):
        raise DatasetError(
            f"split fractions must be three positive numbers (train, validation, test), "
            f"got {split!r}"
        )
    if abs(sum(fractions) - 1.0) > 1e-6:
        raise DatasetError(
            f"split fractions must add up to 1, got {', '.join(f'{f:g}' for f in fractions)} "
            f"(sum {sum(fractions):g})"
        )
    return fractions  # type: ignore[return-value]


def parse_split(text: str) -> str | tuple[float, float, float]:
    """Parse a split written on the command line.

    Args:
        text: ``"seed"``, fractions like ``"0.5,0.25,0.25"``, or percentages like ``"50,25,25"``.

    Returns:
        ``"seed"`` or a tuple of three fractions adding up to 1.
    """
    cleaned = text.strip().lower()
    if cleaned == "seed":
        return "seed"
    parts = [p for p in re.split(r"[,/:\s]+", cleaned) if p]
    try:
        numbers = [float(p.rstrip("%")) for p in parts]
    except ValueError:
        numbers = []
    if len(numbers) != 3:
        raise DatasetError(
            f"cannot read split {text!r}: write 'seed', three fractions like 0.5,0.25,0.25, "
            "or three percentages like 50,25,25"
        )
    if abs(sum(numbers) - 100) < 1e-6:
        numbers = [n / 100 for n in numbers]
    return check_split(tuple(numbers))  # type: ignore[return-value]


def _fraction_counts(n: int, fractions: tuple[float, float, float]) -> tuple[int, int, int]:
    """Split ``n`` images by ``fractions`` (largest remainder; ties go to the earlier split),
    giving every split at least one image (needs ``n >= 3``)."""
    exact = [n * f for f in fractions]
    sizes = [int(x) for x in exact]
    by_remainder = sorted(range(3), key=lambda i: (-(exact[i] - sizes[i]), i))
    for i in by_remainder[: n - sum(sizes)]:
        sizes[i] += 1
    for i in range(3):
        while sizes[i] < 1:  # take one from the biggest split
            sizes[max(range(3), key=lambda j: sizes[j])] -= 1
            sizes[i] += 1
    return sizes[0], sizes[1], sizes[2]


# ---------------------------------------------------------------------------------------------
# Import report


@dataclass(frozen=True)
class SkippedFile:
    """A source file that was not imported, and why (the reason names the file)."""

    file: str
    reason: str


@dataclass
class ImportReport:
    """What an import did; :meth:`summary` says it in words."""

    out: Path
    source: str
    layout: str  # "split folders", "class folders", "kaggle" or "petimages"
    split: str | list[float]  # "kept", "seed", or the fractions used
    seed: int
    classes: list[str]
    counts: dict[str, dict[str, int]]
    skipped: list[SkippedFile] = field(default_factory=list)
    copied: int = 0  # images copied byte for byte (already plain RGB JPEGs)
    converted: int = 0  # images re-encoded as RGB JPEG
    unused: int = 0  # usable files the seed split did not need (never decoded, or extras)
    created: str = ""
    already_imported: bool = False
    warnings: list[str] = field(default_factory=list)  # imbalance, look-alike class names

    @property
    def total(self) -> int:
        """Number of images in the dataset."""
        return sum(sum(per_class.values()) for per_class in self.counts.values())

    def summary(self) -> str:
        """A few lines for people: counts per split and class, and every skipped file."""
        split = (
            self.split if isinstance(self.split, str) else "/".join(f"{f:g}" for f in self.split)
        )
        lines = []
        source, out = shown(self.source), shown(str(self.out))
        if self.already_imported:
            lines.append(f"{out} already holds this import of {source}; nothing to do.")
        else:
            lines.append(f"Imported {self.total:,} images from {source} into {out}.")
        lines.append(
            f"Layout: {self.layout}; split: {split}"
            + (f" (seed {self.seed})" if isinstance(self.split, list) else "")
        )
        width = max(len(c) for c in [*self.classes, "total"]) + 2
        lines.append(
            "  "
            + "split".ljust(12)
            + "".join(c.rjust(width) for c in self.classes)
            + "total".rjust(width)
        )
        for name, per_class in self.counts.items():
            cells = "".join(f"{per_class.get(c, 0):>{width},}" for c in self.classes)
            lines.append(f"  {name:<12}{cells}{sum(per_class.values()):>{width},}")
        lines.append(
            f"{self.copied:,} copied as they were, {self.converted:,} re-encoded as RGB "
            f"JPEG (quality {JPEG_QUALITY})."
        )
        if self.unused:
            lines.append(f"{self.unused:,} further files were not needed by the seed split.")
        if self.skipped:
            lines.append(f"Skipped {len(self.skipped):,} file(s):")
            lines += [f"  - {s.reason}" for s in self.skipped[:_MAX_LISTED_SKIPS]]
            if len(self.skipped) > _MAX_LISTED_SKIPS:
                lines.append(
                    f"  … and {len(self.skipped) - _MAX_LISTED_SKIPS:,} more "
                    f"(all listed in {self.out / MANIFEST_NAME})"
                )
        else:
            lines.append("No file was skipped.")
        lines += [f"Warning: {warning}." for warning in self.warnings]
        return "\n".join(lines)


# ---------------------------------------------------------------------------------------------
# Finding the images in a source


@dataclass(frozen=True)
class _Item:
    path: Path
    rel: str  # path relative to the source root, for messages
    cls: str
    split: str | None  # the split it already had, if any

    @property
    def seed_key(self) -> tuple:
        match = _LAST_NUMBER.search(Path(self.rel).stem)
        number = int(match.group(1)) if match else None
        return (number is None, number or 0, natural_key(self.rel))


def _what_it_is(entry: os.DirEntry) -> str:
    """Say what a directory entry that is neither a real folder nor a regular file is."""
    if entry.is_symlink():
        return "is a symbolic link; catdog never follows links, copy the photos in instead"
    return not_regular(entry.stat(follow_symlinks=False).st_mode)


def _scan(folder: Path) -> tuple[list[Path], list[Path], list[tuple[Path, str]]]:
    """The visible entries of one folder, never following links: (real folders, regular
    files, others with what they are), folders and files in natural order.

    Raises:
        OSError: the folder cannot be listed.
    """
    dirs, files, others = [], [], []
    with os.scandir(folder) as entries:
        for entry in entries:
            if not is_visible(entry.name):
                continue
            if entry.is_dir(follow_symlinks=False):
                dirs.append(Path(entry.path))
            elif entry.is_file(follow_symlinks=False):
                files.append(Path(entry.path))
            else:
                others.append((Path(entry.path), _what_it_is(entry)))
    by_name = lambda p: natural_key(p.name)  # noqa: E731
    return sorted(dirs, key=by_name), sorted(files, key=by_name), others


def _subdirs(folder: Path) -> list[Path]:
    """The real (not linked) visible subfolders of ``folder``, in natural order."""
    try:
        return _scan(folder)[0]
    except OSError:
        return []


def _files_here(folder: Path) -> list[Path]:
    """The visible regular files directly in ``folder``."""
    try:
        return _scan(folder)[1]
    except OSError:
        return []


def _walk(folder: Path, root: Path) -> tuple[list[Path], list[SkippedFile]]:
    """Every visible regular file under ``folder`` in natural order of its path, and what was
    passed over (links, devices, pipes, sockets, unreadable folders), named relative to
    ``root``. Links are never followed, so the walk never leaves ``folder``."""
    files: list[Path] = []
    passed: list[SkippedFile] = []
    pending = [folder]
    while pending:
        here = pending.pop()
        try:
            dirs, found, others = _scan(here)
        except OSError as exc:
            rel = here.relative_to(root).as_posix()
            why = f"{shown(rel)}/ could not be read ({exc.strerror or exc})"
            passed.append(SkippedFile(rel, why))
            continue
        pending += dirs
        files += found
        for path, what in others:
            rel = path.relative_to(root).as_posix()
            passed.append(SkippedFile(rel, f"{shown(rel)} {what}; skipped"))
    files.sort(key=lambda p: natural_key(p.relative_to(folder).as_posix()))
    passed.sort(key=lambda s: natural_key(s.file))
    return files, passed


def _walk_files(folder: Path) -> list[Path]:
    """Every visible regular file under ``folder``, in natural order (see :func:`_walk`)."""
    return _walk(folder, folder)[0]


def _detect_layout(root: Path, source: Path, note: str = "") -> tuple[str, Path]:
    """Find which layout ``root`` holds; returns (layout, folder where it starts). Errors
    name ``source`` and folders relative to it, never the extraction folder; ``note`` is added
    to them."""
    base = root
    for _ in range(4):  # look through a few single wrapping folders
        dirs = _subdirs(base)
        files = _files_here(base)
        kaggle = [p for p in files if _KAGGLE_NAME.match(p.name)]
        if kaggle and len(kaggle) * 2 >= len(files):
            return "kaggle", base
        for candidate in (base, *dirs):
            names = {d.name.casefold() for d in _subdirs(candidate)}
            if candidate.name.casefold() == "petimages" and set(_PET_CLASSES) <= names:
                return "petimages", candidate
        split_dirs = [d for d in dirs if d.name.casefold() in _SPLIT_NAMES]
        if split_dirs and any(_subdirs(d) for d in split_dirs):
            return "split folders", base
        if len(dirs) >= 2:
            return "class folders", base
        images = [p for p in files if p.suffix.lower() in IMAGE_SUFFIXES]
        if len(dirs) == 1 and not images:
            base = dirs[0]
            continue
        break
    where = f"{base.relative_to(root).as_posix()}/" if base != root else "its top level"
    raise DatasetError(
        f"cannot find a dataset in {source}: expected class folders (cats/, dogs/ …), optionally "
        "inside train/, validation/ and test/; or Kaggle's flat cat.N.jpg/dog.N.jpg files; or "
        f"Microsoft's PetImages/Cat and PetImages/Dog. Found {len(_subdirs(base))} folder(s) "
        f"and {len(_files_here(base))} file(s) in {where}{note}"
    )


def _collect(root: Path, layout: str, base: Path) -> list[_Item]:
    """List the candidate images of a source whose layout is known."""
    rel = lambda p: p.relative_to(root).as_posix()  # noqa: E731
    items: list[_Item] = []
    if layout == "kaggle":
        for path in _walk_files(base):
            match = _KAGGLE_NAME.match(path.name)
            if match and path.parent == base:
                items.append(_Item(path, rel(path), match.group(1).lower() + "s", None))
    elif layout == "petimages":
        for folder in _subdirs(base):
            cls = _PET_CLASSES.get(folder.name.casefold())
            if cls:
                items += [_Item(p, rel(p), cls, None) for p in _walk_files(folder)]
    elif layout == "split folders":
        seen: dict[str, Path] = {}
        for folder in _subdirs(base):
            split = _SPLIT_NAMES.get(folder.name.casefold())
            if split is None:
                continue
            if split in seen:
                raise DatasetError(
                    f"{base} has both {seen[split].name}/ and {folder.name}/ for the {split} "
                    "split; keep one of them"
                )
            seen[split] = folder
            for cls_dir in _subdirs(folder):
                items += [_Item(p, rel(p), cls_dir.name, split) for p in _walk_files(cls_dir)]
    else:
        for cls_dir in _subdirs(base):
            items += [_Item(p, rel(p), cls_dir.name, None) for p in _walk_files(cls_dir)]
    return items


def _stray_files(root: Path, layout: str, items: list[_Item]) -> list[SkippedFile]:
    """Files in the source that belong to no class: reported, never silently dropped."""
    used = {item.path for item in items}
    why = (
        "its name does not say cat or dog (Kaggle names are cat.N.jpg and dog.N.jpg)"
        if layout == "kaggle"
        else "it is not inside a class folder"
    )
    strays = [p.relative_to(root).as_posix() for p in _walk_files(root) if p not in used]
    return [SkippedFile(rel, f"{shown(rel)} was left out: {why}") for rel in strays]


# ---------------------------------------------------------------------------------------------
# Checking and writing one image (runs in worker threads; Pillow releases the GIL)


def _is_plain_jpeg(data: bytes) -> bool:
    """True for a baseline RGB JPEG without EXIF rotation: it can be copied byte for byte."""
    try:
        with Image.open(io.BytesIO(data), formats=["JPEG"]) as image:
            if image.format != "JPEG" or image.mode != "RGB" or image.info.get("progressive"):
                return False
            return image.getexif().get(0x0112, 1) == 1  # 0x0112: EXIF Orientation
    except Exception:  # any doubt about the header: re-encode instead of copying
        return False


def read_regular(path: Path, rel: str) -> bytes | str:
    """Read a regular file whole; returns its bytes, or why it was not read (naming it ``rel``).

    The walk already passed over links and special files; this checks again on the open file
    (it may have been swapped since), without following a link or blocking on a pipe.
    """
    flags = os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0)
    try:
        with os.fdopen(os.open(path, flags), "rb") as f:
            st = os.fstat(f.fileno())
            if not stat.S_ISREG(st.st_mode):
                return f"{rel} is not a regular file"
            if st.st_size > MAX_ENTRY_BYTES:
                return (
                    f"{rel} is {st.st_size:,} bytes, over the {MAX_ENTRY_BYTES:,}-byte limit "
                    "for one photo"
                )
            data = f.read(MAX_ENTRY_BYTES + 1)  # bounded even if the file grows meanwhile
    except OSError as exc:
        if os.path.islink(path):
            return f"{rel} is a symbolic link; catdog never follows links"
        return f"{rel} could not be read ({exc.strerror or exc})"
    if len(data) > MAX_ENTRY_BYTES:
        return f"{rel} is bigger than {MAX_ENTRY_BYTES:,} bytes, the limit for one photo"
    return data


def stage_photo(data: bytes, name: str, staged: Path) -> tuple[str, str]:
    """Check a photo's bytes by decoding them fully, and stage it as an RGB JPEG.

    The one check every photo catdog keeps goes through, whether imported or added by hand.

    Args:
        data: the file's bytes.
        name: the name to use in messages (already made one line, see
            :func:`catdog.data.names.shown`).
        staged: the file to write (a plain RGB JPEG is copied byte for byte, anything else
            re-encoded).

    Returns:
        ``("copied" | "converted", "")``, or ``("skipped", reason)`` with the one-line reason,
        naming the file, when it is not a usable image.
    """
    try:
        # The decoded image counts against the decode budget until it is written (see
        # catdog.data.images.DECODE_BUDGET_PIXELS), so the pool's threads cannot each hold a
        # full-size photo at once.
        with opened_rgb(data, name=name) as image:
            if _is_plain_jpeg(data):
                staged.write_bytes(data)
                return "copied", ""
            image.save(staged, "JPEG", quality=JPEG_QUALITY)
            return "converted", ""
    except ImageError as exc:
        return "skipped", str(exc)


def _ingest(item: _Item, staged: Path) -> tuple[str, str]:
    """Read one file and check and stage it (:func:`stage_photo`); returns (outcome, reason)."""
    name = shown(item.rel)  # the name in messages: one line, nothing hidden
    data = read_regular(item.path, name)
    if isinstance(data, str):
        return "skipped", data
    return stage_photo(data, name, staged)


class _Checker:
    """Runs :func:`_ingest` over items on a thread pool, in order, and keeps the tallies."""

    def __init__(
        self, pool: ThreadPoolExecutor, staging: Path, total: int, progress: ProgressFn | None
    ) -> None:
        self.pool, self.staging, self.total, self.progress = pool, staging, total, progress
        self.staged: dict[Path, Path] = {}
        self.skipped: list[SkippedFile] = []
        self.outcome: dict[Path, str] = {}  # "copied" or "converted", per usable file
        self.done = 0
        self.time_left = TimeLeft()

    def usable(self, items: list[_Item]) -> list[_Item]:
        """Check ``items``; return the usable ones in the same order."""
        first = self.done  # each checked file gets its own staging name
        targets = [self.staging / f"{first + i:07d}.jpg" for i in range(len(items))]
        good = []
        for item, target, (outcome, reason) in zip(
            items, targets, self.pool.map(_ingest, items, targets), strict=True
        ):
            self.done += 1
            self.total = max(self.total, self.done)
            message = self.time_left.message("Checking images", self.done, self.total)
            report(self.progress, self.done, self.total, message)
            if outcome == "skipped":
                self.skipped.append(SkippedFile(item.rel, reason))
                continue
            self.outcome[item.path] = outcome
            self.staged[item.path] = target
            good.append(item)
        return good


# ---------------------------------------------------------------------------------------------
# Import


def _fingerprint(source: Path) -> str:
    """A cheap identity of the source's content: names, sizes and modification times."""
    digest = hashlib.sha256()
    paths = [source] if source.is_file() else _walk_files(source)
    for path in paths:
        st = path.lstat()
        name = path.name if path == source else path.relative_to(source).as_posix()
        line = f"{name}\0{st.st_size}\0{st.st_mtime_ns}\n"
        digest.update(line.encode("utf-8", "surrogateescape"))  # names need not be UTF-8
    return digest.hexdigest()


def _existing_import(out: Path, options: dict) -> ImportReport | None:
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


def _assign(
    items: list[_Item],
    checker: _Checker,
    layout: str,
    split: SplitSpec,
    seed: int,
    seed_counts: tuple[int, int, int],
) -> tuple[dict, int]:
    """Check the images and decide each usable one's split; returns (assignment, unused)."""
    classes = sorted({item.cls for item in items})
    by_class = {cls: [item for item in items if item.cls == cls] for cls in classes}
    assignment = {s: {cls: [] for cls in classes} for s in SPLITS}
    unused = 0
    if split == "seed":
        need = sum(seed_counts)
        checker.total = sum(min(len(v), need) for v in by_class.values())
        for cls, candidates in by_class.items():
            candidates = sorted(candidates, key=lambda item: item.seed_key)
            good: list[_Item] = []
            pos = 0
            while len(good) < need and pos < len(candidates):  # decode only what is needed
                batch = candidates[pos : pos + need - len(good) + 8]
                pos += len(batch)
                good += checker.usable(batch)
            if len(good) < need:
                raise DatasetError(
                    f"class {cls!r} has {len(good):,} usable images (of {len(candidates):,} "
                    f"files) but the seed split needs {need:,} ({seed_counts[0]:,} train + "
                    f"{seed_counts[1]:,} validation + {seed_counts[2]:,} test); import it with "
                    "split fractions instead, e.g. 0.5,0.25,0.25"
                )
            unused += len(candidates) - pos + len(good) - need
            cuts = (0, seed_counts[0], seed_counts[0] + seed_counts[1], need)
            for s, start, stop in zip(SPLITS, cuts, cuts[1:], strict=False):
                assignment[s][cls] = good[start:stop]
        return assignment, unused

    good = checker.usable(items)
    if split is None and layout == "split folders":
        for item in good:
            assignment[item.split][item.cls].append(item)
        _check_usable_split(items, assignment, checker.skipped)
        return assignment, 0
    fractions = split if isinstance(split, tuple) else DEFAULT_FRACTIONS
    for cls in classes:
        mine = sorted((item for item in good if item.cls == cls), key=lambda i: natural_key(i.rel))
        if len(mine) < 3:
            raise DatasetError(
                f"class {cls!r} has {len(mine)} usable image(s); at least 3 are needed "
                "(one per split)"
            )
        random.Random(f"{seed}:{cls}").shuffle(mine)
        n_train, n_val, _ = _fraction_counts(len(mine), fractions)
        assignment["train"][cls] = mine[:n_train]
        assignment["validation"][cls] = mine[n_train : n_train + n_val]
        assignment["test"][cls] = mine[n_train + n_val :]
    return assignment, 0


def _check_kept_split(items: list[_Item], source: Path) -> None:
    """An already-split source kept as is must have every split and the same classes in each."""
    present = {(item.split, item.cls) for item in items}
    classes = sorted({cls for _, cls in present})
    for s in SPLITS:
        lacking = [cls for cls in classes if (s, cls) not in present]
        if lacking:
            raise DatasetError(
                f"{source} is already split, but its {s} split has no images of "
                f'{", ".join(lacking)}; add them, or pass a split ("seed" or fractions such '
                "as 0.5,0.25,0.25) to re-split all the images"
            )


def _check_usable_split(items: list[_Item], assignment: dict, skipped: list[SkippedFile]) -> None:
    """A kept split must still hold every class in every split once unreadable files are out."""
    reasons = {s.file: s.reason for s in skipped}
    for s, per_class in assignment.items():
        for cls, chosen in per_class.items():
            if chosen:
                continue
            files = [item.rel for item in items if (item.split, item.cls) == (s, cls)]
            raise DatasetError(
                f"the {s} split has no usable images of {cls}: none of its {len(files):,} "
                f"file(s) could be read (the first: {reasons.get(files[0], '?')}); replace "
                'them, or pass a split ("seed" or fractions such as 0.5,0.25,0.25) to re-split '
                "all the images"
            )


def _place(assignment: dict, staged: dict[Path, Path], dataset: Path) -> dict:
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


def _gather(
    src: Path, source: Path, work: Path, progress: ProgressFn | None
) -> tuple[Path, str, list[_Item], list[SkippedFile]]:
    """Extract a zip into ``work`` (or take the folder as it is), find its layout and list its
    candidate images; returns (root, layout, items, files passed over before checking)."""
    if src.is_file():
        root = work / "extracted"
        try:
            extraction = safe_extract(src, root, limits=_extract_limits(), progress=progress)
        except ArchiveError as exc:
            raise DatasetError(str(exc)) from exc
        passed = [SkippedFile(entry.name, entry.reason) for entry in extraction.skipped]
    else:
        root, passed = src, _walk(src, src)[1]
    note = f" ({len(passed):,} entries were passed over, e.g. {passed[0].reason})" if passed else ""
    layout, base = _detect_layout(root, source, note)
    # One class, however its folder name is encoded (é composed or decomposed: NFC or NFD).
    collected = _collect(root, layout, base)
    items = [replace(item, cls=unicodedata.normalize("NFC", item.cls)) for item in collected]
    hosting.check_dataset_images(len(items), str(source))
    found = Counter(item.cls for item in items)
    if len(found) < 2:
        empty = [f"{cls}: none" for cls in _class_folders(layout, base) if cls not in found]
        held = [f"{cls}: {n:,} file{'s' if n != 1 else ''}" for cls, n in sorted(found.items())]
        raise DatasetError(
            f"{source} holds {len(found)} class(es) of images ({'; '.join(held + empty) or 'none'})"
            f"; a classifier needs 2 or more class folders with images{note}"
        )
    return root, layout, items, passed


def _class_folders(layout: str, base: Path) -> list[str]:
    """The class folder names of a class-folder layout (empty folders too), in NFC form."""
    if layout == "class folders":
        folders = _subdirs(base)
    elif layout == "split folders":
        splits = [d for d in _subdirs(base) if d.name.casefold() in _SPLIT_NAMES]
        folders = [cls for split in splits for cls in _subdirs(split)]
    else:
        return []
    return sorted({unicodedata.normalize("NFC", folder.name) for folder in folders})


def _extract_limits() -> ExtractLimits | None:
    """In hosted mode an archive may expand to twice the dataset cap (photos barely compress;
    the finished dataset is checked against the cap itself); locally, the archive defaults."""
    if not hosting.hosted():
        return None
    limits = hosting.settings()
    return ExtractLimits(
        max_total_bytes=2 * limits.max_dataset_bytes,
        max_entries=2 * limits.max_dataset_images + 1000,
    )


def _check_hosted_source(source: Path) -> None:
    """In hosted mode, read only what a visitor uploaded: a file the dashboard wrote into this
    process' upload folder (:func:`upload_dir_prefix`), within the upload cap."""
    if not hosting.hosted():
        return
    src = source.resolve()
    folder = src.parent
    uploaded = (
        src.is_file()
        and folder.parent == Path(tempfile.gettempdir()).resolve()
        and folder.name.startswith(upload_dir_prefix())
    )
    if not uploaded:
        hosting.refuse_server_files(f"importing {source}")
    hosting.check_upload(src.stat().st_size, src.name)
    hosting.check_quota(src.stat().st_size, src.name)


def import_dataset(
    source: str | Path,
    out: str | Path,
    *,
    split: SplitSpec = None,
    seed: int = 0,
    seed_counts: tuple[int, int, int] = SEED_COUNTS,
    workers: int | None = None,
    progress: ProgressFn | None = None,
) -> ImportReport:
    """Import images from a folder or .zip into a new dataset folder ``out``.

    Args:
        source: a folder or .zip in one of the layouts described in this module's docstring.
            It is only read, never modified.
        out: the dataset folder to create. If it already holds the same import (same source,
            unchanged, same options) nothing is done; if it holds anything else an error is
            raised and nothing is touched.
        split: None keeps an existing train/validation/test split and splits other sources by
            :data:`DEFAULT_FRACTIONS`; ``"seed"`` takes, per class and in file-number order, the
            first ``seed_counts`` usable images; a tuple of three fractions re-splits at random.
        seed: random seed for fraction splits (same seed, same split).
        seed_counts: (train, validation, test) images per class for ``split="seed"``.
        workers: threads decoding images (default: up to 8, one per CPU core).
        progress: called as ``progress(done, total, message)``.

    Returns:
        An :class:`ImportReport`; ``report.summary()`` describes it.

    Raises:
        DatasetError: the source is missing, unsafe, not in a known layout, has too few images
            for the split, or ``out`` is taken.
        catdog.hosting.HostedLimitError: in hosted mode, the source is not an upload (a folder
            or file of the server), the upload or the dataset is over a cap, or the workspace
            is over its quota.
    """
    source, out = Path(source).expanduser(), Path(out).expanduser()
    split = _check_request(split, seed_counts)
    _check_hosted_source(source)  # before anything tells what the server has
    src, dst = _check_paths(source, out)
    options = _options(src, split, seed, seed_counts)
    earlier = _existing_import(dst, options)
    if earlier is not None:
        return earlier

    dst.parent.mkdir(parents=True, exist_ok=True)
    _sweep_folder(dst.parent, _WORK_DIR, time.time() - STALE_AFTER_MINUTES * 60, dst.name)
    with _disk_space(dst.parent):  # a full disk: one clear error, once the work is gone
        work = Path(tempfile.mkdtemp(prefix=work_dir_prefix(dst.name), dir=dst.parent))
        try:
            result = _build(src, source, dst, work, split, seed, seed_counts, workers, progress)
            _publish(result, options, work / "dataset", dst)
        finally:
            shutil.rmtree(work, ignore_errors=True)
    return result


def _check_request(split: SplitSpec, seed_counts: tuple[int, int, int]) -> SplitSpec:
    """Validate the split (:func:`check_split`) and, for the seed split, its counts."""
    split = check_split(split)
    if split == "seed" and (len(seed_counts) != 3 or min(seed_counts) < 1):
        raise DatasetError(
            f"seed_counts must be three positive numbers (train, validation, test), "
            f"got {seed_counts!r}"
        )
    return split


def _options(src: Path, split: SplitSpec, seed: int, seed_counts: tuple[int, int, int]) -> dict:
    """What makes an import this import: the source, its fingerprint and the split asked for
    (kept in the manifest; an import with the same options is not done twice)."""
    return {
        "source": str(src),
        "fingerprint": _fingerprint(src),
        "split": list(split) if isinstance(split, tuple) else split,
        "seed": seed,
        "seed_counts": list(seed_counts) if split == "seed" else None,
    }


def _build(
    src: Path,
    source: Path,
    dst: Path,
    work: Path,
    split: SplitSpec,
    seed: int,
    seed_counts: tuple[int, int, int],
    workers: int | None,
    progress: ProgressFn | None,
) -> ImportReport:
    """Find the source's images, check them, and place the chosen ones in ``work/dataset``;
    returns the report of the import into ``dst`` (see :func:`import_dataset`).

    Raises:
        DatasetError: as for :func:`import_dataset`.
        catdog.hosting.HostedLimitError: in hosted mode, a source or dataset over a cap.
    """
    root, layout, items, passed = _gather(src, source, work, progress)
    kept = split is None and layout == "split folders"
    if kept:
        _check_kept_split(items, source)
    checker, assignment, unused = _check_images(
        items, work / "staging", layout, split, seed, seed_counts, workers, progress
    )
    dataset = work / "dataset"
    placed = [i.path for per_class in assignment.values() for v in per_class.values() for i in v]
    outcomes = Counter(checker.outcome[path] for path in placed)
    result = ImportReport(
        out=dst,
        source=str(src),
        layout=layout,
        split="kept" if kept else ("seed" if split == "seed" else list(split or DEFAULT_FRACTIONS)),
        seed=seed,
        classes=sorted({item.cls for item in items}),
        counts=_place(assignment, checker.staged, dataset),
        skipped=passed + checker.skipped + _stray_files(root, layout, items),
        unused=unused,
        created=datetime.now(UTC).isoformat(timespec="seconds"),
        copied=outcomes["copied"],
        converted=outcomes["converted"],
    )
    result.warnings = _name_warnings(result.classes) + balance_warnings(result.counts)
    hosting.check_dataset_bytes(hosting.folder_size(dataset), str(source))
    return result


def _check_images(
    items: list[_Item],
    staging: Path,
    layout: str,
    split: SplitSpec,
    seed: int,
    seed_counts: tuple[int, int, int],
    workers: int | None,
    progress: ProgressFn | None,
) -> tuple[_Checker, dict, int]:
    """Decode the images on a thread pool, staging the usable ones in ``staging``, and decide
    each one's split (:func:`_assign`); returns (checker, assignment, unused)."""
    staging.mkdir()
    with (
        ThreadPoolExecutor(workers or min(8, os.cpu_count() or 2)) as pool,
        warnings.catch_warnings(),
    ):
        # PetImages is full of "Possibly corrupt EXIF data" warnings; the pixels are fine.
        warnings.filterwarnings("ignore", category=UserWarning, module=r"PIL\.")
        checker = _Checker(pool, staging, len(items), progress)
        assignment, unused = _assign(items, checker, layout, split, seed, seed_counts)
    return checker, assignment, unused


def _disk_is_full(exc: BaseException | None) -> bool:
    """Whether ``exc``, or what caused it, is the disk (or the user's quota) running full."""
    while exc is not None:
        if isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT):
            return True
        exc = exc.__cause__ or exc.__context__
    return False


@contextlib.contextmanager
def _disk_space(folder: Path) -> Iterator[None]:
    """Turn the disk holding ``folder`` filling up into one :class:`DatasetError` that says so
    (raised after the ``with`` block's own clean-up, so it reports the space really free)."""
    try:
        yield
    except (OSError, DatasetError) as exc:
        if not _disk_is_full(exc):
            raise
        free = shutil.disk_usage(folder).free
        raise DatasetError(
            f"the disk holding {folder} is full ({free / 1e6:,.1f} MB free): nothing was "
            "imported and nothing is left behind; free some space (about the size of the "
            "photos, twice that for a zip) and import again"
        ) from exc


def _name_warnings(classes: list[str]) -> list[str]:
    """Class names written in Latin letters with look-alikes from another script."""
    warnings = []
    for cls in classes:
        if letters := look_alike_letters(cls):
            warnings.append(
                f"class {shown(cls)} mixes Latin letters with look-alikes from another script "
                f"({'; '.join(letters)}): it only looks like a name spelled in Latin letters"
            )
    return warnings


def _check_paths(source: Path, out: Path) -> tuple[Path, Path]:
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
    return src, dst


def _publish(result: ImportReport, options: dict, dataset: Path, dst: Path) -> None:
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


# ---------------------------------------------------------------------------------------------
# Crash leftovers
#
# An import works in ``.<name>.importing-<pid>-<random>/`` beside its output (``<pid>`` was
# added later: older leftovers lack it), and the dashboard copies an upload into
# ``<temp>/catdog-upload-<pid>-<random>/``. Both are deleted when the import ends, even on an
# error; only a process that is killed (or loses its power) leaves them behind.

UPLOAD_DIR_PREFIX = "catdog-upload-"
# A leftover must be this old (nothing in it changed for so long) to be swept: an import
# writes to its staging folder for every image, and extracting even 8 GiB takes minutes.
STALE_AFTER_MINUTES = 60
_WORK_DIR = re.compile(r"^\.(?P<name>.+)\.importing-(?:(?P<pid>\d+)-)?[a-z0-9_]+$")
_UPLOAD_DIR = re.compile(r"^catdog-upload-(?:(?P<pid>\d+)-)?[a-z0-9_]+$")
_WORK_PARTS = {"extracted", "staging", "dataset"}  # all an import ever makes in its folder


def work_dir_prefix(name: str) -> str:
    """Prefix of the hidden work folder an import into ``name`` makes beside it."""
    return f".{name}.importing-{os.getpid()}-"


def upload_dir_prefix() -> str:
    """Prefix of the temporary folder an uploaded archive is written to."""
    return f"{UPLOAD_DIR_PREFIX}{os.getpid()}-"


def _pid_alive(pid: int) -> bool:
    """Whether process ``pid`` still runs on this computer (True when that cannot be told)."""
    if os.name == "nt":  # os.kill would terminate the process there
        return True
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except (ProcessLookupError, OverflowError):
        return False
    except OSError:  # PermissionError: it runs, as another user
        return True
    return True


def _holds_work(found: list[os.DirEntry]) -> bool:
    """An import's work folder holds at most its extracted/, staging/ and dataset/ folders."""
    return all(e.name in _WORK_PARTS and e.is_dir(follow_symlinks=False) for e in found)


def _holds_upload(found: list[os.DirEntry]) -> bool:
    """An upload folder holds at most the one uploaded file."""
    return len(found) <= 1 and all(e.is_file(follow_symlinks=False) for e in found)


def _looks_like_ours(entry: os.DirEntry, holds_ours: Callable[[list], bool]) -> bool:
    """A real folder (not a link) of this user holding only what catdog puts there."""
    if not entry.is_dir(follow_symlinks=False):
        return False
    if hasattr(os, "getuid") and entry.stat(follow_symlinks=False).st_uid != os.getuid():
        return False
    with os.scandir(entry.path) as inside:
        return holds_ours(list(inside))


def _last_change(path: str) -> float:
    """Newest modification time of a folder and of its direct entries."""
    with os.scandir(path) as inside:
        times = [e.stat(follow_symlinks=False).st_mtime for e in inside]
    return max([os.lstat(path).st_mtime, *times])


def _sweep_folder(
    folder: Path, pattern: re.Pattern[str], cutoff: float, name: str | None = None
) -> list[Path]:
    """Delete the stale leftovers matching ``pattern`` (:data:`_WORK_DIR` or
    :data:`_UPLOAD_DIR`) directly in ``folder``, only those of the output ``name`` if given;
    returns what was deleted."""
    holds_ours = _holds_work if pattern is _WORK_DIR else _holds_upload
    removed: list[Path] = []
    try:
        with os.scandir(folder) as entries:
            candidates = [e for e in entries if pattern.match(e.name)]
    except OSError:
        return removed
    for entry in candidates:
        found = pattern.match(entry.name)
        if name is not None and found.groupdict().get("name") != name:
            continue
        pid = found.group("pid")
        try:
            if not _looks_like_ours(entry, holds_ours) or (pid and _pid_alive(int(pid))):
                continue
            if _last_change(entry.path) > cutoff:
                continue
            shutil.rmtree(entry.path)
        except OSError:  # gone meanwhile, or not ours to delete: leave it
            continue
        removed.append(Path(entry.path))
    return removed


def sweep_stale_imports(
    folders: Iterable[str | Path] | None = None,
    *,
    temp_dir: str | Path | None = None,
    older_than_minutes: float = STALE_AFTER_MINUTES,
) -> list[Path]:
    """Delete what killed imports left behind; returns the folders deleted.

    Looks, without descending, in ``folders`` for hidden ``.NAME.importing-*`` work folders
    and in ``temp_dir`` for ``catdog-upload-*`` folders. One is deleted only if all of these
    hold: it is a real folder (not a link) of this user; it holds nothing but what an import
    puts there; the process that made it is gone (its name carries the pid; older names
    without one are judged by age alone); and nothing directly in it changed for
    ``older_than_minutes``. Datasets and anything else are never touched. Cheap enough for
    every start of the dashboard or the command line: one listing per folder and a few stats
    per leftover. (:func:`import_dataset` also sweeps its own output name's leftovers.)

    Whether a process is gone is known only on this computer: a data home shared between
    computers relies on the age rule, and on Windows, where that check is not made, folders
    carrying a pid are never swept.

    Args:
        folders: where imports write (default: the data home's datasets folder).
        temp_dir: where uploads are written (default: the system's temporary folder).
        older_than_minutes: how long a leftover must have been untouched.

    Returns:
        The deleted folders.
    """
    cutoff = time.time() - older_than_minutes * 60
    removed = []
    for folder in folders if folders is not None else [datasets_dir()]:
        removed += _sweep_folder(Path(folder), _WORK_DIR, cutoff)
    temp = Path(temp_dir) if temp_dir is not None else Path(tempfile.gettempdir())
    return removed + _sweep_folder(temp, _UPLOAD_DIR, cutoff)
