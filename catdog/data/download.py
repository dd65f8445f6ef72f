"""Downloading big files that survive bad networks, and Microsoft's cats-and-dogs photos.

:func:`download_file` resumes an interrupted download from ``dest + ".part"`` with an HTTP
Range request, checks size and SHA-256, and renames the file into place only when it is whole.
It uses only the standard library (urllib).
"""

from __future__ import annotations

import hashlib
import http.client
import os
import re
import urllib.error
import urllib.request
from pathlib import Path

from catdog.data.importer import ImportReport, SplitSpec, import_dataset
from catdog.data.paths import data_home
from catdog.progress import ProgressFn, report

# Microsoft's "Kaggle Cats and Dogs Dataset" (PetImages/Cat, PetImages/Dog; 12,500 each), the
# archive TensorFlow Datasets' cats_vs_dogs builder downloads (_URL in
# tensorflow/datasets tensorflow_datasets/image_classification/cats_vs_dogs.py, version 4.0.1).
# TFDS's stored checksum file (tensorflow_datasets/url_checksums/cats_vs_dogs.txt) still lists
# only the retired kagglecatsanddogs_3367a.zip, so the size and SHA-256 of the current 5340 zip
# come from elsewhere:
# - size 824,887,076 bytes: wget logs of this URL ("saved [824887076/824887076]") in public
#   notebooks; it matches the 786.67 MiB download size that the TFDS catalog gives;
# - SHA-256: gomlx/gomlx examples/dogsvscats/dogsvscats.go (DownloadChecksum).
PETIMAGES_URL = (
    "https://download.microsoft.com/download/3/E/1/3E1C3F21-ECDB-4869-8368-6DEBA77B919F/"
    "kagglecatsanddogs_5340.zip"
)
PETIMAGES_SIZE = 824_887_076
PETIMAGES_SHA256 = "b7974bd00a84a99921f36ee4403f089853777b5ae8d151c76a86e64900334af9"

_CHUNK = 1 << 20  # read 1 MiB at a time
_USER_AGENT = "catdog (python urllib)"


class DownloadError(RuntimeError):
    """A download failed; the message says what happened and whether running again resumes."""


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def _verify(path: Path, url: str, sha256: str | None, expected_size: int | None) -> None:
    """Raise (after deleting ``path``) if its size or digest is not the expected one."""
    size = path.stat().st_size
    if expected_size is not None and size != expected_size:
        path.unlink()
        raise DownloadError(
            f"{url} gave {size:,} bytes, expected {expected_size:,}; the bad file was deleted, "
            "run again to download it afresh"
        )
    if sha256 is not None:
        got = _sha256(path)
        if got != sha256.lower():
            path.unlink()
            raise DownloadError(
                f"{url} downloaded with SHA-256 {got}, expected {sha256.lower()}; the file is "
                "corrupt or has changed on the server, so it was deleted"
            )


def _open(url: str, start: int, timeout: float) -> http.client.HTTPResponse:
    """Open ``url``, asking for bytes from ``start`` on if a partial file exists."""
    request = urllib.request.Request(url, headers={"User-Agent": _USER_AGENT})
    if start:
        request.add_header("Range", f"bytes={start}-")
    try:
        return urllib.request.urlopen(request, timeout=timeout)
    except urllib.error.HTTPError as exc:
        if exc.code == 416:  # range not satisfiable: the partial file is already whole (or junk)
            return exc
        raise DownloadError(f"{url} answered HTTP {exc.code} {exc.reason}") from exc
    except OSError as exc:  # URLError, timeouts, refused connections
        reason = getattr(exc, "reason", exc)
        raise DownloadError(
            f"cannot reach {url} ({reason}); check the internet connection (or proxy) and run "
            "again — a partial download is kept and resumes"
        ) from exc


def _fetch(
    url: str,
    part: Path,
    start: int,
    expected_size: int | None,
    timeout: float,
    progress: ProgressFn | None,
) -> None:
    """Append the rest of ``url`` to ``part`` (or rewrite it if the server ignores Range)."""
    with _open(url, start, timeout) as response:
        status = getattr(response, "status", None) or response.code
        content_range = response.headers.get("Content-Range", "")
        if status == 416:
            match = re.search(r"/(\d+)", content_range)
            if not (match and int(match.group(1)) == start):  # not simply "already complete"
                part.unlink(missing_ok=True)
                raise DownloadError(
                    f"{url} refused to resume at byte {start:,}; the partial file was deleted, "
                    "run again to download from the start"
                )
            return
        resumed = status == 206 and content_range.startswith(f"bytes {start}-")
        if not resumed:
            start = 0  # the server ignored Range and sends the whole file: start over
        length = int(response.headers.get("Content-Length") or -1)
        total = start + length if length >= 0 else (expected_size or 0)
        if expected_size is not None and length >= 0 and total != expected_size:
            raise DownloadError(
                f"{url} offers {total:,} bytes but {expected_size:,} were expected; the file on "
                "the server is not the one catdog knows"
            )
        done = start
        with open(part, "ab" if resumed else "wb") as out:
            try:
                while chunk := response.read(_CHUNK):
                    out.write(chunk)
                    done += len(chunk)
                    report(progress, done, total, f"Downloading {part.name[:-5]}")
            except (OSError, http.client.HTTPException) as exc:  # timeouts are OSErrors
                raise DownloadError(
                    f"connection to {url} lost after {done:,} of {total:,} bytes ({exc!r}); "
                    "run again to resume"
                ) from exc
    if length >= 0 and done != start + length:
        raise DownloadError(
            f"connection to {url} closed after {done:,} of {total:,} bytes; run again to resume"
        )


def download_file(
    url: str,
    dest: str | Path,
    *,
    sha256: str | None = None,
    expected_size: int | None = None,
    progress: ProgressFn | None = None,
    timeout: float = 30.0,
) -> Path:
    """Download ``url`` to ``dest``, resuming a previous attempt, and verify it.

    Bytes go to ``dest + ".part"``; an existing .part is continued with an HTTP Range request
    (a server that ignores Range makes the download restart cleanly). Only a complete, verified
    file is renamed to ``dest``. If ``dest`` already exists and matches ``sha256`` /
    ``expected_size``, nothing is downloaded.

    Args:
        url: http(s) address.
        dest: where the file goes (its folder is created).
        sha256: expected hex digest, or None to skip the check.
        expected_size: expected size in bytes, or None to skip the check.
        progress: called as ``progress(bytes done, bytes total, message)``.
        timeout: seconds to wait for the server at connect and between reads.

    Returns:
        ``dest``.

    Raises:
        DownloadError: network unreachable, HTTP error, connection lost (run again to resume),
            or wrong size/digest (the bad file is deleted).
    """
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    if dest.is_file() and (sha256 or expected_size is not None):
        try:
            _verify(dest, url, sha256, expected_size)
            return dest
        except DownloadError:
            pass  # a stale or corrupt copy was deleted: download again
    part = dest.with_name(dest.name + ".part")
    start = part.stat().st_size if part.is_file() else 0
    if expected_size is not None and start > expected_size:
        part.unlink()  # longer than the real file: cannot be a prefix of it
        start = 0
    if not (expected_size is not None and start == expected_size):
        _fetch(url, part, start, expected_size, timeout, progress)
    _verify(part, url, sha256, expected_size)
    os.replace(part, dest)
    return dest


def download_petimages(
    out: str | Path,
    *,
    url: str = PETIMAGES_URL,
    sha256: str | None = PETIMAGES_SHA256,
    expected_size: int | None = None,
    cache_dir: str | Path | None = None,
    split: SplitSpec = "seed",
    progress: ProgressFn | None = None,
) -> ImportReport:
    """Download Microsoft's cats-and-dogs archive (~790 MB) and import it as a dataset.

    The archive is kept in ``cache_dir`` (default ``<data home>/downloads``), so an interrupted
    download resumes and a second import needs no download.

    Args:
        out: the dataset folder to create (see :func:`catdog.data.importer.import_dataset`).
        url: where to download from.
        sha256: the archive's expected SHA-256 (None skips the check).
        expected_size: the archive's expected size in bytes; None checks
            :data:`PETIMAGES_SIZE` when ``sha256`` is Microsoft's file, and nothing otherwise.
        cache_dir: folder for the downloaded archive.
        split: how to split; ``"seed"`` takes the seed's 1000/500/500 images per class.
        progress: called as ``progress(done, total, message)`` while downloading and importing.

    Returns:
        The import's :class:`~catdog.data.importer.ImportReport`.
    """
    if expected_size is None and sha256 == PETIMAGES_SHA256:
        expected_size = PETIMAGES_SIZE  # the size belongs to the known file, not to the URL
    cache = Path(cache_dir) if cache_dir is not None else data_home() / "downloads"
    archive = cache / (url.rstrip("/").rsplit("/", 1)[-1] or "petimages.zip")
    download_file(url, archive, sha256=sha256, expected_size=expected_size, progress=progress)
    return import_dataset(archive, out, split=split, progress=progress)
