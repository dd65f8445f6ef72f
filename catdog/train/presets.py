"""Training presets: how each model is trained by default, as data beside training.

A preset names a network of :mod:`catdog.model.registry` and the settings it trains with:
epochs, batch size, learning rate and schedule, augmentation, test-time augmentation, time
limit, and the smaller input it may fit to a slow machine (:mod:`catdog.train.input_size`).
:class:`catdog.train.config.TrainConfig` fills its unset fields from here. Plain Python: no
TensorFlow.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from catdog.model.errors import ModelError
from catdog.model.registry import get_network, image_size_error
from catdog.train.augment import AugmentConfig


@dataclass(frozen=True)
class Preset:
    """A training preset: a network and the settings the seed (or we) train it with.

    Args:
        name: the preset's key, as typed on the command line (``--model``).
        description: one line for listings and the dashboard.
        network: the architecture (a key of :data:`catdog.model.registry.NETWORKS`).
        image_size: default square input side in pixels.
        dropout: default dropout rate before the dense head (0 = no Dropout layer).
        augment: whether training uses data augmentation by default.
        epochs: default number of epochs.
        batch_size: default batch size.
        learning_rate: default learning rate.
        optimizer: Keras optimizer name (``"rmsprop"`` as in the seed, ``"adam"`` or ``"adamw"``).
        steps_per_epoch: default batches per epoch (None = one pass over the training set).
        lr_schedule: learning-rate schedule (``constant``, ``cosine`` or ``plateau``).
        warmup_epochs: epochs of linear learning-rate warm-up before the schedule.
        label_smoothing: label smoothing of the cross-entropy loss (0 = plain, as the seed).
        weight_decay: AdamW's decoupled weight decay: every step each weight shrinks by
            ``learning_rate × weight_decay`` of itself (0 = none; only AdamW takes it).
        precision: the arithmetic of the hidden layers: ``auto`` (measured on the machine,
            see :mod:`catdog.train.precision`), ``float32``, ``bfloat16`` or ``float16``.
        tta: predict as the mean of the image and its mirror image (test-time augmentation).
        tta_zoom: with ``tta``, also average over a centred crop of side ``1/tta_zoom`` of each
            (scaled back up): 1.1 adds two views zoomed in 10%. 0 (or 1): mirror only.
        time_limit_minutes: train for at most this many minutes, fitting the schedule to the
            epochs that fit (``epochs`` is then the most); 0 = no limit.
        augmentation: default augmentation settings (None: the seed's).
        fine_tune_epochs: of the ``epochs``, how many at the end fine-tune the base's top
            block (pretrained networks only; 0 = feature extraction only).
        fine_tune_lr: learning rate of the fine-tuning epochs.
        fine_tune_from: the first base layer fine-tuning unfreezes (None: the backbone's top
            block).
        slow_image_size: with a time limit, the input size to train at instead where at most
            ``slow_epochs`` epochs of ``image_size`` fit it on the machine (measured per
            preset: :mod:`catdog.train.input_size`); None: always ``image_size``.
        slow_epochs: see ``slow_image_size``.
    """

    name: str
    description: str
    network: str
    image_size: int = 150
    dropout: float = 0.0
    augment: bool = False
    epochs: int = 30
    batch_size: int = 20
    learning_rate: float = 1e-4
    optimizer: str = "rmsprop"
    steps_per_epoch: int | None = None
    lr_schedule: str = "constant"
    warmup_epochs: int = 0
    label_smoothing: float = 0.0
    weight_decay: float = 0.0
    precision: str = "auto"
    tta: bool = False
    tta_zoom: float = 0.0
    time_limit_minutes: float = 0.0
    augmentation: AugmentConfig | None = None
    fine_tune_epochs: int = 0
    fine_tune_lr: float = 1e-5
    fine_tune_from: str | None = None
    slow_image_size: int | None = None
    slow_epochs: int = 0

    @property
    def backbone(self) -> str | None:
        """The network's pretrained base (None: it starts from random weights)."""
        return get_network(self.network).backbone

    @property
    def min_image_size(self) -> int:
        """The smallest input side the network can take."""
        return get_network(self.network).min_image_size

    def image_size_error(self, image_size: int | None) -> str | None:
        """Why the network cannot take ``image_size`` px, or None if it can."""
        return image_size_error(get_network(self.network), image_size, self.name)


# Stronger than the seed's: bigger zoom and real shear (the seed's 0.2 is in degrees), colour,
# and cutout (one erased square, a third of the side: chosen on validation over 3 seeds).
STRONG_AUGMENTATION = AugmentConfig(
    rotation_range=20.0,
    width_shift_range=0.1,
    height_shift_range=0.1,
    shear_range=10.0,
    zoom_range=0.25,
    horizontal_flip=True,
    fill_mode="reflect",
    brightness_range=0.2,
    contrast_range=0.2,
    cutout=0.33,
)

CATDOG_NET = Preset(
    name="catdog-net",
    description="catdog's from-scratch recipe, recommended for real photos: a compact "
    "residual convnet with batch norm and global pooling, AdamW with warm-up and cosine "
    "decay, label smoothing, stronger augmentation, the arithmetic measured fastest on "
    "this machine (and 96 px instead of 112 where its 28 minutes buy too few epochs), "
    "and predictions "
    "averaged over mirrored and zoomed views (on the seed's 2000 photos: ≈ 92% "
    "validation and 90.2% test accuracy, 3 seeds, in under 30 min on 2 CPU cores (28 of "
    "training at most); see the README's Results).",
    network="catdog-net",
    # 112 px (chosen over 128 on validation, 3 seeds) for 145 epochs, the 30-minute budget's
    # slack over 130 (chosen on validation, paired over 3 seeds; see benchmarks/decisions/).
    image_size=112,
    dropout=0.3,
    augment=True,
    epochs=145,
    batch_size=32,
    learning_rate=2e-3,
    optimizer="adamw",
    lr_schedule="cosine",
    warmup_epochs=3,
    label_smoothing=0.1,
    # Chosen on validation against 1e-4 (paired, seeds 1-3: +0.44 points over the last 20
    # epochs); see benchmarks/decisions/2026-11-28-weight-decay-paired.md.
    weight_decay=0.05,
    tta=True,
    tta_zoom=1.1,
    # At most 28 minutes of epochs: on a slower machine (or in a slow hour) the schedule is
    # fitted to fewer epochs instead of running past the 30-minute budget.
    time_limit_minutes=28.0,
    augmentation=STRONG_AUGMENTATION,
    # Where the limit buys at most 70 epochs of 112 px (an AVX2-only CPU: 60), 96 px and the
    # epochs it buys: +3.6 points of validation accuracy, measured (see catdog.train.input_size).
    slow_image_size=96,
    slow_epochs=70,
)

# The same recipe on a short schedule: the seed's 82% in minutes.
CATDOG_NET_QUICK = replace(
    CATDOG_NET,
    name="catdog-net-quick",
    description="catdog-net on a short schedule (40 epochs, no cutout), for a quick "
    "result: the seed's 82% validation accuracy on its 2000 photos after 6.0–6.7 min on 2 CPU "
    "cores, against the seed's 51 min (see the README's Results).",
    epochs=40,
    warmup_epochs=2,
    weight_decay=1e-4,  # as measured (0.05 was chosen for the long schedule only)
    time_limit_minutes=0.0,  # 40 epochs take minutes; as measured, without a limit
    # A short schedule underfits before it overfits: no cutout.
    augmentation=replace(STRONG_AUGMENTATION, cutout=0.0),
)


# Deep Learning with Python §5.3: VGG16's ImageNet-trained convolutional base, frozen, under a
# new Flatten/Dense(256)/Dropout(0.5)/sigmoid head trained with augmentation by RMSprop at 2e-5;
# then block 5 is unfrozen and fine-tuned at 1e-5. The book trains 30 + 100 epochs; VGG16 is
# slow on a CPU, so the preset trains 20 + 10 (more with --epochs/--fine-tune-epochs).
VGG16 = Preset(
    name="vgg16",
    description="The book's transfer learning (§5.3): VGG16's convolutional base with its "
    "ImageNet weights (a 56.2 MB download), frozen under a new dense head, then its top block "
    "fine-tuned. Slow on a CPU (15 million parameters in the base).",
    network="vgg16",
    image_size=150,
    dropout=0.5,
    augment=True,
    epochs=30,
    batch_size=20,
    learning_rate=2e-5,
    optimizer="rmsprop",
    fine_tune_epochs=10,
    fine_tune_lr=1e-5,
)

# The light backbone: MobileNetV3Small, the fastest of MobileNetV3Small/Large and EfficientNetB0
# on a 2-core CPU (see benchmarks/README.md), 0.9 million parameters in the base.
MOBILENET_V3_SMALL = Preset(
    name="mobilenet-v3-small",
    description="Transfer learning that suits a CPU: MobileNetV3Small's base with its "
    "ImageNet weights (a 4.1 MB download), frozen under a pooled head, then its last blocks "
    "fine-tuned; tens of times VGG16's images per second on a CPU.",
    network="mobilenet-v3-small",
    image_size=160,
    dropout=0.2,
    augment=True,
    epochs=15,
    batch_size=32,
    learning_rate=1e-3,
    optimizer="adam",
    fine_tune_epochs=5,
    fine_tune_lr=1e-5,
)

PRESETS: dict[str, Preset] = {
    preset.name: preset
    for preset in (
        Preset(
            name="seed-baseline",
            description="The seed's convnet as first trained: no dropout, no augmentation "
            "(overfits; ≈72% validation on the 2000 real photos).",
            network="seed-convnet",
            epochs=30,
            batch_size=20,
        ),
        Preset(
            name="seed-dropout",
            description="The seed's convnet with Dropout(0.5) before Dense(512), trained with "
            "the seed's augmentation (≈82% validation on the 2000 real photos).",
            network="seed-convnet",
            dropout=0.5,
            augment=True,
            epochs=100,
            batch_size=32,
            steps_per_epoch=100,
        ),
        CATDOG_NET,
        CATDOG_NET_QUICK,
        VGG16,
        MOBILENET_V3_SMALL,
    )
}


# The preset the dashboard suggests for real photos (the demo cartoons start with the seed's).
RECOMMENDED = "catdog-net"


def recommended_model(demo: bool) -> str:
    """The model a new run starts from: the seed's baseline on the demo data, where the point
    is to watch it overfit, else catdog's best from-scratch recipe."""
    return "seed-baseline" if demo else RECOMMENDED


def get_preset(name: str) -> Preset:
    """Return the preset called ``name``.

    Raises:
        ModelError: no such preset; the message lists the names that exist.
    """
    try:
        return PRESETS[name]
    except KeyError:
        known = ", ".join(sorted(PRESETS))
        raise ModelError(f"unknown model {name!r}; choose one of: {known}") from None
