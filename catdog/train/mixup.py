"""Mixup (Zhang et al., 2018): train on blends of two images, labelled with the same blend.

Each training image is mixed with a partner from its batch, ``λ·x + (1 − λ)·x'``, and its
label likewise, with ``λ`` drawn per image from ``Beta(α, α)``; a small ``α`` (0.2) keeps most
images nearly whole. The image always keeps the larger share (``λ ≥ ½``), so the rounded
mixed label is its own label and the training accuracy stays the fraction of images whose
majority class the model gets right (:func:`majority_accuracy`).

Importing this module imports TensorFlow (the training pipeline needs it anyway).
"""

from __future__ import annotations

from typing import Any

from catdog.model.backend import keras, tf


def mix_batch(images: Any, labels: Any, alpha: float, seed: Any) -> tuple[Any, Any]:
    """Mix every image and label of a batch with the batch's reverse (its partner).

    Args:
        images: float ``[B, H, W, C]``.
        labels: float ``[B, K]`` (0/1 for a sigmoid output, one-hot for softmax).
        alpha: the Beta distribution's parameter; > 0.
        seed: stateless seed, shape ``[2]``: the same seed mixes the same way.

    Returns:
        ``(images, labels)`` mixed, same shapes and dtypes.
    """
    n = tf.shape(images)[0]
    seeds = tf.random.experimental.stateless_split(tf.cast(seed, tf.int64), 2)
    a = tf.random.stateless_gamma([n], seed=seeds[0], alpha=alpha)
    b = tf.random.stateless_gamma([n], seed=seeds[1], alpha=alpha)
    share = tf.math.divide_no_nan(a, a + b)  # Beta(α, α); both 0 (underflow): 0, i.e. unmixed
    share = tf.maximum(share, 1.0 - share)  # the image keeps the larger share
    pixels = tf.reshape(tf.cast(share, images.dtype), [-1, 1, 1, 1])
    weights = tf.reshape(tf.cast(share, labels.dtype), [-1, 1])
    mixed = pixels * images + (1 - pixels) * tf.reverse(images, [0])
    return mixed, weights * labels + (1 - weights) * tf.reverse(labels, [0])


@keras.saving.register_keras_serializable(package="catdog")
def majority_accuracy(y_true: Any, y_pred: Any) -> Any:
    """Binary accuracy against the rounded (majority) label: a mixed label ``λ ≥ ½`` of one
    class counts as that class; 0/1 labels are unchanged, so it equals plain accuracy there."""
    return keras.metrics.binary_accuracy(keras.ops.round(y_true), y_pred)
