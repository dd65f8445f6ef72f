"""The frame pages run in, through AppTest: a page file run alone (Streamlit's legacy ``pages/``
folder mode, which AppTest turns on at every run) reruns through app.py before its own code;
a hosted server whose upload limit is over hosted mode's cap does not serve.

No patch on Streamlit here (unlike tests/pagetest.py's ``NavigationOnly``).
"""

from __future__ import annotations

import pytest
from pagetest import PAGES, ROOT
from streamlit import config as streamlit_config
from streamlit.testing.v1 import AppTest
from test_hosting import _error_details_restored, hosted_mode  # noqa: F401 - fixtures

from catdog.data.workspace_links import open_link
from ui.uploads import upload_limit_mb


def _lone_run(page: str, query: dict[str, str] | None = None) -> AppTest:
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=90)
    at.query_params.update(query or {})
    at.run()
    return at.switch_page(PAGES[page]).run()


@pytest.mark.usefixtures("hosted_mode")
def test_a_page_run_alone_reruns_through_app_py_in_its_workspace() -> None:
    at = _lone_run("history")
    assert not at.exception, [e.value for e in at.exception]
    sidebar = [c.value for c in at.sidebar.caption]
    assert any("this page's link brings you back" in c for c in sidebar), sidebar
    assert open_link(at.query_params["ws"]) and at.title[0].value == "History"
    assert "direct_page_runs" not in at.session_state  # the rerun went through app.py


@pytest.fixture
def upload_limit() -> None:
    before = streamlit_config.get_option("server.maxUploadSize")
    yield
    streamlit_config.set_option("server.maxUploadSize", before)


@pytest.mark.usefixtures("hosted_mode", "upload_limit")
def test_a_hosted_server_over_the_upload_cap_does_not_serve(
    caplog: pytest.LogCaptureFixture,
) -> None:
    assert upload_limit_mb() == 50 and upload_limit_mb(20) == 20
    streamlit_config.set_option("server.maxUploadSize", 1024)
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=90).run()
    (error,) = at.error
    assert "Streamlit accepts uploads of up to 1024 MB (server.maxUploadSize) but hosted " in (
        error.value
    )
    assert "--server.maxUploadSize 50" in error.value and not at.title
    assert "1024 MB" in caplog.text  # the host sees it in the log too
    assert upload_limit_mb() == 50  # the widgets still say the cap


@pytest.mark.usefixtures("upload_limit")
def test_locally_a_larger_limit_is_the_users_to_set() -> None:
    streamlit_config.set_option("server.maxUploadSize", 1024)
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=90).run()
    assert not at.error and at.title and upload_limit_mb() == 1024 and upload_limit_mb(50) == 50
