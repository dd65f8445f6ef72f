"""Pretrained backbones: in-model preprocessing, weights (cache, download, --weights, missing),
freezing, the two training phases, resume across them, Grad-CAM and export."""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import http.server
import re
import threading
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from catdog.cli import main
from catdog.inference.evaluate import final_test
from catdog.model.backbones import BACKBONES
from catdog.model.backend import keras
from catdog.model.registry import build_model, get_network
from catdog.model.saving import load_keras_model
from catdog.model.weights import (
    WEIGHTS_URL_ENV,
    WeightsMissing,
    find_weights,
    weights_status,
)
from catdog.train import runs
from catdog.train.config import TrainConfig, TrainingError
from catdog.train.trainer import resume, train

SMALL = BACKBONES["MobileNetV3Small"]


@pytest.fixture(autouse=True)
def keras_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty Keras cache per test, and no mirror unless a test sets one."""
    home = tmp_path / "keras_home"
    monkeypatch.setenv("KERAS_HOME", str(home))
    monkeypatch.delenv(WEIGHTS_URL_ENV, raising=False)
    return home


def _standalone(name: str, size: int) -> keras.Model:
    if name == "VGG16":
        return keras.applications.VGG16(
            include_top=False, weights=None, input_shape=(size,) * 2 + (3,)
        )
    return keras.applications.MobileNetV3Small(
        include_top=False, weights=None, include_preprocessing=False, input_shape=(size, size, 3)
    )


@pytest.fixture(scope="module")
def small_weights(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A MobileNetV3Small weights file in Keras' own format (.weights.h5), from a fresh base."""
    path = tmp_path_factory.mktemp("weights") / "mobilenet_v3_small.weights.h5"
    _standalone("MobileNetV3Small", 32).save_weights(path)
    return path


def _pixels(n: int, size: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (n, size, size, 3)).astype("float32")


# ---------------------------------------------------------------- preprocessing inside the model


def _preprocessed(model_name: str, pixels: np.ndarray) -> np.ndarray:
    """What a built model's preprocessing layer makes of [0, 1] pixels."""
    model = build_model(model_name, image_size=pixels.shape[1], precision="bfloat16")
    probe = keras.Model(model.inputs, model.get_layer("preprocess").output)
    return probe.predict(pixels, verbose=0)


def test_vgg16_preprocessing_equals_keras_preprocess_input() -> None:
    pixels = _pixels(2, 32)
    ours = _preprocessed("vgg16", pixels / 255.0)  # float32 even in a bfloat16 model
    theirs = keras.applications.vgg16.preprocess_input(pixels.copy())
    np.testing.assert_allclose(ours, theirs, atol=1e-3)
    assert ours[0, 0, 0, 0] == pytest.approx(pixels[0, 0, 0, 2] - 103.939, abs=1e-3)  # B first


def test_mobilenet_preprocessing_equals_its_include_preprocessing() -> None:
    pixels = _pixels(2, 32)
    ours = _preprocessed("mobilenet-v3-small", pixels / 255.0)
    reference = keras.applications.MobileNetV3Small(
        include_top=False, weights=None, include_preprocessing=True, input_shape=(32, 32, 3)
    )
    rescale = next(layer for layer in reference.layers if isinstance(layer, keras.layers.Rescaling))
    theirs = keras.ops.convert_to_numpy(rescale(pixels))
    np.testing.assert_allclose(ours, theirs, atol=1e-5)
    # Keras' preprocess_input for MobileNetV3 passes pixels through: the model does it.
    np.testing.assert_array_equal(keras.applications.mobilenet_v3.preprocess_input(pixels), pixels)
    assert ours.min() >= -1.0 and ours.max() <= 1.0


def test_weights_load_into_the_inline_base_and_features_match(tmp_path: Path) -> None:
    """A model from a weights file computes, from [0, 1] pixels, the features the standalone
    backbone computes from keras' preprocess_input of the raw pixels."""
    base = _standalone("VGG16", 32)
    file = tmp_path / "vgg16.weights.h5"
    base.save_weights(file)
    model = build_model("vgg16", image_size=32, weights=str(file))
    pixels = _pixels(3, 32)
    expected = base.predict(keras.applications.vgg16.preprocess_input(pixels.copy()), verbose=0)
    probe = keras.Model(model.inputs, model.get_layer("block5_pool").output)
    got = probe.predict(pixels / 255.0, verbose=0)
    np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-3)


@pytest.mark.slow
def test_a_saved_vgg16_loads_with_plain_keras_in_safe_mode(tmp_path: Path) -> None:
    """The preprocessing is built-in layers only: no catdog code needed to load the model."""
    import subprocess
    import sys

    model = build_model("vgg16", image_size=32)
    model.save(tmp_path / "m.keras")
    pixels = _pixels(2, 32) / 255.0
    np.save(tmp_path / "x.npy", pixels)
    probe = (
        "import sys, keras, numpy as np\n"
        "m = keras.saving.load_model('m.keras', safe_mode=True)\n"
        "np.save('y.npy', m.predict(np.load('x.npy'), verbose=0))\n"
        "assert 'catdog' not in sys.modules"
    )
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                          timeout=300, cwd=tmp_path)  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    expected = model.predict(pixels, verbose=0)
    np.testing.assert_allclose(np.load(tmp_path / "y.npy"), expected, atol=1e-6)


def test_a_file_of_another_backbone_is_refused(tmp_path: Path, small_weights: Path) -> None:
    from catdog.model.registry import ModelError

    with pytest.raises(ModelError, match="VGG16"):
        build_model("vgg16", image_size=32, weights=str(small_weights))


def test_freezing_trains_exactly_the_head_then_the_top_block() -> None:
    from catdog.model.pretrained import base_layers, set_phase

    vgg = build_model("vgg16", image_size=32)
    # Phase 1: the head alone, Dense(256) and the output (kernel and bias each).
    assert len(vgg.trainable_weights) == 4
    assert all(not layer.trainable for layer in base_layers(vgg))
    assert set_phase(vgg, 2, "block5_conv1") is True
    # Phase 2: also block5_conv1..3 (kernel and bias each).
    assert len(vgg.trainable_weights) == 4 + 6
    assert {w.path.split("/")[0] for w in vgg.trainable_weights} == {
        "block5_conv1", "block5_conv2", "block5_conv3", "head_dense", "head_output"
    }  # fmt: skip
    assert set_phase(vgg, 2, "block5_conv1") is False  # nothing to change
    set_phase(vgg, 1, "block5_conv1")
    assert len(vgg.trainable_weights) == 4

    small = build_model("mobilenet-v3-small", image_size=32)
    assert len(small.trainable_weights) == 2  # the output layer: pooled features, no hidden layer
    set_phase(small, 2, SMALL.top_block)
    # Two inverted-residual blocks (expand, depthwise, project convs: 1 weight each; two
    # squeeze-excite convs: 2 each) and the final 1×1 conv; their batch norms stay frozen.
    assert len(small.trainable_weights) == 2 + 2 * (3 + 4) + 1
    assert not any(
        layer.trainable
        for layer in base_layers(small)
        if isinstance(layer, keras.layers.BatchNormalization)
    )
    with pytest.raises(ValueError, match=r"'nope' is not a layer.*conv_1"):
        set_phase(small, 2, "nope")


def test_bfloat16_builds_the_base_in_bfloat16_and_keeps_the_global_policy() -> None:
    model = build_model("mobilenet-v3-small", image_size=32, precision="bfloat16")
    assert keras.config.dtype_policy().name == "float32"  # restored after the build
    assert model.get_layer("conv").dtype_policy.name == "mixed_bfloat16"
    assert model.get_layer("preprocess").dtype_policy.name == "float32"
    assert model.get_layer("head_output").dtype_policy.name == "float32"


# ---------------------------------------------------------------- where the weights come from


def test_missing_weights_say_which_file_where_and_how(
    keras_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import socket

    with socket.socket() as sock:  # a port nothing listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    monkeypatch.setenv(WEIGHTS_URL_ENV, f"http://127.0.0.1:{port}/")
    with pytest.raises(WeightsMissing) as caught:
        find_weights("vgg16")
    message = str(caught.value)
    assert "vgg16_weights_tf_dim_ordering_tf_kernels_notop.h5" in message
    assert "56.2 MB" in message
    assert str(keras_home / "models") in message
    assert "https://storage.googleapis.com/tensorflow/keras-applications/vgg16/" in message
    assert "--weights PATH" in message
    assert not list((keras_home / "models").glob("*"))  # no half-downloaded file left
    with pytest.raises(WeightsMissing, match=r"given, /no/such\.h5, does not exist"):
        find_weights("vgg16", "/no/such.h5")
    assert find_weights("seed-convnet") is None
    with pytest.raises(ValueError, match="no pretrained base"):
        find_weights("seed-convnet", "/some/file.h5")


def test_training_without_weights_fails_before_any_run_folder(
    tiny_dataset: Path, catdog_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(WEIGHTS_URL_ENV, "http://127.0.0.1:9/")  # discard port: refused
    code = main(["train", "--data", str(tiny_dataset), "--model", "vgg16", "--image-size", "32"])
    assert code != 0
    assert runs.list_runs() == []
    # The library's own check (the dashboard's way in) fails the run with the same message.
    cfg = TrainConfig(data=str(tiny_dataset), model="vgg16", image_size=32, precision="float32")
    with pytest.raises(WeightsMissing, match="--weights PATH"):
        train(cfg)
    (run,) = runs.list_runs()
    assert run.state == "failed" and run.epochs_done == 0


class _Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def weights_server(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """An HTTP server on 127.0.0.1 serving a folder: (its URL, the folder)."""
    folder = tmp_path / "served"
    folder.mkdir()
    handler = functools.partial(_Quiet, directory=str(folder))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/", folder
    finally:
        server.shutdown()
        server.server_close()


def test_download_from_a_mirror_lands_in_keras_cache_and_loads(
    weights_server: tuple[str, Path], keras_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    url, folder = weights_server
    served = folder / SMALL.file_name
    base = _standalone("MobileNetV3Small", 32)
    base.save(served.with_suffix(".keras.h5"))  # Keras' legacy .h5 format, as its files are
    served.with_suffix(".keras.h5").rename(served)
    data = served.read_bytes()
    monkeypatch.setenv(WEIGHTS_URL_ENV, url)
    # The file's hash is checked as Keras does; this one is not ImageNet's, so it is refused.
    with pytest.raises(WeightsMissing, match="is not that file"):
        find_weights("mobilenet-v3-small")
    assert not list((keras_home / "models").glob("*"))
    assert "not on this machine yet" in weights_status("mobilenet-v3-small")
    ours = dataclasses.replace(SMALL, file_hash=hashlib.md5(data).hexdigest())
    monkeypatch.setitem(BACKBONES, SMALL.name, ours)
    seen: list[tuple[int, int]] = []
    path = find_weights("mobilenet-v3-small", on_progress=lambda d, t: seen.append((d, t)))
    assert path == keras_home / "models" / SMALL.file_name
    assert path.read_bytes() == data
    assert seen[-1] == (len(data), len(data))
    assert "present in" in weights_status("mobilenet-v3-small")
    served.unlink()  # from now on the cache serves it
    assert find_weights("mobilenet-v3-small") == path
    model = build_model("mobilenet-v3-small", image_size=32, weights=str(path))
    for name in ("conv", "conv_1", "expanded_conv_10_project_bn"):
        for got, want in zip(
            model.get_layer(name).weights, base.get_layer(name).weights, strict=True
        ):
            np.testing.assert_array_equal(np.asarray(got), np.asarray(want))


@pytest.mark.slow
def test_train_page_says_what_a_pretrained_preset_downloads(keras_home: Path) -> None:
    from pagetest import open_page

    from catdog.data import demo
    from catdog.data.paths import demo_dataset_dir

    demo.generate_demo_dataset(demo_dataset_dir(), counts=(4, 2, 2))
    at = open_page("train")
    at.selectbox(key="train_model").set_value("mobilenet-v3-small").run()
    assert not at.exception, [e.value for e in at.exception]
    captions = " ".join(c.value for c in at.caption)
    assert SMALL.file_name in captions and "4.1 MB" in captions
    assert "not on this machine yet" in captions
    assert at.number_input(key="train_epochs").value == 15
    assert at.select_slider(key="train_learning_rate").value == 1e-3


def test_a_weights_file_is_checked_as_training_loads_it(
    small_weights: Path, tmp_path: Path, tiny_dataset: Path, capsys: pytest.CaptureFixture
) -> None:
    from catdog.model.weights import check_weights_file

    said = check_weights_file("mobilenet-v3-small", small_weights)
    assert said.startswith(f"Uses {small_weights} (")
    assert said.endswith("): weights for all 86 weighted layers of MobileNetV3Small's base (not "
                         "the ImageNet file Keras downloads).")  # fmt: skip
    wrong = f"{small_weights} is not a weights file of VGG16 (13 of the base's layers found no " \
        "weights in it, block1_conv1 first)"  # fmt: skip
    with pytest.raises(ValueError, match=f"^{re.escape(wrong)}$"):
        check_weights_file("vgg16", small_weights)
    zipped = tmp_path / "model.h5"
    zipped.write_bytes(b"PK\x03\x04" + bytes(100))
    problems = {
        zipped: "is not a weights file: it is a zip archive (a saved .keras model?)",
        small_weights.with_suffix(".txt"): "does not exist; give the path of a weights file",
        tmp_path: "is a folder, not a file; give the path of a weights file (.h5)",
    }
    for path, problem in problems.items():
        with pytest.raises(ValueError, match=re.escape(f"{path} {problem}")):
            check_weights_file("mobilenet-v3-small", path)
    with pytest.raises(ValueError, match="seed-convnet has no pretrained base"):
        check_weights_file("seed-convnet", small_weights)
    # The command line refuses a wrong file before making a run folder.
    code = main(["train", "--data", str(tiny_dataset), "--model", "mobilenet-v3-small",
                 "--image-size", "32", "--weights", str(zipped)])  # fmt: skip
    assert code != 0 and "it is a zip archive" in capsys.readouterr().err
    assert runs.list_runs() == []


@pytest.mark.slow
def test_uploaded_weights_are_kept_once_checked(small_weights: Path) -> None:
    from catdog.data.paths import weights_dir
    from catdog.model.weights import save_uploaded_weights

    data = small_weights.read_bytes()
    path, said = save_uploaded_weights("mobilenet-v3-small", "../up/my weights.weights.h5", data)
    assert path.parent == weights_dir() and path.read_bytes() == data
    assert re.fullmatch(r"my_weights-[0-9a-f]{12}\.weights\.h5", path.name)
    assert said.startswith("Uses my weights.weights.h5 (")  # named as uploaded
    assert save_uploaded_weights("mobilenet-v3-small", "my weights.weights.h5", data)[0] == path
    with pytest.raises(ValueError, match=r"^other\.weights\.h5 is not a weights file of VGG16"):
        save_uploaded_weights("vgg16", "other.weights.h5", data)  # checked for each model
    with pytest.raises(ValueError, match=r"^w\.bin is not a weights file: its name does not"):
        save_uploaded_weights("mobilenet-v3-small", "w.bin", data)
    with pytest.raises(ValueError, match=r"^empty\.h5 is not a weights file: it is empty"):
        save_uploaded_weights("mobilenet-v3-small", "empty.h5", b"")
    assert list(weights_dir().iterdir()) == [path]  # nothing refused was kept


def test_fine_tuning_can_start_from_each_listed_block() -> None:
    """Each block a backbone lists is a layer of its base, bottom to top: starting lower
    trains more weights."""
    from catdog.model.pretrained import set_phase

    for model in ("vgg16", "mobilenet-v3-small"):
        built = build_model(model, image_size=32)
        backbone = BACKBONES[str(get_network(model).backbone)]
        assert backbone.top_block in backbone.blocks
        trained = []
        for block in backbone.blocks:
            set_phase(built, 2, block)
            trained.append(len(built.trainable_weights))
        assert trained == sorted(trained, reverse=True) and len(set(trained)) == len(trained)


def test_weights_status_words() -> None:
    assert "4.1 MB" in weights_status("mobilenet-v3-small")
    assert "56.2 MB" in weights_status("vgg16")
    assert "nothing to download" in weights_status("catdog-net")


def test_config_checks_the_pretrained_settings(tiny_dataset: Path, small_weights: Path) -> None:
    cfg = TrainConfig(data=str(tiny_dataset), model="vgg16", weights=str(small_weights)).resolved()
    assert cfg.fine_tune_from == "block5_conv1" and cfg.fine_tune_lr == 1e-5
    assert cfg.weights == str(small_weights.resolve())
    with pytest.raises(TrainingError, match="starts from random weights"):
        TrainConfig(data=str(tiny_dataset), model="seed-baseline", fine_tune_epochs=2).resolved()
    assert cfg.fine_tune_epochs == 10 and cfg.epochs == 30  # the book's order: head, then tuning
    # Fewer epochs keep the preset's share of fine-tuning (a third), at least one head epoch.
    for epochs, tuning in ((6, 2), (2, 1), (1, 0)):
        short = TrainConfig(data=str(tiny_dataset), model="vgg16", epochs=epochs).resolved()
        assert short.fine_tune_epochs == tuning
    with pytest.raises(TrainingError, match=r"fewer than the epochs \(3\).*got 3"):
        TrainConfig(data=str(tiny_dataset), model="vgg16", epochs=3, fine_tune_epochs=3).resolved()


# ---------------------------------------------------------------- training in two phases


def _config(data: Path, weights: Path, **changes: object) -> TrainConfig:
    values: dict = dict(
        data=str(data), model="mobilenet-v3-small", epochs=3, fine_tune_epochs=1, image_size=32,
        batch_size=8, augment=False, precision="float32", weights=str(weights), test=False,
    )  # fmt: skip
    return TrainConfig(**(values | changes))


@pytest.mark.slow
def test_both_phases_in_one_run(tiny_dataset: Path, small_weights: Path) -> None:
    result = train(_config(tiny_dataset, small_weights, test=True), test_with=final_test)
    assert result.state == "completed"
    history = runs.read_history(result.path)
    assert [row["phase"] for row in history] == [1, 1, 2]
    assert [row["learning_rate"] for row in history] == pytest.approx([1e-3, 1e-3, 1e-5])
    # No augmentation: the head trained on cached features, fine-tuning on the images.
    assert [row.get("cached_features") for row in history] == [1, 1, None]
    last = runs.load_model(result.path, which="last")
    assert len(last.trainable_weights) == 17  # the head and the top block, as in phase 2
    # What stayed frozen kept the file's values, batch-norm statistics included (inference mode).
    reference = _standalone("MobileNetV3Small", 32)
    reference.load_weights(small_weights)
    for name in ("conv", "expanded_conv_8_project", "conv_1_bn", "expanded_conv_9_expand_bn"):
        for got, want in zip(last.get_layer(name).weights, reference.get_layer(name).weights,
                             strict=True):  # fmt: skip
            np.testing.assert_array_equal(np.asarray(got), np.asarray(want))
    tuned = last.get_layer("conv_1").weights[0]
    assert not np.array_equal(
        np.asarray(tuned), np.asarray(reference.get_layer("conv_1").weights[0])
    )
    assert 0.0 <= result.metrics["test_accuracy"] <= 1.0


@pytest.mark.slow
def test_resume_across_the_phase_change(tiny_dataset: Path, small_weights: Path) -> None:
    def stop_after(epoch: int) -> tuple[threading.Event, object]:
        stop = threading.Event()

        def on_event(event: object) -> None:
            if event.kind == "epoch" and event.epoch == epoch:
                stop.set()

        return stop, on_event

    stop, on_event = stop_after(2)  # the last epoch of phase 1
    first = train(_config(tiny_dataset, small_weights, epochs=5, fine_tune_epochs=3),
                  stop=stop, on_event=on_event)  # fmt: skip
    assert first.state == "stopped"
    assert [row["phase"] for row in runs.read_history(first.path)] == [1, 1]
    assert len(runs.load_model(first.path, which="last").trainable_weights) == 2

    # Resumed at the boundary: recompiled for phase 2. Stopped in epoch 4's first batch (the
    # epoch is kept, as every stop keeps the batches it trained): a stop inside phase 2.
    stop, on_event = stop_after(3)
    second = resume(first.path, stop=stop, on_event=on_event)
    assert second.state == "stopped"
    assert [row["phase"] for row in runs.read_history(first.path)] == [1, 1, 2, 2]
    assert len(runs.load_model(first.path, which="last").trainable_weights) == 17

    third = resume(first.path)  # loaded in phase 2: its trainable set as saved
    assert third.state == "completed"
    history = runs.read_history(first.path)
    assert [row["phase"] for row in history] == [1, 1, 2, 2, 2]
    assert [row["learning_rate"] for row in history] == pytest.approx([1e-3] * 2 + [1e-5] * 3)
    assert len(runs.load_model(first.path, which="last").trainable_weights) == 17


@pytest.mark.slow
def test_the_time_limit_holds_across_the_phases(tiny_dataset: Path, small_weights: Path) -> None:
    # A limit far shorter than an epoch: the run ends after its first epoch, in phase 1,
    # without starting the fine-tuning phase, and is complete (nothing to resume).
    cfg = _config(tiny_dataset, small_weights, epochs=4, fine_tune_epochs=2,
                  time_limit_minutes=0.0001)  # fmt: skip
    result = train(cfg)
    assert result.state == "completed"
    assert [row["phase"] for row in runs.read_history(result.path)] == [1]
    with pytest.raises(runs.RunError, match="time limit"):
        resume(result.path)


@pytest.mark.slow
def test_grad_cam_and_export_of_a_pretrained_run(
    dataset_factory, small_weights: Path, tmp_path: Path
) -> None:
    from catdog.inference.explain import feature_layer, grad_cam
    from catdog.model.pretrained import base_layers

    data = dataset_factory(size=64, counts=(8, 4, 4))
    weights = tmp_path / "w64.weights.h5"
    _standalone("MobileNetV3Small", 64).save_weights(weights)
    result = train(_config(data, weights, image_size=64, epochs=2))
    model = runs.load_model(result.path)
    layer = feature_layer(model)
    assert layer in {lay.name for lay in base_layers(model)}  # the base's last feature map
    heat = grad_cam(model, _pixels(3, 64) / 255.0, 1)
    assert heat.shape == (3, 2, 2)  # 64 px / 32
    assert heat.min() >= 0.0 and heat.max() <= 1.0

    out = tmp_path / "exported.keras"
    assert main(["export", result.run_id, "--format", "keras", "--out", str(out)]) == 0
    exported = load_keras_model(out)  # safe mode: no Lambda layer anywhere
    pixels = _pixels(4, 64, seed=3)
    np.testing.assert_allclose(
        exported.predict(pixels, verbose=0), model.predict(pixels / 255.0, verbose=0), atol=1e-5
    )
