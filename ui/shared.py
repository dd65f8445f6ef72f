"""What every page shares: the session's active dataset and augmentation, and cached thumbnails.

Pages keep their choices in ``st.session_state`` under the keys below; catdog itself never sees
session state, only the plain values read here.
"""

from __future__ import annotations

import contextlib
import contextvars
import re
import threading
from pathlib import Path
from typing import Any

import streamlit as st

from catdog.data.choices import DatasetChoice, dataset_choices, demo_ready
from catdog.data.datasets import DatasetError, DatasetInfo, scan_dataset
from catdog.data.images import ImageError
from catdog.data.paths import demo_dataset_dir
from catdog.data.thumbnails import thumbnail, unreadable_thumbnail
from catdog.inference.predict import Predictor
from catdog.jobs import manager
from catdog.train.augment import AugmentConfig
from catdog.train.runs import RunInfo
from ui.frame import PAGES, WORKSPACE

DATASET = "dataset"  # path (str) of the active dataset
DATASET_PARAM = "data"  # ... and its name in the page URL's query, so a refresh keeps it
AUGMENTATION = "augmentation"  # the AugmentConfig the Train page uses
WATCHED_RUN = "watched_run"  # run id of the training job this session watches


def active_choice() -> DatasetChoice:
    """The session's active dataset: the one picked in this session, else the URL's
    ``?data=NAME`` (a refresh or a bookmark), else the demo one. Kept in the URL too."""
    choices = dataset_choices()
    wanted = st.session_state.get(DATASET)
    if wanted is None:  # a new session: what the URL says, so a refresh keeps the dataset
        name = st.query_params.get(DATASET_PARAM)
        wanted = str(next((c.path for c in choices if c.name == name), choices[0].path))
    choice = next((c for c in choices if str(c.path) == wanted), choices[0])  # else deleted
    set_active_dataset(choice.path)
    return choice


def set_active_dataset(path: str | Path) -> None:
    """Make ``path`` the dataset the other pages use, and put its name in the page URL (not
    the demo's: the URL need not say it)."""
    st.session_state[DATASET] = str(path)
    name = None if Path(path) == demo_dataset_dir() else Path(path).name
    if name is None:
        if DATASET_PARAM in st.query_params:
            del st.query_params[DATASET_PARAM]
    elif st.query_params.get(DATASET_PARAM) != name:
        st.query_params[DATASET_PARAM] = name


def require_dataset() -> DatasetInfo:
    """The active dataset's info, drawing the demo dataset first if needed (with progress).

    Stops the page with an error message if the dataset cannot be read.
    """
    choice = active_choice()
    if choice.is_demo and not demo_ready():
        from catdog.data.demo import ensure_demo_dataset

        with st.status("Drawing the built-in demo dataset (first use only)…") as status:
            bar = st.progress(0.0)

            def progress(done: int, total: int, message: str) -> None:
                bar.progress(done / max(total, 1), text=f"{message}: {done:,}/{total:,} images")

            try:
                ensure_demo_dataset(progress=progress)
            except (OSError, ValueError) as exc:
                status.update(label="Could not draw the demo dataset", state="error")
                st.error(str(exc))
                st.stop()
            status.update(label="Demo dataset ready", state="complete", expanded=False)
        st.rerun()  # the sidebar, drawn before this page, still says "drawn on first use"
    try:
        return scan_dataset(choice.path)
    except DatasetError as exc:
        st.error(f"The active dataset cannot be used: {exc}")
        st.page_link(
            PAGES["dataset"], label="Pick another dataset", icon=":material/photo_library:"
        )
        st.stop()


def augmentation() -> AugmentConfig:
    """The augmentation settings chosen on the Augmentation page (the seed's by default)."""
    return st.session_state.get(AUGMENTATION) or AugmentConfig()


@st.cache_data(max_entries=4000, show_spinner=False)
def cached_thumbnail(path: str, version: float, size: int = 160) -> bytes:
    """A thumbnail of an image file; ``version`` (the file's mtime) keys the cache."""
    return thumbnail(path, size=size)


def thumb(path: str | Path, size: int = 160) -> bytes:
    """A cached thumbnail of ``path``; a grey cross for a file that cannot be read."""
    path = Path(path)
    try:
        return cached_thumbnail(str(path), path.stat().st_mtime, size)
    except (ImageError, OSError):
        return unreadable_thumbnail(size)


# ASCII punctuation Markdown (or Streamlit's :colour[] and :emoji: and $LaTeX$) may act on.
_MARKDOWN_PUNCTUATION = re.compile(r"([\\`*_{}\[\]()#+\-.!|<>~$:])")


def literal(text: str) -> str:
    """``text`` escaped so that Markdown shows it as it is: a file named ``*cat*.jpg`` or
    ``:red[x].png`` is not styled, a message with ``$`` is not typeset as LaTeX."""
    return _MARKDOWN_PUNCTUATION.sub(r"\\\1", text)


def model_choice(where: Any = st, key: str = "which_model") -> str:
    """A "Best epoch | Last epoch" radio; returns ``"best"`` or ``"last"``."""
    return where.radio(
        "Model",
        ["best", "last"],
        horizontal=True,
        key=key,
        format_func={"best": "Best epoch", "last": "Last epoch"}.get,
        help="The model saved at the epoch with the best validation accuracy, or the one "
        "after the last epoch trained.",
    )


@st.cache_resource(
    max_entries=3,
    show_spinner="Loading the model (the first time, also learning when to say 'not sure')…",
)
def predictor(run_id: str, which: str, version: float) -> Predictor:
    """One loaded model per run and choice; ``version`` (the file's mtime) keys the cache."""
    return Predictor.from_run(run_id, which=which)


_prefetched: set[tuple] = set()  # models some visitor already asked to load in advance
_prefetched_lock = threading.Lock()


def prefetch_predictor(run_id: str, which: str, version: float) -> None:
    """Load a model (:func:`predictor`) and trace its prediction in a background thread, once,
    while the visitor picks photos: the first photo then only waits for its own prediction.
    The thread keeps this run's workspace. A failure is left for the foreground load to say."""
    key = (run_id, which, version, st.session_state.get(WORKSPACE))
    with _prefetched_lock:
        if key in _prefetched:
            return
        _prefetched.add(key)

    def load() -> None:
        with contextlib.suppress(Exception):  # the page's own load reports any problem
            predictor(run_id, which, version).predict([("warm-up.png", _GREY_PNG)], heatmaps=True)

    context = contextvars.copy_context()  # the workspace (a context variable)
    threading.Thread(target=context.run, args=(load,), name="catdog-prefetch", daemon=True).start()


def _grey_png() -> bytes:
    from io import BytesIO

    from PIL import Image

    buffer = BytesIO()
    Image.new("RGB", (32, 32), (128, 128, 128)).save(buffer, "PNG")
    return buffer.getvalue()


_GREY_PNG = _grey_png()


def damaged_ui(infos: list[RunInfo]) -> None:
    """One line per damaged run folder, with the reason, in an expander (nothing if none)."""
    damaged = [info for info in infos if info.damaged]
    if not damaged:
        return
    label = f"{len(damaged)} damaged run folder{'s' if len(damaged) > 1 else ''}, not usable"
    with st.expander(label, icon=":material/warning:"):
        for info in damaged:
            st.caption(f"`{info.id}` — damaged: {info.error}")


def confirmed(prefix: str, target: str, question: str) -> bool:
    """The second step of a deletion whose first button set ``session_state[prefix +
    "_pending"] = target``: ``question`` with "Yes, delete it" and "Cancel"; True once the
    user said yes (the pending mark is then cleared)."""
    pending = f"{prefix}_pending"
    if st.session_state.get(pending) != target:
        return False
    st.warning(question)
    yes, no, _ = st.columns([1, 1, 3])
    if no.button("Cancel", key=f"{prefix}_no", width="stretch"):
        del st.session_state[pending]
        st.rerun()
    if yes.button("Yes, delete it", type="primary", key=f"{prefix}_yes", width="stretch"):
        del st.session_state[pending]
        return True
    return False


def start_resume(run_id: str) -> bool:
    """Resume a run in the background and watch it; if refused, show why and return False."""
    try:
        job = manager().start(resume_run=run_id)
    except ValueError as exc:  # RunBusy, RunError: one line that says why
        st.error(f"Cannot resume: {exc}")
        return False
    st.session_state[WATCHED_RUN] = job.run_id
    return True


def _keep_keras_state() -> None:
    """Stop Streamlit clearing Keras' session after every script run.

    Streamlit calls ``keras.backend.clear_session()`` when a script run ends (its
    ``_clean_problem_modules``), which replaces Keras' global state for every thread at once.
    The dashboard trains in background threads while the Train page reruns every second, so a
    model being built then (a pretrained base, whose layers Keras names by counting) lost its
    name counters half way ("The name "activation" is used 8 times in the model") and its dtype
    policy. Nothing in catdog needs the session cleared: models are built, not accumulated.
    """
    from streamlit.runtime.scriptrunner import script_runner

    script_runner._clean_problem_modules = lambda: None


_keep_keras_state()
