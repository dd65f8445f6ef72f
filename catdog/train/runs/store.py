"""The run store: making a run folder, finding one by id, listing, summarising, deleting."""

from __future__ import annotations

import glob
import os
import re
import secrets
import shutil
from dataclasses import dataclass, field
from datetime import datetime
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING, Any

from catdog.data.paths import (
    current_workspace,
    in_dataset_roots,
    is_shared,
    run_roots,
    runs_dir,
    weights_dir,
)
from catdog.policy import current_policy
from catdog.safe_files import FileProblem, check_regular, os_words
from catdog.train.runs.checks import read_run_files
from catdog.train.runs.commit import staged_model
from catdog.train.runs.files import (
    BEST_MODEL,
    CONFIG_FILE,
    LAST_MODEL,
    STATUS_FILE,
    RunBusy,
    RunDamaged,
    RunError,
    atomic_write_json,
    read_object,
    write_status,
)
from catdog.train.runs.lock import DAMAGED, QUEUED, RESUMABLE_STATES, RunLock, effective_state

if TYPE_CHECKING:
    from catdog.train.config import TrainConfig


def new_run_id(model_name: str) -> str:
    """A unique, sortable run id such as ``20261128-071502-seed-baseline-3fa2c41d9e07b5a8``
    (64 random bits: on a shared server an id is not guessed)."""
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    return f"{stamp}-{model_name}-{secrets.token_hex(8)}"


def _installed_version(*distributions: str) -> str | None:
    for name in distributions:
        try:
            return metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return None


def check_run_id(run_id: str) -> None:
    """Refuse a run id that is not a plain folder name.

    Raises:
        RunError: the id is not 1-100 letters, digits, '.', '_' and '-' (not starting with
            '.', '_' or '-').
    """
    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]{0,99}", run_id):
        raise RunError(
            f"a run id must be a name of letters, digits, '.', '_' and '-', got {run_id!r}"
        )


def create_run(config: TrainConfig, run_id: str | None = None, *, root: Path | None = None) -> Path:
    """Validate ``config`` and make its run folder (``config.json``, state ``running``).

    Cheap and without TensorFlow, so a caller can show the run (and a refresh can find it)
    the moment training is asked for; :func:`catdog.train.trainer.train_created` then trains it.

    Args:
        config: what to train; ``None`` fields take the model's defaults.
        run_id: use this id instead of a fresh one (the folder must not exist yet).
        root: make the folder here instead of the runs folder (a cluster's other workers
            train in a temporary one).

    Raises:
        TrainingError: a setting cannot work, or the dataset has fewer than 2 classes.
        DatasetError: ``config.data`` is not a dataset.
        catdog.policy.HostedLimitError: in hosted mode, a read-only visitor, a setting over
            its cap, data that is not one of the visitor's or the shared datasets, a weights
            file that is not one the visitor uploaded, or a workspace with less room left
            than a run needs.
    """
    from catdog.data.datasets import DatasetError, check_trainable, scan_dataset
    from catdog.train.config import TrainingError

    cfg = config.resolved()
    policy = current_policy()  # every new run passes here: the one place caps are enforced
    policy.check_writable(f"training {cfg.model}")
    policy.check_training(cfg)
    policy.check_new_run()
    if not in_dataset_roots(cfg.data):
        policy.refuse_server_files(f"training on {cfg.data}")
    if cfg.weights and Path(cfg.weights).parent != weights_dir().resolve():
        policy.refuse_server_files(f"reading the weights file {cfg.weights}",
                                   "upload the weights file instead")  # fmt: skip
    try:  # hosted mode: the messages name no server folder
        info = scan_dataset(Path(cfg.data))
        if len(info.classes) < 2:
            raise TrainingError(
                f"{cfg.data} has {len(info.classes)} class folder(s); need at least 2"
            )
        check_trainable(info, test=cfg.test)
    except (DatasetError, TrainingError) as exc:
        raise type(exc)(policy.shown(str(exc))) from None
    if run_id is not None:
        check_run_id(run_id)
    run_id = run_id or new_run_id(cfg.model)
    path = (root or runs_dir()) / run_id
    path.mkdir(parents=True, exist_ok=False)
    atomic_write_json(
        path / CONFIG_FILE,
        {
            "run_id": run_id,
            "created": datetime.now().isoformat(timespec="seconds"),
            "classes": list(info.classes),
            "train": cfg.to_dict(),
            "versions": {
                "tensorflow": _installed_version("tensorflow", "tensorflow-cpu"),
                "keras": _installed_version("keras"),
            },
        },
    )
    write_status(path, "running", epochs_done=0)
    return path


def update_config(run_path: Path, **changes: Any) -> dict[str, Any]:
    """Replace top-level entries of a run's ``config.json`` (atomically); returns the result.

    Training records here what it settled once it started (e.g. the precision ``auto`` chose).
    """
    config = read_object(run_path / CONFIG_FILE) or {}
    config.update(changes)
    atomic_write_json(run_path / CONFIG_FILE, config)
    return config


def resolve_run(run: str | Path) -> Path:
    """Return the folder of a run given its id, a unique id prefix, or a path.

    In a workspace (hosted mode) only the workspace's own runs and the shared examples are
    found: a path elsewhere, or another workspace's run id, is "no run".

    Raises:
        RunError: nothing matches, or a prefix matches several runs.
    """
    roots = run_roots()
    candidate = Path(run)
    if candidate.is_dir() and (candidate / CONFIG_FILE).exists():
        visible = {root.resolve() for root in roots}
        if current_workspace() is None or candidate.resolve().parent in visible:
            return candidate
    name = str(run)
    plain = name not in ("", ".", "..") and Path(name).name == name and "\\" not in name
    matches: list[Path] = []
    if plain:  # an id never reaches outside the runs folders ("../x", "a/b")
        for root in roots:
            if (root / name / CONFIG_FILE).exists():
                return root / name
        for root in roots:
            found = root.glob(f"{glob.escape(name)}*")  # a prefix, matched literally
            matches += sorted(p for p in found if (p / CONFIG_FILE).exists())
    if len(matches) == 1:
        return matches[0]
    if not matches:
        where = "your workspace or the shared examples" if current_workspace() else roots[0]
        raise RunError(f"no run {name!r} in {where} (see `python -m catdog runs`)")
    names = ", ".join(p.name for p in matches[:5])
    raise RunError(f"{name!r} matches {len(matches)} runs ({names}…); give more of the id")


@dataclass
class RunInfo:
    """What a runs listing shows about one run (``state`` ``damaged``: ``error`` says why)."""

    id: str
    path: Path
    model: str
    data: str
    state: str
    epochs_done: int
    epochs: int
    best_val_accuracy: float | None
    test_accuracy: float | None
    created: str
    classes: list[str] = field(default_factory=list)
    config: dict[str, Any] = field(default_factory=dict)
    error: str | None = None
    example: bool = False  # a shared example seen from a workspace: read-only

    @property
    def damaged(self) -> bool:
        """True if the folder cannot be used (``error`` says why)."""
        return self.state == DAMAGED


def _damaged(run_path: Path, reason: str) -> RunInfo:
    return RunInfo(
        id=run_path.name, path=run_path, model="?", data="?", state=DAMAGED, epochs_done=0,
        epochs=0, best_val_accuracy=None, test_accuracy=None, created="", error=reason,
        example=is_shared(run_path),
    )  # fmt: skip


def run_info(run_path: Path) -> RunInfo:
    """Summarise one run folder (reads only small JSON/CSV files).

    A folder whose files cannot be read, or hold values of the wrong types, is summarised as
    state ``damaged`` with the reason in ``error`` (e.g. "config.json: 'train' must be an
    object, got int"), never an exception.

    Raises:
        RunError: the folder has no ``config.json`` (it is not a run).
    """
    try:
        config, status, metrics, history = read_run_files(run_path)
    except RunDamaged as exc:
        return _damaged(run_path, str(exc))
    val = [row["val_accuracy"] for row in history if "val_accuracy" in row]
    train_cfg = config["train"]
    state = effective_state(status, run_path)
    epochs = int(train_cfg.get("epochs") or 0)
    if state == "completed" and train_cfg.get("time_limit_minutes"):
        epochs = len(history)  # it trained all the epochs its time limit had room for
    return RunInfo(
        id=run_path.name,
        path=run_path,
        model=train_cfg["model"],
        data=train_cfg["data"],
        state=state,
        epochs_done=len(history),
        epochs=epochs,
        best_val_accuracy=max(val) if val else None,
        test_accuracy=metrics.get("test_accuracy"),
        created=config.get("created", ""),
        classes=list(config["classes"]),
        config=config,
        error=status.get("error"),
        example=is_shared(run_path),
    )


def usable_run_info(run_path: Path) -> RunInfo:
    """:func:`run_info`, for using the run: a damaged one is an error saying why.

    Raises:
        RunError: not a run, or a damaged one.
    """
    info = run_info(run_path)
    if info.damaged:
        raise RunDamaged(f"run {info.id} is damaged: {info.error}")
    return info


def list_runs() -> list[RunInfo]:
    """All runs under the data home, newest first; damaged ones with state ``damaged``.

    In a workspace: its own runs and the shared examples (``example`` True), newest first.
    Folders without a ``config.json`` are not runs and are left out. Never raises for what a
    run folder holds: any failure to read one lists it as damaged, with the reason.
    """
    infos = []
    for path in (p for root in run_roots() for p in root.iterdir()):
        if path.is_dir() and (path / CONFIG_FILE).exists():
            try:
                infos.append(run_info(path))
            except RunError:
                continue  # it vanished (or lost its config.json) while we looked
            except Exception as exc:  # a case the checks above miss must not break a listing
                infos.append(_damaged(path, f"cannot be read: {type(exc).__name__}: {exc}"))
    return sorted(infos, key=lambda info: info.id, reverse=True)


def resume_problem(info: RunInfo, *, holding_lock: bool = False) -> str | None:
    """Why the run cannot be resumed (one line), or ``None`` if it can.

    Args:
        info: the run.
        holding_lock: the caller holds the run's :class:`RunLock` (so a ``running`` status
            is one a dead trainer left).
    """
    if info.damaged:
        return f"run {info.id} is damaged: {info.error}"
    if info.example:
        return f"run {info.id} is a shared example: it cannot be trained here; train a new run"
    if (over_cap := _hosted_cap_problem(info)) is not None:
        return over_cap
    if info.state == "running" and not holding_lock:
        return f"run {info.id} is still running; stop it first"
    if info.state == QUEUED:
        return f"run {info.id} is waiting in the training queue; cancel it first"
    if info.state == "completed" and info.epochs_done >= info.epochs:
        return f"run {info.id} already finished all {info.epochs} epochs"
    models = (info.path / LAST_MODEL, staged_model(info.path, info.epochs_done))
    if info.epochs_done and not any(model.exists() for model in models):
        return f"run {info.id} has lost its {LAST_MODEL}; it cannot resume"
    for model in (m for m in (*models, info.path / BEST_MODEL) if os.path.lexists(m)):
        try:  # a pipe, a folder, a link to a device where a model goes: said before any copy
            check_regular(model, model.name)
        except FileProblem as exc:
            return f"run {info.id} cannot resume: {exc}"
        except OSError as exc:
            return f"run {info.id} cannot resume: {model.name}: {os_words(exc)}"
    return None


def _hosted_cap_problem(info: RunInfo) -> str | None:
    """In hosted mode, why the run's settings may not train here (a cap), else ``None``."""
    policy = current_policy()
    if not policy.hosted:
        return None
    from catdog.train.config import TrainConfig

    try:
        policy.check_training(TrainConfig.from_dict(info.config["train"]))
    except ValueError as exc:  # HostedLimitError, or settings this version does not know
        return f"run {info.id} cannot train here: {exc}"
    return None


def delete_run(run: str | Path) -> Path:
    """Delete one of the caller's runs (its whole folder); returns the folder deleted.

    Never a shared example (hosted mode), nor a run that is training (its trainer holds the
    run's :class:`RunLock`) or queued (its status says so while its process lives); the lock
    is held here while the folder goes, so nothing can start training it meanwhile.

    Raises:
        RunError: no such run (in the caller's workspace), a shared example, or a run being
            trained or waiting in the queue (the message says to stop or cancel it first).
    """
    current_policy().check_writable(f"deleting run {run}")
    path = resolve_run(run)
    if is_shared(path):
        raise RunError(f"run {path.name} is a shared example; only your own runs can be deleted")
    try:
        lock = RunLock.acquire(path, wait=0)
    except RunBusy:
        state = (_read_status_quietly(path) or {}).get("state")
        what = "is waiting in the training queue; cancel it" if state == "queued" else (
            "is training; stop it")  # fmt: skip
        raise RunError(f"run {path.name} {what} first, then delete it") from None
    with lock:
        state = effective_state(_read_status_quietly(path) or {})
        if state == QUEUED:  # a queued job holds no lock while it waits
            raise RunError(
                f"run {path.name} is waiting in the training queue; cancel it first, then delete it"
            )
        if not lock.exclusive and state == "running":  # no flock: the status file tells
            raise RunError(f"run {path.name} is training; stop it first, then delete it")
        shutil.rmtree(path)
    return path


def _read_status_quietly(path: Path) -> dict[str, Any] | None:
    try:
        return read_object(path / STATUS_FILE)
    except RunDamaged:
        return None


def can_resume(info: RunInfo) -> bool:
    """Whether a Resume button belongs to the run: interrupted, stopped or failed, resumable."""
    return info.state in RESUMABLE_STATES and resume_problem(info) is None


def runs_training_on(dataset: Path) -> list[tuple[str, str]]:
    """The ``(run id, state)`` of each run training on ``dataset`` now or queued to."""
    folder = dataset.resolve()
    return [
        (run.id, run.state)
        for run in list_runs()
        if run.state in ("running", QUEUED) and Path(run.data).resolve() == folder
    ]
