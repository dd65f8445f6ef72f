"""catdog dashboard entry point: ``streamlit run app.py``.

Builds the navigation and the frame every page shares (the sidebar's active dataset and
training status); the landing page says what the app does and where things stand. Nothing
here imports TensorFlow, so the first page appears in a moment; once it has, a background
thread imports it and warms the predict path, once per server.
"""

import functools
import logging
import os
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import streamlit as st

from catdog import policy as hosted_policy
from catdog.data.choices import describe
from catdog.data.importer import sweep_stale_imports
from catdog.data.paths import ENV_VAR as HOME_VAR
from catdog.data.paths import current_workspace, in_workspace
from catdog.job_status import job_line
from catdog.jobs import manager
from catdog.train.history import best_run, best_run_line
from catdog.train.runs import list_runs
from catdog.workspaces import start_sweeper
from ui.frame import (
    PAGES,
    READ_ONLY_NOTE,
    enter_workspace,
    error_details,
    framed,
    guarded,
    plotting_loaded,
    read_only,
    share_links,
)
from ui.shared import active_choice, damaged_ui
from ui.uploads import bound_held_uploads, transport_problem


def copy_secrets_to_environment() -> None:
    """Take hosted mode's switch and limits from Streamlit's secrets too (how Community Cloud
    sets them): ``CATDOG_HOSTED``, every ``CATDOG_HOSTED_<NAME>`` and ``CATDOG_HOME``. The
    environment wins; no secrets file is fine."""
    try:
        secrets = dict(st.secrets)
    except FileNotFoundError:  # no secrets.toml anywhere: nothing to copy
        return
    for key, value in secrets.items():
        if key in (hosted_policy.ENV_VAR, HOME_VAR) or key.startswith(hosted_policy.ENV_PREFIX):
            text = ("1" if value else "0") if isinstance(value, bool) else str(value)
            os.environ.setdefault(key, text)


@st.cache_resource(show_spinner=False)
def swept_at_start() -> int:
    """Remove what killed imports left behind, once per server process (one folder listing)."""
    with in_workspace(None):  # the data home's own datasets folder
        return len(sweep_stale_imports())


@st.cache_resource(show_spinner=False)
def logged_once(problem: str) -> None:
    """Log a problem of the server's configuration once per process (not per page view)."""
    logging.getLogger("catdog.dashboard").error(problem)


class Activity:
    """Script runs in progress on this server, so background work can wait for a pause."""

    def __init__(self) -> None:
        self.running, self.changed, self._lock = 0, time.monotonic(), threading.Lock()

    @contextmanager
    def run(self) -> Iterator[None]:
        """Count a script run while the block lasts."""
        with self._lock:
            self.running, self.changed = self.running + 1, time.monotonic()
        try:
            yield
        finally:
            with self._lock:
                self.running, self.changed = self.running - 1, time.monotonic()

    def pause(self, quiet: float = 1.0, at_most: float = 10.0) -> None:
        """Wait until no script has run for ``quiet`` seconds (at most ``at_most`` seconds)."""
        deadline = time.monotonic() + at_most
        while time.monotonic() < deadline:
            if not self.running and time.monotonic() - self.changed >= quiet:
                return
            time.sleep(0.1)


# On a shared server a pause in everyone's clicks can be long in coming, and each visitor who
# trains or predicts needs TensorFlow: the warm-up waits at most this long before each step.
WARM_UP_WAIT_HOSTED = 1.0


@st.cache_resource(show_spinner=False)
def activity() -> Activity:
    """This server's :class:`Activity`."""
    return Activity()


def warm_up(pause: Callable[[], None]) -> None:
    """Import pandas, build a figure of each kind, import TensorFlow and Keras and run Keras'
    predict once, so that no visitor waits for them (seconds on a small CPU). (The Augmentation
    page's preview needs none of it: it runs in NumPy.) Each step first waits for a ``pause``
    in the visitors' script runs. (Not at a lower priority: TensorFlow's worker threads,
    started by its first operation, would inherit it for every later training.)"""
    import numpy as np

    pause()
    plotting_loaded()  # pandas (the History page's tables) too, never beside a page's figure

    pause()
    from catdog import figures  # Plotly loads its validators with the first figure of a kind

    figures.curves_figure({"run": [{"epoch": 1, "accuracy": 0.5, "val_accuracy": 0.5}]}).to_json()
    figures.confusion_figure([[1]], ["cat"]).to_json()
    pause()
    from catdog.model.backend import keras

    pause()
    tiny = keras.Sequential([keras.Input((8, 8, 3)), keras.layers.GlobalAveragePooling2D(),
                             keras.layers.Dense(1)])  # fmt: skip
    tiny.predict(np.zeros((1, 8, 8, 3), np.float32), verbose=0)
    import catdog.inference.explain  # noqa: F401 (the Predict page's next import)


def warm_up_or_log(pause: Callable[[], None]) -> None:
    """:func:`warm_up`; a failure only goes to the server's log (a visitor then waits)."""
    try:
        warm_up(pause)
    except Exception:
        logging.getLogger("catdog.dashboard").warning("warming up failed", exc_info=True)


def serving() -> bool:
    """Whether this is a real server (``streamlit run``), not a test's simulated one."""
    from streamlit import runtime

    return runtime.exists() and type(runtime.get_instance()) is runtime.Runtime


@st.cache_resource(show_spinner=False)
def warm_up_in_background() -> threading.Thread | None:
    """Start :func:`warm_up` once per server, after the first visitor's first page; a
    failure there only costs a visitor the wait. ``CATDOG_WARM_UP=0`` turns it off."""
    if not serving() or os.environ.get("CATDOG_WARM_UP", "1") == "0":
        return None
    pause = activity().pause
    if hosted_policy.current_policy().hosted:  # many visitors: the sooner, the better for all
        pause = functools.partial(pause, at_most=WARM_UP_WAIT_HOSTED)
    thread = threading.Thread(target=warm_up_or_log, args=(pause,), name="catdog-warm-up",
                              daemon=True)  # fmt: skip
    thread.start()
    return thread


# The five steps on the landing page: (key in PAGES, link, icon, what it is for).
STEPS = (
    ("dataset", "1. Dataset", ":material/photo_library:",
     "Use the built-in demo data or import your photos."),
    ("augmentation", "2. Augmentation", ":material/tune:", "See the seed's random transforms."),
    ("train", "3. Train", ":material/model_training:", "Train a model and watch it learn."),
    ("history", "4. History", ":material/monitoring:",
     "Compare runs; see where overfitting starts."),
    ("predict", "5. Predict", ":material/online_prediction:", "Classify your own photos."),
)  # fmt: skip


def home() -> None:
    """The landing page: what catdog does, how to start, and the current state."""
    st.title(":material/pets: catdog")
    st.write(
        "Train a small convnet to tell cats from dogs on a small dataset, on this computer, "
        "following Chollet's *Deep Learning with Python* §5.2: the seed's convnet overfits "
        "(≈72% validation accuracy); data augmentation and dropout lift it to ≈82%. "
        "catdog's own from-scratch recipe, **catdog-net**, reaches about 90% test accuracy on "
        "the same 2000 real photos in under 30 minutes on 2 CPU cores."
    )
    st.subheader("How to start")
    for column, (page, label, icon, text) in zip(st.columns(len(STEPS)), STEPS, strict=True):
        with column.container(border=True, height="stretch"):
            st.page_link(PAGES[page], label=label, icon=icon)
            st.caption(text)
    hosted_ui()
    st.subheader("Where things stand")
    dataset_col, runs_col = st.columns(2)
    with dataset_col.container(border=True, height="stretch"):
        dataset_status_ui()
    with runs_col.container(border=True, height="stretch"):
        runs_status_ui()


def dataset_status_ui() -> None:
    """The active dataset: its name, classes and images per split."""
    choice = active_choice()
    st.markdown(f"**Active dataset: {choice.name}**")
    if choice.info is None:
        st.caption("The built-in cartoon cats and dogs, drawn on first use (a few seconds).")
        return
    st.caption(f"Classes: {', '.join(choice.info.classes)}")
    cells = st.columns(3)
    for cell, (split, count) in zip(cells, choice.info.totals.items(), strict=True):
        cell.metric(split.capitalize(), f"{count:,}")


def runs_status_ui() -> None:
    """How many runs there are, the best one, and the runs training now."""
    runs = list_runs()
    best = best_run(runs)
    st.markdown(f"**Training runs: {len(runs)}**")
    damaged_ui(runs)
    if best is None:
        st.caption("No run yet: train one on the Train page.")
    else:
        st.caption(f"Best: {best_run_line(best)}")
    active = manager().active()
    for job in active:
        snap = job.snapshot()
        st.info(f"`{snap.run_id}`: {job_line(snap)}", icon=":material/model_training:")
    if active:
        st.page_link(
            PAGES["train"], label="Watch it on the Train page", icon=":material/model_training:"
        )


def hosted_ui() -> None:
    """In hosted mode, say so, what the workspace's link gives, and what it limits; offer the
    read-only share link (nothing locally)."""
    policy = hosted_policy.current_policy()
    if not policy.hosted:
        return
    limits = "\n".join(f"- {line}" for line in policy.describe())
    if read_only():
        access = READ_ONLY_NOTE
    else:
        access = (
            "Your datasets and runs are private to this workspace. Its link (this page's "
            "address; keep it to come back) gives **full control** of it: whoever has it can "
            "import, train, delete and export here. To show your work, share the read-only "
            "link below instead."
        )
    st.info(
        f"**This is a shared demo server (hosted mode).** {access} To keep the server usable "
        f"for everyone it limits:\n{limits}",
        icon=":material/public:",
    )
    if not read_only() and (token := current_workspace()) is not None:
        _, viewing = share_links(token)
        # Inline code, not st.code: its highlighter costs each new visitor's browser about
        # 0.4 s of CPU on the first page they see (benchmarks/README.md, page profile).
        st.caption("Read-only link to this workspace (sees everything, changes nothing): "
                   f"`{st.context.url or ''}?ws={viewing}`")  # fmt: skip


def sidebar() -> None:
    """The active dataset and any training in progress, on every page."""
    choice = active_choice()
    with st.sidebar:
        st.caption("Active dataset")
        st.markdown(f"**{choice.name}**")
        if choice.info is not None:
            st.caption(f"{', '.join(choice.info.classes)} · {choice.info.total:,} images")
        else:
            st.caption(describe(choice).split(" — ", 1)[1])
        if hosted_policy.current_policy().hosted and read_only():
            st.caption("A workspace opened read-only.")
        elif hosted_policy.current_policy().hosted:
            st.caption(
                "Your private workspace: this page's link brings you back, with full control."
            )
        if active := manager().active():
            st.divider()
            st.page_link(PAGES["train"], label=f"Training: {len(active)} run(s) in progress",
                         icon=":material/model_training:")  # fmt: skip


# (key in PAGES, title, icon); the URL path is the key.
NAVIGATION = (
    ("dataset", "Dataset", ":material/photo_library:"),
    ("augmentation", "Augmentation", ":material/tune:"),
    ("train", "Train", ":material/model_training:"),
    ("history", "History", ":material/monitoring:"),
    ("predict", "Predict", ":material/online_prediction:"),
)


def main() -> None:
    """The frame every page shares, then the page; in hosted mode visitors see no traceback."""
    copy_secrets_to_environment()
    policy = hosted_policy.current_policy()
    error_details(policy.hosted)
    if policy.hosted:
        if problem := transport_problem():  # uploads would reach memory over the cap
            logged_once(problem)
            st.error(problem, icon=":material/block:")
            st.stop()
        bound_held_uploads()
    page = None
    with guarded("app.py"):
        swept_at_start()
        if policy.hosted:
            start_sweeper(manager().busy_workspaces)  # idle workspaces go (once)
        enter_workspace()  # hosted mode: this visitor's private datasets and runs, for this run
        page = st.navigation(
            [st.Page(home, title="Home", icon=":material/pets:", default=True)]
            + [st.Page(PAGES[key], title=t, icon=i, url_path=key) for key, t, i in NAVIGATION]
        )
        sidebar()
    if page is None:  # the frame failed (and said so): no page to run
        return
    try:
        with guarded(f"page {page.title}"), framed():
            if page.url_path:  # not Home, which draws no figure: its first visit is the first
                plotting_loaded()
            page.run()
    finally:  # also after a page's st.stop()
        warm_up_in_background()


st.set_page_config(page_title="catdog", page_icon="🐾", layout="wide")
with activity().run():
    main()
