"""Data augmentation: the seed's ``ImageDataGenerator`` settings, and ways to apply them.

Keras 3 has no ``ImageDataGenerator``. :class:`AugmentConfig` keeps its settings and meaning
(Keras 2 / keras-preprocessing semantics, checked against its ``get_random_transform`` and
``apply_affine_transform``); :mod:`catdog.train.warp` applies it to training batches, in
TensorFlow (:func:`~catdog.train.warp.augment_images`: rotation, shift, shear, zoom and flip
composed into ONE matrix per image, as Keras 2 did, and applied in a single warp, then
brightness, contrast and cutout); :mod:`catdog.train.preview` applies the same maths in NumPy
to one image for the dashboard's sliders (:func:`~catdog.train.preview.preview`).

This module holds settings only: it never imports TensorFlow.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

import numpy as np

FILL_MODES = ("nearest", "constant", "reflect", "wrap")


@dataclass
class AugmentConfig:
    """Random transforms applied to each training image; 0 or False switches one off.

    Defaults are the seed's ``ImageDataGenerator(rotation_range=40, width_shift_range=0.2,
    height_shift_range=0.2, shear_range=0.2, zoom_range=0.2, horizontal_flip=True,
    fill_mode='nearest')``; brightness and contrast are extras, off by default.
    """

    # Degrees: each image is rotated by an angle drawn uniformly from ±rotation_range.
    rotation_range: float = 40.0
    # Fraction of the width: horizontal shift drawn uniformly from ±width_shift_range × width.
    width_shift_range: float = 0.2
    # Fraction of the height: vertical shift drawn uniformly from ±height_shift_range × height.
    height_shift_range: float = 0.2
    # Shear ANGLE IN DEGREES, drawn uniformly from ±shear_range (keras-preprocessing ≥ 1.0.4,
    # i.e. Keras ≥ 2.2). Keras ≤ 2.1, which the book ran on, read the same number as radians
    # (0.2 rad ≈ 11.5°); 0.2° is barely visible — set 11.5 to get the book's shear.
    shear_range: float = 0.2
    # Zoom factors zx (rows) and zy (columns) drawn INDEPENDENTLY from [1 - z, 1 + z]; a factor
    # above 1 samples a larger area, so the picture looks smaller (zoomed out).
    zoom_range: float = 0.2
    # Mirror left-right with probability 1/2.
    horizontal_flip: bool = True
    # Pixels the transform brings in from outside the image: "nearest" repeats the edge pixel,
    # "constant" fills black, "reflect" mirrors the image, "wrap" tiles it.
    fill_mode: str = "nearest"
    # Multiply pixel values by a factor drawn from [1 - b, 1 + b], clipped to 0–255, like
    # ImageDataGenerator(brightness_range=(1 - b, 1 + b)) minus its min/max stretch. 0 = off.
    brightness_range: float = 0.0
    # Scale each image's deviation from its per-channel mean by a factor drawn from
    # [1 - c, 1 + c], clipped to 0–255 (keras.layers.RandomContrast). 0 = off.
    contrast_range: float = 0.0
    # Cutout (DeVries & Taylor, 2017): erase one square per image, of side cutout × the image
    # side, filled with the image's mean colour; its centre is anywhere in the image, so near
    # an edge part of it falls outside. Applied last, after the colour changes. 0 = off.
    cutout: float = 0.0

    def describe(self) -> str:
        """One line for people, e.g. "rotation ±40°, shift ±0.2/±0.2, … fill nearest"."""
        if not self.enabled:
            return "no augmentation"
        parts = [
            f"rotation ±{self.rotation_range:g}°" if self.rotation_range else "",
            f"shift ±{self.width_shift_range:g}/±{self.height_shift_range:g}"
            if self.width_shift_range or self.height_shift_range
            else "",
            f"shear ±{self.shear_range:g}°" if self.shear_range else "",
            f"zoom ±{self.zoom_range:g}" if self.zoom_range else "",
            "horizontal flip" if self.horizontal_flip else "",
            f"brightness ±{self.brightness_range:g}" if self.brightness_range else "",
            f"contrast ±{self.contrast_range:g}" if self.contrast_range else "",
            f"cutout {self.cutout:g}" if self.cutout else "",
        ]
        text = ", ".join(part for part in parts if part)
        return f"{text}, fill {self.fill_mode}" if self.geometric else text

    @classmethod
    def off(cls) -> AugmentConfig:
        """Return a config with every transform switched off (no augmentation)."""
        return cls(
            rotation_range=0.0,
            width_shift_range=0.0,
            height_shift_range=0.0,
            shear_range=0.0,
            zoom_range=0.0,
            horizontal_flip=False,
            brightness_range=0.0,
            contrast_range=0.0,
            cutout=0.0,
        )

    @property
    def geometric(self) -> bool:
        """True if a rotation, shift, shear or zoom is on (they need the image warped)."""
        return any(
            (
                self.rotation_range,
                self.width_shift_range,
                self.height_shift_range,
                self.shear_range,
                self.zoom_range,
            )
        )

    @property
    def enabled(self) -> bool:
        """True if any transform is on."""
        return (
            self.geometric
            or self.horizontal_flip
            or bool(self.brightness_range)
            or bool(self.contrast_range)
            or bool(self.cutout)
        )

    def validate(self) -> AugmentConfig:
        """Check every value; return ``self`` so calls can be chained.

        Raises:
            ValueError: a value is of the wrong type or out of range; the message names the
                setting, the value received and the allowed range.
        """
        # name: (low, high, inclusive high, what the unit is)
        limits = {
            "rotation_range": (0.0, 180.0, True, "degrees"),
            "width_shift_range": (0.0, 1.0, False, "a fraction of the width"),
            "height_shift_range": (0.0, 1.0, False, "a fraction of the height"),
            "shear_range": (0.0, 45.0, True, "degrees"),
            "zoom_range": (0.0, 1.0, False, "zoom factors are drawn from [1 - z, 1 + z]"),
            "brightness_range": (0.0, 1.0, False, "factors are drawn from [1 - b, 1 + b]"),
            "contrast_range": (0.0, 1.0, True, "factors are drawn from [1 - c, 1 + c]"),
            "cutout": (0.0, 1.0, True, "the erased square's side, a fraction of the image's"),
        }
        for name, (low, high, closed, unit) in limits.items():
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise ValueError(
                    f"AugmentConfig.{name} must be a number ({unit}); "
                    f"got {value!r} of type {type(value).__name__}"
                )
            if not (low <= value <= high if closed else low <= value < high):
                top = f"≤ {high:g}" if closed else f"< {high:g}"
                raise ValueError(
                    f"AugmentConfig.{name} must be ≥ 0 and {top} ({unit}; "
                    f"0 switches it off); got {value!r}"
                )
        if not isinstance(self.horizontal_flip, (bool, np.bool_)):
            raise ValueError(
                f"AugmentConfig.horizontal_flip must be True or False; got {self.horizontal_flip!r}"
            )
        if self.fill_mode not in FILL_MODES:
            raise ValueError(
                f"AugmentConfig.fill_mode must be one of {', '.join(FILL_MODES)}; "
                f"got {self.fill_mode!r}"
            )
        return self

    def to_dict(self) -> dict[str, Any]:
        """Return the settings as a JSON-ready dict."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> AugmentConfig:
        """Build a validated config from :meth:`to_dict` output; missing keys keep defaults.

        Raises:
            ValueError: ``data`` has unknown keys (they are listed) or a bad value.
        """
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(
                f"unknown augmentation setting(s) {', '.join(unknown)}; "
                f"expected some of {', '.join(sorted(known))}"
            )
        return cls(**data).validate()
