"""Training configuration: one dataclass that the CLI, the dashboard and saved runs share.

Importing this module is cheap (no TensorFlow), so pages and the CLI can build and validate
configs before paying for Keras.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import MISSING, asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from catdog.model.registry import weight_decay_error
from catdog.train.augment import AugmentConfig
from catdog.train.precision import PRECISIONS, precision_error
from catdog.train.presets import Preset, get_preset

LR_SCHEDULES = ("constant", "cosine", "plateau")
# Where a run trains: see catdog.train.distribute.
STRATEGIES = ("auto", "one", "mirrored", "multiworker")

# Settings earlier versions saved in config.json that no field holds any more.
RETIRED_SETTINGS = ("mixed_precision", "mixup")

Check = Callable[[Any], str | None]


def _rule(ok: Callable[[Any], bool], message: str) -> Check:
    """A setting's check: ``message`` (``{value}`` filled in) when ``ok(value)`` is false.
    None ("the model's default") always passes."""
    return lambda value: None if value is None or ok(value) else message.format(value=value)


def setting(
    default: Any = MISSING,
    *,
    help: str,
    check: Check | None = None,
    ui: dict | None = None,
    **cli: Any,
) -> Any:
    """A :class:`TrainConfig` field with what people and programs need to know about it.

    Args:
        default: the field's default (leave out for a required setting).
        help: one line for people: what the setting does (the command line's help).
        check: ``check(value)`` says why a value cannot work, or returns None if it can.
        ui: the dashboard's widget: its ``label`` and Streamlit's ``min_value``, ``max_value``,
            ``step`` or ``options`` (its help is ``help``); see :func:`widget_args`.
        **cli: how the command line spells it, when not ``--field-name``: ``flag``,
            ``metavar``, ``choices``, hidden older ``aliases`` ({flag: value it sets}), or
            ``flag=None`` for a setting without a flag.
    """
    return field(default=default, metadata={"help": help, "check": check, "cli": cli, "ui": ui})


def tta_zoom_error(zoom: float | None) -> str | None:
    """Why ``zoom`` cannot be a test-time zoom (``TrainConfig.tta_zoom``), or None if it can:
    0 (or None) is off, else it must lie in [1, 2]."""
    if not zoom or 1 <= zoom <= 2:
        return None
    return f"test-time zoom must be 0 (off) or between 1 and 2, got {zoom}"


class TrainingError(ValueError):
    """A training configuration that cannot work; the message says which setting and why."""


def retired_mixup(data: dict[str, Any]) -> bool:
    """Whether saved training settings ask for mixup, which catdog no longer offers (such a run
    still lists, loads and evaluates; resumed, it trains on without mixup)."""
    return bool(data.get("mixup"))


@dataclass
class TrainConfig:
    """Everything needed to (re-)run a training run. ``None`` means "the model's default".

    The CLI, the dashboard and the saved ``config.json`` all use this one object; each field
    carries its help text, its check and its command-line spelling (see :func:`setting`), so a
    new setting is one field here (plus its default in ``Preset`` if the model sets it).
    """

    # DATA/{train,validation,test}/<class>/<images>
    data: str = setting(help="dataset folder, dataset name, or 'demo'", metavar="DIR")
    model: str = setting("seed-baseline", help="the model, which sets every default below; see "
                         "`python -m catdog models`", metavar="NAME")  # fmt: skip
    epochs: int | None = setting(
        None, help="epochs to train, the most with a time limit; the seed: 30, 100 augmented",
        metavar="N",
        check=_rule(lambda v: v >= 1, "epochs must be ≥ 1, got {value}"),
        ui={"label": "Epochs", "min_value": 1},
    )  # fmt: skip
    batch_size: int | None = setting(
        None, help="images per batch; the seed: 20, 32 augmented", metavar="B",
        check=_rule(lambda v: v >= 1, "batch size must be ≥ 1, got {value}"),
        ui={"label": "Batch size", "min_value": 1},
    )  # fmt: skip
    learning_rate: float | None = setting(
        None, help="the optimizer's learning rate; the seed: 1e-4 with RMSprop", metavar="LR",
        check=_rule(lambda v: v > 0, "learning rate must be positive, got {value}"),
        ui={"label": "Learning rate", "options": (1e-5, 3e-5, 1e-4, 3e-4, 1e-3, 3e-3, 1e-2)},
    )  # fmt: skip
    image_size: int | None = setting(
        None, help="side of the square input in pixels; the seed: 150", metavar="S",
        check=_rule(lambda v: 32 <= v <= 512,
                    "image size must be between 32 and 512 pixels, got {value}"),
        ui={"label": "Image size (px)", "min_value": 32, "max_value": 512, "step": 2},
    )  # fmt: skip
    augment: bool | None = setting(
        None, help="augment training images on the fly with the model's preset transforms; "
        "without, a pretrained model's frozen base computes each image's features once and its "
        "head trains on them (fast feature extraction)",
    )  # fmt: skip
    # The transforms (None: the model's preset); the dashboard's sliders set them.
    augmentation: AugmentConfig | None = setting(None, help="augmentation settings", flag=None)
    dropout: float | None = setting(
        None, help="rate of the Dropout before the output layer; seed-dropout: 0.5", metavar="P",
        check=_rule(lambda v: 0 <= v < 1, "dropout must be in [0, 1), got {value}"),
        ui={"label": "Dropout before the output layer", "min_value": 0.0, "max_value": 0.9,
            "step": 0.05},
    )  # fmt: skip
    steps_per_epoch: int | None = setting(
        None, help="batches per epoch; 0: one pass over the training images", metavar="N",
        check=_rule(lambda v: v >= 0, "steps per epoch must be ≥ 0 (0 = one pass), got {value}"),
        ui={"label": "Steps per epoch", "min_value": 0, "max_value": 10_000},
    )  # fmt: skip
    early_stopping: int = setting(
        0, help="stop after PATIENCE epochs without val_loss improving; 0 = off",
        metavar="PATIENCE",
        check=_rule(lambda v: v >= 0, "early stopping patience must be ≥ 0, got {value}"),
        ui={"label": "Early stopping", "min_value": 0, "max_value": 100},
    )  # fmt: skip
    lr_schedule: str | None = setting(
        None, help="learning-rate schedule: constant, cosine (decay to 0 over the epochs) or "
        "plateau (halve it when val_loss stalls)", choices=LR_SCHEDULES,
        check=_rule(lambda v: v in LR_SCHEDULES, "unknown learning-rate schedule {value!r}; "
                    f"choose one of {', '.join(LR_SCHEDULES)}"),
    )  # fmt: skip
    warmup_epochs: int | None = setting(
        None, help="epochs of linear learning-rate warm-up before the schedule", metavar="N",
        check=_rule(lambda v: v >= 0, "warm-up epochs must be ≥ 0, got {value}"),
    )  # fmt: skip
    label_smoothing: float | None = setting(
        None, help="soften the 0/1 targets by this much; 0 = plain cross-entropy", metavar="E",
        check=_rule(lambda v: 0 <= v < 1, "label smoothing must be in [0, 1), got {value}"),
        ui={"label": "Label smoothing", "min_value": 0.0, "max_value": 0.5, "step": 0.05},
    )  # fmt: skip
    weight_decay: float | None = setting(
        None, help="AdamW's decoupled weight decay; 0 = none", metavar="W",
        check=_rule(lambda v: 0 <= v < 1, "weight decay must be in [0, 1), got {value}"),
        ui={"label": "Weight decay", "min_value": 0.0, "max_value": 0.5, "step": 0.01},
    )  # fmt: skip
    # A run's saved config holds what auto chose.
    precision: str | None = setting(
        None, help="arithmetic of the hidden layers: auto times float32 and bfloat16 on this "
        "machine once and takes the faster; float16 needs a GPU", choices=PRECISIONS,
        aliases={"--mixed-precision": "bfloat16", "--no-mixed-precision": "float32"},
        check=precision_error,
    )  # fmt: skip
    # Per-replica batch, scaled learning rate: see catdog.train.distribute. A run's saved config
    # keeps the setting; what it resolved to is recorded beside it ("distribution").
    strategy: str = setting(
        "auto", help="where to train: one device, mirrored (a replica on every GPU of this "
        "machine) or multiworker (every machine of a cluster, see --workers); auto: mirrored "
        "when several GPUs are visible, else one; the batch size is per replica and the "
        "learning rate is scaled by the replicas", metavar="{" + ",".join(STRATEGIES) + "}",
        check=_rule(lambda v: v in STRATEGIES, "unknown strategy {value!r}; choose one of "
                    f"{', '.join(STRATEGIES)}"),
    )  # fmt: skip
    tta: bool | None = setting(
        None, help="average predictions over each image and its mirror image"
    )
    tta_zoom: float | None = setting(
        None, help="with --tta, also a centred 1/ZOOM crop of both, e.g. 1.1; 0 = off",
        metavar="ZOOM", check=tta_zoom_error,
    )  # fmt: skip
    # The learning-rate schedule is fitted to the epochs that fit in the time.
    fit_image_size: bool | None = setting(
        None, help="with a time limit, train at the preset's smaller input where its own size "
        "fits few epochs on this machine (catdog-net: 96 px where at most 70 epochs of 112 px "
        "fit; measured); on unless --image-size is given",
    )  # fmt: skip
    time_limit_minutes: float | None = setting(
        None, help="train for at most M minutes, the schedule fitted to the epochs that fit and "
        "the epochs setting the most; 0 = no limit", flag="--minutes", metavar="M",
        check=_rule(lambda v: 0 <= v < math.inf, "the time limit must be a number of minutes "
                    "≥ 0 (0 = none), got {value}"),
        ui={"label": "Time limit (min)", "min_value": 0.0, "step": 5.0},
    )  # fmt: skip
    # Pretrained models (transfer learning): where the base's weights come from, and the
    # fine-tuning phase that follows feature extraction on the frozen base.
    weights: str | None = setting(
        None, help="the pretrained base's weights file (the .h5 Keras downloads) instead of "
        "Keras' cache (~/.keras/models), where it is downloaded on first use", metavar="PATH",
    )  # fmt: skip
    fine_tune_epochs: int | None = setting(
        None, help="of the epochs, how many at the end fine-tune the pretrained base's top block "
        "after the head has trained on the frozen base; 0 = feature extraction only; the "
        "presets: their share of the epochs, e.g. the last third for vgg16", metavar="N",
        check=_rule(lambda v: v >= 0, "fine-tuning epochs must be ≥ 0, got {value}"),
    )  # fmt: skip
    fine_tune_lr: float | None = setting(
        None, help="learning rate of the fine-tuning epochs; the presets: 1e-5", metavar="LR",
        check=_rule(lambda v: v > 0,
                    "the fine-tuning learning rate must be positive, got {value}"),
    )  # fmt: skip
    fine_tune_from: str | None = setting(
        None, help="the first layer of the pretrained base that fine-tuning trains, it and all "
        "after it, batch norm excepted; the presets: the base's top block, e.g. block5_conv1 "
        "for VGG16", metavar="LAYER",
    )  # fmt: skip
    seed: int = setting(
        0, help="seeds the weights, the shuffling and the augmentation", metavar="K",
        ui={"label": "Seed", "min_value": 0, "max_value": 10**6},
    )  # fmt: skip
    test: bool = setting(
        True, help="do not evaluate on the test split at the end (keep it unseen while tuning)",
        flag="--no-test",
    )  # fmt: skip

    def resolved(self) -> TrainConfig:
        """A copy with every ``None`` replaced by the model's default, validated."""
        spec = get_preset(self.model)
        defaults = {
            name: getattr(spec, name) for name in SPEC_DEFAULTS if getattr(self, name) is None
        }
        augmentation = self.augmentation or spec.augmentation or AugmentConfig()
        fit = self.fit_image_size
        cfg = replace(
            self,
            data=str(Path(self.data).expanduser().resolve()),
            # An input size given by hand is kept, unless fitting is asked for as well.
            fit_image_size=bool(spec.slow_image_size)
            and (fit or (fit is None and self.image_size is None)),
            augmentation=AugmentConfig.from_dict(augmentation.to_dict()),  # a copy of its own
            **defaults,
        )
        if self.fine_tune_epochs is None and spec.fine_tune_epochs:
            # The preset's share of the epochs, so that fewer epochs still fine-tune at the end.
            share = round(int(cfg.epochs or 0) * spec.fine_tune_epochs / spec.epochs)
            cfg = replace(cfg, fine_tune_epochs=max(0, min(share, int(cfg.epochs or 0) - 1)))
        cfg.validate()
        cfg = cfg._resolved_pretraining(spec.backbone)
        if problem := weight_decay_error(spec.optimizer, cfg.weight_decay):
            raise TrainingError(f"{spec.name}: {problem}")
        if problem := spec.image_size_error(cfg.image_size):
            raise TrainingError(problem)
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
        from catdog.model.backbones import BACKBONES

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
        for f in fields(self):
            check = f.metadata.get("check")
            if check is not None and (problem := check(getattr(self, f.name))):
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


# TrainConfig fields whose ``None`` means "the model's default" (Preset has the same names);
# the augmentation settings fall back to the model's preset in :meth:`TrainConfig.resolved`, and
# a pretrained model's weights file to Keras' cache (:func:`catdog.model.weights.find_weights`).
_SPEC_FIELDS = {f.name for f in fields(Preset)} - {"augmentation"}
SPEC_DEFAULTS = tuple(
    f.name for f in fields(TrainConfig) if f.default is None and f.name in _SPEC_FIELDS
)


_FIELDS = {f.name: f for f in fields(TrainConfig)}


def widget_args(name: str, **override: Any) -> dict[str, Any]:
    """The Train page's widget for the :class:`TrainConfig` field ``name``, as Streamlit keyword
    arguments: the label, range and step declared with the field, and its help (the command
    line's help too). ``override`` replaces any of them (e.g. hosted mode's cap as
    ``max_value``)."""
    f = _FIELDS[name]
    ui = dict(f.metadata.get("ui") or {})
    text = f.metadata["help"]
    return {**ui, "help": text[:1].upper() + text[1:] + ".", **override}
