"""Exact duplicate photos found while importing: the same bytes twice in a split, in two
splits (a leak: the model is tested on photos it trained on) or in two classes (one photo
with two labels). Counted from content hashes and reported, never refused; the data-health
audit (``python -m catdog audit DATASET``) lists them and finds near-duplicates too."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass


@dataclass(frozen=True)
class Duplicates:
    """How many photos repeat another one's exact content, by where the copies are."""

    within_split: int = 0  # extra copies in the same split and class
    across_splits: int = 0  # photos in two or more splits (of one class)
    across_classes: int = 0  # photos filed under two or more classes

    @property
    def total(self) -> int:
        """Photos with an exact twin anywhere."""
        return self.within_split + self.across_splits + self.across_classes

    def summary(self, dataset: str) -> str:
        """One sentence for the import report (empty when there are none)."""
        if not self.total:
            return ""
        parts = [
            f"{n:,} {what}"
            for n, what in (
                (self.within_split, "repeated within a split"),
                (self.across_splits, "in two splits (tested on what it trained on)"),
                (self.across_classes, "in two classes (two labels for one photo)"),
            )
            if n
        ]
        return (
            f"{self.total:,} exact duplicate photo(s): {'; '.join(parts)}. They were imported "
            f"as they are; see them with `python -m catdog audit {dataset}`"
        )


def count_duplicates(photos: list[tuple[str, str, str]]) -> Duplicates:
    """Count exact duplicates among ``(content digest, split, class)`` triples.

    A photo whose copies sit in two classes counts there (the worst case), else one in two
    splits counts there, else each extra copy within one split and class counts once.
    """
    places: dict[str, list[tuple[str, str]]] = defaultdict(list)
    for digest, split, cls in photos:
        places[digest].append((split, cls))
    within = splits = classes = 0
    for where in places.values():
        if len(where) < 2:
            continue
        if len({cls for _, cls in where}) > 1:
            classes += len(where) - 1
        elif len({split for split, _ in where}) > 1:
            splits += len(where) - 1
        else:
            within += len(where) - 1
    return Duplicates(within, splits, classes)
