"""Which split each image goes to: the split a user asks for (checked, parsed), the seed's
first-N split, fractions at random, or the source's own split kept.
"""

from __future__ import annotations

import random
import re
from pathlib import Path

from catdog.data.datasets import (
    SPLITS,
    DatasetError,
    natural_key,
)
from catdog.data.importer.ingest import Checker
from catdog.data.importer.layouts import Item
from catdog.data.importer.report import SkippedFile

# The seed's split: per class, the first 1000 images for training, 500 for validation, 500 test.
SEED_COUNTS = (1000, 500, 500)


# Default fractions for an unsplit source: the seed's proportions.
DEFAULT_FRACTIONS = (0.5, 0.25, 0.25)


SplitSpec = str | tuple[float, float, float] | None


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


def fraction_counts(n: int, fractions: tuple[float, float, float]) -> tuple[int, int, int]:
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


def assign_splits(
    items: list[Item],
    checker: Checker,
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
            good: list[Item] = []
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
        check_usable_split(items, assignment, checker.skipped)
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
        n_train, n_val, _ = fraction_counts(len(mine), fractions)
        assignment["train"][cls] = mine[:n_train]
        assignment["validation"][cls] = mine[n_train : n_train + n_val]
        assignment["test"][cls] = mine[n_train + n_val :]
    return assignment, 0


def check_kept_split(items: list[Item], source: Path) -> None:
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


def check_usable_split(items: list[Item], assignment: dict, skipped: list[SkippedFile]) -> None:
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
