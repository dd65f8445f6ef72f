"""Shared fixtures: an isolated data home per test and tiny generated datasets."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

SHARED_SMALL = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "cats_vs_dogs_small"

# Keep TensorFlow quiet and single-process friendly in tests.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
# auto's timing of each arithmetic, shorter than a user's 4 s (still the real step, in a child
# process): the decision is not what these tests check, and many of them make one.
os.environ.setdefault("CATDOG_PROBE_SECONDS", "1")


@pytest.fixture(autouse=True)
def catdog_home(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Point the data home at a fresh temporary folder so no test touches ~/.catdog."""
    home = tmp_path_factory.mktemp("catdog_home")
    monkeypatch.setenv("CATDOG_HOME", str(home))
    return home


def striped_image(kind: int, size: int, rng: np.random.Generator) -> Image.Image:
    """A tiny learnable picture: class 0 horizontal stripes, class 1 vertical, class 2 checks."""
    period = int(rng.integers(4, 8))
    yy, xx = np.mgrid[0:size, 0:size]
    if kind == 0:
        pattern = (yy // period) % 2
    elif kind == 1:
        pattern = (xx // period) % 2
    else:
        pattern = ((yy // period) + (xx // period)) % 2
    fg = rng.integers(120, 256, size=3)
    bg = rng.integers(0, 100, size=3)
    arr = np.where(pattern[..., None] == 1, fg, bg).astype(np.uint8)
    noise = rng.integers(-20, 21, size=arr.shape)
    return Image.fromarray(np.clip(arr.astype(int) + noise, 0, 255).astype(np.uint8), "RGB")


def make_dataset(
    root: Path,
    classes: tuple[str, ...] = ("cats", "dogs"),
    counts: tuple[int, int, int] = (16, 8, 8),
    size: int = 40,
    seed: int = 0,
) -> Path:
    """Write ``root/{train,validation,test}/<class>/*.jpg`` with ``counts`` images per class."""
    rng = np.random.default_rng(seed)
    for split, n in zip(("train", "validation", "test"), counts, strict=True):
        for k, cls in enumerate(classes):
            folder = root / split / cls
            folder.mkdir(parents=True, exist_ok=True)
            for i in range(n):
                striped_image(k, size, rng).save(folder / f"{cls[:-1] or cls}.{i}.jpg", quality=95)
    return root


@pytest.fixture
def dataset_factory(tmp_path: Path) -> Callable[..., Path]:
    """Build tiny folder-per-class datasets: ``dataset_factory(classes=..., counts=...)``."""
    made = 0

    def build(**kwargs) -> Path:
        nonlocal made
        made += 1
        return make_dataset(tmp_path / f"dataset{made}", **kwargs)

    return build


@pytest.fixture
def tiny_dataset(dataset_factory: Callable[..., Path]) -> Path:
    """A 2-class (cats, dogs) dataset of 40-pixel striped images: 16/8/8 per class."""
    return dataset_factory()


def require_shared_small() -> Path:
    """Return the real photos' folder, or skip the test saying why."""
    if not SHARED_SMALL.is_dir():
        pytest.skip(
            f"real photos not available: {SHARED_SMALL} does not exist "
            "(the seed's photos sit beside the checkout, in ../shared, where they are installed)"
        )
    return SHARED_SMALL


@pytest.fixture(scope="session")
def trained(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """One tiny real training run shared by the whole session: (dataset folder, run folder)."""
    from catdog.inference.evaluate import final_test
    from catdog.train.config import TrainConfig
    from catdog.train.trainer import train

    root = tmp_path_factory.mktemp("shared_run")
    data = make_dataset(root / "data", counts=(16, 8, 8), size=40)
    # Session fixtures run before the per-test data home, so isolate this one by hand.
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("CATDOG_HOME", str(root / "home"))
        config = TrainConfig(
            data=str(data),
            model="seed-baseline",
            epochs=1,
            image_size=48,
            batch_size=8,
            precision="float32",  # not timed here: see test_precision.py
        )
        result = train(config, test_with=final_test)  # as the job and the CLI do
    return data, result.path
