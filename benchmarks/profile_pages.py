"""Where a page's time goes: every page and interaction of the dashboard, timed in a browser
and broken down on the server.

    python benchmarks/profile_pages.py                   # one visitor, server on 1 CPU, 3 times
    python benchmarks/profile_pages.py --photos          # ... with the 4000 real photos active
    python benchmarks/profile_pages.py --visitors 4      # four visitors on 2 CPUs, two training
    python benchmarks/profile_pages.py --visitors 4 --remote   # ... their browsers elsewhere
    python benchmarks/profile_pages.py --repeat 1        # a quick look

**One visitor** (default): a fresh data home (the built-in demo data and one shared example
run, made by ``load_test.prepare_home``; with ``--photos`` also the seed's 4000 photos from
``../shared``, imported and made the active dataset), served by ``streamlit run app.py`` pinned
to CPU 0 (as ``taskset -c 0``; ``--cpus 0,1`` to change) and driven by Playwright in Debian's
Chromium. One visitor opens Home, visits every page once (first visit) and again (warm visit),
uploads a photo on Predict (first photo: the model is loaded) and two more (next photo), then
moves the Augmentation page's rotation slider one step, three times. Then a second visitor (a
new browser context) visits every page once: the first visits every later visitor of a running
server sees. Each interaction is timed from the click (the key press, the upload; Home: the
start of navigation) until the browser receives the message that ends Streamlit's last script
run (``script_finished``; the last before 0.75 s without messages, every image loaded), with the
bytes the browser received for it (websocket messages, images), the wall time of the server's
script runs in it and the server process's CPU time (on a loaded machine the stable number: the
wall times then include waiting for a CPU), and the browser's own main-thread time (Chromium's
``TaskDuration``: JavaScript, style, layout, painting; what each visitor's computer pays, until
the page is quiet). ``--repeat`` fresh servers (default 3); the tables give the median.

On the server, ``benchmarks/page_timing.py`` (the launcher) logs where the time went — imports,
dataset scans and statistics, thumbnails, image decoding, the augmentation preview, figure
building and their JSON size, run listings, model loading, prediction, and the script run's
own remainder (Streamlit and page code) — and when the server could not run a thread for over
50 ms (a stall: every other visitor waits too). Work in no script run (a background warm-up)
is listed apart.

**Four visitors** (``--visitors 4``): ``load_test.py``'s hosted-mode flow (two visitors train;
one queues) on 2 CPUs, with the same server log: the load test's page and classify latencies,
and per category the server time spent and the stalls it caused. With ``--remote`` the visitors
are ``remote_visitors.py``'s protocol-level clients instead of Chromiums on the server's CPUs.

Writes ``results/profile_pages[_photos|_visitors].json`` and ``.md`` and prints the Markdown.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

from common import DATA, ROOT, TIMING_LAUNCHER, write_results
from hosted_memory import CHROMIUM, CHROMIUM_ARGS, start_server
from load_test import (
    PAGES,
    VIEWPORT,
    catdog_cli,
    cpu_jiffies,
    latencies,
    machine,
    prepare_home,
    stop_server,
)
from load_test import run as load_test_run
from playwright.async_api import async_playwright
from streamlit.proto.ForwardMsg_pb2 import ForwardMsg

NAV = ("dataset", "augmentation", "train", "history", "predict")
QUIET = 0.75  # seconds without a script run after which an interaction has ended
TIMEOUT = 240.0  # seconds for one interaction on a loaded machine
PHOTOS_NAME = "cats_vs_dogs_small"
EARLY = ForwardMsg.FINISHED_EARLY_FOR_RERUN  # a run stopped for the next one: not an end

IMAGES_JS = """() => [...document.querySelectorAll('[data-testid="stMain"] img')]
  .every((img) => img.complete)"""


# ------------------------------------------------------------------------- one interaction


class Bytes:
    """What the browser received (websocket messages and media files, i.e. images), when each
    script run ended (Streamlit's ``script_finished`` message, read as the browser receives
    it), and the server process whose CPU time an interaction used."""

    def __init__(self, page: Any, server_pid: int, cdp: Any = None) -> None:
        self.total, self.server_pid, self.cdp = 0, server_pid, cdp
        self.messages: list[float] = []  # when each message arrived (time.monotonic)
        self.finished: list[float] = []  # ... and each that ended a script or fragment run
        page.on("websocket", lambda ws: ws.on("framereceived", self._frame))
        page.on("response", self._response)

    def _frame(self, payload: Any) -> None:
        self.total += len(payload)
        now = time.monotonic()
        self.messages.append(now)
        if isinstance(payload, bytes):
            msg = ForwardMsg()
            msg.ParseFromString(payload)
            if msg.WhichOneof("type") == "script_finished" and msg.script_finished != EARLY:
                self.finished.append(now)

    def _response(self, response: Any) -> None:
        if "/media/" in response.url:
            self.total += int(response.headers.get("content-length", 0))

    async def browser_busy(self) -> float:
        """Seconds the page's main thread has spent on tasks so far (JavaScript, layout,
        painting: Chromium's ``TaskDuration``); 0 without a DevTools session."""
        if self.cdp is None:
            return 0.0
        metrics = (await self.cdp.send("Performance.getMetrics"))["metrics"]
        return next(m["value"] for m in metrics if m["name"] == "TaskDuration")


async def watched(context: Any, server_pid: int) -> tuple[Any, Bytes]:
    """A new page of ``context`` and its :class:`Bytes`, with Chromium's performance counters
    on (the browser's own share of each interaction)."""
    page = await context.new_page()
    cdp = await context.new_cdp_session(page)
    await cdp.send("Performance.enable")
    return page, Bytes(page, server_pid, cdp)


async def ended(page: Any, received: Bytes, since: float) -> float:
    """Seconds from ``since`` (``time.monotonic``) until the last script run that ended after
    it, once no message has come for :data:`QUIET` seconds and the page's images are in.

    The end of a run is read from the messages, not from the page: a run of a few
    milliseconds may never show the page as running."""
    deadline = time.monotonic() + TIMEOUT
    while time.monotonic() < deadline:
        ends = [t for t in received.finished if t >= since]
        now = time.monotonic()
        if ends and now - max(received.messages) >= QUIET and await page.evaluate(IMAGES_JS):
            return ends[-1] - since
        await asyncio.sleep(0.05)
    images = await page.evaluate(IMAGES_JS)
    raise RuntimeError(f"no script run ended within {TIMEOUT:.0f} s on {page.url}; "
                       f"images complete: {images}")  # fmt: skip


async def timed(page: Any, received: Bytes, action: Any) -> dict[str, float]:
    """Do ``action`` (a coroutine function); its seconds, bytes and window on the server's
    clock (``time.monotonic``, the machine's)."""
    busy = await received.browser_busy()
    before, t0, cpu = received.total, time.monotonic(), cpu_jiffies(received.server_pid)
    await action()
    seconds = await ended(page, received, t0)
    cpu = (cpu_jiffies(received.server_pid) - cpu) / os.sysconf("SC_CLK_TCK")
    return {"s": seconds, "bytes": received.total - before, "t0": t0, "t1": t0 + seconds,
            "cpu_s": cpu, "browser_s": await received.browser_busy() - busy}  # fmt: skip


async def visit_page(page: Any, received: Bytes, key: str) -> dict[str, float]:
    """Click the sidebar's link to page ``key``."""
    link = page.locator(f'a[data-testid="stSidebarNavLink"][href$="/{key}"]')
    result = await timed(page, received, lambda: link.click(timeout=TIMEOUT * 1000))
    marker = {**{k: v[0][0] for k, v in PAGES.items()}, "history": "All runs"}[key]
    await page.get_by_text(marker).first.wait_for(timeout=TIMEOUT * 1000)
    return result


async def upload(page: Any, received: Bytes, photo: Path) -> dict[str, float]:
    """Upload one more photo on the Predict page."""
    files = page.locator('input[type="file"]').first

    async def send() -> None:
        await files.set_input_files(files=[{"name": photo.name, "mimeType": "image/jpeg",
                                            "buffer": photo.read_bytes()}])  # fmt: skip

    result = await timed(page, received, send)
    await page.get_by_text("%").first.wait_for(timeout=TIMEOUT * 1000)
    return result


async def slide(page: Any, received: Bytes) -> dict[str, float]:
    """Move the first slider (rotation) one step to the right, by keyboard."""
    thumb = page.locator('[data-testid="stSlider"] input[type="range"]').first
    await thumb.focus()
    return await timed(page, received, lambda: thumb.press("ArrowRight"))


async def one_visitor(url: str, photos: list[Path], pid: int) -> dict[str, list[dict]]:
    """The single visitor's flow; every interaction's timing, by name."""
    out: dict[str, list[dict]] = defaultdict(list)
    async with async_playwright() as p:
        browser = await p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        context = await browser.new_context(viewport=VIEWPORT)
        page, received = await watched(context, pid)
        home = await timed(page, received, lambda: page.goto(url, timeout=TIMEOUT * 1000))
        out["home: first visit"].append(home)
        for round_name in ("first visit", "warm visit"):
            for key in NAV:
                out[f"{key}: {round_name}"].append(await visit_page(page, received, key))
        out["predict: first photo"].append(await upload(page, received, photos[0]))
        for photo in photos[1:3]:
            out["predict: next photo"].append(await upload(page, received, photo))
        await visit_page(page, received, "augmentation")
        for _ in range(3):
            out["augmentation: slider move"].append(await slide(page, received))
        await second_visitor(browser, url, pid, out)
        await browser.close()
    return out


async def second_visitor(browser: Any, url: str, pid: int, out: dict[str, list]) -> None:
    """A new visitor (its own browser context) of the same, now warm, server: each page's
    first visit, as every visitor after the first one sees it."""
    context = await browser.new_context(viewport=VIEWPORT)
    page, received = await watched(context, pid)
    await timed(page, received, lambda: page.goto(url, timeout=TIMEOUT * 1000))
    for key in NAV:
        out[f"{key}: first visit, next visitor"].append(await visit_page(page, received, key))
    await context.close()


# ---------------------------------------------------------------------- the server's log


def read_spans(log: Path) -> list[dict]:
    """The launcher's records."""
    if not log.exists():
        return []
    return [json.loads(line) for line in log.read_text().splitlines() if line.strip()]


def breakdown(spans: list[dict], t0: float, t1: float) -> dict[str, Any]:
    """Server seconds per category in a window, stalls, figure bytes, and what ran outside
    any script run (background work) in that window."""
    inside = [s for s in spans if s["t0"] >= t0 - 0.05 and s["t0"] <= t1 + 0.05]
    cats: dict[str, float] = defaultdict(float)
    background: dict[str, float] = defaultdict(float)
    for s in inside:
        if s["cat"] == "stall":
            continue
        name = "Streamlit and page code" if s["cat"] in ("script run", "fragment run") else s["cat"]
        in_run = s["session"] is not None or s["cat"] in ("script run", "fragment run")
        (cats if in_run else background)[name] += s["excl"]
    runs = sum(s["t1"] - s["t0"] for s in inside if s["cat"] in ("script run", "fragment run"))
    stalls = [s["excl"] for s in inside if s["cat"] == "stall"]
    figure_bytes = sum(s.get("bytes", 0) for s in inside if s["cat"] == "figure to JSON")
    return {"server_s": dict(cats), "background_s": dict(background), "runs_s": runs,
            "stall_s": sum(stalls), "stall_max_s": max(stalls, default=0.0),
            "figure_json_bytes": figure_bytes}  # fmt: skip


def background_work(spans: list[dict]) -> dict[str, float]:
    """Seconds of hooked work outside any script run (a warm-up thread), by category."""
    out: dict[str, float] = defaultdict(float)
    for s in spans:
        if s["session"] is None and s["cat"] not in ("stall", "script run", "fragment run"):
            out[s["cat"]] += s["excl"]
    return dict(out)


# ---------------------------------------------------------------------------------- runs


def import_photos(home: Path) -> str:
    """Import the seed's 4000 photos into ``home`` (its own split kept); their name."""
    if not DATA.is_dir():
        raise SystemExit(f"--photos needs the seed's photos in {DATA}")
    catdog_cli(home, "import", str(DATA))  # named after the folder
    return PHOTOS_NAME


def profile_one(args: argparse.Namespace) -> dict[str, Any]:
    """``--repeat`` fresh servers, one visitor each; per interaction the median and the
    server's breakdown of the median repetition."""
    home = Path(tempfile.mkdtemp(prefix="catdog-profile-"))
    _, photo = prepare_home(home)
    photos = sorted(photo.parent.iterdir())[:3]
    query = f"?data={import_photos(home)}" if args.photos else ""
    print(f"data home {home}", flush=True)
    runs: list[dict] = []
    for k in range(args.repeat):
        log = home / f"spans-{k}.jsonl"
        proc, url = start_server(home, hosted=False, cpus=args.cpus, launcher=TIMING_LAUNCHER,
                                 env={"CATDOG_PAGE_TIMING": str(log)})  # fmt: skip
        try:
            flow = asyncio.run(one_visitor(url + query, photos, proc.pid))
        finally:
            stop_server(proc)
        spans = read_spans(log)
        for results in flow.values():
            for r in results:
                r.update(breakdown(spans, r["t0"], r["t1"]))
        runs.append({"flow": dict(flow), "background_s": background_work(spans)})
        print(f"repetition {k + 1}: " + ", ".join(
            f"{name} {statistics.median(r['s'] for r in rs):.2f} s" for name, rs in flow.items()
        ), flush=True)  # fmt: skip
    shutil.rmtree(home, ignore_errors=True)
    return {"repetitions": runs}


def profile_many(args: argparse.Namespace) -> dict[str, Any]:
    """load_test.py's hosted flow with the server's timing log."""
    home = Path(tempfile.mkdtemp(prefix="catdog-profile-load-"))
    log = home / "spans.jsonl"
    settings = {"visitors": args.visitors, "epochs": args.epochs, "home": home, "port": None,
                "server": {"launcher": TIMING_LAUNCHER, "cpus": args.cpus,
                           "env": {"CATDOG_PAGE_TIMING": str(log)}}}  # fmt: skip
    visiting = None
    if args.remote:  # protocol-level clients: their "browsers" cost the server's CPUs nothing
        from remote_visitors import visit_all as visiting
    result = load_test_run(settings, visiting)
    visitors = result.pop("visitors")
    failed = [f"visitor {v.number} at {v.failed_step}: {v.error}" for v in visitors if v.error]
    spans = read_spans(log)
    whole = breakdown(spans, float("-inf"), float("inf"))
    shutil.rmtree(home, ignore_errors=True) if not failed else None
    runs = sorted(s["t1"] - s["t0"] for s in spans if s["cat"] in ("script run", "fragment run"))
    return {"latency_s": latencies(visitors), "failed": failed, "server": whole,
            "script_runs_s": {"n": len(runs), "p50": _quantile(runs, 0.5),
                              "p90": _quantile(runs, 0.9), "max": max(runs, default=0.0)},
            "stalls_over_0_5_s": sum(1 for s in spans if s["cat"] == "stall" and s["excl"] > 0.5),
            "server_vmhwm_mb": result["server_vmhwm_mb"], "wall_s": result["wall_s"],
            "first_pages_cpu": first_pages_cpu(visitors, result["cpu_timeline"]),
            "cpus": len(args.cpus), "remote": args.remote,
            "home": str(home)}  # fmt: skip


def first_pages_cpu(visitors: list, timeline: list[tuple[float, float, float]]) -> dict:
    """The CPU seconds the server and the browser side (Chromium, Playwright) used while the
    visitors opened their first two pages (Home and Dataset, before anyone trains): from the
    start until the last of them had its Dataset page, as sampled each second."""
    ends = [v.pages["home"] + v.pages["dataset"] for v in visitors
            if "home" in v.pages and "dataset" in v.pages]  # fmt: skip
    if not ends or not timeline:
        return {}
    until = max(ends)
    seen = [row for row in timeline if row[0] <= until + 0.5] or timeline[:1]
    _, server, browser = seen[-1]
    return {"seconds": round(seen[-1][0], 1), "server_cpu_s": round(server, 1),
            "browser_cpu_s": round(browser, 1)}  # fmt: skip


def _quantile(ordered: list[float], q: float) -> float:
    """The ``q`` quantile of sorted values (nearest rank; 0 for none)."""
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else 0.0


# ------------------------------------------------------------------------------- results


def top(server_s: dict[str, float], n: int = 4) -> str:
    """The largest categories, as ``name 1.23 s``."""
    items = sorted(server_s.items(), key=lambda kv: -kv[1])[:n]
    return ", ".join(f"{name} {seconds:.2f}" for name, seconds in items if seconds >= 0.01)


def one_markdown(payload: dict) -> list[str]:
    """One row per interaction: median seconds and bytes, and the median repetition's
    breakdown."""
    reps = payload["repetitions"]
    names = list(reps[0]["flow"])
    lines = ["| interaction | median (s) | all (s) | server: script runs / CPU (s) | browser "
             "main thread (s) | received | server: where the time went (s) | stalls (s) | "
             "figure JSON |", "|---|---:|---|---:|---:|---:|---|---:|---:|"]  # fmt: skip
    for name in names:
        samples = [r for rep in reps for r in rep["flow"].get(name, [])]
        ordered = sorted(samples, key=lambda r: r["s"])
        middle = ordered[len(ordered) // 2]
        every = " ".join(f"{r['s']:.2f}" for r in samples)
        lines.append(
            f"| {name} | {middle['s']:.2f} | {every} | {middle['runs_s']:.2f} / "
            f"{middle['cpu_s']:.2f} | {middle.get('browser_s', 0):.2f} | "
            f"{middle['bytes'] / 1024:,.0f} KB | "
            f"{top(middle['server_s'])} | {middle['stall_s']:.2f} | "
            f"{middle['figure_json_bytes'] / 1024:,.0f} KB |"
        )
    work = defaultdict(list)
    for rep in reps:
        for cat, seconds in rep["background_s"].items():
            work[cat].append(seconds)
    if work:
        lines += ["", "Outside any visitor's script run (background, per server): " + ", ".join(
            f"{cat} {statistics.median(v):.2f} s" for cat, v in work.items())]  # fmt: skip
    return lines


def many_markdown(payload: dict) -> list[str]:
    """The load test's latencies and the server's time by category."""
    lines = ["| page | visits | p50 | p90 | max |", "|---|---:|---:|---:|---:|"]
    for key, row in payload["latency_s"].items():
        lines.append(f"| {key} | {row['n']} | {row['p50']:.1f} s | {row['p90']:.1f} s | "
                     f"{row['max']:.1f} s |")  # fmt: skip
    server, runs = payload["server"], payload["script_runs_s"]
    browsers = ("the clients' (protocol-level, on the same CPUs: little) and the network's"
                if payload.get("remote") else "the browser's (four Chromiums on the server's 2 "
                "CPUs here) and the network's")  # fmt: skip
    lines += ["", f"The server's script runs (every page view, rerun and fragment run of every "
              f"visitor, {runs['n']}): p50 {runs['p50']:.2f} s, p90 {runs['p90']:.2f} s, max "
              f"{runs['max']:.2f} s; the rest of a page's time above is {browsers}."]  # fmt: skip
    lines += ["", "Server time in visitors' script runs: " + top(server["server_s"], 12) + " s",
              f"Background: {top(server['background_s'], 12) or 'none'}; stalls over 50 ms: "
              f"{server['stall_s']:.1f} s in all, the longest {server['stall_max_s']:.2f} s, "
              f"{payload['stalls_over_0_5_s']} over 0.5 s; figure JSON "
              f"{server['figure_json_bytes'] / 1024:,.0f} KB; server peak "
              f"{payload['server_vmhwm_mb']:,.0f} MB"]  # fmt: skip
    if first := payload.get("first_pages_cpu"):
        lines += ["", f"While the visitors opened Home and Dataset (the first {first['seconds']} s "
                  f"of the run) the server used {first['server_cpu_s']} CPU-s and the "
                  f"{'clients' if payload.get('remote') else 'browsers (Chromium, Playwright)'} "
                  f"{first['browser_cpu_s']} CPU-s of the "
                  f"{payload['cpus']} CPUs' {payload['cpus'] * first['seconds']:.0f}."]  # fmt: skip
    return lines + [f"- failed: {f}" for f in payload["failed"]]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--visitors", type=int, default=1, help="1 (default) or more (load)")
    parser.add_argument("--repeat", type=int, default=3, help="fresh servers (one visitor)")
    parser.add_argument("--photos", action="store_true", help="the 4000 real photos active")
    parser.add_argument("--epochs", type=int, default=2, help="of each training visitor's run")
    parser.add_argument("--cpus", help="CPUs for the server (default: 0 for one visitor, "
                        "0,1 for several)")  # fmt: skip
    parser.add_argument("--remote", action="store_true", help="with --visitors N: protocol-level "
                        "visitors (remote_visitors.py), not Chromium")  # fmt: skip
    parser.add_argument("--label", default="", help="a note for the results (e.g. the commit)")
    args = parser.parse_args()
    default = "0" if args.visitors == 1 else "0,1"
    args.cpus = {int(c) for c in (args.cpus or default).split(",")}
    info = machine()
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True,
                            text=True, cwd=ROOT).stdout.strip()  # fmt: skip
    payload = profile_one(args) if args.visitors == 1 else profile_many(args)
    command = " ".join(["python benchmarks/profile_pages.py", *sys.argv[1:]])
    head = [f"## Page profile ({datetime.date.today().isoformat()}, {commit}{args.label})", "",
            f"`{command}`: {info['cpu']}, server on CPU(s) {sorted(args.cpus)}, load average "
            f"{info['load_before']} before; Streamlit {info['streamlit']}.", ""]  # fmt: skip
    body = one_markdown(payload) if args.visitors == 1 else many_markdown(payload)
    name = "profile_pages" + ("_photos" if args.photos else "")
    name += f"_{args.visitors}_visitors" if args.visitors > 1 else ""
    name += "_remote" if args.remote and args.visitors > 1 else ""
    payload.update(command=command, machine=info, commit=commit)
    write_results(name, json.loads(json.dumps(payload, default=str)), head + body)
    if args.visitors > 1 and payload["failed"]:
        sys.exit(1)


if __name__ == "__main__":
    main()
