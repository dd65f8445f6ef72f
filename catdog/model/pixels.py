"""How a model's input pixels are scaled: the one rule training, prediction, Grad-CAM and the
feature cache share, so a photo scores the same everywhere.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from catdog.model.backend import tf

# The seed's rescale=1./255, as a float32 factor (the same number in NumPy and TensorFlow).
PIXEL_SCALE = np.float32(1.0 / 255.0)


def scale_pixels(images: Any) -> Any:
    """Rescale 0–255 pixels to float32 in [0, 1], exactly as training does (× 1/255).

    Args:
        images: a NumPy array or a tensor of pixel values 0–255 (any numeric dtype).

    Returns:
        float32 values in [0, 1], a NumPy array for NumPy input, else a tensor.
    """
    if isinstance(images, np.ndarray):
        return images.astype(np.float32) * PIXEL_SCALE
    return tf.cast(images, tf.float32) * PIXEL_SCALE
