"""Peak memory of a hosted catdog server: does one visitor, or three, fit a 1 GB free tier?

    python benchmarks/hosted_memory.py                    # 1 and 3 visitors (about 5 min)
    python benchmarks/hosted_memory.py --visitors 1 --epochs 1   # a quick check (about 1 min)

For each number of visitors, starts a real ``streamlit run app.py`` with ``CATDOG_HOSTED=1``
on a fresh data home holding the built-in demo dataset, and drives it with Playwright and
Debian's Chromium, one browser context per visitor (no shared cookies: each its own workspace):
every visitor opens the Train page and starts a short run on the demo data (with hosted mode's
one training at a time, the others queue), waits for it to complete, then classifies a photo on
the Predict page. Meanwhile the server's resident memory, and that of its child processes
(``auto`` precision times the training step in a child), is sampled every 0.2 s from
``/proc``; at the end the server's own peak (``VmHWM`` of ``/proc/PID/status``) is read.
Prints one row per visitor count.
"""

from __future__ import annotations

import argparse
import io
import os
import re
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--no-first-run"]
MB = 1024 * 1024


def status_kb(pid: int, field: str) -> int:
    """A ``kB`` field of ``/proc/PID/status`` (``VmRSS``, ``VmHWM``); 0 if the process is gone."""
    try:
        text = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return 0
    match = re.search(rf"^{field}:\s+(\d+) kB", text, re.MULTILINE)
    return int(match.group(1)) if match else 0


def descendants(pid: int) -> list[int]:
    """The process ids below ``pid`` (children, grandchildren …), from ``/proc/*/stat``."""
    parents: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            parents[int(entry.name)] = int(stat.rsplit(")", 1)[1].split()[1])
    found, frontier = [], [pid]
    while frontier:
        children = [p for p, parent in parents.items() if parent in frontier]
        found += children
        frontier = children
    return found


class Sampler(threading.Thread):
    """Samples the summed resident memory of a process and its descendants; keeps the peak."""

    def __init__(self, pid: int, every: float = 0.2) -> None:
        super().__init__(daemon=True)
        self.pid, self.every, self.peak_kb = pid, every, 0
        self._done = threading.Event()

    def run(self) -> None:
        while not self._done.wait(self.every):
            total = sum(status_kb(p, "VmRSS") for p in [self.pid, *descendants(self.pid)])
            self.peak_kb = max(self.peak_kb, total)

    def stop(self) -> int:
        """Stop sampling; returns the peak in kB."""
        self._done.set()
        self.join()
        return self.peak_kb


def start_server(
    home: Path,
    port: int | None = None,
    *,
    hosted: bool = True,
    cpus: set[int] | None = None,
    launcher: list[str] | None = None,
    env: dict[str, str] | None = None,
) -> tuple[subprocess.Popen, str]:
    """``streamlit run app.py`` on the data home ``home``, in hosted mode unless ``hosted`` is
    False, on ``port`` (default: a free one); returns the process and its URL once it answers.

    ``cpus`` pins the server (every thread and child) to those CPUs, as ``taskset -c`` does;
    ``launcher`` replaces ``python -m streamlit`` (e.g. ``benchmarks/page_timing.py``, which
    logs where the server's time goes); ``env`` adds environment variables."""
    if port is None:
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port = sock.getsockname()[1]
    env = {**os.environ, "CATDOG_HOME": str(home), "TF_CPP_MIN_LOG_LEVEL": "2", **(env or {})}
    if hosted:
        env["CATDOG_HOSTED"] = "1"
    pin = (lambda: os.sched_setaffinity(0, cpus)) if cpus else None
    proc = subprocess.Popen(
        [*(launcher or [sys.executable, "-m", "streamlit"]), "run", "app.py", "--server.port",
         str(port), "--server.address", "127.0.0.1", "--server.headless", "true"],
        cwd=ROOT, env=env, stdout=(home / "streamlit.log").open("w"), stderr=subprocess.STDOUT,
        preexec_fn=pin,
    )  # fmt: skip
    url, deadline = f"http://127.0.0.1:{port}", time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"{url}/_stcore/health", timeout=1):
                return proc, url
        except OSError:
            time.sleep(0.3)
    proc.kill()
    raise SystemExit(f"streamlit did not start; see {home / 'streamlit.log'}")


def idle(page, timeout: float = 120.0) -> None:
    """Wait until the app has stopped running (script state and status icon) for a second."""
    busy = '[data-test-script-state="running"], [data-testid="stStatusWidgetRunningIcon"]'
    deadline, quiet = time.monotonic() + timeout, None
    while time.monotonic() < deadline:
        if page.locator(busy).count():
            quiet = None
        elif quiet is None:
            quiet = time.monotonic()
        elif time.monotonic() - quiet > 1.0:
            return
        page.wait_for_timeout(100)


def start_training(page, url: str, epochs: int, size: int, batch: int) -> None:
    """Open the Train page in the visitor's own workspace and start a short run."""
    page.goto(url)
    page.wait_for_url(re.compile(r"[?&]ws="), timeout=60_000)
    token = re.search(r"[?&]ws=([A-Za-z0-9_-]{22})", page.url).group(1)
    page.goto(f"{url}/train?ws={token}")
    page.get_by_text("Total parameters").wait_for(timeout=120_000)
    idle(page)
    for label, value in (("Epochs", epochs), ("Image size (px)", size), ("Batch size", batch)):
        field = page.get_by_label(label, exact=True)
        field.fill(str(value))
        field.press("Enter")
        idle(page)
    page.get_by_role("button", name="Start training").click()
    page.get_by_text("Run ").first.wait_for(timeout=60_000)


def predict(page, url: str, photo: bytes) -> None:
    """Classify one photo on the Predict page, in the visitor's workspace."""
    token = re.search(r"[?&]ws=([A-Za-z0-9_-]{22})", page.url).group(1)
    page.goto(f"{url}/predict?ws={token}")
    page.get_by_text("Upload photos to classify them").wait_for(timeout=60_000)
    page.locator('input[type="file"]').first.set_input_files(
        files=[{"name": "cat.png", "mimeType": "image/png", "buffer": photo}]
    )
    page.locator('[data-testid="stProgress"]').nth(1).wait_for(timeout=120_000)


def cat_png() -> bytes:
    import numpy as np

    from catdog.data.cartoon import draw_animal

    buffer = io.BytesIO()
    draw_animal("cat", np.random.default_rng(7), (180, 160)).save(buffer, "PNG")
    return buffer.getvalue()


def measure(visitors: int, epochs: int, size: int, batch: int) -> dict[str, float]:
    """One server, ``visitors`` browser contexts through the whole flow; the peaks in MB."""
    from playwright.sync_api import sync_playwright

    from catdog.data.demo import generate_demo_dataset

    home = Path(tempfile.mkdtemp(prefix="catdog-hosted-memory-"))
    generate_demo_dataset(home / "datasets" / "demo")  # the built-in demo, as a host has it
    proc, url = start_server(home)
    sampler = Sampler(proc.pid)
    sampler.start()
    started = time.monotonic()
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            pages = [browser.new_context().new_page() for _ in range(visitors)]
            for page in pages:  # all ask at once: the first trains, the others queue
                start_training(page, url, epochs, size, batch)
            for page in pages:
                page.get_by_text(re.compile(r"completed after \d+ epoch")).wait_for(
                    timeout=30 * 60_000
                )
            for page in pages:
                predict(page, url, cat_png())
            browser.close()
        seconds = time.monotonic() - started
        server_peak = status_kb(proc.pid, "VmHWM")
    finally:
        tree_peak = sampler.stop()
        proc.terminate()
        proc.wait(timeout=30)
    return {"visitors": visitors, "server_mb": server_peak / 1024,
            "tree_mb": tree_peak / 1024, "seconds": seconds}  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--visitors", type=int, nargs="+", default=[1, 3])
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--image-size", type=int, default=64)
    parser.add_argument("--batch-size", type=int, default=16)
    args = parser.parse_args()
    rows = [measure(n, args.epochs, args.image_size, args.batch_size) for n in args.visitors]
    print(f"\nhosted mode, demo data, {args.epochs} epoch(s) at {args.image_size} px, "
          f"batch {args.batch_size}, then one prediction per visitor")  # fmt: skip
    print("| visitors | server peak RSS (VmHWM) | server + children, sampled peak | wall time |")
    print("|---:|---:|---:|---:|")
    for row in rows:
        print(f"| {row['visitors']} | {row['server_mb']:,.0f} MB | {row['tree_mb']:,.0f} MB "
              f"| {row['seconds']:,.0f} s |")  # fmt: skip


if __name__ == "__main__":
    main()
