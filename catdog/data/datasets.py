"""Datasets on disk: checking a dataset folder, listing its images, reading their sizes.

A dataset is a folder ``DIR/{train,validation,test}/<class>/<images>``; its classes are the
sorted class folder names (two classes make a binary problem, more a multi-class one).
Importing photos into that shape is :mod:`catdog.data.importer`'s job.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import threading
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from catdog.data.header_cache import HeaderCache
from catdog.data.images import IMAGE_SUFFIXES, ImageError, image_header
from catdog.data.paths import (
    DEMO_DATASET_NAME,
    dataset_roots,
    datasets_dir,
    demo_dataset_dir,
    is_shared,
)
from catdog.policy import current_policy

SPLITS = ("train", "validation", "test")
MANIFEST_NAME = "catdog-dataset.json"


class DatasetError(ValueError):
    """A folder is not a usable dataset, or an import cannot be done; the message says why."""


def natural_key(text: str) -> tuple:
    """Sort key that orders numbers by value: ``cat.2.jpg`` before ``cat.10.jpg``."""
    return tuple(
        int(part) if part.isdigit() else part.casefold() for part in re.split(r"(\d+)", text)
    )


def is_visible(name: str) -> bool:
    """Whether a file or folder name is user content: dotfiles (``.DS_Store``) and macOS's
    ``__MACOSX`` folders are not."""
    return not name.startswith(".") and name != "__MACOSX"


def visible_folders(folder: str | Path) -> list[Path]:
    """The visible subfolders of ``folder`` (a split's class folders, the datasets of a data
    home), in natural order of their names."""
    return sorted(
        (p for p in Path(folder).iterdir() if p.is_dir() and is_visible(p.name)),
        key=lambda p: natural_key(p.name),
    )


def class_images(folder: str | Path) -> list[Path]:
    """The images of one class folder, as counting, training and evaluation all see them.

    An image is a visible entry directly in ``folder`` (sub-folders are not looked into: the
    importer writes flat class folders) whose name ends in one of
    :data:`~catdog.data.images.IMAGE_SUFFIXES`, in any case. Whatever is named as an image but
    is no regular file (a pipe, a device, a broken link) is listed too, so that reading it
    reports why it was skipped instead of leaving it out unseen.

    Args:
        folder: a class folder, such as ``DIR/train/cats``.

    Returns:
        The paths, in natural order of their names (``cat.2.jpg`` before ``cat.10.jpg``).

    A listing is remembered while the folder's modification time stays the same (adding,
    removing or renaming a file changes it): every page of the dashboard counts the images of
    every dataset, and 4000 photos need not be listed again for that.
    """
    folder = Path(folder)
    try:
        stamp = folder.stat().st_mtime_ns
    except OSError:
        stamp = None  # listing it raises the error itself
    key = os.path.abspath(folder)
    remembered = _LISTINGS.get(key)
    if remembered is not None and stamp is not None and remembered[0] == stamp:
        return list(remembered[1])
    files = sorted(
        (
            p
            for p in folder.iterdir()
            if is_visible(p.name) and p.suffix.lower() in IMAGE_SUFFIXES and not p.is_dir()
        ),
        key=lambda p: natural_key(p.name),
    )
    # A folder changed in the last seconds may change again within its clock's resolution.
    if stamp is not None and time.time_ns() - stamp > _SETTLED_NS:
        with _LISTINGS_LOCK:
            _LISTINGS[key] = (stamp, tuple(files))
            while len(_LISTINGS) > _LISTINGS_KEPT:
                del _LISTINGS[next(iter(_LISTINGS))]
    return files


_LISTINGS: dict[str, tuple[int, tuple[Path, ...]]] = {}  # folder → (mtime, its images)
_LISTINGS_LOCK = threading.Lock()
_LISTINGS_KEPT = 512  # class folders remembered (a few per dataset)
_SETTLED_NS = 2_000_000_000  # coarse file-system clocks tick every 1–2 s


def labelled_images(folder: str | Path, classes: Sequence[str]) -> tuple[list[Path], list[int]]:
    """The images of a folder of class folders with their labels, class by class.

    Args:
        folder: a split such as ``DIR/test``, or any folder holding one folder per class.
        classes: class folder names in label order; each must exist in ``folder``.

    Returns:
        ``(paths, labels)``: :func:`class_images` of each class in turn, and each path's class
        index in ``classes``.
    """
    paths: list[Path] = []
    labels: list[int] = []
    for label, name in enumerate(classes):
        files = class_images(Path(folder) / name)
        paths += files
        labels += [label] * len(files)
    return paths, labels


@dataclass(frozen=True)
class DatasetInfo:
    """What a dataset folder holds.

    Attributes:
        root: the dataset folder.
        name: its folder name.
        classes: class names, sorted (the label order used for training).
        counts: ``counts[split][class]`` = number of images.
        example: a shared dataset seen from a workspace (hosted mode): usable, not deletable.
    """

    root: Path
    name: str
    classes: tuple[str, ...]
    counts: dict[str, dict[str, int]]
    example: bool = False

    @property
    def totals(self) -> dict[str, int]:
        """Number of images per split."""
        return {split: sum(per_class.values()) for split, per_class in self.counts.items()}

    @property
    def total(self) -> int:
        """Number of images in the whole dataset."""
        return sum(self.totals.values())


def scan_dataset(root: str | Path) -> DatasetInfo:
    """Check that ``root`` is a dataset and count its images.

    Args:
        root: a folder holding ``train/``, ``validation/`` and ``test/``, each with the same
            class folders.

    Returns:
        A :class:`DatasetInfo`.

    Raises:
        DatasetError: the folder is missing, a split is missing, a split lacks a class, or there
            are fewer than two classes.
    """
    root = Path(root)
    if not root.is_dir():
        raise DatasetError(f"{root} is not a dataset: the folder does not exist")
    missing = [split for split in SPLITS if not (root / split).is_dir()]
    if missing:
        raise DatasetError(
            f"{root} is not a dataset: it has no {', '.join(missing)} folder "
            f"(a dataset holds {'/, '.join(SPLITS)}/ with one folder per class in each)"
        )
    classes = tuple(p.name for p in visible_folders(root / "train"))
    if len(classes) < 2:
        raise DatasetError(
            f"{root} is not a dataset: train/ has {len(classes)} class folder(s) "
            f"({', '.join(classes) or 'none'}); a classifier needs at least 2"
        )
    counts: dict[str, dict[str, int]] = {}
    for split in SPLITS:
        present = {p.name for p in visible_folders(root / split)}
        if present != set(classes):
            lacking = sorted(set(classes) - present)
            extra = sorted(present - set(classes))
            detail = f"lacks {', '.join(lacking)}" if lacking else f"has extra {', '.join(extra)}"
            raise DatasetError(
                f"{root} is not a dataset: {split}/ {detail} (train/ has {', '.join(classes)}); "
                "every split needs the same class folders"
            )
        counts[split] = {cls: len(class_images(root / split / cls)) for cls in classes}
    return DatasetInfo(
        root=root, name=root.name, classes=classes, counts=counts, example=is_shared(root)
    )


# A class with this many times the images of another is flagged: a model that always answers
# the big class is then right at least 5 times in 6, and its accuracy says little.
IMBALANCE_RATIO = 5


def balance_warnings(counts: dict[str, dict[str, int]]) -> list[str]:
    """Warn, with the counts, when one class has :data:`IMBALANCE_RATIO` times another's images.

    Args:
        counts: ``counts[split][class]`` = number of images (as in :class:`DatasetInfo`).

    Returns:
        One sentence, or none when the classes are balanced enough.
    """
    totals: Counter[str] = Counter()
    for per_class in counts.values():
        totals.update(per_class)
    if len(totals) < 2:
        return []
    (big, most), *_, (small, fewest) = totals.most_common()
    if not fewest or most < IMBALANCE_RATIO * fewest:
        return []
    share = most / sum(totals.values())
    return [
        f"the classes are very unequal: {big} has {most:,} images, {small} {fewest:,} "
        f"({most / fewest:.0f} to 1). A model that always answers {big} is right {share:.0%} "
        f"of the time: judge it by each class's recall (evaluate), not by accuracy, or add "
        f"{small} photos"
    ]


def training_problems(info: DatasetInfo, test: bool = True) -> tuple[list[str], list[str]]:
    """What makes a dataset unfit to train on, and what makes its results misleading.

    Args:
        info: the dataset, from :func:`scan_dataset`.
        test: whether the run will be evaluated on the test split at the end.

    Returns:
        ``(errors, warnings)``, each a list of sentences with the counts: an error when a
        class has no training images (the model could never answer it); warnings when a class
        is missing from validation or test (with ``test``, a test split with no image at all
        means the run gets no test accuracy), or the classes are very unequal
        (:func:`balance_warnings`).
    """
    errors, warnings = [], []
    for split, per_class in info.counts.items():
        empty = [cls for cls, n in per_class.items() if not n]
        if not empty:
            continue
        counts = ", ".join(f"{cls} {n:,}" for cls, n in per_class.items())
        text = f"{split}/ has no images of {', '.join(empty)} ({counts})"
        if split == "train":
            errors.append(f"{text}: every class needs training images")
        elif split == "test" and test and len(empty) == len(per_class):
            warnings.append(f"{text}: the run will have no test accuracy (--no-test says so)")
        else:
            warnings.append(f"{text}: its accuracy there leaves them out")
    return errors, warnings + balance_warnings(info.counts)


def check_trainable(info: DatasetInfo, test: bool = True) -> list[str]:
    """Refuse a dataset a run cannot learn from; return the warnings about one whose results
    would mislead (:func:`training_problems`). Every face checks here before a run starts.

    Raises:
        DatasetError: a class has no training images (the sentence names the dataset, counts).
    """
    errors, warnings = training_problems(info, test=test)
    if errors:
        raise DatasetError(f"{info.root}: {errors[0]}")
    return warnings


def list_images(root: str | Path, split: str, cls: str | None = None) -> list[Path]:
    """List a split's images in natural order (``cat.2`` before ``cat.10``).

    Args:
        root: the dataset folder.
        split: ``"train"``, ``"validation"`` or ``"test"``.
        cls: one class, or None for all classes (class by class, in class order).

    Returns:
        Paths of the image files.
    """
    if split not in SPLITS:
        raise DatasetError(f"unknown split {split!r}; use one of {', '.join(SPLITS)}")
    info = scan_dataset(root)
    if cls is not None and cls not in info.classes:
        raise DatasetError(f"{info.root} has no class {cls!r}; its classes are {info.classes}")
    classes = info.classes if cls is None else (cls,)
    return [path for c in classes for path in class_images(info.root / split / c)]


def list_datasets() -> list[DatasetInfo]:
    """Return every valid dataset in the data home's ``datasets/`` folder, sorted by name (in
    a workspace: its own, then the shared ones, each sorted by name)."""
    found = []
    for root in dataset_roots():
        for folder in visible_folders(root):
            try:
                found.append(scan_dataset(folder))
            except DatasetError:
                continue  # half-made or foreign folders are simply not datasets
    return found


def dataset_version(root: str | Path) -> float:
    """A number that changes when a dataset folder is replaced or an image is added, removed
    or renamed in it (for cache keys): the latest modification time of the folder, its
    manifest, its split folders and their class folders (a few dozen ``stat`` calls)."""
    root = Path(root)
    folders = [root, root / MANIFEST_NAME]
    for split in SPLITS:
        folders.append(root / split)
        try:
            folders += [p for p in (root / split).iterdir() if p.is_dir()]
        except OSError:
            continue
    stamps = []
    for path in folders:
        try:
            stamps.append(path.stat().st_mtime)
        except OSError:
            continue
    return max(stamps, default=0.0)


def image_sizes(root: str | Path) -> list[tuple[str, str, str, int, int]]:
    """Read every image's width and height from its header only (fast: no pixel decoding).

    Args:
        root: the dataset folder.

    Returns:
        ``(split, class, file name, width, height)`` per image; files whose header cannot be
        read are left out. Headers are remembered in the data home (:mod:`header_cache`).
    """
    info = scan_dataset(root)
    cache = HeaderCache(info.root)  # headers read once, in the data home
    rows = []
    for split in SPLITS:
        for cls in info.classes:
            for path in class_images(info.root / split / cls):
                size = _image_size(path, f"{split}/{cls}/{path.name}", cache)
                if size is not None:
                    rows.append((split, cls, path.name, *size))
    cache.save()
    return rows


def remember_sizes(root: str | Path) -> None:
    """Read a new dataset's image sizes into the data home's cache now (where it is made), so
    the Dataset page's first visit finds them; a failure only leaves them to be read later."""
    with contextlib.suppress(OSError, DatasetError):
        image_sizes(root)


def _image_size(path: Path, key: str, cache: HeaderCache) -> tuple[int, int] | None:
    """A file's ``(width, height)``, remembered in ``cache`` or read from its header; None
    for a file that is gone or no image."""
    try:
        stat = path.stat()
    except OSError:
        return None
    known = cache.get(key, stat)
    if known is None:
        try:
            _, width, height = image_header(path)
        except ImageError:
            width = height = None
        cache.put(key, stat, width, height)
        known = width, height
    return None if known[0] is None else (int(known[0]), int(known[1]))


def delete_dataset(root: str | Path, training_on: Callable[[Path], list[tuple[str, str]]]) -> Path:
    """Delete one of the caller's datasets (its whole folder); returns the folder deleted.

    Never the built-in demo, a shared example (hosted mode), a folder outside the caller's
    datasets folder, or a dataset a run is training on (or waiting in the queue to).

    Args:
        root: the dataset folder.
        training_on: the ``(run id, state)`` of each run training on, or queued for, a dataset
            (:func:`catdog.train.runs.runs_training_on`: the data side does not read runs).

    Raises:
        DatasetError: any of those; the message says which and what to do.
        catdog.policy.HostedLimitError: a read-only visitor.
    """
    current_policy().check_writable(f"deleting dataset {Path(root).name}")
    root = Path(root).expanduser()
    if root.resolve() == demo_dataset_dir().resolve():
        raise DatasetError(f"{DEMO_DATASET_NAME!r} is the built-in demo dataset; it stays")
    if is_shared(root):
        raise DatasetError(f"{root.name!r} is a shared example; only your own datasets can go")
    if root.resolve().parent != datasets_dir().resolve() or not root.is_dir():
        raise DatasetError(f"no dataset {root.name!r} among your datasets; nothing was deleted")
    for run_id, state in training_on(root):
        verb = "stop" if state == "running" else "cancel"
        raise DatasetError(
            f"dataset {root.name!r} is what run {run_id} trains on ({state}); "
            f"{verb} it first, then delete the dataset"
        )
    shutil.rmtree(root)
    return root
