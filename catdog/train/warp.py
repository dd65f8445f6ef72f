"""The fused augmentation warp: an :class:`~catdog.train.augment.AugmentConfig` applied in
TensorFlow.

As Keras 2's ``ImageDataGenerator`` did, rotation, shift, shear, zoom and flip are composed into
ONE matrix per image (:func:`affine_matrices`) and applied in a single bilinear warp
(:func:`warp_images`: an XLA-compiled gather where XLA works, else ``ImageProjectiveTransformV3``);
:func:`augment_images` adds brightness, contrast, cutout and rescaling in the same compiled
pass over the pixels. Random numbers are stateless, drawn from an explicit seed, so a tf.data
pipeline gets reproducible, per-batch and per-epoch different augmentation.

TensorFlow is imported inside the functions, so importing this module stays light. The
dashboard's preview (:mod:`catdog.train.preview`) is these maths ported to NumPy; a change
here must be made there too (tests/test_preview.py compares the two).
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass, replace
from typing import Any

from catdog.train.augment import AugmentConfig


def augment_images(
    images: Any,
    config: AugmentConfig,
    seed: Any,
    xla: bool | None = None,
    scale: float = 1.0,
) -> Any:
    """Augment a batch as ``ImageDataGenerator`` would, with one warp per image.

    Every random draw comes from ``seed`` (stateless): the same seed gives the same result, a
    new seed new transforms. Draws are made per setting, so changing one range (a slider)
    keeps the other transforms of each image unchanged. Where XLA works, the warp, brightness,
    contrast, cutout and the final ``scale`` run as ONE compiled pass over the pixels (each is
    otherwise a full pass of its own; the draws themselves are tiny and made outside it).

    Args:
        images: tensor ``[B, H, W, 3]`` of pixel values 0–255, uint8 or float.
        config: the transforms to apply.
        seed: int tensor of shape ``[2]`` (a ``tf.random`` stateless seed).
        xla: compile the pass with XLA (None: where XLA works here).
        scale: multiply the result by this (``1 / 255`` gives a model's [0, 1] input).

    Returns:
        A float32 tensor of the same shape, pixel values 0–255 times ``scale``.
    """
    from catdog.model.backend import tf

    images = tf.convert_to_tensor(images)
    if images.dtype != tf.uint8:
        images = tf.cast(images, tf.float32)
    draws = _draws(tf.shape(images), config, seed, scale)
    if xla is None:
        xla = _xla_works()
    spec = _PassSpec.of(config)
    if not xla:
        return _apply(images, *draws, spec=spec, xla=False)
    if spec.geometric and (spec.brightness or spec.contrast):
        # Warp compiled on its own: fused into brightness/contrast, XLA repeats its gathers
        # (measured: 44 → 28 CPU-ms per batch of 32 at 150 px; cutout and scaling fuse well).
        images = _xla_warp(spec.fill_mode)(images, draws[0])
        spec = replace(spec, geometric=False, flip=False)
    return _xla_pass(spec)(images, *draws)


def _draws(shape: Any, config: AugmentConfig, seed: Any, scale: float) -> tuple[Any, ...]:
    """A batch's random draws, all from ``seed``, in :func:`_apply`'s order: the warp matrices,
    the flips, the brightness and contrast factors, the cutout centres, and ``scale``."""
    from catdog.model.backend import tf

    batch, height, width = shape[0], shape[1], shape[2]
    # One uniform [0, 1) column per setting: theta, tx, ty, shear, zx, zy, flip, brightness,
    # contrast. u → ±range is 2u - 1 scaled.
    u = tf.random.stateless_uniform([batch, 9], seed=seed, dtype=tf.float32)
    sym = 2.0 * u - 1.0
    flip = tf.cast(u[:, 6] < 0.5, tf.float32) if config.horizontal_flip else tf.zeros([batch])
    rows, cols = tf.cast(height, tf.float32), tf.cast(width, tf.float32)
    transforms = affine_matrices(
        theta=sym[:, 0] * config.rotation_range,
        tx=sym[:, 1] * config.height_shift_range * rows,
        ty=sym[:, 2] * config.width_shift_range * cols,
        shear=sym[:, 3] * config.shear_range,
        zx=1.0 + sym[:, 4] * config.zoom_range,
        zy=1.0 + sym[:, 5] * config.zoom_range,
        flip=flip,
        height=height,
        width=width,
    )
    # The cutout centres come from a stream of their own (``seed`` folded with 1), so switching
    # cutout on leaves every other transform of every image as it was.
    centres = tf.random.stateless_uniform(
        [batch, 2], seed=tf.random.experimental.stateless_fold_in(seed, 1), dtype=tf.float32
    )
    return (
        transforms,
        flip,
        1.0 + sym[:, 7] * config.brightness_range,
        1.0 + sym[:, 8] * config.contrast_range,
        centres,
        tf.constant(scale, tf.float32),
    )


@dataclass(frozen=True)
class _PassSpec:
    """Which steps of :func:`_apply` run (one compiled function per distinct spec)."""

    geometric: bool
    flip: bool
    fill_mode: str
    brightness: bool
    contrast: bool
    cutout: float

    @classmethod
    def of(cls, config: AugmentConfig) -> _PassSpec:
        return cls(
            config.geometric,
            config.horizontal_flip,
            config.fill_mode,
            bool(config.brightness_range),
            bool(config.contrast_range),
            float(config.cutout),
        )


def _apply(
    images: Any,
    transforms: Any,
    flip: Any,
    brightness: Any,
    contrast: Any,
    centres: Any,
    scale: Any,
    *,
    spec: _PassSpec,
    xla: bool,
) -> Any:
    """Apply drawn transforms: warp (or flip), brightness, contrast, cutout, then ``scale``."""
    from catdog.model.backend import tf

    images = tf.cast(images, tf.float32)
    if spec.geometric:
        if xla:  # already inside the compiled pass
            images = _gather_warp(images, transforms, spec.fill_mode)
        else:
            images = warp_images(images, transforms, spec.fill_mode, xla=False)
    elif spec.flip:
        images = tf.where(flip[:, None, None, None] > 0, tf.reverse(images, axis=[2]), images)
    if spec.brightness:
        images = tf.clip_by_value(images * brightness[:, None, None, None], 0.0, 255.0)
    if spec.contrast:
        mean = tf.reduce_mean(images, axis=[1, 2], keepdims=True)
        factor = contrast[:, None, None, None]
        images = tf.clip_by_value((images - mean) * factor + mean, 0.0, 255.0)
    if spec.cutout:
        images = _cutout(images, spec.cutout, centres)
    return images * scale


@functools.cache
def _xla_pass(spec: _PassSpec) -> Any:
    """:func:`_apply` compiled by XLA for one spec."""
    from catdog.model.backend import tf

    def run(images: Any, *draws: Any) -> Any:
        return _apply(images, *draws, spec=spec, xla=True)

    return tf.function(run, jit_compile=True, reduce_retracing=True)


def _cutout(images: Any, side: float, centres: Any) -> Any:
    """Erase one square of ``side`` × the image side per image, filled with its mean colour.

    ``centres`` are ``[B, 2]`` uniform draws in [0, 1): each square's centre as a fraction of
    the height and width.
    """
    from catdog.model.backend import tf

    shape = tf.shape(images)
    rows, cols = tf.cast(shape[1], tf.float32), tf.cast(shape[2], tf.float32)
    cy, cx = centres[:, 0] * rows, centres[:, 1] * cols
    half_y, half_x = 0.5 * side * rows, 0.5 * side * cols
    y = tf.range(rows)[None, :, None] + 0.5  # pixel centres
    x = tf.range(cols)[None, None, :] + 0.5
    inside = (tf.abs(y - cy[:, None, None]) < half_y) & (tf.abs(x - cx[:, None, None]) < half_x)
    mean = tf.reduce_mean(images, axis=[1, 2], keepdims=True)
    return tf.where(inside[..., None], mean, images)


def affine_matrices(
    theta: Any, tx: Any, ty: Any, shear: Any, zx: Any, zy: Any, flip: Any, height: Any, width: Any
) -> Any:
    """Compose Keras 2's per-image transform into ``ImageProjectiveTransformV3`` rows.

    As keras-preprocessing's ``apply_affine_transform``: in (row, column) coordinates centred
    on the image, an output pixel p samples the input at ``R·T·S·Z·F·p``, with R the rotation
    by ``theta``, T the shift ``(tx, ty)``, S the shear ``[[1, -sin s], [0, cos s]]``, Z the
    zoom ``diag(zx, zy)`` and F the horizontal flip that Keras 2 applied after the warp.

    Args:
        theta: rotation angles in degrees, shape ``[B]``.
        tx: vertical shifts in pixels (rows), ``[B]``.
        ty: horizontal shifts in pixels (columns), ``[B]``.
        shear: shear angles in degrees, ``[B]``.
        zx: zoom factors along rows, ``[B]``.
        zy: zoom factors along columns, ``[B]``.
        flip: 1.0 where the image is mirrored left-right, else 0.0, ``[B]``.
        height: image height in pixels.
        width: image width in pixels.

    Returns:
        float32 tensor ``[B, 8]``: each row maps an output (x, y) to the input point sampled.
    """
    from catdog.model.backend import tf

    def f32(v: Any) -> Any:
        return tf.cast(v, tf.float32)

    theta, shear = f32(theta) * (math.pi / 180.0), f32(shear) * (math.pi / 180.0)
    tx, ty, zx, zy, flip = f32(tx), f32(ty), f32(zx), f32(zy), f32(flip)
    one, zero = tf.ones_like(theta), tf.zeros_like(theta)

    def mat(*entries: Any) -> Any:  # nine [B] tensors, row-major → [B, 3, 3]
        return tf.reshape(tf.stack(entries, axis=-1), [-1, 3, 3])

    c, s = tf.cos(theta), tf.sin(theta)
    rotate = mat(c, -s, zero, s, c, zero, zero, zero, one)
    shift = mat(one, zero, tx, zero, one, ty, zero, zero, one)
    shear_m = mat(one, -tf.sin(shear), zero, zero, tf.cos(shear), zero, zero, zero, one)
    zoom = mat(zx, zero, zero, zero, zy, zero, zero, zero, one)
    mirror = mat(one, zero, zero, zero, 1.0 - 2.0 * flip, zero, zero, zero, one)
    m = rotate @ shift @ shear_m @ zoom @ mirror
    # Centre: p_in = M (p_out - o) + o with o the image centre, o = (h/2 - 0.5, w/2 - 0.5).
    o_r, o_c = f32(height) / 2.0 - 0.5, f32(width) / 2.0 - 0.5
    off_r = o_r - m[:, 0, 0] * o_r - m[:, 0, 1] * o_c + m[:, 0, 2]
    off_c = o_c - m[:, 1, 0] * o_r - m[:, 1, 1] * o_c + m[:, 1, 2]
    # The op works in (x, y) = (column, row): swap the axes.
    return tf.stack(
        [m[:, 1, 1], m[:, 1, 0], off_c, m[:, 0, 1], m[:, 0, 0], off_r, zero, zero], axis=-1
    )


def warp_images(
    images: Any, transforms: Any, fill_mode: str = "nearest", xla: bool | None = None
) -> Any:
    """Resample each image at the points its transform gives, with bilinear interpolation.

    The XLA-compiled version (default where XLA works) computes each pixel's source point once
    for all channels and is about 3× cheaper on CPU than ``ImageProjectiveTransformV3``, which
    is the fallback. Both agree to within rounding, except on the one-pixel seam of "wrap" and
    "constant" where the stock op has quirks (it does not interpolate across the seam).

    Args:
        images: float32 tensor ``[B, H, W, C]``.
        transforms: float32 ``[B, 8]`` rows as returned by :func:`affine_matrices`.
        fill_mode: one of ``FILL_MODES``; how points outside the image are sampled.
        xla: force (True) or avoid (False) the XLA version; None picks it if XLA works here.

    Returns:
        float32 tensor of the same shape as ``images``.
    """
    from catdog.model.backend import tf

    if xla is None:
        xla = _xla_works()
    if xla:
        return _xla_warp(fill_mode)(images, transforms)
    shape = tf.shape(images)
    return tf.raw_ops.ImageProjectiveTransformV3(
        images=images,
        transforms=transforms,
        output_shape=shape[1:3],
        fill_value=0.0,
        interpolation="BILINEAR",
        fill_mode=fill_mode.upper(),
    )


def _source_indices(coord: Any, size: Any, fill_mode: str) -> tuple[Any, ...]:
    """Map source coordinates along one axis to (i0, i1, weight of i1, valid0, valid1)."""
    from catdog.model.backend import tf

    n = tf.cast(size, tf.float32)
    if fill_mode == "reflect":  # d c b a | a b c d | d c b a
        coord = tf.math.floormod(coord + 0.5, 2.0 * n)
        coord = tf.where(coord >= n, 2.0 * n - coord, coord) - 0.5
    elif fill_mode == "wrap":  # a b c d | a b c d | a b c d
        coord = tf.math.floormod(coord, n)
    if fill_mode in ("nearest", "reflect"):  # a a a a | a b c d | d d d d
        coord = tf.clip_by_value(coord, 0.0, n - 1.0)
    low = tf.floor(coord)
    i0 = tf.cast(low, tf.int32)
    i1 = i0 + 1
    valid0 = valid1 = None
    if fill_mode == "wrap":
        i1 = tf.where(i1 >= size, 0, i1)
    elif fill_mode == "constant":  # 0 0 0 0 | a b c d | 0 0 0 0
        valid0 = tf.cast((i0 >= 0) & (i0 < size), tf.float32)
        valid1 = tf.cast((i1 >= 0) & (i1 < size), tf.float32)
    # Keep every index inside the image (also guards floormod rounding up to exactly n).
    i0, i1 = tf.clip_by_value(i0, 0, size - 1), tf.clip_by_value(i1, 0, size - 1)
    return i0, i1, coord - low, valid0, valid1


def _gather_warp(images: Any, transforms: Any, fill_mode: str) -> Any:
    """Bilinear resampling by explicit gathers (compiled by XLA into one loop)."""
    from catdog.model.backend import tf

    shape = tf.shape(images)
    batch, height, width, channels = shape[0], shape[1], shape[2], shape[3]
    xs = tf.range(tf.cast(width, tf.float32))[None, None, :]
    ys = tf.range(tf.cast(height, tf.float32))[None, :, None]
    a = [transforms[:, i, None, None] for i in range(6)]
    x0, x1, wx, vx0, vx1 = _source_indices(a[0] * xs + a[1] * ys + a[2], width, fill_mode)
    y0, y1, wy, vy0, vy1 = _source_indices(a[3] * xs + a[4] * ys + a[5], height, fill_mode)
    wx, wy = wx[..., None], wy[..., None]
    flat = tf.reshape(images, [-1, channels])
    row0 = (tf.range(batch) * height * width)[:, None, None] + y0 * width
    row1 = row0 + (y1 - y0) * width

    def at(rows: Any, cols: Any, valid_x: Any, valid_y: Any) -> Any:
        pixels = tf.gather(flat, rows + cols)
        if valid_x is not None:  # "constant": neighbours outside the image count as black
            pixels *= (valid_x * valid_y)[..., None]
        return pixels

    top = at(row0, x0, vx0, vy0) * (1.0 - wx) + at(row0, x1, vx1, vy0) * wx
    bottom = at(row1, x0, vx0, vy1) * (1.0 - wx) + at(row1, x1, vx1, vy1) * wx
    return top * (1.0 - wy) + bottom * wy


@functools.cache
def _xla_warp(fill_mode: str) -> Any:
    """The XLA-compiled :func:`_gather_warp` for one fill mode (one function each)."""
    from catdog.model.backend import tf

    def warp(images: Any, transforms: Any) -> Any:
        return _gather_warp(tf.cast(images, tf.float32), transforms, fill_mode)

    return tf.function(warp, jit_compile=True, reduce_retracing=True)


@functools.cache
def _xla_works() -> bool:
    """Compile and run the XLA warp once on a tiny image; False if XLA is unusable here."""
    from catdog.model.backend import tf

    try:
        with tf.init_scope():  # run eagerly even when first asked while tracing a tf.data map
            image = tf.reshape(tf.range(48, dtype=tf.float32), [1, 4, 4, 3])
            identity = tf.constant([[1.0, 0, 0, 0, 1.0, 0, 0, 0]])
            out = _xla_warp("nearest")(image, identity)
            return bool(tf.reduce_all(tf.abs(out - image) < 1e-4))
    except Exception:  # any XLA failure (missing compiler, unsupported platform) → stock op
        return False
