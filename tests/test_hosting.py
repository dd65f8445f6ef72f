"""Hosted demo mode: its switch and limits, private workspaces, the training queue, expiry.

Library tests call catdog directly; page tests drive app.py with Streamlit's AppTest, one
AppTest per visitor (each its own session, as two browsers would be). The browser test with
two visitors on one real server is in test_browser.py.
"""

from __future__ import annotations

import os

import pytest
from streamlit.testing.v1 import AppTest
from streamlit.testing.v1 import app_test as app_test_module
from test_pages import APP, PAGES, _NavigationOnly, texts

from catdog import hosting


@pytest.fixture(autouse=True)
def _navigation_only(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(app_test_module, "PagesManager", _NavigationOnly)


@pytest.fixture
def hosted_mode(monkeypatch: pytest.MonkeyPatch) -> hosting.HostedSettings:
    """Hosted mode on, with its default limits."""
    monkeypatch.setenv(hosting.ENV_VAR, "1")
    for name in list(os.environ):
        if name.startswith(hosting.ENV_PREFIX):
            monkeypatch.delenv(name)
    return hosting.settings()


def visit(page: str | None = None, query: dict[str, str] | None = None, **state) -> AppTest:
    """A new browser session on app.py (with the URL's query parameters), on ``page``."""
    at = AppTest.from_file(str(APP), default_timeout=90)
    at.query_params.update(query or {})
    for key, value in state.items():
        at.session_state[key] = value
    at.run()
    if page is not None:
        at.switch_page(PAGES[page]).run()
    assert not at.exception, [e.value for e in at.exception]
    return at


# ------------------------------------------------------------------------ 1. the switch


def test_hosted_mode_is_off_unless_switched_on() -> None:
    assert hosting.hosted({}) is False
    assert hosting.hosted({"CATDOG_HOSTED": "0"}) is False
    assert hosting.hosted({"CATDOG_HOSTED": "1"}) is True
    assert hosting.hosted({"CATDOG_HOSTED": " True "}) is True
    with pytest.raises(hosting.HostingError, match=r"CATDOG_HOSTED must be 1 .* got 'maybe'"):
        hosting.hosted({"CATDOG_HOSTED": "maybe"})


def test_settings_have_defaults_each_overridden_by_its_variable() -> None:
    defaults = hosting.HostedSettings.from_env({})
    assert (defaults.max_trainings, defaults.max_epochs, defaults.max_image_size) == (1, 30, 128)
    assert (defaults.max_batch_size, defaults.max_training_minutes) == (64, 10.0)
    assert (defaults.max_dataset_images, defaults.max_dataset_mb) == (3000, 200.0)
    assert (defaults.max_upload_mb, defaults.max_predict_photos) == (50.0, 20)
    assert (defaults.workspace_idle_hours, defaults.workspace_quota_mb) == (24.0, 300.0)
    assert defaults.max_upload_bytes == 50 * 1024 * 1024
    changed = hosting.HostedSettings.from_env(
        {"CATDOG_HOSTED_MAX_EPOCHS": "50", "CATDOG_HOSTED_WORKSPACE_IDLE_HOURS": "0.5"}
    )
    assert (changed.max_epochs, changed.workspace_idle_hours) == (50, 0.5)
    with pytest.raises(hosting.HostingError, match="CATDOG_HOSTED_MAX_EPOCHS must be a whole"):
        hosting.HostedSettings.from_env({"CATDOG_HOSTED_MAX_EPOCHS": "2.5"})
    with pytest.raises(hosting.HostingError, match=r"MAX_UPLOAD_MB must be a number > 0, got '0'"):
        hosting.HostedSettings.from_env({"CATDOG_HOSTED_MAX_UPLOAD_MB": "0"})


def test_home_page_says_hosted_mode_and_its_limits(hosted_mode) -> None:
    at = visit()
    assert "shared demo server (hosted mode)" in texts(at)
    assert "runs of at most 30 epochs, 128 px, batch 64 and 10 minutes" in texts(at)


def test_home_page_locally_says_nothing_of_hosting() -> None:
    assert "hosted mode" not in texts(visit())


def test_hosted_mode_can_come_from_streamlit_secrets(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(hosting.ENV_VAR, raising=False)
    monkeypatch.delenv("CATDOG_HOSTED_MAX_EPOCHS", raising=False)
    at = AppTest.from_file(str(APP), default_timeout=90)
    at.secrets["CATDOG_HOSTED"] = True
    at.secrets["CATDOG_HOSTED_MAX_EPOCHS"] = 12
    try:
        at.run()
        assert not at.exception, [e.value for e in at.exception]
        assert "runs of at most 12 epochs" in texts(at)
    finally:
        os.environ.pop(hosting.ENV_VAR, None)
        os.environ.pop("CATDOG_HOSTED_MAX_EPOCHS", None)
