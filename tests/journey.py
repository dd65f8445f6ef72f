"""A new user's journey in a real browser: open the app, make a dataset from loose photos (and
a camera photo), train the recommended recipe, predict with the first model saved.

Shared by the browser test (``tests/test_first_model.py``) and the benchmark
(``benchmarks/first_model.py``), so what is measured is what is tested. Every click a person
would make is made through :meth:`Journey.click` and counted (a file dialog or a drag and drop
counts one click per class; typing a name counts the click into its field).
"""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = Path("/usr/bin/chromium")
BROWSER_ARGS = [  # headless on a machine whose network is closed
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
# ... and a camera that shows a moving test pattern, allowed without asking.
CHROMIUM_ARGS = [
    *BROWSER_ARGS,
    "--use-fake-device-for-media-stream",
    "--use-fake-ui-for-media-stream",
]
VIEWPORT = {"width": 1366, "height": 900}
SERVERS: dict[str, subprocess.Popen] = {}  # the process serving each URL serve() yields
Photo = Path | tuple[str, bytes]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextmanager
def serve(home: Path, cpus: str | None = None, **env_extra: str) -> Iterator[str]:
    """``streamlit run app.py`` on a free port with ``home`` as the data home, pinned to the
    CPUs ``cpus`` (``taskset -c``) if given; yields its URL and stops it afterwards."""
    env = {**os.environ, "CATDOG_HOME": str(home), "TF_CPP_MIN_LOG_LEVEL": "2", **env_extra}
    port = free_port()
    command = [sys.executable, "-m", "streamlit", "run", "app.py", "--server.port", str(port),
               "--server.address", "127.0.0.1", "--server.headless", "true"]  # fmt: skip
    if cpus:
        command = ["taskset", "-c", cpus, *command]
    log_path = home / "streamlit.log"
    with log_path.open("w") as log:
        proc = subprocess.Popen(command, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
        url = f"http://127.0.0.1:{port}"
        SERVERS[url] = proc
        try:
            deadline = time.monotonic() + 60
            while not _healthy(url):
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"streamlit did not start:\n{log_path.read_text()}")
                time.sleep(0.3)
            yield url
        finally:
            SERVERS.pop(url, None)
            proc.terminate()
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()


def _healthy(url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{url}/_stcore/health", timeout=1) as response:
            return response.status == 200
    except OSError:
        return False


def _files(photos: Sequence[Photo]) -> list:
    """Playwright's ``set_input_files`` form of paths and (name, bytes) photos."""
    out = []
    for photo in photos:
        if isinstance(photo, tuple):
            out.append({"name": photo[0], "mimeType": "image/jpeg", "buffer": photo[1]})
        else:
            out.append(str(photo))
    return out


@dataclass
class Journey:
    """One browser tab going through the app, counting clicks and timing steps."""

    page: object
    url: str
    clicks: int = 0
    marks: dict[str, float] = field(default_factory=dict)
    alerts: list[str] = field(default_factory=list)  # warnings shown after each upload

    def click(self, locator: object) -> None:
        """Click as a person would, and count it."""
        locator.click()
        self.clicks += 1

    def mark(self, name: str) -> None:
        self.marks[name] = time.monotonic()

    def idle(self, timeout: float = 120.0) -> None:
        """Wait until the script has stopped running for a whole second."""
        deadline, quiet_since = time.monotonic() + timeout, None
        while time.monotonic() < deadline:
            busy = self.page.locator('[data-testid="stStatusWidgetRunningIcon"]').count()
            if busy:
                quiet_since = None
            elif quiet_since is None:
                quiet_since = time.monotonic()
            elif time.monotonic() - quiet_since > 1.0:
                return
            self.page.wait_for_timeout(100)
        raise AssertionError(f"the app was still running after {timeout:.0f} s")

    def errors(self) -> list[str]:
        """Tracebacks shown on the page (there should be none)."""
        found = self.page.locator('[data-testid="stException"]')
        return [found.nth(k).inner_text() for k in range(found.count())]

    def text(self) -> str:
        return self.page.locator('[data-testid="stMain"]').inner_text()

    def open(self, query: str = "") -> None:
        self.mark("open")
        self.page.goto(self.url + query)
        self.page.get_by_text("How to start").wait_for(timeout=60_000)
        self.idle()

    def go(self, title: str) -> None:
        """Open a page from the sidebar's navigation."""
        nav = self.page.locator('[data-testid="stSidebarNav"]')
        self.click(nav.get_by_role("link", name=title, exact=True))
        self.idle()

    def _field(self, key_prefix: str, k: int) -> object:
        return self.page.locator(f'[class*="st-key-{key_prefix}"]:visible').nth(k)

    def new_dataset(self, classes: dict[str, Sequence[Photo]], camera: str | None = None) -> str:
        """Make a dataset on the Dataset page's New dataset tab: the classes named, their
        photos uploaded (and one camera photo for class ``camera``); returns what it says."""
        self.go("Dataset")
        self.click(self.page.get_by_role("tab", name="New dataset"))
        self.idle()
        for _ in range(len(classes) - 2):
            self.click(self.page.locator(".st-key-builder_add_class button"))
            self.idle()
        for k, (name, photos) in enumerate(classes.items()):
            box = self._field("builder_class_", k).locator("input")
            self.click(box)
            box.fill(name)
            box.press("Enter")
            self.idle()
            before = self.photos_shown(k)
            upload = self._field("builder_upload_", k).locator('input[type="file"]')
            upload.set_input_files(_files(photos))
            self.clicks += 1  # the file dialog (or a drag and drop)
            self.wait_for_more(k, before)
            alerts = self.page.locator('[data-testid="stAlert"]:visible')
            self.alerts += [alerts.nth(i).inner_text() for i in range(alerts.count())]
            if name == camera:
                self.take_photo(k)
        self.click(self.page.locator(".st-key-builder_create button"))
        done = self.page.get_by_text("It is the active dataset now.")
        done.wait_for(timeout=120_000)
        self.idle()
        return done.inner_text()

    def photos_shown(self, k: int) -> int:
        """The number of photos class ``k`` shows it has."""
        counts = self.page.get_by_text(re.compile(r"^\d+ photo\(s\)$"))
        return int(counts.nth(k).inner_text().split()[0]) if counts.count() > k else 0

    def wait_for_more(self, k: int, before: int, timeout: float = 120.0) -> None:
        """Wait until class ``k`` shows more photos than ``before`` (an upload or a camera
        photo has been taken in), and the app is idle again."""
        deadline = time.monotonic() + timeout
        while self.photos_shown(k) <= before:
            if time.monotonic() > deadline:
                raise AssertionError(f"class {k} still shows {before} photos")
            self.page.wait_for_timeout(200)
        self.idle()

    def take_photo(self, k: int) -> None:
        """Turn class ``k``'s camera on and take one photo with it."""
        self.click(self._field("builder_camera_on_", k).locator("label"))
        self.idle()
        take = self.page.get_by_role("button", name="Take Photo")
        take.wait_for(timeout=30_000)
        self.page.wait_for_timeout(1500)  # the stream starts
        before = self.photos_shown(k)
        self.click(take)
        self.wait_for_more(k, before)

    def train(self, timeout_s: float = 600.0, epochs: int | None = None) -> str:
        """Start the recommended recipe (``epochs`` of it, if given) on the Train page and wait
        for its first model; returns the recommendation's sentence."""
        self.go("Train")
        start = self.page.get_by_role("button", name="Start training")
        start.wait_for(timeout=120_000)
        self.idle()
        if epochs is not None:
            box = self.page.get_by_label("Epochs", exact=True)
            self.click(box)
            box.fill(str(epochs))
            box.press("Enter")
            self.idle()
        said = self.page.locator('[data-testid="stAlert"]', has_text="Recommended:").first
        sentence = said.inner_text() if said.count() else ""
        self.mark("train")
        self.click(start)
        self.predict_link().wait_for(timeout=timeout_s * 1000)
        self.mark("first model")
        return sentence

    def predict_link(self) -> object:
        """The Train page's link to the Predict page: "Try it on the Predict page" while the run
        trains, "Predict with it" once it has ended (a short run may end before the page shows
        the first)."""
        name = re.compile("Try it on the Predict page|Predict with it")
        return self.page.get_by_role("link", name=name).first

    def predict(self, photo: Photo, classes: int) -> str:
        """Follow the first model's link to the Predict page and classify ``photo``; returns
        the page's text."""
        self.click(self.predict_link())
        upload = self.page.locator('[data-testid="stFileUploader"] input[type="file"]').first
        upload.wait_for(state="attached", timeout=60_000)
        upload.set_input_files(_files([photo]))
        self.clicks += 1
        bars = self.page.locator('[data-testid="stProgress"]')
        bars.nth(classes - 1).wait_for(timeout=120_000)
        self.mark("prediction")
        self.idle()
        return self.text()

    def seconds(self, since: str, until: str) -> float:
        return self.marks[until] - self.marks[since]
