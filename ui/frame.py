"""The frame every page runs in: the visitor's workspace (hosted mode) and the error guard.

app.py enters both before it runs a page (``with framed(): page.run()``). A page file also
begins with :func:`enter_page`, because Streamlit sometimes runs a page file alone: on a fresh
server, while no session has called ``st.navigation`` yet, it serves a ``pages/`` folder the way
it did before ``st.navigation`` existed (its legacy multipage mode), and a first visit to
``/train`` runs ``pages/3_train.py`` without app.py. Such a run enters the workspace under the
guard, ends that mode for the server through the public ``st.navigation`` (which switches it off
for every later session) and reruns through app.py, before any of the page's own code.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

import streamlit as st

from catdog.data.paths import set_workspace
from catdog.data.workspace_links import (
    TooManyWorkspacesError,
    WorkspaceLinkError,
    issue_link,
    link_for,
    open_link,
)
from catdog.policy import current_policy, set_read_only
from catdog.workspaces import touch_workspace

PAGES = {
    "dataset": "pages/1_dataset.py",
    "augmentation": "pages/2_augmentation.py",
    "train": "pages/3_train.py",
    "history": "pages/4_history.py",
    "predict": "pages/5_predict.py",
}
WORKSPACE = "workspace"  # the session's workspace link (hosted mode)
WORKSPACE_PARAM = "ws"  # ... kept in the page URL's query, so a refresh keeps it
_NOTICE = "workspace_notice"  # a sentence for the visitor about the link they came with
_DIRECT_RUNS = "direct_page_runs"  # page files Streamlit ran alone in this session

SOMETHING_WENT_WRONG = (
    "Something went wrong; please try again, or reload the page. (The details are in the "
    "server's log.)"
)
READ_ONLY_NOTE = (
    "This is a read-only link: you can look at this workspace's datasets and runs and classify "
    "photos, but not import, train, delete or export."
)
FORGED_LINK = (
    "That link does not open a workspace of this server (it was changed, or made elsewhere), "
    "so you are in a new, empty workspace; keep this page's link to come back to it."
)
_log = logging.getLogger("catdog.dashboard")
_FRAMED: ContextVar[bool] = ContextVar("catdog_framed", default=False)


# Streamlit's error-detail option as configured, read once when the server first imports this
# module (before hosted mode could change it); local runs put it back.
_ERROR_DETAILS = "client.showErrorDetails"
_LOCAL_ERROR_DETAILS = st.get_option(_ERROR_DETAILS)


def error_details(hosted: bool) -> None:
    """Hosted mode shows no error detail (a safety net below guarded()); local mode shows them
    as configured, also in a process where hosted mode was on before (as in tests)."""
    st.set_option(_ERROR_DETAILS, "none" if hosted else _LOCAL_ERROR_DETAILS)


@contextmanager
def guarded(where: str) -> Iterator[None]:
    """Run a page's body (or a fragment's) so that, in hosted mode, an unexpected exception
    shows visitors one sentence and its detail goes to the server's log. Locally it is raised
    as ever, and Streamlit shows it. ``st.stop()`` and ``st.rerun()`` pass through."""
    try:
        yield
    except Exception:
        if not current_policy().hosted:
            raise
        _log.exception("unexpected error in %s", where)
        st.error(SOMETHING_WENT_WRONG, icon=":material/error:")


@contextmanager
def framed() -> Iterator[None]:
    """app.py runs the chosen page in this block: the page's :func:`enter_page` then knows the
    workspace and the guard are already in place."""
    token = _FRAMED.set(True)
    st.session_state.pop(_DIRECT_RUNS, None)
    try:
        yield
    finally:
        _FRAMED.reset(token)


def enter_page() -> None:
    """The first call of every page file: nothing when app.py runs the page; when Streamlit runs
    the file alone (see the module's docstring), enter the workspace under the guard, leave
    that mode and rerun through app.py, so none of the page's code runs outside the frame."""
    if _FRAMED.get():
        return
    runs = st.session_state.get(_DIRECT_RUNS, 0) + 1
    st.session_state[_DIRECT_RUNS] = runs
    with guarded("a page run without app.py"):
        enter_workspace()
        if runs > 2:  # the reruns did not go through app.py: never run the page unframed
            st.error("This page could not be opened here; please open the app's home page.")
            st.stop()
        st.navigation(list(_pages()), position="hidden")  # ends the legacy mode (public API)
    st.rerun()


def home_placeholder() -> None:
    """Stands for app.py's Home page in the navigation a lone page run declares."""


def _pages() -> Iterator[st.Page]:
    yield st.Page(home_placeholder, title="Home", default=True)
    for key, path in PAGES.items():
        yield st.Page(path, url_path=key)


def enter_workspace(update_url: bool = True) -> str | None:
    """Make the session's workspace the current one for this script run (hosted mode).

    The link is the session's, else the URL's ``?ws=`` (a refresh, a bookmark or a shared
    link), else a new one the server issues (within its cap of new workspaces an hour). A
    value the server did not make is never used: the visitor gets a new workspace and one
    sentence saying why. The link is put back in the URL (a page switch drops the query).
    Locally there are no workspaces: ``None``. Fragments, which rerun without app.py, call it
    with ``update_url=False``.

    Returns:
        The workspace's token (``None`` locally).
    """
    if not current_policy().hosted:
        set_workspace(None)
        set_read_only(False)
        return None
    link = st.session_state.get(WORKSPACE)
    if link is None:
        link = _link_from_url()
        st.session_state[WORKSPACE] = link
    try:
        opened = open_link(link)
    except WorkspaceLinkError:  # the server's secret changed since: a new workspace
        del st.session_state[WORKSPACE]
        return enter_workspace(update_url)
    if update_url and st.query_params.get(WORKSPACE_PARAM) != link:
        st.query_params[WORKSPACE_PARAM] = link
    set_workspace(opened.token)
    set_read_only(opened.read_only)  # the library then refuses any change (policy.check_writable)
    if update_url:
        touch_workspace(opened.token)  # in use: the idle sweep keeps it
        if notice := st.session_state.pop(_NOTICE, None):
            st.warning(notice, icon=":material/link_off:")
    return opened.token


def _link_from_url() -> str:
    """The URL's link if this server made it, else a new workspace's (stops the page, saying
    why, when the server made its cap of new workspaces this hour)."""
    given = st.query_params.get(WORKSPACE_PARAM)
    if given:
        try:
            open_link(given)
            return given
        except WorkspaceLinkError:
            _log.info("refused a workspace link the server did not make")
            st.session_state[_NOTICE] = FORGED_LINK
    try:
        return issue_link(current_policy().limits.new_workspaces_per_hour)
    except TooManyWorkspacesError as exc:
        st.error(f"Sorry: {exc}.", icon=":material/hourglass_top:")
        st.stop()


def read_only() -> bool:
    """Whether this visitor opened the workspace by its read-only link (pages then offer no
    import, training, deletion or export; catdog refuses them anyway)."""
    return current_policy().read_only


def share_links(token: str) -> tuple[str, str]:
    """The full-control and the read-only ``?ws=`` values of workspace ``token``."""
    return link_for(token), link_for(token, read_only=True)


_PLOTTING = threading.Lock()


def plotting_loaded() -> None:
    """Import pandas and Plotly, one thread at a time, before any figure is built: Plotly looks
    pandas up in ``sys.modules`` and, while another thread is still importing it, finds a
    module half made (seen: pandas without ``Series`` when a fresh server's first visitors, or
    a visitor and the warm-up, imported them together). Cheap once done."""
    with _PLOTTING:
        import pandas  # noqa: F401
        import plotly.graph_objects  # noqa: F401
