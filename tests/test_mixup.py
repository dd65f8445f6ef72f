"""Mixup: blends of image pairs labelled with the same blend, and accuracy that still means it."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from catdog.model.backend import tf
from catdog.train import runs
from catdog.train.config import TrainConfig, TrainingError
from catdog.train.mixup import majority_accuracy, mix_batch
from catdog.train.pipeline import make_dataset
from catdog.train.trainer import train
from tests.test_pipeline import coded_split


def test_each_image_and_its_label_are_blended_with_the_reverse_partner_alike() -> None:
    rng = np.random.default_rng(0)
    images = rng.uniform(0, 1, (9, 4, 4, 3)).astype(np.float32)
    labels = np.array([0, 1, 1, 0, 1, 0, 0, 1, 1], np.float32)[:, None]
    mixed, mixed_labels = (t.numpy() for t in mix_batch(images, labels, 0.4, [3, 7]))
    partner, partner_labels = images[::-1], labels[::-1]
    shares = []
    for i in range(9):
        # Recover the image's share from the pixels, then check both blends use it.
        diff = (images[i] - partner[i]).ravel()
        if not diff.any():  # the middle image is its own partner: nothing to mix
            np.testing.assert_allclose(mixed[i], images[i], rtol=1e-6)
            continue
        share = float(np.dot((mixed[i] - partner[i]).ravel(), diff) / np.dot(diff, diff))
        shares.append(share)
        assert 0.5 <= share <= 1 + 1e-6
        np.testing.assert_allclose(
            mixed[i], share * images[i] + (1 - share) * partner[i], atol=1e-5
        )
        expected = share * labels[i] + (1 - share) * partner_labels[i]
        np.testing.assert_allclose(mixed_labels[i], expected, atol=1e-5)
    assert len(set(np.round(shares, 4))) > 4  # a share per image, not one per batch
    assert min(shares) < 0.99  # alpha 0.4 really mixes some
    # Same seed, same blend; another seed, another.
    again = mix_batch(images, labels, 0.4, [3, 7])[0].numpy()
    np.testing.assert_array_equal(again, mixed)
    assert not np.allclose(mix_batch(images, labels, 0.4, [3, 8])[0].numpy(), mixed)


def test_training_batches_keep_each_images_majority_label() -> None:
    loaded = coded_split(n=40)  # image i is flat grey 3·i, label i mod 2
    dataset = make_dataset(loaded, batch_size=8, shuffle=False, augment=None, mixup=1.0)
    images, labels = zip(*dataset.as_numpy_iterator(), strict=True)
    images, labels = np.concatenate(images), np.concatenate(labels)[:, 0]
    assert ((labels >= 0) & (labels <= 1)).all()
    # Partners i and 7 - i (the batch reversed) always differ in parity, so in label.
    assert np.mean((labels > 0) & (labels < 1)) > 0.9
    np.testing.assert_array_equal(np.round(labels), loaded.labels)  # the majority is its own
    level = images[:, 0, 0, 0] * 255 / 3  # λ·i + (1 − λ)·partner
    own = np.arange(40)
    assert np.abs(level - own).max() <= np.abs(level - own[::-1]).max() + 1e-3
    # Evaluation batches are never mixed.
    plain = make_dataset(loaded, batch_size=8, shuffle=False, augment=None)
    assert set(np.concatenate([y for _, y in plain.as_numpy_iterator()])[:, 0]) == {0.0, 1.0}


def test_majority_accuracy_rounds_the_mixed_label() -> None:
    y_true = tf.constant([[0.8], [0.3], [1.0], [0.0]])
    y_pred = tf.constant([[0.9], [0.6], [0.2], [0.1]])
    assert float(tf.reduce_mean(majority_accuracy(y_true, y_pred))) == pytest.approx(0.5)


def test_a_mixup_run_trains_saves_and_reloads(tiny_dataset: Path) -> None:
    cfg = TrainConfig(
        data=str(tiny_dataset),
        epochs=2,
        image_size=48,
        batch_size=8,
        augment=True,
        mixup=0.4,
        precision="float32",
    )
    result = train(cfg)
    assert result.state == "completed"
    accuracy = [row["accuracy"] for row in result.history]
    assert all(0 <= a <= 1 for a in accuracy)
    # The reloaded model still counts accuracy against the majority label (plain binary
    # accuracy would score the blended 0.8 / 0.2 labels as wrong whatever it predicts).
    model = runs.load_model(result.path, which="last")
    x = np.random.default_rng(1).uniform(0, 1, (8, 48, 48, 3)).astype(np.float32)
    y = np.array([0.8, 0.2] * 4, np.float32)[:, None]
    predicted = model.predict_on_batch(x)
    expected = np.mean((predicted > 0.5) == (y > 0.5))
    assert model.evaluate(x, y, verbose=0, return_dict=True)["accuracy"] == pytest.approx(expected)
    with pytest.raises(
        TrainingError, match=r"mixup alpha must be between 0 \(off\) and 10, got -1"
    ):
        train(TrainConfig(data=str(tiny_dataset), mixup=-1))
