"""Grad-CAM heatmaps: exact on hand-weighted models, right-shaped on the real architectures."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from catdog.data.images import ImageError
from catdog.inference.explain import (
    PALETTE,
    ExplainError,
    colorize,
    feature_layer,
    grad_cam,
    heatmap_jpeg,
    overlay,
)
from catdog.model.backend import keras
from catdog.model.registry import build_model


def _patch_model(units: int, scale: float = 1.0) -> keras.Model:
    """image → 1×1 conv passing each colour channel through → global average → dense head.

    With ``units == 1`` the head is one sigmoid unit reading the mean brightness of the red
    channel (× ``scale``); with 3 it is a softmax whose class c reads channel c.
    """
    inputs = keras.Input(shape=(8, 8, 3))
    x = keras.layers.Conv2D(3, 1, activation="relu", name="features")(inputs)
    x = keras.layers.GlobalAveragePooling2D()(x)
    activation = "sigmoid" if units == 1 else "softmax"
    outputs = keras.layers.Dense(units, activation=activation, name="head")(x)
    model = keras.Model(inputs, outputs)
    model.get_layer("features").set_weights([np.eye(3).reshape(1, 1, 3, 3), np.zeros(3)])
    kernel = np.eye(3)[:, :units] * scale
    model.get_layer("head").set_weights([kernel, np.zeros(units)])
    return model


def _image_with_patches(*patches: tuple[int, int, int]) -> np.ndarray:
    """An 8×8 black image with a 2×2 patch of full ``channel`` at each (row, col, channel)."""
    image = np.zeros((8, 8, 3), dtype=np.float32)
    for row, col, channel in patches:
        image[row : row + 2, col : col + 2, channel] = 1.0
    return image


def test_binary_heatmap_lights_the_evidence_for_the_class_and_nothing_for_the_other() -> None:
    model = _patch_model(units=1)
    image = _image_with_patches((5, 1, 0))  # red patch: evidence for class 1
    (heat,) = grad_cam(model, image[None], 1)
    expected = np.zeros((8, 8))
    expected[5:7, 1:3] = 1.0
    np.testing.assert_allclose(heat, expected, atol=1e-6)
    (against,) = grad_cam(model, image[None], 0)  # the patch argues against class 0
    np.testing.assert_array_equal(against, np.zeros((8, 8)))


def test_a_saturated_prediction_still_has_a_heatmap() -> None:
    model = _patch_model(units=1, scale=1e4)  # the sigmoid's output is exactly 1.0 in float32
    image = _image_with_patches((0, 6, 0))
    assert float(model.predict_on_batch(image[None])[0, 0]) == 1.0
    (heat,) = grad_cam(model, image[None], 1)
    assert heat.max() == 1.0 and np.unravel_index(heat.argmax(), heat.shape) == (0, 6)


def test_softmax_heatmaps_follow_each_images_own_class() -> None:
    model = _patch_model(units=3)
    image = _image_with_patches((0, 0, 0), (6, 6, 1))  # red top-left, green bottom-right
    red, green = grad_cam(model, np.stack([image, image]), [0, 1])
    assert red[0, 0] == pytest.approx(1.0) and red[6, 6] == 0.0
    assert green[6, 6] == pytest.approx(1.0) and green[0, 0] == 0.0
    (blue,) = grad_cam(model, image[None], 2)  # no blue anywhere: no evidence
    np.testing.assert_array_equal(blue, np.zeros((8, 8)))


def test_the_real_architectures_map_their_last_feature_map() -> None:
    seed = build_model("seed-convnet", image_size=150, num_classes=2)
    assert isinstance(seed.get_layer(feature_layer(seed)), keras.layers.MaxPooling2D)
    net = build_model("catdog-net", image_size=64, num_classes=2)  # bfloat16 compute
    images = np.random.default_rng(0).random((2, 150, 150, 3), dtype=np.float32)
    for model, size, side in ((seed, 150, 7), (net, 64, 2)):
        heat = grad_cam(model, images[:, :size, :size], [0, 1])
        assert heat.shape == (2, side, side) and heat.dtype == np.float64
        assert heat.min() >= 0.0 and heat.max() <= 1.0


def test_grad_cam_names_what_it_cannot_do() -> None:
    model = _patch_model(units=1)
    with pytest.raises(ExplainError, match="class index out of range for a 2-class model"):
        grad_cam(model, np.zeros((1, 8, 8, 3)), 2)
    inputs = keras.Input(shape=(4,))
    flat = keras.Model(inputs, keras.layers.Dense(1)(inputs), name="flat")
    with pytest.raises(ExplainError, match="model 'flat' has no layer with a spatial output"):
        grad_cam(flat, np.zeros((1, 4)), 0)
    inputs = keras.Input(shape=(8, 8, 3))
    pooled = keras.layers.GlobalAveragePooling2D()(inputs)
    odd = keras.Model(inputs, keras.layers.Activation("sigmoid")(pooled), name="odd")
    with pytest.raises(ExplainError, match="ends in a Activation, not a Dense layer"):
        grad_cam(odd, np.zeros((1, 8, 8, 3)), 0)


def test_overlay_keeps_the_photo_where_there_is_no_heat() -> None:
    photo = Image.fromarray(np.full((30, 50, 3), 90, dtype=np.uint8))
    heat = np.zeros((4, 4))
    heat[0, 0] = 1.0
    out = overlay(photo, heat, strength=1.0)
    assert out.size == (50, 30) and out.mode == "RGB"
    pixels = np.asarray(out)
    assert tuple(pixels[0, 0]) == tuple(PALETTE[-1].astype(np.uint8))  # full heat: full colour
    assert tuple(pixels[-1, -1]) == (90, 90, 90)  # no heat: the photo unchanged
    np.testing.assert_array_equal(np.asarray(overlay(photo, np.zeros((4, 4)))), pixels * 0 + 90)
    assert tuple(colorize(np.array([0.0]))[0]) == tuple(PALETTE[0].astype(np.uint8))
    half = np.asarray(overlay(photo, np.full((4, 4), 0.5), strength=0.5), dtype=float)
    expected = 90 * 0.75 + colorize(np.array([0.5]))[0].astype(float) * 0.25  # a quarter blend
    assert np.abs(half - expected).max() <= 2  # 8-bit heat levels and mask
    with pytest.raises(ValueError, match=r"strength must be between 0 and 1, got 1\.5"):
        overlay(photo, heat, strength=1.5)
    with pytest.raises(ValueError, match=r"heat must be a 2-D map, got shape \(1, 4, 4\)"):
        overlay(photo, heat[None])


def test_heatmap_jpeg_shrinks_the_photo_and_tints_it() -> None:
    buffer = io.BytesIO()
    Image.fromarray(np.full((300, 600, 3), 90, dtype=np.uint8)).save(buffer, "PNG")
    heat = np.zeros((2, 2))
    heat[:, 1] = 1.0  # the right half
    out = Image.open(io.BytesIO(heatmap_jpeg(buffer.getvalue(), heat, max_side=200)))
    assert (out.format, out.size) == ("JPEG", (200, 100))
    left, right = np.asarray(out)[50, 10], np.asarray(out)[50, 190]
    assert np.abs(left.astype(int) - 90).max() <= 3  # untouched (JPEG rounding)
    assert right[0] > 150 and right[2] < 60  # tinted red
    with pytest.raises(ImageError, match="notes is not an image"):
        heatmap_jpeg(b"shopping list", heat, name="notes")


def test_a_layer_after_the_features_cannot_be_mapped() -> None:
    model = build_model("seed-convnet", image_size=150, num_classes=2)  # Sequential
    head = model.layers[-1].name
    with pytest.raises(ExplainError, match=f"the class scores do not depend on layer '{head}'"):
        grad_cam(model, np.zeros((1, 150, 150, 3)), 1, layer=head)
