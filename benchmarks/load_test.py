"""Load test of a hosted catdog server: several visitors at once, what each of them waits for.

    python benchmarks/load_test.py                       # 4 visitors, 2 epochs (3–4 min)
    python benchmarks/load_test.py --visitors 2 --epochs 1   # a quick check
    python benchmarks/load_test.py --port 8600           # the server on a given port

The server inherits the environment, so Streamlit's own settings can be compared, e.g.
``STREAMLIT_RUNNER_POST_SCRIPT_GC=false python benchmarks/load_test.py``.

Prepares a fresh data home with catdog's own command line (the built-in demo dataset, and one
1-epoch run on it that every visitor sees as a shared example), starts one real ``streamlit
run app.py`` with ``CATDOG_HOSTED=1`` on it (``hosted_memory.start_server``), and drives it with
async Playwright and Debian's Chromium: one browser context per visitor (no shared cookies:
each gets its own private ``?ws=`` workspace), all visitors at once. Each visitor opens Home,
then clicks through the sidebar to the Dataset page (the demo data's charts and thumbnails),
the Augmentation page (the 3×3 preview), the Train page, and the Predict page, where it
classifies a photo of the demo's test split. Visitors 1 and 2 also start a short run on the
Train page (``--epochs`` at 64 px, batch 16, as ``hosted_memory.py`` does): visitor 2 clicks
Start as soon as visitor 1's run is under way, so it waits in hosted mode's one-at-a-time queue;
both watch their run to the end and then classify with their own model.

Measured:

- page latency: from the click on the page's link (Home: from ``page.goto``) until the page's
  own content is shown (a text only it shows, every image in it loaded) and Streamlit has been
  idle for a whole second (no script running: ``data-test-script-state`` and the status
  widget, as ``tests/test_browser.py`` waits), counted to the start of that quiet second;
  p50, p90 and max per page and over all pages. "classify" is the upload of one photo until
  its probabilities are shown and the app is idle again;
- the queue: from the click on Start training until the page shows the run under way (the
  Train page redraws every second), and what the queued visitor was told (its place, the
  estimated start);
- each training's duration: from under way to "completed" in the browser (and when each of
  its phases, each epoch, was first shown), and the server's own "Elapsed";
- the server's memory: its peak RSS (``VmHWM``) and the peak of server + children sampled every
  0.2 s (``hosted_memory.Sampler``); the server log's tracebacks;
- CPU time: the server's, and how the machine's busy time during the visits split between the
  server, the browser side (Chromium, Playwright, this script) and other work on the machine
  (sampled from ``/proc`` every second): on a shared 2-core machine the last one matters.

Writes ``results/load_test.json`` and ``results/load_test.md`` and prints the Markdown. Exits 1
if a visitor's flow failed (each failure names the visitor and the step; a screenshot and the
server log stay in the data home, whose path is printed). The server is always stopped.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

from common import catdog_cli, write_results
from hosted_memory import CHROMIUM, CHROMIUM_ARGS, Sampler, descendants, start_server, status_kb
from playwright.async_api import TimeoutError as PlaywrightTimeout
from playwright.async_api import async_playwright

ROOT = Path(__file__).resolve().parents[1]
VIEWPORT = {"width": 1366, "height": 768}  # a laptop screen
PAGE_TIMEOUT = 180.0  # seconds for one page on a loaded 2-core machine (TensorFlow imports)
TRAIN_TIMEOUT = 900.0  # seconds for a run to start (queue included) and again to finish
IMAGE_SIZE, BATCH_SIZE = 64, 16  # the visitors' runs, as hosted_memory.py trains them
LOST_CLICK = 30.0  # seconds after which a click on a sidebar link counts as ignored
TRAINERS = 2  # visitors 1 and 2 train; the second one queues behind the first

# The sidebar link of each page (its URL path), a text only that page shows once its content
# is there, and how many images it shows at least.
PAGES: dict[str, tuple[tuple[str, ...], int]] = {
    "home": (("Training runs:",), 0),
    "dataset": (("Images per split and class", "Image sizes (pixels)"), 1),
    "augmentation": (("Variant seed",), 10),  # the original and its 9 variants
    "train": (("Total parameters",), 0),
    "predict": (("Upload photos to classify them",), 0),
}
LABELS = {
    "home": "Home",
    "dataset": "Dataset",
    "augmentation": "Augmentation",
    "train": "Train",
    "predict": "Predict",
    "classify": "Predict: classify a photo",
}

IDLE_JS = """() => {
  const busy = document.querySelector(
    '[data-test-script-state="running"], [data-testid="stStatusWidgetRunningIcon"]');
  const images = [...document.querySelectorAll('[data-testid="stMain"] img')];
  return !busy && images.every((img) => img.complete && img.naturalWidth > 0);
}"""
QUEUED = re.compile(r"is waiting for its turn: number (\d+) in the queue(?:, so it should "
                    r"start in about (\d+) min)?")  # fmt: skip
UNDER_WAY = re.compile(r"Run (\S+) — (Starting|Timing|Loading images|Training|Evaluating)")
PHASE = re.compile(r"Run \S+ — (Starting|Timing|Loading images|Training — epoch \d+|Evaluating)")
ENDED = re.compile(r"Run (\S+) (completed|stopped|cancelled) after (\d+) epoch|Training failed: "
                   r"(.+)|Cannot start training: (.+)")  # fmt: skip
# What a page shows instead of its content when something broke: hosted mode's one sentence,
# and Streamlit's own message for an exception outside the pages' guard (e.g. in app.py).
PAGE_ERRORS = re.compile(r"Something went wrong; please try again|This app has encountered an "
                         r"error")  # fmt: skip


class StepFailed(RuntimeError):
    """A visitor's step that did not end as it should; the message says what was seen."""


@dataclass
class Visitor:
    """One simulated visitor: what it did, how long each page took, where it failed."""

    number: int
    trains: bool
    step: str = "not started"
    token: str | None = None
    pages: dict[str, float] = field(default_factory=dict)
    training: dict[str, Any] = field(default_factory=dict)
    lost_clicks: list[str] = field(default_factory=list)
    windows: dict[str, list[float]] = field(default_factory=dict)  # step → [start, end]
    seconds: float | None = None
    failed_step: str | None = None
    error: str | None = None


class Gate:
    """Orders the two trainings: the first clicks Start once the second is ready to, and the
    second clicks as soon as the first run is under way, so it queues."""

    def __init__(self) -> None:
        self.second_ready, self.first_started = asyncio.Event(), asyncio.Event()

    def release(self) -> None:
        """A trainer failed: let the other go on alone rather than wait for it."""
        self.second_ready.set()
        self.first_started.set()

    async def turn(self, number: int, alone: bool) -> None:
        """Wait until visitor ``number`` may click Start training."""
        if alone:
            return
        event = self.second_ready if number == 1 else self.first_started
        if number == 2:
            self.second_ready.set()
        try:
            await asyncio.wait_for(event.wait(), TRAIN_TIMEOUT)
        except TimeoutError:
            other = 2 if number == 1 else 1
            raise StepFailed(f"visitor {other} never got its training going") from None


# ----------------------------------------------------------------------------- the browser


async def settled(page: Any, since: float, timeout: float = PAGE_TIMEOUT) -> float:
    """Seconds from ``since`` until the page went quiet (no script running, every image in
    the main area loaded) for a whole second, counted to the start of that second."""
    deadline, quiet_since = time.monotonic() + timeout, None
    while time.monotonic() < deadline:
        now = time.monotonic()
        if not await page.evaluate(IDLE_JS):
            quiet_since = None
        elif quiet_since is None:
            quiet_since = now
        elif now - quiet_since >= 1.0:
            return quiet_since - since
        await asyncio.sleep(0.1)
    raise StepFailed(f"the app was still running (or loading images) after {timeout:.0f} s")


async def main_text(page: Any) -> str:
    """The text of the page's main area (not the sidebar)."""
    return await page.locator('[data-testid="stMain"]').inner_text(timeout=PAGE_TIMEOUT * 1000)


def broken(page: Any) -> Any:
    """A locator of what a page shows when something broke (to wait for it or the content)."""
    return page.locator('[data-testid="stException"]').or_(page.get_by_text(PAGE_ERRORS))


async def no_errors(page: Any) -> None:
    """Raise if the page shows an exception or hosted mode's "Something went wrong"."""
    exceptions = page.locator('[data-testid="stException"]')
    if await exceptions.count():
        raise StepFailed(f"the page shows an exception: {await exceptions.first.inner_text()}")
    if found := PAGE_ERRORS.search(await main_text(page)):
        raise StepFailed(f"the page says: {found.group(0)}")


async def shown(page: Any, key: str, since: float) -> float:
    """Wait for page ``key``'s content and the app to be idle; the seconds since ``since``."""
    markers, images = PAGES[key]
    for marker in markers:
        await page.get_by_text(marker).or_(broken(page)).first.wait_for(timeout=PAGE_TIMEOUT * 1000)
        await no_errors(page)  # an error shown instead of the page fails the step at once
    if images:
        await page.wait_for_function(
            "n => document.querySelectorAll('[data-testid=\"stMain\"] img').length >= n",
            arg=images, timeout=PAGE_TIMEOUT * 1000,
        )  # fmt: skip
    seconds = await settled(page, since)
    await no_errors(page)
    return seconds


async def open_home(page: Any, url: str, visitor: Visitor) -> float:
    """Open the landing page as a new visitor; keeps the workspace token the app gives it."""
    started = time.monotonic()
    await page.goto(url, timeout=PAGE_TIMEOUT * 1000)
    await page.wait_for_url(re.compile(r"[?&]ws=[A-Za-z0-9_-]{44}"), timeout=PAGE_TIMEOUT * 1000)
    visitor.token = re.search(r"[?&]ws=([A-Za-z0-9_-]{44})", page.url).group(1)
    return await shown(page, "home", started)


async def open_page(page: Any, key: str, visitor: Visitor) -> float:
    """Click the sidebar's link to page ``key``; seconds until it is shown and idle. A click
    the app ignored (the address still not the page's after :data:`LOST_CLICK` seconds) is
    recorded in ``visitor.lost_clicks`` and made again; the time lost counts."""
    link = page.locator(f'a[data-testid="stSidebarNavLink"][href$="/{key}"]')
    started = time.monotonic()
    await link.click(timeout=PAGE_TIMEOUT * 1000)
    try:
        await page.wait_for_url(re.compile(rf"/{key}(\?|$)"), timeout=LOST_CLICK * 1000)
    except PlaywrightTimeout:
        visitor.lost_clicks.append(key)
        print(f"visitor {visitor.number}: the click on {key} was ignored; clicking again")
        await link.click(timeout=PAGE_TIMEOUT * 1000)
    return await shown(page, key, started)


async def classify(page: Any, photo: Path) -> float:
    """Upload one photo on the Predict page; seconds until its probabilities are shown."""
    started = time.monotonic()
    await page.locator('input[type="file"]').first.set_input_files(
        files=[{"name": photo.name, "mimeType": "image/jpeg", "buffer": photo.read_bytes()}]
    )
    bars = page.locator('[data-testid="stProgress"]').nth(1)
    await bars.or_(broken(page)).first.wait_for(timeout=PAGE_TIMEOUT * 1000)
    await no_errors(page)
    seconds = await settled(page, started)
    await no_errors(page)
    text = await main_text(page)
    if not re.search(r"cats: [\d.]+%", text) or not re.search(r"dogs: [\d.]+%", text):
        raise StepFailed(f"no probability per class after the upload: {text[-300:]!r}")
    return seconds


async def watch_run(
    read: Callable[[], Awaitable[str]], started: float
) -> tuple[re.Match[str], dict[str, float]]:
    """Poll the Train page's text (``read``, 4 times a second) until the run ends; how it
    ended, and when each of its phases (loading, each epoch, evaluating) was first shown, in
    seconds from ``started``."""
    phases: dict[str, float] = {}
    while (now := time.monotonic()) < started + TRAIN_TIMEOUT:
        text = await read()
        if found := ENDED.search(text):
            return found, phases
        if (phase := PHASE.search(text)) and phase.group(1) not in phases:
            phases[phase.group(1)] = round(now - started, 1)
        await asyncio.sleep(0.25)
    raise StepFailed(f"the run had not ended {TRAIN_TIMEOUT:.0f} s after it started")


async def set_number(page: Any, label: str, value: int) -> None:
    """Type ``value`` into the number field ``label`` and wait for the rerun."""
    box = page.get_by_label(label, exact=True)
    await box.fill(str(value), timeout=PAGE_TIMEOUT * 1000)
    await box.press("Enter")
    await settled(page, time.monotonic())


async def under_way(read: Callable[[], Awaitable[str]], clicked: float) -> tuple[float, list[dict]]:
    """After a click on Start training: when the Train page's text (``read``) first showed the
    run under way, and what it said while the run waited in the queue: each new place or
    estimated start, with the seconds since the click (an empty list if the run never
    waited)."""
    told: list[dict] = []
    while (now := time.monotonic()) < clicked + TRAIN_TIMEOUT:
        text = await read()
        if found := ENDED.search(text):
            raise StepFailed(f"the run ended before it was seen under way: {found.group(0)}")
        if UNDER_WAY.search(text):
            return now, told
        if queued := QUEUED.search(text):
            place, minutes = int(queued.group(1)), queued.group(2) and int(queued.group(2))
            if not told or (told[-1]["place"], told[-1]["estimate_min"]) != (place, minutes):
                told.append({"after_s": round(now - clicked, 1), "place": place,
                             "estimate_min": minutes})  # fmt: skip
        await asyncio.sleep(0.25)
    raise StepFailed(f"the run was not under way {TRAIN_TIMEOUT:.0f} s after Start training")


async def train(page: Any, visitor: Visitor, epochs: int, gate: Gate, alone: bool) -> dict:
    """Start a short run on the Train page and watch it to its end: the queue wait (click →
    under way), what the queue said, the run's duration in the browser and the server's."""
    for label, value in (("Epochs", epochs), ("Image size (px)", IMAGE_SIZE),
                         ("Batch size", BATCH_SIZE)):  # fmt: skip
        await set_number(page, label, value)
    await gate.turn(visitor.number, alone)
    clicked = time.monotonic()
    await page.get_by_role("button", name="Start training").click(timeout=PAGE_TIMEOUT * 1000)
    started, told = await under_way(lambda: main_text(page), clicked)
    if visitor.number == 1:
        gate.first_started.set()
    ended, phases = await watch_run(lambda: main_text(page), started)
    completed = time.monotonic()
    if ended.group(2) != "completed":
        raise StepFailed(f"the run did not complete: {ended.group(0)}")
    await settled(page, completed)  # the page redraws once when the run ends: let it finish
    elapsed = page.locator('[data-testid="stMetric"]', has_text="Elapsed")
    value = await elapsed.locator('[data-testid="stMetricValue"]').inner_text()
    return {"run_id": ended.group(1), "epochs": int(ended.group(3)),
            "queued": bool(told), "queue_told": told,
            "queue_wait_s": started - clicked, "browser_s": completed - started,
            "phases_s": phases,
            "server_elapsed_s": float(value.split()[0].replace(",", ""))}  # fmt: skip


def describe(exc: BaseException) -> str:
    """One or two lines about a failure: Playwright's first line and what it waited for."""
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    keep = lines[:1] + [line for line in lines[1:] if "waiting for" in line][:1]
    return " — ".join(keep) or type(exc).__name__


Step = Callable[..., Awaitable[Any]]


@contextlib.contextmanager
def step(visitor: Visitor, name: str) -> Any:
    """Name the visitor's current step and record when it started and ended."""
    visitor.step, started = name, time.monotonic()
    yield
    visitor.windows[name] = [started, time.monotonic()]


async def flow(visitor: Visitor, settings: dict, gate: Gate, home: Step, page: Step,
               train: Step, classify: Step) -> bool:  # fmt: skip
    """The steps every visitor takes, whatever drives it (each step a coroutine function):
    Home, three pages, a training (visitors who train), Predict, one photo classified.
    Whether it got through; a failure is recorded (visitor, step, why), not raised."""
    started = time.monotonic()
    try:
        with step(visitor, "home"):
            visitor.pages["home"] = await home()
        for key in ("dataset", "augmentation", "train"):
            with step(visitor, key):
                visitor.pages[key] = await page(key)
        if visitor.trains:
            with step(visitor, "training"):
                visitor.training = await train(settings["visitors"] < TRAINERS)
        with step(visitor, "predict"):
            visitor.pages["predict"] = await page("predict")
        with step(visitor, "classify"):
            visitor.pages["classify"] = await classify(settings["photo"])
    except Exception as exc:
        visitor.failed_step, visitor.error = visitor.step, describe(exc)
        print(f"visitor {visitor.number} failed at step {visitor.step}: {visitor.error}",
              flush=True)  # fmt: skip
        if visitor.trains:
            gate.release()
        return False
    visitor.step, visitor.seconds = "done", time.monotonic() - started
    print(f"visitor {visitor.number} done in {visitor.seconds:.0f} s", flush=True)
    return True


async def visit(context: Any, url: str, visitor: Visitor, settings: dict, gate: Gate) -> None:
    """One visitor's whole flow; a failure is recorded (visitor, step, why), not raised."""
    page = await context.new_page()
    if not await flow(visitor, settings, gate, lambda: open_home(page, url, visitor),
                      lambda key: open_page(page, key, visitor),
                      lambda alone: train(page, visitor, settings["epochs"], gate, alone),
                      lambda photo: classify(page, photo)):  # fmt: skip
        shot = settings["home"] / f"failure-visitor-{visitor.number}.png"
        try:
            await page.screenshot(path=str(shot), timeout=10_000)
        except Exception as shot_exc:  # the screenshot is a courtesy; the failure is recorded
            print(f"  (no screenshot: {describe(shot_exc)})")


async def visit_all(url: str, settings: dict) -> list[Visitor]:
    """All visitors at once, each in its own browser context of one headless Chromium."""
    count = settings["visitors"]
    visitors = [Visitor(n, trains=n <= TRAINERS) for n in range(1, count + 1)]
    gate = Gate()
    async with async_playwright() as p:
        browser = await p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        settings["browser"] = browser.version
        contexts = [await browser.new_context(viewport=VIEWPORT) for _ in visitors]
        await asyncio.gather(
            *(visit(c, url, v, settings, gate) for c, v in zip(contexts, visitors, strict=True))
        )
        await browser.close()
    return visitors


# ------------------------------------------------------------------ the server and its data


def prepare_home(home: Path) -> tuple[str, Path]:
    """The built-in demo dataset and one shared example run in ``home``, made by catdog's own
    command line; returns the example's run id and a photo to classify."""
    catdog_cli(home, "demo-data")
    run_id = catdog_cli(home, "train", "--data", "demo", "--model", "seed-baseline",
                        "--epochs", "1", "--image-size", str(IMAGE_SIZE), "--batch-size",
                        str(BATCH_SIZE), "--precision", "float32", "--no-test")  # fmt: skip
    photos = sorted((home / "datasets" / "demo" / "test" / "cats").iterdir())
    if not photos:
        raise SystemExit(f"the demo dataset in {home} has no test photos of cats")
    return run_id, photos[0]


def free_port(port: int) -> int:
    """``port`` if nothing listens on it (else a clear error: another server would answer)."""
    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError as exc:
            raise SystemExit(f"port {port} is taken ({exc.strerror}); choose another") from None
    return port


def stop_server(proc: subprocess.Popen) -> None:
    """Stop the server and whatever it started (by process id), however the run ended."""
    if proc.poll() is not None:
        return
    children = descendants(proc.pid)
    proc.terminate()
    try:
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=10)
    for pid in children:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)


def cpu_jiffies(pid: int) -> int:
    """User + system CPU time of a process so far, in clock ticks; 0 if it is gone."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0
    return int(fields[11]) + int(fields[12])


def machine_busy() -> int:
    """Clock ticks all CPUs of the machine spent busy so far (``/proc/stat``)."""
    ticks = [int(t) for t in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    return sum(ticks) - ticks[3] - ticks[4]  # not idle, not waiting for I/O


class CpuMeter(threading.Thread):
    """The CPU time the whole machine used while it ran, and how it split between the server
    (with its children), this benchmark's other processes (itself, Playwright's driver and
    Chromium) and other work, sampled every second."""

    def __init__(self, server_pid: int, every: float = 1.0) -> None:
        super().__init__(daemon=True)
        self.server_pid, self.every, self._done = server_pid, every, threading.Event()
        self.ticks = {"server": 0, "browser": 0}
        self.timeline: list[tuple[float, float, float]] = []  # (time, server, browser) CPU-s
        self._start, self._last = machine_busy(), self._ours_now()

    def _ours_now(self) -> dict[int, int]:
        me = os.getpid()
        return {pid: cpu_jiffies(pid) for pid in [me, *descendants(me)]}

    def run(self) -> None:
        while not self._done.wait(self.every):
            now, server = self._ours_now(), {self.server_pid, *descendants(self.server_pid)}
            for pid, ticks in now.items():
                used = max(ticks - self._last.get(pid, 0), 0)
                self.ticks["server" if pid in server else "browser"] += used
            self._last = now
            tick = os.sysconf("SC_CLK_TCK")
            self.timeline.append((time.monotonic(), self.ticks["server"] / tick,
                                  self.ticks["browser"] / tick))  # fmt: skip

    def stop(self) -> dict[str, float]:
        """Stop; CPU seconds: the machine's busy time, and the server's, the browser side's
        and other work's shares of it."""
        self._done.set()
        self.join()
        tick = os.sysconf("SC_CLK_TCK")
        total = (machine_busy() - self._start) / tick
        server, browser = self.ticks["server"] / tick, self.ticks["browser"] / tick
        return {"machine_busy_cpu_s": total, "server_share_cpu_s": server,
                "browser_share_cpu_s": browser,
                "other_work_cpu_s": max(total - server - browser, 0.0)}  # fmt: skip


def tracebacks(log: Path) -> list[str]:
    """The first line of each error the server logged (tracebacks, "unexpected error")."""
    text = log.read_text(errors="replace") if log.exists() else ""
    lines = text.splitlines()
    found = [line for line in lines if "unexpected error" in line or line.startswith("Error")]
    found += [lines[k + 1] for k, line in enumerate(lines[:-1]) if line.startswith("Traceback")]
    return found


def run(
    settings: dict, visiting: Callable[[str, dict], Awaitable[list[Visitor]]] | None = None
) -> dict:
    """Prepare the data home, serve it in hosted mode, send the visitors (``visiting``: by
    default :func:`visit_all`, the browsers); the measurements."""
    home = settings["home"]
    example, settings["photo"] = prepare_home(home)
    print(f"data home {home}: demo dataset and example run {example}", flush=True)
    proc, url = start_server(home, settings["port"], **settings.get("server", {}))
    sampler, meter = Sampler(proc.pid), CpuMeter(proc.pid)
    sampler.start()
    meter.start()
    started = time.monotonic()
    settings["started"] = started
    try:
        visitors = asyncio.run((visiting or visit_all)(url, settings))
        wall = time.monotonic() - started
        server_peak = status_kb(proc.pid, "VmHWM")
        server_cpu = cpu_jiffies(proc.pid) / os.sysconf("SC_CLK_TCK")
        alive = proc.poll() is None
    finally:
        tree_peak, cpu = sampler.stop(), meter.stop()
        stop_server(proc)
    return {"example_run": example, "visitors": visitors, "wall_s": wall,
            "server_alive_at_end": alive, "server_vmhwm_mb": server_peak / 1024,
            "tree_peak_mb": tree_peak / 1024, "server_cpu_s": server_cpu, **cpu,
            "cpu_timeline": [(t - started, a, b) for t, a, b in meter.timeline],
            "server_errors": tracebacks(home / "streamlit.log")}  # fmt: skip


# ---------------------------------------------------------------------------------- results


def percentile(values: list[float], q: float) -> float:
    """The ``q``-th percentile (0–100), interpolated between the closest ranks."""
    ordered = sorted(values)
    rank = (len(ordered) - 1) * q / 100
    low = int(rank)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def latencies(visitors: list[Visitor]) -> dict[str, dict[str, float]]:
    """p50, p90 and max per page, over all pages, and for classifying a photo."""
    groups = {key: [v.pages[key] for v in visitors if key in v.pages] for key in PAGES}
    groups["all pages"] = [s for values in groups.values() for s in values]
    groups["classify"] = [v.pages["classify"] for v in visitors if "classify" in v.pages]
    return {key: {"n": len(values), "p50": percentile(values, 50),
                  "p90": percentile(values, 90), "max": max(values)}
            for key, values in groups.items() if values}  # fmt: skip


def machine() -> dict[str, str]:
    """CPU model, cores, instruction sets and versions (read without importing TensorFlow)."""
    cpuinfo = Path("/proc/cpuinfo").read_text()
    model = re.search(r"^model name\s*:\s*(.+)$", cpuinfo, re.MULTILINE)
    flags = sorted(set(re.findall(r"\b(avx512_bf16|amx_bf16|avx2)\b", cpuinfo)))
    versions = {name: metadata.version(name) for name in ("streamlit", "tensorflow", "playwright")}
    return {"cpu": model.group(1).strip() if model else "unknown", "cores": str(os.cpu_count()),
            "flags": " ".join(flags), "load_before": f"{os.getloadavg()[0]:.2f}",
            **versions}  # fmt: skip


def training_row(visitor: dict) -> str:
    """One visitor's training as a Markdown table row."""
    t = visitor["training"]
    told = "not queued"
    if t["queue_told"]:
        places = " → ".join(str(p) for p in dict.fromkeys(m["place"] for m in t["queue_told"]))
        minutes = [m["estimate_min"] for m in t["queue_told"]]
        told = f"number {places}; start in about {' → '.join(map(str, filter(None, minutes)))} min"
        told += ", then no estimate" if minutes[-1] is None else ""
    return (f"| visitor {visitor['number']} (`{t['run_id']}`) | {told} | "
            f"{t['queue_wait_s']:.1f} s | {t['browser_s']:.1f} s | "
            f"{t['server_elapsed_s']:.0f} s |")  # fmt: skip


def markdown(payload: dict) -> list[str]:
    """The results as Markdown: the flows, page latencies, the queue and trainings, memory."""
    m, s = payload["machine"], payload["settings"]
    tools = f", Chromium {s['browser']} (Playwright {m['playwright']})"
    return (header(payload, "Load test of a hosted server", "visitors", tools)
            + tables(payload, "Chromium and this script"))  # fmt: skip


def header(payload: dict, title: str, who: str, tools: str = "") -> list[str]:
    """The results' title, command, flow, machine and how many flows completed; ``who`` the
    visitors are, ``tools`` what drove them."""
    m, s = payload["machine"], payload["settings"]
    visitors = payload["visitors"]
    ok = sum(1 for v in visitors if v["failed_step"] is None)
    return [f"## {title} ({payload['date']})", "",
            f"`{payload['command']}`: {s['visitors']} {who} at once, visitors 1–"
            f"{min(TRAINERS, s['visitors'])} training {s['epochs']} epoch(s) at {IMAGE_SIZE} "
            f"px, batch {BATCH_SIZE}. Machine: {m['cpu']}, {m['cores']} cores ({m['flags']}), "
            f"load average {m['load_before']} before the run; Streamlit {m['streamlit']}, "
            f"TensorFlow {m['tensorflow']}{tools}.", "",
            f"**Flows completed: {ok} of {len(visitors)}.**"]  # fmt: skip


def tables(payload: dict, client: str) -> list[str]:
    """The failures, page latencies, the queue and trainings, the server's memory and CPU;
    ``client`` names what drove the visitors (its CPU share is reported)."""
    m, visitors = payload["machine"], payload["visitors"]
    lines = [f"- visitor {v['number']} failed at step {v['failed_step']}: {v['error']}"
              for v in visitors if v["failed_step"]]  # fmt: skip
    lines += [f"- visitor {v['number']}: a click on the sidebar's {key} link was ignored (clicked "
              f"again after {LOST_CLICK:.0f} s; the page's latency includes it)"
              for v in visitors for key in v["lost_clicks"]]  # fmt: skip
    lines += ["", "| page | visits | p50 | p90 | max |", "|---|---:|---:|---:|---:|"]
    for key, row in payload["latency_s"].items():
        name = f"**{key}**" if key == "all pages" else LABELS[key]
        lines.append(f"| {name} | {row['n']} | {row['p50']:.1f} s | {row['p90']:.1f} s "
                     f"| {row['max']:.1f} s |")  # fmt: skip
    lines += ["", "| training | queue: place, estimated start as it changed | click → under "
              "way | under way → completed (seen by the visitor) | server's Elapsed |",
              "|---|---|---:|---:|---:|"]  # fmt: skip
    lines += [training_row(v) for v in visitors if v["training"]]
    errors = payload["server_errors"]
    lines += ["", "| server | |", "|---|---:|",
              f"| peak RSS (VmHWM) | {payload['server_vmhwm_mb']:,.0f} MB |",
              f"| server + children, sampled peak | {payload['tree_peak_mb']:,.0f} MB |",
              f"| wall time (visitors) | {payload['wall_s']:.0f} s |",
              f"| CPU time of the server (since it started) | {payload['server_cpu_s']:.0f} s |",
              f"| CPU time during the visits: server / {client} / other work "
              f"| {payload['server_share_cpu_s']:.0f} s / {payload['browser_share_cpu_s']:.0f} "
              f"s / {payload['other_work_cpu_s']:.0f} s (of "
              f"{payload['wall_s'] * int(m['cores']):.0f} s on {m['cores']} cores) |",
              f"| errors in its log | {len(errors)} |"]  # fmt: skip
    return lines + [f"- `{line}`" for line in errors[:10]]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--visitors", type=int, default=4, help="visitors at once (default 4)")
    parser.add_argument("--epochs", type=int, default=2, help="epochs of each visitor's run")
    parser.add_argument("--port", type=int, help="the server's port (default: a free one)")
    args = parser.parse_args()
    if args.visitors < 1 or args.epochs < 1:
        parser.error("--visitors and --epochs must be at least 1")
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # still stop the server
    port = free_port(args.port) if args.port else None
    home = Path(tempfile.mkdtemp(prefix="catdog-load-test-"))
    settings = {"visitors": args.visitors, "epochs": args.epochs, "home": home, "port": port}
    info = machine()
    result = run(settings)
    visitors = [asdict(v) for v in result.pop("visitors")]
    payload = {"date": datetime.date.today().isoformat(),
               "command": " ".join(["python benchmarks/load_test.py", *sys.argv[1:]]),
               "machine": info, "settings": {**settings, "home": str(home),
                                             "photo": settings["photo"].name},
               "latency_s": latencies([Visitor(**v) for v in visitors]),
               "visitors": visitors, **result}  # fmt: skip
    write_results("load_test", json.loads(json.dumps(payload, default=str)), markdown(payload))
    if any(v["failed_step"] for v in visitors):
        print(f"\nsome flows failed: the screenshots and streamlit.log are in {home}")
        sys.exit(1)
    shutil.rmtree(home, ignore_errors=True)


if __name__ == "__main__":
    main()
