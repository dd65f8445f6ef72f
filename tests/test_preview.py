"""The Augmentation page's NumPy preview: training's TensorFlow maths for the same draws, its
contract (validation, determinism, one slider's draws), and no TensorFlow import."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from catdog.train.augment import FILL_MODES, AugmentConfig
from catdog.train.preview import affine_matrices, apply, draw, preview

HEIGHT, WIDTH = 20, 28  # not square: a swapped row and column would show

# Strong geometry, so every fill mode brings pixels in from outside the image.
GEOMETRY = {
    "rotation_range": 40.0,
    "width_shift_range": 0.3,
    "height_shift_range": 0.3,
    "shear_range": 10.0,
    "zoom_range": 0.3,
}
EXTRAS = {"brightness_range": 0.4, "contrast_range": 0.5, "cutout": 0.3}
CASES = {
    "warp": {**GEOMETRY, "horizontal_flip": False},
    "warp+flip": {**GEOMETRY, "horizontal_flip": True},
    "warp+flip+extras": {**GEOMETRY, "horizontal_flip": True, **EXTRAS},
    "warp+brightness": {**GEOMETRY, "horizontal_flip": False, "brightness_range": 0.4},
    "warp+contrast": {**GEOMETRY, "horizontal_flip": False, "contrast_range": 0.5},
    "warp+cutout": {**GEOMETRY, "horizontal_flip": False, "cutout": 0.3},
}
FLAT_CASES = {  # nothing warped: the fill mode plays no part
    "flip": {"horizontal_flip": True},
    "flip+extras": {"horizontal_flip": True, **EXTRAS},
    "off": {},
}


def only(**settings: object) -> AugmentConfig:
    return AugmentConfig.from_dict({**AugmentConfig.off().to_dict(), **settings})


def images(batch: int = 8) -> np.ndarray:
    return np.random.default_rng(11).integers(0, 256, (batch, HEIGHT, WIDTH, 3), dtype=np.uint8)


def training_apply(batch: np.ndarray, config: AugmentConfig, *, xla: bool) -> np.ndarray:
    """Training's TensorFlow pass (:mod:`catdog.train.warp`) on the NumPy preview's draws."""
    from catdog.model.backend import tf
    from catdog.train.warp import _apply, _PassSpec

    draws = draw(config, len(batch), HEIGHT, WIDTH, seed=4)
    tensors = [tf.constant(d, tf.float32) for d in draws]
    out = _apply(tf.constant(batch), *tensors, tf.constant(1.0), spec=_PassSpec.of(config), xla=xla)
    return out.numpy()


# --- the same maths as training ----------------------------------------------------------------


def test_matrices_are_trainings() -> None:
    from catdog.train import warp

    rng = np.random.default_rng(0)
    b = 12
    params = (
        rng.uniform(-180, 180, b),
        rng.uniform(-10, 10, b),
        rng.uniform(-14, 14, b),
        rng.uniform(-45, 45, b),
        rng.uniform(0.1, 1.9, b),
        rng.uniform(0.1, 1.9, b),
        (rng.random(b) < 0.5).astype(np.float32),
    )
    ours = affine_matrices(*params, HEIGHT, WIDTH)
    theirs = warp.affine_matrices(*params, HEIGHT, WIDTH).numpy()
    assert ours.dtype == np.float32 and ours.shape == (b, 8)
    np.testing.assert_allclose(ours, theirs, atol=1e-3)
    assert np.ptp(ours[:, 2]) > 10  # the offsets really vary


@pytest.mark.parametrize("fill_mode", FILL_MODES)
@pytest.mark.parametrize("case", CASES, ids=list(CASES))
def test_pixels_are_trainings_for_the_same_draws(case: str, fill_mode: str) -> None:
    """Training's XLA pass (its gather warp, here run eagerly) on the same draws, per pixel."""
    config = only(**CASES[case], fill_mode=fill_mode)
    batch = images()
    ours = apply(batch, draw(config, len(batch), HEIGHT, WIDTH, seed=4), config)
    theirs = training_apply(batch, config, xla=True)
    assert ours.dtype == np.float32 and ours.shape == batch.shape
    np.testing.assert_allclose(ours, theirs, atol=0.01)
    assert np.abs(ours - batch).max() > 50  # the images really were transformed


@pytest.mark.parametrize("fill_mode", ["nearest", "reflect"])
def test_pixels_are_the_stock_ops_too(fill_mode: str) -> None:
    """Without XLA, training warps with ``ImageProjectiveTransformV3``: the same pixels (on
    "wrap" and "constant" it has one-pixel seam quirks, so those are checked above only)."""
    config = only(**CASES["warp+flip+extras"], fill_mode=fill_mode)
    batch = images()
    ours = apply(batch, draw(config, len(batch), HEIGHT, WIDTH, seed=4), config)
    np.testing.assert_allclose(ours, training_apply(batch, config, xla=False), atol=0.05)


@pytest.mark.parametrize("case", FLAT_CASES, ids=list(FLAT_CASES))
def test_unwarped_pixels_are_trainings(case: str) -> None:
    config = only(**FLAT_CASES[case])
    batch = images()
    ours = apply(batch, draw(config, len(batch), HEIGHT, WIDTH, seed=4), config)
    np.testing.assert_allclose(ours, training_apply(batch, config, xla=False), atol=0.01)
    np.testing.assert_allclose(ours, training_apply(batch, config, xla=True), atol=0.01)


# --- the contract ------------------------------------------------------------------------------


def test_same_seed_same_variants_new_seed_new_ones() -> None:
    image = images(1)[0]
    config = only(**CASES["warp+flip+extras"])
    first = preview(image, config, n=5, seed=3)
    assert first.shape == (5, HEIGHT, WIDTH, 3) and first.dtype == np.uint8
    np.testing.assert_array_equal(first, preview(image, config, n=5, seed=3))
    assert not np.array_equal(first, preview(image, config, n=5, seed=4))
    assert not np.array_equal(preview(image, config, n=5, seed=-1), first)  # any int is a seed


@pytest.mark.parametrize(
    ("image", "n", "message"),
    [
        (np.zeros((4, 4)), 9, r"uint8 array of shape \(H, W, 3\).*float64.*\(4, 4\)"),
        (np.zeros((4, 4, 4), np.uint8), 9, r"uint8 array of shape \(H, W, 3\).*\(4, 4, 4\)"),
        (np.zeros((4, 4, 3), np.uint8), 0, r"n ≥ 1 variants; got n=0"),
    ],
)
def test_what_is_not_one_rgb_image_or_no_variant_is_refused(
    image: np.ndarray, n: int, message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        preview(image, AugmentConfig(), n=n)


def test_a_bad_setting_is_refused_by_name() -> None:
    with pytest.raises(ValueError, match=r"rotation_range.*got 200"):
        preview(images(1)[0], AugmentConfig(rotation_range=200))


def test_moving_one_slider_keeps_the_other_draws() -> None:
    config = only(**CASES["warp+flip+extras"])
    before = draw(config, 9, HEIGHT, WIDTH, seed=2)
    brighter_config = only(**{**CASES["warp+flip+extras"], "brightness_range": 0.9})
    brighter = draw(brighter_config, 9, HEIGHT, WIDTH, seed=2)
    for same in ("transforms", "flip", "contrast", "centres"):
        np.testing.assert_array_equal(getattr(before, same), getattr(brighter, same))
    assert not np.array_equal(before.brightness, brighter.brightness)
    # And on pixels: geometry cannot change a flat grey image, so a rotation slider's move
    # leaves each variant's brightness as it was.
    grey = np.full((HEIGHT, WIDTH, 3), 100, np.uint8)
    dim = preview(grey, only(rotation_range=10.0, brightness_range=0.4), seed=5)
    turned = preview(grey, only(rotation_range=90.0, brightness_range=0.4), seed=5)
    np.testing.assert_array_equal(dim, turned)
    assert np.ptp(dim[:, 0, 0, 0]) > 10


def test_the_preview_never_imports_tensorflow() -> None:
    code = (
        "import sys\nimport numpy as np\nfrom catdog.train.augment import AugmentConfig\n"
        "from catdog.train.preview import preview\n"
        "config = AugmentConfig(brightness_range=0.3, contrast_range=0.3, cutout=0.3)\n"
        "out = preview(np.zeros((16, 16, 3), np.uint8), config)\n"
        "print(out.shape, 'tensorflow' in sys.modules, 'keras' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["(9,", "16,", "16,", "3)", "False", "False"], out.stderr
