"""Augmentation: the config as data, the random transforms (through the dashboard's preview and
training's TensorFlow pass), Keras layers."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable

import numpy as np
import pytest

from catdog.train.augment import FILL_MODES, AugmentConfig

# --- the config --------------------------------------------------------------------------------


def test_defaults_are_the_seeds_image_data_generator() -> None:
    config = AugmentConfig()
    assert (
        config.rotation_range,
        config.width_shift_range,
        config.height_shift_range,
        config.shear_range,
        config.zoom_range,
        config.horizontal_flip,
        config.fill_mode,
    ) == (40, 0.2, 0.2, 0.2, 0.2, True, "nearest")
    assert config.brightness_range == 0 and config.contrast_range == 0 and config.cutout == 0
    assert config.enabled and config.geometric


def test_off_and_enabled() -> None:
    assert not AugmentConfig.off().enabled
    for change in (
        {"rotation_range": 5},
        {"width_shift_range": 0.1},
        {"shear_range": 1},
        {"zoom_range": 0.1},
        {"horizontal_flip": True},
        {"brightness_range": 0.2},
        {"contrast_range": 0.2},
        {"cutout": 0.3},
    ):
        config = AugmentConfig.from_dict({**AugmentConfig.off().to_dict(), **change})
        assert config.enabled, change


def test_round_trips_through_json() -> None:
    config = AugmentConfig(
        rotation_range=12.5, horizontal_flip=False, fill_mode="reflect", brightness_range=0.3
    )
    again = AugmentConfig.from_dict(json.loads(json.dumps(config.to_dict())))
    assert again == config
    assert AugmentConfig.from_dict({"zoom_range": 0.1}) == AugmentConfig(zoom_range=0.1)


@pytest.mark.parametrize(
    ("change", "words"),
    [
        ({"rotation_range": -5}, ["rotation_range", "-5"]),
        ({"rotation_range": 200}, ["rotation_range", "200", "180"]),
        ({"width_shift_range": 1.5}, ["width_shift_range", "1.5", "fraction"]),
        ({"zoom_range": "0.2"}, ["zoom_range", "'0.2'", "str"]),
        ({"shear_range": True}, ["shear_range", "True"]),
        ({"horizontal_flip": "yes"}, ["horizontal_flip", "'yes'"]),
        ({"fill_mode": "mirror"}, ["fill_mode", "'mirror'", "nearest", "wrap"]),
        ({"contrast_range": float("nan")}, ["contrast_range", "nan"]),
    ],
)
def test_bad_values_are_named_in_the_error(change: dict, words: list[str]) -> None:
    with pytest.raises(ValueError) as info:
        AugmentConfig(**change).validate()
    for word in words:
        assert word in str(info.value)


def test_unknown_keys_are_listed() -> None:
    with pytest.raises(ValueError, match=r"rotation_degrees.*expected some of"):
        AugmentConfig.from_dict({"rotation_degrees": 10})


def test_config_imports_without_tensorflow() -> None:
    code = (
        "import sys\nfrom catdog.train.augment import AugmentConfig\nAugmentConfig().validate()\n"
        "print('tensorflow' in sys.modules, 'keras' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "False"], out.stderr


# --- behaviour of the random transforms (through preview) --------------------------------------

Preview = Callable[..., np.ndarray]


@pytest.fixture(params=["numpy", "tensorflow"])
def preview(request: pytest.FixtureRequest) -> Preview:
    """The dashboard's NumPy preview, and training's own draws and TensorFlow pass on copies of
    one image: both must draw each transform as its setting says."""
    if request.param == "numpy":
        from catdog.train.preview import preview

        return preview
    from reference_augment import training_preview

    return training_preview


def only(**settings: object) -> AugmentConfig:
    return AugmentConfig.from_dict({**AugmentConfig.off().to_dict(), **settings})


def dot_image(row: int, col: int, size: int = 41) -> np.ndarray:
    image = np.zeros((size, size, 3), np.uint8)
    image[row, col] = 255
    return image


def centroids(batch: np.ndarray) -> np.ndarray:
    """(row, col) centre of mass of each image's brightness."""
    weight = batch[..., 0].astype(float)
    rows, cols = np.mgrid[0 : batch.shape[1], 0 : batch.shape[2]]
    total = weight.sum(axis=(1, 2))
    return np.stack(
        [(weight * rows).sum(axis=(1, 2)) / total, (weight * cols).sum(axis=(1, 2)) / total], axis=1
    )


def test_preview_is_deterministic_and_varied(preview: Preview) -> None:
    image = np.random.default_rng(3).integers(0, 256, (48, 48, 3), dtype=np.uint8)
    a = preview(image, AugmentConfig(), n=6, seed=7)
    assert a.shape == (6, 48, 48, 3) and a.dtype == np.uint8
    np.testing.assert_array_equal(a, preview(image, AugmentConfig(), n=6, seed=7))
    assert not np.array_equal(a, preview(image, AugmentConfig(), n=6, seed=8))
    assert all(not np.array_equal(a[i], a[j]) for i in range(6) for j in range(i))
    np.testing.assert_array_equal(preview(image, AugmentConfig.off(), n=3), np.stack([image] * 3))


def test_shifts_stay_in_range_and_on_their_axis(preview: Preview) -> None:
    centre = centroids(preview(dot_image(20, 20), only(width_shift_range=0.2), n=40, seed=1))
    np.testing.assert_allclose(centre[:, 0], 20, atol=0.05)  # rows untouched
    assert np.all(np.abs(centre[:, 1] - 20) <= 0.2 * 41 + 0.5)
    assert np.ptp(centre[:, 1]) > 8  # and they really vary


def test_rotation_stays_within_its_range(preview: Preview) -> None:
    centre = centroids(preview(dot_image(20, 30), only(rotation_range=40), n=40, seed=2)) - 20
    radius = np.hypot(*centre.T)
    angle = np.degrees(np.arctan2(centre[:, 0], centre[:, 1]))
    np.testing.assert_allclose(radius, 10, atol=0.6)
    assert np.all(np.abs(angle) <= 40 + 2) and np.ptp(angle) > 40


def test_zoom_factors_are_independent_and_in_range(preview: Preview) -> None:
    config = only(zoom_range=0.2)
    across = centroids(preview(dot_image(20, 30), config, n=40, seed=3))[:, 1] - 20  # 10 / zy
    down = centroids(preview(dot_image(30, 20), config, n=40, seed=3))[:, 0] - 20  # 10 / zx
    for offset in (across, down):
        assert np.all((offset >= 10 / 1.2 - 0.3) & (offset <= 10 / 0.8 + 0.3))
    assert np.corrcoef(across, down)[0, 1] < 0.5  # zx and zy drawn separately


def test_nearest_fill_leaves_no_black_corners(preview: Preview) -> None:
    image = np.random.default_rng(4).integers(100, 256, (40, 40, 3), dtype=np.uint8)
    nearest = preview(image, only(rotation_range=40), n=12, seed=5)
    assert nearest.min() >= 100
    constant = preview(image, only(rotation_range=40, fill_mode="constant"), n=12, seed=5)
    assert (constant[:, 0, 0] == 0).any()  # the control: constant fill does leave black corners


def test_flip_really_mirrors(preview: Preview) -> None:
    image = np.random.default_rng(5).integers(0, 256, (16, 20, 3), dtype=np.uint8)
    out = preview(image, only(horizontal_flip=True), n=16, seed=0)
    flipped = [np.array_equal(v, image[:, ::-1]) for v in out]
    kept = [np.array_equal(v, image) for v in out]
    assert all(f or k for f, k in zip(flipped, kept, strict=True))
    assert 3 <= sum(flipped) <= 13


def test_brightness_and_contrast_stay_in_their_ranges(preview: Preview) -> None:
    grey = np.full((8, 8, 3), 100, np.uint8)
    levels = preview(grey, only(brightness_range=0.3), n=30, seed=6)[:, 0, 0, 0].astype(float)
    assert levels.min() >= 70 and levels.max() <= 130 and np.ptp(levels) > 20

    halves = np.full((8, 8, 3), 50, np.uint8)
    halves[:, 4:] = 150  # mean 100, deviation ±50
    out = preview(halves, only(contrast_range=0.5), n=30, seed=6).astype(float)
    factor = (out[:, 0, 4, 0] - out[:, 0, 0, 0]) / 100
    assert factor.min() >= 0.5 - 0.02 and factor.max() <= 1.5 + 0.02 and np.ptp(factor) > 0.4
    np.testing.assert_allclose(out.mean(axis=(1, 2, 3)), 100, atol=1)  # around the mean


def test_cutout_erases_one_square_with_the_mean_colour(preview: Preview) -> None:
    image = np.zeros((40, 40, 3), np.uint8)
    image[:, 20:] = 200  # mean colour 100
    out = preview(image, only(cutout=0.25), n=20, seed=3).astype(int)
    erased = np.all(out == 100, axis=-1)  # only the cutout makes 100s
    for mask in erased:
        rows, cols = np.nonzero(mask.any(axis=1))[0], np.nonzero(mask.any(axis=0))[0]
        assert 0 < mask.sum() <= 10 * 10  # one square of side 0.25 × 40, maybe cut by an edge
        assert mask.sum() == len(rows) * len(cols)  # a solid rectangle
    sizes = erased.sum(axis=(1, 2))
    assert (sizes == 100).sum() >= 5 and len(set(sizes.tolist())) > 1  # whole and cut squares
    untouched = out[~erased]
    assert set(np.unique(untouched)) <= {0, 200}  # the rest of each image is unchanged


def test_switching_cutout_on_keeps_the_other_transforms(preview: Preview) -> None:
    image = np.random.default_rng(4).integers(0, 256, (32, 32, 3), dtype=np.uint8)
    strong = {"rotation_range": 20.0, "zoom_range": 0.2, "horizontal_flip": True}
    without = preview(image, only(**strong), n=6, seed=9)
    with_cutout = preview(image, only(**strong, cutout=0.3), n=6, seed=9)
    same = np.all(without == with_cutout, axis=-1)
    assert same.mean() > 0.85 and not same.all()  # differs only inside the erased squares


# --- Keras layers ------------------------------------------------------------------------------


def test_build_augmenter_maps_each_enabled_setting_to_a_keras_layer() -> None:
    from benchmarks.common import build_augmenter

    augmenter = build_augmenter(AugmentConfig(), seed=1)
    assert [type(layer).__name__ for layer in augmenter.layers] == [
        "RandomRotation",
        "RandomTranslation",
        "RandomShear",
        "RandomZoom",
        "RandomFlip",
    ]
    rotation = augmenter.layers[0]
    assert rotation.factor == pytest.approx((-40 / 360, 40 / 360))
    assert rotation.fill_mode == "nearest"
    assert build_augmenter(AugmentConfig.off()).layers == []
    extras = build_augmenter(only(brightness_range=0.2, contrast_range=0.3, cutout=0.3))
    assert [type(layer).__name__ for layer in extras.layers] == [
        "RandomBrightness",
        "RandomContrast",
        "RandomErasing",
    ]

    images = np.random.default_rng(6).uniform(0, 255, (4, 32, 32, 3)).astype(np.float32)
    trained = np.asarray(augmenter(images, training=True))
    assert trained.shape == images.shape and not np.allclose(trained, images)
    np.testing.assert_array_equal(np.asarray(augmenter(images, training=False)), images)


def test_fill_modes_are_the_keras_ones() -> None:
    assert set(FILL_MODES) == {"nearest", "constant", "reflect", "wrap"}


def test_describe_says_what_is_on() -> None:
    assert AugmentConfig().describe() == (
        "rotation ±40°, shift ±0.2/±0.2, shear ±0.2°, zoom ±0.2, horizontal flip, fill nearest"
    )
    assert AugmentConfig.off().describe() == "no augmentation"
    flip_only = AugmentConfig(**{**AugmentConfig.off().to_dict(), "horizontal_flip": True})
    assert flip_only.describe() == "horizontal flip"  # nothing is warped, so nothing filled
    assert only(cutout=0.3).describe() == "cutout 0.3"
