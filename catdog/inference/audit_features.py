"""Features that see more than colour for the data audit's label check and odd-image finder.

Confident learning is only as good as the model whose out-of-sample predictions it reads
(:mod:`catdog.data.suspects`): cheap colour and gradient features agree with ~72% of the seed's
cat and dog labels, a network's features with far more. Two kinds are offered:

- :func:`pretrained_features`: MobileNetV3Small's (globally pooled, 576 numbers an image, at
  :data:`IMAGE_SIZE` px) when its weights file is in Keras' cache or given; nothing is ever
  downloaded for an audit.
- :func:`run_features`: a trained catdog run's penultimate features (what its dense head
  reads). The run may have been trained on the very labels being checked, so a wrong label it
  learned by heart can look right to it; the logistic regression on top is still fitted k-fold.
  A run trained with augmentation and stopped at its best validation score learns few labels
  by heart (measured in benchmarks/audit.py ``--run``).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from catdog.data.health import AuditError, LabelFeatures
from catdog.data.images import ImageError
from catdog.data.model_input import load_for_model
from catdog.model.weights import backbone_of, cached_weights
from catdog.train.runs import RunError, RunInfo, list_runs, resolve_run, usable_run_info

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
        return in_batches(paths, IMAGE_SIZE, lambda b: pooled.predict_on_batch(b / 255.0), tick)

    return extract


def run_features(run: str | Path) -> LabelFeatures:
    """A trained run's penultimate features for the label check (see the module docstring).

    Args:
        run: the run's id, id prefix or folder; its best model is used.

    Raises:
        catdog.train.runs.RunError: the run does not exist, is damaged or has no model.
    """
    path = resolve_run(run)
    info = usable_run_info(path)
    if not (path / "best.keras").is_file():
        raise RunError(f"run {info.id} has no best model yet; wait until it saved one")
    return LabelFeatures(f"features of run {info.id}", _run_extractor(path))


def feature_runs(classes: list[str], most: int = 5) -> list[RunInfo]:
    """The newest runs (at most ``most``) whose features can check these classes' labels: not
    damaged, with a best model, trained on the same class names."""
    return [
        info
        for info in list_runs()
        if not info.damaged
        and info.classes == list(classes)
        and (info.path / "best.keras").is_file()
    ][:most]


def _run_extractor(run: Path) -> Callable[..., np.ndarray]:
    def extract(paths: list[Path], tick: Callable[[int, int], None]) -> np.ndarray:
        from catdog.inference.predict import Predictor

        predictor = Predictor.from_run(run, trust=False, tta=False)
        rows = in_batches(paths, predictor.image_size, lambda b: predictor.outputs(b).features,
                          tick)  # fmt: skip
        if len(rows) and rows.shape[1] == 0:
            raise AuditError(f"run {predictor.run_id}'s model has no dense head to read from")
        return rows

    return extract


def in_batches(
    paths: list[Path],
    size: int,
    compute: Callable[[np.ndarray], Any],
    tick: Callable[[int, int], None] | None = None,
) -> np.ndarray:
    """``compute`` over the images at ``paths`` (as the model's ``size``-px input, 0–255), a
    batch of :data:`BATCH` at a time; its rows stacked (``float32``), ``tick`` after each."""
    out = []
    for start in range(0, len(paths), BATCH):
        batch = np.stack([_pixels(p, size) for p in paths[start : start + BATCH]])
        out.append(np.asarray(compute(batch), np.float32))
        if tick is not None:
            tick(min(start + BATCH, len(paths)), len(paths))
    return np.concatenate(out) if out else np.zeros((0, 0), np.float32)


def _pixels(path: Path, size: int = IMAGE_SIZE) -> np.ndarray:
    """The image as the model's input; grey for a file that cannot be read now (the audit
    already read it once, so it changed since)."""
    try:
        return load_for_model(path, size).astype(np.float32)
    except ImageError:
        return np.full((size, size, 3), 128.0, np.float32)
