"""The recommended recipe: from the photos per class, the measured speed and the weights here."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from pagetest import navigation_only, open_page  # noqa: F401  (an autouse fixture)

from catdog import policy as hosting
from catdog.data.datasets import DatasetInfo
from catdog.data.paths import data_home, datasets_dir, demo_dataset_dir
from catdog.model.backbones import BACKBONES
from catdog.train.config import TrainConfig
from catdog.train.precision import CACHE_FILE, cache_key
from catdog.train.recommend import recommend


def info(per_class: int, root: Path | None = None) -> DatasetInfo:
    counts = {"train": {"cats": per_class, "dogs": per_class + 5}, "validation": {"cats": 3,
              "dogs": 3}, "test": {"cats": 3, "dogs": 3}}  # fmt: skip
    return DatasetInfo(root or datasets_dir() / "pets", "pets", ("cats", "dogs"), counts)


@pytest.fixture
def keras_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty Keras cache (``$KERAS_HOME/models``)."""
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras"))
    return tmp_path / "keras" / "models"


def test_no_weights_and_few_photos_a_small_recipe_from_scratch(keras_home: Path) -> None:
    rec = recommend(info(14))
    assert rec.model == "seed-dropout"
    assert rec.settings["image_size"] == 64 and rec.settings["augment"] is True
    assert rec.settings["epochs"] == 3000 // 33 and rec.settings["time_limit_minutes"] == 2.0
    assert rec.settings["precision"] == "float32"  # auto would first time it for 30 s
    assert rec.reason.startswith("No pretrained weights on this machine and 14 training photos")
    assert f"copy {BACKBONES['MobileNetV3Small'].file_name} into {keras_home}" in rec.reason
    TrainConfig(data=".", model=rec.model, **rec.settings).resolved()  # settings that work


def test_the_speed_measured_here_sizes_the_small_recipe(keras_home: Path) -> None:
    key = cache_key("seed-dropout", 64, 16)
    (data_home() / "cache").mkdir()
    entry = {"speeds": {"float32": 20.0, "bfloat16": 10.0}, "errors": {}, "measured": "x"}
    (data_home() / "cache" / CACHE_FILE).write_text(json.dumps({key: entry}))
    rec = recommend(info(14))
    assert rec.settings["precision"] == "auto"  # measured: choosing costs nothing now
    # (33 + 6/3) images at 20 images/s and a second more: 2.75 s an epoch, 43 in 2 minutes.
    assert "about 43 epochs at the 20 training images/s measured here" in rec.reason


def test_weights_here_a_pretrained_base_with_fast_feature_extraction(keras_home: Path) -> None:
    keras_home.mkdir(parents=True)
    (keras_home / BACKBONES["MobileNetV3Small"].file_name).write_bytes(b"weights")
    rec = recommend(info(14))
    assert rec.model == "mobilenet-v3-small"
    assert rec.settings["augment"] is False and rec.settings["fine_tune_epochs"] == 0
    assert "fast feature extraction" in rec.reason
    TrainConfig(data=".", model=rec.model, **rec.settings).resolved()


def test_many_photos_catdog_net_and_the_demo_keeps_its_story(keras_home: Path) -> None:
    rec = recommend(info(300))
    assert rec.model == "catdog-net" and rec.settings == {}
    assert rec.reason.startswith("300 training photos per class are enough")
    assert recommend(info(300, demo_dataset_dir())) is None


def test_hosted_mode_recommends_within_its_caps(keras_home, monkeypatch) -> None:
    monkeypatch.setenv(hosting.ENV_VAR, "1")
    monkeypatch.setenv("CATDOG_HOSTED_MAX_IMAGE_SIZE", "48")
    monkeypatch.setenv("CATDOG_HOSTED_MAX_TRAINING_MINUTES", "1")
    rec = recommend(info(14))
    assert rec.settings["image_size"] == 48 and rec.settings["time_limit_minutes"] == 1.0
    config = TrainConfig(data=".", model=rec.model, **rec.settings).resolved()
    hosting.current_policy().check_training(config)


@pytest.mark.slow
def test_train_page_preselects_the_recommendation_and_says_why(keras_home: Path) -> None:
    from builders import image_bytes

    from catdog.data.builder import build_dataset

    photos = {c: [(f"{c}{i}.jpg", image_bytes(k, seed=i)) for i in range(8)]
              for k, c in enumerate(("cats", "dogs"))}  # fmt: skip
    made = build_dataset("pets", photos).out
    at = open_page("train", dataset=str(made))
    assert at.selectbox(key="train_model").value == "seed-dropout"
    assert at.number_input(key="train_image_size").value == 64
    assert at.number_input(key="train_steps_per_epoch").value == 0
    assert any(i.value.startswith("**Recommended: seed-dropout.** No pretrained weights")
               for i in at.info)  # fmt: skip
    at.selectbox(key="train_model").set_value("catdog-net").run()  # anything can be chosen
    assert at.number_input(key="train_image_size").value == 112
    at.button(key="train_use_recommended").click().run()
    assert at.selectbox(key="train_model").value == "seed-dropout"
    assert at.number_input(key="train_image_size").value == 64


def test_the_dashboard_leaves_keras_state_to_its_training_threads() -> None:
    """Streamlit clears Keras' session after each script run, for every thread at once: a
    pretrained base built by a training job meanwhile lost its layer-name counters. The
    dashboard turns that off (a real server failed every MobileNetV3 run this way)."""
    from keras.src.backend.common import global_state
    from streamlit.runtime.scriptrunner import script_runner

    open_page()
    before = global_state.GLOBAL_STATE_TRACKER
    script_runner._clean_problem_modules()
    assert global_state.GLOBAL_STATE_TRACKER is before
