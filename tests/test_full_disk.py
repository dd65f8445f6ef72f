"""A full disk, for real: a tiny tmpfs mounted as the data home.

(a) Importing more photos than the disk holds gives one line saying the disk is full, leaves
no half dataset and no work folder, and changes nothing already there. (b) Saving a model
when the disk fills during training gives one line, and the run keeps what it had: the files
of the epoch before, and a history that matches the saved model.

Mounting needs root (as here and in CI); elsewhere the tests are skipped, saying why.
"""

from __future__ import annotations

import contextlib
import io
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from builders import tree_digest, write, zip_folder
from conftest import make_dataset
from PIL import Image

from catdog.data.names import shown
from catdog.train import runs

ROOT = Path(__file__).resolve().parents[1]

pytestmark = pytest.mark.slow


def mount_tmpfs(folder: Path, size: str) -> None:
    """Mount a tmpfs of ``size`` (e.g. "2m", "6500k") on ``folder``, or skip saying why."""
    folder.mkdir(parents=True, exist_ok=True)
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs to fill a disk for real needs root")
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(folder)],
        capture_output=True,
        text=True,
    )
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.strip() or done.returncode}")


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A folder on a tmpfs mounted for the test (its size set by :func:`mount_tmpfs`)."""
    folder = tmp_path / "disk"
    yield folder
    if os.path.ismount(folder):
        subprocess.run(["umount", str(folder)], check=True)


def catdog(*args: str, home: Path) -> subprocess.CompletedProcess[str]:
    """``python -m catdog ARGS`` in a process of its own, with ``home`` as the data home."""
    env = {**os.environ, "CATDOG_HOME": str(home), "TF_CPP_MIN_LOG_LEVEL": "2"}
    return subprocess.run(
        [sys.executable, "-m", "catdog", *args],
        capture_output=True,
        text=True,
        env=env,
        cwd=ROOT,
        timeout=600,
    )


def the_error(stderr: str) -> str:
    """The error line at the end of stderr; nothing but progress bars and notes before it."""
    assert "Traceback" not in stderr, stderr
    *before, error = stderr.strip().splitlines()
    assert error.startswith("error: "), stderr
    assert not any(line.startswith("error") for line in before), stderr
    assert shown(error) == error
    return error


def noise_photos(root: Path, per_class: int = 40, side: int = 200) -> Path:
    """Photos of noise (JPEG cannot shrink them): about 50 KB each, copied as they are."""
    rng = np.random.default_rng(0)
    for cls in ("cats", "dogs"):
        for i in range(per_class):
            pixels = rng.integers(0, 256, (side, side, 3), dtype=np.uint8)
            buffer = io.BytesIO()
            Image.fromarray(pixels).save(buffer, "JPEG", quality=95)
            write(root / cls / f"{cls[:-1]}.{i}.jpg", buffer.getvalue())
    return root


@pytest.mark.parametrize("packed", [False, True], ids=["folder", "zip"])
def test_import_onto_a_full_disk(tmp_path: Path, small_disk: Path, packed: bool) -> None:
    mount_tmpfs(small_disk, "2m")
    home = small_disk / "home"
    make_dataset(home / "datasets" / "pets", counts=(2, 1, 1), size=32)  # already there
    before = tree_digest(home)
    source = noise_photos(tmp_path / "photos")  # ~4 MB: twice the disk
    given = zip_folder(source, tmp_path / "photos.zip") if packed else source
    done = catdog("import", str(given), "--out", str(home / "datasets" / "photos"), home=home)
    assert done.returncode == 2 and done.stdout == ""
    error = the_error(done.stderr)
    assert error.startswith(f"error: the disk holding {home / 'datasets'} is full ("), error
    assert "nothing was imported and nothing is left behind" in error
    assert sorted(os.listdir(home / "datasets")) == ["pets"]  # no half dataset, no work folder
    assert tree_digest(home) == before


def model_bytes(tmp_path: Path, data: Path) -> int:
    """The size of this test's model file, measured by training it once on an ordinary disk."""
    done = catdog(*TRAIN, "--data", str(data), "--epochs", "1", home=tmp_path / "measure")
    assert done.returncode == 0, done.stderr
    run = runs.resolve_run(done.stdout.strip())  # the current data home is the test's own
    return (run / runs.LAST_MODEL).stat().st_size


TRAIN = ("train", "--image-size", "48", "--batch-size", "8", "--precision", "float32")


def test_saving_a_model_onto_a_full_disk(
    tmp_path: Path, small_disk: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = make_dataset(tmp_path / "data", counts=(8, 4, 4), size=32)
    monkeypatch.setenv("CATDOG_HOME", str(tmp_path / "measure"))
    size = model_bytes(tmp_path, data)
    # Room for epoch 1's last and best models, not for epoch 2's new last model beside them.
    mount_tmpfs(small_disk, f"{(2 * size + size // 2) // 1024}k")
    home = small_disk / "home"
    done = catdog(*TRAIN, "--data", str(data), "--epochs", "3", home=home)
    assert done.returncode == 1 and done.stdout == ""
    error = the_error(done.stderr)
    assert error.startswith("error: training failed: the disk is full"), error
    assert error.endswith("free some space, then resume the run (the run folder's error.log "
                          "has the details; --debug shows them here)")  # fmt: skip

    monkeypatch.setenv("CATDOG_HOME", str(home))
    (run,) = runs.list_runs()
    assert (run.state, run.epochs_done) == ("failed", 1)
    assert sorted(os.listdir(run.path)) == sorted(  # no half-written model left behind
        [runs.BEST_MODEL, runs.LAST_MODEL, runs.CONFIG_FILE, runs.HISTORY_FILE,
         runs.STATUS_FILE, runs.ERROR_LOG, runs.CHECKPOINT_FILE, runs.LOCK_FILE]
    )  # fmt: skip
    history = runs.read_history(run.path)
    assert [row["epoch"] for row in history] == [1]
    # The history says what the saved model does: epoch 1's validation accuracy, exactly.
    from catdog.inference.evaluate import evaluate_run

    for which in ("last", "best"):
        check = evaluate_run(run.path, data / "validation", which=which, tta=False)
        assert check.accuracy == pytest.approx(history[0]["val_accuracy"]), which


def test_streaming_onto_a_full_disk(
    tmp_path: Path, small_disk: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Decoding into the disk cache: refused up front when the disk has no room, and one line,
    with nothing left behind, when it fills while writing."""
    from catdog.train import cache
    from catdog.train.pipeline import open_splits

    mount_tmpfs(small_disk, "1m")
    monkeypatch.setenv("CATDOG_HOME", str(small_disk / "home"))
    monkeypatch.setenv("CATDOG_MEMORY_BUDGET_MB", "0.01")  # stream
    data = make_dataset(tmp_path / "data", counts=(16, 8, 8), size=40)
    expected = (
        r"^streaming 32 images needs 1\.1 MB of disk in .*/cache/decoded for their decoded "
        r"pixels, but only .* is free; free some disk space, or train at a smaller image size$"
    )
    with pytest.raises(cache.CacheError, match=expected):  # before decoding anything
        open_splits(data, ("train",), image_size=112)
    monkeypatch.setattr(cache, "SPARE_BYTES", -(1 << 30))  # as if another program filled it
    with pytest.raises(cache.CacheError, match=expected) as caught:  # while writing
        open_splits(data, ("train",), image_size=112)
    assert os.listdir(cache.cache_root()) == ["locks"]  # no half entry, no work folder
    # Nor a file kept open while the error lives (it would hold on to the full disk's space).
    assert caught.value is not None and open_files_under(small_disk) == []


def open_files_under(folder: Path) -> list[str]:
    """The files under ``folder`` this process has open (locks aside)."""
    found = []
    for fd in os.listdir("/proc/self/fd"):
        with contextlib.suppress(OSError):
            target = os.readlink(f"/proc/self/fd/{fd}")
            if target.startswith(str(folder)) and not target.endswith(".lock"):
                found.append(target)
    return found
