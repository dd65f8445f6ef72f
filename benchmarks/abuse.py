"""Abuse test of a hosted catdog server: what one abusive visitor can make it spend.

    python benchmarks/abuse.py                 # every attack (about 8 min on 2 loaded cores)
    python benchmarks/abuse.py --only transport,pixels   # some of them

Prepares a fresh data home with catdog's own command line (the demo dataset and one shared
example run, ``load_test.prepare_home``), starts one real ``streamlit run app.py`` with
``CATDOG_HOSTED=1`` on 127.0.0.1 (``hosted_memory.start_server``; a workspace quota of
:data:`QUOTA_MB` and :data:`WORKSPACES_PER_HOUR` new workspaces an hour, so that both are
reached within minutes), and drives it with async Playwright and Debian's Chromium:

- first, three fresh browser contexts open three page URLs at once (a fresh server's first
  visits, served in Streamlit's legacy ``pages/`` mode);
- then an honest visitor (its own context) goes round Home, Dataset, Augmentation, Train and
  Predict, classifying a photo, again and again, while an attacker runs the attacks below one
  after the other, each bounded in count and time (:data:`ATTACK_SECONDS`).

For each attack: what the server refused or let through, and what it spent meanwhile: the data
home's growth on disk, the peak resident memory of the server and its children (sampled every
0.2 s) and the server's CPU seconds; for the run: the server's ``VmHWM``, and the honest
visitor's page latencies (p50, p90, max) and whether each of its rounds completed. Writes
``results/abuse.json`` and ``results/abuse.md`` and prints the Markdown. The server is always
stopped; its data home (with its log) is kept and its path printed.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import http.client
import io
import os
import random
import re
import sys
import tempfile
import time
import uuid
import zipfile
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from common import write_results
from hosted_memory import CHROMIUM, CHROMIUM_ARGS, Sampler, descendants, start_server, status_kb
from load_test import (
    VIEWPORT,
    Visitor,
    classify,
    cpu_jiffies,
    machine,
    open_home,
    open_page,
    percentile,
    prepare_home,
    settled,
    shown,
    stop_server,
    tracebacks,
)
from playwright.async_api import async_playwright

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from catdog.quota import folder_size  # noqa: E402 - after the path to the repository

MB = 1024 * 1024
QUOTA_MB = 5  # the server's workspace quota, so a few small imports reach it
WORKSPACES_PER_HOUR = 14  # the server's cap on new workspaces, so a loop of visits reaches it
ATTACK_SECONDS = 75.0  # each attack's time bound
BUDGET_SECONDS = 420.0  # from the server's start: later attacks are skipped (said so)
WAIT = 120_000  # ms: a page or a result on a loaded 2-core machine
FRAME = "this page's link brings you back, with full control"  # the sidebar, in hosted mode
REFUSED_WORKSPACE = "new workspaces for this hour"
FORGED = "That link does not open a workspace of this server"


# ------------------------------------------------------------------------- the measurements


class Spend:
    """What the server spent during one attack: disk growth of the data home, the peak memory
    of the server and its children, the server's CPU seconds."""

    def __init__(self, pid: int, home: Path) -> None:
        self.pid, self.home = pid, home

    def __enter__(self) -> Spend:
        self.disk, self.cpu = folder_size(self.home), cpu_jiffies(self.pid)
        self.rss_before = status_kb(self.pid, "VmRSS") / 1024
        self.sampler = Sampler(self.pid)
        self.sampler.start()
        self.started = time.monotonic()
        return self

    def __exit__(self, *exc: object) -> None:
        self.figures = {
            "seconds": round(time.monotonic() - self.started, 1),
            "disk_mb": round((folder_size(self.home) - self.disk) / MB, 1),
            "rss_before_mb": round(self.rss_before),
            "peak_rss_mb": round(self.sampler.stop() / 1024),
            "server_cpu_s": round((cpu_jiffies(self.pid) - self.cpu) / os.sysconf("SC_CLK_TCK"), 1),
        }


def put_upload(url: str, session: str, xsrf: str, cookie: str, size: int, chunked: bool) -> int:
    """PUT ``size`` zero bytes to Streamlit's upload route as the browser does (a multipart
    form), streamed; the answer's HTTP status."""
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
    connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=120)
    try:
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):  # refused mid-stream
            connection.request("PUT", f"/_stcore/upload_file/{session}/{uuid.uuid4()}",
                               body=body(), headers=headers, encode_chunked=chunked)  # fmt: skip
        return connection.getresponse().status
    finally:
        connection.close()


# ------------------------------------------------------------------------ files an attacker sends


def png(side: int, colour: tuple[int, int, int] = (200, 120, 40)) -> bytes:
    """A one-colour PNG of side × side pixels: a few hundred kB that decode to side² pixels."""
    from PIL import Image

    buffer = io.BytesIO()
    Image.new("RGB", (side, side), colour).save(buffer, "PNG", compress_level=9)
    return buffer.getvalue()


def bomb_zip(entries: int) -> bytes:
    """A zip of ``entries`` 49-megapixel one-colour PNGs in cats/ and dogs/ folders."""
    pixels = png(7000)
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for k in range(entries):
            archive.writestr(f"{('cats', 'dogs')[k % 2]}/{k}.png", pixels)
    return buffer.getvalue()


def noise_zip(images: int, seed: int) -> bytes:
    """A zip of noisy 320-px JPEGs at quality 20 (small, and larger once re-encoded)."""
    import numpy as np
    from PIL import Image

    rng, buffer = np.random.default_rng(seed), io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_STORED) as archive:
        for k in range(images):
            out = io.BytesIO()
            noise = rng.integers(0, 256, (320, 320, 3), dtype=np.uint8)
            Image.fromarray(noise).save(out, "JPEG", quality=20)
            archive.writestr(f"{('cats', 'dogs')[k % 2]}/{k}.jpg", out.getvalue())
    return buffer.getvalue()


# ------------------------------------------------------------------------------ page helpers


async def visitor_page(browser: Any, url: str, path: str = "", query: str = "") -> Any:
    """A new browser context (a new visitor) on ``url/path?query``, its frame shown."""
    page = await (await browser.new_context(viewport=VIEWPORT)).new_page()
    await page.goto(f"{url}/{path}{'?' + query if query else ''}", timeout=WAIT)
    await (
        page.get_by_text(FRAME)
        .or_(page.get_by_text(REFUSED_WORKSPACE))
        .first.wait_for(timeout=WAIT)
    )
    await settled(page, time.monotonic())
    return page


def link_of(page: Any) -> str | None:
    found = re.search(r"[?&]ws=([A-Za-z0-9_-]{44})", page.url)
    return found.group(1) if found else None


async def goto(page: Any, url: str, key: str) -> None:
    """Open page ``key`` in the visitor's own workspace and wait until it is idle."""
    await page.goto(f"{url}/{key}?ws={link_of(page)}", timeout=WAIT)
    await page.get_by_text(FRAME).wait_for(timeout=WAIT)
    await settled(page, time.monotonic())


async def upload(page: Any, name: str, data: bytes, mime: str) -> None:
    await page.locator('input[type="file"]').first.set_input_files(
        files=[{"name": name, "mimeType": mime, "buffer": data}], timeout=WAIT
    )


async def import_zip(page: Any, url: str, name: str, data: bytes) -> str:
    """Import a .zip on the Dataset page; the first line the page says about it."""
    await goto(page, url, "dataset")
    await page.get_by_role("tab", name="Import a dataset").click(timeout=WAIT)
    await upload(page, name, data, "application/zip")
    await page.get_by_role("button", name="Import", exact=True).click(timeout=WAIT)
    said = page.get_by_text(re.compile(r"Import failed|Imported \d|already holds"))
    await said.first.wait_for(timeout=ATTACK_SECONDS * 1000)
    await settled(page, time.monotonic(), timeout=ATTACK_SECONDS)
    return (await said.first.inner_text())[:300]


async def start_run(page: Any, url: str, precision: str | None = None) -> str:
    """Start a run with the Train page's first settings (hosted mode's caps); what the page
    says after the click. The attacks stop it soon after."""
    await goto(page, url, "train")
    if precision:
        box = page.locator('[data-testid="stSelectbox"]').filter(has_text="Precision")
        await box.click(timeout=WAIT)
        await page.get_by_role("option", name=precision, exact=True).click(timeout=WAIT)
        await settled(page, time.monotonic())
    await page.get_by_role("button", name="Start training").click(timeout=WAIT)
    said = page.get_by_text(re.compile(r"Run \S+ —|waiting for its turn|Cannot start training"))
    await said.first.wait_for(timeout=WAIT)
    return (await said.first.inner_text())[:300]


async def stop_runs(page: Any) -> None:
    """Cancel or stop the run the page watches (a courtesy, so later attacks get the CPU)."""
    for name in ("Cancel", "Stop training"):
        button = page.get_by_role("button", name=name)
        if await button.count():
            await button.first.click(timeout=WAIT)
            await settled(page, time.monotonic())


# ---------------------------------------------------------------------------------- attacks


class Ctx:
    """What the attacks share: the browser, the server and its data home."""

    def __init__(self, browser: Any, url: str, home: Path, pid: int, example: str) -> None:
        self.browser, self.url, self.home, self.pid, self.example = browser, url, home, pid, example
        self.attacker = ""  # the attacker's own workspace link, made before the attacks

    async def attacker_page(self, path: str = "") -> Any:
        """A new browser context on the attacker's own workspace (no new workspace made)."""
        return await visitor_page(self.browser, self.url, path, f"ws={self.attacker}")


async def first_visits(ctx: Ctx) -> dict:
    """Three fresh visitors open three page URLs at once on the fresh server."""
    keys = ["train", "history", "dataset"]
    pages = [await (await ctx.browser.new_context(viewport=VIEWPORT)).new_page() for _ in keys]
    await asyncio.gather(*(p.goto(f"{ctx.url}/{k}", wait_until="commit", timeout=WAIT)
                           for p, k in zip(pages, keys, strict=True)))  # fmt: skip
    framed = 0
    for page in pages:
        with contextlib.suppress(Exception):
            await page.get_by_text(FRAME).wait_for(timeout=WAIT)
            await settled(page, time.monotonic())
            text = await page.locator("body").inner_text()
            framed += "Traceback" not in text and "Something went wrong" not in text
    return {"what": "3 fresh visitors open /train, /history, /dataset at once (first visits)",
            "outcome": f"{framed} of 3 drawn in the workspace's frame, no traceback",
            "bounded": framed == 3}  # fmt: skip


async def transport(ctx: Ctx) -> dict:
    """A 120 MB upload (declared, and streamed without a length), then 5 uploads of 45 MB in
    one session, straight to Streamlit's upload route."""
    page = await ctx.attacker_page("dataset")
    await page.get_by_role("tab", name="Import a dataset").click(timeout=WAIT)
    async with page.expect_request(re.compile(r"/_stcore/upload_file/")) as sent:
        await upload(page, "a.zip", b"PK", "application/zip")
    request = await sent.value
    session = urlsplit(request.url).path.split("/")[-2]
    cookie = "; ".join(f"{c['name']}={c['value']}" for c in await page.context.cookies())
    args = (ctx.url, session, request.headers.get("x-xsrftoken", ""), cookie)
    big = [await asyncio.to_thread(put_upload, *args, 120 * MB, chunked) for chunked in (0, 1)]
    held = [await asyncio.to_thread(put_upload, *args, 45 * MB, False) for _ in range(5)]
    await page.context.close()
    accepted = held.count(204)
    return {"what": "one session PUTs 120 MB (declared; chunked) then 5 × 45 MB",
            "outcome": f"120 MB: HTTP {big[0]}, {big[1]}; 45 MB each: {accepted} of 5 accepted "
                       f"(HTTP {', '.join(map(str, held))})",
            "bounded": big == [413, 413] and accepted <= 2}  # fmt: skip


async def forged_links(ctx: Ctx) -> dict:
    """Visits with made-up ``?ws=`` values: random, an old bare token, a real link altered."""
    victim = await visitor_page(ctx.browser, ctx.url)
    real = link_of(victim)
    forged = ["".join(random.choices("abcdefghijklmnopqrstuvwxyz0123456789", k=44)),
              real[:22], real[:-1] + ("A" if real[-1] != "A" else "B")]  # fmt: skip
    fresh, told = set(), 0
    for value in forged:
        page = await visitor_page(ctx.browser, ctx.url, "", f"ws={value}")
        told += await page.get_by_text(FORGED).count() > 0
        if (got := link_of(page)) not in (None, real, value):
            fresh.add(got[:22])
        await page.context.close()
    await victim.context.close()
    return {"what": "3 visits with a forged ?ws= (random; bare token; altered signature)",
            "outcome": f"{len(fresh)} of 3 got a new workspace (not the victim's), {told} told so",
            "bounded": len(fresh) == 3 and real[:22] not in fresh}  # fmt: skip


async def heavy_pixels(ctx: Ctx) -> dict:
    """20 small PNGs that each decode to 49 megapixels, on the Predict page."""
    page = await ctx.attacker_page("predict")
    pixels = png(7000)
    files = [{"name": f"p{k}.png", "mimeType": "image/png", "buffer": pixels} for k in range(20)]
    await page.locator('input[type="file"]').first.set_input_files(files=files, timeout=WAIT)
    said = page.get_by_text(re.compile(r"megapixels|cats: [\d.]+%"))
    await said.first.wait_for(timeout=ATTACK_SECONDS * 1000)
    await settled(page, time.monotonic(), timeout=ATTACK_SECONDS)
    text = (await said.first.inner_text())[:200]
    await page.context.close()
    return {"what": f"20 PNGs of {len(pixels) // 1024} kB, 7000×7000 px each, classified",
            "outcome": text, "bounded": "megapixels" in text}  # fmt: skip


async def zip_bomb(ctx: Ctx) -> dict:
    """A small zip of highly compressible 49-megapixel PNGs, imported."""
    data = bomb_zip(6)
    page = await ctx.attacker_page()
    try:
        said = await import_zip(page, ctx.url, "bomb.zip", data)
    except Exception as exc:  # still decoding when the attack's time was up
        said = f"no answer after {ATTACK_SECONDS:.0f} s ({type(exc).__name__}): still importing"
    await page.context.close()
    return {"what": f"a {len(data) // 1024} kB zip of 6 one-colour 7000×7000 PNGs, imported",
            "outcome": said, "bounded": None}  # fmt: skip


async def export_into_example(ctx: Ctx) -> dict:
    """Export the shared example run from the History page."""
    example = ctx.home / "runs" / ctx.example
    before = sorted(str(p.relative_to(example)) for p in example.rglob("*"))
    page = await ctx.attacker_page("history")
    await page.get_by_text("Export for use without catdog").click(timeout=WAIT)
    await page.get_by_role("button", name="Export", exact=True).click(timeout=WAIT)
    said = page.get_by_text(re.compile(r"Export failed|Download \S+|not possible"))
    await said.first.wait_for(timeout=ATTACK_SECONDS * 1000)
    text = (await said.first.inner_text())[:200]
    await page.context.close()
    after = sorted(str(p.relative_to(example)) for p in example.rglob("*"))
    added = sorted(set(after) - set(before))
    return {"what": "export the shared example run (History page)",
            "outcome": f"{text}; files added to the example's folder: {added or 'none'}",
            "bounded": not added}  # fmt: skip


async def precision_auto(ctx: Ctx) -> dict:
    """A run with precision ``auto`` (times the training step in a second process)."""
    page = await ctx.attacker_page()
    task = asyncio.create_task(start_run(page, ctx.url, precision="auto"))
    children = 0
    while not task.done():
        children = max(children, len(descendants(ctx.pid)))
        await asyncio.sleep(0.2)
    said = task.result()
    for _ in range(50):  # 10 s more: the timing child starts after the click
        children = max(children, len(descendants(ctx.pid)))
        await asyncio.sleep(0.2)
    await stop_runs(page)
    await page.context.close()
    return {"what": "start a run with precision auto",
            "outcome": f"{said}; at most {children} child process(es) of the server",
            "bounded": children == 0}  # fmt: skip


async def quota_overfill(ctx: Ctx) -> dict:
    """Imports into one workspace until refused, each under the workspace's quota by itself."""
    page = await ctx.attacker_page()
    token, said = link_of(page)[:22], []
    for k in range(3):
        said.append(await import_zip(page, ctx.url, f"fill{k}.zip", noise_zip(80, k)))
    used = folder_size(ctx.home / "workspaces" / token) / MB
    await page.context.close()
    refused = sum("Import failed" in s for s in said)
    size = len(noise_zip(80, 0)) / MB
    return {"what": f"3 imports of a {size:.1f} MB zip (80 noisy JPEGs) into one {QUOTA_MB} MB "
                    "workspace",
            "outcome": f"{3 - refused} imported, {refused} refused; the workspace holds "
                       f"{used:.1f} MB of its {QUOTA_MB} MB",
            "bounded": used <= QUOTA_MB}  # fmt: skip


async def queue_flood(ctx: Ctx) -> dict:
    """Four browser sessions on one workspace's link each start a run at once."""
    pages = await asyncio.gather(*(ctx.attacker_page() for _ in range(4)))
    said = await asyncio.gather(*(start_run(p, ctx.url) for p in pages), return_exceptions=True)
    said = [s if isinstance(s, str) else f"failed: {type(s).__name__}" for s in said]
    queued = sum("waiting for its turn" in s for s in said)
    refused = sum("Cannot start" in s for s in said)
    locks = len(list((ctx.home / "workspaces").glob("*/runs/*/train.lock")))
    for page in pages:
        with contextlib.suppress(Exception):
            await stop_runs(page)
        await page.context.close()
    return {"what": "4 browser sessions of one workspace start a run at once",
            "outcome": f"{queued} queued, {refused} refused ({'; '.join(s[:70] for s in said)}); "
                       f"{locks} lock files in workspaces",
            "bounded": None}  # fmt: skip


async def many_workspaces(ctx: Ctx) -> dict:
    """Fresh visits (no link) until the server stops making workspaces, at most 12."""
    root = ctx.home / "workspaces"
    before, made, refused = len(list(root.iterdir())), 0, 0
    for _ in range(12):
        page = await visitor_page(ctx.browser, ctx.url)
        if await page.get_by_text(REFUSED_WORKSPACE).count():
            refused += 1
        else:
            made += 1
        await page.context.close()
        if refused >= 2:
            break
    after = len(list(root.iterdir()))
    return {"what": f"up to 12 fresh visits (cap {WORKSPACES_PER_HOUR} new workspaces an hour)",
            "outcome": f"{made} workspaces made, then {refused} visits refused in one "
                       f"sentence; {after - before} new folders",
            "bounded": refused > 0 and after - before == made}  # fmt: skip


ATTACKS: dict[str, Callable[[Ctx], Awaitable[dict]]] = {
    "transport": transport,
    "forged": forged_links,
    "workspaces": many_workspaces,
    "pixels": heavy_pixels,
    "export": export_into_example,
    "bomb": zip_bomb,
    "quota": quota_overfill,
    "precision": precision_auto,
    "queue": queue_flood,
}


# ------------------------------------------------------------------------------ the run


async def attack(ctx: Ctx, name: str, fn: Callable[[Ctx], Awaitable[dict]]) -> dict:
    """One attack, bounded in time, with what the server spent on it."""
    print(f"attack: {name}", flush=True)
    with Spend(ctx.pid, ctx.home) as spend:
        try:
            row = await asyncio.wait_for(fn(ctx), ATTACK_SECONDS + 60)
        except Exception as exc:  # an attack that broke is a finding too: recorded, not raised
            row = {"what": (fn.__doc__ or name).splitlines()[0], "bounded": None,
                   "outcome": f"the attack itself failed: {type(exc).__name__}: "
                              f"{str(exc).splitlines()[0][:200] if str(exc) else ''}"}  # fmt: skip
    row = {"attack": name, **row, **spend.figures}
    print(f"  {row['outcome']}", flush=True)
    return row


async def honest(ctx: Ctx, photo: Path, done: asyncio.Event) -> dict:
    """An honest visitor going round the pages and classifying a photo until the attacks end
    (at least once); each round's page times and whether it completed."""
    visitor, rounds = Visitor(0, trains=False), []
    page = await (await ctx.browser.new_context(viewport=VIEWPORT)).new_page()
    first = True
    while first or not done.is_set():
        times: dict[str, float] = {}
        try:
            if first:
                times["home"] = await open_home(page, ctx.url, visitor)
            else:
                started = time.monotonic()
                await page.goto(f"{ctx.url}/?ws={visitor.token}", timeout=WAIT)
                times["home"] = await shown(page, "home", started)
            for key in ("dataset", "augmentation", "train", "predict"):
                times[key] = await open_page(page, key, visitor)
            times["classify"] = await classify(page, photo)
            rounds.append({"completed": True, "pages": times})
        except Exception as exc:
            rounds.append({"completed": False, "pages": times, "error": str(exc)[:300]})
            page = await (await ctx.browser.new_context(viewport=VIEWPORT)).new_page()
            first = True
            continue
        first = False
    pages = [s for r in rounds for k, s in r["pages"].items() if k != "classify"]
    return {
        "rounds": rounds,
        "completed": sum(r["completed"] for r in rounds),
        "page_p50_s": percentile(pages, 50),
        "page_p90_s": percentile(pages, 90),
        "page_max_s": max(pages),
        "classify_s": [r["pages"].get("classify") for r in rounds],
    }


async def drive(ctx_args: tuple, photo: Path, only: list[str]) -> tuple[list[dict], dict]:
    """First visits, then the honest visitor and the attacks together."""
    started = time.monotonic()
    async with async_playwright() as p:
        browser = await p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        ctx = Ctx(browser, *ctx_args)
        rows = [await attack(ctx, "first-visits", first_visits)]
        attacker = await visitor_page(browser, ctx.url)
        ctx.attacker = link_of(attacker)
        await attacker.context.close()
        done = asyncio.Event()
        visitor = asyncio.create_task(honest(ctx, photo, done))
        await asyncio.sleep(5)  # the honest visitor is in before the attacker
        for name in only:
            if time.monotonic() - started > BUDGET_SECONDS:
                rows.append({"attack": name, "what": (ATTACKS[name].__doc__ or "").split("\n")[0],
                             "outcome": "skipped: the run's time was up", "bounded": None,
                             "disk_mb": "", "rss_before_mb": "", "peak_rss_mb": "",
                             "server_cpu_s": "", "seconds": ""})  # fmt: skip
                continue
            rows.append(await attack(ctx, name, ATTACKS[name]))
        done.set()
        result = await visitor
        await browser.close()
    return rows, result


def run(settings: dict) -> dict:
    """Prepare, serve in hosted mode, attack; the measurements."""
    home = settings["home"]
    example, photo = prepare_home(home)
    os.environ["CATDOG_HOSTED_WORKSPACE_QUOTA_MB"] = str(QUOTA_MB)
    os.environ["CATDOG_HOSTED_NEW_WORKSPACES_PER_HOUR"] = str(WORKSPACES_PER_HOUR)
    proc, url = start_server(home)
    sampler = Sampler(proc.pid)
    sampler.start()
    started = time.monotonic()
    try:
        rows, visitor = asyncio.run(drive((url, home, proc.pid, example), photo, settings["only"]))
        peak = status_kb(proc.pid, "VmHWM") / 1024
        cpu = cpu_jiffies(proc.pid) / os.sysconf("SC_CLK_TCK")
    finally:
        tree = sampler.stop() / 1024
        stop_server(proc)
    return {"attacks": rows, "honest": visitor, "wall_s": time.monotonic() - started,
            "server_vmhwm_mb": peak, "tree_peak_mb": tree, "server_cpu_s": cpu,
            "server_errors": tracebacks(home / "streamlit.log"),
            "quota_mb": QUOTA_MB, "workspaces_per_hour": WORKSPACES_PER_HOUR}  # fmt: skip


def markdown(payload: dict) -> list[str]:
    """The results as Markdown: one row per attack, then the honest visitor and the server."""
    verdict = {True: "bounded", False: "**not bounded**", None: "see outcome"}
    lines = [
        "| attack | what | outcome | verdict | disk MB | RSS MB before → peak | server CPU s | s |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in payload["attacks"]:
        memory = f"{r['rss_before_mb']} → {r['peak_rss_mb']}"
        lines.append(f"| {r['attack']} | {r['what']} | {r['outcome'].replace('|', '/')} | "
                     f"{verdict[r['bounded']]} | {r['disk_mb']} | {memory} | "
                     f"{r['server_cpu_s']} | {r['seconds']} |")  # fmt: skip
    h = payload["honest"]
    lines += ["", f"Honest visitor meanwhile: {h['completed']} of {len(h['rounds'])} rounds "
              f"completed (Home, Dataset, Augmentation, Train, Predict and a classified photo); "
              f"pages p50 {h['page_p50_s']:.1f} s, p90 {h['page_p90_s']:.1f} s, max "
              f"{h['page_max_s']:.1f} s.",
              f"Server: peak RSS (VmHWM) {payload['server_vmhwm_mb']:.0f} MB, with its children "
              f"{payload['tree_peak_mb']:.0f} MB; {payload['server_cpu_s']:.0f} CPU s in "
              f"{payload['wall_s']:.0f} s; {len(payload['server_errors'])} error(s) logged.",
              f"Settings: workspace quota {payload['quota_mb']} MB, "
              f"{payload['workspaces_per_hour']} new workspaces an hour; other caps as shipped.",
              f"{payload['machine']}"]  # fmt: skip
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--only",
        default=",".join(ATTACKS),
        help=f"comma-separated attacks (default all: {', '.join(ATTACKS)})",
    )
    args = parser.parse_args()
    only = [name.strip() for name in args.only.split(",") if name.strip()]
    if unknown := [n for n in only if n not in ATTACKS]:
        raise SystemExit(
            f"unknown attack(s) {', '.join(unknown)}; choose from {', '.join(ATTACKS)}"
        )
    home = Path(tempfile.mkdtemp(prefix="catdog-abuse-"))
    payload = run({"home": home, "only": only})
    info = machine()
    payload["machine"] = (f"{time.strftime('%Y-%m-%d')}, {info['cpu']} ({info['cores']} cores, "
                          f"load {info['load_before']} before), Streamlit {info['streamlit']}; "
                          "`python benchmarks/abuse.py`")  # fmt: skip
    write_results("abuse", payload, markdown(payload))
    print(f"server log: {home / 'streamlit.log'}")


if __name__ == "__main__":
    main()
