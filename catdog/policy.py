"""What a caller may do here: one policy object, asked once at each entry point.

catdog is also shared as a hosted demo: one ``streamlit run app.py`` on a small server, opened
by strangers via a link. Hosted mode is on when the environment variable ``CATDOG_HOSTED`` is
``1`` (the dashboard also copies it from Streamlit's secrets); this module is the only one that
reads it. Everything else asks :func:`current_policy` once and then asks the policy: pages what
to offer (``policy.max_upload_mb``, ``policy.strategies``, ``policy.allows_server_files``), the
library what to refuse (``policy.check_training(cfg)``, ``policy.check_quota(...)``...). The
local policy has no caps and every check passes; the hosted one raises
:class:`HostedLimitError` with one line naming the setting, the value and the cap, so no page
or caller can forget a limit.

The limits themselves, their defaults and their ``CATDOG_HOSTED_<NAME>`` variables are in
:mod:`catdog.limits`. Plain Python: no Streamlit, no TensorFlow.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from contextvars import ContextVar
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from catdog import quota
from catdog.data.paths import current_workspace, data_home, workspace_dir
from catdog.limits import (
    ENV_PREFIX,
    HOSTED_DECODE_MIN_SIDE,
    HOSTED_MEMORY_BUDGET_MB,
    HOSTED_PRECISIONS,
    HOSTED_STRATEGIES,
    MB,
    HostedSettings,
    HostingError,
)
from catdog.slots import SLOTS
from catdog.system import megabytes

__all__ = [
    "ENV_PREFIX",
    "ENV_VAR",
    "HOSTED_STRATEGIES",
    "MB",
    "HostedLimitError",
    "HostedSettings",
    "HostingError",
    "Policy",
    "current_policy",
    "read_only_access",
    "set_read_only",
]

ENV_VAR = "CATDOG_HOSTED"
_ON = ("1", "true", "yes", "on")
_OFF = ("", "0", "false", "no", "off")
HostedLimitError = quota.HostedLimitError


def _switch(environ: dict[str, str] | None = None) -> bool:
    """Whether ``CATDOG_HOSTED`` is on (1, true, yes, on) — the one reader of the switch.

    Raises:
        HostingError: the variable holds something else than on or off.
    """
    raw = (os.environ if environ is None else environ).get(ENV_VAR, "").strip().lower()
    if raw in _ON:
        return True
    if raw in _OFF:
        return False
    raise HostingError(f"{ENV_VAR} must be 1 (hosted mode on) or 0 (off), got {raw!r}")


# A session opened by a read-only share link: it may look, never change anything.
_READ_ONLY: ContextVar[bool] = ContextVar("catdog_read_only", default=False)


@contextlib.contextmanager
def read_only_access(on: bool = True) -> Iterator[None]:
    """Run a block as a read-only visitor (``on``) or not, restoring what was before."""
    previous = _READ_ONLY.set(on)
    try:
        yield
    finally:
        _READ_ONLY.reset(previous)


def set_read_only(on: bool) -> None:
    """Make this thread's caller read-only (a share link that only lets one look) or not."""
    _READ_ONLY.set(on)


def current_policy(environ: dict[str, str] | None = None) -> Policy:
    """The policy of the calling thread: hosted (with the limits from the environment, the
    current workspace and whether the caller is read-only) or local (no caps). Cheap: ask it
    once per entry point.

    Raises:
        HostingError: ``CATDOG_HOSTED`` or a ``CATDOG_HOSTED_<NAME>`` is not usable.
    """
    if not _switch(environ):
        return Policy(None, workspace=current_workspace(), read_only=_READ_ONLY.get())
    limits = HostedSettings.from_env(environ)
    return Policy(limits, workspace=current_workspace(), read_only=_READ_ONLY.get())


def _refuse(what: str, value: str, cap: str, hint: str) -> HostedLimitError:
    return HostedLimitError(f"{what} {value} is over hosted mode's cap of {cap}; {hint}")


@dataclass(frozen=True)
class Policy:
    """What the caller may do: ``limits`` None is the local policy (no caps, every check
    passes); else hosted mode's limits for a visitor in ``workspace``.

    Pages read the offers (``max_upload_mb``, ``strategies``, ``precisions``,
    ``allows_server_files``, ``training_bounds()``, the ``*_line()`` sentences); the library
    calls the ``check_*`` methods before the work, and meters (:meth:`disk_meter`) and slots
    (:meth:`job_slot`) while it happens.
    """

    limits: HostedSettings | None
    workspace: str | None = None
    read_only: bool = False

    # ------------------------------------------------------------------- what pages offer

    @property
    def hosted(self) -> bool:
        """Whether this is hosted mode's policy."""
        return self.limits is not None

    @property
    def max_upload_bytes(self) -> int | None:
        """The most bytes one upload may have (None: no cap)."""
        return None if self.limits is None else int(self.limits.max_upload_mb * MB)

    @property
    def max_upload_mb(self) -> int | None:
        """The whole megabytes an upload widget accepts (Streamlit's ``max_upload_size``;
        at least 1); None: no cap of the policy's (the widget's own default)."""
        if self.limits is None:
            return None
        return max(1, int(self.limits.max_upload_mb))

    @property
    def max_predict_photos(self) -> int | None:
        """The most photos one prediction request takes (None: no cap)."""
        return None if self.limits is None else self.limits.max_predict_photos

    @property
    def allows_server_files(self) -> bool:
        """Whether the caller may name files and folders of this computer (locally only)."""
        return self.limits is None

    @property
    def strategies(self) -> tuple[str, ...] | None:
        """The training strategies to offer (None: every one)."""
        return None if self.limits is None else HOSTED_STRATEGIES

    @property
    def precisions(self) -> tuple[str, ...] | None:
        """The arithmetics to offer (None: every one the machine has)."""
        return None if self.limits is None else HOSTED_PRECISIONS

    @property
    def memory_budget_bytes(self) -> int | None:
        """Memory a training may keep images in (None: sized from the machine)."""
        return None if self.limits is None else int(HOSTED_MEMORY_BUDGET_MB * MB)

    @property
    def cache_cap_bytes(self) -> int | None:
        """Disk the server's cache of decoded images may take (None: sized from the disk)."""
        return None if self.limits is None else int(self.limits.max_cache_mb * MB)

    @property
    def max_trainings(self) -> int | None:
        """Trainings that run at once on the server (None: no limit)."""
        return None if self.limits is None else self.limits.max_trainings

    @property
    def max_training_seconds(self) -> float | None:
        """Seconds of training a run may take on the server (None: no cap)."""
        return None if self.limits is None else self.limits.max_training_minutes * 60

    def describe(self) -> list[str]:
        """One line per hosted limit (none locally)."""
        return [] if self.limits is None else self.limits.describe()

    def training_bounds(self) -> dict[str, float]:
        """The bounds a training form offers: the most ``epochs``, ``batch_size``,
        ``image_size`` and ``minutes`` of time limit, and the least time limit
        ``min_minutes`` (hosted mode needs one). Hosted mode's caps, or generous ones
        locally."""
        if (limits := self.limits) is None:
            return {"epochs": 1000, "batch_size": 512, "image_size": 512, "minutes": 10_000.0,
                    "min_minutes": 0.0}  # fmt: skip
        return {"epochs": limits.max_epochs, "batch_size": limits.max_batch_size,
                "image_size": limits.max_image_size,
                "minutes": float(limits.max_training_minutes),
                "min_minutes": min(1.0, float(limits.max_training_minutes))}  # fmt: skip

    def capped_settings(self, values: dict[str, Any]) -> dict[str, Any]:
        """Training settings (``epochs``, ``image_size``, ``batch_size``,
        ``time_limit_minutes``) brought within the caps, a precision not offered made
        ``float32`` and a strategy not offered made ``auto``; other keys, and everything
        locally, unchanged. What a form pre-fills, so its first Start is never refused."""
        if (limits := self.limits) is None:
            return dict(values)
        out = dict(values)
        caps = {"epochs": limits.max_epochs, "image_size": limits.max_image_size,
                "batch_size": limits.max_batch_size}  # fmt: skip
        for key, cap in caps.items():
            if out.get(key) is not None:
                out[key] = min(out[key], cap)
        if out.get("precision") not in (None, *HOSTED_PRECISIONS):
            out["precision"] = "float32"
        if out.get("strategy") not in (None, *HOSTED_STRATEGIES):
            out["strategy"] = "auto"
        if "time_limit_minutes" in out:
            minutes = float(out["time_limit_minutes"] or 0)
            cap_minutes = float(limits.max_training_minutes)
            out["time_limit_minutes"] = min(minutes, cap_minutes) or cap_minutes
        return out

    def training_caps_line(self) -> str | None:
        """The caps on one training run, in a sentence; None locally."""
        if (limits := self.limits) is None:
            return None
        return (
            f"Hosted demo: at most {limits.max_epochs} epochs, {limits.max_image_size} px, "
            f"batch {limits.max_batch_size} and {limits.max_training_minutes:g} minutes per run."
        )

    def upload_limits_line(self) -> str | None:
        """The caps on an uploaded dataset and how full the workspace is, in a sentence;
        None locally."""
        if (limits := self.limits) is None:
            return None
        return (
            f"Hosted demo: a .zip of at most {limits.max_upload_mb:g} MB, making a dataset "
            f"of at most {limits.max_dataset_images:,} images and {limits.max_dataset_mb:g} "
            f"MB. Your workspace holds {self.workspace_usage() / MB:,.1f} of "
            f"{limits.workspace_quota_mb:g} MB."
        )

    def shown(self, text: str | os.PathLike[str]) -> str:
        """``text`` (a message or a path) as a visitor may see it: in hosted mode the server's
        folders are left out (a workspace's files are named relative to it, the shared ones
        relative to the data home); unchanged locally."""
        text = str(text)
        if self.limits is None:
            return text
        own = workspace_dir(self.workspace)
        for root in (own, data_home()):
            if root is None:
                continue
            for form in dict.fromkeys((str(root.resolve()), str(root))):
                text = text.replace(form + os.sep, "").replace(form, ".")
        return text

    # ------------------------------------------------------------ what the library refuses

    def check_writable(self, what: str) -> None:
        """Refuse any change from a read-only visitor.

        Raises:
            HostedLimitError: the caller only may look (a read-only share link).
        """
        if self.read_only:
            raise HostedLimitError(
                f"{what} is refused: this link only lets you look; open the app without it "
                "to get a workspace of your own"
            )

    def check_training(self, cfg: Any) -> None:
        """Refuse a resolved training config with a setting over a cap (nothing locally).

        Args:
            cfg: a :class:`~catdog.train.config.TrainConfig` with its defaults filled in.

        Raises:
            HostedLimitError: epochs, image size or batch size over its cap, a time limit
                that is none (0) or over the cap, or a strategy hosted mode does not offer.
        """
        if (limits := self.limits) is None:
            return
        strategy = getattr(cfg, "strategy", "auto")
        if strategy not in HOSTED_STRATEGIES:
            raise HostedLimitError(
                f"strategy {strategy} is not offered in hosted mode; choose "
                f"{' or '.join(HOSTED_STRATEGIES)}"
            )
        capped = (
            ("epochs", cfg.epochs, limits.max_epochs, ""),
            ("image size", cfg.image_size, limits.max_image_size, " px"),
            ("batch size", cfg.batch_size, limits.max_batch_size, ""),
        )
        for what, value, cap, unit in capped:
            if value is not None and value > cap:
                raise _refuse(what, f"{value}{unit}", f"{cap}{unit}",
                              f"choose at most {cap}{unit}")  # fmt: skip
        minutes, cap_minutes = float(cfg.time_limit_minutes or 0), limits.max_training_minutes
        if minutes <= 0:
            raise HostedLimitError(
                f"time limit 0 (none) is over hosted mode's cap of {cap_minutes:g} minutes; "
                f"set a time limit of at most {cap_minutes:g} minutes"
            )
        if minutes > cap_minutes:
            raise _refuse("time limit", f"{minutes:g} minutes", f"{cap_minutes:g} minutes",
                          f"set at most {cap_minutes:g}")  # fmt: skip

    def precision_for(self, requested: str) -> tuple[str, str | None]:
        """The arithmetic a run that asked for ``requested`` computes in, and why if it is
        not what was asked (hosted mode: float32, without timing anything)."""
        if self.limits is None or requested in HOSTED_PRECISIONS:
            return requested, None
        return "float32", (
            f"float32: hosted mode trains in float32 only ({requested} was asked; timing "
            "another arithmetic would start a second TensorFlow process on a shared server)"
        )

    def check_upload(self, nbytes: int, name: str) -> None:
        """Refuse an upload bigger than the cap (nothing locally)."""
        cap = self.max_upload_bytes
        if cap is not None and nbytes > cap:
            raise _refuse(f"upload {name} of", megabytes(nbytes), megabytes(cap),
                          "upload a smaller one")  # fmt: skip

    def check_dataset_images(self, count: int, source: str) -> None:
        """Refuse a dataset of more images than the cap (nothing locally)."""
        if self.limits is not None and count > (cap := self.limits.max_dataset_images):
            raise _refuse(f"{source}: a dataset of", f"{count:,} images", f"{cap:,} images",
                          "import fewer photos")  # fmt: skip

    def check_dataset_bytes(self, nbytes: int, source: str) -> None:
        """Refuse a dataset bigger on disk than the cap (nothing locally)."""
        if self.limits is not None and nbytes > (cap := self.max_dataset_bytes or 0):
            raise _refuse(f"{source}: a dataset of", megabytes(nbytes), megabytes(cap),
                          "import fewer or smaller photos")  # fmt: skip

    @property
    def max_dataset_bytes(self) -> int | None:
        """The most bytes a dataset may take on disk (None: no cap)."""
        return None if self.limits is None else self.limits.max_dataset_bytes

    def check_photos(self, count: int) -> None:
        """Refuse classifying more photos at once than the cap (nothing locally)."""
        if self.limits is not None and count > (cap := self.limits.max_predict_photos):
            raise _refuse("classifying", f"{count} photos at once", f"{cap}",
                          f"give at most {cap} at a time")  # fmt: skip

    def refuse_server_files(self, what: str, instead: str = "upload your photos instead") -> None:
        """In hosted mode, refuse reading the server's own files (nothing locally).

        Args:
            what: what was asked for, e.g. ``"importing the folder /srv/photos"``.
            instead: what the visitor can do instead, for the message.
        """
        if self.limits is not None:
            raise HostedLimitError(
                f"{what} is refused in hosted mode: the server's own files are not visitors' "
                f"to read; {instead}"
            )

    # ------------------------------------------------------------------ decode pixels

    @property
    def decode_min_side(self) -> int | None:
        """The side a JPEG may be decoded down to (None: full size)."""
        return None if self.limits is None else HOSTED_DECODE_MIN_SIDE

    @property
    def max_image_pixels(self) -> int | None:
        """Pixels one imported image may decode to (None: the decoder's own limit)."""
        return None if self.limits is None else int(self.limits.max_image_megapixels * 1e6)

    @property
    def max_import_pixels(self) -> int | None:
        """Pixels one import may decode in all (None: no cap)."""
        return None if self.limits is None else int(self.limits.max_import_megapixels * 1e6)

    # ------------------------------------------------------------------------- disk

    @property
    def quota_bytes(self) -> int | None:
        """The workspace's quota (None: no quota: local, or no workspace)."""
        if self.limits is None or self.workspace is None:
            return None
        return int(self.limits.workspace_quota_mb * MB)

    def workspace_usage(self) -> int:
        """Bytes the caller's workspace holds on disk; 0 without one."""
        folder = workspace_dir(self.workspace)
        return 0 if folder is None else quota.folder_size(folder)

    def check_quota(self, adding: int = 0, what: str = "") -> None:
        """Refuse to add ``adding`` bytes (``what``, for the message) to a workspace that
        would then be over its quota, or that is full already (nothing locally)."""
        if (cap := self.quota_bytes) is not None:
            quota.check(self.workspace or "", cap, adding, what)

    def disk_meter(self, what: str, cap: int | None = None) -> quota.DiskMeter:
        """A meter for bytes about to be written into the workspace (``what`` writes them):
        each :meth:`~catdog.quota.DiskMeter.add` counts bytes before they are written and
        raises :class:`HostedLimitError` past the workspace's free quota or ``cap``. Other
        meters of the workspace running meanwhile count as used. Locally only ``cap``
        applies."""
        return quota.DiskMeter(self.workspace, self.quota_bytes, what, cap)

    def check_new_run(self) -> None:
        """Refuse a new run in a workspace with less free quota than a run needs."""
        if (cap := self.quota_bytes) is not None and self.limits is not None:
            reserve = int(self.limits.run_reserve_mb * MB)
            quota.check(self.workspace or "", cap, reserve, "a new run (its models)")

    def check_export_target(self, target: Path) -> None:
        """Refuse an export written anywhere but the caller's workspace (hosted mode)."""
        folder = workspace_dir(self.workspace)
        if self.limits is None or folder is None:
            return
        if not Path(target).resolve().is_relative_to(folder.resolve()):
            raise HostedLimitError(
                f"exporting to {self.shown(target)} is refused in hosted mode: exports go into "
                "your workspace; leave the target out"
            )

    # ------------------------------------------------------------------- CPU and queue

    def job_slot(self, kind: str) -> contextlib.AbstractContextManager[None]:
        """Hold the workspace's one slot of ``kind`` (``"import"``, ``"audit"``...) for the
        ``with`` block; hosted mode also caps the slots of ``kind`` on the server
        (``max_imports`` for imports, 1 for anything else). Locally nothing is held.

        Raises:
            HostedLimitError: the workspace already runs one, or the server is at its cap.
        """
        if self.limits is None:
            return contextlib.nullcontext()
        server_cap = self.limits.max_imports if kind == "import" else 1
        return SLOTS.hold(kind, self.workspace, server_cap)

    @property
    def max_queued_jobs(self) -> int | None:
        """Trainings that may wait in the server's queue (None: no limit)."""
        return None if self.limits is None else self.limits.max_queued_jobs

    @property
    def jobs_per_workspace(self) -> int | None:
        """Trainings one workspace may have training or queued (None: no limit)."""
        return None if self.limits is None else 1

    @property
    def queued_idle_seconds(self) -> float | None:
        """How long a queued training's workspace may go unvisited before it is cancelled."""
        return None if self.limits is None else self.limits.queued_idle_minutes * 60

    @property
    def workspace_idle_hours(self) -> float | None:
        """Hours after which an unused workspace is deleted (None: never)."""
        return None if self.limits is None else self.limits.workspace_idle_hours
