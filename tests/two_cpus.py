"""MirroredStrategy over two logical CPU devices, run as a script: ``python two_cpus.py DATA``.

TensorFlow splits the CPU into logical devices only before it initialises its devices, so this
runs in a fresh process that configures them before catdog loads TensorFlow. It prints one JSON
line for test_distribute.py:

- a seed-baseline run (no augmentation, no dropout, seed 3) on two replicas of 16 images and
  the same run on one device with the same global batch of 32 (the whole training split: one
  step per epoch, so the order the images are shuffled in does not matter) and the same
  (doubled, warmed-up) learning rate: their final weights and losses, which must match within
  float rounding;
- catdog-net's custom kernels under the strategy: FusedAdamW against Keras' AdamW on the same
  gradients (and each device's copy of the weight), FusedBatchNorm against Keras'
  BatchNormalization in a small convnet trained both ways with FusedAdamW.
"""

from __future__ import annotations

import json
import sys
import time

import numpy as np
import tensorflow as tf

_CPU = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(_CPU, [tf.config.LogicalDeviceConfiguration()] * 2)

from catdog.model.backend import keras  # noqa: E402
from catdog.model.catdognet import FusedBatchNorm  # noqa: E402
from catdog.model.optim import FusedAdamW  # noqa: E402
from catdog.model.registry import build_model  # noqa: E402
from catdog.train import runs  # noqa: E402
from catdog.train.config import TrainConfig  # noqa: E402
from catdog.train.distribute import distribution  # noqa: E402
from catdog.train.trainer import train  # noqa: E402

STRATEGY = distribution("mirrored").strategy  # the trainer's (one per process and devices)


def largest_difference(a: list[np.ndarray], b: list[np.ndarray]) -> float:
    return max(float(np.abs(x - y).max()) for x, y in zip(a, b, strict=True))


def same_run_two_ways(data: str) -> dict:
    """The seed's convnet on two replicas and on one device, the same global batch and rate."""
    base = {"data": data, "model": "seed-baseline", "epochs": 3, "image_size": 48, "seed": 3,
            "precision": "float32", "augment": False, "dropout": 0.0, "test": False}  # fmt: skip
    one = train(TrainConfig(**base, strategy="one", batch_size=32, learning_rate=2e-3,
                            warmup_epochs=1), run_id="one")  # fmt: skip
    two = train(TrainConfig(**base, strategy="mirrored", batch_size=16, learning_rate=1e-3),
                run_id="two")  # fmt: skip
    weights = [runs.load_model(r.path, "last").get_weights() for r in (one, two)]
    keras.utils.set_random_seed(3)
    start = build_model("seed-convnet", image_size=48, dropout=0.0).get_weights()
    losses = [[row[k] for row in r.history for k in ("loss", "val_loss")] for r in (one, two)]
    record = json.loads((two.path / runs.CONFIG_FILE).read_text())["distribution"]
    return {
        "mirrored": record,
        "moved": largest_difference(weights[0], start),
        "max_weight_difference": largest_difference(*weights),
        "max_loss_difference": float(np.abs(np.subtract(*losses)).max()),
    }


def _replica_step(var: keras.Variable, optimizer: keras.optimizers.Optimizer):
    """One optimizer step on ``var`` in every replica, each with the same gradient ``g``."""

    def step(g: tf.Tensor) -> None:
        # tf.identity: a copy on each replica's device, as a computed gradient is.
        STRATEGY.run(lambda: optimizer.apply_gradients([(tf.identity(g), var)]))

    return step


def adamw_under_mirrored() -> dict:
    """FusedAdamW and Keras' AdamW given the same gradients in replica context."""
    rng = np.random.default_rng(0)
    start = rng.normal(size=(64, 16)).astype("float32")
    grads = [tf.constant(rng.normal(size=(64, 16)).astype("float32")) for _ in range(4)]
    copies = []
    for make in (FusedAdamW, keras.optimizers.AdamW):
        with STRATEGY.scope():
            var = keras.Variable(start)
            optimizer = make(learning_rate=1e-2, weight_decay=0.05)
            optimizer.build([var])
        step = tf.function(_replica_step(var, optimizer))
        for g in grads:
            step(g)
        copies.append([t.numpy() for t in STRATEGY.experimental_local_results(var.value)])
    (ours, theirs) = copies
    return {
        "fused_adamw_vs_keras": largest_difference(ours, theirs),
        "fused_adamw_replicas_equal": bool(np.array_equal(ours[0], ours[1])),
    }


def batch_norm_under_mirrored() -> dict:
    """A small convnet with FusedBatchNorm, then with Keras' BatchNormalization (both with
    FusedAdamW), trained the same way on two replicas."""
    rng = np.random.default_rng(1)
    x = rng.uniform(0, 1, (32, 12, 12, 3)).astype("float32")
    y = rng.integers(0, 2, (32, 1)).astype("float32")
    trained = []
    for norm in (FusedBatchNorm, keras.layers.BatchNormalization):
        keras.utils.set_random_seed(5)
        with STRATEGY.scope():
            inputs = keras.Input((12, 12, 3))
            h = keras.layers.Conv2D(8, 3, use_bias=False)(inputs)
            h = keras.layers.ReLU()(norm()(h))
            outputs = keras.layers.Dense(1, "sigmoid")(keras.layers.GlobalAveragePooling2D()(h))
            model = keras.Model(inputs, outputs)
            model.compile(FusedAdamW(learning_rate=1e-2, weight_decay=0.05), "binary_crossentropy")
        start = [w.numpy() for w in model.trainable_weights]
        model.fit(x, y, batch_size=8, epochs=3, shuffle=False, verbose=0)
        trained.append([w.numpy() for w in model.trainable_weights])
    return {
        "fused_bn_moved": largest_difference(trained[0], start),
        "fused_bn_vs_keras": largest_difference(*trained),
    }


if __name__ == "__main__":
    data, result = sys.argv[1], {}
    for part in (same_run_two_ways, adamw_under_mirrored, batch_norm_under_mirrored):
        started = time.perf_counter()
        result |= part(data) if part is same_run_two_ways else part()
        print(f"{part.__name__}: {time.perf_counter() - started:.1f} s", file=sys.stderr)
    print(json.dumps(result))
