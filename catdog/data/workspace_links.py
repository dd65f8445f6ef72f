"""Workspace links: the ``?ws=`` values a hosted server hands out, and only those.

A visitor's workspace is named by a random token (:func:`catdog.data.paths.new_workspace_token`,
the folder's name). The page URL does not carry the bare token but a *link*: the token followed
by a keyed signature (HMAC-SHA256 with the server's secret, 22 URL-safe characters), one for the
full-control link and another for the read-only share link. So a value the server did not make
is refused, a read-only link cannot be turned into the full one, and the secret never leaves the
server: it is made once, atomically, in the data home (``workspace-secret``, mode 0600).

New workspaces are capped per hour for the whole server (:class:`IssueLimiter`), so a loop of
fresh visits cannot fill the disk with folders. Plain Python: no Streamlit.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import hmac
import os
import secrets
import stat
import threading
import time
from collections import deque
from dataclasses import dataclass
from pathlib import Path

from catdog.data.paths import WorkspaceError, data_home, new_workspace_token, valid_workspace_token

SECRET_FILE = "workspace-secret"
SECRET_BYTES = 32
_TOKEN_CHARS = 22  # what new_workspace_token makes
_MAC_CHARS = 22  # 132 bits of the HMAC: no online guessing reaches it
_KINDS = {False: b"full", True: b"read-only"}


class WorkspaceLinkError(WorkspaceError):
    """A ``?ws=`` value this server did not make (or made with another secret)."""


class TooManyWorkspacesError(WorkspaceError):
    """The server made its cap of new workspaces in the current hour."""


@dataclass(frozen=True)
class OpenedLink:
    """What a link opens: the workspace's token and whether only to look."""

    token: str
    read_only: bool


def server_secret(home: Path | None = None) -> bytes:
    """The server's signing secret, made on first use (``<data home>/workspace-secret``).

    Made once even when several processes start together: written to a private temporary file
    and linked into place, so a reader sees either no file or the whole secret. A file others
    may read is made private again (a leaked secret would let anyone make links).

    Raises:
        WorkspaceError: the file exists but does not hold a secret (its size is wrong).
    """
    path = (data_home() if home is None else home) / SECRET_FILE
    if (known := _SECRETS.get(str(path))) is not None and path.exists():
        return known
    if not path.exists():
        _make_secret(path)
    info = path.stat()
    if info.st_mode & (stat.S_IRWXG | stat.S_IRWXO):
        os.chmod(path, 0o600)
    data = path.read_bytes()
    if len(data) != SECRET_BYTES:
        raise WorkspaceError(
            f"{path.name} in the data home holds {len(data)} bytes, not a {SECRET_BYTES}-byte "
            "secret; delete it (every workspace link then changes) and restart"
        )
    _SECRETS[str(path)] = data
    return data


_SECRETS: dict[str, bytes] = {}  # read once per data home and process


def _make_secret(path: Path) -> None:
    temporary = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(secrets.token_bytes(SECRET_BYTES))
            out.flush()
            os.fsync(out.fileno())
        with contextlib.suppress(FileExistsError):  # another process made it first: theirs
            os.link(temporary, path)
    finally:
        temporary.unlink(missing_ok=True)


def _signature(token: str, read_only: bool, secret: bytes) -> str:
    digest = hmac.new(secret, _KINDS[read_only] + b":" + token.encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).decode()[:_MAC_CHARS]


def link_for(token: str, read_only: bool = False, *, secret: bytes | None = None) -> str:
    """The ``?ws=`` value that opens workspace ``token`` (read-only or with full control)."""
    if not valid_workspace_token(token):
        raise WorkspaceError(f"{str(token)[:40]!r} is not a workspace token")
    return token + _signature(token, read_only, secret or server_secret())


def open_link(link: object, *, secret: bytes | None = None) -> OpenedLink:
    """The workspace a ``?ws=`` value opens, if this server made it.

    Raises:
        WorkspaceLinkError: anything else (a made-up or altered value, an old bare token).
    """
    if isinstance(link, str) and len(link) == _TOKEN_CHARS + _MAC_CHARS:
        token, mac = link[:_TOKEN_CHARS], link[_TOKEN_CHARS:]
        if valid_workspace_token(token):
            key = secret or server_secret()
            for read_only in (False, True):
                if hmac.compare_digest(mac, _signature(token, read_only, key)):
                    return OpenedLink(token, read_only)
    raise WorkspaceLinkError(
        "this link's workspace was not made by this server (or the link was changed)"
    )


class IssueLimiter:
    """At most ``per_hour`` new workspaces in any hour, for the whole server process."""

    def __init__(self, window_seconds: float = 3600.0) -> None:
        self.window = window_seconds
        self._issued: deque[float] = deque()
        self._lock = threading.Lock()

    def issue(self, per_hour: int, now: float | None = None) -> str:
        """A new workspace's full-control link.

        Raises:
            TooManyWorkspacesError: ``per_hour`` were made in the last hour; the message says
                when the next one can be.
        """
        now = time.monotonic() if now is None else now
        with self._lock:
            while self._issued and self._issued[0] <= now - self.window:
                self._issued.popleft()
            if len(self._issued) >= per_hour:
                wait = max(1, round((self._issued[0] + self.window - now) / 60))
                raise TooManyWorkspacesError(
                    f"this server has made its {per_hour} new workspaces for this hour; "
                    f"please come back in about {wait} minute(s), or open a link you were given"
                )
            self._issued.append(now)
        return link_for(new_workspace_token())


_LIMITERS: dict[str, IssueLimiter] = {}  # one per data home: a server serves one
_LIMITERS_LOCK = threading.Lock()


def issue_link(per_hour: int) -> str:
    """A new workspace's full-control link, within the server's cap of ``per_hour`` new
    workspaces in any hour (see :class:`IssueLimiter`).

    Raises:
        TooManyWorkspacesError: the cap for this hour is reached.
    """
    with _LIMITERS_LOCK:
        limiter = _LIMITERS.setdefault(str(data_home()), IssueLimiter())
    return limiter.issue(per_hour)
