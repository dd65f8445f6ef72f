"""What an import did: :class:`ImportReport` and its summary in words."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from catdog.data.datasets import (
    MANIFEST_NAME,
)
from catdog.data.names import shown

_MAX_LISTED_SKIPS = 30  # the summary lists this many skipped files; the manifest lists all

# JPEG quality for re-encoded images: high enough that re-encoding loses nothing visible.
JPEG_QUALITY = 95


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
    duplicates: int = 0  # photos with an exact twin (catdog.data.duplicates), imported as they are

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
            + "".join(shown(c).rjust(width) for c in self.classes)
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
