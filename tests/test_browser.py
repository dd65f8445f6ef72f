"""End to end in a real browser: ``streamlit run app.py`` driven by Playwright and Chromium.

Opens every page, trains one short run on a small demo dataset, uploads a photo and reads the
prediction; saves a screenshot of each page in ``test-artifacts/``. Skips (saying why) when
Debian's Chromium or the playwright package is missing.
"""

from __future__ import annotations

import io
import os
import re
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from journey import BROWSER_ARGS, CHROMIUM, serve

from catdog.data.cartoon import draw_animal
from catdog.data.demo import generate_demo_dataset
from catdog.data.paths import demo_dataset_dir

pytestmark = [pytest.mark.browser, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[1]
ARTIFACTS = ROOT / "test-artifacts"
VIEWPORT = {"width": 1366, "height": 768}  # a laptop screen


def _serve(home: Path, **env_extra: str) -> Iterator[str]:
    """``streamlit run app.py`` on a free port with ``home`` as the data home (journey.serve);
    yields its URL. Skips without Debian's Chromium or Playwright."""
    if not CHROMIUM.exists():
        pytest.skip(
            f"browser test needs Debian's Chromium at {CHROMIUM} (apt-get install chromium)"
        )
    pytest.importorskip("playwright.sync_api", reason="browser test needs `pip install playwright`")
    with serve(home, **env_extra) as url:
        yield url


def _home_with_demo(tmp_path_factory: pytest.TempPathFactory, name: str) -> Path:
    """A fresh data home holding a small demo dataset."""
    home = tmp_path_factory.mktemp(name)
    os.environ["CATDOG_HOME"] = str(home)  # for generating the demo data
    try:
        generate_demo_dataset(demo_dataset_dir(), counts=(20, 10, 10))
    finally:
        del os.environ["CATDOG_HOME"]
    return home


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """``streamlit run app.py`` on a free port, with a fresh data home holding a small demo."""
    yield from _serve(_home_with_demo(tmp_path_factory, "browser_home"))


@pytest.fixture(scope="module")
def hosted_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The same, in hosted mode (``CATDOG_HOSTED=1``): the demo is the shared dataset."""
    yield from _serve(_home_with_demo(tmp_path_factory, "hosted_home"), CATDOG_HOSTED="1")


def _idle(page, timeout: float = 60.0) -> None:
    """Wait until the script has stopped running (no "Running..." icon) for a whole second.

    A fragment's rerun can be followed at once by a full rerun, so one quiet moment is not
    enough.
    """
    deadline = time.monotonic() + timeout
    quiet_since = None
    while time.monotonic() < deadline:
        busy = (
            page.locator('[data-test-script-state="running"]').count()
            or page.locator('[data-testid="stStatusWidgetRunningIcon"]').count()
        )
        if busy:
            quiet_since = None
        elif quiet_since is None:
            quiet_since = time.monotonic()
        elif time.monotonic() - quiet_since > 1.0:
            return
        page.wait_for_timeout(100)
    raise AssertionError(f"the app was still running after {timeout:.0f} s")


def _shot(page, name: str) -> Path:
    """Screenshot the whole page at laptop width (Streamlit scrolls inside its main element, so
    the window is made as tall as the page first)."""
    ARTIFACTS.mkdir(exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    page.mouse.move(VIEWPORT["width"] // 2, 2)  # no hover effects (Plotly toolbar, sidebar)
    height = page.evaluate(
        "() => document.querySelector('[data-testid=\"stMain\"]')?.scrollHeight ?? 768"
    )
    page.set_viewport_size({"width": VIEWPORT["width"], "height": max(768, min(height, 6000))})
    page.wait_for_timeout(600)  # charts re-lay out to the new size
    page.screenshot(path=str(path))
    page.set_viewport_size(VIEWPORT)
    return path


def _no_exceptions(page) -> None:
    errors = page.locator('[data-testid="stException"]')
    assert errors.count() == 0, errors.first.inner_text()


def _cat_png() -> bytes:
    from PIL import Image

    image = draw_animal("cat", np.random.default_rng(7), (180, 160))
    buffer = io.BytesIO()
    Image.Image.save(image, buffer, "PNG")
    return buffer.getvalue()


def _set_number(page, label: str, value: int) -> None:
    field = page.get_by_label(label, exact=True)
    field.fill(str(value))
    field.press("Enter")
    _idle(page)


def test_every_page_in_a_browser(server: str) -> None:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=BROWSER_ARGS)
        page = browser.new_page(viewport=VIEWPORT)
        try:
            started = time.monotonic()
            page.goto(server)
            page.get_by_text("Training runs:").wait_for(timeout=30_000)  # the last element
            landing_seconds = time.monotonic() - started
            _idle(page)
            _no_exceptions(page)
            _shot(page, "1-home")
            print(f"landing page: {landing_seconds:.2f} s in the browser")
            assert landing_seconds < 15, f"landing page took {landing_seconds:.1f} s"

            page.goto(f"{server}/dataset")
            page.get_by_text("Images per split and class").wait_for(timeout=30_000)
            _idle(page)
            _no_exceptions(page)
            _shot(page, "2-dataset")

            page.goto(f"{server}/augmentation")
            page.get_by_text("Variant seed").wait_for(timeout=60_000)
            _idle(page)
            _no_exceptions(page)
            _shot(page, "3-augmentation")

            page.goto(f"{server}/train")
            page.get_by_text("Total parameters").wait_for(timeout=60_000)
            _idle(page)
            _set_number(page, "Epochs", 2)
            _set_number(page, "Image size (px)", 48)
            _set_number(page, "Batch size", 8)
            page.get_by_role("button", name="Start training").click()
            page.get_by_text(re.compile(r"completed after \d+ epoch")).wait_for(timeout=120_000)
            _idle(page)
            _no_exceptions(page)
            _shot(page, "4-train")
            run_id = page.locator("code").first.inner_text()

            refreshed = browser.new_page(viewport=VIEWPORT)  # a refresh is a new session
            refreshed.goto(f"{server}/train")
            refreshed.get_by_role("button", name="Watch").first.click()
            refreshed.get_by_text(f"Run {run_id} completed after 2 epoch(s).").wait_for()
            _idle(refreshed)
            refreshed.close()

            page.get_by_role("link", name="History").first.click()
            page.get_by_text("Training and validation accuracy").first.wait_for(timeout=30_000)
            _idle(page)
            _no_exceptions(page)
            page.get_by_role("button", name="Evaluate on the test split").click()
            page.get_by_text("Misclassified:").wait_for(timeout=60_000)
            _idle(page)
            _no_exceptions(page)
            _shot(page, "5-history")
            matrix = page.locator('[data-testid="stPlotlyChart"]').filter(has_text="Confusion")
            matrix.locator("g.scatterlayer path.point").nth(1).click(force=True)  # cats → dogs
            opened = re.compile(r"Showing \d+ of \d+, most confident first|No image in this cell")
            page.get_by_text(opened).wait_for(timeout=30_000)  # the cell's photos, if any
            _idle(page)
            _no_exceptions(page)

            page.goto(f"{server}/predict")
            page.get_by_text("Upload photos to classify them").wait_for(timeout=30_000)
            page.locator('input[type="file"]').first.set_input_files(
                files=[{"name": "my-cat.png", "mimeType": "image/png", "buffer": _cat_png()}]
            )
            page.get_by_text("my-cat.png").first.wait_for(timeout=60_000)
            _idle(page)
            _no_exceptions(page)
            bars = page.locator('[data-testid="stProgress"]')
            bars.nth(1).wait_for(timeout=10_000)
            assert bars.count() == 2  # one probability bar per class
            text = page.locator('[data-testid="stMain"]').inner_text()
            assert "cats:" in text and "dogs:" in text and "%" in text
            _shot(page, "6-predict")
        except Exception:
            _shot(page, "failure")  # what the page showed when the test gave up
            raise
        finally:
            browser.close()


def _token(page) -> str:
    """The workspace token in the page's URL (waiting for the app to put it there)."""
    page.wait_for_url(re.compile(r"[?&]ws=[A-Za-z0-9_-]{44}"), timeout=30_000)
    return re.search(r"[?&]ws=([A-Za-z0-9_-]{44})", page.url).group(1)


def _main_text(page) -> str:
    return page.locator('[data-testid="stMain"]').inner_text()


def test_two_visitors_of_a_hosted_server_keep_to_their_own_workspaces(hosted_server: str) -> None:
    """Two browsers (two Playwright contexts: no shared cookies or storage) on one hosted
    server: neither sees, stops, downloads or deletes what the other made."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=BROWSER_ARGS)
        a = browser.new_context(viewport=VIEWPORT).new_page()
        b = browser.new_context(viewport=VIEWPORT).new_page()
        try:
            for page in (a, b):
                page.goto(hosted_server)
                page.get_by_text("shared demo server (hosted mode)").wait_for(timeout=30_000)
            token_a, token_b = _token(a), _token(b)
            assert token_a != token_b

            a.goto(f"{hosted_server}/train?ws={token_a}")
            a.get_by_text("Total parameters").wait_for(timeout=60_000)
            _idle(a)
            _set_number(a, "Epochs", 2)
            _set_number(a, "Image size (px)", 48)
            _set_number(a, "Batch size", 8)
            a.get_by_role("button", name="Start training").click()
            a.get_by_text("Run ").first.wait_for(timeout=30_000)

            b.goto(f"{hosted_server}/train?ws={token_b}")  # while A trains
            b.get_by_text("Total parameters").wait_for(timeout=60_000)
            _idle(b)
            _no_exceptions(b)
            for name in ("Watch", "Stop training", "Cancel"):
                assert b.get_by_role("button", name=name).count() == 0, name

            a.get_by_text(re.compile(r"completed after \d+ epoch")).wait_for(timeout=120_000)
            _idle(a)
            run_id = a.locator("code").first.inner_text()
            assert _token(a) == token_a

            b.goto(f"{hosted_server}/history?ws={token_b}")
            b.get_by_text("No training run yet.").wait_for(timeout=30_000)
            _idle(b)
            assert b.locator('[data-testid="stDownloadButton"]').count() == 0
            assert run_id not in _main_text(b)
            b.goto(f"{hosted_server}/predict?ws={token_b}")
            b.get_by_text("No trained model yet").wait_for(timeout=30_000)
            _shot(b, "hosted-b-predict")

            a.goto(f"{hosted_server}/history?ws={token_a}")
            a.get_by_text("Training and validation accuracy").first.wait_for(timeout=30_000)
            a.reload()  # a refresh keeps the workspace
            a.get_by_text("Training and validation accuracy").first.wait_for(timeout=30_000)
            _idle(a)
            _no_exceptions(a)
            assert _token(a) == token_a
            assert a.locator('[data-testid="stDownloadButton"]').count() == 2
            _shot(a, "hosted-a-history")
            a.get_by_role("button", name="Delete…").click()
            a.get_by_role("button", name="Yes, delete it").click()
            a.get_by_text(f"Run {run_id} was deleted.").wait_for(timeout=30_000)
            _idle(a)
            _no_exceptions(a)
        except Exception:
            _shot(a, "hosted-failure-a")
            _shot(b, "hosted-failure-b")
            raise
        finally:
            browser.close()
