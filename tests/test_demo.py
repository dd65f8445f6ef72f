"""The demo dataset: layout, determinism, real JPEGs, no colour/size shortcut, safe ensure."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from catdog.data.datasets import MANIFEST_NAME
from catdog.data.demo import (
    MAX_SIDE,
    MIN_SIDE,
    ensure_demo_dataset,
    generate_demo_dataset,
)
from catdog.data.images import open_rgb
from catdog.data.paths import datasets_dir, demo_dataset_dir

REPO = Path(__file__).resolve().parents[1]


def _files(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*.jpg"))}


def test_layout_counts_names_and_manifest(tmp_path: Path) -> None:
    seen = []
    root = generate_demo_dataset(
        tmp_path / "demo",
        counts=(3, 2, 1),
        seed=5,
        progress=lambda done, total, msg: seen.append((done, total)),
    )
    names = sorted(_files(root))
    assert names == sorted(
        [f"train/cats/cat.{i}.jpg" for i in range(3)]
        + [f"train/dogs/dog.{i}.jpg" for i in range(3)]
        + [f"validation/cats/cat.{i}.jpg" for i in (3, 4)]
        + [f"validation/dogs/dog.{i}.jpg" for i in (3, 4)]
        + ["test/cats/cat.5.jpg", "test/dogs/dog.5.jpg"]
    )
    manifest = json.loads((root / MANIFEST_NAME).read_text())
    assert manifest["source"] == "demo"
    assert manifest["seed"] == 5
    assert manifest["counts"] == {"train": 3, "validation": 2, "test": 1}
    assert manifest["classes"] == ["cats", "dogs"]
    assert manifest["created"]
    assert seen[-1] == (12, 12)


def test_same_seed_gives_identical_bytes_and_another_seed_does_not(tmp_path: Path) -> None:
    first = _files(generate_demo_dataset(tmp_path / "a", counts=(2, 1, 1), seed=3))
    again = _files(generate_demo_dataset(tmp_path / "b", counts=(2, 1, 1), seed=3))
    other = _files(generate_demo_dataset(tmp_path / "c", counts=(2, 1, 1), seed=4))
    assert first == again
    assert first.keys() == other.keys()
    assert all(first[name] != other[name] for name in first)


def test_images_do_not_depend_on_the_counts(tmp_path: Path) -> None:
    small = _files(generate_demo_dataset(tmp_path / "a", counts=(1, 0, 0)))
    large = _files(generate_demo_dataset(tmp_path / "b", counts=(3, 0, 0)))
    assert small["train/cats/cat.0.jpg"] == large["train/cats/cat.0.jpg"]


def test_images_are_rgb_jpegs_of_varied_sizes(tmp_path: Path) -> None:
    root = generate_demo_dataset(tmp_path / "demo", counts=(10, 0, 0))
    sizes = set()
    for path in root.rglob("*.jpg"):
        with Image.open(path) as raw:
            assert raw.format == "JPEG"
            assert raw.mode == "RGB"
        image = open_rgb(path)
        assert min(image.size) >= MIN_SIDE and max(image.size) <= MAX_SIDE
        assert np.asarray(image).std() > 10  # a picture, not a flat colour
        sizes.add(image.size)
    assert len(sizes) >= 15  # 20 images, nearly all of different width × height


def test_colour_size_and_layout_do_not_give_the_label_away(tmp_path: Path) -> None:
    """Per-class means of colour and size agree within noise; a 4×4 thumbnail is no cue."""
    root = generate_demo_dataset(tmp_path / "demo", counts=(40, 0, 0), seed=11)
    stats: dict[str, list[np.ndarray]] = {"cats": [], "dogs": []}
    thumbs: dict[str, list[np.ndarray]] = {"cats": [], "dogs": []}
    for folder in stats:
        for path in sorted((root / "train" / folder).glob("*.jpg")):
            image = open_rgb(path)
            pixels = np.asarray(image, dtype=float)
            w, h = image.size
            stats[folder].append(np.r_[pixels.reshape(-1, 3).mean(0), w, h, w / h])
            thumbs[folder].append(
                np.asarray(image.resize((4, 4), Image.Resampling.BOX), dtype=float).ravel()
            )
    cats, dogs = np.array(stats["cats"]), np.array(stats["dogs"])
    standard_error = np.sqrt(cats.var(0) / len(cats) + dogs.var(0) / len(dogs))
    t = np.abs(cats.mean(0) - dogs.mean(0)) / standard_error
    assert t.max() < 3, f"per-class means differ: t = {np.round(t, 2)} for R, G, B, w, h, w/h"

    # Nearest class centroid on 4×4 thumbnails: fit on half, score on the other half.
    x = np.array(thumbs["cats"] + thumbs["dogs"])
    y = np.r_[np.zeros(40), np.ones(40)]
    fit, held = np.arange(80) % 2 == 0, np.arange(80) % 2 == 1
    centroids = np.stack([x[fit & (y == k)].mean(0) for k in (0, 1)])
    guess = np.argmin(((x[held, None, :] - centroids) ** 2).sum(-1), axis=1)
    assert 0.3 <= (guess == y[held]).mean() <= 0.7


def test_generate_rejects_bad_counts(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"\(1, 2\)"):
        generate_demo_dataset(tmp_path, counts=(1, 2))
    with pytest.raises(ValueError, match="-1"):
        generate_demo_dataset(tmp_path, counts=(1, -1, 0))


def test_ensure_demo_dataset_generates_once(catdog_home: Path) -> None:
    path = ensure_demo_dataset(counts=(2, 1, 1))
    assert path == demo_dataset_dir()
    assert len(list(path.rglob("*.jpg"))) == 8
    manifest = (path / MANIFEST_NAME).read_text()
    assert ensure_demo_dataset(counts=(5, 5, 5)) == path  # already there: left alone
    assert (path / MANIFEST_NAME).read_text() == manifest
    assert len(list(path.rglob("*.jpg"))) == 8
    assert [p.name for p in datasets_dir().iterdir()] == ["demo"]  # no temporary folders left


def test_ensure_demo_dataset_is_safe_when_two_processes_call_it_at_once(catdog_home: Path) -> None:
    code = (
        "from catdog.data.demo import ensure_demo_dataset\n"
        "print(ensure_demo_dataset(counts=(6, 2, 2)))"
    )
    calls = [
        subprocess.Popen([sys.executable, "-c", code], cwd=REPO, stdout=subprocess.PIPE, text=True)
        for _ in range(2)
    ]
    outputs = [call.communicate(timeout=120)[0].strip() for call in calls]
    assert [call.returncode for call in calls] == [0, 0]
    assert outputs == [str(demo_dataset_dir())] * 2
    assert len(list(demo_dataset_dir().rglob("*.jpg"))) == 20
    assert [p.name for p in datasets_dir().iterdir()] == ["demo"]  # the loser's copy is gone


def test_ensure_demo_dataset_refuses_a_foreign_folder(catdog_home: Path) -> None:
    (demo_dataset_dir() / "train").mkdir(parents=True)
    with pytest.raises(FileExistsError, match=MANIFEST_NAME):
        ensure_demo_dataset(counts=(1, 0, 0))
    assert not (demo_dataset_dir() / MANIFEST_NAME).exists()
