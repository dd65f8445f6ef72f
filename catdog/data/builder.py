"""Making a dataset from loose photos, class by class, and adding photos to one later.

What the dashboard's "New dataset" tab and ``python -m catdog new-dataset``/``add-photos`` do:
name the classes (2 or more), give each its photos — uploaded or camera bytes as ``(name,
bytes)``, or (locally) paths — and get a normal catdog dataset
(``DIR/{train,validation,test}/<class>/*.jpg`` and its manifest). Every photo goes through the
importer's check (:func:`catdog.data.importer.stage_photo`): a bad one is left out with its
one-line reason and the good ones are kept. Each class is split on its own, seeded
(:mod:`catdog.data.photo_split`), and the split is said in words.

Nothing already there is changed: a new dataset is built in a hidden folder beside the others
and renamed into place in one step; photos added to a dataset make a new version of it (a copy
plus the photos, published the same way) unless an in-place append is asked for, which only a
dataset made here allows and which only adds files (to its existing classes). In hosted mode
every step stays within the caps and the workspace's quota (:mod:`catdog.policy`), checked
here. Plain Python: no Streamlit, no TensorFlow.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from catdog.data import photo_split
from catdog.data.choices import check_new_dataset_name
from catdog.data.datasets import (
    MANIFEST_NAME,
    SPLITS,
    DatasetError,
    balance_warnings,
    class_images,
    scan_dataset,
)
from catdog.data.importer import SkippedFile, work_dir_prefix
from catdog.data.importer.ingest import read_regular, stage_photo
from catdog.data.names import check_class_names, portable_name, shown
from catdog.data.paths import (
    DEMO_DATASET_NAME,
    dataset_roots,
    datasets_dir,
    in_dataset_roots,
    is_shared,
)
from catdog.data.thumbnails import thumbnail
from catdog.policy import HostedLimitError, current_policy
from catdog.quota import folder_size

# A photo: (file name, bytes) from an upload or the camera, or a path on this computer.
PhotoInput = tuple[str, bytes] | str | Path


@dataclass
class BuildReport:
    """What building (or adding to) a dataset did; :meth:`summary` says it in words."""

    out: Path
    based_on: str | None  # the dataset this is a new version of (or added to, in place)
    in_place: bool
    classes: list[str]
    counts: dict[str, dict[str, int]]  # split -> class -> photos, after
    added: dict[str, dict[str, int]]  # split -> class -> photos added now
    split_lines: list[str] = field(default_factory=list)
    skipped: list[SkippedFile] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    @property
    def total_added(self) -> int:
        """Photos written now."""
        return sum(sum(per_class.values()) for per_class in self.added.values())

    def summary(self) -> str:
        """A few lines: what was made where, the split per class, every photo left out."""
        n, name = f"{self.total_added:,} photo(s)", self.out.name
        if self.in_place:
            lines = [f"Added {n} to {name} in place."]
        elif self.based_on:
            lines = [f"Made {name}, a new version of {self.based_on}, with {n} added."]
        else:
            lines = [f"Made dataset {name} from {n}."]
        lines += [f"  {line}" for line in self.split_lines]
        if self.skipped:
            lines.append(f"Left out {len(self.skipped):,} file(s):")
            lines += [f"  - {s.reason}" for s in self.skipped]
        lines += [f"Warning: {warning}." for warning in self.warnings]
        return "\n".join(lines)


# ----------------------------------------------------------------------------- the photos


@dataclass(frozen=True)
class _Staged:
    cls: str
    name: str  # the stem to keep (from the photo's own name)
    path: Path  # the staged JPEG


def _read(photo: PhotoInput, cls: str) -> tuple[str, bytes | str]:
    """The photo's shown name (``cats/IMG_1.jpg``) and its bytes, or why it cannot be used."""
    if isinstance(photo, tuple):
        raw_name, data = photo
        base = Path(str(raw_name).replace("\\", "/")).name or "photo"
        name = shown(f"{cls}/{base}")
        try:
            current_policy().check_upload(len(data), name)
        except HostedLimitError as exc:
            return name, str(exc)
        return name, bytes(data)
    path = Path(photo).expanduser()
    name = shown(f"{cls}/{path.name}")
    return name, read_regular(path, name)


def _refuse_paths(photos: Mapping[str, Sequence[PhotoInput]]) -> None:
    """In hosted mode, photos come as uploads only: a path is the server's own file."""
    for cls, given in photos.items():
        for photo in given:
            if not isinstance(photo, tuple):
                current_policy().refuse_server_files(f"adding {shown(str(photo))} to {shown(cls)}")


def _stage_all(
    photos: Mapping[str, Sequence[PhotoInput]], staging: Path
) -> tuple[list[_Staged], list[SkippedFile]]:
    """Check every photo (in threads) and stage the good ones; returns (kept, left out)."""
    staging.mkdir(parents=True, exist_ok=True)
    jobs = [(cls, photo) for cls, given in photos.items() for photo in given]

    def one(k: int) -> tuple[_Staged | None, SkippedFile | None]:
        cls, photo = jobs[k]
        name, data = _read(photo, cls)
        if isinstance(data, str):
            return None, SkippedFile(name, data)
        target = staging / f"{k:07d}.jpg"
        outcome, reason = stage_photo(data, name, target)
        if outcome == "skipped":
            return None, SkippedFile(name, reason)
        return _Staged(cls, Path(name).stem, target), None

    with ThreadPoolExecutor(min(4, os.cpu_count() or 2)) as pool:
        results = list(pool.map(one, range(len(jobs))))
    kept = [staged for staged, _ in results if staged is not None]
    return kept, [skip for _, skip in results if skip is not None]


def _place(chosen: list[_Staged], folder: Path, taken: set[str]) -> None:
    """Move staged photos into ``folder`` under their own names made portable, ``-2``, ``-3``
    … added where a name (any case) is ``taken`` already."""
    folder.mkdir(parents=True, exist_ok=True)
    for staged in chosen:
        stem, k = staged.name, 1
        name = portable_name(stem, ".jpg")
        while name.casefold() in taken:
            k += 1
            name = portable_name(stem, f"-{k}.jpg")
        taken.add(name.casefold())
        os.replace(staged.path, folder / name)


def _check_hosted_size(dataset: Path, what: str) -> None:
    """The finished dataset within the dataset cap, and the workspace within its quota (the
    work folder is in the workspace: what is staged counts already)."""
    current_policy().check_dataset_bytes(folder_size(dataset), what)
    current_policy().check_quota(0, what)


# ----------------------------------------------------------------------------- new datasets


def _counts(root: Path, classes: Sequence[str]) -> dict[str, dict[str, int]]:
    return {s: {c: len(class_images(root / s / c)) for c in classes} for s in SPLITS}


def _by_class(kept: list[_Staged], classes: Sequence[str]) -> dict[str, list[_Staged]]:
    return {cls: [s for s in kept if s.cls == cls] for cls in classes}


def _check_enough(cls: str, n: int, skipped: list[SkippedFile]) -> None:
    """Refuse a class left with fewer usable photos than a split needs, saying what was left
    out of it."""
    try:
        photo_split.split_counts(n, cls)
    except DatasetError as exc:
        mine = [s for s in skipped if s.file.startswith(f"{shown(cls)}/")]
        left_out = f" ({len(mine)} left out, e.g. {mine[0].reason})" if mine else ""
        raise DatasetError(f"{exc}{left_out}; nothing was written") from None


def _write_manifest(dataset: Path, report: BuildReport, seed: int, earlier: dict | None) -> None:
    """The dataset's manifest: what made it and each addition (a new file, renamed into place:
    a reader sees the old one or the new one)."""
    now = datetime.now(UTC).isoformat(timespec="seconds")
    builder = dict((earlier or {}).get("builder") or {"made": now, "seed": seed})
    builder["additions"] = [*builder.get("additions", []), {
        "when": now, "based_on": report.based_on, "in_place": report.in_place,
        "added": report.added, "seed": seed}]  # fmt: skip
    manifest = {
        "format": 1,
        "options": {"source": "photos, class by class", "seed": seed},
        "builder": builder,
        "report": {"classes": report.classes, "counts": report.counts, "created": now,
                   "skipped": [s.__dict__ for s in report.skipped]},
    }  # fmt: skip
    temp = dataset / f".{MANIFEST_NAME}.{os.getpid()}.tmp"
    temp.write_text(json.dumps(manifest, indent=1))
    os.replace(temp, dataset / MANIFEST_NAME)


def _work_dir(name: str) -> Path:
    """A hidden work folder beside the datasets, swept like an import's if a crash leaves it."""
    return Path(tempfile.mkdtemp(prefix=work_dir_prefix(name), dir=datasets_dir()))


def _publish(dataset: Path, out: Path) -> None:
    """Rename the finished ``dataset`` into place as ``out``, never over anything."""
    if out.exists():
        raise DatasetError(f"a dataset called {out.name!r} appeared meanwhile; choose another name")
    try:
        os.rename(dataset, out)
    except OSError as exc:
        raise DatasetError(f"{out.name!r} cannot be written ({exc.strerror or exc})") from exc


def build_dataset(
    name: str, photos: Mapping[str, Sequence[PhotoInput]], *, seed: int = 0
) -> BuildReport:
    """Make the new dataset ``name`` from photos given class by class.

    Args:
        name: the dataset's name (see :func:`catdog.data.choices.check_new_dataset_name`).
        photos: ``photos[class name]`` = that class's photos, 2 classes or more, each a
            ``(file name, bytes)`` pair (an upload, a camera shot) or, locally, a path.
        seed: seeds each class's split (same photos and seed, same split).

    Returns:
        A :class:`BuildReport` (the split in words, the files left out and why, warnings).

    Raises:
        DatasetError: the name or a class name is unusable or taken, fewer than 2 classes, or
            a class has too few usable photos; nothing is written then.
        catdog.policy.HostedLimitError: in hosted mode, paths instead of uploads, or the
            dataset over a cap or the workspace over its quota.
    """
    current_policy().check_writable("making a dataset")
    out = check_new_dataset_name(name)
    if out.exists():
        raise DatasetError(f"a dataset called {out.name!r} exists; choose another name")
    classes = check_class_names(list(photos))
    photos = dict(zip(classes, photos.values(), strict=True))
    _refuse_paths(photos)
    current_policy().check_dataset_images(sum(len(v) for v in photos.values()), out.name)
    work = _work_dir(out.name)
    try:
        kept, skipped = _stage_all(photos, work / "staging")
        grouped = _by_class(kept, classes)
        for cls, mine in grouped.items():
            _check_enough(cls, len(mine), skipped)
        dataset = work / "dataset"
        for cls, mine in grouped.items():
            for split, chosen in photo_split.assign(mine, seed, cls).items():
                _place(chosen, dataset / split / cls, set())
        counts = _counts(dataset, classes)
        _check_hosted_size(dataset, out.name)
        lines, warnings, _ = photo_split.plan_preview({c: len(v) for c, v in grouped.items()})
        report = BuildReport(out, None, False, classes, counts, counts, lines, skipped,
                             warnings + balance_warnings(counts))  # fmt: skip
        _write_manifest(dataset, report, seed, None)
        _publish(dataset, out)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return report


# ------------------------------------------------------------------------- adding photos


def builder_made(root: str | Path) -> bool:
    """Whether the dataset at ``root`` was made from photos here (so it may grow in place)."""
    try:
        manifest = json.loads((Path(root) / MANIFEST_NAME).read_text())
    except (OSError, ValueError):
        return False
    return isinstance(manifest, dict) and isinstance(manifest.get("builder"), dict)


def version_name(base: str) -> str:
    """The first free name for a new version of dataset ``base``: ``pets-v2``, ``pets-v3`` …"""
    stem = base.rsplit("-v", 1)[0] if base.rsplit("-v", 1)[-1].isdigit() else base
    k = 2
    while any((root / f"{stem}-v{k}").exists() for root in dataset_roots()):
        k += 1
    return f"{stem}-v{k}"


def _find_dataset(dataset: str | Path) -> Path:
    """A dataset this caller may use: its folder, or its name among the caller's datasets
    (its own first, then the shared ones)."""
    given = Path(dataset).expanduser()
    if given.is_dir() and in_dataset_roots(given):
        return given.resolve()
    for root in dataset_roots():
        if given.name == str(dataset) and (root / given.name).is_dir():
            return root / given.name
    raise DatasetError(f"no dataset {shown(str(dataset))!r} among your datasets")


def add_photos(
    dataset: str | Path,
    photos: Mapping[str, Sequence[PhotoInput]],
    *,
    in_place: bool = False,
    new_name: str | None = None,
    seed: int = 0,
) -> BuildReport:
    """Add photos to a dataset: as a new version of it (the default) or, for a dataset made by
    :func:`build_dataset`, in place.

    A new version copies the dataset and adds the photos (new classes too, each with enough
    photos to split); the original is untouched. In place, only files are added, to existing
    classes, under names no file there has; nothing there is changed. Either way each class's
    new photos go where its split falls short (:func:`catdog.data.photo_split.assign_added`).

    Args:
        dataset: the dataset's name (or folder) among the caller's datasets.
        photos: ``photos[class name]`` = photos to add, as for :func:`build_dataset`.
        in_place: add to the dataset itself (only a builder-made dataset of the caller's own).
        new_name: the new version's name (default :func:`version_name`).
        seed: seeds where the new photos go.

    Raises:
        DatasetError: no such dataset, an in-place append it does not allow, a new class in
            place or with too few photos, no usable photo at all; nothing is written then.
        catdog.policy.HostedLimitError: in hosted mode, as for :func:`build_dataset`.
    """
    current_policy().check_writable("adding photos to a dataset")
    root = _find_dataset(dataset)
    info = scan_dataset(root)
    if in_place:
        _check_in_place(root, list(photos))
    names = check_class_names(list(photos), at_least=1)
    photos = dict(zip(names, photos.values(), strict=True))
    known = {c.casefold(): c for c in info.classes}
    photos = {known.get(c.casefold(), c): v for c, v in photos.items()}  # Cats is cats
    _refuse_paths(photos)
    out = root if in_place else check_new_dataset_name(new_name or version_name(root.name))
    if not in_place and out.exists():
        raise DatasetError(f"a dataset called {out.name!r} exists; choose another name")
    adding = sum(len(v) for v in photos.values())
    current_policy().check_dataset_images(info.total + adding, out.name)
    work = _work_dir(out.name)
    try:
        report = _add(root, info.classes, photos, work, out, seed, in_place)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return report


def _check_in_place(root: Path, classes: list[str]) -> None:
    """Refuse an in-place append to a dataset not made here, a shared one, or the demo."""
    if is_shared(root) or (root.name == DEMO_DATASET_NAME and root.parent == datasets_dir()):
        raise DatasetError(
            f"{root.name!r} is not yours to change; add the photos as a new version instead"
        )
    if not builder_made(root):
        raise DatasetError(
            f"{root.name!r} was imported, not made from photos here, so it is never changed in "
            "place; add the photos as a new version of it instead"
        )
    existing = {p.name.casefold() for p in (root / "train").iterdir() if p.is_dir()}
    new = [c for c in classes if c.strip().casefold() not in existing]
    if new:
        raise DatasetError(
            f"{', '.join(repr(shown(c)) for c in new)} is not a class of {root.name!r}; a new "
            "class makes a new version of the dataset (every split needs it at once)"
        )


def _add(
    root: Path,
    classes: tuple[str, ...],
    photos: dict[str, Sequence[PhotoInput]],
    work: Path,
    out: Path,
    seed: int,
    in_place: bool,
) -> BuildReport:
    """Stage, split and write the added photos (see :func:`add_photos`)."""
    kept, skipped = _stage_all(photos, work / "staging")
    if not kept:
        first = f": {skipped[0].reason}" if skipped else ""
        raise DatasetError(f"none of the photos could be used{first}; nothing was added")
    all_classes = sorted({*classes, *photos}, key=str.casefold)
    grouped = _by_class(kept, all_classes)
    for cls, mine in grouped.items():
        if cls not in classes:
            _check_enough(cls, len(mine), skipped)
    have = _counts(root, classes)
    plan = {cls: photo_split.assign_added(mine, {s: have[s].get(cls, 0) for s in SPLITS},
                                          seed, cls)
            for cls, mine in grouped.items() if mine}  # fmt: skip
    added = {s: {c: len(plan[c][s]) if c in plan else 0 for c in all_classes} for s in SPLITS}
    lines = [
        photo_split.added_sentence(c, {s: added[s][c] for s in SPLITS},
                                   sum(have[s].get(c, 0) + added[s][c] for s in SPLITS))
        for c in plan
    ]  # fmt: skip
    if in_place:
        adding = sum(s.path.stat().st_size for s in kept)
        current_policy().check_dataset_bytes(folder_size(root) + adding, root.name)
        current_policy().check_quota(0, root.name)  # the staged photos count already
        dataset = root
    else:
        dataset = work / "dataset"
        shutil.copytree(root, dataset, ignore=shutil.ignore_patterns(".*"))
    for cls, per_split in plan.items():
        for split, chosen in per_split.items():
            _put(chosen, dataset / split / cls, work / "placing" / split / cls, in_place)
    counts = _counts(dataset, all_classes)
    report = BuildReport(out, root.name, in_place, all_classes, counts, added, lines, skipped,
                         _warnings(counts))  # fmt: skip
    if not in_place:
        _check_hosted_size(dataset, out.name)
    _write_manifest(dataset, report, seed, _manifest(root))
    if not in_place:
        _publish(dataset, out)
    return report


def _put(chosen: list[_Staged], folder: Path, placing: Path, in_place: bool) -> None:
    """Write photos into a class folder: a copy's directly, a live dataset's by linking each
    finished file in under a name not taken (a link never replaces a file)."""
    taken = {p.name.casefold() for p in folder.iterdir()} if folder.is_dir() else set()
    if not in_place:
        _place(chosen, folder, taken)
        return
    _place(chosen, placing, set(taken))
    for path in sorted(placing.iterdir()):
        target, k = folder / path.name, 1
        while True:
            try:
                os.link(path, target)
                break
            except FileExistsError:  # written meanwhile by someone else: the next name
                k += 1
                target = folder / portable_name(path.stem, f"-{k}.jpg")


def _manifest(root: Path) -> dict | None:
    try:
        data = json.loads((root / MANIFEST_NAME).read_text())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def _warnings(counts: dict[str, dict[str, int]]) -> list[str]:
    """Few validation photos of a class, and very unequal classes."""
    found = []
    for cls, validation in counts["validation"].items():
        total = sum(counts[s][cls] for s in SPLITS)
        if warning := photo_split.few_photos_warning(cls, total, validation):
            found.append(warning)
    return found + balance_warnings(counts)


# ------------------------------------------------------------------- photos being gathered


def check_gathered(count: int, nbytes: int, what: str = "the photos gathered") -> None:
    """In hosted mode, refuse gathering more photos than a dataset may hold (their number and
    bytes, before any is written; nothing locally).

    Raises:
        catdog.policy.HostedLimitError: over the dataset's image or size cap.
    """
    current_policy().check_dataset_images(count, what)
    current_policy().check_dataset_bytes(nbytes, what)


def photo_thumbnail(cls: str, name: str, data: bytes, size: int = 96) -> bytes:
    """A square thumbnail of a photo being added to class ``cls``, checking it on the way.

    Raises:
        catdog.data.images.ImageError: not a usable image (the message names
            ``cls/name`` and says why, as the dataset's own check would).
        catdog.policy.HostedLimitError: in hosted mode, the photo is over the upload cap.
    """
    shown_name = shown(f"{cls}/{Path(name.replace(chr(92), '/')).name or 'photo'}")
    current_policy().check_upload(len(data), shown_name)
    return thumbnail(data, size=size, name=shown_name)
