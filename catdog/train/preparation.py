"""What a run settles before its first epoch: the images (in memory or streamed), the model
(new or resumed), a pretrained base's weights and features, the arithmetic and the input size.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from catdog.model.backend import keras
from catdog.model.registry import build_model, compile_model
from catdog.train import cluster, features, runs
from catdog.train.config import TrainConfig, TrainingError
from catdog.train.distribute import Distribution
from catdog.train.events import EventKind
from catdog.train.pipeline import LoadedSplit, StreamedSplit, make_dataset, open_splits
from catdog.train.presets import get_preset
from catdog.train.recorder import RunState


@dataclass
class RunData:
    """A run's training and validation datasets, and the sizes the training loop needs."""

    train: Any
    val: Any | None
    steps: int  # batches per epoch
    one_pass: int  # batches in one pass over the training images
    train_images: int
    val_images: int
    input: dict[str, Any]  # how the images are held (in memory or streamed) and why
    train_split: LoadedSplit | StreamedSplit  # a pretrained run may cache their features
    val_split: LoadedSplit | StreamedSplit
    label_mode: str
    batch: int  # images per step, over all replicas


def open_data(
    cfg: TrainConfig, classes: list[str], emit: Callable[..., None], dist: Distribution
) -> RunData:
    """Read the training and validation images (with ``loading`` events) into datasets of
    global batches (``cfg.batch_size`` per replica)."""
    size, data = int(cfg.image_size or 150), Path(cfg.data)
    label_mode = "binary" if len(classes) == 2 else "categorical"

    def loading(done: int, total: int, message: str = "") -> None:
        emit("loading", step=done, steps=total, message=message)

    opened = open_splits(data, ("train", "validation"), classes, size, progress=loading)
    train_split, val_split = opened.splits
    if len(train_split.labels) == 0:
        raise TrainingError(f"{data}/train has no usable images")
    batch = int(cfg.batch_size or 32) * dist.replicas
    train_ds = make_dataset(
        train_split,
        batch_size=batch,
        shuffle=True,
        augment=cfg.augmentation if cfg.augment else None,
        seed=cfg.seed,
        label_mode=label_mode,
    )
    one_pass = math.ceil(len(train_split.labels) / batch)
    steps = int(cfg.steps_per_epoch or 0) or one_pass
    if steps > one_pass:
        train_ds = train_ds.repeat()
    val_ds = None
    if len(val_split.labels):
        val_ds = make_dataset(
            val_split, batch_size=batch, shuffle=False, augment=None, label_mode=label_mode
        )
    if dist.workers > 1:  # each worker reads every image; tf.distribute gives it its share
        train_ds, val_ds = (cluster.shared_by_workers(d) for d in (train_ds, val_ds))
    return RunData(train_ds, val_ds, steps, one_pass, len(train_split.labels),
                 len(val_split.labels), opened.to_dict(), train_split, val_split,
                 label_mode, batch)  # fmt: skip


def make_model(path: Path, cfg: TrainConfig, classes: list[str], resume: bool) -> keras.Model:
    """The run's ``last.keras`` when resuming, else a new compiled model."""
    if resume:
        return runs.load_model(path, which="last")
    weights = pretrained_weights(cfg, None)
    model = build_model(
        get_preset(cfg.model).network,
        image_size=int(cfg.image_size or 150),
        num_classes=len(classes),
        dropout=cfg.dropout,
        precision=str(cfg.precision),
        weights=None if weights is None else str(weights),
    )
    compile_model(
        model,
        num_classes=len(classes),
        learning_rate=float(cfg.learning_rate),
        optimizer=get_preset(cfg.model).optimizer,
        label_smoothing=float(cfg.label_smoothing or 0),
        weight_decay=float(cfg.weight_decay or 0),
    )
    return model


def pretrained_weights(cfg: TrainConfig, emit: Callable[..., None] | None) -> Path | None:
    """A pretrained model's weights file (downloaded into Keras' cache on first use, with
    ``loading`` events); None for a model that starts from random weights.

    Raises:
        catdog.model.weights.WeightsMissing: no weights here and none to download.
    """
    from catdog.model.weights import find_weights

    def downloading(done: int, total: int) -> None:
        if emit is not None:
            emit("loading", step=done >> 20, steps=total >> 20,
                 message=f"downloading {cfg.model}'s pretrained weights (MB)")  # fmt: skip

    return find_weights(get_preset(cfg.model).network, cfg.weights, on_progress=downloading)


def settle_precision(
    path: Path, cfg: TrainConfig, emit: Callable[..., None], workers: int = 1
) -> tuple[TrainConfig, float | None]:
    """Resolve the run's precision (``auto``: measured on this machine, see
    :mod:`catdog.train.precision`; float32 on a cluster of ``workers`` machines, which must
    compute alike), say what was chosen and why, and record it in ``config.json``; with the
    training images/s measured in it (None if not timed: float32 chosen by hand)."""
    from catdog.train.precision import PrecisionChoice, choose_precision

    saved = runs.read_json(path / runs.CONFIG_FILE, {}) or {}
    requested = (saved.get("precision") or {}).get("requested") or cfg.precision or "auto"
    if workers > 1 and requested == "auto":
        reason = "float32: the workers of a cluster compute alike (auto would time each alone)"
        choice = PrecisionChoice("float32", "auto", reason)
    else:
        choice = choose_precision(
            cfg.model,
            int(cfg.image_size or 150),
            int(cfg.batch_size or 32),
            requested,
            on_progress=lambda message: emit("precision", message=message),
        )
    emit("precision", message=f"precision {choice.reason}")
    cfg = replace(cfg, precision=choice.precision)
    runs.update_config(path, train=cfg.to_dict(), precision=choice.to_dict())
    return cfg, (choice.speeds or {}).get(choice.precision)


def settle_image_size(
    path: Path,
    cfg: TrainConfig,
    classes: list[str],
    speed: float | None,
    emit: Callable[..., None],
) -> TrainConfig:
    """Where the run's preset has a smaller input for machines its time limit buys few epochs
    of its own size on (:mod:`catdog.train.input_size`), decide from the training ``speed`` just
    measured (images/s), say so and record it in ``config.json``."""
    from catdog.data.datasets import labelled_images
    from catdog.train.input_size import choose_image_size
    from catdog.train.precision import cached_choice

    if not cfg.fit_image_size:
        return cfg
    if not speed:  # float32 chosen by hand is not timed: what auto measured before, if it did
        known = cached_choice(cfg.model, int(cfg.image_size or 0), int(cfg.batch_size or 32))
        speed = known.speeds.get(cfg.precision) if known else None
    if not speed:
        return cfg
    data = Path(cfg.data)
    counts = [len(labelled_images(data / split, classes)[0]) for split in ("train", "validation")]
    minutes = float(cfg.time_limit_minutes or 0)
    choice = choose_image_size(
        cfg.model, int(cfg.image_size or 0), int(cfg.epochs or 1), minutes, float(speed), *counts
    )
    if choice is None:
        return cfg
    emit(EventKind.IMAGE_SIZE, message=f"input size {choice.reason}")
    cfg = replace(cfg, image_size=choice.image_size)
    runs.update_config(path, train=cfg.to_dict(), image_size=choice.to_dict())
    return cfg


def feature_cache(
    run: RunState, model: keras.Model, data: RunData
) -> tuple[features.FeatureCache | None, str]:
    """When the run's next epochs train a pretrained model's head on its frozen base without
    augmentation, the base's features of every image, computed once (with ``features``
    events) and recorded in ``config.json``; with what to say of it in the progress text."""
    if not features.applies(run.cfg, len(run.history)):
        return None, ""
    if run.dist is not None and run.dist.replicas > 1:
        return None, "the frozen base runs every epoch: its features are cached on one device only"
    if problem := features.too_big(model, data.train_images + data.val_images):
        return None, problem
    if not isinstance(data.train_split, LoadedSplit) or not isinstance(data.val_split, LoadedSplit):
        return None, "the base runs every epoch: the images are streamed from disk"

    def progress(done: int, total: int, message: str) -> None:
        run.emit("features", step=done, steps=total, message=message)

    cache = features.cache_features(
        model,
        data.train_split,
        data.val_split,
        batch_size=int(run.cfg.batch_size or 32),
        seed=run.cfg.seed,
        label_mode=data.label_mode,
        repeat=data.steps > data.one_pass,
        progress=progress,
        stop=run.stop_requested,
    )
    if cache is None:  # stopped meanwhile
        return None, ""
    runs.update_config(run.path, feature_cache=cache.to_dict())
    return cache, cache.describe()
