"""Training runs on disk: one folder per run under ``<data home>/runs/``.

A run folder holds:

- ``config.json``  — the full :class:`~catdog.train.trainer.TrainConfig` (enough to re-run it), the
  class names and the run id;
- ``status.json``  — state (``running``/``completed``/``stopped``/``failed``, or ``queued``/
  ``cancelled`` for a dashboard job waiting for its turn or cancelled meanwhile), process id,
  heartbeat time, the phase training is in, epochs done, error message;
- ``history.csv``  — one row per finished epoch (loss, accuracy, val_loss, val_accuracy,
  learning rate, seconds);
- ``best.keras`` / ``last.keras`` — the model with the best validation accuracy so far and the
  model after the last finished epoch (with optimizer state, for resuming);
- ``checkpoint.json`` — which epoch ``last.keras`` holds, with that epoch's history row: the
  commit record of :func:`commit_epoch`, so a resume never trains an epoch twice;
- ``train.lock`` — locked (``flock``) by the one process that trains the run (:class:`RunLock`);
- ``metrics.json`` — final metrics (best/final validation accuracy, test accuracy, wall time).

Every file is written atomically (temporary file in the same folder, then ``os.replace``), so
a run killed at any moment never leaves a file that cannot be read. A folder damaged some other
way (edited by hand, a disk error) is listed with state ``damaged`` and the reason, never an
exception. This module does not import TensorFlow; only :func:`load_model` and
:func:`save_model_atomic` do, lazily.
"""

from __future__ import annotations

import contextlib
import csv
import functools
import glob
import io
import json
import os
import secrets
import shutil
import socket
import tempfile
import threading
import time
import types
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING, Any, get_type_hints

from catdog import hosting
from catdog.data.datasets import DatasetError
from catdog.data.paths import (
    DEMO_DATASET_NAME,
    current_workspace,
    datasets_dir,
    demo_dataset_dir,
    in_dataset_roots,
    is_shared,
    run_roots,
    runs_dir,
    weights_dir,
)
from catdog.safe_files import (
    FileProblem,
    check_regular,
    open_lock_file,
    open_regular,
    os_words,
    read_regular,
)
from catdog.train import run_checks
from catdog.train.lock import LOCK_FILE, fcntl, lock_taken

if TYPE_CHECKING:
    from catdog.model.backend import keras
    from catdog.train.config import TrainConfig

CONFIG_FILE = "config.json"
STATUS_FILE = "status.json"
HISTORY_FILE = "history.csv"
METRICS_FILE = "metrics.json"
BEST_MODEL = "best.keras"
LAST_MODEL = "last.keras"
ERROR_LOG = "error.log"  # the full traceback of a failed run (the user is shown one line)
CHECKPOINT_FILE = "checkpoint.json"

# Where a run's lock cannot be checked (no flock, another host), a "running" run whose heartbeat
# is older than this, or whose process is gone, was interrupted.
STALE_AFTER_SECONDS = 300.0
HEARTBEAT_SECONDS = 10.0  # a training run rewrites its status this often, whatever it is doing
DAMAGED = "damaged"  # the state of a run folder whose files cannot be read
RESUMABLE_STATES = ("interrupted", "stopped", "failed", "cancelled")
# A run waiting in the dashboard's training queue: its job holds the run's lock meanwhile.
QUEUED = "queued"


class RunError(ValueError):
    """A run that does not exist or cannot be read."""


class RunDamaged(RunError):
    """A run folder with a file that is not what catdog wrote (the message says which, how)."""


class RunBusy(RunError):
    """Another process, or another thread of this one, is training the run."""


@contextmanager
def _atomic_path(path: Path) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; on success it replaces ``path`` atomically."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.stem}.", suffix=path.suffix, dir=path.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        yield tmp
        with open(tmp, "rb+") as handle:
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def atomic_write_text(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` so readers see either the old or the new file, never half."""
    with _atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")


def atomic_write_json(path: Path, data: Any) -> None:
    """Write ``data`` as indented JSON, atomically."""
    atomic_write_text(path, json.dumps(data, indent=2, sort_keys=True) + "\n")


def atomic_copy(source: Path, path: Path) -> None:
    """Copy the regular file ``source`` to ``path``, atomically (a pipe or a device where
    ``source`` should be raises :class:`~catdog.safe_files.FileProblem`: copying
    ``/dev/zero`` would fill the disk)."""
    with (
        _atomic_path(path) as tmp,
        os.fdopen(open_regular(source, source.name), "rb") as src,
        open(tmp, "wb") as out,
    ):
        shutil.copyfileobj(src, out)


def save_model_atomic(model: keras.Model, path: Path) -> None:
    """Save a Keras model in ``.keras`` format, atomically (Keras needs the suffix)."""
    with _atomic_path(path) as tmp:
        model.save(tmp)


def new_run_id(model_name: str) -> str:
    """A unique, sortable run id such as ``20261128-071502-seed-baseline-3fa2``."""
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    return f"{stamp}-{model_name}-{secrets.token_hex(2)}"


def _installed_version(*distributions: str) -> str | None:
    for name in distributions:
        try:
            return metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return None


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
        catdog.hosting.HostedLimitError: in hosted mode, a setting over its cap, data that
            is not one of the visitor's or the shared datasets, a weights file that is not one
            the visitor uploaded, or a workspace over its quota.
    """
    from catdog.data.datasets import scan_dataset
    from catdog.train.config import TrainingError

    cfg = config.resolved()
    hosting.check_training(cfg)  # every new run passes here: the one place caps are enforced
    hosting.check_quota()
    if hosting.hosted() and not in_dataset_roots(cfg.data):
        hosting.refuse_server_files(f"training on {cfg.data}")
    if hosting.hosted() and cfg.weights and Path(cfg.weights).parent != weights_dir().resolve():
        hosting.refuse_server_files(f"reading the weights file {cfg.weights}",
                                    "upload the weights file instead")  # fmt: skip
    info = scan_dataset(Path(cfg.data))
    if len(info.classes) < 2:
        raise TrainingError(f"{cfg.data} has {len(info.classes)} class folder(s); need at least 2")
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


def read_json(path: Path, default: Any = None) -> Any:
    """Read a JSON file, or return ``default`` if it does not exist (never blocking on a
    pipe planted there, never reading more than a run file holds)."""
    try:
        return json.loads(read_regular(path, _MAX_RUN_FILE_BYTES, path.name).decode("utf-8"))
    except FileNotFoundError:
        return default


def _json_type(value: Any) -> str:
    """How an error names a JSON value's type: object, list, str, int, float, bool, null."""
    if value is None:
        return "null"
    return "object" if isinstance(value, dict) else type(value).__name__


# The most a run's JSON or CSV file holds (a history of 100,000 epochs is ~15 MB).
_MAX_RUN_FILE_BYTES = 64 * 1024**2


def read_object(path: Path) -> dict[str, Any] | None:
    """Read a JSON object file of a run folder, or ``None`` if the file does not exist.

    Raises:
        RunDamaged: the file cannot be read, is not UTF-8, not JSON (e.g. cut short), or holds
            something other than an object; the message names the file and the problem.
    """
    try:
        raw = read_regular(path, _MAX_RUN_FILE_BYTES, path.name)  # never blocks on a pipe
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise RunDamaged(f"{path.name} cannot be read ({os_words(exc)})") from exc
    try:
        data = json.loads(raw.decode("utf-8"))
    except UnicodeDecodeError as exc:
        raise RunDamaged(f"{path.name} is not valid UTF-8 text") from exc
    except json.JSONDecodeError as exc:
        raise RunDamaged(f"{path.name} is not valid JSON ({exc.msg}, line {exc.lineno})") from exc
    if not isinstance(data, dict):
        raise RunDamaged(f"{path.name} must hold a JSON object, got {_json_type(data)}")
    return data


HISTORY_COLUMNS = (
    "epoch",
    "loss",
    "accuracy",
    "val_loss",
    "val_accuracy",
    "learning_rate",
    "seconds",  # wall time of the epoch, validation included
    "train_seconds",  # the training part alone (for images per second)
    "steps",  # batches trained in the epoch
    "images",  # training images seen in the epoch
    "phase",  # pretrained models: 1 = feature extraction (frozen base), 2 = fine-tuning
    "cached_features",  # 1: the head trained on features the frozen base computed once
)
_INT_COLUMNS = ("epoch", "steps", "images", "phase", "cached_features")


def write_history(run_path: Path, rows: list[dict[str, Any]]) -> None:
    """Write the per-epoch history CSV atomically (epochs numbered from 1)."""
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=HISTORY_COLUMNS, extrasaction="ignore")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: row.get(k, "") for k in HISTORY_COLUMNS})
    atomic_write_text(run_path / HISTORY_FILE, buffer.getvalue())


def read_history(run_path: Path) -> list[dict[str, float]]:
    """Read the history CSV as a list of rows with float values (empty if none yet).

    Raises:
        RunDamaged: the file cannot be read or has a value that is not a number.
    """
    path = run_path / HISTORY_FILE
    try:
        text = read_regular(path, _MAX_RUN_FILE_BYTES, HISTORY_FILE).decode("utf-8")
    except FileNotFoundError:
        return []
    except OSError as exc:
        raise RunDamaged(f"{HISTORY_FILE} cannot be read ({os_words(exc)})") from exc
    except UnicodeDecodeError as exc:
        raise RunDamaged(f"{HISTORY_FILE} is not valid UTF-8 text") from exc
    rows, line = [], 1
    try:
        for line, raw in enumerate(csv.DictReader(io.StringIO(text)), start=2):
            row: dict[str, float] = {}
            for key, value in raw.items():
                if key is None or value is None:
                    raise RunDamaged(f"{HISTORY_FILE} line {line} has the wrong number of cells")
                if value != "":
                    row[key] = int(value) if key in _INT_COLUMNS else float(value)
            run_checks.check_history_row(row, line)
            rows.append(row)
    except (ValueError, csv.Error) as exc:
        if isinstance(exc, run_checks.RangeError):
            raise RunDamaged(str(exc)) from exc
        if isinstance(exc, RunDamaged):
            raise
        raise RunDamaged(f"{HISTORY_FILE} line {line}: {exc}") from exc
    return rows


def write_status(run_path: Path, state: str, **extra: Any) -> dict[str, Any]:
    """Record the run's state with this process' id and a heartbeat time."""
    try:
        status = read_object(run_path / STATUS_FILE) or {}
    except RunDamaged:
        status = {}  # rewriting it is the repair
    status.update(extra)
    status.update(state=state, pid=os.getpid(), host=socket.gethostname(), heartbeat=time.time())
    atomic_write_json(run_path / STATUS_FILE, status)
    return status


# ---------------------------------------------------------------- one writer per run folder


class RunLock:
    """The claim of the one process (and thread) that trains a run: an exclusive, non-blocking
    ``fcntl.flock`` on ``train.lock`` in the run folder.

    The kernel drops the lock when its holder exits in any way, SIGKILL included, so a killed
    trainer never leaves a stale lock, and :func:`effective_state` tells a running run from an
    interrupted one by trying the lock rather than trusting the heartbeat's age. Each
    :meth:`acquire` opens the file anew, so a second thread of the same process is refused
    like another process. Where ``flock`` is not available (no ``fcntl``, a file system
    without locks) the lock holds nothing (:attr:`exclusive` is False) and callers fall back
    to the status file's pid and heartbeat.
    """

    def __init__(self, run_path: Path, fd: int | None) -> None:
        self.run_path, self._fd = run_path, fd

    @property
    def exclusive(self) -> bool:
        """True while this object holds a real flock on the run."""
        return self._fd is not None

    @classmethod
    def acquire(cls, run_path: Path, wait: float = 0.5) -> RunLock:
        """Take the run's lock, or say who has it.

        Args:
            run_path: the run folder.
            wait: keep trying this many seconds (a listing looks at the lock for an instant).

        Raises:
            RunBusy: another process or thread holds it ("run X is being trained by process
                N; stop it first").
            RunError: the lock file cannot be created (e.g. a read-only folder).
        """
        if fcntl is None:
            return cls(run_path, None)
        try:  # never through a link planted there, never blocking on a pipe
            fd = open_lock_file(run_path / LOCK_FILE)
        except FileProblem as exc:
            raise RunError(f"cannot lock run {run_path.name} for training: {exc}") from exc
        except OSError as exc:
            raise RunError(
                f"cannot lock run {run_path.name} for training ({os_words(exc)}); "
                "is its folder writable?"
            ) from exc
        deadline = time.monotonic() + wait
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    os.close(fd)
                    raise RunBusy(
                        f"run {run_path.name} is being trained by {_lock_holder(run_path)}; "
                        "stop it first"
                    ) from None
                time.sleep(0.02)
            except OSError:  # a file system without flock
                os.close(fd)
                return cls(run_path, None)
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()} {socket.gethostname()}\n".encode())
        return cls(run_path, fd)

    def release(self) -> None:
        """Give the run up (idempotent)."""
        fd, self._fd = self._fd, None
        if fd is not None:
            os.close(fd)  # closing the descriptor drops the flock

    def __enter__(self) -> RunLock:
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


def _lock_holder(run_path: Path) -> str:
    """Who holds a run's lock, from what the holder wrote into it: ``"process 1234"``."""
    try:
        held = read_regular(run_path / LOCK_FILE, 4096).decode("utf-8")
        pid, host = held.split()[:2]
        int(pid)
    except (OSError, ValueError):
        return "another process"
    where = "" if host == socket.gethostname() else f" on {host}"
    this = " (this one)" if int(pid) == os.getpid() and not where else ""
    return f"process {pid}{where}{this}"


class Heartbeat:
    """Keeps a training run's ``status.json`` fresh from a daemon thread for as long as it
    trains: loading images, timing the precision, epochs, validation and test evaluation alike,
    every :data:`HEARTBEAT_SECONDS`. :meth:`beat` also writes at once, e.g. on a phase change.

    Start it with :meth:`start` and always :meth:`stop` it (in a ``finally``) before writing
    the run's final state, which it would otherwise overwrite with ``running``.

    Args:
        run_path: the run folder.
        epochs_done: how many epochs the run has finished (called at every beat).
    """

    def __init__(self, run_path: Path, epochs_done: Callable[[], int]) -> None:
        self.run_path, self.epochs_done = run_path, epochs_done
        self.phase = "starting"
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(
            target=self._loop, name=f"catdog-heartbeat-{run_path.name}", daemon=True
        )

    def start(self) -> Heartbeat:
        """Beat now, then every :data:`HEARTBEAT_SECONDS` (returns self)."""
        self.beat()
        self._thread.start()
        return self

    def beat(self, phase: str | None = None) -> None:
        """Write ``running`` with the time, the epochs done and the phase (``phase`` if given)."""
        with self._lock:
            self.phase = phase or self.phase
            with contextlib.suppress(OSError):  # a full disk for a moment: the next beat retries
                write_status(
                    self.run_path, "running", epochs_done=self.epochs_done(), phase=self.phase
                )

    def _loop(self) -> None:
        while not self._stop.wait(HEARTBEAT_SECONDS):
            self.beat()

    def stop(self) -> None:
        """Stop beating and wait for the thread (idempotent)."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join()


def _process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def effective_state(status: dict[str, Any], run_path: Path | None = None) -> str:
    """The run's state, with a ``running`` run whose trainer is gone reported as ``interrupted``.

    With ``run_path`` on the host that wrote the status, the run's :class:`RunLock` decides:
    held means running, free means its trainer exited (even a second ago). Otherwise (no
    ``run_path``, no lock file, no flock, another host) a dead process or a heartbeat older than
    :data:`STALE_AFTER_SECONDS` means interrupted.
    """
    state = status.get("state", "unknown")
    if state not in ("running", QUEUED):  # a queued run's job holds its lock too
        return state
    same_host = status.get("host") == socket.gethostname()
    if same_host and run_path is not None:
        taken = lock_taken(run_path)
        if taken is not None:
            return state if taken else "interrupted"
    if same_host and not _process_alive(int(status.get("pid", -1))):
        return "interrupted"
    if time.time() - float(status.get("heartbeat", 0)) > STALE_AFTER_SECONDS:
        return "interrupted"
    return state


# ---------------------------------------------------------------- last.keras + history, together


def staged_model(run_path: Path, epoch: int) -> Path:
    """Where :func:`commit_epoch` saves epoch ``epoch``'s model before it becomes ``last.keras``."""
    return run_path / f"last.epoch-{epoch}.keras"


def commit_steps(
    run_path: Path,
    model: keras.Model,
    row: dict[str, Any],
    history: list[dict[str, Any]],
    best: bool,
) -> list[tuple[str, Callable[[], None]]]:
    """The steps of :func:`commit_epoch`, in order, as ``(name, step)`` pairs.

    1. ``save``: the model is saved, atomically, to ``last.epoch-N.keras``; nothing refers to
       it yet, so a kill before step 2 means epoch N never happened (last.keras, best.keras and
       history.csv are epoch N-1's; :func:`recover_epochs` deletes the staged file).
    2. ``commit``: ``checkpoint.json`` is replaced by ``{"epoch": N, "row": …, "best": …}``.
       This one atomic rename is the commit: from now on epoch N happened.
    3. ``last``: ``last.epoch-N.keras`` is renamed to ``last.keras``.
    4. ``best``: if N is the best epoch so far, ``last.keras`` is copied to ``best.keras``.
    5. ``history``: the row is appended to ``history`` and ``history.csv``.

    A kill after step 2 leaves steps 3–5 to :func:`recover_epochs`, which redoes them from
    ``checkpoint.json`` (each is idempotent). So whatever moment a kill hits, a resume finds
    ``last.keras`` holding exactly the epochs the history lists, and never trains one twice.
    """
    epoch = int(row["epoch"])
    checkpoint = {"epoch": epoch, "row": row, "best": bool(best)}

    def append() -> None:
        history.append(row)
        write_history(run_path, history)

    return [
        ("save", lambda: save_model_atomic(model, staged_model(run_path, epoch))),
        ("commit", lambda: atomic_write_json(run_path / CHECKPOINT_FILE, checkpoint)),
        ("last", lambda: os.replace(staged_model(run_path, epoch), run_path / LAST_MODEL)),
        ("best", lambda: best and atomic_copy(run_path / LAST_MODEL, run_path / BEST_MODEL)),
        ("history", append),
    ]


def commit_epoch(
    run_path: Path, model: keras.Model, row: dict[str, Any], history: list[dict[str, Any]],
    best: bool,
) -> None:  # fmt: skip
    """Record a finished epoch so a kill at any moment leaves a consistent run folder: its
    model as ``last.keras`` (and ``best.keras`` if ``best``) and ``row`` in ``history``
    (appended) and ``history.csv``. :func:`commit_steps` explains how."""
    for _name, step in commit_steps(run_path, model, row, history, best):
        step()


def read_checkpoint(run_path: Path) -> dict[str, Any] | None:
    """The run's ``checkpoint.json`` (``None`` for runs from before it existed).

    Raises:
        RunDamaged: the file is not a checkpoint catdog wrote.
    """
    checkpoint = read_object(run_path / CHECKPOINT_FILE)
    if checkpoint is None:
        return None
    epoch, row = checkpoint.get("epoch"), checkpoint.get("row")
    if type(epoch) is not int or epoch < 1:
        raise RunDamaged(f"{CHECKPOINT_FILE}: 'epoch' must be an int ≥ 1, got {epoch!r}")
    try:
        run_checks.check_checkpoint_epoch(epoch)
    except run_checks.RangeError as exc:
        raise RunDamaged(str(exc)) from exc
    if not isinstance(row, dict) or row.get("epoch") != epoch:
        raise RunDamaged(f"{CHECKPOINT_FILE}: 'row' must be the history row of epoch {epoch}")
    return checkpoint


def committed_history(run_path: Path) -> list[dict[str, float]]:
    """The run's history as far as it is committed: the rows of ``history.csv`` before the
    epoch in ``checkpoint.json``, then that epoch's row (which ``history.csv`` may not have
    yet). Reads only; :func:`recover_epochs` also writes it back.

    Raises:
        RunDamaged: a file cannot be read, or the history lacks epochs before the checkpoint.
    """
    history = read_history(run_path)
    checkpoint = read_checkpoint(run_path)
    if checkpoint is None:  # a run from before checkpoints: its history came after its model
        return history
    epoch = checkpoint["epoch"]
    rows = [row for row in history if row.get("epoch", 0) < epoch] + [checkpoint["row"]]
    if [row.get("epoch") for row in rows] != list(range(1, epoch + 1)):
        raise RunDamaged(f"{HISTORY_FILE} lacks epochs before epoch {epoch} of {CHECKPOINT_FILE}")
    return rows


def recover_epochs(run_path: Path) -> list[dict[str, float]]:
    """Finish or undo the epoch commit a kill interrupted (see :func:`commit_steps`) and return
    the run's history; ``last.keras`` then holds exactly its epochs. Only the holder of the
    run's :class:`RunLock` may call it.

    Raises:
        RunDamaged: a file cannot be read, or the history lacks committed epochs.
    """
    history = committed_history(run_path)
    checkpoint = read_checkpoint(run_path)
    committed = staged_model(run_path, checkpoint["epoch"]) if checkpoint else None
    if committed is not None and committed.exists():
        os.replace(committed, run_path / LAST_MODEL)  # step 3
    for leftover in [*run_path.glob("last.epoch-*.keras"), *_temporary_files(run_path)]:
        leftover.unlink(missing_ok=True)  # an uncommitted epoch, a write a kill cut short
    if checkpoint is not None:
        if checkpoint.get("best") and (run_path / LAST_MODEL).exists():
            atomic_copy(run_path / LAST_MODEL, run_path / BEST_MODEL)  # step 4
        if history != read_history(run_path):
            write_history(run_path, history)  # step 5
    return history


def truncate_epochs(run_path: Path, epochs: int) -> list[dict[str, float]]:
    """Forget the run's epochs after its first ``epochs`` (a cluster redoes them from its
    backup) and return its history, of at most ``epochs`` rows. Only the holder of the run's
    :class:`RunLock` may call it.

    Raises:
        RunDamaged: a file cannot be read, or the history lacks committed epochs.
    """
    history = recover_epochs(run_path)
    if len(history) <= epochs:
        return history
    history = history[:epochs]
    if history:  # the commit record names the last epoch kept (best.keras stays as it is)
        checkpoint = {"epoch": epochs, "row": history[-1], "best": False}
        atomic_write_json(run_path / CHECKPOINT_FILE, checkpoint)
    else:
        (run_path / CHECKPOINT_FILE).unlink(missing_ok=True)
    write_history(run_path, history)
    return history


def _temporary_files(run_path: Path) -> list[Path]:
    """The temporary files of atomic writes (``.<stem>.<random><suffix>``) in a run folder."""
    names = (CONFIG_FILE, STATUS_FILE, HISTORY_FILE, METRICS_FILE, BEST_MODEL, LAST_MODEL,
             CHECKPOINT_FILE, ERROR_LOG, "last.epoch-*.keras")  # fmt: skip
    found: list[Path] = []
    for name in names:
        stem, suffix = name.rsplit(".", 1)
        found += run_path.glob(f".{stem}.*.{suffix}")
    return found


# ---------------------------------------------------------------- listing runs


def _type_ok(value: Any, kind: Any) -> bool:
    """Whether a JSON value fits a TrainConfig field type (JSON has no int/float split)."""
    if isinstance(kind, types.UnionType):
        return any(_type_ok(value, k) for k in kind.__args__)
    if kind is type(None):
        return value is None
    if kind is bool:
        return isinstance(value, bool)
    if kind is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if kind is float:
        return isinstance(value, int | float) and not isinstance(value, bool)
    if kind is str:
        return isinstance(value, str)
    return isinstance(value, dict)  # a nested settings object (augmentation)


@functools.cache
def _train_types() -> dict[str, Any]:
    from catdog.train.config import TrainConfig

    return {**get_type_hints(TrainConfig), "mixed_precision": bool | None}


def _type_names(kind: Any) -> str:
    """``int | None`` → ``"an int or null"``, as an error message says it."""
    names = {bool: "a bool", int: "an int", float: "a number", str: "a str", type(None): "null"}
    return " or ".join(names.get(k, "an object") for k in getattr(kind, "__args__", (kind,)))


def _check(ok: bool, name: str, what: str, value: Any) -> None:
    if not ok:
        raise RunDamaged(f"{name} must be {what}, got {_json_type(value)}")


def _check_config(config: dict[str, Any]) -> None:
    """Raise :class:`RunDamaged` for a ``config.json`` whose values have the wrong types."""
    train = config.get("train")
    _check(isinstance(train, dict), "config.json: 'train'", "an object", train)
    classes = config.get("classes")
    _check(
        isinstance(classes, list) and all(isinstance(c, str) for c in classes),
        "config.json: 'classes'", "a list of class names", classes,
    )  # fmt: skip
    for key in ("created", "run_id"):
        value = config.get(key, "")
        _check(isinstance(value, str), f"config.json: {key!r}", "a str", value)
    for key in ("model", "data"):
        value = train.get(key)
        _check(isinstance(value, str), f"config.json: 'train.{key}'", "a str", value)
    for key, value in train.items():
        kind = _train_types().get(key)
        if kind is not None:
            _check(_type_ok(value, kind), f"config.json: 'train.{key}'", _type_names(kind), value)


# Fields of status.json and metrics.json a listing reads, with the types they must have.
_STATUS_TYPES = {"state": str, "pid": int, "host": str, "heartbeat": float,
                 "epochs_done": int, "error": str | None, "phase": str | None}  # fmt: skip
_METRICS_TYPES = {"test_accuracy": float | None, "train_seconds": float}


def _check_fields(data: dict[str, Any], name: str, kinds: dict[str, Any]) -> None:
    for key, kind in kinds.items():
        if key in data:
            _check(_type_ok(data[key], kind), f"{name}: {key!r}", _type_names(kind), data[key])


def read_run_files(run_path: Path) -> tuple[dict, dict, dict, list[dict[str, float]]]:
    """A run folder's config, status, metrics and committed history, each checked.

    Raises:
        RunError: the folder has no ``config.json`` (it is not a run).
        RunDamaged: a file cannot be read or holds values of the wrong types.
    """
    config = read_object(run_path / CONFIG_FILE)
    if config is None:
        raise RunError(f"{run_path} is not a run: it has no {CONFIG_FILE}")
    _check_config(config)
    status = read_object(run_path / STATUS_FILE) or {}
    _check_fields(status, STATUS_FILE, _STATUS_TYPES)
    metrics = read_object(run_path / METRICS_FILE) or {}
    _check_fields(metrics, METRICS_FILE, _METRICS_TYPES)
    try:  # values of the right types, but no run has them (image size 12000, NaN, -1…)
        run_checks.check_train_settings(config["train"])
        run_checks.check_classes(config["classes"])
        run_checks.check_status(status)
        run_checks.check_metrics(metrics)
    except run_checks.RangeError as exc:
        raise RunDamaged(str(exc)) from exc
    return config, status, metrics, committed_history(run_path)


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
    if not hosting.hosted():
        return None
    from catdog.train.config import TrainConfig

    try:
        hosting.check_training(TrainConfig.from_dict(info.config["train"]))
    except ValueError as exc:  # HostedLimitError, or settings this version does not know
        return f"run {info.id} cannot train here: {exc}"
    return None


def delete_run(run: str | Path) -> Path:
    """Delete one of the caller's runs (its whole folder); returns the folder deleted.

    Never a shared example (hosted mode), nor a run that is training or queued: its trainer
    holds the run's :class:`RunLock`, and the lock is held here while the folder goes, so
    nothing can start training it meanwhile.

    Raises:
        RunError: no such run (in the caller's workspace), a shared example, or a run being
            trained or waiting in the queue (the message says to stop or cancel it first).
    """
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
        if not lock.exclusive and effective_state(_read_status_quietly(path) or {}) in (
            "running",
            "queued",
        ):  # no flock here: the status file is all there is to go by
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


def load_model(run: str | Path, which: str = "best") -> keras.Model:
    """Load a run's ``best`` or ``last`` model.

    Falls back to the other file when the requested one does not exist yet (e.g. a run stopped
    before its first validation).

    Raises:
        RunError: the run has no saved model at all, or its file cannot be loaded safely (it
            would run Python code, e.g. a Lambda layer, or it is not a Keras model).
    """
    from catdog.model.saving import UnsafeModelError, load_keras_model

    path = resolve_run(run)
    found = model_file(path, which)
    if found is None:
        raise RunError(f"run {path.name} has no saved model yet (no {BEST_MODEL} or {LAST_MODEL})")
    try:
        return load_keras_model(found)
    except ValueError as exc:
        if isinstance(exc, UnsafeModelError):
            raise RunError(
                f"{found} contains Python code (e.g. a Lambda layer) and catdog never runs code "
                "from a model file; use models trained by catdog, or retrain this one"
            ) from exc
        raise RunError(str(exc)) from exc  # one sentence naming the file (ModelFileError)


def model_file(run_path: Path, which: str = "best") -> Path | None:
    """The file :func:`load_model` would load: ``which`` model, else the other, else ``None``."""
    if which not in ("best", "last"):
        raise ValueError(f"which model: 'best' or 'last', got {which!r}")
    order = [BEST_MODEL, LAST_MODEL] if which == "best" else [LAST_MODEL, BEST_MODEL]
    return next((run_path / n for n in order if (run_path / n).exists()), None)


def delete_dataset(root: str | Path) -> Path:
    """Delete one of the caller's datasets (its whole folder); returns the folder deleted.

    Never the built-in demo, a shared example (hosted mode), a folder outside the caller's
    datasets folder, or a dataset a run is training on (or waiting in the queue to).

    Raises:
        DatasetError: any of those; the message says which and what to do.
    """
    root = Path(root).expanduser()
    if root.resolve() == demo_dataset_dir().resolve():
        raise DatasetError(f"{DEMO_DATASET_NAME!r} is the built-in demo dataset; it stays")
    if is_shared(root):
        raise DatasetError(f"{root.name!r} is a shared example; only your own datasets can go")
    if root.resolve().parent != datasets_dir().resolve() or not root.is_dir():
        raise DatasetError(f"no dataset {root.name!r} among your datasets; nothing was deleted")
    for run in list_runs():
        if run.state in ("running", "queued") and Path(run.data).resolve() == root.resolve():
            verb = "stop" if run.state == "running" else "cancel"
            raise DatasetError(
                f"dataset {root.name!r} is what run {run.id} trains on ({run.state}); "
                f"{verb} it first, then delete the dataset"
            )
    shutil.rmtree(root)
    return root
