"""The ImageNet-trained convolutional bases catdog's pretrained models start from, and the
weights file Keras downloads for each (name, URL, hash, size), with the block fine-tuning
unfreezes by default.

Plain data, no TensorFlow: the registry's presets name a base by its key in :data:`BACKBONES`,
:mod:`catdog.model.weights` finds its file and :mod:`catdog.model.pretrained` builds it.
"""

from __future__ import annotations

from dataclasses import dataclass

from catdog.system import MB


@dataclass(frozen=True)
class Backbone:
    """A Keras Applications convolutional base and its ImageNet weights file (without the top).

    Args:
        name: the Keras Applications class (``keras.applications.<name>``).
        file_name: the weights file Keras downloads for ``include_top=False``.
        url: the folder Keras downloads it from.
        file_hash: the file's hash as Keras checks it (32 hex digits: MD5, 64: SHA-256).
        size: the file's size in bytes.
        top_block: the first layer fine-tuning unfreezes by default (it and every layer after).
        blocks: the layers fine-tuning may start from, bottom to top: the first layer of each
            block (``top_block`` among them).
    """

    name: str
    file_name: str
    url: str
    file_hash: str
    size: int
    top_block: str
    blocks: tuple[str, ...]

    @property
    def megabytes(self) -> float:
        """The file's size in MB (:data:`catdog.system.MB`)."""
        return self.size / MB


BACKBONES: dict[str, Backbone] = {
    backbone.name: backbone
    for backbone in (
        Backbone(
            name="VGG16",
            file_name="vgg16_weights_tf_dim_ordering_tf_kernels_notop.h5",
            url="https://storage.googleapis.com/tensorflow/keras-applications/vgg16/",
            file_hash="6d6bbae143d832006294945121d1f1fc",
            size=58_889_256,
            top_block="block5_conv1",  # the book fine-tunes block 5 (three 3×3 convolutions)
            blocks=tuple(f"block{k}_conv1" for k in range(1, 6)),
        ),
        Backbone(
            name="MobileNetV3Small",
            file_name="weights_mobilenet_v3_small_224_1.0_float_no_top_v2.h5",
            url="https://storage.googleapis.com/tensorflow/keras-applications/mobilenet_v3/",
            file_hash="d3e8ec802a04aa4fc771ee12a9a9b836",
            size=4_334_752,
            # The last two inverted-residual blocks (96 channels at 1/32 of the input side) and
            # the final 1×1 convolution.
            top_block="expanded_conv_9_expand",
            # The stem, the first inverted-residual block (no expansion), blocks 1 to 10, and
            # the final 1×1 convolution alone.
            blocks=(
                "conv",
                "expanded_conv_depthwise",
                *(f"expanded_conv_{k}_expand" for k in range(1, 11)),
                "conv_1",
            ),
        ),
    )
}
