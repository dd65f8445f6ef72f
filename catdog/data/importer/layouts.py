"""Finding the images in a source: its layout (class folders, split folders, Kaggle's flat
files, Microsoft's PetImages) and the candidate images, never following links.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

from catdog.data.datasets import (
    DatasetError,
    is_visible,
    natural_key,
)
from catdog.data.images import IMAGE_SUFFIXES, not_regular
from catdog.data.importer.report import SkippedFile
from catdog.data.names import portable_name, shown

# Folder names accepted for each split (compared case-insensitively).
SPLIT_NAMES = {
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


@dataclass(frozen=True)
class Item:
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


def subdirs(folder: Path) -> list[Path]:
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


def walk(folder: Path, root: Path) -> tuple[list[Path], list[SkippedFile]]:
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


def walk_files(folder: Path) -> list[Path]:
    """Every visible regular file under ``folder``, in natural order (see :func:`walk`)."""
    return walk(folder, folder)[0]


def detect_layout(root: Path, source: Path, note: str = "") -> tuple[str, Path]:
    """Find which layout ``root`` holds; returns (layout, folder where it starts). Errors
    name ``source`` and folders relative to it, never the extraction folder; ``note`` is added
    to them."""
    base = root
    for _ in range(4):  # look through a few single wrapping folders
        dirs = subdirs(base)
        files = _files_here(base)
        kaggle = [p for p in files if _KAGGLE_NAME.match(p.name)]
        if kaggle and len(kaggle) * 2 >= len(files):
            return "kaggle", base
        for candidate in (base, *dirs):
            names = {d.name.casefold() for d in subdirs(candidate)}
            if candidate.name.casefold() == "petimages" and set(_PET_CLASSES) <= names:
                return "petimages", candidate
        split_dirs = [d for d in dirs if d.name.casefold() in SPLIT_NAMES]
        if split_dirs and any(subdirs(d) for d in split_dirs):
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
        f"Microsoft's PetImages/Cat and PetImages/Dog. Found {len(subdirs(base))} folder(s) "
        f"and {len(_files_here(base))} file(s) in {where}{note}"
    )


def collect(root: Path, layout: str, base: Path) -> list[Item]:
    """List the candidate images of a source whose layout is known."""
    rel = lambda p: p.relative_to(root).as_posix()  # noqa: E731
    items: list[Item] = []
    if layout == "kaggle":
        for path in walk_files(base):
            match = _KAGGLE_NAME.match(path.name)
            if match and path.parent == base:
                items.append(Item(path, rel(path), match.group(1).lower() + "s", None))
    elif layout == "petimages":
        for folder in subdirs(base):
            cls = _PET_CLASSES.get(folder.name.casefold())
            if cls:
                items += [Item(p, rel(p), cls, None) for p in walk_files(folder)]
    elif layout == "split folders":
        seen: dict[str, Path] = {}
        for folder in subdirs(base):
            split = SPLIT_NAMES.get(folder.name.casefold())
            if split is None:
                continue
            if split in seen:
                raise DatasetError(
                    f"{base} has both {seen[split].name}/ and {folder.name}/ for the {split} "
                    "split; keep one of them"
                )
            seen[split] = folder
            for cls_dir in subdirs(folder):
                items += [Item(p, rel(p), cls_dir.name, split) for p in walk_files(cls_dir)]
    else:
        for cls_dir in subdirs(base):
            items += [Item(p, rel(p), cls_dir.name, None) for p in walk_files(cls_dir)]
    return items


def stray_files(root: Path, layout: str, items: list[Item]) -> list[SkippedFile]:
    """Files in the source that belong to no class: reported, never silently dropped."""
    used = {item.path for item in items}
    why = (
        "its name does not say cat or dog (Kaggle names are cat.N.jpg and dog.N.jpg)"
        if layout == "kaggle"
        else "it is not inside a class folder"
    )
    strays = [p.relative_to(root).as_posix() for p in walk_files(root) if p not in used]
    return [SkippedFile(rel, f"{shown(rel)} was left out: {why}") for rel in strays]


def class_folders(layout: str, base: Path) -> list[str]:
    """The class folder names of a class-folder layout (empty folders too), as classes are
    named (:func:`catdog.data.names.portable_name`)."""
    if layout == "class folders":
        folders = subdirs(base)
    elif layout == "split folders":
        splits = [d for d in subdirs(base) if d.name.casefold() in SPLIT_NAMES]
        folders = [cls for split in splits for cls in subdirs(split)]
    else:
        return []
    return sorted({portable_name(folder.name, "") for folder in folders})
