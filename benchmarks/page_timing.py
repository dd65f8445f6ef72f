"""``streamlit`` with a timing log: where a catdog server's time goes, for profile_pages.py.

    CATDOG_PAGE_TIMING=/tmp/spans.jsonl python benchmarks/page_timing.py run app.py

Runs Streamlit exactly as ``python -m streamlit`` does, after hooking (without changing the
app) the few things a page's time goes to. Each call is one JSON line in the file named by
``CATDOG_PAGE_TIMING``: ``{"cat", "name", "t0", "t1", "excl", "thread", "session"}``, times
from ``time.monotonic()`` (the machine's clock: the benchmark compares them with its own),
``excl`` the seconds not spent in a hooked call inside it (so categories add up):

- imports of TensorFlow/Keras, Plotly and pandas (timed when first imported, by whoever);
- catdog's dataset scans and statistics, thumbnails, image decoding, the augmentation
  preview, figure building, run listings, model building (the Train page's summary), model
  loading and prediction — hooked by function
  name wherever the function is defined, so a function that moves to another module is still
  found;
- Plotly's figure → JSON (with its size in bytes: what the browser receives);
- each script run (``"script run"``, ``"fragment run"``) per session: what is left after the
  hooked calls is Streamlit and the page's own code;
- stalls: a thread that asks to wake every 5 ms and was kept waiting over 50 ms (another
  thread held the GIL, or the CPU was busy): what every other visitor waits meanwhile.
"""

from __future__ import annotations

import functools
import importlib.abc
import json
import os
import sys
import threading
import time
from typing import Any

LOG = os.environ.get("CATDOG_PAGE_TIMING")
STALL_AFTER = 0.05  # seconds late that count as a stall

# Function name → category, for functions defined in a catdog module (wherever it lives).
FUNCTIONS = {
    "scan_dataset": "dataset scan",
    "list_images": "dataset scan",
    "list_datasets": "dataset scan",
    "dataset_choices": "dataset scan",
    "image_sizes": "dataset statistics",
    "size_rows": "dataset statistics",
    "size_summary": "dataset statistics",
    "count_rows": "dataset statistics",
    "thumbnail": "thumbnails",
    "preview_image": "thumbnails",
    "heatmap_jpeg": "thumbnails",
    "load_for_model": "image decode",
    "preview": "augmentation preview",
    "curves_figure": "figure building",
    "confusion_figure": "figure building",
    "split_counts_svg": "figure building",
    "image_sizes_svg": "figure building",
    "list_runs": "run listing",
    "read_history": "run listing",
    "build_model": "model building",
    "cached_choice": "precision lookup",
    "from_run": "model load",
    "predict": "prediction",
    "ensure_demo_dataset": "demo drawing",
}
IMPORTS = {
    "tensorflow": "TensorFlow import",
    "keras": "TensorFlow import",
    "plotly.graph_objects": "Plotly import",
    "plotly.express": "Plotly import",
    "pandas": "pandas import",
}
# catdog's own modules and the pages' helpers: their first import, in whichever run does it.
OWN_IMPORTS = ("catdog", "pages")

_lock = threading.Lock()
_local = threading.local()
_out = open(LOG, "a", buffering=1) if LOG else None  # noqa: SIM115 (the server's lifetime)


def _write(record: dict[str, Any]) -> None:
    if _out is not None:
        with _lock:
            _out.write(json.dumps(record) + "\n")


class _span:
    """Time a block as one record; nested spans' time is taken out of ``excl``."""

    def __init__(self, cat: str, name: str, **extra: Any) -> None:
        self.cat, self.name, self.extra = cat, name, extra

    def __enter__(self) -> _span:
        self.t0 = time.monotonic()
        stack = _local.__dict__.setdefault("stack", [])
        stack.append(0.0)
        return self

    def __exit__(self, *exc: object) -> None:
        t1 = time.monotonic()
        stack = _local.stack
        inner = stack.pop()
        took = t1 - self.t0
        if stack:
            stack[-1] += took
        _write({"cat": self.cat, "name": self.name, "t0": self.t0, "t1": t1,
                "excl": took - inner, "thread": threading.current_thread().name,
                "session": getattr(_local, "session", None), **self.extra})  # fmt: skip


def _timed(fn: Any, cat: str, name: str, size: bool = False) -> Any:
    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        with _span(cat, name) as span:
            result = fn(*args, **kwargs)
            if size:
                span.extra["bytes"] = len(result)
            return result

    wrapper.__timed__ = True
    return wrapper


def _hook_module(module: Any) -> None:
    """Time the watched functions (and methods of classes) that ``module`` defines."""
    name = module.__name__
    if name == "plotly.io":
        module.to_json = _timed(module.to_json, "figure to JSON", "plotly.io.to_json", size=True)
        return
    for attr, value in list(vars(module).items()):
        if attr in FUNCTIONS and callable(value) and getattr(value, "__module__", "") == name:
            if not getattr(value, "__timed__", False):
                setattr(module, attr, _timed(value, FUNCTIONS[attr], f"{name}.{attr}"))
        elif isinstance(value, type) and value.__module__ == name:
            for method, raw in list(vars(value).items()):
                if method not in FUNCTIONS:
                    continue
                if isinstance(raw, classmethod):
                    timed = classmethod(_timed(raw.__func__, FUNCTIONS[method], f"{attr}.{method}"))
                elif callable(raw):
                    timed = _timed(raw, FUNCTIONS[method], f"{attr}.{method}")
                else:
                    continue
                setattr(value, method, timed)


class _Loader(importlib.abc.Loader):
    """Another loader, timed (for the watched imports) and hooked after it ran."""

    def __init__(self, inner: Any, name: str) -> None:
        self.inner, self.name = inner, name

    def __getattr__(self, attr: str) -> Any:
        return getattr(self.inner, attr)

    def create_module(self, spec: Any) -> Any:
        return self.inner.create_module(spec)

    def exec_module(self, module: Any) -> None:
        cat = IMPORTS.get(self.name)
        if cat is None and self.name.split(".")[0] in OWN_IMPORTS:
            cat = "catdog import"
        if cat is not None:
            with _span(cat, f"import {self.name}"):
                self.inner.exec_module(module)
        else:
            self.inner.exec_module(module)
        _hook_module(module)


class _Finder(importlib.abc.MetaPathFinder):
    """Hands the watched modules (catdog's, plotly.io, the heavy imports) a timed loader."""

    def __init__(self) -> None:
        self._busy: set[str] = set()

    def find_spec(self, name: str, path: Any, target: Any = None) -> Any:
        watched = name in IMPORTS or name == "plotly.io" or name.split(".")[0] in OWN_IMPORTS
        if not watched or name in self._busy:
            return None
        self._busy.add(name)
        try:
            for finder in sys.meta_path:
                if finder is self or not hasattr(finder, "find_spec"):
                    continue
                spec = finder.find_spec(name, path, target)
                if spec is not None:
                    break
            else:
                return None
        finally:
            self._busy.discard(name)
        if spec.loader is not None and hasattr(spec.loader, "exec_module"):
            spec.loader = _Loader(spec.loader, name)
        return spec


def _hook_script_runs() -> None:
    """Time every script run (and fragment run) with its session's id."""
    from streamlit.runtime.scriptrunner import script_runner

    run = script_runner.ScriptRunner._run_script

    @functools.wraps(run)
    def timed_run(self: Any, rerun_data: Any) -> Any:
        _local.session = self._session_id
        kind = "fragment run" if getattr(rerun_data, "fragment_id_queue", None) else "script run"
        with _span(kind, kind):
            return run(self, rerun_data)

    script_runner.ScriptRunner._run_script = timed_run


def _watch_stalls() -> None:
    """Log every time this thread, asking to wake after 5 ms, woke over 50 ms late."""
    while True:
        asked = time.monotonic() + 0.005
        time.sleep(0.005)
        woke = time.monotonic()
        if woke - asked > STALL_AFTER:
            _write({"cat": "stall", "name": "stall", "t0": asked, "t1": woke,
                    "excl": woke - asked, "thread": "stall-watch", "session": None})  # fmt: skip


def main() -> None:
    """Install the hooks, then run Streamlit's command line with this script's arguments."""
    sys.meta_path.insert(0, _Finder())
    _hook_script_runs()
    threading.Thread(target=_watch_stalls, name="stall-watch", daemon=True).start()
    from streamlit.web import cli

    sys.argv = ["streamlit", *sys.argv[1:]]
    cli.main(prog_name="streamlit")


if __name__ == "__main__":
    main()
