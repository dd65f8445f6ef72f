"""Training configuration: one dataclass that the CLI, the dashboard and saved runs share.

Importing this module is cheap (no TensorFlow), so pages and the CLI can build and validate
configs before paying for Keras.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields, replace
from pathlib import Path
from typing import Any

from catdog.model.registry import get_spec, tta_zoom_error
from catdog.train.augment import AugmentConfig
from catdog.train.precision import precision_error

LR_SCHEDULES = ("constant", "cosine", "plateau")

# TrainConfig fields whose ``None`` means "the model's default" (ModelSpec has the same names).
SPEC_DEFAULTS = (
    "epochs",
    "batch_size",
    "learning_rate",
    "image_size",
    "augment",
    "dropout",
    "steps_per_epoch",
    "lr_schedule",
    "warmup_epochs",
    "label_smoothing",
    "weight_decay",
    "precision",
    "tta",
    "tta_zoom",
    "time_limit_minutes",
)


# Settings earlier versions saved in config.json that no field holds any more.
RETIRED_SETTINGS = ("mixed_precision", "mixup")


def retired_mixup(data: dict[str, Any]) -> bool:
    """Whether saved training settings ask for mixup, which catdog no longer offers (such a run
    still lists, loads and evaluates; resumed, it trains on without mixup)."""
    return bool(data.get("mixup"))


class TrainingError(ValueError):
    """A training configuration that cannot work; the message says which setting and why."""


@dataclass
class TrainConfig:
    """Everything needed to (re-)run a training run. ``None`` means "the model's default".

    The CLI, the dashboard and the saved ``config.json`` all use this one object.
    """

    data: str  # dataset folder: DATA/{train,validation,test}/<class>/<images>
    model: str = "seed-baseline"  # registry name (python -m catdog models)
    epochs: int | None = None  # seed: 30 without augmentation, 100 with
    batch_size: int | None = None  # seed: 20, and 32 with augmentation
    learning_rate: float | None = None  # seed: RMSprop at 1e-4
    image_size: int | None = None  # square input side; seed: 150
    augment: bool | None = None  # augment training images on the fly; seed-dropout: yes
    augmentation: AugmentConfig | None = None  # the transforms; None: the model's preset
    dropout: float | None = None  # Dropout before the dense head; seed-dropout: 0.5
    steps_per_epoch: int | None = None  # None: one pass; the seed's augmented run used 100
    early_stopping: int = 0  # stop after this many epochs without val_loss improving; 0 = off
    lr_schedule: str | None = None  # constant | cosine (decay to 0 over the epochs) | plateau
    warmup_epochs: int | None = None  # linear learning-rate warm-up before the schedule
    label_smoothing: float | None = None  # soften the 0/1 targets; the seed: 0
    weight_decay: float | None = None  # AdamW's decoupled weight decay (0 = none)
    # auto (measure float32 and bfloat16 on this machine, take the faster) | float32 |
    # bfloat16 | float16 (GPU only); a run's saved config holds what auto chose
    precision: str | None = None
    tta: bool | None = None  # predict as the mean over the image and its mirror image
    tta_zoom: float | None = None  # with tta, also a centred 1/zoom crop of both (0: none)
    # Train for at most this many minutes (of epochs): the learning-rate schedule is fitted to
    # the epochs that fit, ``epochs`` being the most. 0: no limit.
    time_limit_minutes: float | None = None
    seed: int = 0  # seeds weights, shuffling and augmentation
    test: bool = True  # evaluate the best model on the test split at the end (off while tuning)

    def resolved(self) -> TrainConfig:
        """A copy with every ``None`` replaced by the model's default, validated."""
        spec = get_spec(self.model)
        defaults = {
            name: getattr(spec, name) for name in SPEC_DEFAULTS if getattr(self, name) is None
        }
        augmentation = self.augmentation or spec.augmentation or AugmentConfig()
        cfg = replace(
            self,
            data=str(Path(self.data).expanduser().resolve()),
            augmentation=AugmentConfig.from_dict(augmentation.to_dict()),  # a copy of its own
            **defaults,
        )
        cfg.validate()
        if cfg.weight_decay and spec.optimizer != "adamw":
            raise TrainingError(
                f"weight decay needs the adamw optimizer; {spec.name} trains with "
                f"{spec.optimizer} (leave weight decay at 0)"
            )
        if cfg.image_size is not None and cfg.image_size < spec.min_image_size:
            raise TrainingError(
                f"{spec.name} needs images of at least {spec.min_image_size} px, "
                f"got image size {cfg.image_size}"
            )
        return cfg

    def validate(self) -> None:
        """Raise :class:`TrainingError` naming the first setting that cannot work."""
        checks = [
            (self.epochs is None or self.epochs >= 1, f"epochs must be ≥ 1, got {self.epochs}"),
            (
                self.batch_size is None or self.batch_size >= 1,
                f"batch size must be ≥ 1, got {self.batch_size}",
            ),
            (
                self.learning_rate is None or self.learning_rate > 0,
                f"learning rate must be positive, got {self.learning_rate}",
            ),
            (
                self.image_size is None or 32 <= self.image_size <= 512,
                f"image size must be between 32 and 512 pixels, got {self.image_size}",
            ),
            (
                self.dropout is None or 0 <= self.dropout < 1,
                f"dropout must be in [0, 1), got {self.dropout}",
            ),
            (
                self.steps_per_epoch is None or self.steps_per_epoch >= 0,
                f"steps per epoch must be ≥ 0 (0 = one pass), got {self.steps_per_epoch}",
            ),
            (
                self.early_stopping >= 0,
                f"early stopping patience must be ≥ 0, got {self.early_stopping}",
            ),
            (
                self.warmup_epochs is None or self.warmup_epochs >= 0,
                f"warm-up epochs must be ≥ 0, got {self.warmup_epochs}",
            ),
            (
                self.label_smoothing is None or 0 <= self.label_smoothing < 1,
                f"label smoothing must be in [0, 1), got {self.label_smoothing}",
            ),
            (
                self.weight_decay is None or 0 <= self.weight_decay < 1,
                f"weight decay must be in [0, 1), got {self.weight_decay}",
            ),
            (
                self.time_limit_minutes is None or 0 <= self.time_limit_minutes < math.inf,
                f"the time limit must be a number of minutes ≥ 0 (0 = none), "
                f"got {self.time_limit_minutes}",
            ),
            (
                self.lr_schedule is None or self.lr_schedule in LR_SCHEDULES,
                f"unknown learning-rate schedule {self.lr_schedule!r}; "
                f"choose one of {', '.join(LR_SCHEDULES)}",
            ),
        ]
        for ok, message in checks:
            if not ok:
                raise TrainingError(message)
        problems = (
            tta_zoom_error(self.tta_zoom), precision_error(self.precision)
        )  # fmt: skip
        for problem in problems:
            if problem:
                raise TrainingError(problem)
        if self.augmentation is not None:
            self.augmentation.validate()

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready data."""
        data = asdict(self)
        data["augmentation"] = self.augmentation.to_dict() if self.augmentation else None
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TrainConfig:
        """Inverse of :meth:`to_dict`; unknown keys are an error that names them.

        Settings of earlier versions still load: ``mixed_precision`` becomes ``precision``, and
        ``mixup`` (a setting catdog no longer offers) is dropped.
        """
        known = {f.name for f in fields(cls)} | set(RETIRED_SETTINGS)
        unknown = sorted(set(data) - known)
        if unknown:
            raise TrainingError(f"unknown training settings: {', '.join(unknown)}")
        values = {k: v for k, v in data.items() if k != "mixup"}
        if "mixed_precision" in values:  # runs saved before the precision setting
            mixed = values.pop("mixed_precision")
            values.setdefault("precision", None if mixed is None else
                              "bfloat16" if mixed else "float32")  # fmt: skip
        if isinstance(values.get("augmentation"), dict):
            values["augmentation"] = AugmentConfig.from_dict(values["augmentation"])
        return cls(**values)
