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

import contextlib
import logging
import os
import shutil
import stat
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

from catdog.data.paths import (
    current_workspace,
    valid_workspace_token,
    workspace_dir,
    workspaces_dir,
)
from catdog.system import MB

ENV_VAR = "CATDOG_HOSTED"
ENV_PREFIX = "CATDOG_HOSTED_"
_ON = ("1", "true", "yes", "on")
_OFF = ("", "0", "false", "no", "off")
# The training strategies hosted mode offers: a shared server trains each visitor's run on one
# device (auto is one there: hosting tiers have no GPUs).
HOSTED_STRATEGIES = ("auto", "one")
# Decoded training images a hosted run may keep in memory (see catdog.train.budget): the demo's
# 900 training and validation cartoons at 96 px (25 MB) stay in memory; a 3,000-photo upload at
# 128 px (110 MB of training and validation images) is streamed from disk.
HOSTED_MEMORY_BUDGET_MB = 64.0


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


# ------------------------------------------------------------------- what hosted mode refuses


def _refuse(what: str, value: str, cap: str, hint: str) -> HostedLimitError:
    return HostedLimitError(f"{what} {value} is over hosted mode's cap of {cap}; {hint}")


def _mb(nbytes: float) -> str:
    return f"{nbytes / MB:,.1f} MB"


def check_training(cfg: Any) -> None:
    """Refuse a resolved training config with a setting over a cap (nothing locally).

    Args:
        cfg: a :class:`~catdog.train.config.TrainConfig` with its defaults filled in.

    Raises:
        HostedLimitError: epochs, image size or batch size over its cap, a time limit that
            is none (0) or over the cap, or a strategy hosted mode does not offer; the message
            names the setting, the value and the cap.
    """
    if not hosted():
        return
    strategy = getattr(cfg, "strategy", "auto")
    if strategy not in HOSTED_STRATEGIES:
        raise HostedLimitError(
            f"strategy {strategy} is not offered in hosted mode; choose "
            f"{' or '.join(HOSTED_STRATEGIES)}"
        )
    limits = settings()
    capped = (
        ("epochs", cfg.epochs, limits.max_epochs, ""),
        ("image size", cfg.image_size, limits.max_image_size, " px"),
        ("batch size", cfg.batch_size, limits.max_batch_size, ""),
    )
    for what, value, cap, unit in capped:
        if value is not None and value > cap:
            raise _refuse(what, f"{value}{unit}", f"{cap}{unit}", f"choose at most {cap}{unit}")
    minutes, cap = float(cfg.time_limit_minutes or 0), limits.max_training_minutes
    if minutes <= 0:
        raise HostedLimitError(
            f"time limit 0 (none) is over hosted mode's cap of {cap:g} minutes; "
            f"set a time limit of at most {cap:g} minutes"
        )
    if minutes > cap:
        raise _refuse("time limit", f"{minutes:g} minutes", f"{cap:g} minutes",
                      f"set at most {cap:g}")  # fmt: skip


def capped_settings(values: dict[str, Any]) -> dict[str, Any]:
    """Training settings (``epochs``, ``image_size``, ``batch_size``, ``time_limit_minutes``)
    brought within hosted mode's caps, precision ``auto`` made ``float32`` and a strategy it
    does not offer made ``auto``; other keys,
    and everything locally, unchanged. What a form pre-fills, so its first Start is never
    refused. (``auto`` times the training step in a second TensorFlow process: measured on
    the demo, the server peaked at 0.8 GB and the two processes at 1.5 GB, over a 1 GB tier.)"""
    if not hosted():
        return dict(values)
    limits, out = settings(), dict(values)
    caps = {"epochs": limits.max_epochs, "image_size": limits.max_image_size,
            "batch_size": limits.max_batch_size}  # fmt: skip
    for key, cap in caps.items():
        if out.get(key) is not None:
            out[key] = min(out[key], cap)
    if out.get("precision") == "auto":
        out["precision"] = "float32"
    if out.get("strategy") not in (None, *HOSTED_STRATEGIES):
        out["strategy"] = "auto"
    if "time_limit_minutes" in out:
        minutes = float(out["time_limit_minutes"] or 0)
        out["time_limit_minutes"] = min(minutes, limits.max_training_minutes) or float(
            limits.max_training_minutes
        )
    return out


def training_bounds() -> dict[str, float]:
    """The bounds a training form offers: the most ``epochs``, ``batch_size``, ``image_size``
    and ``minutes`` of time limit, and the least time limit ``min_minutes`` (hosted mode needs
    one). Hosted mode's caps, or generous ones locally."""
    if not hosted():
        return {"epochs": 1000, "batch_size": 512, "image_size": 512, "minutes": 10_000.0,
                "min_minutes": 0.0}  # fmt: skip
    limits = settings()
    return {"epochs": limits.max_epochs, "batch_size": limits.max_batch_size,
            "image_size": limits.max_image_size, "minutes": float(limits.max_training_minutes),
            "min_minutes": min(1.0, float(limits.max_training_minutes))}  # fmt: skip


def training_caps_line() -> str | None:
    """Hosted mode's caps on one training run, in a sentence; None locally."""
    if not hosted():
        return None
    limits = settings()
    return (
        f"Hosted demo: at most {limits.max_epochs} epochs, {limits.max_image_size} px, "
        f"batch {limits.max_batch_size} and {limits.max_training_minutes:g} minutes per run."
    )


def upload_limits_line() -> str | None:
    """Hosted mode's caps on an uploaded dataset and how full the visitor's workspace is, in a
    sentence; None locally."""
    if not hosted():
        return None
    limits = settings()
    return (
        f"Hosted demo: a .zip of at most {limits.max_upload_mb:g} MB, making a dataset "
        f"of at most {limits.max_dataset_images:,} images and {limits.max_dataset_mb:g} "
        f"MB. Your workspace holds {workspace_usage() / MB:,.1f} of "
        f"{limits.workspace_quota_mb:g} MB."
    )


def check_upload(nbytes: int, name: str) -> None:
    """Refuse an upload bigger than the cap (nothing locally).

    Raises:
        HostedLimitError: ``name`` is over :attr:`HostedSettings.max_upload_mb`.
    """
    if hosted() and nbytes > (cap := settings().max_upload_bytes):
        raise _refuse(f"upload {name} of", _mb(nbytes), _mb(cap), "upload a smaller one")


def check_dataset_images(count: int, source: str) -> None:
    """Refuse a dataset of more images than the cap (nothing locally).

    Raises:
        HostedLimitError: ``count`` is over :attr:`HostedSettings.max_dataset_images`.
    """
    if hosted() and count > (cap := settings().max_dataset_images):
        raise _refuse(f"{source}: a dataset of", f"{count:,} images", f"{cap:,} images",
                      "import fewer photos")  # fmt: skip


def check_dataset_bytes(nbytes: int, source: str) -> None:
    """Refuse a dataset bigger on disk than the cap (nothing locally).

    Raises:
        HostedLimitError: ``nbytes`` is over :attr:`HostedSettings.max_dataset_mb`.
    """
    if hosted() and nbytes > (cap := settings().max_dataset_bytes):
        raise _refuse(f"{source}: a dataset of", _mb(nbytes), _mb(cap),
                      "import fewer or smaller photos")  # fmt: skip


def check_photos(count: int) -> None:
    """Refuse classifying more photos at once than the cap (nothing locally).

    Raises:
        HostedLimitError: ``count`` is over :attr:`HostedSettings.max_predict_photos`.
    """
    if hosted() and count > (cap := settings().max_predict_photos):
        raise _refuse("classifying", f"{count} photos at once", f"{cap}",
                      f"give at most {cap} at a time")  # fmt: skip


def refuse_server_files(what: str, instead: str = "upload your photos instead") -> None:
    """In hosted mode, refuse reading the server's own files (nothing locally).

    Args:
        what: what was asked for, e.g. ``"importing the folder /srv/photos"``.
        instead: what the visitor can do instead, for the message.

    Raises:
        HostedLimitError: always, in hosted mode.
    """
    if hosted():
        raise HostedLimitError(
            f"{what} is refused in hosted mode: the server's own files are not visitors' to "
            f"read; {instead}"
        )


def folder_size(path: str | os.PathLike[str]) -> int:
    """Bytes of the regular files under ``path`` (links not followed; 0 if it is missing)."""
    total = 0
    for folder, _dirs, files in os.walk(path):
        for name in files:
            try:
                info = os.lstat(os.path.join(folder, name))
            except OSError:
                continue  # vanished meanwhile
            total += info.st_size if stat.S_ISREG(info.st_mode) else 0
    return total


# ----------------------------------------------------------------- workspace quota and expiry

LAST_SEEN = ".last-seen"  # touched in a workspace at each visit (at most once a minute)
TOUCH_EVERY_SECONDS = 60.0
SWEEP_EVERY_SECONDS = 300.0
_log = logging.getLogger(__name__)
_sweeper_lock = threading.Lock()
_sweeper: threading.Thread | None = None


def workspace_usage(token: str | None = None) -> int:
    """Bytes a workspace (default: the current one) holds on disk; 0 without one."""
    folder = workspace_dir(token)
    return 0 if folder is None else folder_size(folder)


def check_quota(adding: int = 0, what: str = "") -> None:
    """In hosted mode, refuse to add to a workspace at or over its quota (nothing locally,
    nothing outside a workspace).

    Args:
        adding: bytes about to be added (an upload), if known.
        what: what adds them, for the message (``"pets.zip"``).

    Raises:
        HostedLimitError: the workspace's size (plus ``adding``) is over the quota; the
            message gives both sizes and what to do.
    """
    if not hosted() or current_workspace() is None:
        return
    used, quota = workspace_usage(), settings().workspace_quota_bytes
    if used + adding <= quota and (adding or used < quota):
        return
    more = f" and {what} would add {_mb(adding)}" if adding else ""
    raise HostedLimitError(
        f"your workspace holds {_mb(used)}{more}: over its quota of {_mb(quota)}; delete "
        "runs or datasets you no longer need (History and Dataset pages), then try again"
    )


def touch_workspace(token: str | None = None) -> None:
    """Record that a workspace (default: the current one) is in use now, so the sweep keeps
    it; cheap enough for every page view (it writes at most once a minute)."""
    folder = workspace_dir(token)
    if folder is None:
        return
    marker = folder / LAST_SEEN
    with contextlib.suppress(OSError):
        if time.time() - marker.stat().st_mtime < TOUCH_EVERY_SECONDS:
            return
    folder.mkdir(parents=True, exist_ok=True)
    marker.touch()


def last_activity(folder: str | os.PathLike[str]) -> float:
    """The newest modification time of ``folder`` and anything in it (links not followed)."""
    newest = os.lstat(folder).st_mtime
    for path, dirs, files in os.walk(folder):
        for name in dirs + files:
            with contextlib.suppress(OSError):  # vanished meanwhile
                newest = max(newest, os.lstat(os.path.join(path, name)).st_mtime)
    return newest


def _training_there(folder: Path) -> bool:
    """Whether some process trains one of the workspace's runs now (holds its lock)."""
    from catdog.train.runs.lock import lock_taken

    runs_folder = folder / "runs"
    return runs_folder.is_dir() and any(
        lock_taken(run) for run in runs_folder.iterdir() if run.is_dir()
    )


def sweep_idle_workspaces(
    busy: Iterable[str] = (),
    *,
    now: float | None = None,
    idle_hours: float | None = None,
    root: Path | None = None,
) -> list[Path]:
    """Delete the workspaces nothing touched for ``idle_hours`` (default: the setting).

    Only folders of ``root`` (default ``<data home>/workspaces/``) named like a workspace
    token are considered;
    the shared data and anything else are never touched. A workspace is kept if its token is
    in ``busy`` (a job training or queued, see
    :meth:`catdog.jobs.JobManager.busy_workspaces`),
    if any process holds the lock of one of its runs, or if anything in it changed since the
    cutoff (a visit touches :data:`LAST_SEEN`).

    Returns:
        The workspace folders deleted.
    """
    root = workspaces_dir() if root is None else root
    if not root.is_dir():
        return []
    hours = settings().workspace_idle_hours if idle_hours is None else idle_hours
    cutoff = (time.time() if now is None else now) - hours * 3600
    keep, removed = set(busy), []
    for entry in os.scandir(root):
        if not valid_workspace_token(entry.name) or not entry.is_dir(follow_symlinks=False):
            continue
        folder = Path(entry.path)
        try:
            if entry.name in keep or _training_there(folder) or last_activity(folder) > cutoff:
                continue
            shutil.rmtree(folder)
        except OSError as exc:  # in use or gone meanwhile: the next sweep sees it again
            _log.warning("could not sweep workspace %s: %s", entry.name, exc)
            continue
        removed.append(folder)
    return removed


def start_sweeper(busy: Callable[[], Iterable[str]], every_seconds: float = SWEEP_EVERY_SECONDS
                  ) -> bool:  # fmt: skip
    """Sweep idle workspaces now and then every ``every_seconds``, in a daemon thread (one
    per process: later calls do nothing and return False). It sweeps the data home of the
    moment it starts.

    Args:
        busy: gives the tokens of the workspaces with a job training or queued, at each sweep.
    """
    global _sweeper
    with _sweeper_lock:
        if _sweeper is not None and _sweeper.is_alive():
            return False

        root = workspaces_dir()

        def loop() -> None:
            while True:
                try:
                    for folder in sweep_idle_workspaces(busy(), root=root):
                        _log.info("removed idle workspace %s", folder.name)
                except Exception:  # a sweep that fails must not end the sweeping
                    _log.exception("sweeping idle workspaces failed")
                time.sleep(every_seconds)

        _sweeper = threading.Thread(target=loop, name="catdog-workspace-sweeper", daemon=True)
        _sweeper.start()
        return True
