"""The network registry: named architectures, and building one.

Listing the registry is cheap (no TensorFlow); building a model imports Keras. A new
architecture is one builder function plus one :class:`Network` entry in :data:`NETWORKS`. How a
network is trained by default (epochs, learning rate, augmentation, time limit…) is a training
preset's business: :mod:`catdog.train.presets`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from catdog.model.errors import ModelError

if TYPE_CHECKING:
    from catdog.model.backend import keras


# Keras dtype policy of the hidden layers for each arithmetic (weights stay float32 in all);
# :mod:`catdog.train.precision` chooses between them.
POLICIES = {"float32": "float32", "bfloat16": "mixed_bfloat16", "float16": "mixed_float16"}


@dataclass(frozen=True)
class Network:
    """A registry entry: an architecture and how to build it.

    Args:
        name: registry key.
        description: one line for listings.
        build: ``build(image_size, num_classes, dropout, dtype) -> keras.Model`` (uncompiled);
            ``dtype`` is a Keras dtype policy name for the hidden layers. A pretrained network's
            builder also takes ``weights=`` (its backbone's weights file).
        image_size: the input side it is built at when none is given.
        dropout: the dropout rate before its head when none is given (0 = no Dropout layer).
        min_image_size: smallest input side the architecture can take.
        backbone: the pretrained base (a key of :data:`catdog.model.backbones.BACKBONES`), None
            for a network that starts from random weights.
    """

    name: str
    description: str
    build: Callable[..., keras.Model]
    image_size: int = 150
    dropout: float = 0.0
    min_image_size: int = 32
    backbone: str | None = None


def image_size_error(
    network: Network, image_size: int | None, name: str | None = None
) -> str | None:
    """Why ``network`` cannot take ``image_size`` px, or None if it can (or None); the sentence
    names the model ``name`` (a training preset) if given, else the network."""
    if image_size is None or image_size >= network.min_image_size:
        return None
    who = name or network.name
    return f"{who} needs images of at least {network.min_image_size} px, got {image_size}"


OPTIMIZERS = ("rmsprop", "adam", "adamw")


def weight_decay_error(optimizer: str, weight_decay: float | None) -> str | None:
    """Why ``optimizer`` cannot take ``weight_decay``, or None if it can: only AdamW decays
    weights (the others would ignore it)."""
    if not weight_decay or optimizer == "adamw":
        return None
    return f"weight decay needs the adamw optimizer, not {optimizer} (leave weight decay at 0)"


def _head(num_classes: int) -> tuple[int, str]:
    """Units and activation of the output layer: 1 sigmoid unit for 2 classes, else softmax."""
    return (1, "sigmoid") if num_classes == 2 else (num_classes, "softmax")


# Smallest input the four conv/pool blocks (each: 3×3 valid convolution, 2×2 pooling) can
# shrink to a 1×1 map.
SEED_MIN_SIZE = 46


def build_seed_convnet(
    image_size: int, num_classes: int, dropout: float = 0.0, dtype: str = "float32"
) -> keras.Model:
    """The seed's convnet (Deep Learning with Python §5.2), layer for layer.

    Four Conv2D(3×3, relu) blocks of 32/64/128/128 filters, each followed by 2×2 max-pooling,
    then Flatten, optional Dropout, Dense(512, relu) and the output layer. At 150×150×3 with
    two classes it has exactly 3,453,121 parameters, as in the seed's summary table. Inputs are
    pixels rescaled to [0, 1] by the input pipeline, as the seed's ``rescale=1./255`` did.

    Args:
        image_size: side of the square RGB input.
        num_classes: number of classes (2 → one sigmoid unit, more → softmax).
        dropout: rate of the Dropout layer before Dense(512); 0 leaves it out.
        dtype: Keras dtype policy of the hidden layers (the output layer is float32).

    Returns:
        An uncompiled ``keras.Sequential`` model.
    """
    from catdog.model.backend import keras

    units, activation = _head(num_classes)
    # Every layer named as Keras names them in a fresh process (conv2d, conv2d_1, ...): never
    # left to Keras' per-thread name counter, so a model built in a long-lived thread (the
    # dashboard's trainings) is named the same way every time.
    layers: list[Any] = [keras.Input(shape=(image_size, image_size, 3), name="image")]
    for k, filters in enumerate((32, 64, 128, 128)):
        suffix = f"_{k}" if k else ""
        layers.append(keras.layers.Conv2D(filters, (3, 3), activation="relu", dtype=dtype,
                                          name=f"conv2d{suffix}"))  # fmt: skip
        layers.append(keras.layers.MaxPooling2D((2, 2), dtype=dtype, name=f"max_pooling2d{suffix}"))
    layers.append(keras.layers.Flatten(dtype=dtype, name="flatten"))
    if dropout > 0:
        layers.append(keras.layers.Dropout(dropout, dtype=dtype, name="dropout"))
    layers.append(keras.layers.Dense(512, activation="relu", dtype=dtype, name="dense"))
    layers.append(keras.layers.Dense(units, activation=activation, dtype="float32", name="dense_1"))
    return keras.Sequential(layers, name="seed_convnet")


def build_catdog_net(
    image_size: int, num_classes: int, dropout: float = 0.3, dtype: str = "float32"
) -> keras.Model:
    """catdog's own compact residual convnet (see :mod:`catdog.model.catdognet`)."""
    from catdog.model.catdognet import build_catdog_net as build

    return build(image_size, num_classes, dropout, dtype)


def build_vgg16(
    image_size: int,
    num_classes: int,
    dropout: float = 0.5,
    dtype: str = "float32",
    weights: str | None = None,
) -> keras.Model:
    """VGG16's convolutional base under the book's head (see :mod:`catdog.model.pretrained`)."""
    from catdog.model.pretrained import build_pretrained

    return build_pretrained("VGG16", image_size, num_classes, dropout, dtype, weights)


def build_mobilenet_v3_small(
    image_size: int,
    num_classes: int,
    dropout: float = 0.2,
    dtype: str = "float32",
    weights: str | None = None,
) -> keras.Model:
    """MobileNetV3Small's base under a pooled head (see :mod:`catdog.model.pretrained`)."""
    from catdog.model.pretrained import build_pretrained

    return build_pretrained("MobileNetV3Small", image_size, num_classes, dropout, dtype, weights)


NETWORKS: dict[str, Network] = {
    network.name: network
    for network in (
        Network(
            name="seed-convnet",
            description="The seed's convnet (Deep Learning with Python §5.2): four conv/pool "
            "blocks, Flatten, optional Dropout, Dense(512); 3,453,121 parameters at 150 px.",
            build=build_seed_convnet,
            min_image_size=SEED_MIN_SIZE,
        ),
        Network(
            name="catdog-net",
            description="catdog's compact residual convnet: batch norm, global pooling.",
            build=build_catdog_net,
            image_size=112,
            dropout=0.3,
        ),
        Network(
            name="vgg16",
            description="VGG16's ImageNet convolutional base (a 56.2 MB download) under the "
            "book's dense head (§5.3).",
            build=build_vgg16,
            dropout=0.5,
            backbone="VGG16",
        ),
        Network(
            name="mobilenet-v3-small",
            description="MobileNetV3Small's ImageNet base (a 4.1 MB download) under a pooled head.",
            build=build_mobilenet_v3_small,
            image_size=160,
            dropout=0.2,
            backbone="MobileNetV3Small",
        ),
    )
}


def get_network(name: str) -> Network:
    """Return the registry entry called ``name``.

    Raises:
        ModelError: no such network; the message lists the names that exist.
    """
    try:
        return NETWORKS[name]
    except KeyError:
        known = ", ".join(sorted(NETWORKS))
        raise ModelError(f"unknown network {name!r}; choose one of: {known}") from None


def build_model(
    name: str,
    *,
    image_size: int | None = None,
    num_classes: int = 2,
    dropout: float | None = None,
    precision: str = "float32",
    weights: str | None = None,
) -> keras.Model:
    """Build (uncompiled) the network ``name``; unset options take the network's defaults.

    ``precision`` is the arithmetic of the hidden layers (float32, bfloat16 or float16; an
    ``auto`` setting is resolved by :func:`catdog.train.precision.choose_precision` first).
    ``weights`` is a pretrained model's backbone weights file
    (:func:`catdog.model.weights.find_weights`); without it the base has random weights.
    The training settings (``dropout``) are taken as given: :class:`catdog.train.config.TrainConfig`
    checks them.

    Raises:
        ModelError: an unknown network or precision, fewer than 2 classes, or images too small
            for the model.
    """
    spec = get_network(name)
    size = spec.image_size if image_size is None else image_size
    rate = spec.dropout if dropout is None else dropout
    if num_classes < 2:
        raise ModelError(f"a classifier needs at least 2 classes, got {num_classes}")
    if problem := image_size_error(spec, size):
        raise ModelError(problem)
    if precision not in POLICIES:
        raise ModelError(f"unknown precision {precision!r}; choose one of {', '.join(POLICIES)}")
    if weights is None:
        return spec.build(size, num_classes, rate, POLICIES[precision])
    if spec.backbone is None:
        raise ModelError(f"{name} has no pretrained base to load weights into")
    return spec.build(size, num_classes, rate, POLICIES[precision], weights=weights)


def compile_model(
    model: keras.Model,
    *,
    num_classes: int,
    learning_rate: float,
    optimizer: str = "rmsprop",
    label_smoothing: float = 0.0,
    weight_decay: float = 0.0,
) -> keras.Model:
    """Compile as the seed does: cross-entropy, the given optimizer and learning rate, accuracy.

    Binary problems use ``binary_crossentropy`` (sigmoid output), others
    ``categorical_crossentropy`` (softmax output, one-hot labels). ``weight_decay`` is AdamW's
    (decoupled: each step a weight shrinks by ``learning_rate × weight_decay`` of itself).
    The training settings are taken as given: :class:`catdog.train.config.TrainConfig` checks
    them.

    Raises:
        ModelError: an unknown optimizer, or weight decay for one that would ignore it.
    """
    from catdog.model.backend import keras

    if problem := weight_decay_error(optimizer, weight_decay):
        raise ModelError(problem)
    if optimizer == "rmsprop":
        opt = keras.optimizers.RMSprop(learning_rate=learning_rate)
    elif optimizer == "adamw":
        from catdog.model.optim import FusedAdamW  # Keras' AdamW, one kernel per weight

        opt = FusedAdamW(learning_rate=learning_rate, weight_decay=weight_decay)
    elif optimizer == "adam":
        opt = keras.optimizers.Adam(learning_rate=learning_rate)
    else:
        raise ModelError(f"unknown optimizer {optimizer!r}; choose one of {', '.join(OPTIMIZERS)}")
    loss: Any = "binary_crossentropy" if num_classes == 2 else "categorical_crossentropy"
    if label_smoothing > 0:
        loss_class = (
            keras.losses.BinaryCrossentropy
            if num_classes == 2
            else keras.losses.CategoricalCrossentropy
        )
        loss = loss_class(label_smoothing=label_smoothing)
    model.compile(optimizer=opt, loss=loss, metrics=["accuracy"])
    return model


def summary_rows(model: keras.Model) -> list[dict[str, Any]]:
    """The model summary as rows for display: layer name, type, output shape, parameters.

    The parameter column sums to ``model.count_params()``, Keras' own total.
    """
    rows = []
    for layer in model.layers:
        shape = getattr(layer, "output", None)
        shape = tuple(shape.shape) if shape is not None else None
        rows.append(
            {
                "layer": layer.name,
                "type": type(layer).__name__,
                "output_shape": str(shape).replace("None", "batch") if shape else "",
                "params": int(layer.count_params()),
            }
        )
    return rows
