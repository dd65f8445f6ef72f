"""A pretrained base's features for the data audit's label check, where its weights are here.

Confident learning is only as good as the model whose out-of-sample predictions it reads
(:mod:`catdog.data.suspects`): cheap colour and gradient features agree with ~72% of the seed's
cat and dog labels, an ImageNet base's features with far more. :func:`pretrained_features`
offers MobileNetV3Small's (globally pooled, 576 numbers an image, at :data:`IMAGE_SIZE` px)
when its weights file is in Keras' cache or given; nothing is ever downloaded for an audit.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np

from catdog.data.health import LabelFeatures
from catdog.data.images import ImageError
from catdog.data.model_input import load_for_model
from catdog.model.weights import backbone_of, cached_weights

FEATURE_MODEL = "mobilenet-v3-small"  # the fastest ImageNet base on 2 cores
IMAGE_SIZE = 128  # 4×4 feature maps: enough for a whole animal, ~4 ms an image on 2 cores
BATCH = 64


def pretrained_features(weights: str | Path | None = None) -> LabelFeatures | None:
    """MobileNetV3Small's features for the label check, or ``None`` if its weights are neither
    given nor in Keras' cache.

    Args:
        weights: the base's weights file; default the one in Keras' cache.
    """
    backbone = backbone_of(FEATURE_MODEL)
    path = Path(weights) if weights is not None else cached_weights(backbone)
    if path is None:
        return None
    return LabelFeatures(f"{FEATURE_MODEL} features", _extractor(backbone.name, path))


def _extractor(backbone: str, weights: Path) -> Callable[..., np.ndarray]:
    def extract(paths: list[Path], tick: Callable[[int, int], None]) -> np.ndarray:
        from catdog.model.backend import keras
        from catdog.model.pretrained import HEAD, build_pretrained

        model = build_pretrained(backbone, IMAGE_SIZE, 2, 0.0, weights=weights)
        pooled = keras.Model(model.input, model.get_layer(f"{HEAD}pool").output)
        out = []
        for start in range(0, len(paths), BATCH):
            batch = np.stack([_pixels(p) for p in paths[start : start + BATCH]])
            out.append(np.asarray(pooled.predict_on_batch(batch / 255.0), np.float32))
            tick(min(start + BATCH, len(paths)), len(paths))
        return np.concatenate(out)

    return extract


def _pixels(path: Path) -> np.ndarray:
    """The image as the model's input; grey for a file that cannot be read now (the audit
    already read it once, so it changed since)."""
    try:
        return load_for_model(path, IMAGE_SIZE).astype(np.float32)
    except ImageError:
        return np.full((IMAGE_SIZE, IMAGE_SIZE, 3), 128.0, np.float32)
