"""Input pipeline: decoding once, label alignment, and augmentation that really varies."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from catdog.data.model_input import load_for_model
from catdog.model.backend import tf
from catdog.model.pixels import scale_pixels
from catdog.train.augment import AugmentConfig
from catdog.train.pipeline import (
    LoadedSplit,
    load_images,
    load_split,
    make_dataset,
)


def eval_dataset(
    loaded: LoadedSplit, batch_size: int = 32, label_mode: str = "binary"
) -> tf.data.Dataset:
    """Validation/test batches, as training makes them: never shuffled, never augmented."""
    return make_dataset(
        loaded, batch_size=batch_size, shuffle=False, augment=None, label_mode=label_mode
    )


def batches(dataset: tf.data.Dataset) -> tuple[np.ndarray, np.ndarray]:
    """One epoch as two arrays (images, labels)."""
    xs, ys = zip(*dataset.as_numpy_iterator(), strict=True)
    return np.concatenate(xs), np.concatenate(ys)


def coded_split(
    n: int = 40,
    size: int = 32,
    classes: tuple[str, ...] = ("cats", "dogs"),
) -> LoadedSplit:
    """Flat grey images whose level encodes their index (3·i), labels i mod K."""
    levels = (3 * np.arange(n)).astype(np.uint8)
    images = np.broadcast_to(levels[:, None, None, None], (n, size, size, 3)).copy()
    labels = (np.arange(n) % len(classes)).astype(np.int32)
    return LoadedSplit(images, labels, [Path(f"{i}.jpg") for i in range(n)], classes)


def textured_split(n: int = 16, size: int = 32) -> LoadedSplit:
    """n copies of one random image (so any difference comes from augmentation)."""
    image = np.random.default_rng(0).integers(0, 256, (size, size, 3), dtype=np.uint8)
    return LoadedSplit(
        np.stack([image] * n),
        np.zeros(n, np.int32),
        [Path(f"{i}.jpg") for i in range(n)],
        ("cats", "dogs"),
    )


# --- loading -----------------------------------------------------------------------------------


def test_load_split_decodes_like_prediction(tiny_dataset: Path) -> None:
    seen: list[tuple[int, int]] = []
    loaded = load_split(
        tiny_dataset,
        "train",
        image_size=32,
        progress=lambda done, total, _msg: seen.append((done, total)),
    )
    assert loaded.classes == ("cats", "dogs") and len(loaded) == 32
    assert loaded.images.shape == (32, 32, 32, 3) and loaded.images.dtype == np.uint8
    assert loaded.labels.dtype == np.int32 and loaded.labels.tolist() == [0] * 16 + [1] * 16
    assert [p.parent.name for p in loaded.paths] == ["cats"] * 16 + ["dogs"] * 16
    for path, image in zip(loaded.paths, loaded.images, strict=True):
        np.testing.assert_array_equal(image, load_for_model(path, 32))
    assert seen[-1] == (32, 32) and loaded.skipped == []


def test_unreadable_files_are_skipped_and_reported(tiny_dataset: Path) -> None:
    cats = tiny_dataset / "train" / "cats"
    (cats / "notes.jpg").write_text("not a photo")
    good = (cats / "cat.0.jpg").read_bytes()
    (cats / "cut.jpg").write_bytes(good[: len(good) // 3])
    (cats / "Thumbs.db").write_bytes(b"\0" * 10)  # not an image suffix: ignored
    loaded = load_split(tiny_dataset, "train", image_size=32)
    assert sorted(p.name for p, _ in loaded.skipped) == ["cut.jpg", "notes.jpg"]
    assert any("not an image" in why for _, why in loaded.skipped)
    assert len(loaded) == 32 and len(loaded.paths) == len(loaded.labels) == 32
    for path, label in zip(loaded.paths, loaded.labels, strict=True):
        assert loaded.classes[label] == path.parent.name


def test_missing_folders_are_named(tiny_dataset: Path) -> None:
    with pytest.raises(FileNotFoundError, match=r"no 'tests' folder.*'train'"):
        load_split(tiny_dataset, "tests")
    with pytest.raises(FileNotFoundError, match="birds"):
        load_split(tiny_dataset, "train", classes=["cats", "birds"])


def test_load_images_checks_labels(tiny_dataset: Path) -> None:
    paths = sorted((tiny_dataset / "test" / "dogs").glob("*.jpg"))
    with pytest.raises(ValueError, match=r"labels \[2\]"):
        load_images(paths, [2] * len(paths), ["cats", "dogs"])
    with pytest.raises(ValueError, match="8 paths but 1 labels"):
        load_images(paths, [1], ["cats", "dogs"])


# --- datasets ----------------------------------------------------------------------------------


def test_scale_pixels_is_the_same_in_numpy_and_tensorflow() -> None:
    pixels = np.arange(256, dtype=np.uint8).reshape(16, 16)
    from_numpy = scale_pixels(pixels)
    from_tf = scale_pixels(tf.constant(pixels)).numpy()
    assert from_numpy.dtype == np.float32 and from_numpy.min() == 0 and from_numpy.max() == 1
    np.testing.assert_array_equal(from_numpy, from_tf)


def test_evaluation_batches_are_the_images_in_order() -> None:
    loaded = coded_split(n=10)
    images, labels = batches(eval_dataset(loaded, batch_size=4))
    np.testing.assert_array_equal(images, scale_pixels(loaded.images))
    assert labels.shape == (10, 1) and labels.dtype == np.float32
    np.testing.assert_array_equal(labels[:, 0], loaded.labels)
    again, _ = batches(make_dataset(loaded, batch_size=3, shuffle=False, augment=None))
    np.testing.assert_array_equal(again, images)


@pytest.mark.parametrize("augment", [None, AugmentConfig()])
def test_labels_stay_with_their_images_after_shuffling(augment: AugmentConfig | None) -> None:
    loaded = coded_split(n=40)
    dataset = make_dataset(loaded, batch_size=8, shuffle=True, augment=augment, seed=1)
    for _ in range(2):  # two epochs
        images, labels = batches(dataset)
        # A flat image stays flat under every geometric transform with nearest fill.
        index = np.round(images.mean(axis=(1, 2, 3)) * 255 / 3).astype(int)
        assert sorted(index) == list(range(40))  # each image once
        assert index.tolist() != list(range(40))  # in a new order
        np.testing.assert_array_equal(labels[:, 0], index % 2)


def test_shuffle_changes_every_epoch_and_replays_with_the_seed() -> None:
    loaded = coded_split(n=40)

    def make(seed: int) -> tf.data.Dataset:
        return make_dataset(loaded, batch_size=8, shuffle=True, augment=None, seed=seed)

    first, second = batches(make(5))[1], batches(make(5))[1]
    dataset = make(5)
    epoch1, epoch2 = batches(dataset)[0], batches(dataset)[0]
    assert not np.array_equal(epoch1, epoch2)
    np.testing.assert_array_equal(first, second)
    np.testing.assert_array_equal(epoch1, batches(make(5))[0])
    assert not np.array_equal(epoch1, batches(make(6))[0])


def test_augmentation_differs_between_images_batches_and_epochs() -> None:
    loaded = textured_split(n=16)
    dataset = make_dataset(loaded, batch_size=4, shuffle=False, augment=AugmentConfig(), seed=0)
    epoch1, epoch2 = batches(dataset)[0], batches(dataset)[0]
    assert epoch1.shape == (16, 32, 32, 3) and epoch1.dtype == np.float32
    assert epoch1.min() >= 0 and epoch1.max() <= 1
    distinct = {epoch1[i].tobytes() for i in range(16)} | {epoch2[i].tobytes() for i in range(16)}
    assert len(distinct) == 32  # no two augmented images alike, within or across epochs
    assert not np.allclose(epoch1[:4], epoch1[4:8])  # batches differ


def test_same_seed_same_first_epoch_with_augmentation() -> None:
    loaded = textured_split(n=12)

    def make(seed: int) -> tf.data.Dataset:
        return make_dataset(loaded, batch_size=4, shuffle=True, augment=AugmentConfig(), seed=seed)

    a, b, c = batches(make(3))[0], batches(make(3))[0], batches(make(4))[0]
    np.testing.assert_allclose(a, b, atol=1e-6)
    assert not np.allclose(a, c)


def test_off_config_is_no_augmentation() -> None:
    loaded = textured_split(n=8)
    images, _ = batches(
        make_dataset(loaded, batch_size=4, shuffle=False, augment=AugmentConfig.off())
    )
    np.testing.assert_array_equal(images, scale_pixels(loaded.images))


def test_datasets_run_without_the_autotuner() -> None:
    # The autotuner's thread made iterator teardown (every epoch) stall about a second.
    for augment in (None, AugmentConfig()):
        dataset = make_dataset(coded_split(), batch_size=8, shuffle=True, augment=augment)
        assert dataset.options().autotune.enabled is False
        assert len(list(dataset)) == 5  # and it still yields every batch


def test_categorical_labels_are_one_hot() -> None:
    loaded = coded_split(n=9, classes=("cats", "dogs", "birds"))
    _, labels = batches(eval_dataset(loaded, batch_size=4, label_mode="categorical"))
    assert labels.shape == (9, 3) and labels.dtype == np.float32
    np.testing.assert_array_equal(labels.argmax(axis=1), loaded.labels)
    assert labels.sum(axis=1).tolist() == [1.0] * 9


def test_bad_arguments_say_what_to_do() -> None:
    three = coded_split(n=6, classes=("a", "b", "c"))
    with pytest.raises(ValueError, match=r"exactly 2 classes.*'categorical'"):
        eval_dataset(three)
    with pytest.raises(ValueError, match=r"label_mode.*'sparse'"):
        eval_dataset(coded_split(n=4), label_mode="sparse")
    with pytest.raises(ValueError, match=r"batch_size.*0"):
        eval_dataset(coded_split(n=4), batch_size=0)
    floats = coded_split(n=4)
    floats.images = floats.images.astype(np.float32)
    with pytest.raises(ValueError, match=r"uint8 \[N, S, S, 3\].*float32"):
        eval_dataset(floats)
    empty = LoadedSplit(np.zeros((0, 8, 8, 3), np.uint8), np.zeros(0, np.int32), [], ("a", "b"))
    with pytest.raises(ValueError, match="no images"):
        eval_dataset(empty)
