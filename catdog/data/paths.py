"""Where catdog keeps what users make: imported datasets and training runs.

One folder, the *data home*, holds everything: ``$CATDOG_HOME`` if set, else ``~/.catdog``.
Inside it, ``datasets/<name>/`` are datasets (``train``/``validation``/``test`` folders of
class folders), ``runs/<run id>/`` are training runs and ``weights/`` holds the weights files of
pretrained bases uploaded in the dashboard.

Workspaces (hosted mode): each visitor of a hosted demo has a private workspace, named by a
random token, with datasets, runs and uploaded weights of its own in
``workspaces/<token>/{datasets,runs,weights}/``.
The *current* workspace is a :class:`contextvars.ContextVar`, so each thread (a Streamlit
session's script thread, a training job's worker) has its own: the dashboard sets it at the
top of every script run, a job sets it in its worker thread. While one is set,
:func:`datasets_dir` and :func:`runs_dir` are the workspace's, and the data home's own
``datasets/`` and ``runs/`` are the *shared* ones: the built-in demo and the examples the host
prepared, listed for every visitor and read-only for them. With no workspace set (the local
app, the command line) there is only the data home, as ever.
"""

from __future__ import annotations

import os
import re
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from pathlib import Path

ENV_VAR = "CATDOG_HOME"
DEMO_DATASET_NAME = "demo"
WORKSPACES = "workspaces"
# What secrets.token_urlsafe(16) makes: 22 characters of the URL-safe base64 alphabet.
_TOKEN = re.compile(r"^[A-Za-z0-9_-]{22}$")
_CURRENT: ContextVar[str | None] = ContextVar("catdog_workspace", default=None)


class WorkspaceError(ValueError):
    """A workspace token that is not one catdog made (so never a folder name)."""


def data_home() -> Path:
    """Return the data home folder (created if missing)."""
    raw = os.environ.get(ENV_VAR, "").strip()
    home = Path(raw).expanduser() if raw else Path.home() / ".catdog"
    home.mkdir(parents=True, exist_ok=True)
    return home


# ------------------------------------------------------------------------------- workspaces


def new_workspace_token() -> str:
    """A fresh, unguessable workspace token (128 random bits, 22 URL-safe characters)."""
    return secrets.token_urlsafe(16)


def valid_workspace_token(token: object) -> bool:
    """Whether ``token`` has exactly the shape :func:`new_workspace_token` makes."""
    return isinstance(token, str) and _TOKEN.fullmatch(token) is not None


def check_workspace_token(token: object) -> str:
    """Return ``token`` if it is a workspace token.

    Raises:
        WorkspaceError: anything else (the message shows what was received).
    """
    if not valid_workspace_token(token):
        raise WorkspaceError(
            f"workspace token {str(token)[:40]!r} is not one catdog makes "
            "(22 letters, digits, '-' or '_'); open the app without it to get a new workspace"
        )
    return str(token)


def current_workspace() -> str | None:
    """This thread's workspace token, or ``None`` (local use: no workspaces)."""
    return _CURRENT.get()


def set_workspace(token: str | None) -> None:
    """Make ``token`` (checked) this thread's workspace; ``None`` for none.

    Raises:
        WorkspaceError: ``token`` is not a workspace token.
    """
    _CURRENT.set(None if token is None else check_workspace_token(token))


@contextmanager
def in_workspace(token: str | None) -> Iterator[None]:
    """Run a block in workspace ``token`` (``None``: none), restoring the previous one."""
    previous = _CURRENT.set(None if token is None else check_workspace_token(token))
    try:
        yield
    finally:
        _CURRENT.reset(previous)


def workspaces_dir() -> Path:
    """The folder holding every visitor's workspace (not created here)."""
    return data_home() / WORKSPACES


def workspace_dir(token: str | None = None) -> Path | None:
    """The folder of workspace ``token`` (default: the current one), or ``None`` if none."""
    token = current_workspace() if token is None else check_workspace_token(token)
    return None if token is None else workspaces_dir() / token


def _made(path: Path) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    return path


# ------------------------------------------------------------------------ datasets and runs


def shared_datasets_dir() -> Path:
    """The data home's own datasets: everyone's locally; the shared examples in hosted mode."""
    return _made(data_home() / "datasets")


def shared_runs_dir() -> Path:
    """The data home's own runs: everyone's locally; the shared examples in hosted mode."""
    return _made(data_home() / "runs")


def datasets_dir() -> Path:
    """Return the folder where datasets are imported: the current workspace's, else the data
    home's (created if missing)."""
    workspace = workspace_dir()
    return shared_datasets_dir() if workspace is None else _made(workspace / "datasets")


def runs_dir() -> Path:
    """Return the folder where new runs go: the current workspace's, else the data home's
    (created if missing)."""
    workspace = workspace_dir()
    return shared_runs_dir() if workspace is None else _made(workspace / "runs")


def weights_dir() -> Path:
    """Return the folder where uploaded weights files of pretrained bases are kept: the current
    workspace's, else the data home's (created if missing)."""
    workspace = workspace_dir()
    return _made((data_home() if workspace is None else workspace) / "weights")


def demo_dataset_dir() -> Path:
    """Return where the built-in demo dataset lives (shared; it may not be generated yet)."""
    return shared_datasets_dir() / DEMO_DATASET_NAME


def dataset_roots() -> list[Path]:
    """The folders whose subfolders are datasets this caller may use: its own first, then
    (in a workspace) the shared ones."""
    own = datasets_dir()
    return [own] if current_workspace() is None else [own, shared_datasets_dir()]


def run_roots() -> list[Path]:
    """The folders whose subfolders are runs this caller may see: its own first, then (in a
    workspace) the shared examples."""
    own = runs_dir()
    return [own] if current_workspace() is None else [own, shared_runs_dir()]


def in_dataset_roots(path: str | Path) -> bool:
    """Whether ``path`` is a folder directly inside one of :func:`dataset_roots`."""
    parent = Path(path).expanduser().resolve().parent
    return any(parent == root.resolve() for root in dataset_roots())


def is_shared(path: str | Path) -> bool:
    """Whether ``path`` (a dataset or run folder) is a shared example seen from a workspace:
    in the data home's own ``datasets/`` or ``runs/`` while a workspace is current."""
    if current_workspace() is None:
        return False
    parent = Path(path).expanduser().resolve().parent
    return parent in (shared_datasets_dir().resolve(), shared_runs_dir().resolve())
