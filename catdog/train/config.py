"""Training configuration: one dataclass that the CLI, the dashboard and saved runs share.

Importing this module is cheap (no TensorFlow), so pages and the CLI can build and validate
configs before paying for Keras.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from catdog.model.registry import get_spec, mixup_error, tta_zoom_error
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
    "mixup",
    "precision",
    "tta",
    "tta_zoom",
    "time_limit_minutes",
    "fine_tune_epochs",
    "fine_tune_lr",
    "fine_tune_from",
)


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
    mixup: float | None = None  # train on blends of image pairs, Beta(a, a) shares; 0 = off
    # auto (measure float32 and bfloat16 on this machine, take the faster) | float32 |
    # bfloat16 | float16 (GPU only); a run's saved config holds what auto chose
    precision: str | None = None
    tta: bool | None = None  # predict as the mean over the image and its mirror image
    tta_zoom: float | None = None  # with tta, also a centred 1/zoom crop of both (0: none)
    # Train for at most this many minutes (of epochs): the learning-rate schedule is fitted to
    # the epochs that fit, ``epochs`` being the most. 0: no limit.
    time_limit_minutes: float | None = None
    # Pretrained models (transfer learning): the base's weights and the fine-tuning phase.
    weights: str | None = field(
        default=None,
        metadata={
            "help": "the pretrained base's weights file (the .h5 Keras downloads); default: "
            "Keras' cache (~/.keras/models), downloading it on first use"
        },
    )
    fine_tune_epochs: int | None = field(
        default=None,
        metadata={
            "help": "of the epochs, how many at the end fine-tune the pretrained base's top "
            "block after the head has trained on the frozen base (0 = feature extraction "
            "only; default: the model's share of the epochs, e.g. the last third for vgg16)"
        },
    )
    fine_tune_lr: float | None = field(
        default=None,
        metadata={"help": "learning rate of the fine-tuning epochs (model default: 1e-5)"},
    )
    fine_tune_from: str | None = field(
        default=None,
        metadata={
            "help": "the first layer of the pretrained base that fine-tuning trains, it and "
            "all after it, batch norm excepted (default: the base's top block, e.g. "
            "block5_conv1 for VGG16)"
        },
    )
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
        if self.fine_tune_epochs is None and spec.fine_tune_epochs:
            # The preset's share of the epochs, so that fewer epochs still fine-tune at the end.
            share = round(int(cfg.epochs or 0) * spec.fine_tune_epochs / spec.epochs)
            cfg = replace(cfg, fine_tune_epochs=max(0, min(share, int(cfg.epochs or 0) - 1)))
        cfg.validate()
        cfg = cfg._resolved_pretraining(spec.backbone)
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

    def _resolved_pretraining(self, backbone: str | None) -> TrainConfig:
        """The pretrained-model settings made concrete (the weights file an absolute path, the
        fine-tuning start a layer name), or refused for a model without a pretrained base."""
        if backbone is None:
            if self.weights or self.fine_tune_epochs:
                raise TrainingError(
                    f"{self.model} starts from random weights: weights and fine-tuning are "
                    "for pretrained models (python -m catdog models)"
                )
            return self
        from catdog.model.weights import BACKBONES

        if self.fine_tune_epochs and self.fine_tune_epochs >= int(self.epochs or 0):
            raise TrainingError(
                f"fine-tuning epochs must be fewer than the epochs ({self.epochs}), so the "
                f"head trains first; got {self.fine_tune_epochs}"
            )
        weights = str(Path(self.weights).expanduser().resolve()) if self.weights else None
        start = self.fine_tune_from or BACKBONES[backbone].top_block
        return replace(self, weights=weights, fine_tune_from=start)

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
                self.fine_tune_epochs is None or self.fine_tune_epochs >= 0,
                f"fine-tuning epochs must be ≥ 0, got {self.fine_tune_epochs}",
            ),
            (
                self.fine_tune_lr is None or self.fine_tune_lr > 0,
                f"the fine-tuning learning rate must be positive, got {self.fine_tune_lr}",
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
            tta_zoom_error(self.tta_zoom), mixup_error(self.mixup), precision_error(self.precision)
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
        """Inverse of :meth:`to_dict`; unknown keys are an error that names them."""
        known = {f.name for f in fields(cls)} | {"mixed_precision"}
        unknown = sorted(set(data) - known)
        if unknown:
            raise TrainingError(f"unknown training settings: {', '.join(unknown)}")
        values = dict(data)
        if "mixed_precision" in values:  # runs saved before the precision setting
            mixed = values.pop("mixed_precision")
            values.setdefault("precision", None if mixed is None else
                              "bfloat16" if mixed else "float32")  # fmt: skip
        if isinstance(values.get("augmentation"), dict):
            values["augmentation"] = AugmentConfig.from_dict(values["augmentation"])
        return cls(**values)
