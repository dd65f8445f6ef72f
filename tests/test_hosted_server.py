"""A fresh hosted server (``CATDOG_HOSTED=1 streamlit run app.py``) at its edges: the first visits
Streamlit serves in its legacy ``pages/`` folder mode, and uploads refused where the bytes
arrive (Streamlit's upload route), before they can reach the server's memory.

Each test starts its own server, so its first visits are a fresh server's.
"""

from __future__ import annotations

import contextlib
import http.client
import re
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from journey import BROWSER_ARGS, CHROMIUM, SERVERS
from test_browser import VIEWPORT, _home_with_demo, _serve

from ui.frame import SOMETHING_WENT_WRONG

pytestmark = [pytest.mark.browser, pytest.mark.slow]
MB = 1024 * 1024
FRAME = "this page's link brings you back, with full control"  # app.py's sidebar, hosted mode
TITLES = {"dataset": "Dataset", "augmentation": "Augmentation", "train": "Train",
          "history": "History", "predict": "Predict"}  # fmt: skip


def _fresh_server(tmp_path_factory: pytest.TempPathFactory, name: str) -> Iterator[str]:
    yield from _serve(_home_with_demo(tmp_path_factory, name), CATDOG_HOSTED="1")


def _peak_rss_mb(url: str) -> float:
    """The server process's peak resident memory so far (``VmHWM``), in MB."""
    status = Path(f"/proc/{SERVERS[url].pid}/status").read_text()
    return int(re.search(r"VmHWM:\s+(\d+) kB", status).group(1)) / 1024


def _quiet_peak_rss_mb(url: str, quiet: float = 3.0, at_most: float = 90.0) -> float:
    """The server's peak memory once it has not grown for ``quiet`` seconds (it warms up its
    libraries in the background after its first pages)."""
    deadline, peak, since = time.monotonic() + at_most, _peak_rss_mb(url), time.monotonic()
    while time.monotonic() < deadline and time.monotonic() - since < quiet:
        time.sleep(0.5)
        if (now := _peak_rss_mb(url)) > peak:
            peak, since = now, time.monotonic()
    return peak


def _first_visits(url: str, keys: list[str]) -> list[tuple[str, str, str]]:
    """Open ``keys`` (page URL paths) at once, each in its own fresh browser context; return
    (key, URL, what the page shows) for each once its title is there."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=BROWSER_ARGS)
        try:
            pages = [browser.new_context(viewport=VIEWPORT).new_page() for _ in keys]
            for page, key in zip(pages, keys, strict=True):  # all requested before any waits
                page.goto(f"{url}/{key}", wait_until="commit")
            seen = []
            for page, key in zip(pages, keys, strict=True):
                page.get_by_role("heading", name=TITLES[key]).first.wait_for(timeout=120_000)
                page.get_by_text(FRAME).wait_for(timeout=60_000)
                page.wait_for_url(re.compile(r"[?&]ws=[A-Za-z0-9_-]{44}"), timeout=30_000)
                seen.append((key, page.url, page.locator("body").inner_text()))
            return seen
        finally:
            browser.close()


@pytest.fixture
def fresh_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    yield from _fresh_server(tmp_path_factory, "fresh_hosted")


@pytest.mark.parametrize("keys", [["train", "history", "dataset"], ["predict", "augmentation"]])
def test_first_visits_of_a_fresh_server_enter_the_workspace_and_the_guard(
    fresh_server: str, keys: list[str]
) -> None:
    """Concurrent first visits straight to a page's URL, before any session has run app.py:
    every one is drawn inside app.py's frame (its sidebar, a workspace link in the URL), none
    shows a traceback, and each visitor gets a workspace of their own."""
    seen = _first_visits(fresh_server, keys)
    links = {re.search(r"ws=([A-Za-z0-9_-]{44})", url).group(1) for _, url, _ in seen}
    assert len(links) == len(keys)
    for key, url, text in seen:
        assert f"/{key}?" in url, url
        assert "Traceback" not in text and SOMETHING_WENT_WRONG not in text, (key, text[:500])


@contextmanager
def _browser_session(url: str) -> Iterator[tuple[str, str, str]]:
    """A browser session's id, XSRF token and cookie, as its uploader sends them (the session
    stays open in the block): upload a small file with the Dataset page's uploader and read the
    request the browser made."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=BROWSER_ARGS)
        try:
            context = browser.new_context(viewport=VIEWPORT)
            page = context.new_page()
            page.goto(f"{url}/dataset")
            page.locator('input[type="file"]').first.wait_for(state="attached", timeout=120_000)
            with page.expect_request(re.compile(r"/_stcore/upload_file/")) as sent:
                page.locator('input[type="file"]').first.set_input_files(
                    files=[{"name": "a.zip", "mimeType": "application/zip", "buffer": b"PK"}]
                )
            request = sent.value
            session = urlsplit(request.url).path.split("/")[-2]
            cookie = "; ".join(f"{c['name']}={c['value']}" for c in context.cookies())
            yield session, request.headers.get("x-xsrftoken", ""), cookie
        finally:
            browser.close()


def _put(url: str, session: str, xsrf: str, cookie: str, size: int, chunked: bool) -> int:
    """PUT a file of ``size`` zero bytes to Streamlit's upload route as the browser does
    (multipart form), streamed from a generator; the HTTP status of the answer."""
    boundary = uuid.uuid4().hex
    head = (f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="big.zip"'
            f"\r\nContent-Type: application/zip\r\n\r\n").encode()  # fmt: skip
    tail = f"\r\n--{boundary}--\r\n".encode()

    def body() -> Iterator[bytes]:
        yield head
        for start in range(0, size, MB):
            yield bytes(min(MB, size - start))
        yield tail

    headers = {"Content-Type": f"multipart/form-data; boundary={boundary}",
               "X-Xsrftoken": xsrf, "Cookie": cookie}  # fmt: skip
    if not chunked:
        headers["Content-Length"] = str(len(head) + size + len(tail))
    parts = urlsplit(url)
    connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=60)
    try:
        path = f"/_stcore/upload_file/{session}/{uuid.uuid4()}"
        # The server may refuse mid-stream and close: its answer is still readable.
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            connection.request("PUT", path, body=body(), headers=headers, encode_chunked=chunked)
        return connection.getresponse().status
    finally:
        connection.close()


def test_an_upload_over_the_cap_is_refused_where_it_arrives(fresh_server: str) -> None:
    """The shipped config's limit is hosted mode's 50 MB: a 120 MB upload is refused at
    Streamlit's upload route, declared or streamed without a length, and the server's memory
    does not grow by it; a session cannot pile up files under the cap either."""
    with _browser_session(fresh_server) as (session, xsrf, cookie):
        before = _quiet_peak_rss_mb(fresh_server)  # after the server's own warm-up
        assert _put(fresh_server, session, xsrf, cookie, 120 * MB, chunked=False) == 413
        assert _put(fresh_server, session, xsrf, cookie, 120 * MB, chunked=True) == 413
        time.sleep(0.5)
        grown = _peak_rss_mb(fresh_server) - before
        assert grown < 40, f"the server's peak memory grew by {grown:.0f} MB"
        # Under the per-file cap, but a session holds at most two uploads' worth at once.
        statuses = [_put(fresh_server, session, xsrf, cookie, 45 * MB, chunked=False)
                    for _ in range(3)]  # fmt: skip
        assert statuses == [204, 204, 413]
