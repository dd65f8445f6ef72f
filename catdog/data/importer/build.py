"""The import itself: :func:`import_dataset` gathers a source's images, checks them, assigns
splits and publishes the dataset.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import time
import warnings
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

from catdog.data.archive import ArchiveError, safe_extract
from catdog.data.datasets import (
    DatasetError,
    balance_warnings,
)
from catdog.data.duplicates import count_duplicates
from catdog.data.import_bounds import ImportBudget, extract_limits, pixel_problems
from catdog.data.importer.checks import (
    check_hosted_source,
    check_paths,
    check_request,
    existing_import,
    import_options,
    name_warnings,
    refuse_case_twins,
)
from catdog.data.importer.ingest import Checker
from catdog.data.importer.layouts import (
    Item,
    class_folders,
    collect,
    detect_layout,
    stray_files,
    walk,
)
from catdog.data.importer.publish import disk_space, place_images, publish
from catdog.data.importer.report import ImportReport, SkippedFile
from catdog.data.importer.splits import (
    DEFAULT_FRACTIONS,
    SEED_COUNTS,
    SplitSpec,
    assign_splits,
    check_kept_split,
)
from catdog.data.importer.sweep import STALE_AFTER_MINUTES, WORK_DIR, sweep_folder, work_dir_prefix
from catdog.data.names import portable_name, shown
from catdog.policy import current_policy
from catdog.progress import ProgressFn
from catdog.quota import folder_size


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
        catdog.policy.HostedLimitError: in hosted mode, a read-only visitor, the source is not
            an upload (a folder or file of the server), the upload, the dataset or its pixels
            are over a cap, the import would take the workspace over its quota (stopped
            before or while writing, nothing kept), or the workspace or the server is
            importing already.
    """
    source, out = Path(source).expanduser(), Path(out).expanduser()
    split = check_request(split, seed_counts)
    policy = current_policy()
    policy.check_writable(f"importing {source.name}")
    check_hosted_source(source, policy)  # before anything tells what the server has
    src, dst = check_paths(source, out)
    options = import_options(src, split, seed, seed_counts)
    earlier = existing_import(dst, options)
    if earlier is not None:
        return earlier

    dst.parent.mkdir(parents=True, exist_ok=True)
    sweep_folder(dst.parent, WORK_DIR, time.time() - STALE_AFTER_MINUTES * 60, dst.name)
    with (
        policy.job_slot("import"),  # one import per workspace, a few per server
        ImportBudget(policy, source.name) as budget,  # the bytes it writes, counted
        disk_space(dst.parent),  # a full disk: one clear error, once the work is gone
    ):
        work = Path(tempfile.mkdtemp(prefix=work_dir_prefix(dst.name), dir=dst.parent))
        try:
            result = _build(src, source, dst, work, split, seed, seed_counts, workers, progress,
                            budget)  # fmt: skip
            publish(result, options, work / "dataset", dst)
        finally:
            shutil.rmtree(work, ignore_errors=True)
    return result


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
    budget: ImportBudget,
) -> ImportReport:
    """Find the source's images, check them, and place the chosen ones in ``work/dataset``;
    returns the report of the import into ``dst`` (see :func:`import_dataset`).

    Raises:
        DatasetError: as for :func:`import_dataset`.
        catdog.policy.HostedLimitError: in hosted mode, a source or dataset over a cap.
    """
    root, layout, items, passed = _gather(src, source, work, progress, budget)
    strays = stray_files(root, layout, items)
    # Before any pixel is decoded: images over the policy's pixel caps, from their headers.
    too_big = pixel_problems([(i.path, shown(i.rel)) for i in items], budget.policy, str(source))
    passed += [SkippedFile(i.rel, too_big[i.path]) for i in items if i.path in too_big]
    _refuse_emptied_classes(items, too_big, source)
    items = [item for item in items if item.path not in too_big]
    kept = split is None and layout == "split folders"
    if kept:
        check_kept_split(items, source)
    checker, assignment, unused = _check_images(
        items, work / "staging", layout, split, seed, seed_counts, workers, progress, budget
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
        counts=place_images(assignment, checker.staged, dataset),
        skipped=passed + checker.skipped + strays,
        unused=unused,
        created=datetime.now(UTC).isoformat(timespec="seconds"),
        copied=outcomes["copied"],
        converted=outcomes["converted"],
    )
    result.warnings = name_warnings(result.classes) + balance_warnings(result.counts)
    placed_photos = [(checker.digest[item.path], s, cls) for s, per_class in assignment.items()
                     for cls, chosen in per_class.items() for item in chosen]  # fmt: skip
    duplicates = count_duplicates(placed_photos)
    result.duplicates = duplicates.total
    if duplicates.total:
        result.warnings.append(duplicates.summary(shown(dst.name)))
    budget.policy.check_dataset_bytes(folder_size(dataset), str(source))
    return result


def _refuse_emptied_classes(items: list[Item], too_big: dict[Path, str], source: Path) -> None:
    """A class whose every image is over the pixel caps would vanish from the dataset: refuse
    the import, naming the class and why, rather than import the classes left."""
    for cls in sorted({item.cls for item in items}):
        mine = [item for item in items if item.cls == cls]
        if all(item.path in too_big for item in mine):
            raise DatasetError(
                f"{shown(str(source))}: none of the {len(mine):,} image(s) of class {shown(cls)} "
                f"can be used ({too_big[mine[0].path]})"
            )


def _gather(
    src: Path, source: Path, work: Path, progress: ProgressFn | None, budget: ImportBudget
) -> tuple[Path, str, list[Item], list[SkippedFile]]:
    """Extract a zip into ``work`` (or take the folder as it is), find its layout and list its
    candidate images; returns (root, layout, items, files passed over before checking)."""
    policy = budget.policy
    if src.is_file():
        root = work / "extracted"
        try:
            extraction = safe_extract(
                src, root, limits=extract_limits(policy), progress=progress, budget=budget
            )
        except ArchiveError as exc:
            raise DatasetError(str(exc)) from exc
        passed = [SkippedFile(entry.name, entry.reason) for entry in extraction.skipped]
    else:
        root, passed = src, walk(src, src)[1]
    note = f" ({len(passed):,} entries were passed over, e.g. {passed[0].reason})" if passed else ""
    layout, base = detect_layout(root, source, note)
    # One class, however its folder name is encoded (é composed or decomposed: NFC or NFD), and
    # named as every disk stores and shows it (no control characters, nothing Windows forbids).
    collected = collect(root, layout, base)
    items = [replace(item, cls=portable_name(item.cls, "")) for item in collected]
    refuse_case_twins([item.cls for item in items] + class_folders(layout, base), source)
    policy.check_dataset_images(len(items), str(source))
    found = Counter(item.cls for item in items)
    if len(found) < 2:
        empty = [f"{cls}: none" for cls in class_folders(layout, base) if cls not in found]
        held = [f"{cls}: {n:,} file{'s' if n != 1 else ''}" for cls, n in sorted(found.items())]
        raise DatasetError(
            f"{source} holds {len(found)} class(es) of images ({'; '.join(held + empty) or 'none'})"
            f"; a classifier needs 2 or more class folders with images{note}"
        )
    return root, layout, items, passed


def _check_images(
    items: list[Item],
    staging: Path,
    layout: str,
    split: SplitSpec,
    seed: int,
    seed_counts: tuple[int, int, int],
    workers: int | None,
    progress: ProgressFn | None,
    budget: ImportBudget,
) -> tuple[Checker, dict, int]:
    """Decode the images on a thread pool, staging the usable ones in ``staging``, and decide
    each one's split (:func:`assign_splits`); returns (checker, assignment, unused)."""
    staging.mkdir()
    with (
        ThreadPoolExecutor(workers or min(8, os.cpu_count() or 2)) as pool,
        warnings.catch_warnings(),
    ):
        # PetImages is full of "Possibly corrupt EXIF data" warnings; the pixels are fine.
        warnings.filterwarnings("ignore", category=UserWarning, module=r"PIL\.")
        checker = Checker(pool, staging, len(items), progress, budget)
        assignment, unused = assign_splits(items, checker, layout, split, seed, seed_counts)
    return checker, assignment, unused
