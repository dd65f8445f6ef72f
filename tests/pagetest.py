"""Driving the dashboard with Streamlit's AppTest, as a browser session would.

Test modules that open pages import :func:`navigation_only` (an autouse fixture) and
:func:`open_page` from here.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from streamlit.runtime.pages_manager import PagesManager
from streamlit.testing.v1 import AppTest
from streamlit.testing.v1 import app_test as app_test_module

ROOT = Path(__file__).resolve().parents[1]
APP = ROOT / "app.py"
PAGES = {
    "dataset": "pages/1_dataset.py",
    "augmentation": "pages/2_augmentation.py",
    "train": "pages/3_train.py",
    "history": "pages/4_history.py",
    "predict": "pages/5_predict.py",
}


class NavigationOnly(PagesManager):
    """Keep AppTest out of Streamlit's legacy ``pages/`` folder mode.

    Still needed with Streamlit 1.67: AppTest resets ``PagesManager.uses_pages_directory`` at
    every run (``app_test.py``), so each run would run the page file alone; the page then
    reruns through app.py (ui/frame.py), and a button clicked in that run is dropped with the
    rerun. A real server decides the mode once and the first page run ends it for good, so
    the app itself needs no patch (tests/test_frame.py opens pages without this one).
    """

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        PagesManager.uses_pages_directory = False


@pytest.fixture(autouse=True)
def navigation_only(monkeypatch: pytest.MonkeyPatch) -> None:
    """Run every page through app.py's navigation (see :class:`NavigationOnly`)."""
    monkeypatch.setattr(app_test_module, "PagesManager", NavigationOnly)


def open_page(
    page: str | None = None, query: dict[str, str] | None = None, **state: Any
) -> AppTest:
    """A new browser session on app.py (with the URL's ``query`` parameters), optionally
    switched to ``page`` with session state."""
    at = AppTest.from_file(str(APP), default_timeout=90)
    at.query_params.update(query or {})
    for key, value in state.items():
        at.session_state[key] = value
    at.run()
    if page is not None:
        at.switch_page(PAGES[page]).run()
    assert not at.exception, [e.value for e in at.exception]
    return at


MARKDOWN_ESCAPES = r"\\([\\`*_{}\[\]()#+\-.!|<>~$:])"  # a backslash before ASCII punctuation


def literal(markdown: str) -> str:
    """What a Markdown text shows, asserting it is shown as it is: no character Streamlit's
    Markdown acts on (emphasis, code, links, HTML, tables, LaTeX, :colour[] and :emoji:) is
    left unescaped."""
    bare = re.sub(MARKDOWN_ESCAPES, "", markdown)
    assert not re.search(r"[\\`*_\[\]<>~$|:]", bare), f"Markdown acts on {markdown!r}"
    return re.sub(MARKDOWN_ESCAPES, r"\1", markdown)
