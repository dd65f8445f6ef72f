"""A recommended recipe for the data at hand, with one sentence saying why.

What the Train page pre-selects (the user can still choose anything): from the dataset's
training photos per class, the training speed this machine measured for the recipe's shape
(:func:`catdog.train.precision.cached_choice`) and whether a pretrained base's weights are
here (Keras' cache, :func:`catdog.model.weights.cached_weights`):

* weights here and a small dataset: MobileNetV3Small's frozen ImageNet base with *fast feature
  extraction* (no augmentation: each photo's features are computed once and only the head
  trains) — seconds, and what few photos learn best from;
* no weights and a small dataset: the seed's small convnet from scratch at 64 px, with its
  augmentation and dropout, epochs sized to the photos and a short time limit — a first model
  in about a minute, of modest accuracy;
* enough photos (:data:`ENOUGH_PER_CLASS` per class): catdog-net, the from-scratch recipe
  measured best on the seed's 2000 photos.

The built-in demo keeps the seed's story (no recommendation). Plain Python: no TensorFlow.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from catdog.data.datasets import DatasetInfo
from catdog.data.paths import demo_dataset_dir
from catdog.model.backbones import BACKBONES
from catdog.model.weights import cached_weights, keras_models_dir
from catdog.policy import current_policy
from catdog.train.precision import cached_choice, epochs_in_budget

# Training photos per class from which catdog-net's long recipe is worth its 28 minutes
# (the seed's dataset has 1000; catdog-net was tuned there).
ENOUGH_PER_CLASS = 300
# The pretrained recipe: the light base, its head trained on features computed once.
PRETRAINED = "mobilenet-v3-small"
PRETRAINED_SETTINGS = {
    "augment": False, "epochs": 30, "fine_tune_epochs": 0, "batch_size": 32,
    "learning_rate": 1e-3, "image_size": 128, "time_limit_minutes": 2.0,
}  # fmt: skip
# The small from-scratch recipe: the seed's convnet with dropout and augmentation at 64 px
# (compiles in seconds, an epoch of a few dozen photos takes a fraction of one), a learning
# rate that moves in few steps (as the demo's), one pass per epoch, at most 2 minutes.
SMALL = "seed-dropout"
SMALL_SETTINGS = {"augment": True, "image_size": 64, "batch_size": 16, "learning_rate": 1e-3,
                  "steps_per_epoch": 0, "time_limit_minutes": 2.0}  # fmt: skip
# Photos an epochs-sized schedule shows in all (about 3,000: the seed's 100 steps of 32 once
# per epoch), between these many epochs.
SMALL_IMAGES_SEEN, SMALL_EPOCHS = 3000, (10, 100)


@dataclass(frozen=True)
class Recommendation:
    """A recipe: the model and the settings (``TrainConfig`` field names) it changes from the
    model's defaults, and one sentence saying why."""

    model: str
    reason: str
    settings: dict[str, Any] = field(default_factory=dict)


def _per_class(info: DatasetInfo) -> int:
    return min(info.counts["train"].values(), default=0)


def _measured(model: str, settings: dict[str, Any]) -> dict[str, Any]:
    """``settings`` with the precision to train in — ``auto`` where this machine timed the
    recipe's shape before (free then), else float32 (auto's first timing takes half a
    minute, too long for a first result) — and hosted mode's caps."""
    known = cached_choice(model, settings["image_size"], settings["batch_size"])
    precision = "auto" if known else "float32"
    return current_policy().capped_settings({**settings, "precision": precision})


def _speed(model: str, settings: dict[str, Any]) -> float | None:
    """Training images per second measured here for the recipe's shape, if known."""
    known = cached_choice(model, settings["image_size"], settings["batch_size"])
    if known is None:
        return None
    return known.speeds.get(known.precision if settings["precision"] == "auto" else "float32")


def _small_recipe(info: DatasetInfo) -> Recommendation:
    train, val = info.totals["train"], info.totals["validation"]
    low, high = SMALL_EPOCHS
    epochs = min(high, max(low, SMALL_IMAGES_SEEN // max(train, 1)))
    settings = _measured(SMALL, {**SMALL_SETTINGS, "epochs": epochs})
    minutes = settings["time_limit_minutes"]
    speed = _speed(SMALL, settings)
    fit = f"{epochs} epochs"
    if speed:
        fit = f"about {epochs_in_budget(minutes, speed, train, val, epochs)} epochs at the " \
              f"{speed:.0f} training images/s measured here"  # fmt: skip
    weights = BACKBONES["MobileNetV3Small"].file_name
    reason = (
        f"No pretrained weights on this machine and {_per_class(info):,} training photos per "
        f"class: the seed's small convnet from scratch at {settings['image_size']} px with "
        f"augmentation and dropout, {fit} within {minutes:g} minutes — a first model within a "
        f"minute, of modest accuracy (copy {weights} into {keras_models_dir()} for a "
        "pretrained base, which learns far more from few photos)"
    )
    return Recommendation(SMALL, reason, settings)


def _pretrained_recipe(info: DatasetInfo) -> Recommendation:
    settings = _measured(PRETRAINED, PRETRAINED_SETTINGS)
    reason = (
        f"MobileNetV3Small's ImageNet weights are on this machine and there are "
        f"{_per_class(info):,} training photos per class: a frozen pretrained base with fast "
        "feature extraction (each photo's features computed once, then only the small head "
        "trains, in seconds) learns most from few photos"
    )
    return Recommendation(PRETRAINED, reason, settings)


def recommend(info: DatasetInfo) -> Recommendation | None:
    """The recipe to pre-select for training on ``info`` (None for the built-in demo, whose
    point is the seed's own story)."""
    if info.root.resolve() == demo_dataset_dir().resolve():
        return None
    per_class = _per_class(info)
    if per_class >= ENOUGH_PER_CLASS:
        return Recommendation(
            "catdog-net",
            f"{per_class:,} training photos per class are enough to train from scratch: "
            "catdog-net, the recipe measured best on the seed's 2000 photos (about 90% test "
            "accuracy in under 30 minutes on 2 CPU cores)",
        )
    if cached_weights(BACKBONES["MobileNetV3Small"]) is not None:
        return _pretrained_recipe(info)
    return _small_recipe(info)
