"""Pretrained backbones (Deep Learning with Python §5.3): a Keras Applications convolutional base
with ImageNet weights under a small new head, trained in two phases.

The base is built inline, its layers part of the model's own graph, so Grad-CAM reaches its last
feature map and a saved model is one plain ``.keras`` file. Each model takes what every catdog
model takes, pixels scaled to [0, 1] (``catdog.model.pixels.scale_pixels``), and does its
backbone's own input preprocessing inside, so prediction, evaluation, Grad-CAM and exports need
nothing model-specific:

- VGG16 expects Caffe-style input (BGR channels, ImageNet mean subtracted, 0–255), as
  ``keras.applications.vgg16.preprocess_input`` makes it;
- MobileNetV3 expects [-1, 1], as its ``include_preprocessing=True`` makes it from 0–255.

Both are done by one frozen built-in layer (:func:`preprocess`): no Lambda, no custom class, so
models load in safe mode and exports load with plain Keras.

Phase 1 (feature extraction) trains the head on the frozen base; phase 2 (fine-tuning) also
unfreezes the base's top block (see :func:`set_phase`). Batch-norm layers stay frozen in both,
which in Keras 3 also keeps them in inference mode.
"""

from __future__ import annotations

import re
import threading
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np

from catdog.model.backbones import BACKBONES, Backbone
from catdog.model.backend import keras
from catdog.model.errors import ModelError

# The ImageNet channel means (B, G, R) that Caffe-style preprocessing subtracts.
CAFFE_MEAN_BGR = (103.939, 116.779, 123.68)
PREPROCESS = "preprocess"  # name of the preprocessing layer
HEAD = "head_"  # prefix of the head's layer names


# Held while the global dtype policy is changed: the dashboard may build two models at once.
_POLICY_LOCK = threading.Lock()


@contextmanager
def _global_policy(dtype: str) -> Iterator[None]:
    """Keras Applications take no dtype argument: build them under ``dtype`` as global policy."""
    with _POLICY_LOCK:
        previous = keras.config.dtype_policy()
        keras.config.set_dtype_policy(dtype)
        try:
            yield
        finally:
            keras.config.set_dtype_policy(previous)


def _base(backbone: Backbone, inputs: Any, image_size: int | None) -> keras.Model:
    """The backbone without its top, on ``inputs`` (a tensor) or standalone at ``image_size``."""
    where: dict[str, Any] = (
        {"input_shape": (image_size, image_size, 3)} if inputs is None else {"input_tensor": inputs}
    )
    if backbone.name == "VGG16":
        return keras.applications.VGG16(include_top=False, weights=None, **where)
    if backbone.name == "MobileNetV3Small":
        return keras.applications.MobileNetV3Small(
            include_top=False, weights=None, include_preprocessing=False, **where
        )
    raise ModelError(f"no builder for backbone {backbone.name!r}")


def preprocess(backbone: Backbone, pixels: Any) -> Any:
    """Turn [0, 1] RGB pixels (a tensor) into what ``backbone`` was trained on, with one frozen
    built-in layer named ``preprocess`` (so an exported model needs no catdog code):

    - VGG16 (Caffe style: ×255, RGB → BGR, ImageNet mean off): a Dense layer over the channels
      whose kernel swaps R and B and multiplies by 255 and whose bias is minus the mean;
    - MobileNetV3 ([-1, 1]): ``Rescaling(2, offset=-1)``.

    Both compute in float32, whatever the model's precision (the mean subtraction needs it).
    """
    if backbone.name != "VGG16":
        return keras.layers.Rescaling(2.0, offset=-1.0, name=PREPROCESS, dtype="float32")(pixels)
    layer = keras.layers.Dense(3, name=PREPROCESS, dtype="float32", trainable=False)
    out = layer(pixels)
    swap = np.eye(3, dtype="float32")[::-1] * 255.0  # output channel c takes input 2 - c
    layer.set_weights([swap, -np.asarray(CAFFE_MEAN_BGR, dtype="float32")])
    return out


def build_pretrained(
    backbone_name: str,
    image_size: int,
    num_classes: int,
    dropout: float,
    dtype: str = "float32",
    weights: str | Path | None = None,
) -> keras.Model:
    """A pretrained base under a new head, ready for phase 1 (base frozen), uncompiled.

    VGG16 gets the book's head: Flatten, Dense(256, relu), Dropout, output. MobileNetV3 gets
    global average pooling, Dropout, output.

    Args:
        backbone_name: a key of :data:`catdog.model.backbones.BACKBONES`.
        image_size: side of the square RGB input (pixels scaled to [0, 1]).
        num_classes: 2 → one sigmoid unit; more → softmax (at least 2: the registry's
            :func:`~catdog.model.registry.build_model` checks).
        dropout: rate of the head's Dropout layer (0 leaves it out).
        dtype: Keras dtype policy of the hidden layers (the output layer is float32).
        weights: the backbone's weights file (Keras' ``.h5`` or a ``.weights.h5``); None
            leaves the base at random weights (for timing and tests of the wiring).

    Raises:
        ModelError: the weights file does not fit the backbone.
    """
    backbone = BACKBONES[backbone_name]
    units, activation = (1, "sigmoid") if num_classes == 2 else (num_classes, "softmax")
    inputs = keras.Input(shape=(image_size, image_size, 3), name="image")
    with _global_policy(dtype):
        base = _base(backbone, preprocess(backbone, inputs), None)
    x = base.output
    if backbone.name == "VGG16":
        x = keras.layers.Flatten(name=f"{HEAD}flatten", dtype=dtype)(x)
        x = keras.layers.Dense(256, activation="relu", name=f"{HEAD}dense", dtype=dtype)(x)
    else:
        x = keras.layers.GlobalAveragePooling2D(name=f"{HEAD}pool", dtype=dtype)(x)
    if dropout > 0:
        x = keras.layers.Dropout(dropout, name=f"{HEAD}dropout", dtype=dtype)(x)
    outputs = keras.layers.Dense(units, activation=activation, name=f"{HEAD}output",
                                 dtype="float32")(x)  # fmt: skip
    model = keras.Model(inputs, outputs, name=f"{backbone.name.lower()}_transfer")
    if weights is not None:
        load_base_weights(model, backbone, weights, image_size)
    set_phase(model, 1, backbone.top_block)
    return model


def base_layers(model: keras.Model) -> list[keras.layers.Layer]:
    """The pretrained base's layers of ``model``, in order (not the input, preprocessing or
    head)."""
    return [
        layer
        for layer in model.layers
        if not isinstance(layer, keras.layers.InputLayer)
        and layer.name != PREPROCESS
        and not layer.name.startswith(HEAD)
    ]


def _loaded_standalone(
    backbone: Backbone, weights: str | Path, image_size: int, shown: str
) -> keras.Model:
    """A standalone base of ``image_size`` with ``weights`` loaded, as Keras loads them (its
    ``.h5`` files and ``.weights.h5`` files alike); ``shown`` names the file in errors."""
    from catdog.model.model_files import ModelFileError, check_weights_h5

    try:  # its structure first: no tensor declared that it does not hold, none too big
        check_weights_h5(weights, shown)
    except ModelFileError as exc:
        raise ModelError(str(exc)) from exc
    standalone = _base(backbone, None, image_size)
    problem = f"{shown} is not a weights file of {backbone.name}"
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            standalone.load_weights(str(weights))
    except Exception as exc:  # whatever Keras or h5py raise: ValueError, OSError, TypeError...
        raise ModelError(f"{problem} ({_first_line(exc)})") from exc
    # Keras only warns when parts of a file do not fit: here that would leave random weights.
    skipped = [str(w.message) for w in caught if "freshly-initialized" in str(w.message)]
    if skipped:
        raise ModelError(f"{problem} ({_first_line(skipped[0])})")
    return standalone


def _first_line(problem: object, limit: int = 160) -> str:
    """What a Keras loading error says, in one line of at most ``limit`` characters (Keras'
    run to pages)."""
    text = str(problem)
    if found := re.search(r"A total of (\d+) objects could not be loaded.*?name=(\w+)", text, re.S):
        return f"{found[1]} of the base's layers found no weights in it, {found[2]} first"
    line = (text.strip().splitlines() or [""])[0].rstrip(".:")
    return line if len(line) <= limit else line[: limit - 1] + "…"


def check_base_weights(backbone: Backbone, weights: str | Path, shown: str | None = None) -> int:
    """Check that ``weights`` loads into ``backbone``'s base as training loads it.

    Args:
        backbone: the base.
        weights: the file.
        shown: the file's name in the message (default: its path).

    Returns:
        The number of weighted layers it holds.

    Raises:
        ModelError: it is not a weights file of ``backbone``.
    """
    standalone = _loaded_standalone(backbone, weights, 32, shown or str(weights))
    return sum(1 for layer in standalone.layers if layer.weights)


def load_base_weights(
    model: keras.Model, backbone: Backbone, weights: str | Path, image_size: int
) -> int:
    """Load the backbone's weights file into ``model``'s base, layer by layer (by name).

    Keras loads the file into a standalone base of the same shape (its ``.h5`` files and
    ``.weights.h5`` files alike); each weighted layer's values are then copied over.

    Returns:
        The number of weighted layers loaded.

    Raises:
        ModelError: the file cannot be read as this backbone's weights.
    """
    standalone = _loaded_standalone(backbone, weights, image_size, str(weights))
    source = {layer.name: layer for layer in standalone.layers if layer.weights}
    loaded = 0
    for layer in base_layers(model):
        if layer.weights:
            if layer.name not in source:
                raise ModelError(f"{weights} has no weights for {backbone.name}'s {layer.name}")
            layer.set_weights(source[layer.name].get_weights())
            loaded += 1
    if loaded != len(source):
        raise ModelError(f"{weights}: {len(source)} weighted layers, the base has {loaded}")
    return loaded


def set_phase(model: keras.Model, phase: int, fine_tune_from: str) -> bool:
    """Freeze the base for phase 1; in phase 2 unfreeze it from ``fine_tune_from`` on.

    Batch-norm layers stay frozen (and so in inference mode) in both phases; the head always
    trains. The model must be compiled again after a change for it to take effect.

    Args:
        model: a model from :func:`build_pretrained` (or its saved copy).
        phase: 1 (feature extraction) or 2 (fine-tuning).
        fine_tune_from: the name of the first base layer phase 2 trains.

    Returns:
        Whether any layer's trainable flag changed.

    Raises:
        ModelError: ``fine_tune_from`` is not a layer of the base.
    """
    layers = base_layers(model)
    names = [layer.name for layer in layers]
    if fine_tune_from not in names:
        weighted = [layer.name for layer in layers if layer.weights]
        raise ModelError(
            f"{fine_tune_from!r} is not a layer of {model.name}'s base; its last weighted "
            f"layers are {', '.join(weighted[-4:])}"
        )
    start = names.index(fine_tune_from) if phase == 2 else len(layers)
    changed = False
    for index, layer in enumerate(layers):
        trainable = index >= start and not isinstance(layer, keras.layers.BatchNormalization)
        changed |= layer.trainable != trainable
        layer.trainable = trainable
    for layer in model.layers:
        if layer.name.startswith(HEAD) and not layer.trainable:
            layer.trainable, changed = True, True
    return changed
