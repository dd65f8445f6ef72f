"""The Augmentation page's preview: an :class:`~catdog.train.augment.AugmentConfig` applied to
one image in NumPy, without importing TensorFlow.

The maths are training's (:mod:`catdog.train.warp`), ported line for line: rotation, shift,
shear, zoom and flip composed into ONE matrix per image as Keras 2 did
(:func:`affine_matrices`), one bilinear warp with the same fill modes, then brightness,
contrast and cutout. Only the random draws differ: NumPy's generator instead of TensorFlow's
stateless one, from the same distributions, so a preview shows what training does, not the
very variants a training batch would get. A test checks both give the same pixels for the
same draws.

The page's first visit then waits for no TensorFlow import (seconds on a small CPU); 9
variants at 150 px take some 20 ms.
"""

from __future__ import annotations

import math
import operator
from typing import Any, NamedTuple

import numpy as np

from catdog.train.augment import AugmentConfig


class Draws(NamedTuple):
    """A batch's random draws, as :func:`apply` uses them (one row per image)."""

    transforms: np.ndarray  # [B, 8] warp rows from affine_matrices
    flip: np.ndarray  # [B] 1.0 where the image is mirrored left-right, else 0.0
    brightness: np.ndarray  # [B] pixel value factors
    contrast: np.ndarray  # [B] factors on the deviation from the per-channel mean
    centres: np.ndarray  # [B, 2] cutout centres, fractions of the height and width


def preview(image: np.ndarray, config: AugmentConfig, n: int = 9, seed: int = 0) -> np.ndarray:
    """Return ``n`` augmented variants of one image, the same ones for the same seed.

    Training's transforms and maths (:mod:`catdog.train.warp`), with NumPy's random generator
    instead of TensorFlow's stateless one: the variants are drawn as training draws them, but
    are not the ones a training batch with this seed would get.

    Args:
        image: ``uint8`` array ``(H, W, 3)``, e.g. from ``catdog.data.model_input.load_for_model``.
        config: the transforms to apply.
        n: number of variants.
        seed: picks the variants; moving one setting keeps the others' draws.

    Returns:
        ``uint8`` array ``(n, H, W, 3)``.
    """
    config.validate()
    image = np.asarray(image)
    if image.ndim != 3 or image.shape[-1] != 3 or image.dtype != np.uint8:
        raise ValueError(
            "preview() needs one RGB image as a uint8 array of shape (H, W, 3); "
            f"got dtype {image.dtype} and shape {image.shape}"
        )
    if n < 1:
        raise ValueError(f"preview() needs n ≥ 1 variants; got n={n}")
    draws = draw(config, n, image.shape[0], image.shape[1], seed)
    batch = np.repeat(image[None].astype(np.float32), n, axis=0)
    return np.round(apply(batch, draws, config)).astype(np.uint8)


def draw(config: AugmentConfig, n: int, height: int, width: int, seed: int) -> Draws:
    """Draw ``n`` images' transforms from ``seed``, as :mod:`catdog.train.warp` draws them.

    One uniform [0, 1) column per setting (theta, tx, ty, shear, zx, zy, flip, brightness,
    contrast), whatever the config, so changing one range keeps the other transforms of each
    image; the cutout centres come from a stream of their own, so switching cutout on changes
    nothing else.
    """
    seed = operator.index(seed) % 2**64  # any int, as TensorFlow's int64 seeds
    u = np.random.default_rng([seed, 0]).random((n, 9), dtype=np.float32)
    centres = np.random.default_rng([seed, 1]).random((n, 2), dtype=np.float32)
    sym = 2.0 * u - 1.0  # u → ±range
    flip = (u[:, 6] < 0.5).astype(np.float32) if config.horizontal_flip else np.zeros(n, np.float32)
    transforms = affine_matrices(
        theta=sym[:, 0] * config.rotation_range,
        tx=sym[:, 1] * config.height_shift_range * height,
        ty=sym[:, 2] * config.width_shift_range * width,
        shear=sym[:, 3] * config.shear_range,
        zx=1.0 + sym[:, 4] * config.zoom_range,
        zy=1.0 + sym[:, 5] * config.zoom_range,
        flip=flip,
        height=height,
        width=width,
    )
    brightness = 1.0 + sym[:, 7] * np.float32(config.brightness_range)
    contrast = 1.0 + sym[:, 8] * np.float32(config.contrast_range)
    return Draws(transforms, flip, brightness, contrast, centres)


def apply(images: np.ndarray, draws: Draws, config: AugmentConfig) -> np.ndarray:
    """Apply drawn transforms as training does: warp (or flip), brightness, contrast, cutout.

    Args:
        images: ``[B, H, W, 3]`` pixel values 0–255.
        draws: the batch's draws, from :func:`draw`.
        config: which steps run (a range of 0 skips its step) and the fill mode.

    Returns:
        float32 ``[B, H, W, 3]``, pixel values 0–255 (not rounded).
    """
    images = np.asarray(images, np.float32)
    if config.geometric:
        images = warp_images(images, draws.transforms, config.fill_mode)
    elif config.horizontal_flip:
        images = np.where(draws.flip[:, None, None, None] > 0, images[:, :, ::-1], images)
    if config.brightness_range:
        images = np.clip(images * draws.brightness[:, None, None, None], 0.0, 255.0)
    if config.contrast_range:
        mean = images.mean(axis=(1, 2), keepdims=True)
        factor = draws.contrast[:, None, None, None]
        images = np.clip((images - mean) * factor + mean, 0.0, 255.0)
    if config.cutout:
        images = _cutout(images, config.cutout, draws.centres)
    return images


def _cutout(images: np.ndarray, side: float, centres: np.ndarray) -> np.ndarray:
    """Erase one square of ``side`` × the image side per image, filled with its mean colour.

    ``centres`` are ``[B, 2]`` uniform draws in [0, 1): each square's centre as a fraction of
    the height and width.
    """
    rows, cols = images.shape[1], images.shape[2]
    cy, cx = centres[:, 0] * rows, centres[:, 1] * cols
    half_y, half_x = 0.5 * side * rows, 0.5 * side * cols
    y = np.arange(rows, dtype=np.float32)[None, :, None] + 0.5  # pixel centres
    x = np.arange(cols, dtype=np.float32)[None, None, :] + 0.5
    inside = (np.abs(y - cy[:, None, None]) < half_y) & (np.abs(x - cx[:, None, None]) < half_x)
    mean = images.mean(axis=(1, 2), keepdims=True)
    return np.where(inside[..., None], mean, images)


def affine_matrices(
    theta: np.ndarray,
    tx: np.ndarray,
    ty: np.ndarray,
    shear: np.ndarray,
    zx: np.ndarray,
    zy: np.ndarray,
    flip: np.ndarray,
    height: int,
    width: int,
) -> np.ndarray:
    """Compose Keras 2's per-image transform into warp rows, as
    :func:`catdog.train.warp.affine_matrices` does in TensorFlow.

    In (row, column) coordinates centred on the image, an output pixel p samples the input at
    ``R·T·S·Z·F·p`` (rotation by ``theta`` degrees, shift ``(tx, ty)`` pixels, shear
    ``[[1, -sin s], [0, cos s]]``, zoom ``diag(zx, zy)``, horizontal flip); each row
    ``(a0 … a7)`` maps an output (x, y) = (column, row) to the input point
    ``(a0·x + a1·y + a2, a3·x + a4·y + a5)``, the layout of ``ImageProjectiveTransformV3``.

    Returns:
        float32 array ``[B, 8]``.
    """
    theta = np.asarray(theta, np.float64) * (math.pi / 180.0)
    shear = np.asarray(shear, np.float64) * (math.pi / 180.0)
    tx, ty, zx, zy, flip = (np.asarray(v, np.float64) for v in (tx, ty, zx, zy, flip))
    one, zero = np.ones_like(theta), np.zeros_like(theta)

    def mat(*entries: np.ndarray) -> np.ndarray:  # nine [B] arrays, row-major → [B, 3, 3]
        return np.stack(entries, axis=-1).reshape(-1, 3, 3)

    c, s = np.cos(theta), np.sin(theta)
    rotate = mat(c, -s, zero, s, c, zero, zero, zero, one)
    shift = mat(one, zero, tx, zero, one, ty, zero, zero, one)
    shear_m = mat(one, -np.sin(shear), zero, zero, np.cos(shear), zero, zero, zero, one)
    zoom = mat(zx, zero, zero, zero, zy, zero, zero, zero, one)
    mirror = mat(one, zero, zero, zero, 1.0 - 2.0 * flip, zero, zero, zero, one)
    m = rotate @ shift @ shear_m @ zoom @ mirror
    # Centre: p_in = M (p_out - o) + o with o the image centre, o = (h/2 - 0.5, w/2 - 0.5).
    o_r, o_c = height / 2.0 - 0.5, width / 2.0 - 0.5
    off_r = o_r - m[:, 0, 0] * o_r - m[:, 0, 1] * o_c + m[:, 0, 2]
    off_c = o_c - m[:, 1, 0] * o_r - m[:, 1, 1] * o_c + m[:, 1, 2]
    # (x, y) = (column, row): swap the axes.
    rows = [m[:, 1, 1], m[:, 1, 0], off_c, m[:, 0, 1], m[:, 0, 0], off_r, zero, zero]
    return np.stack(rows, axis=-1).astype(np.float32)


def warp_images(images: np.ndarray, transforms: np.ndarray, fill_mode: str) -> np.ndarray:
    """Resample each image at the points its transform gives, with bilinear interpolation
    (training's XLA warp, :func:`catdog.train.warp.warp_images`, in NumPy).

    Args:
        images: float32 ``[B, H, W, C]``.
        transforms: ``[B, 8]`` rows as returned by :func:`affine_matrices`.
        fill_mode: one of ``FILL_MODES``; how points outside the image are sampled.

    Returns:
        float32 array of the same shape as ``images``.
    """
    batch, height, width, channels = images.shape
    xs = np.arange(width, dtype=np.float32)[None, None, :]
    ys = np.arange(height, dtype=np.float32)[None, :, None]
    a = [np.asarray(transforms, np.float32)[:, i, None, None] for i in range(6)]
    x0, x1, wx, vx0, vx1 = _source_indices(a[0] * xs + a[1] * ys + a[2], width, fill_mode)
    y0, y1, wy, vy0, vy1 = _source_indices(a[3] * xs + a[4] * ys + a[5], height, fill_mode)
    wx, wy = wx[..., None], wy[..., None]
    flat = images.reshape(-1, channels)
    row0 = (np.arange(batch) * height * width)[:, None, None] + y0 * width
    row1 = row0 + (y1 - y0) * width

    def at(rows: np.ndarray, cols: np.ndarray, valid_x: Any, valid_y: Any) -> np.ndarray:
        pixels = np.take(flat, rows + cols, axis=0)  # 3× faster than flat[...]
        if valid_x is not None:  # "constant": neighbours outside the image count as black
            pixels = pixels * (valid_x * valid_y)[..., None]
        return pixels

    top = at(row0, x0, vx0, vy0) * (1.0 - wx) + at(row0, x1, vx1, vy0) * wx
    bottom = at(row1, x0, vx0, vy1) * (1.0 - wx) + at(row1, x1, vx1, vy1) * wx
    return top * (1.0 - wy) + bottom * wy


def _source_indices(coord: np.ndarray, size: int, fill_mode: str) -> tuple[Any, ...]:
    """Map source coordinates along one axis to (i0, i1, weight of i1, valid0, valid1)."""
    n = np.float32(size)
    if fill_mode == "reflect":  # d c b a | a b c d | d c b a
        coord = np.mod(coord + 0.5, 2.0 * n)
        coord = np.where(coord >= n, 2.0 * n - coord, coord) - 0.5
    elif fill_mode == "wrap":  # a b c d | a b c d | a b c d
        coord = np.mod(coord, n)
    if fill_mode in ("nearest", "reflect"):  # a a a a | a b c d | d d d d
        coord = np.clip(coord, 0.0, n - 1.0)
    low = np.floor(coord)
    i0 = low.astype(np.int32)
    i1 = i0 + 1
    valid0 = valid1 = None
    if fill_mode == "wrap":
        i1 = np.where(i1 >= size, 0, i1)
    elif fill_mode == "constant":  # 0 0 0 0 | a b c d | 0 0 0 0
        valid0 = ((i0 >= 0) & (i0 < size)).astype(np.float32)
        valid1 = ((i1 >= 0) & (i1 < size)).astype(np.float32)
    # Keep every index inside the image (also guards mod rounding up to exactly n).
    i0, i1 = np.clip(i0, 0, size - 1), np.clip(i1, 0, size - 1)
    return i0, i1, coord - low, valid0, valid1
