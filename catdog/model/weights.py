"""Where the ImageNet weights of a pretrained backbone come from: Keras' cache, a download, or a
file the user gives.

Keras keeps the weights files of its Applications in ``$KERAS_HOME/models`` (``~/.keras/models``
by default) and downloads them there on first use. catdog looks in the same place under the same
file names, so a file Keras downloaded (or one copied there by hand) serves both. The download
checks the file's hash as Keras does and lands in one piece (temporary file, then rename). Where
no weights can be had, :class:`WeightsMissing` says which file, how big, where it is looked for
and how to get it: a pretrained model never silently trains from random weights.

A file the user gives (``--weights PATH``, or an upload in the dashboard, kept in the data
home's ``weights/`` folder by :func:`save_uploaded_weights`) is checked by
:func:`check_weights_file` the way training loads it, so a wrong file is refused in one sentence
before a run starts. This module imports no TensorFlow (those two functions do, when called), so
pages can show whether the weights are present cheaply.
"""

from __future__ import annotations

import hashlib
import os
import re
import tempfile
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path

from catdog.data.paths import weights_dir
from catdog.model.backbones import BACKBONES, Backbone
from catdog.model.errors import ModelError
from catdog.model.registry import get_network
from catdog.policy import current_policy
from catdog.safe_files import FileProblem, open_regular, os_words
from catdog.system import megabytes

# Set to a folder URL that serves the same file names (a mirror) to download from there instead.
WEIGHTS_URL_ENV = "CATDOG_WEIGHTS_URL"
DOWNLOAD_TIMEOUT_S = 60
CHUNK = 1 << 20
# Every HDF5 file (Keras' .h5 and .weights.h5 files are HDF5) starts with these 8 bytes.
HDF5_SIGNATURE = b"\x89HDF\r\n\x1a\n"


class WeightsMissing(ModelError):
    """A pretrained model's weights are not on this machine and could not be downloaded."""


def backbone_of(model: str) -> Backbone | None:
    """The pretrained base of the network ``model`` (None: it starts from random weights)."""
    name = get_network(model).backbone
    return None if name is None else BACKBONES[name]


def keras_models_dir() -> Path:
    """The folder Keras keeps downloaded weights in: ``$KERAS_HOME/models``, else
    ``~/.keras/models`` (``/tmp/.keras/models`` where the home folder cannot be written)."""
    if "KERAS_HOME" in os.environ:
        return Path(os.environ["KERAS_HOME"]).expanduser() / "models"
    home = Path.home()
    base = home if os.access(home, os.W_OK) else Path("/tmp")
    return base / ".keras" / "models"


def weights_url(backbone: Backbone) -> str:
    """Where the file is downloaded from: ``$CATDOG_WEIGHTS_URL`` if set, else Keras' own URL."""
    base = os.environ.get(WEIGHTS_URL_ENV) or backbone.url
    return base.rstrip("/") + "/" + backbone.file_name


def cached_weights(backbone: Backbone) -> Path | None:
    """The weights file in Keras' cache, or None if it is not there."""
    path = keras_models_dir() / backbone.file_name
    return path if path.is_file() else None


def weights_status(model: str) -> str:
    """One sentence for the dashboard: what ``model`` downloads, and whether it is here already."""
    backbone = backbone_of(model)
    if backbone is None:
        return "Starts from random weights: nothing to download."
    what = f"{backbone.name}'s ImageNet weights ({backbone.file_name}, {backbone.megabytes:.1f} MB)"
    found = cached_weights(backbone)
    if found is not None:
        return f"Uses {what}: present in {found.parent}."
    return (
        f"Uses {what}: not on this machine yet; downloaded into {keras_models_dir()} when "
        f"training starts (or copy the file there)."
    )


def _hash_matches(path: Path, expected: str) -> bool:
    digest = hashlib.sha256() if len(expected) == 64 else hashlib.md5()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(CHUNK), b""):
            digest.update(chunk)
    return digest.hexdigest() == expected.lower()


def _missing(backbone: Backbone, model: str, reason: str) -> WeightsMissing:
    folder = keras_models_dir()
    return WeightsMissing(
        f"{model} starts from {backbone.name}'s ImageNet weights, {backbone.file_name} "
        f"({backbone.megabytes:.1f} MB), which Keras keeps in {folder}; {reason}. Download "
        f"{backbone.url}{backbone.file_name} on a machine with internet and copy it into "
        f"{folder}, or give its path with --weights PATH (or set {WEIGHTS_URL_ENV} to a "
        "folder URL that serves it)."
    )


def download_weights(
    backbone: Backbone, model: str, on_progress: Callable[[int, int], None] | None = None
) -> Path:
    """Download the weights file into Keras' cache and check its hash.

    Args:
        backbone: which file.
        model: the registry model that needs it (for the error message).
        on_progress: called with (bytes so far, total bytes) as the download goes.

    Returns:
        The file's path in :func:`keras_models_dir`.

    Raises:
        WeightsMissing: the download failed or the file is not the expected one.
    """
    url, folder = weights_url(backbone), keras_models_dir()
    try:
        folder.mkdir(parents=True, exist_ok=True)
        fd, temp = tempfile.mkstemp(prefix=f".{backbone.file_name}.", dir=folder)
    except OSError as exc:
        raise _missing(backbone, model, f"{folder} cannot be written ({exc})") from exc
    try:
        with os.fdopen(fd, "wb") as out:
            with urllib.request.urlopen(url, timeout=DOWNLOAD_TIMEOUT_S) as response:
                total, done = int(response.headers.get("Content-Length") or backbone.size), 0
                for chunk in iter(lambda: response.read(CHUNK), b""):
                    out.write(chunk)
                    done += len(chunk)
                    if on_progress is not None:
                        on_progress(done, total)
            out.flush()
            os.fsync(out.fileno())
        if not _hash_matches(Path(temp), backbone.file_hash):
            raise _missing(backbone, model, f"the file downloaded from {url} is not that file "
                           f"(its hash is not {backbone.file_hash})")  # fmt: skip
        target = folder / backbone.file_name
        os.replace(temp, target)
        return target
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", None) or exc
        raise _missing(backbone, model, f"it is not there and {url} cannot be reached "
                       f"({reason})") from exc  # fmt: skip
    finally:
        Path(temp).unlink(missing_ok=True)


def find_weights(
    model: str,
    weights: str | Path | None = None,
    *,
    download: bool = True,
    on_progress: Callable[[int, int], None] | None = None,
) -> Path | None:
    """The weights file a new run of ``model`` starts from (None for a model without a backbone).

    Args:
        model: registry name.
        weights: a file the user gave (``--weights``); otherwise Keras' cache, then a download.
        download: download into Keras' cache when the file is not there.
        on_progress: as for :func:`download_weights`.

    Raises:
        WeightsMissing: the given file does not exist, or the weights are neither cached nor
            downloadable; the message says which file Keras expects and how to get it.
        ModelError: ``weights`` was given for a model that has no pretrained base.
    """
    backbone = backbone_of(model)
    if backbone is None:
        if weights:
            raise ModelError(f"{model} has no pretrained base; --weights is for pretrained models")
        return None
    if weights:
        path = Path(weights).expanduser()
        if not os.path.lexists(path):
            raise _missing(backbone, model, f"the weights file given, {path}, does not exist")
        return path
    found = cached_weights(backbone)
    if found is not None:
        return found
    if not download:
        raise _missing(backbone, model, "it is not there")
    return download_weights(backbone, model, on_progress)


def _weights_suffix(name: str) -> str | None:
    """``.weights.h5`` or ``.h5`` (Keras reads the two formats by that ending), else None."""
    lower = name.lower()
    if lower.endswith(".weights.h5"):
        return ".weights.h5"
    return ".h5" if lower.endswith(".h5") else None


def _form_problem(name: str, head: bytes, shown: str, backbone: Backbone) -> str | None:
    """Why a file called ``name`` that starts with ``head`` cannot be a Keras weights file, in
    one sentence naming it as ``shown``; None if it may be one."""
    if _weights_suffix(name) is None:
        return f"{shown} is not a weights file: its name does not end in .h5, as " \
            f"{backbone.file_name} does"  # fmt: skip
    if head.startswith(HDF5_SIGNATURE):
        return None
    if head.startswith(b"PK"):
        what = "a zip archive (a saved .keras model?), not an HDF5 file"
    else:
        what = "empty" if not head else "not in the HDF5 format of Keras' .h5 files"
    return f"{shown} is not a weights file: it is {what}"


def _pretrained_base(model: str) -> Backbone:
    backbone = backbone_of(model)
    if backbone is None:
        raise ModelError(f"{model} has no pretrained base; weights files are for pretrained models")
    return backbone


def check_weights_file(model: str, path: str | Path, shown: str | None = None) -> str:
    """Check that ``path`` holds the weights of ``model``'s pretrained base, loading them as
    training will (this imports TensorFlow and builds the base: about a second).

    Args:
        model: registry name of a pretrained model.
        path: the weights file.
        shown: the file's name in messages (an upload's own name rather than where it is kept).

    Returns:
        One sentence for people: what the file is and what training makes of it.

    Raises:
        ModelError: one sentence naming the problem: no pretrained base, no such file, not a
            ``.h5`` file, not HDF5, or not this base's weights.
    """
    backbone, path = _pretrained_base(model), Path(path).expanduser()
    shown = shown or str(path)
    try:  # a folder, a pipe, an empty file: each said as what it is; nothing blocks
        with os.fdopen(open_regular(path, shown), "rb") as handle:
            head = handle.read(len(HDF5_SIGNATURE))
    except FileProblem as exc:
        raise ModelError(f"{exc}; give the path of a weights file (.h5)") from exc
    except FileNotFoundError as exc:
        raise ModelError(f"{shown} does not exist; give the path of a weights file (.h5)") from exc
    except OSError as exc:
        raise ModelError(f"{shown} cannot be read ({os_words(exc)})") from exc
    if problem := _form_problem(path.name, head, shown, backbone):
        raise ModelError(problem)
    from catdog.model.pretrained import check_base_weights

    layers = check_base_weights(backbone, path, shown)
    size = path.stat().st_size
    said = f"Uses {shown} ({megabytes(size)}): "
    if size == backbone.size and _hash_matches(path, backbone.file_hash):
        return said + f"{backbone.name}'s ImageNet weights, the file Keras downloads."
    return said + f"weights for all {layers} weighted layers of {backbone.name}'s base (not " \
        "the ImageNet file Keras downloads)."  # fmt: skip


def save_uploaded_weights(model: str, name: str, data: bytes) -> tuple[Path, str]:
    """Keep an uploaded weights file of ``model``'s base in the data home's ``weights/`` folder
    (the visitor's own in hosted mode), checked first (see :func:`check_weights_file`).

    It is kept as ``<name>-<12 hex digits of its SHA-256>.h5`` (or ``.weights.h5``): the same
    file uploaded again is the same file, and a different one never replaces a file a run's
    configuration names. A file that fails the check is not kept.

    Args:
        model: registry name of a pretrained model.
        name: the uploaded file's name.
        data: its bytes.

    Returns:
        Where it is kept, and :func:`check_weights_file`'s sentence about it.

    Raises:
        ModelError: it is not a weights file of ``model``'s base (one sentence, naming it).
        catdog.policy.HostedLimitError: in hosted mode, over the upload cap or the quota, or
            a read-only visitor.
    """
    backbone = _pretrained_base(model)
    shown = Path(name.replace("\\", "/")).name or "the uploaded file"
    policy = current_policy()
    policy.check_writable(f"keeping the weights file {shown}")
    policy.check_upload(len(data), shown)  # before writing it anywhere
    if problem := _form_problem(shown, data[: len(HDF5_SIGNATURE)], shown, backbone):
        raise ModelError(problem)
    suffix = str(_weights_suffix(shown))
    stem = re.sub(r"[^A-Za-z0-9._-]+", "_", shown[: -len(suffix)]).strip("._")[:80] or "weights"
    target = weights_dir() / f"{stem}-{hashlib.sha256(data).hexdigest()[:12]}{suffix}"
    if target.is_file():  # uploaded before (perhaps for another model): checked for this one
        return target, check_weights_file(model, target, shown)
    policy.check_quota(len(data), shown)
    fd, temp = tempfile.mkstemp(prefix=".upload-", suffix=suffix, dir=target.parent)
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(data)
            out.flush()
            os.fsync(out.fileno())
        said = check_weights_file(model, temp, shown)
        os.replace(temp, target)
        return target, said
    finally:
        Path(temp).unlink(missing_ok=True)
