"""Hosted demo mode: one switch and the limits a shared server puts on its visitors.

catdog is also shared as a hosted demo: one ``streamlit run app.py`` on a small server, opened
by strangers via a link. Hosted mode is on when the environment variable ``CATDOG_HOSTED`` is
``1`` (the dashboard also copies it from Streamlit's secrets); it is off by default, and then
nothing here changes anything. In hosted mode the library itself refuses what a visitor must
not do (each check below raises :class:`HostedLimitError` with one line naming the setting, the
value and the cap), so no page or caller can forget a limit.

Every limit has a default in :class:`HostedSettings` and is overridden by the environment
variable ``CATDOG_HOSTED_<NAME>`` (e.g. ``CATDOG_HOSTED_MAX_EPOCHS=50``). Plain Python: no
Streamlit, no TensorFlow.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, fields
from typing import Any

ENV_VAR = "CATDOG_HOSTED"
ENV_PREFIX = "CATDOG_HOSTED_"
_ON = ("1", "true", "yes", "on")
_OFF = ("", "0", "false", "no", "off")
MB = 1024 * 1024


class HostingError(ValueError):
    """A hosted-mode setting in the environment that cannot be used; the message says which."""


class HostedLimitError(ValueError):
    """Something hosted mode does not allow (over a cap, or the server's own files)."""


@dataclass(frozen=True)
class HostedSettings:
    """The limits of hosted mode, sized for a free Streamlit Community Cloud server (about 1 GB
    of memory, one shared CPU). Each field is overridden by ``CATDOG_HOSTED_<FIELD NAME>``."""

    # Trainings that run at once in the server process; more wait in a queue (FIFO).
    max_trainings: int = 1
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
    # Size of one uploaded .zip (or one photo to classify).
    max_upload_mb: float = 50.0
    # Photos classified in one request.
    max_predict_photos: int = 20
    # A visitor's workspace untouched this long is deleted by the server.
    workspace_idle_hours: float = 24.0
    # Disk a visitor's workspace may fill (datasets and runs); over it, no more imports or runs.
    workspace_quota_mb: float = 300.0

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

    @property
    def max_upload_bytes(self) -> int:
        """:attr:`max_upload_mb` in bytes."""
        return int(self.max_upload_mb * MB)

    @property
    def workspace_quota_bytes(self) -> int:
        """:attr:`workspace_quota_mb` in bytes."""
        return int(self.workspace_quota_mb * MB)

    def describe(self) -> list[str]:
        """One line per limit, for people (the dashboard's Home page lists them)."""
        return [
            f"{self.max_trainings} training(s) at a time on this server; more wait in a queue",
            f"training runs of at most {self.max_epochs} epochs, {self.max_image_size} px, "
            f"batch {self.max_batch_size} and {self.max_training_minutes:g} minutes",
            f"datasets of at most {self.max_dataset_images:,} images and "
            f"{self.max_dataset_mb:g} MB, uploaded as a .zip of at most {self.max_upload_mb:g} MB",
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


def hosted(environ: dict[str, str] | None = None) -> bool:
    """Whether hosted mode is on (``CATDOG_HOSTED`` is 1, true, yes or on).

    Raises:
        HostingError: the variable holds something else than on or off.
    """
    raw = (os.environ if environ is None else environ).get(ENV_VAR, "").strip().lower()
    if raw in _ON:
        return True
    if raw in _OFF:
        return False
    raise HostingError(f"{ENV_VAR} must be 1 (hosted mode on) or 0 (off), got {raw!r}")


def settings() -> HostedSettings:
    """The hosted-mode limits from the environment (read anew each call: it is cheap)."""
    return HostedSettings.from_env()
