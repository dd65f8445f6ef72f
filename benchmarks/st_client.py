"""A Streamlit client at the protocol level: what a browser sends a Streamlit server and fetches
from it, without the browser (and its CPU), for load tests of a server.

One :class:`Client` is one browser tab of a new visitor (its own cookies and session). It speaks
Streamlit's own protocol, read from Streamlit 1.67's server and frontend bundle:

- ``GET /`` and the files ``index.html`` names (the frontend's scripts and styles), then
  ``/_stcore/health`` (which sets the XSRF cookie ``_streamlit_xsrf``) and
  ``/_stcore/host-config``, then the websocket ``/_stcore/stream`` with the subprotocols
  ``streamlit`` and the XSRF token, and the ``Origin`` a browser sends;
- ``BackMsg.rerun_script`` with a ``ClientState`` as the frontend fills it: the page's query
  string (the one the server last set through ``page_info_changed``; none on a page switch,
  which drops it as the browser does), the page's script hash (from the ``navigation``
  message) or, first, its URL path as ``page_name``, every widget's current value (each widget
  element's value or default, as the frontend registers it when it draws it; a button's click
  is a one-off trigger value), the fragment and auto-rerun flags, the hashes of the large
  messages it keeps (the server then sends a reference instead: ``ref_hash``) and the context
  (time zone, locale, URL, colour scheme);
- ``st.fragment(run_every=...)``: every ``auto_rerun`` message starts a timer that asks for the
  fragment's rerun at its interval, until the next full run or page switch, as the frontend does;
- as the deltas arrive, every ``/media/...`` file the page's elements name (images) and the
  frontend's chunk for each element type the visitor sees for the first time (with the chunks
  it imports, from the bundle's ``__vite__mapDeps``), over at most 6 keep-alive connections,
  like a browser's first visit over HTTP/1.1 (Chromium also fetches the three fonts the page's
  styles use, 0.6 MB of the 10 MB of files of a visit; not done here);
- uploads as ``st.file_uploader`` does: ``file_urls_request`` → ``file_urls_response`` → an
  HTTP ``PUT`` (multipart) with the ``X-Xsrftoken`` header → the widget's
  ``file_uploader_state_value``.

The visitor's view of the page is kept as the frontend keeps it: elements by their delta path,
the ones a finished full run did not send again dropped. :meth:`Client.settled` says when a page
is ready: a script run began after it was asked for, the last run has finished (the last
``script_finished`` that is not a run stopped for a rerun, followed by :data:`QUIET` seconds
without a message, as ``profile_pages.py`` reads the browser's) and every file the page asked
for has arrived; counted to whichever of the two came last. An ``exception`` element fails the
visitor at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import http.client
import posixpath
import re
import time
import uuid
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from http.cookies import SimpleCookie
from typing import Any
from urllib.parse import urlsplit

from streamlit.proto.BackMsg_pb2 import BackMsg
from streamlit.proto.ForwardMsg_pb2 import ForwardMsg
from streamlit.proto.WidgetStates_pb2 import WidgetState
from websockets.asyncio.client import connect

QUIET = 0.75  # seconds without a message after which the last finished run is the page's end
CONNECTIONS = 6  # a browser's HTTP/1.1 connections to one host
EARLY = ForwardMsg.FINISHED_EARLY_FOR_RERUN  # a run stopped for the next one: not an end
FRAGMENT_DONE = ForwardMsg.FINISHED_FRAGMENT_RUN_SUCCESSFULLY
XSRF_COOKIE = "_streamlit_xsrf"
CONTEXT = {"timezone": "UTC", "timezone_offset": 0, "locale": "en-US", "is_embedded": False,
           "color_scheme": "light"}  # fmt: skip
# Element types whose frontend chunk is not named after the type.
CHUNK_NAMES = {"imgs": "ImageList", "dataframe": "DataFrame", "table": "Table",
               "vega_lite_chart": "ArrowVegaLiteChart", "graphviz_chart": "GraphVizChart",
               "iframe": "IFrame", "code": "StreamlitSyntaxHighlighter",
               "echarts_chart": "EChartsChart"}  # fmt: skip
TEXT_FIELDS = ("body", "label", "text", "message")  # what an element shows, as text


class ClientError(RuntimeError):
    """What the server sent (an exception on the page, a refused request) ended the visit."""


# ---------------------------------------------------------------------------------- HTTP


class Http:
    """At most :data:`CONNECTIONS` keep-alive HTTP/1.1 connections to one server, with the
    cookies it set; each request blocks a thread, not the event loop."""

    def __init__(self, base_url: str) -> None:
        parts = urlsplit(base_url)
        self.base, self.host, self.port = base_url.rstrip("/"), parts.hostname, parts.port
        self.cookies: dict[str, str] = {}
        self.received = 0  # bytes of response bodies
        self.requests: Counter[str] = Counter()  # by kind: static, media, upload, other
        self._idle: asyncio.Queue[http.client.HTTPConnection] = asyncio.Queue()
        self._slots = asyncio.Semaphore(CONNECTIONS)

    async def request(self, method: str, path: str, body: bytes | None = None,
                      headers: dict[str, str] | None = None) -> tuple[int, bytes]:  # fmt: skip
        """``(status, body)`` of one request to ``path`` (relative to the server)."""
        async with self._slots:
            conn = self._idle.get_nowait() if not self._idle.empty() else None
            conn = conn or http.client.HTTPConnection(self.host, self.port, timeout=300)
            try:
                status, data = await asyncio.to_thread(self._send, conn, method, path, body,
                                                       headers or {})  # fmt: skip
            except BaseException:
                conn.close()
                raise
            self._idle.put_nowait(conn)
        self.received += len(data)
        kind = path.split("/")[1] if path.count("/") > 1 else "other"
        self.requests[{"_stcore": "other", "static": "static", "media": "media"}.get(kind, "other")
                      if method == "GET" else method] += 1  # fmt: skip
        return status, data

    def _send(self, conn: http.client.HTTPConnection, method: str, path: str,
              body: bytes | None, headers: dict[str, str]) -> tuple[int, bytes]:  # fmt: skip
        headers = {"Accept-Encoding": "gzip, deflate", "User-Agent": "catdog-remote-visitor",
                   **headers}  # fmt: skip
        if self.cookies:
            headers["Cookie"] = "; ".join(f"{k}={v}" for k, v in self.cookies.items())
        for attempt in (1, 2):  # a kept-alive connection the server closed: once more
            try:
                conn.request(method, path, body=body, headers=headers)
                response = conn.getresponse()
                data = response.read()
                break
            except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError):
                conn.close()
                if attempt == 2:
                    raise
        for line in response.headers.get_all("Set-Cookie") or []:
            cookie = SimpleCookie()
            cookie.load(line)
            self.cookies.update({name: morsel.value for name, morsel in cookie.items()})
        return response.status, data

    async def get(self, path: str) -> bytes:
        """The body of ``GET path``; a status other than 200 fails the visit."""
        status, data = await self.request("GET", path)
        if status != 200:
            raise ClientError(f"GET {path} answered {status}")
        return data

    def close(self) -> None:
        """Close the idle connections."""
        while not self._idle.empty():
            self._idle.get_nowait().close()


# --------------------------------------------------------------------------- the frontend


def index_files(index_html: str) -> list[str]:
    """The frontend's files ``index.html`` names (scripts, preloads, styles)."""
    found = re.findall(r'(?:src|href)="\./(static/[^"]+)"', index_html)
    return [posixpath.normpath("/" + p) for p in found]


@dataclass
class Assets:
    """Per lazily loaded chunk of the frontend (``Radio``, ``PlotlyChart``, ``rehype-raw`` …)
    the files the browser fetches when it first needs it: the chunk and those it imports, from
    the ``__vite__mapDeps`` tables of the files ``index.html`` names."""

    chunks: dict[str, list[str]]

    @classmethod
    def parse(cls, scripts: dict[str, str]) -> Assets:
        """Read them from the scripts' texts (by the path each is served at)."""
        chunks: dict[str, list[str]] = {}
        for path, text in scripts.items():
            folder = posixpath.dirname(path)
            table = re.search(r"m\.f=\[([^\]]*)\]", text)
            files = re.findall(r'"([^"]+)"', table.group(1)) if table else []
            paths = [posixpath.normpath(posixpath.join(folder, f)) for f in files]
            for name, chunk, deps in re.findall(
                r"import\(`\./(([\w.-]+?)\.[\w-]+\.js)`\).{0,80}?__vite__mapDeps\(\[([\d,]*)\]\)",
                text,
            ):  # fmt: skip
                listed = [paths[int(i)] for i in deps.split(",") if i and int(i) < len(paths)]
                chunks.setdefault(chunk, [posixpath.join(folder, name), *listed])
        return cls(chunks)

    def for_chunk(self, name: str) -> list[str]:
        """The files of chunk ``name`` (none if the frontend has no such chunk)."""
        return self.chunks.get(name, [])

    def for_element(self, kind: str, element: Any) -> list[str]:
        """The files the frontend loads to draw an element of type ``kind`` (none for those in
        the main bundle: headings, alerts, plain markdown …)."""
        if kind == "markdown":  # raw HTML (catdog's SVG charts) needs rehype-raw
            return self.for_chunk("rehype-raw") if element.allow_html else []
        name = CHUNK_NAMES.get(kind) or "".join(w.capitalize() for w in kind.split("_"))
        return self.for_chunk(name)


_ASSETS: dict[str, Assets] = {}  # per server: read once from the first visitor's files


# -------------------------------------------------------------------------------- widgets


def widget_state(kind: str, element: Any) -> WidgetState | None:
    """The value the frontend registers for a widget element when it draws it (its value if the
    script set one, else its default); ``None`` for elements without one until the visitor acts
    (buttons, uploaders, charts)."""
    state = WidgetState(id=element.id)
    chosen = element.set_value if hasattr(element, "set_value") else False
    if kind == "number_input":
        value = element.value if chosen else element.default
        if element.data_type == element.INT:
            state.int_value = int(value)
        else:
            state.double_value = value
    elif kind in ("selectbox", "radio"):
        if chosen:
            state.string_value = element.raw_value
        elif 0 <= element.default < len(element.options):
            state.string_value = element.options[element.default]
        else:
            return None
    elif kind == "slider":
        values = list(element.value if chosen else element.default)
        if element.options:
            state.string_array_value.data.extend(element.options[int(v)] for v in values)
        else:
            state.double_array_value.data.extend(values)
    elif kind in ("checkbox", "text_input"):
        value = element.value if chosen else element.default
        if kind == "checkbox":
            state.bool_value = value
        else:
            state.string_value = value
    else:
        return None
    return state


def plain(text: str) -> str:
    """Markdown as the page shows it: no emphasis, code marks, escapes or icon names."""
    text = re.sub(r":material/[a-z_]+:", "", text)
    text = re.sub(r"\\(.)", r"\1", text)
    return text.replace("**", "").replace("`", "")


def element_text(kind: str, element: Any) -> str:
    """What an element shows as text (its body, label, progress text …)."""
    parts = [getattr(element, name) for name in TEXT_FIELDS
             if name in element.DESCRIPTOR.fields_by_name]  # fmt: skip
    return plain(" ".join(p for p in parts if isinstance(p, str) and p))


def media_urls(kind: str, element: Any) -> list[str]:
    """The ``/media/...`` files an element shows (``st.image``'s images)."""
    if kind == "imgs":
        return [img.url for img in element.imgs if img.url.startswith("/media/")]
    return []


# --------------------------------------------------------------------------------- client


@dataclass
class Shown:
    """One element on the visitor's page: its type, the element, the run that sent it."""

    kind: str
    element: Any
    run: str
    fragment: bool = False


@dataclass
class Timeline:
    """When things happened on the connection (``time.monotonic``)."""

    last_message: float = 0.0
    started: list[float] = field(default_factory=list)  # when each script run began
    finished: list[tuple[float, int]] = field(default_factory=list)  # (when, status)
    loads_pending: int = 0
    last_load: float = 0.0
    running: bool = False
    messages: int = 0
    received: int = 0  # bytes of websocket messages


class Client:
    """One visitor's browser tab, at the protocol level (see the module's docstring)."""

    def __init__(self, base_url: str, timeout: float = 180.0) -> None:
        self.base, self.timeout = base_url.rstrip("/"), timeout
        self.http = Http(base_url)
        self.assets: Assets | None = None
        self.loaded: set[str] = set()  # static files this visitor's browser holds
        self.page = ""  # the URL path of the page shown ("" for the home page)
        self.query = ""  # the URL's query string, as the server last set it
        self.pages: dict[str, str] = {}  # URL path → page script hash
        self.page_hash = ""
        self.session_id = ""
        self.widgets: dict[str, WidgetState] = {}
        self.seen_widgets: set[str] = set()  # widgets drawn in the current full run
        self.elements: dict[tuple[int, ...], Shown] = {}
        self.run_id, self.run_fragments = "", []
        self.cache: dict[str, list[Any]] = {}  # hash → [message bytes, run count, fragments]
        self.cache_runs, self.max_age, self.new_session_seen = 0, 2, False
        self.timeline = Timeline()
        self.errors: list[str] = []
        self._auto: dict[str, tuple[float, asyncio.Task]] = {}
        self._loads: set[asyncio.Task] = set()
        self._media: set[str] = set()  # media files asked for since the last page switch
        self._responses: dict[str, asyncio.Future] = {}
        self._ws: Any = None
        self._reader: asyncio.Task | None = None

    # ------------------------------------------------------------------ connecting

    async def open(self, path: str = "/") -> None:
        """Open ``path`` as a new visitor: the page, the frontend's files, the health check
        (the XSRF cookie), the host's configuration, the websocket, the first script run."""
        self.page = path.strip("/").split("?")[0]
        self.query = path.split("?", 1)[1] if "?" in path else ""
        index = (await self.http.get("/")).decode()
        scripts = await self._fetch_all([p for p in index_files(index) if p not in self.loaded])
        if self.http.base not in _ASSETS:
            _ASSETS[self.http.base] = Assets.parse(scripts)
        self.assets = _ASSETS[self.http.base]
        await asyncio.gather(self.http.get("/_stcore/health"),
                             self.http.get("/_stcore/host-config"))  # fmt: skip
        token = self.http.cookies.get(XSRF_COOKIE, "PLACEHOLDER_AUTH_TOKEN")
        cookie = "; ".join(f"{k}={v}" for k, v in self.http.cookies.items())
        self._ws = await connect(
            self.base.replace("http", "ws", 1) + "/_stcore/stream",
            subprotocols=["streamlit", token], origin=self.base,
            additional_headers={"Cookie": cookie}, max_size=None, open_timeout=self.timeout,
        )  # fmt: skip
        self._reader = asyncio.create_task(self._read())
        self._fetch_later(["/favicon.png"])
        await self.rerun(page_name=self.page)

    async def close(self) -> None:
        """Close the websocket and the connections; stop the timers and pending loads."""
        for _, task in self._auto.values():
            task.cancel()
        for task in [*self._loads, *([self._reader] if self._reader else [])]:
            task.cancel()
        if self._ws is not None:
            with contextlib.suppress(Exception):
                await self._ws.close()
        self.http.close()

    # ------------------------------------------------------------------ sending

    def _context(self) -> dict[str, Any]:
        return {**CONTEXT, "url": f"{self.base}/{self.page}"}

    async def send(self, msg: BackMsg) -> None:
        """Send one message to the server."""
        if self._reader is not None and self._reader.done():
            raise ClientError(f"the connection has ended: {self._reader.exception()!r}")
        await self._ws.send(msg.SerializeToString())

    async def rerun(self, *, page_hash: str = "", page_name: str = "", fragment: str = "",
                    auto: bool = False, triggers: Iterable[WidgetState] = (),
                    query: str | None = None) -> None:  # fmt: skip
        """Ask for a script run as the frontend does (see the module's docstring)."""
        msg = BackMsg()
        state = msg.rerun_script
        state.query_string = self.query if query is None else query
        state.widget_states.widgets.extend([*self.widgets.values(), *triggers])
        state.page_script_hash = page_hash or self.page_hash
        state.page_name = page_name if not state.page_script_hash else ""
        state.fragment_id, state.is_auto_rerun = fragment, auto
        state.cached_message_hashes.extend(self.cache)
        for key, value in self._context().items():
            setattr(state.context_info, key, value)
        self.new_session_seen = False
        await self.send(msg)

    async def switch_page(self, path: str) -> float:
        """Go to the page at URL path ``path`` as a click on its link does; returns when the
        message went (``time.monotonic``)."""
        if path not in self.pages:
            raise ClientError(f"no page {path!r} in the navigation: {sorted(self.pages)}")
        self._stop_auto()
        self.widgets.clear()
        self.elements.clear()
        self._media.clear()
        sent = time.monotonic()
        await self.rerun(page_hash=self.pages[path], query="")  # a page switch drops the query
        self.page = path
        return sent

    def find(self, kind: str, label: str) -> Any:
        """The element of type ``kind`` labelled ``label`` on the page (fails if none)."""
        for shown in self.elements.values():
            if shown.kind == kind and plain(getattr(shown.element, "label", "")) == label:
                return shown.element
        raise ClientError(f"no {kind} labelled {label!r} on the page")

    async def set_value(self, label: str, value: float) -> None:
        """Type ``value`` into the number field ``label`` and press Enter (a rerun)."""
        element = self.find("number_input", label)
        state = WidgetState(id=element.id)
        if element.data_type == element.INT:
            state.int_value = int(value)
        else:
            state.double_value = float(value)
        self.widgets[element.id] = state
        await self.rerun()

    async def click(self, label: str) -> float:
        """Click the button ``label`` (a rerun with its trigger); returns when it was sent."""
        element = self.find("button", label)
        if element.disabled:
            raise ClientError(f"the button {label!r} is disabled")
        sent = time.monotonic()
        await self.rerun(triggers=[WidgetState(id=element.id, trigger_value=True)])
        return sent

    async def upload(self, label: str, name: str, data: bytes, mime: str) -> None:
        """Give the file uploader ``label`` one file, as the frontend does."""
        element = self.find("file_uploader", label)
        if self.assets is not None:  # the frontend's HTTP library, loaded for the first upload
            await self._fetch_all(
                [p for p in self.assets.for_chunk("axios") if p not in self.loaded]
            )
        request = BackMsg()
        request.file_urls_request.request_id = request_id = str(uuid.uuid4())
        request.file_urls_request.file_names.append(name)
        request.file_urls_request.session_id = self.session_id
        answer = self._responses[request_id] = asyncio.get_running_loop().create_future()
        await self.send(request)
        response = await asyncio.wait_for(answer, self.timeout)
        if response.error_msg or not response.file_urls:
            raise ClientError(f"no upload URL for {name}: {response.error_msg}")
        urls = response.file_urls[0]
        boundary = f"----catdog{uuid.uuid4().hex}"
        body = (f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"; '
                f'filename="{name}"\r\nContent-Type: {mime}\r\n\r\n').encode()  # fmt: skip
        body += data + f"\r\n--{boundary}--\r\n".encode()
        status, text = await self.http.request("PUT", urls.upload_url, body, {
            "Content-Type": f"multipart/form-data; boundary={boundary}", "Origin": self.base,
            "X-Xsrftoken": self.http.cookies.get(XSRF_COOKIE, "")})  # fmt: skip
        if status not in (200, 204):
            raise ClientError(f"the upload of {name} answered {status}: {text[:200]!r}")
        state = WidgetState(id=element.id)
        info = state.file_uploader_state_value.uploaded_file_info.add()
        info.name, info.size, info.file_id = name, len(data), urls.file_id
        info.file_urls.CopyFrom(urls)
        self.widgets[element.id] = state
        await self.rerun()

    # ------------------------------------------------------------------ receiving

    async def _read(self) -> None:
        async for payload in self._ws:
            now = time.monotonic()
            self.timeline.last_message, self.timeline.messages = now, self.timeline.messages + 1
            self.timeline.received += len(payload)
            msg = ForwardMsg()
            msg.ParseFromString(payload)
            self._handle(self._resolve(msg), now)

    def _resolve(self, msg: ForwardMsg) -> ForwardMsg:
        """A cached message for a reference to it; keeps the large ones the frontend keeps."""
        kind = msg.WhichOneof("type")
        if kind == "ref_hash":
            entry = self.cache.get(msg.ref_hash)
            if entry is None:
                raise ClientError(f"the server referred to a message never sent: {msg.ref_hash}")
            entry[1] = self.cache_runs
            full = ForwardMsg()
            full.ParseFromString(entry[0])
            full.metadata.CopyFrom(msg.metadata)
            return full
        if msg.metadata.cacheable and msg.hash and msg.hash not in self.cache:
            self.cache[msg.hash] = [msg.SerializeToString(), self.cache_runs,
                                    list(msg.metadata.run.fragment_ids)]  # fmt: skip
        return msg

    def _handle(self, msg: ForwardMsg, now: float) -> None:
        kind = msg.WhichOneof("type")
        if kind == "new_session":
            self._new_session(msg)
        elif kind == "delta" and msg.delta.WhichOneof("type") == "new_element":
            self._element(msg)
        elif kind == "delta" and msg.delta.WhichOneof("type") == "new_transient":
            transient = msg.delta.new_transient  # a spinner while a cached function runs
            for element in getattr(transient, "elements", []):
                inner = element.WhichOneof("type")
                self._fetch_later(self._chunks(inner, getattr(element, inner)))
        elif kind == "navigation":
            self.pages = {p.url_pathname: p.page_script_hash for p in msg.navigation.app_pages}
            self.page_hash = msg.navigation.page_script_hash
        elif kind == "page_info_changed":
            self.query = msg.page_info_changed.query_string
        elif kind == "session_status_changed":
            self.timeline.running = msg.session_status_changed.script_is_running
        elif kind == "script_finished":
            self._finished(msg, now)
        elif kind == "auto_rerun":
            self._start_auto(msg.auto_rerun.fragment_id, msg.auto_rerun.interval)
        elif kind == "stop_auto_rerun":
            self._stop_auto(msg.stop_auto_rerun.fragment_ids)
        elif kind == "file_urls_response":
            answer = self._responses.pop(msg.file_urls_response.response_id, None)
            if answer is not None and not answer.done():
                answer.set_result(msg.file_urls_response)

    def _new_session(self, msg: ForwardMsg) -> None:
        session = msg.new_session
        self.session_id = session.initialize.session_id or self.session_id
        self.max_age = session.config.max_cached_message_age or self.max_age
        self.page_hash = session.page_script_hash or self.page_hash
        self.run_id = msg.metadata.run.script_run_id
        self.run_fragments = list(msg.metadata.run.fragment_ids)
        self.new_session_seen = True
        self.timeline.started.append(time.monotonic())
        if not self.run_fragments:  # a full run: the fragments' timers start again
            self._stop_auto()
            self.seen_widgets = set()

    def _element(self, msg: ForwardMsg) -> None:
        element = msg.delta.new_element
        kind = element.WhichOneof("type")
        inner = getattr(element, kind)
        if kind == "exception":
            text = f"{inner.type}: {inner.message}"
            self.errors.append(text)
        path = tuple(msg.metadata.delta_path)
        self.elements[path] = Shown(kind, inner, self.run_id, bool(self.run_fragments))
        if hasattr(inner, "id") and inner.id:
            self.seen_widgets.add(inner.id)
            fresh = inner.id not in self.widgets or getattr(inner, "set_value", False)
            if fresh and (state := widget_state(kind, inner)) is not None:
                self.widgets[inner.id] = state
        files = [u for u in media_urls(kind, inner) if u not in self._media]
        self._media.update(files)
        self._fetch_later(files + self._chunks(kind, inner))

    def _chunks(self, kind: str, element: Any) -> list[str]:
        """The frontend's files for drawing an element this visitor has not fetched yet."""
        if self.assets is None:
            return []
        return [p for p in self.assets.for_element(kind, element) if p not in self.loaded]

    def _finished(self, msg: ForwardMsg, now: float) -> None:
        status = msg.script_finished
        self.timeline.finished.append((now, status))
        if status == EARLY:
            return
        if not self.run_fragments:  # what the run did not draw again is gone
            self.elements = {p: s for p, s in self.elements.items() if s.run == self.run_id}
            self.widgets = {k: v for k, v in self.widgets.items() if k in self.seen_widgets}
        if self.new_session_seen:
            self._age_cache(self.run_fragments)

    def _age_cache(self, fragments: list[str]) -> None:
        """Forget the kept messages not used in the last :attr:`max_age` runs (for a fragment
        run, only that fragment's), as the frontend's cache does."""
        self.cache_runs += 1
        for key, (_, used, from_fragments) in list(self.cache.items()):
            if fragments and not set(fragments) & set(from_fragments):
                continue
            if self.cache_runs - used > self.max_age:
                del self.cache[key]

    # ------------------------------------------------------------------ fragments' timers

    def _start_auto(self, fragment: str, interval: float) -> None:
        if fragment in self._auto and self._auto[fragment][0] == interval:
            return
        self._stop_auto([fragment])
        self._auto[fragment] = (interval, asyncio.create_task(self._every(fragment, interval)))

    def _stop_auto(self, fragments: Iterable[str] | None = None) -> None:
        for key in list(self._auto) if fragments is None else list(fragments):
            if key in self._auto:
                self._auto.pop(key)[1].cancel()

    async def _every(self, fragment: str, interval: float) -> None:
        while True:
            await asyncio.sleep(interval)
            await self.rerun(fragment=fragment, auto=True)

    # ------------------------------------------------------------------ files

    def _fetch_later(self, paths: list[str]) -> None:
        for path in dict.fromkeys(paths):  # a chunk's dependencies may repeat
            self.loaded.add(path)
            self.timeline.loads_pending += 1
            task = asyncio.create_task(self._fetch(path))
            self._loads.add(task)
            task.add_done_callback(self._loads.discard)

    async def _fetch(self, path: str) -> None:
        try:
            status, _ = await self.http.request("GET", path)
            if status != 200:
                self.errors.append(f"GET {path} answered {status}")
        except Exception as exc:  # recorded: the visit fails at its next check
            self.errors.append(f"GET {path} failed: {exc!r}")
        finally:
            self.timeline.loads_pending -= 1
            self.timeline.last_load = time.monotonic()

    async def _fetch_all(self, paths: list[str]) -> dict[str, str]:
        """Fetch ``paths`` at once; the scripts' texts by path."""
        paths = list(dict.fromkeys(paths))
        self.loaded.update(paths)
        bodies = await asyncio.gather(*(self.http.get(p) for p in paths))
        return {p: b.decode() for p, b in zip(paths, bodies, strict=True) if p.endswith(".js")}

    # ------------------------------------------------------------------ the page

    def text(self, main: bool = True) -> str:
        """The text of the page's main area (``main``) or of the whole page, element by element
        in page order."""
        shown = sorted(self.elements.items())
        return "\n".join(element_text(s.kind, s.element) for path, s in shown
                         if not main or path[:1] == (0,))  # fmt: skip

    def images(self) -> int:
        """How many images the page's main area shows."""
        return sum(len(media_urls(s.kind, s.element)) for p, s in self.elements.items()
                   if p[:1] == (0,))  # fmt: skip

    def check(self) -> None:
        """Fail if the page shows an exception or a file could not be fetched."""
        if self.errors:
            raise ClientError(f"the page shows an exception: {self.errors[0]}")
        if self._reader is not None and self._reader.done():
            raise ClientError(f"the connection has ended: {self._reader.exception()!r}")

    async def settled(self, since: float, timeout: float | None = None) -> float:
        """Seconds from ``since`` until the page was ready (see the module's docstring)."""
        deadline = time.monotonic() + (timeout or self.timeout)
        line = self.timeline
        while time.monotonic() < deadline:
            self.check()
            begun = next((t for t in line.started if t >= since), None)  # a run it asked for
            ends = [t for t, s in line.finished if begun and t >= begun and s != EARLY]
            quiet = time.monotonic() - line.last_message >= QUIET
            if ends and quiet and not line.running and not line.loads_pending:
                return max(ends[-1], line.last_load if line.last_load >= since else 0) - since
            await asyncio.sleep(0.05)
        ends = [round(t - since, 1) for t, status in line.finished if t >= since]
        raise ClientError(
            f"the page was not ready after {timeout or self.timeout:.0f} s: runs ended at {ends} "
            f"s, running {line.running}, {line.loads_pending} file(s) loading, the last message "
            f"{time.monotonic() - line.last_message:.1f} s ago, timers {sorted(self._auto)}"
        )

    async def wait_for(self, pattern: re.Pattern[str], since: float,
                       timeout: float | None = None) -> re.Match[str]:  # fmt: skip
        """Wait until the main area's text matches ``pattern``; the match."""
        deadline = time.monotonic() + (timeout or self.timeout)
        while time.monotonic() < deadline:
            self.check()
            if found := pattern.search(self.text()):
                return found
            await asyncio.sleep(0.05)
        raise ClientError(f"{pattern.pattern!r} not shown {time.monotonic() - since:.0f} s after "
                          f"it was asked for; the page shows: {self.text()[-300:]!r}")  # fmt: skip
