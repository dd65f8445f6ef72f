"""Load test of a hosted catdog server whose visitors' browsers run elsewhere, as on a real host.

    python benchmarks/remote_visitors.py                  # 4 visitors, 2 epochs (about 1 min)
    python benchmarks/remote_visitors.py --visitors 1 --epochs 1   # a quick check
    python benchmarks/remote_visitors.py --compare        # 1 visitor: browser vs this client
    python benchmarks/remote_visitors.py --warm 20        # a server visited 20 s before them

``load_test.py``'s hosted flow and measurements (the same data home, server, steps, settings,
latencies, queue, trainings, memory and CPU split), but each visitor is a protocol-level
Streamlit client (``st_client.py``: asyncio, the websocket and Streamlit's own protobufs, plain
HTTP for files and uploads) instead of a headless Chromium on the server's own CPUs. Four
Chromiums rendering Streamlit's frontend used more CPU than the server they measured (12.7 vs
7.2 CPU-s while four visitors opened Home and Dataset, ``profile_pages.py --visitors 4``); a
hosted server's visitors render on their own computers. The client sends what the browser sends
and fetches what it fetches (see ``st_client.py``) at a few percent of its CPU, so the server's
CPUs are its own.

Each visitor opens Home (a new session: its own ``?ws=`` workspace), switches to the Dataset,
Augmentation and Train pages, and classifies a photo of the demo's test split on the Predict
page. Visitors 1 and 2 first set the Train page's Epochs, Image size and Batch size (each a
rerun) and click Start training, visitor 2 as soon as visitor 1's run is under way, so it waits
in hosted mode's queue; both watch their run (the Train page's live view reruns every second as
an ``st.fragment``) until it completes. A page counts as ready when its last script run has
finished, 0.75 s have passed without a message, and the files it named (images, the frontend's
chunks) have arrived, counted to whichever came last; it must then show a text only it shows
(and its images), and no exception. "classify" runs from the start of the upload until the
probabilities are shown and the app is idle.

``--compare`` checks that the client makes the server do what a browser makes it do: one
visitor (``--epochs``) through ``load_test.py`` in Chromium, then through this client, each on
a fresh server with ``page_timing.py``'s log; per step, the script runs and fragment runs the
server made and their seconds.

Measured on 2026-12-05, Intel Xeon Processor, 2 cores (avx2 avx512_bf16 amx_bf16), Streamlit
1.67.0, on a quiet machine:

- ``--compare`` (load average 0.83 before): the same script runs per step (one per page view;
  four for the Train page's three settings and Start; a fragment run a second while the run
  trained: 7 in Chromium, 9 here), and the same server CPU for the whole visit: 12.6 CPU-s
  with Chromium, 12.5 with the client. Chromium and Playwright used 10.3 CPU-s beside it, the
  client 0.4. The client fetches the same 29 images and all of the 147 frontend files Chromium
  fetched but three fonts and a spinner's chunk (shown only when a cached call is slow).
- four visitors (load average 0.68 before): pages p50 0.3 s, p90 1.1 s (Home 1.0 s, Dataset
  1.1 s, the others at most 0.4 s); classify p50 1.9 s, p90 3.8 s: visitors 3 and 4 classify
  their first photo while the server still imports TensorFlow and loads the model in the
  background beside the two trainings; 2 epochs trained in 7 s (the second run queued 7 s);
  CPU during the 23 s of visits: server 22 s, clients 1 s, other work 0 s.

Writes ``results/remote_visitors.json`` and ``.md`` (``--compare``:
``remote_visitors_compare``) and prints the Markdown. Exits 1 if a visitor's flow failed
(naming the visitor and the step; the server log stays in the data home, whose path is
printed). The server is always stopped.
"""

from __future__ import annotations

import argparse
import asyncio
import concurrent.futures
import datetime
import json
import re
import shutil
import signal
import sys
import tempfile
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

import load_test
from common import TIMING_LAUNCHER, write_results
from load_test import (
    BATCH_SIZE,
    IMAGE_SIZE,
    PAGE_ERRORS,
    PAGE_TIMEOUT,
    PAGES,
    TRAINERS,
    Gate,
    StepFailed,
    Visitor,
    latencies,
    machine,
)
from st_client import Client, plain

PROBABILITY = re.compile(r"(cats|dogs): [\d.]+%")
STEPS = ("home", "dataset", "augmentation", "train", "training", "predict", "classify")


# ----------------------------------------------------------------------------- the visitor


async def shown(client: Client, key: str, since: float) -> float:
    """Wait until page ``key`` is ready; fail unless it shows its own content and images and
    no error. The seconds since ``since``."""
    seconds = await client.settled(since)
    text = client.text()
    if found := PAGE_ERRORS.search(text):
        raise StepFailed(f"the page says: {found.group(0)}")
    markers, images = PAGES[key]
    missing = [m for m in markers if m not in text]
    if missing:
        raise StepFailed(f"the page does not show {missing[0]!r}: {text[-300:]!r}")
    if client.images() < images:
        raise StepFailed(f"the page shows {client.images()} image(s), not {images}")
    return seconds


async def open_home(client: Client, visitor: Visitor) -> float:
    """Open the landing page as a new visitor; keeps the workspace token the app gives it."""
    started = time.monotonic()
    await client.open("/")
    seconds = await shown(client, "home", started)
    token = re.search(r"(?:^|&)ws=([A-Za-z0-9_-]{44})", client.query)
    if token is None:
        raise StepFailed(f"the app gave no workspace link: query {client.query!r}")
    visitor.token = token.group(1)
    return seconds


async def open_page(client: Client, key: str) -> float:
    """Switch to page ``key`` as the sidebar's link does; seconds until it is ready."""
    return await shown(client, key, await client.switch_page(key))


async def train(client: Client, visitor: Visitor, epochs: int, gate: Gate, alone: bool) -> dict:
    """Start a short run on the Train page and watch it to its end (as ``load_test.train``)."""
    for label, value in (("Epochs", epochs), ("Image size (px)", IMAGE_SIZE),
                         ("Batch size", BATCH_SIZE)):  # fmt: skip
        asked = time.monotonic()
        await client.set_value(label, value)
        await client.settled(asked)
    await gate.turn(visitor.number, alone)

    async def read() -> str:
        client.check()
        return client.text()

    clicked = await client.click("Start training")
    started, told = await load_test.under_way(read, clicked)
    if visitor.number == 1:
        gate.first_started.set()
    ended, phases = await load_test.watch_run(read, started)
    completed = time.monotonic()
    if ended.group(2) != "completed":
        raise StepFailed(f"the run did not complete: {ended.group(0)}")
    await client.settled(started)  # the page redraws once when the run ends: let it finish
    elapsed = client.find("metric", "Elapsed").body
    return {"run_id": ended.group(1), "epochs": int(ended.group(3)),
            "queued": bool(told), "queue_told": told,
            "queue_wait_s": started - clicked, "browser_s": completed - started,
            "phases_s": phases,
            "server_elapsed_s": float(plain(elapsed).split()[0].replace(",", ""))}  # fmt: skip


async def classify(client: Client, photo: Path) -> float:
    """Upload one photo on the Predict page; seconds until its probabilities are shown."""
    started = time.monotonic()
    await client.upload("Photos", photo.name, photo.read_bytes(), "image/jpeg")
    await client.wait_for(PROBABILITY, started)
    seconds = await client.settled(started)
    text = client.text()
    if found := PAGE_ERRORS.search(text):
        raise StepFailed(f"the page says: {found.group(0)}")
    if {m.group(1) for m in PROBABILITY.finditer(text)} != {"cats", "dogs"}:
        raise StepFailed(f"no probability per class after the upload: {text[-300:]!r}")
    return seconds


async def visit(url: str, visitor: Visitor, settings: dict, gate: Gate) -> None:
    """One visitor's whole flow; a failure is recorded (visitor, step, why), not raised."""
    client = Client(url, PAGE_TIMEOUT)
    try:
        await load_test.flow(visitor, settings, gate, lambda: open_home(client, visitor),
                             lambda key: open_page(client, key),
                             lambda alone: train(client, visitor, settings["epochs"], gate, alone),
                             lambda photo: classify(client, photo))  # fmt: skip
    finally:
        settings.setdefault("client_bytes", []).append(
            {"visitor": visitor.number, "websocket": client.timeline.received,
             "http": client.http.received,
             "requests": dict(client.http.requests)}
        )  # fmt: skip
        await client.close()


async def visit_all(url: str, settings: dict) -> list[Visitor]:
    """All visitors at once, each a :class:`st_client.Client` (its own cookies and session)."""
    loop = asyncio.get_running_loop()  # each visitor's 6 connections block a thread each
    loop.set_default_executor(concurrent.futures.ThreadPoolExecutor(8 * settings["visitors"]))
    settings["browser"] = "none: protocol-level clients (st_client.py)"
    if settings.get("warm"):  # someone opened Home a while ago: the server has warmed up
        first = Client(url, PAGE_TIMEOUT)
        try:
            await open_home(first, Visitor(0, trains=False))
        finally:
            await first.close()
        await asyncio.sleep(settings["warm"])
    visitors = [Visitor(n, trains=n <= TRAINERS) for n in range(1, settings["visitors"] + 1)]
    gate = Gate()
    await asyncio.gather(*(visit(url, v, settings, gate) for v in visitors))
    return visitors


# ------------------------------------------------------------------------------ comparing


def step_work(spans: list[dict], window: list[float]) -> dict[str, float]:
    """The server's script runs and fragment runs that started in a step's window: how many,
    and their seconds."""
    runs = [s for s in spans if window[0] <= s["t0"] <= window[1]]
    full = [s["t1"] - s["t0"] for s in runs if s["cat"] == "script run"]
    fragments = [s["t1"] - s["t0"] for s in runs if s["cat"] == "fragment run"]
    return {"runs": len(full), "run_s": sum(full), "fragment_runs": len(fragments),
            "fragment_s": sum(fragments)}  # fmt: skip


def compare(epochs: int) -> dict[str, Any]:
    """One visitor through the browser, then through this client, each on a fresh server with
    the timing log; per step the server's work, and each side's page timings."""
    from profile_pages import read_spans

    sides = {}
    for name, visiting in (("browser", load_test.visit_all), ("client", visit_all)):
        home = Path(tempfile.mkdtemp(prefix=f"catdog-compare-{name}-"))
        log = home / "spans.jsonl"
        server = {"launcher": TIMING_LAUNCHER, "env": {"CATDOG_PAGE_TIMING": str(log)}}
        settings = {"visitors": 1, "epochs": epochs, "home": home, "port": None, "server": server}
        result = load_test.run(settings, visiting)
        visitor = result["visitors"][0]
        if visitor.error:
            raise SystemExit(f"{name}: failed at {visitor.failed_step}: {visitor.error} ({home})")
        spans = read_spans(log)
        sides[name] = {"pages_s": visitor.pages, "cpu": {k: result[k] for k in (
            "server_share_cpu_s", "browser_share_cpu_s", "other_work_cpu_s")},
            "steps": {k: step_work(spans, w) for k, w in visitor.windows.items()}}  # fmt: skip
        shutil.rmtree(home, ignore_errors=True)
    return sides


def compare_markdown(sides: dict[str, Any]) -> list[str]:
    """Per step: the server's script runs / fragment runs (their seconds), browser vs client."""
    b, c = sides["browser"], sides["client"]
    lines = ["| step | browser: runs (s) | client: runs (s) | browser: fragment runs (s) | "
             "client: fragment runs (s) | page s: browser / client |",
             "|---|---:|---:|---:|---:|---:|"]  # fmt: skip
    for key in STEPS:
        if key not in b["steps"] or key not in c["steps"]:
            continue
        x, y = b["steps"][key], c["steps"][key]
        page = (f"{b['pages_s'][key]:.2f} / {c['pages_s'][key]:.2f}"
                if key in b["pages_s"] else "")  # fmt: skip
        lines.append(f"| {key} | {x['runs']} ({x['run_s']:.2f}) | {y['runs']} ({y['run_s']:.2f}) "
                     f"| {x['fragment_runs']} ({x['fragment_s']:.2f}) | {y['fragment_runs']} "
                     f"({y['fragment_s']:.2f}) | {page} |")  # fmt: skip
    for name, side in sides.items():
        cpu = side["cpu"]
        lines.append(f"\nCPU during the visit ({name}): server {cpu['server_share_cpu_s']:.1f} s, "
                     f"{name} {cpu['browser_share_cpu_s']:.1f} s, other work "
                     f"{cpu['other_work_cpu_s']:.1f} s.")  # fmt: skip
    return lines


# ---------------------------------------------------------------------------------- results


def markdown(payload: dict) -> list[str]:
    """The results as Markdown, as ``load_test.py``'s with this client in the CPU split."""
    from profile_pages import first_pages_cpu

    visitors = payload["visitors"]
    who = "protocol-level visitors (`st_client.py`)"
    lines = load_test.header(payload, "Load test with remote visitors", who)
    lines += load_test.tables(payload, "these clients")
    first = first_pages_cpu([Visitor(**v) for v in visitors], payload["cpu_timeline"])
    if first:
        lines += ["", f"While the visitors opened Home and Dataset (the first {first['seconds']} s)"
                  f" the server used {first['server_cpu_s']} CPU-s and the clients "
                  f"{first['browser_cpu_s']} CPU-s."]  # fmt: skip
    sent = payload["settings"].get("client_bytes", [])
    if sent:
        lines += [f"Received per visitor: {sum(b['websocket'] for b in sent) / len(sent) / 1e6:.1f}"
                  f" MB of websocket messages, {sum(b['http'] for b in sent) / len(sent) / 1e6:.1f}"
                  " MB over HTTP (the frontend's files, images)."]  # fmt: skip
        lines += ["Requests per visitor: " + ", ".join(
            f"{kind} {sum(b['requests'].get(kind, 0) for b in sent) / len(sent):.0f}"
            for kind in ("static", "media", "other", "PUT"))]  # fmt: skip
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--visitors", type=int, default=4, help="visitors at once (default 4)")
    parser.add_argument("--epochs", type=int, default=2, help="epochs of each visitor's run")
    parser.add_argument("--port", type=int, help="the server's port (default: a free one)")
    parser.add_argument(
        "--warm",
        type=float,
        default=0.0,
        metavar="SECONDS",
        help="first one visitor opens Home, then the visitors come SECONDS "
        "later (a server someone visited before; default: a cold server)",
    )
    parser.add_argument("--compare", action="store_true",
                        help="one visitor in Chromium, then one through this client")  # fmt: skip
    args = parser.parse_args()
    if args.visitors < 1 or args.epochs < 1:
        parser.error("--visitors and --epochs must be at least 1")
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # still stop the server
    info = machine()
    command = " ".join(["python benchmarks/remote_visitors.py", *sys.argv[1:]])
    date = datetime.date.today().isoformat()
    if args.compare:
        sides = compare(args.epochs)
        head = [f"## One visitor: Chromium vs the protocol-level client ({date})", "",
                f"`{command}`: {info['cpu']}, {info['cores']} cores ({info['flags']}), load "
                f"average {info['load_before']} before; Streamlit {info['streamlit']}. The "
                f"server's script runs started in each step of the flow.", ""]  # fmt: skip
        payload = {"date": date, "command": command, "machine": info, "sides": sides}
        write_results("remote_visitors_compare", payload, head + compare_markdown(sides))
        return
    port = load_test.free_port(args.port) if args.port else None
    home = Path(tempfile.mkdtemp(prefix="catdog-remote-visitors-"))
    settings = {"visitors": args.visitors, "epochs": args.epochs, "home": home, "port": port,
                "warm": args.warm}  # fmt: skip
    result = load_test.run(settings, visit_all)
    visitors = [asdict(v) for v in result.pop("visitors")]
    payload = {"date": date, "command": command, "machine": info,
               "settings": {**settings, "home": str(home), "photo": settings["photo"].name},
               "latency_s": latencies([Visitor(**v) for v in visitors]),
               "visitors": visitors, **result}  # fmt: skip
    write_results("remote_visitors" + ("_warm" if args.warm else ""),
                  json.loads(json.dumps(payload, default=str)),
                  markdown(payload))  # fmt: skip
    if any(v["failed_step"] for v in visitors):
        print(f"\nsome flows failed: streamlit.log is in {home}")
        sys.exit(1)
    shutil.rmtree(home, ignore_errors=True)


if __name__ == "__main__":
    main()
