"""The fused augmentation as a Keras layer, for the tests that check it inside a model.

catdog's training pipeline augments in tf.data (:func:`catdog.train.warp.augment_images` with a
per-batch seed, reproducible under a parallel map); this layer wraps the same function so a
test can check that it behaves as a Keras layer should: identity outside training, new draws
per call, and a config that survives ``get_config``/``from_config``. :func:`training_preview`
applies it to copies of one image, for the tests that check each transform's draws.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from catdog.model.backend import keras
from catdog.train.augment import AugmentConfig
from catdog.train.warp import augment_images


class RandomAffine(keras.layers.Layer):
    """:func:`augment_images` as a Keras layer: the whole config, one warp per image.

    Active only in training (``training=True``, as in ``fit``); otherwise the identity.
    Random numbers come from a ``keras.random.SeedGenerator``.

    Args:
        config: the transforms to apply.
        seed: seed of the layer's random generator (None: random).
    """

    def __init__(
        self, config: AugmentConfig | dict | None = None, seed: int | None = None, **kwargs: Any
    ) -> None:
        super().__init__(**kwargs)
        if isinstance(config, dict):
            config = AugmentConfig.from_dict(config)
        self.config = (config or AugmentConfig()).validate()
        self.seed = seed
        self.seed_generator = keras.random.SeedGenerator(seed)

    def call(self, images: Any, training: bool | None = None) -> Any:
        if not training or not self.config.enabled:
            return images
        return augment_images(images, self.config, self.seed_generator.next())

    def compute_output_shape(self, input_shape: Any) -> Any:
        return input_shape

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "config": self.config.to_dict(), "seed": self.seed}


def training_preview(
    image: np.ndarray, config: AugmentConfig, n: int = 9, seed: int = 0
) -> np.ndarray:
    """``n`` variants of one ``uint8`` image as training draws and applies them: its stateless
    TensorFlow draws and pass (the dashboard's preview draws with NumPy instead)."""
    from catdog.model.backend import tf

    batch = tf.repeat(tf.cast(image[None], tf.float32), n, axis=0)
    out = augment_images(batch, config, tf.constant([seed, 0], tf.int64))
    return tf.cast(tf.round(out), tf.uint8).numpy()
