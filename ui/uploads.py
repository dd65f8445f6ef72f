"""Upload limits where the bytes arrive: Streamlit's upload route, before catdog sees a file.

Streamlit refuses, at its HTTP upload route, any file over ``server.maxUploadSize`` (checked from
the request's declared length, then while the body streams in), whatever a widget says: a
widget's ``max_upload_size`` is only checked by the browser. So hosted mode must not serve
with a ``server.maxUploadSize`` above its own upload cap (the shipped ``.streamlit/config.toml``
sets the two equal), and each widget passes the limit it means, so an honest visitor is told
in the browser.

Streamlit also keeps every uploaded file of a session in memory until the session ends, with
no cap on their number: :func:`bound_held_uploads` caps what one session, and all of them, may
hold at once.
"""

from __future__ import annotations

import logging
import threading

import streamlit as st

from catdog.policy import current_policy

_log = logging.getLogger("catdog.dashboard")
# What one session may hold in uploaded files at once, and all sessions together, in uploads
# of the hosted cap: a dataset .zip and a few photos; four visitors uploading at once.
SESSION_UPLOADS = 2
SERVER_UPLOADS = 4


def streamlit_limit_mb() -> int:
    """Streamlit's own upload limit, ``server.maxUploadSize``, in MB."""
    return int(st.get_option("server.maxUploadSize"))


def upload_limit_mb(cap_mb: float | None = None) -> int:
    """What a widget's ``max_upload_size`` gets: the least of Streamlit's limit, hosted mode's
    upload cap (in hosted mode) and ``cap_mb`` (a widget's own), in whole MB, at least 1."""
    limits = [float(streamlit_limit_mb())]
    if (hosted := current_policy().max_upload_mb) is not None:
        limits.append(hosted)
    if cap_mb is not None:
        limits.append(cap_mb)
    return max(1, int(min(limits)))


def transport_problem() -> str | None:
    """In hosted mode, why this server must not serve as configured (its upload limit is over
    hosted mode's cap), in one sentence for the host; else ``None``."""
    limits = current_policy().limits
    if limits is None:
        return None
    cap, limit = limits.max_upload_mb, streamlit_limit_mb()
    if limit <= cap:
        return None
    return (
        f"This hosted server is not serving: Streamlit accepts uploads of up to {limit} MB "
        f"(server.maxUploadSize) but hosted mode's cap is {cap:g} MB, so a visitor's upload "
        "would reach the server's memory before catdog could refuse it. The host must restart "
        f"it with --server.maxUploadSize {max(1, int(cap))} (as .streamlit/config.toml ships)."
    )


_bound = threading.Lock()
_installed: set[int] = set()


def bound_held_uploads() -> None:
    """Cap the uploaded bytes Streamlit holds per session and in all (hosted mode), once per
    server process: an upload past either cap is refused at the upload route (HTTP 413), so
    no session can pile files into the server's memory.

    Wraps the ``add_file`` of the runtime's uploaded-file manager (the object Streamlit's upload
    route stores each file with): Streamlit offers no setting for this.
    """
    from streamlit import runtime

    policy = current_policy()
    if policy.limits is None or not runtime.exists():
        return
    manager = runtime.get_instance().uploaded_file_mgr
    with _bound:
        if id(manager) in _installed:
            return
        _installed.add(id(manager))
        cap = policy.max_upload_bytes
        manager.add_file = _bounded(manager, SESSION_UPLOADS * cap, SERVER_UPLOADS * cap)


def _bounded(manager, per_session: int, in_all: int):
    add_file, remove_file, remove_session = (
        manager.add_file, manager.remove_file, manager.remove_session_files
    )  # fmt: skip
    held: dict[str, dict[str, int]] = {}  # session → file id → bytes
    lock = threading.Lock()

    def add(session_id: str, file) -> None:
        from starlette.exceptions import HTTPException

        size = len(file.data)
        with lock:
            mine = held.setdefault(session_id, {})
            session_total = sum(mine.values()) - mine.get(file.file_id, 0) + size
            total = sum(sum(f.values()) for f in held.values()) - mine.get(file.file_id, 0) + size
            if session_total > per_session or total > in_all:
                _log.warning("refused an upload of %d bytes: %d held by the session, %d in all",
                             size, session_total - size, total - size)  # fmt: skip
                raise HTTPException(status_code=413, detail="Too many uploads held at once")
            mine[file.file_id] = size
        add_file(session_id, file)

    def remove(session_id: str, file_id: str) -> None:
        with lock:
            held.get(session_id, {}).pop(file_id, None)
        remove_file(session_id, file_id)

    def remove_all(session_id: str) -> None:
        with lock:
            held.pop(session_id, None)
        remove_session(session_id)

    manager.remove_file, manager.remove_session_files = remove, remove_all
    return add
