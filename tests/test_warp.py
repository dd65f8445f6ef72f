"""The fused warp: Keras 2 fidelity of its matrix and pixels, XLA vs the stock op, the layer."""

from __future__ import annotations

import numpy as np
import pytest

from catdog.train.augment import AugmentConfig
from catdog.train.presets import STRONG_AUGMENTATION

# --- fidelity to Keras 2 -----------------------------------------------------------------------


def keras2_matrix(
    theta: float, tx: float, ty: float, shear: float, zx: float, zy: float, h: int, w: int
) -> np.ndarray:
    """keras-preprocessing's apply_affine_transform matrix: output (row, col) → input."""
    theta, shear = np.deg2rad(theta), np.deg2rad(shear)
    rotate = np.array(
        [[np.cos(theta), -np.sin(theta), 0], [np.sin(theta), np.cos(theta), 0], [0, 0, 1]]
    )
    shift = np.array([[1, 0, tx], [0, 1, ty], [0, 0, 1]])
    shear_m = np.array([[1, -np.sin(shear), 0], [0, np.cos(shear), 0], [0, 0, 1]])
    zoom = np.array([[zx, 0, 0], [0, zy, 0], [0, 0, 1]])
    o_x, o_y = h / 2 - 0.5, w / 2 - 0.5
    offset = np.array([[1, 0, o_x], [0, 1, o_y], [0, 0, 1]])
    reset = np.array([[1, 0, -o_x], [0, 1, -o_y], [0, 0, 1]])
    return offset @ rotate @ shift @ shear_m @ zoom @ reset


PARAMS = [
    (30.0, 4.0, -6.0, 10.0, 0.9, 1.15),
    (-40.0, -8.0, 3.0, -0.2, 1.2, 0.8),
    (0.0, 0.0, 0.0, 0.0, 1.0, 1.0),
]


def test_fused_matrix_matches_keras2() -> None:
    from catdog.train.warp import affine_matrices

    h, w = 30, 40
    theta, tx, ty, shear, zx, zy = (np.array(col) for col in zip(*PARAMS, strict=True))
    for flip in (0.0, 1.0):
        rows = affine_matrices(
            theta, tx, ty, shear, zx, zy, np.full(len(PARAMS), flip), h, w
        ).numpy()
        for params, a in zip(PARAMS, rows, strict=True):
            k = keras2_matrix(*params, h, w)
            for r, c in [(0, 0), (5, 33), (29, 39), (14.5, 19.5)]:
                c_flipped = w - 1 - c if flip else c  # Keras 2 flipped after the warp
                expected = k @ [r, c_flipped, 1]
                got = (a[3] * c + a[4] * r + a[5], a[0] * c + a[1] * r + a[2])
                np.testing.assert_allclose(got, expected[:2], atol=1e-3)


def test_warp_matches_keras2_scipy_pixels() -> None:
    """Keras 2 warped with scipy.ndimage (order=1, mode='nearest'); we must give the same."""
    ndimage = pytest.importorskip("scipy.ndimage")
    from catdog.train.warp import affine_matrices, warp_images

    rng = np.random.default_rng(0)
    image = rng.uniform(0, 255, (24, 32, 3))
    theta, tx, ty, shear, zx, zy = PARAMS[0]
    k = keras2_matrix(theta, tx, ty, shear, zx, zy, 24, 32)
    expected = np.stack(
        [
            ndimage.affine_transform(image[..., ch], k[:2, :2], k[:2, 2], order=1, mode="nearest")
            for ch in range(3)
        ],
        axis=-1,
    )
    rows = affine_matrices([theta], [tx], [ty], [shear], [zx], [zy], [0.0], 24, 32)
    for xla in (True, False):
        got = warp_images(image[None].astype(np.float32), rows, "nearest", xla=xla).numpy()[0]
        np.testing.assert_allclose(got, expected, atol=0.05)


@pytest.mark.parametrize("fill_mode", ["nearest", "reflect", "constant"])
def test_xla_warp_agrees_with_the_stock_op(fill_mode: str) -> None:
    from catdog.train.warp import affine_matrices, warp_images

    rng = np.random.default_rng(1)
    images = rng.uniform(0, 255, (6, 20, 28, 3)).astype(np.float32)
    rows = affine_matrices(
        rng.uniform(-40, 40, 6),
        rng.uniform(-8, 8, 6),
        rng.uniform(-8, 8, 6),
        rng.uniform(-5, 5, 6),
        rng.uniform(0.8, 1.2, 6),
        rng.uniform(0.8, 1.2, 6),
        rng.random(6) < 0.5,
        20,
        28,
    )
    fast = warp_images(images, rows, fill_mode, xla=True).numpy()
    stock = warp_images(images, rows, fill_mode, xla=False).numpy()
    np.testing.assert_allclose(fast, stock, atol=0.01)


STRONG = STRONG_AUGMENTATION  # catdog-net's: every transform on, reflected borders, cutout


@pytest.mark.parametrize(
    "config",
    [AugmentConfig(), STRONG, AugmentConfig(brightness_range=0.3, cutout=0.3, fill_mode="reflect")],
    ids=["seed", "catdog-net", "brightness+cutout"],
)
def test_compiled_pass_agrees_with_the_plain_one(config: AugmentConfig) -> None:
    """XLA (one or two compiled passes) and plain TensorFlow apply the same draws alike."""
    from catdog.model.backend import tf
    from catdog.train.warp import augment_images

    images = np.random.default_rng(2).integers(0, 256, (6, 20, 28, 3), dtype=np.uint8)
    seed = tf.constant([5, 6], tf.int64)
    fast = augment_images(images, config, seed, xla=True).numpy()
    plain = augment_images(images, config, seed, xla=False).numpy()
    assert fast.dtype == plain.dtype == np.float32 and fast.shape == images.shape
    np.testing.assert_allclose(fast, plain, atol=0.05)
    assert np.abs(fast - images).max() > 10  # the images really were transformed


def test_uint8_input_and_scale_are_the_same_as_float_then_divide() -> None:
    from catdog.model.backend import tf
    from catdog.model.pixels import PIXEL_SCALE
    from catdog.train.warp import augment_images

    images = np.random.default_rng(3).integers(0, 256, (4, 16, 16, 3), dtype=np.uint8)
    seed = tf.constant([1, 2], tf.int64)
    as_float = augment_images(images.astype(np.float32), STRONG, seed).numpy()
    scaled = augment_images(images, STRONG, seed, scale=PIXEL_SCALE).numpy()
    np.testing.assert_allclose(scaled, as_float * PIXEL_SCALE, atol=1e-5)
    assert scaled.min() >= 0.0 and scaled.max() <= 1.0


def test_wrap_tiles_the_image() -> None:
    from catdog.train.warp import warp_images

    image = np.random.default_rng(2).uniform(0, 255, (1, 8, 10, 3)).astype(np.float32)
    shift = np.array([[1, 0, 3.5, 0, 1, 0, 0, 0]], np.float32)  # sample 3.5 px to the right
    got = warp_images(image, shift, "wrap", xla=True).numpy()
    expected = 0.5 * np.roll(image, -3, axis=2) + 0.5 * np.roll(image, -4, axis=2)
    np.testing.assert_allclose(got, expected, atol=1e-3)


# --- the Keras layer ---------------------------------------------------------------------------


def test_random_affine_layer() -> None:
    from reference_augment import RandomAffine

    images = np.random.default_rng(7).uniform(0, 255, (4, 32, 32, 3)).astype(np.float32)
    layer = RandomAffine(AugmentConfig(), seed=3)
    np.testing.assert_array_equal(np.asarray(layer(images, training=False)), images)
    first = np.asarray(layer(images, training=True))
    assert not np.allclose(first, images)
    assert not np.allclose(np.asarray(layer(images, training=True)), first)  # new draws
    twin = RandomAffine.from_config(layer.get_config())
    assert twin.config == layer.config
    np.testing.assert_allclose(np.asarray(twin(images, training=True)), first, atol=1e-3)
