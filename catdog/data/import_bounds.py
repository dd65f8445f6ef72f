"""What one import may spend, asked of the policy: checked from declared sizes before the work,
and counted while it happens.

In hosted mode an import of a visitor's .zip is bounded three ways (locally nothing here
refuses anything):

1. **Before extracting**: the archive's central directory declares every entry's size; their
   total must fit the room the workspace has left (and twice the dataset cap), their number the
   image cap (:func:`extract_limits`, :class:`ImportBudget.plan`).
2. **Before decoding**: each image's header says how many pixels it decodes to (a JPEG at a
   reduced scale, :data:`catdog.policy.HOSTED_DECODE_MIN_SIDE`); an image over the per-image
   pixel cap is skipped, and an import whose images add up to more than the per-import cap is
   refused (:func:`pixel_problems`).
3. **While writing**: every byte extracted or staged is counted before it is written
   (:class:`ImportBudget.add`), so the import stops at the cap or at the workspace's quota,
   and the importer deletes its work folder: nothing is left behind.
"""

from __future__ import annotations

import contextlib
import threading
from pathlib import Path

from PIL import Image

from catdog.data.images import ACCEPTED_FORMATS
from catdog.data.zip_directory import ExtractLimits
from catdog.policy import HostedLimitError, Policy
from catdog.quota import DiskMeter
from catdog.system import megabytes


def extract_limits(policy: Policy) -> ExtractLimits | None:
    """How far an uploaded archive may expand: in hosted mode to twice the dataset cap (photos
    barely compress; the finished dataset is checked against the cap itself) and twice the
    image cap in entries; locally the archive module's defaults (None)."""
    if policy.limits is None:
        return None
    return ExtractLimits(
        max_total_bytes=2 * policy.limits.max_dataset_bytes,
        max_entries=2 * policy.limits.max_dataset_images + 1000,
    )


class ImportBudget:
    """The disk one import may write: the workspace's free quota in all, and the dataset cap
    for the checked images it stages (the archive's own expansion is bounded by
    :func:`extract_limits`).

    Passed to :func:`catdog.data.archive.safe_extract` (which calls :meth:`plan` with the
    declared sizes before writing and :meth:`add` before each chunk); the importer calls
    :meth:`add_staged` before it stages each checked image. Use it as a context manager
    around the whole import.
    """

    def __init__(self, policy: Policy, source: str) -> None:
        self.source, self.policy = source, policy
        self.min_side = policy.decode_min_side  # JPEGs decode reduced to this (None: full)
        self.staged = 0
        self._lock = threading.Lock()
        self._meter: DiskMeter = policy.disk_meter(f"importing {source}")

    def __enter__(self) -> ImportBudget:
        self._meter.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        self._meter.__exit__(None, None, None)

    @property
    def written(self) -> int:
        """Bytes counted so far."""
        return self._meter.written

    def plan(self, declared_bytes: int, entries: int) -> None:
        """Refuse an archive whose entries declare more bytes than the import may write.

        Raises:
            HostedLimitError: ``declared_bytes`` is over the room left (nothing written yet).
        """
        room = self._meter.room
        if room is not None and declared_bytes > room:
            raise HostedLimitError(
                f"{self.source} would expand to {megabytes(declared_bytes)} ({entries:,} files), "
                f"more than the {megabytes(max(room, 0))} this import may write (your "
                "workspace's free quota); nothing was written. Import fewer or smaller photos, "
                "or delete runs or datasets you no longer need"
            )

    def add(self, nbytes: int) -> None:
        """Count ``nbytes`` about to be written (raises past the room left)."""
        self._meter.add(nbytes)

    def add_staged(self, nbytes: int) -> None:
        """Count ``nbytes`` of a checked image about to be staged: the dataset in the making
        (raises past the dataset cap or the room left)."""
        with self._lock:
            self.policy.check_dataset_bytes(self.staged + nbytes, self.source)
            self.staged += nbytes
        self._meter.add(nbytes)


def decoded_size(path: Path, min_side: int | None) -> tuple[int, int] | None:
    """The width and height ``path`` decodes to, from its header alone: a JPEG at the smallest
    scale (1/2, 1/4, 1/8) keeping both sides at least ``min_side``; None if the header cannot be
    read (the decoding says why, with the file's name)."""
    try:
        with Image.open(path, formats=ACCEPTED_FORMATS) as image:
            if min_side and image.format in ("JPEG", "MPO"):
                image.draft("RGB", (min_side, min_side))
            return image.size
    except Exception:  # unreadable, not an image, too large for Pillow: the decode pass says
        return None


def pixel_problems(images: list[tuple[Path, str]], policy: Policy, source: str) -> dict[Path, str]:
    """Check the pixels each image would decode to, from headers only (nothing decoded).

    Args:
        images: (path, name for messages) of every candidate image.
        policy: the caller's policy (locally nothing is checked).
        source: the import's source, for the message.

    Returns:
        The images over the per-image cap, each with the reason it is skipped.

    Raises:
        HostedLimitError: the other images add up to more pixels than one import may decode.
    """
    cap, total_cap = policy.max_image_pixels, policy.max_import_pixels
    if cap is None or total_cap is None:
        return {}
    problems: dict[Path, str] = {}
    total = 0
    for path, name in images:
        with contextlib.suppress(OSError):
            size = decoded_size(path, policy.decode_min_side)
            if size is None:
                continue
            pixels = size[0] * size[1]
            if pixels > cap:
                problems[path] = (
                    f"{name} decodes to {size[0]:,}×{size[1]:,} pixels ({pixels / 1e6:,.1f} "
                    f"megapixels), over hosted mode's cap of {cap / 1e6:g} per photo; shrink it"
                )
                continue
            total += pixels
    if total > total_cap:
        raise HostedLimitError(
            f"{source}: its photos decode to {total / 1e6:,.0f} megapixels, over hosted mode's "
            f"cap of {total_cap / 1e6:,.0f} per import; import fewer or smaller photos"
        )
    return problems
