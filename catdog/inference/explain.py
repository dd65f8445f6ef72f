"""Where the model looked: Grad-CAM heatmaps over the photos it classified.

Grad-CAM (Selvaraju et al., 2017; the "heatmaps of class activation" of Chollet's §5.4) weighs
each channel of the model's last spatial feature map by how much it raises the score of a
class (the gradient, averaged over the map), sums the weighted channels and keeps the positive
part. The result is a coarse map — 7×7 for the seed's convnet at 150 px, 4×4 for catdog-net
at 112 px — of the regions that argued *for* that class; :func:`overlay` stretches it over the
photo. The score is the class' logit, the output layer's input to its sigmoid or softmax, so
a saturated, very confident prediction still has gradients.

Importing this module is cheap; Keras is imported when a heatmap is computed.
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from PIL import Image

from catdog.data.images import open_rgb

if TYPE_CHECKING:
    from catdog.model.backend import keras

# Colour stops of the heatmap palette (dark blue → cyan → yellow → red), 0 = no evidence.
PALETTE = np.array(
    [[0, 0, 80], [0, 90, 255], [0, 230, 230], [255, 230, 0], [255, 60, 0], [200, 0, 0]],
    dtype=np.float64,
)


class ExplainError(ValueError):
    """A model whose decisions Grad-CAM cannot trace (no spatial feature map, no dense head)."""


def feature_layer(model: keras.Model) -> str:
    """The name of the model's last layer with a spatial (height × width × channels) output.

    Raises:
        ExplainError: the model has no such layer.
    """
    from catdog.model.backend import keras

    for layer in reversed(model.layers):
        shape = getattr(getattr(layer, "output", None), "shape", None)
        if shape is not None and len(shape) == 4 and not isinstance(layer, keras.layers.InputLayer):
            return layer.name
    raise ExplainError(f"model {model.name!r} has no layer with a spatial output to map")


def _head(model: keras.Model) -> Any:
    from catdog.model.backend import keras

    head = model.layers[-1]
    if not isinstance(head, keras.layers.Dense):
        raise ExplainError(
            f"model {model.name!r} ends in a {type(head).__name__}, not a Dense layer; "
            "Grad-CAM here needs the class scores of a dense head"
        )
    return head


def feature_probe(model: keras.Model) -> tuple[Any, np.ndarray, np.ndarray]:
    """A way to read a model's penultimate features: what its dense head takes in.

    Returns:
        ``(probe, kernel, bias)``: ``probe(x)`` gives ``(features, output)`` for a batch of
        scaled images in one compiled pass; ``kernel`` and ``bias`` are the head's weights as
        float64, so ``features @ kernel + bias`` are the logits.

    Raises:
        ExplainError: the model does not end in a dense layer.
    """
    from catdog.model.backend import keras

    head = _head(model)
    if isinstance(model, keras.Sequential):  # see _probe: rebuild the chain of layers
        inputs = keras.Input(shape=tuple(model.input_shape[1:]))
        x = inputs
        for step in model.layers[:-1]:
            x = step(x)
        sub = keras.Model(inputs, [x, head(x)])
    else:
        sub = keras.Model(model.inputs, [head.input, model.outputs[0]])
    kernel = np.asarray(head.kernel, dtype=np.float64)
    units = kernel.shape[-1]
    bias = np.asarray(head.bias, dtype=np.float64) if head.use_bias else np.zeros(units)

    def probe(x: np.ndarray) -> tuple[Any, Any]:
        features, output = sub.predict_on_batch(x)
        return features, output

    return probe, kernel, bias


def _probe(model: keras.Model, feature: Any, head: Any) -> Any:
    """``forward(x, tape) -> (feature map, head input)``, the map watched by ``tape``."""
    from catdog.model.backend import keras

    if isinstance(model, keras.Sequential):
        # A reloaded Sequential model's layers keep more than one graph node, so their
        # ``output`` may not be the tensor the next layer reads: run the layers in order.
        def forward(x: Any, tape: Any) -> tuple[Any, Any]:
            fmap = None
            for step in model.layers[:-1]:
                x = step(x, training=False)
                if step is feature:
                    tape.watch(x)
                    fmap = x
            return fmap, x

        return forward
    probe = keras.Model(model.inputs, [feature.output, head.input])

    def forward_functional(x: Any, tape: Any) -> tuple[Any, Any]:
        fmap, pooled = probe(x, training=False)
        tape.watch(fmap)
        return fmap, pooled

    return forward_functional


def grad_cam(
    model: keras.Model,
    images: np.ndarray,
    class_indices: int | np.ndarray | list[int],
    layer: str | None = None,
) -> np.ndarray:
    """Grad-CAM heatmaps of ``images`` for the given classes.

    Args:
        model: a trained catdog model (one sigmoid unit for 2 classes, or a softmax head).
        images: float array ``[N, size, size, 3]``, already scaled as the model expects
            (:func:`catdog.model.pixels.scale_pixels`).
        class_indices: the class to explain, one for all images or one per image (for a
            binary model, 1 is the sigmoid's class and 0 the other one).
        layer: the feature map to use; default :func:`feature_layer`.

    Returns:
        Float array ``[N, h, w]`` in [0, 1] at the feature map's resolution; each map is
        scaled so its strongest cell is 1 (all zeros where nothing argued for the class).

    Raises:
        ExplainError: the model cannot be traced, or a class index is out of range.
    """
    from catdog.model.backend import tf

    head = _head(model)
    units = int(head.units)
    num_classes = 2 if units == 1 else units
    targets = np.broadcast_to(np.asarray(class_indices, dtype=np.int64), (len(images),))
    if len(targets) and (targets.min() < 0 or targets.max() >= num_classes):
        raise ExplainError(f"class index out of range for a {num_classes}-class model")
    feature = model.get_layer(layer or feature_layer(model))
    forward = _probe(model, feature, head)
    x = tf.convert_to_tensor(np.asarray(images, dtype=np.float32))
    with tf.GradientTape() as tape:
        fmap, pooled = forward(x, tape)
        logits = tf.matmul(tf.cast(pooled, tf.float32), tf.cast(head.kernel, tf.float32))
        logits = logits + tf.cast(head.bias, tf.float32) if head.use_bias else logits
        if units == 1:  # sigmoid: the logit argues for class 1, its negative for class 0
            sign = tf.constant(np.where(targets == 1, 1.0, -1.0), dtype=tf.float32)
            scores = logits[:, 0] * sign
        else:
            scores = tf.gather(logits, tf.constant(targets), axis=1, batch_dims=1)
    grads = tape.gradient(scores, fmap) if fmap is not None else None
    if grads is None:  # the head does not depend on this layer
        raise ExplainError(f"the class scores do not depend on layer {feature.name!r}")
    fmap, grads = tf.cast(fmap, tf.float32), tf.cast(grads, tf.float32)  # bfloat16 models
    weights = tf.reduce_mean(grads, axis=(1, 2), keepdims=True)
    cams = tf.nn.relu(tf.reduce_sum(fmap * weights, axis=-1)).numpy().astype(np.float64)
    peaks = cams.reshape(len(cams), -1).max(axis=1) if len(cams) else np.zeros(0)
    return cams / np.where(peaks > 0, peaks, 1.0)[:, None, None]


def colorize(heat: np.ndarray) -> np.ndarray:
    """Map values in [0, 1] to ``uint8`` RGB colours of :data:`PALETTE`."""
    heat = np.clip(np.asarray(heat, dtype=np.float64), 0.0, 1.0)
    stops = np.linspace(0.0, 1.0, len(PALETTE))
    rgb = [np.interp(heat, stops, PALETTE[:, c]) for c in range(3)]
    return np.stack(rgb, axis=-1).round().astype(np.uint8)


def overlay(image: Image.Image, heat: np.ndarray, strength: float = 0.6) -> Image.Image:
    """The photo with the heatmap stretched over it (as the model saw it: squashed to a square).

    Each pixel is blended towards its heatmap colour in proportion to the heat there, so
    regions that did not argue for the class keep the photo's own colours.

    Args:
        image: the photo, any size (converted to RGB).
        heat: one map from :func:`grad_cam`, values in [0, 1].
        strength: the blend where the heat is 1 (0 = photo only, 1 = colour only).

    Raises:
        ValueError: ``strength`` is outside [0, 1] or ``heat`` is not a 2-D map.
    """
    if not 0.0 <= strength <= 1.0:
        raise ValueError(f"strength must be between 0 and 1, got {strength}")
    heat = np.asarray(heat, dtype=np.float64)
    if heat.ndim != 2:
        raise ValueError(f"heat must be a 2-D map, got shape {heat.shape}")
    rgb = image.convert("RGB")
    # Stretch the map to the photo's size once, as 8-bit levels; the palette and the blend
    # are then lookups done by Pillow in uint8 (no float copies of a full-size photo).
    small = Image.fromarray(np.clip(heat, 0.0, 1.0).astype(np.float32), mode="F")
    levels = small.resize(rgb.size, Image.Resampling.BILINEAR).point(lambda v: v * 255.0)
    levels = levels.convert("L")
    colours = levels.copy()
    colours.putpalette(colorize(np.linspace(0.0, 1.0, 256)).tobytes())  # level i → colour i
    mask = levels.point([round(strength * v) for v in range(256)])
    return Image.composite(colours.convert("RGB"), rgb, mask)


def heatmap_jpeg(
    source: str | Path | bytes, heat: np.ndarray, max_side: int = 400, name: str | None = None
) -> bytes:
    """An image shrunk to fit ``max_side`` (never enlarged) with ``heat`` over it, as JPEG.

    Raises:
        catdog.data.images.ImageError: the file is not a usable image.
    """
    image = open_rgb(source, name=name, min_side=max_side)
    image.thumbnail((max_side, max_side), Image.Resampling.BILINEAR)
    buffer = io.BytesIO()
    overlay(image, heat).save(buffer, "JPEG", quality=90)
    return buffer.getvalue()
