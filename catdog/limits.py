"""Hosted mode's limits: what a shared server allows each visitor, with their defaults.

Every limit has a default in :class:`HostedSettings` and is overridden by the environment
variable ``CATDOG_HOSTED_<NAME>`` (e.g. ``CATDOG_HOSTED_MAX_EPOCHS=50``). Whether hosted mode
is on at all is the policy's to say (:func:`catdog.policy.current_policy`), nobody else's.
Plain Python.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, fields
from typing import Any

from catdog.system import MB

ENV_PREFIX = "CATDOG_HOSTED_"
# Training strategies a shared server offers: each visitor's run on one device (auto is one
# there: hosting tiers have no GPUs).
HOSTED_STRATEGIES = ("auto", "one")
# Arithmetics a run may ask for. Hosted mode computes in float32 only: ``auto`` times the step
# in a second TensorFlow process (measured on the demo: the server peaked at 0.8 GB and the two
# processes at 1.5 GB, over a 1 GB tier).
HOSTED_PRECISIONS = ("float32",)
# Decoded training images a hosted run may keep in memory (see catdog.train.budget): the demo's
# 900 training and validation cartoons at 96 px (25 MB) stay in memory; a 3,000-photo upload at
# 128 px (110 MB of training and validation images) is streamed from disk.
HOSTED_MEMORY_BUDGET_MB = 64.0
# A hosted import decodes each JPEG at the smallest of 1/1, 1/2, 1/4, 1/8 scale that keeps both
# sides at least this (twice the largest training input: room for zoom and crop).
HOSTED_DECODE_MIN_SIDE = 256


class HostingError(ValueError):
    """A hosted-mode setting in the environment that cannot be used; the message says which."""


@dataclass(frozen=True)
class HostedSettings:
    """The limits of hosted mode, sized for a free Streamlit Community Cloud server (about 1 GB
    of memory, one shared CPU). Each field is overridden by ``CATDOG_HOSTED_<FIELD NAME>``."""

    # Trainings that run at once in the server process; more wait in a queue (FIFO).
    max_trainings: int = 1
    # Trainings waiting in the server's queue (every workspace's); more are refused.
    max_queued_jobs: int = 8
    # A queued training whose workspace had no visit for this long is cancelled.
    queued_idle_minutes: float = 15.0
    # Imports that run at once on the server (each workspace imports one at a time).
    max_imports: int = 2
    # Epochs of one run (the seed's 30; catdog-net's presets want more, and get the time limit).
    max_epochs: int = 30
    # Square input side in pixels: memory and time grow with its square.
    max_image_size: int = 128
    # Images per batch: the batch's activations are most of a training's memory.
    max_batch_size: int = 64
    # Minutes of training per run (a run must set a time limit, at most this).
    max_training_minutes: float = 10.0
    # Images in one imported dataset, and its size on disk.
    max_dataset_images: int = 3000
    max_dataset_mb: float = 200.0
    # Pixels one imported image may decode to (JPEGs are decoded reduced, see
    # HOSTED_DECODE_MIN_SIDE): a 12-megapixel phone JPEG decodes to 0.2; a 49-megapixel PNG
    # is refused from its header, before any pixel is decoded.
    max_image_megapixels: float = 4.0
    # Pixels one import may decode in all (3,000 photos of 0.67 megapixels).
    max_import_megapixels: float = 2000.0
    # Size of one uploaded .zip (or one photo to classify, or one weights file).
    max_upload_mb: float = 50.0
    # Photos classified in one request.
    max_predict_photos: int = 20
    # A visitor's workspace untouched this long is deleted by the server.
    workspace_idle_hours: float = 24.0
    # Decoded images the server keeps on disk for streamed training, every visitor's together
    # (least recently used first out): a 3,000-photo upload's splits at 128 px take 147 MB.
    max_cache_mb: float = 512.0
    # Disk a visitor's workspace may fill (datasets, runs, exports, uploads); never more.
    workspace_quota_mb: float = 300.0
    # Disk a new run is expected to need, refused when the workspace has less left: its best
    # and last models with optimizer state, estimated for the seed's network at 128 px (2.6 M
    # parameters and Adam's two moments: about 31 MB a file). A bigger network stops before
    # the save that would pass the quota, and says so.
    run_reserve_mb: float = 64.0

    @classmethod
    def from_env(cls, environ: dict[str, str] | None = None) -> HostedSettings:
        """The defaults, each replaced by its ``CATDOG_HOSTED_<NAME>`` variable if set.

        Raises:
            HostingError: a variable is not a positive number (an int where one is needed).
        """
        environ = os.environ if environ is None else environ
        values: dict[str, Any] = {}
        for spec in fields(cls):
            name = ENV_PREFIX + spec.name.upper()
            raw = environ.get(name, "").strip()
            if raw:
                values[spec.name] = _positive(name, raw, integer=spec.type in ("int", int))
        return cls(**values)

    @property
    def max_dataset_bytes(self) -> int:
        """:attr:`max_dataset_mb` in bytes."""
        return int(self.max_dataset_mb * MB)

    def describe(self) -> list[str]:
        """One line per limit, for people (the dashboard's Home page lists them)."""
        return [
            f"{self.max_trainings} training(s) at a time on this server; up to "
            f"{self.max_queued_jobs} more wait in a queue; one per workspace",
            f"training runs of at most {self.max_epochs} epochs, {self.max_image_size} px, "
            f"batch {self.max_batch_size} and {self.max_training_minutes:g} minutes, in float32",
            f"datasets of at most {self.max_dataset_images:,} images and "
            f"{self.max_dataset_mb:g} MB, uploaded as a .zip of at most {self.max_upload_mb:g} "
            f"MB; photos of at most {self.max_image_megapixels:g} megapixels",
            f"at most {self.max_predict_photos} photos classified at once",
            "no access to the server's own files: datasets come as uploads",
            f"a private workspace of at most {self.workspace_quota_mb:g} MB, deleted after "
            f"{self.workspace_idle_hours:g} hours unused",
        ]


def _positive(name: str, raw: str, *, integer: bool) -> int | float:
    kind = "a whole number" if integer else "a number"
    try:
        value: int | float = int(raw) if integer else float(raw)
    except ValueError:
        raise HostingError(f"{name} must be {kind} > 0, got {raw!r}; fix or unset it") from None
    if not value > 0 or value != value or value == float("inf"):
        raise HostingError(f"{name} must be {kind} > 0, got {raw!r}; fix or unset it")
    return value
