"""catdog-net: a compact residual convnet for small datasets, trained from scratch on a CPU.

Where the seed's network spends 93% of its 3.45 M parameters on one dense layer over a 7×7×128
map, this one follows what made convnets data-efficient since: batch normalisation after every
convolution, residual connections, global average pooling instead of a big dense head (so few
parameters sit where overfitting happens), and a strided stem so most of the compute runs at
low resolution. Widths and depth are chosen for 2 CPU cores: see benchmarks/ for the numbers.
"""

from __future__ import annotations

from typing import Any

from catdog.model.backend import keras, tf

# (filters, residual blocks) per stage; each stage starts by halving the resolution.
DEFAULT_STAGES: tuple[tuple[int, int], ...] = ((64, 1), (128, 2), (256, 2), (384, 1))
STEM_FILTERS = 32


@keras.saving.register_keras_serializable(package="catdog")
class FusedBatchNorm(keras.layers.Layer):
    """Batch normalisation as ONE TensorFlow kernel each way (``FusedBatchNormV3``).

    Keras' own ``BatchNormalization`` upcasts bfloat16 activations to float32 and normalises
    with separate cast, moment, scale and shift ops, each a full pass over the activations;
    on a 2-core CPU those memory-bound passes cost nearly as much as the AMX convolutions. The
    fused kernel reads bfloat16 and keeps its statistics in float32
    (``python benchmarks/arch_speed.py`` measures the difference).
    Same maths and defaults as Keras' layer: per-channel scale and offset, moving averages
    with ``momentum``, ``epsilon`` added to the variance.
    """

    def __init__(self, momentum: float = 0.99, epsilon: float = 1e-3, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.momentum, self.epsilon = momentum, epsilon

    def build(self, input_shape: Any) -> None:
        channels = (int(input_shape[-1]),)
        weight = dict(shape=channels, autocast=False)  # statistics stay float32
        self.gamma = self.add_weight(name="gamma", initializer="ones", **weight)
        self.beta = self.add_weight(name="beta", initializer="zeros", **weight)
        self.moving_mean = self.add_weight(
            name="moving_mean", initializer="zeros", trainable=False, **weight
        )
        self.moving_variance = self.add_weight(
            name="moving_variance", initializer="ones", trainable=False, **weight
        )

    def call(self, inputs: Any, training: bool | None = None) -> Any:
        """Normalise with the batch's statistics when training, the moving ones otherwise."""
        training = bool(training)
        outputs, mean, variance = tf.compat.v1.nn.fused_batch_norm(
            inputs,
            self.gamma,
            self.beta,
            mean=self.moving_mean,
            variance=self.moving_variance,
            epsilon=self.epsilon,
            is_training=training,
            exponential_avg_factor=1.0 - self.momentum if training else 1.0,
        )[:3]
        if training:  # the kernel returns the updated moving averages
            self.moving_mean.assign(mean)
            self.moving_variance.assign(variance)
        return outputs

    def get_config(self) -> dict[str, Any]:
        return super().get_config() | {"momentum": self.momentum, "epsilon": self.epsilon}


def _conv_bn(
    x: Any, filters: int, kernel: int, stride: int, dtype: str, relu: bool = True, name: str = ""
) -> Any:
    """Convolution (no bias: batch norm follows), batch norm, optional ReLU."""
    x = keras.layers.Conv2D(
        filters,
        kernel,
        strides=stride,
        padding="same",
        use_bias=False,
        kernel_initializer="he_normal",
        dtype=dtype,
        name=f"{name}_conv",
    )(x)
    x = FusedBatchNorm(dtype=dtype, name=f"{name}_bn")(x)
    return keras.layers.ReLU(dtype=dtype, name=f"{name}_relu")(x) if relu else x


def _residual_block(x: Any, filters: int, stride: int, dtype: str, name: str) -> Any:
    """Two 3×3 convolutions plus a shortcut (projected when the shape changes)."""
    shortcut = x
    y = _conv_bn(x, filters, 3, stride, dtype, name=f"{name}_a")
    y = _conv_bn(y, filters, 3, 1, dtype, relu=False, name=f"{name}_b")
    if stride != 1 or x.shape[-1] != filters:
        if stride != 1:
            shortcut = keras.layers.AveragePooling2D(
                stride, padding="same", dtype=dtype, name=f"{name}_pool"
            )(shortcut)
        shortcut = _conv_bn(shortcut, filters, 1, 1, dtype, relu=False, name=f"{name}_proj")
    x = keras.layers.Add(dtype=dtype, name=f"{name}_add")([y, shortcut])
    return keras.layers.ReLU(dtype=dtype, name=f"{name}_out")(x)


def build_catdog_net(
    image_size: int,
    num_classes: int,
    dropout: float = 0.3,
    dtype: str = "float32",
    stages: tuple[tuple[int, int], ...] = DEFAULT_STAGES,
) -> keras.Model:
    """Build catdog-net (uncompiled).

    Args:
        image_size: side of the square RGB input (pixels scaled to [0, 1] by the pipeline).
        num_classes: 2 → one sigmoid unit; more → softmax (at least 2: the registry's
            :func:`~catdog.model.registry.build_model` checks).
        dropout: rate of the Dropout before the output layer.
        dtype: Keras dtype policy of the hidden layers (``"mixed_bfloat16"`` for speed); the
            output layer always computes in float32.
        stages: (filters, blocks) per stage; each stage halves the resolution.

    Returns:
        A functional ``keras.Model``.
    """
    units, activation = (1, "sigmoid") if num_classes == 2 else (num_classes, "softmax")
    inputs = keras.Input(shape=(image_size, image_size, 3), name="image")
    x = _conv_bn(inputs, STEM_FILTERS, 3, 2, dtype, name="stem1")
    x = _conv_bn(x, STEM_FILTERS, 3, 1, dtype, name="stem2")
    for s, (filters, blocks) in enumerate(stages, start=1):
        for b in range(blocks):
            x = _residual_block(x, filters, 2 if b == 0 else 1, dtype, name=f"stage{s}_{b + 1}")
    x = keras.layers.GlobalAveragePooling2D(dtype=dtype, name="pool")(x)
    if dropout > 0:
        x = keras.layers.Dropout(dropout, dtype=dtype, name="dropout")(x)
    outputs = keras.layers.Dense(units, activation=activation, dtype="float32", name="head")(x)
    return keras.Model(inputs, outputs, name="catdog_net")
