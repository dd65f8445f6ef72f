"""Checking and writing one image, on worker threads (Pillow releases the GIL): each file is
fully decoded and staged as an RGB JPEG, or skipped with the reason.
"""

from __future__ import annotations

import hashlib
import io
import os
import stat
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from PIL import Image

from catdog.data.images import ImageError, opened_rgb
from catdog.data.import_bounds import ImportBudget
from catdog.data.importer.layouts import Item
from catdog.data.importer.report import JPEG_QUALITY, SkippedFile
from catdog.data.names import shown
from catdog.data.zip_directory import MAX_ENTRY_BYTES
from catdog.progress import ProgressFn, TimeLeft, report


def is_plain_jpeg(data: bytes) -> bool:
    """True for a baseline RGB JPEG without EXIF rotation: it can be copied byte for byte."""
    try:
        with Image.open(io.BytesIO(data), formats=["JPEG"]) as image:
            if image.format != "JPEG" or image.mode != "RGB" or image.info.get("progressive"):
                return False
            return image.getexif().get(0x0112, 1) == 1  # 0x0112: EXIF Orientation
    except Exception:  # any doubt about the header: re-encode instead of copying
        return False


def read_regular(path: Path, rel: str) -> bytes | str:
    """Read a regular file whole; returns its bytes, or why it was not read.

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


def stage_photo(
    data: bytes, name: str, staged: Path, budget: ImportBudget | None = None
) -> tuple[str, str]:
    """Check a photo's bytes by decoding them fully, and stage it as an RGB JPEG.

    The one check every photo catdog keeps goes through, whether imported or added by hand
    (:mod:`catdog.data.builder`).

    Args:
        data: the file's bytes.
        name: the name to use in messages (already made one line, see
            :func:`catdog.data.names.shown`).
        staged: the file to write (a plain RGB JPEG is copied byte for byte, anything else
            re-encoded).
        budget: an import's budget: a JPEG decodes reduced to its ``min_side`` (if set), and
            the bytes are counted before they are written (None: neither).

    Returns:
        ``("copied" | "converted", "")``, or ``("skipped", reason)`` with the one-line reason,
        naming the file, when it is not a usable image.
    """
    try:
        # The decoded image counts against the decode budget until it is written (see
        # catdog.data.images.DECODE_BUDGET_PIXELS), so the pool's threads cannot each hold a
        # full-size photo at once.
        min_side = budget.min_side if budget is not None else None
        with opened_rgb(data, name=name, min_side=min_side) as image:
            if is_plain_jpeg(data):
                if budget is not None:
                    budget.add_staged(len(data))
                staged.write_bytes(data)
                return "copied", ""
            encoded = io.BytesIO()
            image.save(encoded, "JPEG", quality=JPEG_QUALITY)
            if budget is not None:
                budget.add_staged(encoded.tell())
            staged.write_bytes(encoded.getbuffer())
            return "converted", ""
    except ImageError as exc:
        return "skipped", str(exc)


def _ingest(item: Item, staged: Path, budget: ImportBudget) -> tuple[str, str]:
    """Read one file, then check and stage it (:func:`stage_photo`, a JPEG reduced to
    ``budget.min_side`` if set, its bytes counted by ``budget``); returns (outcome, the reason
    it was skipped or the SHA-256 of its bytes)."""
    name = shown(item.rel)  # the name in messages: one line, nothing hidden
    data = read_regular(item.path, name)
    if isinstance(data, str):
        return "skipped", data
    outcome, reason = stage_photo(data, name, staged, budget)
    if outcome == "skipped":
        return outcome, reason
    return outcome, hashlib.sha256(data).hexdigest()  # exact duplicates are counted from it


class Checker:
    """Runs :func:`_ingest` over items on a thread pool, in order, and keeps the tallies."""

    def __init__(
        self,
        pool: ThreadPoolExecutor,
        staging: Path,
        total: int,
        progress: ProgressFn | None,
        budget: ImportBudget,
    ) -> None:
        self.pool, self.staging, self.total, self.progress = pool, staging, total, progress
        self.budget = budget
        self.staged: dict[Path, Path] = {}
        self.skipped: list[SkippedFile] = []
        self.outcome: dict[Path, str] = {}  # "copied" or "converted", per usable file
        self.digest: dict[Path, str] = {}  # SHA-256 of each usable file's bytes
        self.done = 0
        self.time_left = TimeLeft()

    def usable(self, items: list[Item]) -> list[Item]:
        """Check ``items``; return the usable ones in the same order."""
        first = self.done  # each checked file gets its own staging name
        targets = [self.staging / f"{first + i:07d}.jpg" for i in range(len(items))]
        good = []
        for item, target, (outcome, reason) in zip(
            items,
            targets,
            self.pool.map(_ingest, items, targets, [self.budget] * len(items)),
            strict=True,
        ):
            self.done += 1
            self.total = max(self.total, self.done)
            message = self.time_left.message("Checking images", self.done, self.total)
            report(self.progress, self.done, self.total, message)
            if outcome == "skipped":
                self.skipped.append(SkippedFile(item.rel, reason))
                continue
            self.outcome[item.path] = outcome
            self.digest[item.path] = reason
            self.staged[item.path] = target
            good.append(item)
        return good
