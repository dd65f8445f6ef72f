"""The registry's models: the seed's exact architecture, heads, compile settings, summary rows."""

from __future__ import annotations

import pytest

from catdog.model.registry import (
    NETWORKS,
    ModelError,
    build_model,
    compile_model,
    get_network,
    summary_rows,
)
from catdog.train.presets import PRESETS, get_preset

# The seed's summary table (Deep Learning with Python §5.2), layer by layer.
SEED_TABLE = [
    ("Conv2D", (None, 148, 148, 32), 896),
    ("MaxPooling2D", (None, 74, 74, 32), 0),
    ("Conv2D", (None, 72, 72, 64), 18_496),
    ("MaxPooling2D", (None, 36, 36, 64), 0),
    ("Conv2D", (None, 34, 34, 128), 73_856),
    ("MaxPooling2D", (None, 17, 17, 128), 0),
    ("Conv2D", (None, 15, 15, 128), 147_584),
    ("MaxPooling2D", (None, 7, 7, 128), 0),
    ("Flatten", (None, 6272), 0),
    ("Dense", (None, 512), 3_211_776),
    ("Dense", (None, 1), 513),
]


def test_seed_baseline_matches_the_seed_layer_by_layer() -> None:
    model = build_model("seed-convnet")
    got = [
        (type(layer).__name__, tuple(layer.output.shape), layer.count_params())
        for layer in model.layers
    ]
    assert got == SEED_TABLE
    assert model.count_params() == 3_453_121


def test_seed_dropout_adds_only_a_dropout_layer() -> None:
    model = build_model("seed-convnet", dropout=0.5)
    types = [type(layer).__name__ for layer in model.layers]
    assert types.index("Dropout") == types.index("Flatten") + 1
    assert model.layers[types.index("Dropout")].rate == 0.5
    assert model.count_params() == 3_453_121
    spec = get_preset("seed-dropout")
    assert (spec.augment, spec.batch_size, spec.epochs, spec.steps_per_epoch) == (
        True,
        32,
        100,
        100,
    )


def test_multiclass_head_is_softmax_with_categorical_loss() -> None:
    model = build_model("seed-convnet", num_classes=3, image_size=64)
    head = model.layers[-1]
    assert head.units == 3 and head.activation.__name__ == "softmax"
    compile_model(model, num_classes=3, learning_rate=1e-3)
    assert model.loss == "categorical_crossentropy"


def test_binary_compile_is_the_seeds() -> None:
    model = compile_model(
        build_model("seed-convnet", image_size=64), num_classes=2, learning_rate=1e-4
    )
    assert model.loss == "binary_crossentropy"
    assert type(model.optimizer).__name__ == "RMSprop"
    assert float(model.optimizer.learning_rate) == pytest.approx(1e-4)


def test_summary_rows_total_equals_keras() -> None:
    for name in NETWORKS:
        model = build_model(name)
        rows = summary_rows(model)
        assert sum(r["params"] for r in rows) == model.count_params()
        if name.startswith("seed-"):
            assert rows[0]["output_shape"] == "(batch, 148, 148, 32)"


def test_errors_name_the_bad_value() -> None:
    with pytest.raises(ModelError, match=r"unknown network 'resnet9000'.*seed-convnet"):
        get_network("resnet9000")
    with pytest.raises(ModelError, match=r"unknown model 'resnet9000'.*seed-baseline"):
        get_preset("resnet9000")
    with pytest.raises(ModelError, match="at least 2 classes, got 1"):
        build_model("seed-convnet", num_classes=1)
    with pytest.raises(ModelError, match="at least 2 classes, got 1"):
        build_model("catdog-net", num_classes=1, image_size=32)
    # Training settings (dropout, learning rate, weight decay...) are checked once, by
    # TrainConfig: see test_training.py.


def test_too_small_images_are_refused_with_the_minimum() -> None:
    assert build_model("seed-convnet", image_size=46).layers[-4].output.shape[1:] == (1, 1, 128)
    with pytest.raises(ModelError, match="at least 46 px, got 45"):
        build_model("seed-convnet", image_size=45)


def test_catdog_net_is_compact_bfloat16_with_a_float32_head() -> None:
    model = build_model("catdog-net", image_size=64, precision="bfloat16")
    # Global pooling: unlike the seed (93% of its weights in one Dense), the head is tiny.
    assert model.get_layer("head").count_params() < 0.01 * model.count_params()
    assert model.layers[-1].dtype_policy.name == "float32"
    assert model.get_layer("stem1_conv").dtype_policy.name == "mixed_bfloat16"
    assert type(model.get_layer("pool")).__name__ == "GlobalAveragePooling2D"
    float_model = build_model("catdog-net", image_size=64, precision="float32")
    assert float_model.get_layer("stem1_conv").dtype_policy.name == "float32"
    assert float_model.count_params() == model.count_params()


def test_label_smoothing_changes_the_loss() -> None:
    model = compile_model(
        build_model("catdog-net", image_size=32),
        num_classes=2,
        learning_rate=1e-3,
        optimizer="adamw",
        label_smoothing=0.1,
    )
    assert model.loss.label_smoothing == pytest.approx(0.1)


def test_weight_decay_shrinks_weights_by_rate_times_decay_per_step() -> None:
    import numpy as np

    model = compile_model(
        build_model("catdog-net", image_size=32),
        num_classes=2,
        learning_rate=0.1,
        optimizer="adamw",
        weight_decay=0.5,
    )
    kernel = model.get_layer("head").kernel
    before = kernel.numpy()
    # A zero gradient moves Adam's part by nothing: what is left is the decay alone.
    model.optimizer.apply_gradients([(np.zeros_like(before), kernel)])
    np.testing.assert_allclose(kernel.numpy(), before * (1 - 0.1 * 0.5), rtol=1e-5)
    with pytest.raises(ModelError, match="weight decay needs the adamw optimizer, not rmsprop"):
        compile_model(
            build_model("seed-convnet"), num_classes=2, learning_rate=1e-4, weight_decay=0.01
        )
    # As measured: the long schedule chose 0.05 on validation, the short one kept 1e-4.
    assert get_preset("catdog-net").weight_decay == pytest.approx(0.05)
    assert get_preset("catdog-net-quick").weight_decay == pytest.approx(1e-4)


@pytest.mark.parametrize("dtype", ["float32", "mixed_bfloat16"])
def test_fused_batch_norm_matches_keras_batch_normalization(dtype: str) -> None:
    import numpy as np

    from catdog.model.backend import keras
    from catdog.model.catdognet import FusedBatchNorm

    rng = np.random.default_rng(0)
    x = (rng.normal(3.0, 2.0, (8, 5, 5, 4)) * rng.uniform(0.5, 4, 4)).astype("float32")
    fused = FusedBatchNorm(momentum=0.9, dtype=dtype)
    stock = keras.layers.BatchNormalization(momentum=0.9, dtype=dtype)
    gamma, beta = rng.uniform(0.5, 2, 4).astype("float32"), rng.uniform(-1, 1, 4).astype("float32")
    for layer in (fused, stock):
        layer.build(x.shape)
        layer.gamma.assign(gamma)
        layer.beta.assign(beta)
    tol = 1e-4 if dtype == "float32" else 3e-2  # bfloat16 keeps ~3 significant digits
    got, want = (np.asarray(layer(x, training=True), "float32") for layer in (fused, stock))
    np.testing.assert_allclose(got, want, atol=tol, rtol=tol)
    # Moving statistics: the same mean; the variance differs only by n/(n-1) (the fused
    # kernel keeps the unbiased estimate, Keras the biased one).
    n = 8 * 5 * 5
    np.testing.assert_allclose(fused.moving_mean, stock.moving_mean, rtol=1e-2, atol=1e-2)
    bessel = 0.9 + 0.1 * (stock.moving_variance.numpy() - 0.9) / 0.1 * n / (n - 1)
    np.testing.assert_allclose(fused.moving_variance, bessel, rtol=2e-2)
    # Inference normalises with the moving statistics.
    got = np.asarray(fused(x, training=False), "float32")
    mean, var = fused.moving_mean.numpy(), fused.moving_variance.numpy()
    want = (x - mean) / np.sqrt(var + 1e-3) * fused.gamma.numpy() + fused.beta.numpy()
    np.testing.assert_allclose(got, want, atol=tol * 10, rtol=tol)


def test_recommended_model_is_catdog_net_except_on_the_demo() -> None:
    from catdog.train.presets import RECOMMENDED, recommended_model

    assert recommended_model(demo=False) == RECOMMENDED == "catdog-net"
    assert recommended_model(demo=True) == "seed-baseline"
    assert RECOMMENDED in PRESETS


@pytest.mark.slow
def test_fused_adamw_takes_the_same_steps_as_keras_adamw(tmp_path) -> None:
    """catdog's one-kernel AdamW against Keras' own: the same update for the same gradients
    (weight decay on), the same training within float rounding, and it saves and reloads."""
    import numpy as np

    from catdog.model.backend import keras, tf
    from catdog.model.optim import FusedAdamW

    rng = np.random.default_rng(0)
    start = rng.normal(size=(64, 16)).astype("float32")
    grads = [rng.normal(size=(64, 16)).astype("float32") for _ in range(4)]
    weights = []
    for optimizer in (FusedAdamW(1e-2, weight_decay=0.05), keras.optimizers.AdamW(1e-2, 0.05)):
        var = keras.Variable(start)
        for g in grads:
            optimizer.apply_gradients([(tf.constant(g), var)])
        weights.append((var.numpy(), [np.asarray(v) for v in optimizer.variables]))
    (ours, our_slots), (theirs, their_slots) = weights
    assert np.abs(ours - start).max() > 0.03  # four steps of 1e-2 really moved it
    np.testing.assert_allclose(ours, theirs, rtol=1e-5, atol=1e-6)  # float32 rounding
    for a, b in zip(our_slots, their_slots, strict=True):  # iterations, moments
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-7)

    def trained(optimizer: keras.optimizers.Optimizer) -> keras.Model:
        keras.utils.set_random_seed(3)
        model = build_model("catdog-net", image_size=32, precision="float32")
        model.compile(optimizer=optimizer, loss="binary_crossentropy")
        x = rng.uniform(0, 255, (8, 32, 32, 3)).astype("float32")
        y = rng.integers(0, 2, (8, 1)).astype("float32")
        for _ in range(3):
            model.train_on_batch(x, y)
        return model

    state = rng.bit_generator.state
    ours = trained(FusedAdamW(learning_rate=1e-2, weight_decay=0.05))
    rng.bit_generator.state = state  # the same batch for both
    keras_own = trained(keras.optimizers.AdamW(learning_rate=1e-2, weight_decay=0.05))
    for a, b in zip(ours.trainable_weights, keras_own.trainable_weights, strict=True):
        # Adam divides by sqrt(v): rounding differences in the gradients grow, but stay far
        # below one step (lr 1e-2; without bias correction the first steps differ by ~lr).
        np.testing.assert_allclose(a.numpy(), b.numpy(), atol=1e-3)

    compiled = compile_model(
        build_model("catdog-net", image_size=32), num_classes=2, learning_rate=1e-3,
        optimizer="adamw", weight_decay=0.05,
    )  # fmt: skip
    assert isinstance(compiled.optimizer, FusedAdamW)
    ours.save(tmp_path / "m.keras")
    again = keras.models.load_model(tmp_path / "m.keras")  # registered on import
    assert isinstance(again.optimizer, FusedAdamW)
    assert int(again.optimizer.iterations) == 3
    assert again.optimizer.weight_decay == pytest.approx(0.05)
    x = tf.zeros((2, 32, 32, 3))
    np.testing.assert_allclose(again(x).numpy(), ours(x).numpy(), rtol=1e-5)


def test_the_seed_convnet_is_named_the_same_however_many_were_built_before() -> None:
    """Names never come from Keras' per-thread counter, which a long-lived training thread
    (the dashboard's) would carry from one model to the next."""
    first = [layer.name for layer in build_model("seed-convnet", image_size=48, dropout=0.5).layers]
    again = [layer.name for layer in build_model("seed-convnet", image_size=48, dropout=0.5).layers]
    assert first == again and first[:2] == ["conv2d", "max_pooling2d"] and len(set(first)) == 12
