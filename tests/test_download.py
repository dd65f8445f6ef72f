"""download_file and download_petimages against a real HTTP server on 127.0.0.1."""

from __future__ import annotations

import hashlib
import http.server
import re
import socket
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from builders import pet_images, zip_folder

from catdog.data.datasets import scan_dataset
from catdog.data.download import DownloadError, download_file, download_petimages


@dataclass
class Server:
    """A local file server with HTTP Range support that records what it was asked."""

    base: str = ""
    files: dict[str, bytes] = field(default_factory=dict)
    honour_range: bool = True
    cut_after: int | None = None  # close the connection after this many body bytes
    requests: list[tuple[str, str | None]] = field(default_factory=list)  # (path, Range)

    def url(self, name: str) -> str:
        return f"{self.base}/{name}"


def make_handler(state: Server) -> type[http.server.BaseHTTPRequestHandler]:
    class Handler(http.server.BaseHTTPRequestHandler):
        def log_message(self, *args: object) -> None:  # keep test output clean
            pass

        def do_GET(self) -> None:
            range_header = self.headers.get("Range")
            state.requests.append((self.path, range_header))
            data = state.files.get(self.path.lstrip("/"))
            if data is None:
                self.send_error(404)
                return
            start = 0
            match = re.fullmatch(r"bytes=(\d+)-", range_header or "")
            if match and state.honour_range:
                start = int(match.group(1))
                if start >= len(data):
                    self.send_response(416)
                    self.send_header("Content-Range", f"bytes */{len(data)}")
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                self.send_response(206)
                self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
            else:
                self.send_response(200)
            body = data[start:]
            self.send_header("Content-Length", str(len(body)))
            self.send_header("Accept-Ranges", "bytes")
            self.end_headers()
            if state.cut_after is not None:
                body = body[: state.cut_after]
            self.wfile.write(body)

    return Handler


@pytest.fixture
def server() -> Iterator[Server]:
    state = Server()
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), make_handler(state))
    state.base = f"http://127.0.0.1:{httpd.server_address[1]}"
    thread = threading.Thread(target=httpd.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    yield state
    httpd.shutdown()
    httpd.server_close()
    thread.join()


def payload(size: int = 300_000) -> bytes:
    return bytes((i * 7919 + i // 13) % 256 for i in range(size))


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def test_download_checks_size_and_digest(server: Server, tmp_path: Path) -> None:
    data = server.files["blob.bin"] = payload()
    calls: list[tuple[int, int]] = []
    dest = download_file(
        server.url("blob.bin"),
        tmp_path / "dl" / "blob.bin",
        sha256=sha(data),
        expected_size=len(data),
        progress=lambda d, t, m: calls.append((d, t)),
    )
    assert dest.read_bytes() == data
    assert not (tmp_path / "dl" / "blob.bin.part").exists()
    assert calls[-1] == (len(data), len(data))
    # already there and verified: no second request
    download_file(server.url("blob.bin"), dest, sha256=sha(data))
    assert len(server.requests) == 1


def test_resume_from_a_partial_file(server: Server, tmp_path: Path) -> None:
    data = server.files["blob.bin"] = payload()
    (tmp_path / "blob.bin.part").write_bytes(data[:123_456])
    dest = download_file(server.url("blob.bin"), tmp_path / "blob.bin", sha256=sha(data))
    assert server.requests == [("/blob.bin", "bytes=123456-")]
    assert dest.read_bytes() == data


def test_a_server_that_ignores_range_restarts_cleanly(server: Server, tmp_path: Path) -> None:
    data = server.files["blob.bin"] = payload()
    server.honour_range = False
    (tmp_path / "blob.bin.part").write_bytes(b"garbage that must not stay in front")
    dest = download_file(server.url("blob.bin"), tmp_path / "blob.bin", sha256=sha(data))
    assert server.requests[0][1] is not None  # a Range was asked for, and ignored
    assert dest.read_bytes() == data


def test_a_dropped_connection_resumes_on_the_next_run(server: Server, tmp_path: Path) -> None:
    data = server.files["blob.bin"] = payload()
    server.cut_after = 100_000
    with pytest.raises(DownloadError, match="run again to resume"):
        download_file(server.url("blob.bin"), tmp_path / "blob.bin", sha256=sha(data))
    assert (tmp_path / "blob.bin.part").stat().st_size == 100_000
    assert not (tmp_path / "blob.bin").exists()
    server.cut_after = None
    dest = download_file(server.url("blob.bin"), tmp_path / "blob.bin", sha256=sha(data))
    assert server.requests[-1] == ("/blob.bin", "bytes=100000-")
    assert dest.read_bytes() == data


def test_a_complete_part_file_is_not_downloaded_again(server: Server, tmp_path: Path) -> None:
    data = server.files["blob.bin"] = payload(1000)
    (tmp_path / "blob.bin.part").write_bytes(data)
    download_file(server.url("blob.bin"), tmp_path / "blob.bin", sha256=sha(data))
    assert server.requests == [("/blob.bin", "bytes=1000-")]  # answered 416 */1000
    assert (tmp_path / "blob.bin").read_bytes() == data


def test_a_bad_checksum_deletes_the_file_and_names_both_digests(
    server: Server, tmp_path: Path
) -> None:
    data = server.files["blob.bin"] = payload(5000)
    wrong = "ab" * 32
    with pytest.raises(DownloadError, match=f"SHA-256 {sha(data)}, expected {wrong}"):
        download_file(server.url("blob.bin"), tmp_path / "blob.bin", sha256=wrong)
    assert list(tmp_path.iterdir()) == []


def test_a_wrong_size_is_refused(server: Server, tmp_path: Path) -> None:
    server.files["blob.bin"] = payload(5000)
    with pytest.raises(DownloadError, match="offers 5,000 bytes but 6,000 were expected"):
        download_file(server.url("blob.bin"), tmp_path / "blob.bin", expected_size=6000)


def test_http_errors_and_unreachable_hosts_are_clear(server: Server, tmp_path: Path) -> None:
    with pytest.raises(DownloadError, match="HTTP 404"):
        download_file(server.url("missing.zip"), tmp_path / "missing.zip")
    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    with pytest.raises(DownloadError, match=r"cannot reach .*check the internet connection"):
        download_file(f"http://127.0.0.1:{port}/x.zip", tmp_path / "x.zip", timeout=5)


def test_download_petimages_downloads_once_and_imports(server: Server, tmp_path: Path) -> None:
    expected_skips = pet_images(tmp_path / "src", n=8)
    archive = zip_folder(tmp_path / "src", tmp_path / "kagglecatsanddogs_5340.zip")
    data = server.files["kagglecatsanddogs_5340.zip"] = archive.read_bytes()
    cache = tmp_path / "cache"
    (cache / "kagglecatsanddogs_5340.zip.part").parent.mkdir()
    (cache / "kagglecatsanddogs_5340.zip.part").write_bytes(data[:1000])
    kwargs = dict(url=server.url("kagglecatsanddogs_5340.zip"), sha256=sha(data),
                  expected_size=len(data), cache_dir=cache, split=(0.5, 0.25, 0.25))  # fmt: skip
    result = download_petimages(tmp_path / "pets", **kwargs)
    assert server.requests == [("/kagglecatsanddogs_5340.zip", "bytes=1000-")]
    assert (cache / "kagglecatsanddogs_5340.zip").read_bytes() == data
    assert result.layout == "petimages"
    assert sorted(s.file for s in result.skipped) == sorted(expected_skips)
    assert scan_dataset(tmp_path / "pets").counts["train"] == {"cats": 5, "dogs": 4}
    again = download_petimages(tmp_path / "pets", **kwargs)
    assert again.already_imported and len(server.requests) == 1
