"""Fast feature extraction (Deep Learning with Python §5.3.1): a pretrained model's head trained
on features its frozen base computed once.

While the base is frozen (the feature-extraction phase) and the training images are not
augmented, the base turns each image into the same features every epoch. So the training run
computes them once, one forward pass over the training and validation images in batches, and
the head trains on them alone: an epoch then costs only the head's arithmetic.

The features stay in memory as float32: N images × the base's feature-map size × 4 bytes. At
150 px, VGG16's 4 × 4 × 512 map takes 32 KB an image (98 MB for the seed's 2,000 training and
1,000 validation photos) and MobileNetV3Small's 5 × 5 × 576 map 58 KB (173 MB), about what the
decoded images themselves take. If they would need more than :func:`cache_budget` allows, the
run trains as it would with augmentation, the base running every epoch.

The head that trains is the model's own head layers on a features input (:func:`head_model`):
its weights are the model's, so the run saves, evaluates and exports the full model (pixels in)
exactly as on the slow path, and fine-tuning goes on from it. Its batches come in the images'
seeded order (:func:`catdog.train.pipeline.make_feature_dataset`), it shares the model's
optimizer, and its dropout draws from the same seed: it learns the head the slow path learns, to
float rounding.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from catdog.model.backend import keras, tf
from catdog.model.pixels import scale_pixels
from catdog.model.pretrained import HEAD
from catdog.progress import ProgressFn, report
from catdog.system import MB
from catdog.train import phases
from catdog.train.budget import available_memory_bytes, env_megabytes
from catdog.train.config import TrainConfig, TrainingError
from catdog.train.pipeline import (
    PARALLEL_BATCHES,
    PREFETCH_BATCHES,
    LoadedSplit,
    check_split,
    index_batches,
    pipeline_options,
    split_targets,
)

# The most memory the features may take, in MB (0: never compute them, the base runs every
# epoch); unset, half the memory available when training starts.
CACHE_MB_ENV = "CATDOG_FEATURE_CACHE_MB"
AVAILABLE_SHARE = 0.5
EXTRACTING = "computing the frozen base's features (once: no augmentation)"


def applies(cfg: TrainConfig, epoch: int) -> bool:
    """Whether epoch ``epoch`` (from 0) can train on cached features: a pretrained model's
    feature-extraction epoch, without augmentation."""
    augmenting = bool(cfg.augment) and cfg.augmentation is not None and cfg.augmentation.enabled
    return phases.phase_of(cfg, epoch) == phases.FEATURE_EXTRACTION and not augmenting


def cache_budget() -> int:
    """The most bytes the features may take: ``$CATDOG_FEATURE_CACHE_MB`` if set, else half the
    memory available now (no limit where that is unknown).

    Raises:
        TrainingError: the variable is not a number of MB ≥ 0.
    """
    raw, megabytes = env_megabytes(CACHE_MB_ENV)
    if raw:
        if not 0 <= megabytes < float("inf"):
            raise TrainingError(
                f"{CACHE_MB_ENV} must be a number of MB ≥ 0 (0: never cache features), "
                f"got {raw!r}; fix or unset it"
            )
        return int(megabytes * MB)
    available = available_memory_bytes()
    return int(available * AVAILABLE_SHARE) if available is not None else 1 << 62


def _head_layers(model: keras.Model) -> list[keras.layers.Layer]:
    return [layer for layer in model.layers if layer.name.startswith(HEAD)]


def feature_shape(model: keras.Model) -> tuple[int, ...]:
    """The shape of one image's features: the frozen base's output, which the head takes."""
    return tuple(int(n) for n in _head_layers(model)[0].input.shape[1:])


def head_model(model: keras.Model) -> keras.Model:
    """The head of a pretrained ``model`` as a model of its own, from the base's features to
    the output: the same layers, so training it trains ``model``'s head."""
    features = keras.Input(shape=feature_shape(model), name="features")
    x = features
    for layer in _head_layers(model):  # a chain: pooling or flatten, dense, dropout, output
        x = layer(x)
    return keras.Model(features, x, name=f"{model.name}_head")


def base_model(model: keras.Model) -> keras.Model:
    """The preprocessing and frozen base of a pretrained ``model``: [0, 1] pixels in, the
    features its head takes out."""
    # A layer's input is that of its first call: in ``model``'s own graph.
    return keras.Model(model.inputs, _head_layers(model)[0].input, name=f"{model.name}_base")


def feature_bytes(model: keras.Model, images: int) -> int:
    """Bytes the features of ``images`` images take in memory (float32)."""
    return images * int(np.prod(feature_shape(model))) * 4


def too_big(model: keras.Model, images: int) -> str | None:
    """Why the features of ``images`` images cannot be cached (over :func:`cache_budget`), in
    words for the progress text; None if they can."""
    need, budget = feature_bytes(model, images), cache_budget()
    if need <= budget:
        return None
    return (
        f"the frozen base runs every epoch: the features of {images:,} images would take "
        f"{need / MB:,.1f} MB, more than the {budget / MB:,.1f} MB the cache may use "
        f"({CACHE_MB_ENV})"
    )


@dataclass
class FeatureCache:
    """The features of a run's training and validation images, ready for the head to train on."""

    head: keras.Model  # the model's head on a features input (see head_model)
    train: Any  # tf.data.Dataset of (features, labels), shuffled as the images would be
    val: Any | None  # the same for validation, in file order (None: no validation images)
    shape: tuple[int, ...]  # one image's features
    nbytes: int  # memory the features take
    seconds: float  # the time it took to compute them

    def describe(self) -> str:
        """One line for the progress text."""
        return (
            f"fast feature extraction: the head trains on the frozen base's features, computed "
            f"once ({' × '.join(map(str, self.shape))} an image, {self.nbytes / MB:,.1f} MB, "
            f"{self.seconds:.0f} s), as no augmentation changes the images"
        )

    def to_dict(self) -> dict[str, Any]:
        """What the run's ``config.json`` records of it."""
        return {"feature_shape": list(self.shape), "megabytes": round(self.nbytes / MB, 1),
                "seconds": round(self.seconds, 1)}  # fmt: skip


def _extract(
    base: keras.Model,
    split: LoadedSplit,
    batch_size: int,
    progress: Callable[[int], None],
    stop: Callable[[], bool],
) -> np.ndarray | None:
    """The base's features of every image of ``split`` (None if ``stop()`` turned true)."""
    out = np.empty((len(split), *base.output.shape[1:]), np.float32)
    for start in range(0, len(split), batch_size):
        if stop():
            return None
        rows = slice(start, start + batch_size)
        out[rows] = np.asarray(base.predict_on_batch(scale_pixels(split.images[rows])), np.float32)
        progress(min(start + batch_size, len(split)))
    return out


def cache_features(
    model: keras.Model,
    train: LoadedSplit,
    val: LoadedSplit,
    *,
    batch_size: int,
    seed: int,
    label_mode: str,
    repeat: bool = False,
    progress: ProgressFn | None = None,
    stop: Callable[[], bool] | None = None,
) -> FeatureCache | None:
    """Run ``model``'s frozen base once over ``train`` and ``val`` and make the datasets its
    head trains on.

    Args:
        model: a pretrained model in its feature-extraction phase.
        train, val: the run's decoded images.
        batch_size, seed, label_mode: as the run's image datasets have them
            (:func:`catdog.train.pipeline.make_dataset`).
        repeat: repeat the training batches (epochs longer than one pass).
        progress: called as ``progress(images done, images in all, message)``.
        stop: checked before each batch; once true, nothing more is computed.

    Returns:
        The cache, or None if ``stop`` asked to stop first.
    """
    started, base, total = time.monotonic(), base_model(model), len(train) + len(val)
    stop = stop or (lambda: False)
    found = _extract(base, train, batch_size,
                     lambda done: report(progress, done, total, EXTRACTING), stop)  # fmt: skip
    if found is None:
        return None
    val_found = None
    if len(val):
        val_found = _extract(base, val, batch_size,
                             lambda done: report(progress, len(train) + done, total, EXTRACTING),
                             stop)  # fmt: skip
        if val_found is None:
            return None
    train_ds = make_feature_dataset(found, train, batch_size=batch_size, shuffle=True, seed=seed,
                                    label_mode=label_mode)  # fmt: skip
    val_ds = None
    if val_found is not None:
        val_ds = make_feature_dataset(val_found, val, batch_size=batch_size, shuffle=False,
                                      label_mode=label_mode)  # fmt: skip
    nbytes = found.nbytes + (0 if val_found is None else val_found.nbytes)
    return FeatureCache(head_model(model), train_ds.repeat() if repeat else train_ds, val_ds,
                        tuple(found.shape[1:]), nbytes, time.monotonic() - started)  # fmt: skip


def compile_head(cache: FeatureCache, model: keras.Model) -> keras.Model:
    """Compile the cache's head as ``model`` is compiled, with ``model``'s very optimizer (its
    state and learning rate are the model's, saved with it)."""
    cache.head.compile(optimizer=model.optimizer, loss=model.loss, metrics=["accuracy"])
    return cache.head


def make_feature_dataset(
    features: np.ndarray,
    loaded: LoadedSplit,
    *,
    batch_size: int,
    shuffle: bool,
    seed: int = 0,
    label_mode: str = "binary",
) -> tf.data.Dataset:
    """Batches of features computed from a split's images, with the images' labels, drawn as
    :func:`make_dataset` draws the images themselves without augmentation: the same seed gives
    the same batches in the same order (see :mod:`catdog.train.features`).

    Args:
        features: float32 ``[N, ...]``; row ``i`` computed from ``loaded.images[i]``. Batches
            are read straight from this array (no copy of it in TensorFlow).
        loaded: the split the features were computed from (for its labels).
        batch_size, shuffle, seed, label_mode: as for :func:`make_dataset`.

    Returns:
        A ``tf.data.Dataset`` of ``(features, labels)``.
    """
    check_split(loaded, batch_size, label_mode)
    if features.dtype != np.float32 or len(features) != len(loaded):
        raise ValueError(
            f"features must be float32 with one row per image ({len(loaded)}); "
            f"got {features.dtype} {features.shape}"
        )
    targets, shape = split_targets(loaded, label_mode), features.shape[1:]

    def load(index: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
        batch = tf.numpy_function(lambda rows: features[rows], [index], tf.float32,
                                  stateful=False)  # fmt: skip
        batch.set_shape([None, *shape])
        return batch, tf.gather(targets, index)

    dataset = index_batches(len(loaded), batch_size, shuffle, seed)
    dataset = dataset.map(load, num_parallel_calls=PARALLEL_BATCHES, deterministic=True)
    return dataset.prefetch(PREFETCH_BATCHES).with_options(pipeline_options())
