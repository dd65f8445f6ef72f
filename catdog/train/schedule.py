"""The epochs a run trains and the learning rate of each: time limit, warm-up, cosine decay."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

from catdog.model.backend import keras
from catdog.train.config import TrainConfig


def planned_epochs(cfg: TrainConfig, history: list[dict[str, float]]) -> int:
    """How many epochs the run will train, given the epochs it has trained so far.

    Without a time limit, ``cfg.epochs``. With one, the epochs done plus as many more as fit
    in the time left (the limit minus the ``seconds`` of the epochs done), at the median
    duration of the last 5 epochs (leaving out the first, which also compiles), and never
    more than ``cfg.epochs``. Before the first epoch, ``cfg.epochs``: the first epochs'
    learning rates (warm-up) do not depend on the total.

    Args:
        cfg: the run's configuration.
        history: one row per epoch done, each with its ``seconds``.

    Returns:
        The number of epochs, at least ``len(history)``.
    """
    epochs = int(cfg.epochs or 1)
    limit = float(cfg.time_limit_minutes or 0) * 60.0
    seconds = [float(row.get("seconds", 0.0)) for row in history]
    if not limit or not seconds:
        return max(epochs, len(seconds))
    recent = sorted((seconds[1:] or seconds)[-5:])
    per_epoch = max(recent[len(recent) // 2], 1e-3)
    fit = len(seconds) + int(max(limit - sum(seconds), 0.0) // per_epoch)
    return max(len(seconds), min(epochs, fit))


def epoch_learning_rate(cfg: TrainConfig, epoch: int, epochs: int | None = None) -> float:
    """The scheduled learning rate of epoch ``epoch`` (from 0): linear warm-up, then
    constant or cosine decay towards 0 over the remaining epochs, of ``epochs`` in all
    (default ``cfg.epochs``; a time-limited run passes its :func:`planned_epochs`)."""
    base, epochs = float(cfg.learning_rate or 0), int(epochs or cfg.epochs or 1)
    warmup = int(cfg.warmup_epochs or 0)
    if epoch < warmup:
        return base * (epoch + 1) / (warmup + 1)
    if cfg.lr_schedule == "cosine":
        return base * 0.5 * (1 + math.cos(math.pi * (epoch - warmup) / max(epochs - warmup, 1)))
    return base


def schedule_callbacks(cfg: TrainConfig, plan: Callable[[], int]) -> list[Any]:
    """The learning-rate callbacks for ``cfg`` (none for a constant rate without warm-up);
    ``plan()`` gives the number of epochs the schedule spans (see :func:`planned_epochs`)."""
    callbacks: list[Any] = []
    if cfg.lr_schedule == "cosine" or cfg.warmup_epochs:
        # A function of the epoch and the plan only, so a resumed run picks up where it was.
        callbacks.append(
            keras.callbacks.LearningRateScheduler(
                lambda epoch, lr: epoch_learning_rate(cfg, epoch, plan())
            )
        )
    if cfg.lr_schedule == "plateau":
        base = float(cfg.learning_rate or 0)
        callbacks.append(
            keras.callbacks.ReduceLROnPlateau(
                monitor="val_loss", factor=0.5, patience=3, min_lr=base / 100
            )
        )
    return callbacks
