"""Fast feature extraction: a pretrained model's head trained on features its frozen base
computed once, against the same training with the base running every epoch."""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np
import pytest

from catdog.model.backend import keras
from catdog.model.registry import build_model
from catdog.train import features, runs
from catdog.train.config import TrainConfig, TrainingError
from catdog.train.pipeline import LoadedSplit, make_dataset
from catdog.train.trainer import resume, train

# Fast and slow paths compute the same features in different batches: on the 2-core EPYC the
# heads come out identical bit for bit; this leaves room for convolution kernels that round
# differently by batch. Training moves the weights by ~1e-2, and a different batch order alone
# makes the heads differ by ~1e-2 (tried): far over it.
HEAD_ATOL = 1e-5


def _split(n: int, size: int = 32, seed: int = 0) -> LoadedSplit:
    rng = np.random.default_rng(seed)
    return LoadedSplit(
        images=rng.integers(0, 256, (n, size, size, 3)).astype(np.uint8),
        labels=np.arange(n, dtype=np.int32) % 2,
        paths=[Path(f"{i}.png") for i in range(n)],
        classes=("cats", "dogs"),
    )


@pytest.mark.slow
def test_cached_features_feed_the_head_as_the_base_would_in_the_same_order() -> None:
    """One pass of the base per image, with progress; the head on the features computes what
    the model computes on the pixels; the batches come in the images' shuffled order."""
    model = build_model("mobilenet-v3-small", image_size=32)
    train_split, val_split = _split(12), _split(5, seed=1)
    seen: list[tuple[int, int]] = []

    def progress(done: int, total: int, message: str) -> None:
        seen.append((done, total))

    keras.utils.set_random_seed(3)
    cache = features.cache_features(model, train_split, val_split, batch_size=4, seed=3,
                                    label_mode="binary", progress=progress)  # fmt: skip
    assert cache is not None
    assert seen == [(4, 17), (8, 17), (12, 17), (16, 17), (17, 17)]  # 3 + 2 batches, once
    assert cache.shape == (1, 1, 576) and cache.nbytes == 17 * 576 * 4
    pixels = train_split.images[:3].astype("float32") / 255.0
    base = features.base_model(model)
    np.testing.assert_allclose(
        cache.head.predict(base.predict(pixels, verbose=0), verbose=0),
        model.predict(pixels, verbose=0),
        atol=1e-6,
    )
    keras.utils.set_random_seed(3)
    images = make_dataset(train_split, batch_size=4, shuffle=True, augment=None, seed=3)
    epochs = []
    for _epoch in range(2):  # a new order each epoch, the same for images and features
        batches = []
        for (x, y), (f, y_cached) in zip(images, cache.train, strict=True):
            np.testing.assert_allclose(base.predict_on_batch(x), f, atol=1e-5)
            np.testing.assert_array_equal(y, y_cached)
            batches.append(np.asarray(f).reshape(len(f), -1))
        epochs.append(np.concatenate(batches))
    assert len(epochs[0]) == 12 and not np.array_equal(epochs[0], epochs[1])
    assert features.cache_features(model, train_split, val_split, batch_size=4, seed=3,
                                   label_mode="binary", stop=lambda: True) is None  # fmt: skip


def test_the_cache_budget_comes_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(features.CACHE_MB_ENV, "1.5")
    assert features.cache_budget() == int(1.5 * 1024 * 1024)
    model = build_model("mobilenet-v3-small", image_size=32)
    assert features.too_big(model, 600) is None  # 600 × 576 × 4 bytes = 1.3 MB
    assert features.too_big(model, 800) == (
        "the frozen base runs every epoch: the features of 800 images would take 1.8 MB, more "
        "than the 1.5 MB the cache may use (CATDOG_FEATURE_CACHE_MB)"
    )
    monkeypatch.setenv(features.CACHE_MB_ENV, "lots")
    with pytest.raises(TrainingError, match=r"CATDOG_FEATURE_CACHE_MB must be .*got 'lots'"):
        features.cache_budget()
    monkeypatch.delenv(features.CACHE_MB_ENV)
    assert features.cache_budget() > 0  # half the memory available


@pytest.fixture(scope="module")
def small_weights(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A MobileNetV3Small weights file from a fresh base at random weights, whose features are
    of order 1: at random weights the signal shrinks to ~1e-10 through the blocks (the head
    would hardly learn), so the last batch norm's scale makes up for it."""
    path = tmp_path_factory.mktemp("weights") / "mobilenet_v3_small.weights.h5"
    base = keras.applications.MobileNetV3Small(
        include_top=False, weights=None, include_preprocessing=False, input_shape=(32, 32, 3)
    )
    norm = base.get_layer("conv_1_bn")
    gamma, beta, mean, variance = norm.get_weights()
    norm.set_weights([gamma * 1e10, beta, mean, variance])
    base.save_weights(path)
    return path


def _head(path: Path) -> list[np.ndarray]:
    """The output layer's kernel and bias of a run's last model."""
    layer = runs.load_model(path, which="last").get_layer("head_output")
    return [np.asarray(w) for w in layer.weights]


def _stopped_then_resumed(cfg: TrainConfig) -> tuple[Path, list]:
    """Train ``cfg``, stopped after epoch 2's first batch (kept, as every stop keeps what it
    trained), then resumed to the end; returns the run and the events of both parts."""
    events: list = []
    stop = threading.Event()

    def on_event(event) -> None:
        events.append(event)
        if event.kind == "epoch":
            stop.set()

    first = train(cfg, on_event=on_event, stop=stop)
    assert (first.state, len(first.history)) == ("stopped", 2)
    assert resume(first.path, on_event=events.append).state == "completed"
    return first.path, events


@pytest.mark.slow
def test_the_fast_path_trains_the_head_the_slow_path_trains(
    tiny_dataset: Path, small_weights: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Same seed, no augmentation, the preset's dropout (0.2) in the head, a stop and a resume:
    3 epochs on cached features give the head 3 epochs with the base running every step give.
    The base runs once per image (the features events count them), the history, the config
    and the progress text say so, and the run saves the full model."""
    cfg = TrainConfig(data=str(tiny_dataset), model="mobilenet-v3-small", epochs=3,
                      fine_tune_epochs=0, image_size=32, batch_size=8, augment=False,
                      precision="float32", weights=str(small_weights), test=False)  # fmt: skip
    fast, fast_events = _stopped_then_resumed(cfg)
    monkeypatch.setenv(features.CACHE_MB_ENV, "0")  # no room for features: the slow path
    slow, slow_events = _stopped_then_resumed(cfg)

    for got, want in zip(_head(fast), _head(slow), strict=True):
        np.testing.assert_allclose(got, want, atol=HEAD_ATOL)
    keras.utils.set_random_seed(0)  # as training seeds itself: the head both runs started from
    start = build_model("mobilenet-v3-small", image_size=32, weights=str(small_weights))
    moved = _head(fast)[0] - np.asarray(start.get_layer("head_output").weights[0])
    assert np.abs(moved).max() > 100 * HEAD_ATOL
    fast_rows, slow_rows = runs.read_history(fast), runs.read_history(slow)
    for key in ("loss", "accuracy", "val_loss", "val_accuracy"):
        assert [r[key] for r in fast_rows] == pytest.approx([r[key] for r in slow_rows], abs=1e-4)

    # 32 training + 16 validation images, once in each part of the run (the resume again).
    steps = [(e.step, e.steps) for e in fast_events if e.kind == "features"]
    assert steps == [(8 * k, 48) for k in range(1, 7)] * 2
    kinds = [e.kind for e in fast_events]
    assert kinds.index("features") < kinds.index("start") < kinds.index("batch")
    said = next(e.message for e in fast_events if e.kind == "start")
    assert "fast feature extraction" in said and "1 × 1 × 576" in said
    assert [r.get("cached_features") for r in fast_rows] == [1, 1, 1]
    assert runs.run_info(fast).config["feature_cache"]["feature_shape"] == [1, 1, 576]
    assert runs.load_model(fast, which="last").input_shape == (None, 32, 32, 3)  # pixels in
    assert "features" not in [e.kind for e in slow_events]
    said = next(e.message for e in slow_events if e.kind == "start")
    assert "the frozen base runs every epoch" in said
    assert [r.get("cached_features") for r in slow_rows] == [None] * 3
