"""The two phases of training a pretrained model: feature extraction, then fine-tuning.

Phase 1 trains the new head on the frozen base; after ``epochs - fine_tune_epochs`` epochs,
phase 2 unfreezes the base's top block and trains on at the fine-tuning learning rate (Deep
Learning with Python §5.3.2). A phase is a function of the epoch number alone, so a stopped run
resumes in the right one, and :func:`enter` gives a model (new, or loaded from ``last.keras``)
the trainable layers and compilation of its phase. Models without a pretrained base have one
phase and are left as they are.
"""

from __future__ import annotations

from dataclasses import replace

from catdog.model.backend import keras
from catdog.model.registry import compile_model
from catdog.train.config import TrainConfig
from catdog.train.presets import get_preset

FEATURE_EXTRACTION, FINE_TUNING = 1, 2


def fine_tune_start(cfg: TrainConfig) -> int | None:
    """The epoch (counted from 0) at which fine-tuning starts, or None if the run never does."""
    tune = int(cfg.fine_tune_epochs or 0)
    if get_preset(cfg.model).backbone is None or tune <= 0:
        return None
    return int(cfg.epochs or 0) - tune


def phase_of(cfg: TrainConfig, epoch: int) -> int | None:
    """The phase of epoch ``epoch`` (from 0): 1 or 2 for a pretrained model, else None."""
    if get_preset(cfg.model).backbone is None:
        return None
    start = fine_tune_start(cfg)
    return FINE_TUNING if start is not None and epoch >= start else FEATURE_EXTRACTION


def segments(cfg: TrainConfig, done: int) -> list[tuple[TrainConfig, int]]:
    """The ``model.fit`` calls left after ``done`` epochs: (the phase's settings, the epoch it
    ends at). The fine-tuning phase's settings have its learning rate and no warm-up."""
    total, start = int(cfg.epochs or 0), fine_tune_start(cfg)
    if start is None:
        return [(cfg, total)] if done < total else []
    tuning = replace(cfg, learning_rate=cfg.fine_tune_lr, warmup_epochs=0)
    parts = [(cfg, start), (tuning, total)]
    return [(settings, end) for settings, end in parts if done < end]


def enter(model: keras.Model, cfg: TrainConfig, epoch: int, num_classes: int) -> keras.Model:
    """Give ``model`` the trainable layers of the phase of ``epoch`` (from 0) and compile it
    for that phase if anything changed (or it is not compiled yet).

    A model loaded from ``last.keras`` in the phase it was saved in keeps its optimizer state.
    """
    from catdog.model.pretrained import set_phase

    phase = phase_of(cfg, epoch)
    if phase is None:
        return model
    changed = set_phase(model, phase, str(cfg.fine_tune_from))
    if changed or not model.compiled:
        rate = cfg.fine_tune_lr if phase == FINE_TUNING else cfg.learning_rate
        compile_model(
            model,
            num_classes=num_classes,
            learning_rate=float(rate or 0),
            optimizer=get_preset(cfg.model).optimizer,
            label_smoothing=float(cfg.label_smoothing or 0),
            weight_decay=float(cfg.weight_decay or 0),
        )
    return model
