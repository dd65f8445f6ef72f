"""Datasets of any size: the memory budget decides, and the disk cache streams what it exceeds.

A tiny budget (``CATDOG_MEMORY_BUDGET_MB``) forces streaming on tiny generated images; the
streamed batches are compared with the in-memory path's, the cache's reuse and invalidation are
seen on disk, and a writer killed mid-write is a real process killed.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from catdog.data.datasets import labelled_images
from catdog.model.pixels import scale_pixels
from catdog.train import budget, cache, shards
from catdog.train.budget import BudgetError, choose_input, decoded_bytes
from catdog.train.pipeline import (
    LoadedSplit,
    load_split,
    make_dataset,
    open_splits,
)
from catdog.train.shards import StreamedSplit

SIZE = 32
CLASSES = ["cats", "dogs"]
TINY_BUDGET = "0.01"  # megabytes: any dataset streams


@pytest.fixture
def streaming(monkeypatch: pytest.MonkeyPatch) -> None:
    """A budget so small that every dataset is streamed."""
    monkeypatch.setenv(budget.ENV_VAR, TINY_BUDGET)


@pytest.fixture
def small_shards(monkeypatch: pytest.MonkeyPatch) -> None:
    """Shards of 5 images, so even a tiny split has several."""
    monkeypatch.setattr(shards, "SHARD_BYTES", 5 * (shards.HEADER_BYTES + SIZE * SIZE * 3))


def epoch(dataset) -> tuple[np.ndarray, np.ndarray]:
    """One pass as (images, labels)."""
    xs, ys = zip(*dataset.as_numpy_iterator(), strict=True)
    return np.concatenate(xs), np.concatenate(ys)


def digests(images: np.ndarray) -> list[str]:
    """One fingerprint per image (to compare images as a multiset)."""
    return [hashlib.sha256(np.ascontiguousarray(image).tobytes()).hexdigest() for image in images]


def shard_stamps(split: StreamedSplit) -> dict[str, int]:
    return {path.name: path.stat().st_mtime_ns for path in split.shards}


# --- the budget --------------------------------------------------------------------------------


def test_the_budget_decides_from_the_decoded_size(monkeypatch: pytest.MonkeyPatch) -> None:
    assert decoded_bytes(25_000, 150) == 1_687_500_000
    monkeypatch.setenv(budget.ENV_VAR, "800")
    over = choose_input(25_000, 150)
    assert over.streaming and over.budget_bytes == 800 * 2**20
    assert over.reason == f"streaming: 1.6 GB decoded > 800 MB budget ({budget.ENV_VAR}=800)"
    within = choose_input(2_000, 112)
    assert not within.streaming and within.reason.startswith("in memory: 72 MB decoded ≤ 800 MB")
    assert json.loads(json.dumps(over.to_dict()))["mode"] == "streaming"
    for bad in ("lots", "0", "-5", "inf"):
        monkeypatch.setenv(budget.ENV_VAR, bad)
        with pytest.raises(BudgetError, match=f"{budget.ENV_VAR} must be a positive number.*"):
            choose_input(10, 32)


def test_the_default_budget_comes_from_the_machine_and_hosted_mode_is_small(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv(budget.ENV_VAR, raising=False)
    available = budget.available_memory_bytes()
    size, source = budget.memory_budget()
    if available is not None:
        assert size == min(available // 4, budget.MAX_BUDGET_BYTES) and "available" in source
    monkeypatch.setenv("CATDOG_HOSTED", "1")
    assert budget.memory_budget() == (64 * 2**20, "hosted mode's budget")
    assert choose_input(2_250, 128).streaming  # a 3,000-photo upload's train + validation
    assert not choose_input(900, 96).streaming  # the demo
    monkeypatch.setenv(budget.ENV_VAR, "200")  # a server's own setting wins
    assert not choose_input(2_250, 128).streaming


# --- the same images as in memory ---------------------------------------------------------------


def test_streamed_splits_hold_the_in_memory_images(
    tiny_dataset: Path, streaming: None, small_shards: None
) -> None:
    cats = tiny_dataset / "train" / "cats"
    (cats / "notes.jpg").write_text("not a photo")
    good = (cats / "cat.0.jpg").read_bytes()
    (cats / "cut.jpg").write_bytes(good[: len(good) // 3])
    opened = open_splits(tiny_dataset, ("train", "validation"), image_size=SIZE)
    assert opened.choice.streaming and opened.summary.startswith("streaming: ")
    assert "2 unreadable files skipped" in opened.summary
    train, val = opened.splits
    assert isinstance(train, StreamedSplit) and isinstance(val, StreamedSplit)
    assert len(train.shards) == 7  # 32 images, 5 a shard
    memory_train = load_split(tiny_dataset, "train", image_size=SIZE)
    memory_val = load_split(tiny_dataset, "validation", image_size=SIZE)
    # Damaged files: skipped and reported exactly as in memory.
    assert train.skipped == memory_train.skipped and len(train.skipped) == 2
    assert train.paths == memory_train.paths
    assert train.labels.tolist() == memory_train.labels.tolist()

    # Validation (unshuffled): the very same batches, in the same order.
    for label_mode in ("binary", "categorical"):
        streamed = epoch(make_dataset(val, batch_size=5, shuffle=False, augment=None,
                                      label_mode=label_mode))  # fmt: skip
        in_memory = epoch(make_dataset(memory_val, batch_size=5, shuffle=False, augment=None,
                                       label_mode=label_mode))  # fmt: skip
        np.testing.assert_array_equal(streamed[0], in_memory[0])
        np.testing.assert_array_equal(streamed[1], in_memory[1])

    # Training (shuffled): every epoch is every image once, with its own label.
    expected = _labelled_digests(memory_train)
    dataset = make_dataset(train, batch_size=8, shuffle=True, augment=None, seed=3)
    orders = []
    for _ in range(2):
        images, labels = epoch(dataset)
        seen = digests(images)
        assert sorted(zip(seen, labels[:, 0].astype(int).tolist(), strict=True)) == expected
        orders.append(seen)
    assert orders[0] != orders[1]  # a new order each epoch
    replay = make_dataset(train, batch_size=8, shuffle=True, augment=None, seed=3)
    assert digests(epoch(replay)[0]) == orders[0]  # the same seed replays it
    other = make_dataset(train, batch_size=8, shuffle=True, augment=None, seed=4)
    assert digests(epoch(other)[0]) != orders[0]


def _labelled_digests(loaded: LoadedSplit) -> list[tuple[str, int]]:
    """Each in-memory image's fingerprint (as the model sees it) with its label, sorted."""
    images = scale_pixels(loaded.images)
    return sorted(zip(digests(images), loaded.labels.tolist(), strict=True))


def test_streamed_training_batches_are_augmented_like_in_memory(
    tiny_dataset: Path, streaming: None
) -> None:
    """Same seed: the same augmentation seed for batch k on both paths; here all images are
    the same picture, so the batches must match exactly."""
    from catdog.train.augment import AugmentConfig

    one = tiny_dataset / "train" / "cats" / "cat.0.jpg"
    for path in [*(tiny_dataset / "train").glob("*/*.jpg")]:
        path.write_bytes(one.read_bytes())
    (train,) = open_splits(tiny_dataset, ("train",), image_size=SIZE).splits
    memory = load_split(tiny_dataset, "train", image_size=SIZE)
    for_both = {"batch_size": 8, "shuffle": True, "augment": AugmentConfig(), "seed": 7}
    streamed = epoch(make_dataset(train, **for_both))[0]
    in_memory = epoch(make_dataset(memory, **for_both))[0]
    np.testing.assert_allclose(streamed, in_memory, atol=1e-6)
    assert not np.allclose(streamed[0], streamed[1])  # augmented: each image differently


# --- the cache -----------------------------------------------------------------------------------


def _open_train(data: Path, progress=None) -> StreamedSplit:
    folder = data / "train"
    paths, labels = labelled_images(folder, CLASSES)
    return shards.open_streamed(folder, paths, labels, CLASSES, SIZE, shuffled=True,
                                progress=progress)  # fmt: skip


def test_the_cache_is_reused_and_invalidated_when_a_file_changes(
    tiny_dataset: Path, catdog_home: Path
) -> None:
    messages: list[str] = []
    first = _open_train(tiny_dataset, lambda done, total, message: messages.append(message))
    assert not first.reused and sum("into the disk cache" in m for m in messages) == 32
    assert first.folder.parent == catdog_home / "cache" / "decoded"
    assert not any(p.suffix == ".tfrecord" for p in tiny_dataset.rglob("*"))  # never in the data
    stamps = shard_stamps(first)

    messages.clear()
    second = _open_train(tiny_dataset, lambda done, total, message: messages.append(message))
    assert second.reused and second.key == first.key
    assert messages == ["decoded images found in the disk cache"]  # nothing decoded
    assert shard_stamps(second) == stamps  # nor written

    changed = tiny_dataset / "train" / "dogs" / "dog.3.jpg"
    changed.write_bytes((tiny_dataset / "train" / "dogs" / "dog.4.jpg").read_bytes())
    third = _open_train(tiny_dataset)
    assert not third.reused and third.key != first.key

    # Clean-up: an entry in use stays; one whose dataset is gone, or over the cap, goes.
    third.hold.release()
    assert cache.clean_cache(cap_bytes=0) == [third.key]  # first/second still hold theirs
    first.hold.release()
    assert cache.clean_cache(cap_bytes=0) == []  # `second` holds the same entry
    second.hold.release()
    assert cache.clean_cache(cap_bytes=0) == [first.key]
    assert not any(cache.cache_root().glob("*/manifest.json"))


def test_the_summary_counts_only_what_was_decoded_now(tiny_dataset: Path, streaming: None) -> None:
    """Training images found in the cache, validation images decoded: the size said is the
    validation split's (16 images of 32 × 32 × 3 bytes), not both splits'."""
    open_splits(tiny_dataset, ("train",), image_size=SIZE)
    both = open_splits(tiny_dataset, ("train", "validation"), image_size=SIZE)
    assert [s.reused for s in both.splits] == [True, False]
    assert both.summary.endswith("; decoded into the disk cache (48 kB); the rest reused from it")
    again = open_splits(tiny_dataset, ("train", "validation"), image_size=SIZE)
    assert again.summary.endswith("; decoded images reused from the disk cache")


def test_an_entry_whose_dataset_is_gone_is_cleaned(tiny_dataset: Path) -> None:
    import shutil

    split = _open_train(tiny_dataset)
    split.hold.release()
    assert cache.clean_cache() == []  # its dataset is there and the cache is small
    shutil.rmtree(tiny_dataset)
    assert cache.clean_cache() == [split.key]


@pytest.mark.slow
def test_a_killed_writer_leaves_no_cache_that_is_used_later(
    tiny_dataset: Path, catdog_home: Path
) -> None:
    """A real writer process, killed after its first shards are on disk."""
    record = shards.HEADER_BYTES + SIZE * SIZE * 3
    code = f"""
import time
from pathlib import Path
from catdog.data.datasets import labelled_images
from catdog.train import shards
shards.SHARD_BYTES = {5 * record}
folder = Path({str(tiny_dataset / "train")!r})
paths, labels = labelled_images(folder, {CLASSES!r})

def slowly(done, total, message):
    print(done, flush=True)
    time.sleep(0.3)

shards.open_streamed(folder, paths, labels, {CLASSES!r}, {SIZE}, shuffled=True, progress=slowly,
                     workers=1)
print("finished", flush=True)
"""
    writer = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True,
                              env=os.environ | {"CATDOG_HOME": str(catdog_home)})  # fmt: skip
    try:
        for line in writer.stdout:
            if line.strip() == "12":  # two shards written and closed, a third begun
                break
        writer.kill()
    finally:
        writer.wait(timeout=60)
    root = cache.cache_root()
    (leftover,) = [p for p in root.iterdir() if p.name != "locks"]
    assert ".writing-" in leftover.name and len(list(leftover.glob("*.tfrecord"))) >= 2
    assert not (leftover / cache.MANIFEST).exists()

    split = _open_train(tiny_dataset)
    assert not split.reused  # decoded again, whole
    memory = load_split(tiny_dataset, "train", image_size=SIZE)
    streamed = epoch(make_dataset(split, batch_size=8, shuffle=True, augment=None))
    assert sorted(digests(streamed[0])) == sorted(digests(scale_pixels(memory.images)))
    assert [p.name for p in root.iterdir() if p.name != "locks"] == [split.key]  # leftover gone


# --- training ------------------------------------------------------------------------------------


@pytest.mark.slow
def test_a_short_training_streams_and_says_so(tiny_dataset: Path, streaming: None) -> None:
    from catdog.train.config import TrainConfig
    from catdog.train.events import ProgressEvent
    from catdog.train.trainer import train

    events: list[ProgressEvent] = []
    config = TrainConfig(data=str(tiny_dataset), epochs=1, image_size=48, batch_size=8,
                         precision="float32")  # fmt: skip
    result = train(config, on_event=events.append)
    assert result.state == "completed" and len(result.history) == 1
    assert result.history[0]["images"] == 32 and "val_accuracy" in result.history[0]
    recorded = json.loads((result.path / "config.json").read_text())["input"]
    assert recorded["mode"] == "streaming"
    assert recorded["reason"].startswith("streaming: 324 kB decoded > 10 kB budget")
    assert [c["reused"] for c in recorded["cache"]] == [False, False]
    (start,) = [e for e in events if e.kind == "start"]
    assert start.message.startswith("32 train / 16 validation images; streaming: ")
