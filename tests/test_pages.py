"""The dashboard's pages, driven by Streamlit's AppTest on tiny generated data.

Every test starts from app.py (the navigation and the sidebar) and switches to a page, as a
browser session would. The data home is a fresh temporary folder (conftest.py).
"""

from __future__ import annotations

import base64
import io
import json
import os
import re
import subprocess
import sys
import textwrap
import time
import zipfile
from collections.abc import Callable
from functools import partial
from pathlib import Path

import damaged_runs
import numpy as np
import pytest
from conftest import make_dataset
from pagetest import APP, PAGES, ROOT, literal, navigation_only, open_page  # noqa: F401 - a fixture
from streamlit.testing.v1 import AppTest

from catdog.data import cartoon, demo
from catdog.data.datasets import list_images
from catdog.data.paths import datasets_dir, demo_dataset_dir, runs_dir
from catdog.inference.predict import Predictor
from catdog.jobs import manager
from catdog.train import runs
from catdog.train.augment import AugmentConfig
from catdog.train.config import TrainConfig
from catdog.train.history import short_id

# Validation loss bottoms out at epoch 3 (the baseline overfits); the dropout run keeps learning.
BASELINE = [(0.69, 0.52, 0.68, 0.55), (0.60, 0.66, 0.62, 0.65), (0.48, 0.77, 0.57, 0.71),
            (0.30, 0.88, 0.60, 0.72), (0.15, 0.95, 0.74, 0.70)]  # fmt: skip
DROPOUT = [(0.69, 0.51, 0.67, 0.57), (0.64, 0.60, 0.61, 0.66), (0.59, 0.68, 0.55, 0.74),
           (0.55, 0.72, 0.50, 0.79), (0.52, 0.75, 0.46, 0.82)]  # fmt: skip


def home_dataset(counts: tuple[int, int, int]) -> Path:
    """A tiny photo dataset in the data home, where the dashboard lists (and can pick) it."""
    return make_dataset(datasets_dir() / "photos", counts=counts)


def small_demo(counts: tuple[int, int, int] = (4, 2, 2)) -> Path:
    return demo.generate_demo_dataset(demo_dataset_dir(), counts=counts)


def fake_run(run_id: str, model: str, rows: list[tuple], data: Path) -> Path:
    """A finished run folder without a model: config, history and status, as training writes."""
    path = runs_dir() / run_id
    config = TrainConfig(data=str(data), model=model).resolved()
    runs.atomic_write_json(
        path / runs.CONFIG_FILE,
        {"run_id": run_id, "created": "2026-11-28T07:00:00", "classes": ["cats", "dogs"],
         "train": config.to_dict()},
    )  # fmt: skip
    keys = ("loss", "accuracy", "val_loss", "val_accuracy")
    runs.write_history(
        path, [{"epoch": e, **dict(zip(keys, r, strict=True))} for e, r in enumerate(rows, 1)]
    )
    runs.write_status(path, "completed", epochs_done=len(rows))
    return path


def png_bytes(seed: int = 0, kind: str = "cat") -> bytes:
    buffer = io.BytesIO()
    cartoon.draw_animal(kind, np.random.default_rng(seed), (90, 80)).save(buffer, "PNG")
    return buffer.getvalue()


def texts(at: AppTest) -> str:
    """Every markdown, caption and alert text on the page, joined."""
    parts = [e.value for kind in ("markdown", "caption", "info", "success", "warning", "error")
             for e in getattr(at, kind)]  # fmt: skip
    return "\n".join(str(p) for p in parts)


def _decoded(value):
    """Plotly's JSON with its base64 typed arrays (``{"dtype", "bdata"}``) made lists again."""
    if isinstance(value, dict) and "bdata" in value:
        array = np.frombuffer(base64.b64decode(value["bdata"]), dtype=value["dtype"])
        if "shape" in value:
            array = array.reshape([int(n) for n in str(value["shape"]).split(",")])
        return array.tolist()
    if isinstance(value, dict):
        return {k: _decoded(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_decoded(v) for v in value]
    return value


def figures(at: AppTest) -> list[dict]:
    """The page's Plotly charts as plain JSON data."""
    return [_decoded(json.loads(chart.proto.spec)) for chart in at.get("plotly_chart")]


def wait_for_job(at: AppTest) -> None:
    job = manager().get(at.session_state["watched_run"])
    assert job is not None
    assert job.join(timeout=120), "training did not finish in 2 minutes"


# ------------------------------------------------------------------------------- light pages


def test_light_pages_do_not_import_tensorflow(tmp_path: Path) -> None:
    """Landing, Dataset, Augmentation (its preview) and History (charts) pages, in a fresh
    interpreter: no TensorFlow; the landing page not even pandas."""
    code = textwrap.dedent(
        f"""
        import json, sys
        sys.path.insert(0, {str(ROOT)!r})
        sys.path.insert(0, {str(Path(__file__).parent)!r})
        from streamlit.testing.v1 import AppTest
        from streamlit.testing.v1 import app_test
        import pagetest, test_pages
        app_test.PagesManager = pagetest.NavigationOnly
        test_pages.small_demo()
        test_pages.fake_run("20260101-000000-seed-baseline-aaaa", "seed-baseline",
                            test_pages.BASELINE, test_pages.demo_dataset_dir())
        at = AppTest.from_file({str(APP)!r}, default_timeout=60)
        at.run()
        pandas = "pandas" in sys.modules  # the warm-up's, on a served app: not the page's
        seen = {{"landing": "tensorflow" in sys.modules}}
        for page in ("dataset", "augmentation", "history"):
            at.switch_page(test_pages.PAGES[page]).run()
            assert not at.exception, [e.value for e in at.exception]
            seen[page] = "tensorflow" in sys.modules
        print(json.dumps({{"pandas": pandas, "tensorflow": seen}}))
        """
    )
    env = {**os.environ, "CATDOG_HOME": str(tmp_path / "home")}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env,
                         cwd=ROOT, timeout=120)  # fmt: skip
    assert out.returncode == 0, out.stderr[-3000:]
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert not any(result["tensorflow"].values()), result["tensorflow"]
    assert set(result["tensorflow"]) == {"landing", "dataset", "augmentation", "history"}
    assert not result["pandas"]


def test_landing_page_shows_state_and_links() -> None:
    data = small_demo()
    fake_run("20260101-000000-seed-baseline-aaaa", "seed-baseline", BASELINE, data)
    fake_run("20260101-000100-seed-dropout-bbbb", "seed-dropout", DROPOUT, data)
    at = open_page()
    text = texts(at)
    assert "Active dataset: demo" in text
    assert "Training runs: 2" in text
    assert "Best: 20260101-000100-seed-dropout-bbbb (seed-dropout) — validation 82.0%" in text
    assert [m.value for m in at.metric] == ["8", "4", "4"]
    assert len(at.page_link) == 5
    assert "demo" in [m.value for m in at.sidebar.markdown][-1]


def test_landing_page_before_the_demo_is_drawn() -> None:
    at = open_page()
    assert "drawn on first use" in texts(at)
    assert "No run yet" in texts(at)
    assert not (demo_dataset_dir()).exists()  # the landing page never draws it


# --------------------------------------------------------------------------------- Dataset


@pytest.mark.slow
def test_dataset_page_draws_the_demo_and_browses_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(demo, "ensure_demo_dataset", partial(demo.ensure_demo_dataset,
                                                             counts=(4, 2, 2)))  # fmt: skip
    at = open_page("dataset")
    assert (demo_dataset_dir() / "catdog-dataset.json").is_file()
    sidebar = " ".join(str(m.value) for m in [*at.sidebar.markdown, *at.sidebar.caption])
    assert "first use" not in sidebar and "16 images" in sidebar  # redrawn after the demo
    charts = [m.value for m in at.markdown if m.value.startswith("<svg")]
    assert len(charts) == 2 and not at.get("plotly_chart")  # counts and sizes, no Plotly
    bars = re.findall(r"<title>(\w+), (\w+): (\d+) images</title>", charts[0])
    assert bars == [(split, cls, str(n)) for split, n in (("train", 4), ("validation", 2),
                    ("test", 2)) for cls in ("cats", "dogs")]  # fmt: skip
    assert len(at.image) == 8  # the train split's thumbnails
    buttons = [b.label for b in at.button]
    assert "cat.0.jpg" in buttons and "dog.3.jpg" in buttons

    at.selectbox(key="browse_class").set_value("dogs").run()
    assert len(at.image) == 4
    at.selectbox(key="browse_split").set_value("test").run()
    assert len(at.image) == 2

    at.button(key=f"enlarge_{demo_dataset_dir() / 'test' / 'dogs' / 'dog.7.jpg'}").click().run()
    assert not at.exception
    assert any("dog.7.jpg —" in c.value and "px" in c.value for c in at.caption)


def _zip_of(folder: Path) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for path in sorted(folder.rglob("*")):
            archive.write(path, Path("pets") / path.relative_to(folder))
    return buffer.getvalue()


@pytest.mark.slow
def test_dataset_page_imports_a_zip_and_never_overwrites(
    dataset_factory: Callable[..., Path],
) -> None:
    small_demo()
    source = dataset_factory(counts=(4, 2, 2))
    (source / "train" / "cats" / "broken.jpg").write_bytes(b"not a jpeg")
    upload = ("pets.zip", _zip_of(source), "application/zip")
    at = open_page("dataset")
    at.file_uploader[0].set_value(upload).run()
    at.text_input[0].set_value("pets").run()
    next(b for b in at.button if b.label == "Import").click().run()
    assert not at.exception, [e.value for e in at.exception]
    assert at.session_state["dataset"].endswith("pets")
    assert any("Imported 16 images" in s.value for s in at.success)
    assert "broken.jpg" in at.code[0].value  # the skipped file is in the summary
    assert at.radio[0].value.endswith("pets")  # now the active dataset

    next(b for b in at.button if b.label == "Import").click().run()  # same name again
    assert any("never overwrites" in e.value for e in at.error)
    assert not at.exception

    at.text_input[0].set_value("pets-resplit")
    at.radio[2].set_value("fractions").run()  # re-split at random, 50/25/25 of 8 per class
    next(b for b in at.button if b.label == "Import").click().run()
    assert not at.exception, [e.value for e in at.exception]
    assert at.session_state["dataset"].endswith("pets-resplit")
    assert "split: 0.5/0.25/0.25 (seed 0)" in at.code[0].value
    assert at.radio[0].value.endswith("pets-resplit")


# ---------------------------------------------------------------------------- Augmentation


@pytest.mark.slow
def test_augmentation_sliders_reset_and_reseed() -> None:
    small_demo()
    at = open_page("augmentation")
    assert at.slider(key="aug_rotation_range").value == 40.0
    assert at.session_state["augmentation"] == AugmentConfig()
    variants = at.image[1:]
    assert len(variants) == 9
    before = [img.value for img in variants]

    at.slider(key="aug_rotation_range").set_value(0.0).run()
    at.slider(key="aug_zoom_range").set_value(0.5).run()
    assert at.session_state["augmentation"].rotation_range == 0.0
    assert at.session_state["augmentation"].zoom_range == 0.5
    after = [img.value for img in at.image[1:]]
    assert after != before

    next(b for b in at.button if b.label == "Reseed").click().run()
    assert at.session_state["aug_seed"] == 1
    assert [img.value for img in at.image[1:]] != after

    next(b for b in at.button if b.label == "Reset to the seed's settings").click().run()
    assert at.slider(key="aug_rotation_range").value == 40.0
    assert at.session_state["augmentation"] == AugmentConfig()

    at.switch_page(PAGES["train"]).run()  # the Train page trains with these settings
    at.toggle(key="train_augment").set_value(True).run()
    assert any("Rotation ±40°" in c.value for c in at.caption)


@pytest.mark.slow
def test_augmentation_all_off_shows_the_image_unchanged() -> None:
    small_demo()
    at = open_page("augmentation")
    for key in ("rotation_range", "width_shift_range", "height_shift_range", "shear_range",
                "zoom_range"):  # fmt: skip
        at.slider(key=f"aug_{key}").set_value(0.0)
    at.toggle(key="aug_horizontal_flip").set_value(False).run()
    assert at.session_state["augmentation"] == AugmentConfig.off()
    assert "Every transform is off" in texts(at)
    original, *variants = (tuple(img.value) for img in at.image)
    assert set(variants) == {original}


# ----------------------------------------------------------------------------------- Train


@pytest.mark.slow
def test_train_page_takes_the_models_defaults_and_shows_its_summary() -> None:
    small_demo()
    at = open_page("train")
    assert at.number_input(key="train_epochs").value == 30
    assert "Total parameters: 3,453,121" in texts(at)  # the seed's summary at 150 px
    assert at.dataframe[0].value["params"].sum() == 3_453_121
    shapes = list(at.dataframe[0].value["output_shape"])  # per image: no batch axis
    assert (shapes[0], shapes[-1]) == ("148 × 148 × 32", "1")

    at.selectbox(key="train_model").set_value("seed-dropout").run()
    assert at.number_input(key="train_epochs").value == 100
    assert at.number_input(key="train_batch_size").value == 32
    assert at.number_input(key="train_steps_per_epoch").value == 100
    assert at.slider(key="train_dropout").value == 0.5
    assert at.toggle(key="train_augment").value is True
    assert "Dropout" in set(at.dataframe[0].value["type"])

    at.number_input(key="train_image_size").set_value(40).run()
    assert any("cannot be built" in e.value for e in at.error)
    assert next(b for b in at.button if b.label == "Start training").disabled


@pytest.mark.slow
def test_train_page_loads_catdog_nets_preset_for_real_data(
    dataset_factory: Callable[..., Path],
) -> None:
    at = open_page("train", dataset=str(home_dataset((4, 2, 2))))
    # 4 photos per class: a small recipe is recommended (tests/test_recommend.py); its label
    # says so, and catdog-net's preset is one choice away.
    assert "seed-dropout (recommended)" in at.selectbox(key="train_model").options
    at.selectbox(key="train_model").set_value("catdog-net").run()
    assert at.number_input(key="train_image_size").value == 112  # the preset's defaults
    assert at.number_input(key="train_epochs").value == 145
    at.selectbox(key="train_model").set_value("catdog-net-quick").run()
    assert at.number_input(key="train_epochs").value == 40  # the quick schedule's


@pytest.mark.slow
def test_train_page_says_what_auto_chose_and_what_the_time_limit_buys(
    dataset_factory: Callable[..., Path],
) -> None:
    from catdog.train.precision import choose_precision

    at = open_page("train", dataset=str(home_dataset((4, 2, 2))))
    at.selectbox(key="train_model").set_value("catdog-net").run()
    assert at.selectbox(key="train_precision").value == "auto"  # catdog-net's preset
    assert "auto times both when training starts" in texts(at)
    at.number_input(key="train_batch_size").set_value(8)
    at.number_input(key="train_time_limit_minutes").set_value(1.0)
    at.number_input(key="train_image_size").set_value(48).run()
    choice = choose_precision("catdog-net", 48, 8)  # the real timing, as training would do it
    at.run()
    assert f"On this machine auto picks {choice.reason}" in texts(at).replace("**", "")
    speed = choice.speeds[choice.precision]
    assert f"At {speed:.0f} training images/s, about" in texts(at)
    assert "epochs at 48 px fit the 1-minute limit on this machine" in texts(at).replace("**", "")
    at.selectbox(key="train_precision").set_value("float32").run()
    assert "auto picks" not in texts(at)
    assert f"At {choice.speeds['float32']:.0f} training images/s" in texts(at)


@pytest.mark.slow
def test_train_page_offers_the_demo_settings_and_model_presets() -> None:
    small_demo()
    at = open_page("train")
    assert any(b.label == "Use the demo settings" for b in at.button)
    at.selectbox(key="train_model").set_value("seed-dropout").run()
    next(b for b in at.button if b.label == "Use the demo settings").click().run()
    assert at.number_input(key="train_image_size").value == 96
    assert at.number_input(key="train_epochs").value == 60
    assert at.number_input(key="train_steps_per_epoch").value == 0
    assert at.select_slider(key="train_learning_rate").value == 1e-3

    at.selectbox(key="train_model").set_value("catdog-net").run()
    assert at.selectbox(key="train_lr_schedule").value == "cosine"
    assert at.radio(key="train_aug_source").value == "the model's preset"
    assert "shear ±10°" in texts(at)  # the preset's stronger augmentation is what trains
    assert "cutout 0.33" in texts(at)


def _start_tiny_run(at: AppTest) -> None:
    # float32 by hand: auto's timing is tested in test_train_page_says_what_auto_chose_…
    at.selectbox(key="train_precision").set_value("float32")
    at.number_input(key="train_epochs").set_value(2)
    at.number_input(key="train_batch_size").set_value(8)
    at.number_input(key="train_image_size").set_value(48).run()
    next(b for b in at.button if b.label == "Start training").click().run()
    assert not at.exception, [e.value for e in at.exception]


@pytest.mark.slow  # 28 s on a loaded 2-core machine: TensorFlow's import and the page
def test_both_faces_refuse_a_dataset_without_training_images_in_one_sentence(
    capsys: pytest.CaptureFixture[str],
) -> None:
    from catdog.cli import main

    data = home_dataset((3, 2, 2))
    for image in (data / "train" / "dogs").iterdir():
        image.unlink()  # dogs left with no training images: nothing to learn them from
    assert main(["train", "--data", str(data), "--model", "seed-baseline", "--epochs", "1"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1, err
    sentence = err.removeprefix("error: ").strip()
    assert "train/ has no images of dogs" in sentence
    at = open_page("train", dataset=str(data))
    _start_tiny_run(at)
    assert [e.value for e in at.error] == [f"Cannot start training: {sentence}"]
    assert runs.list_runs() == []  # neither face made a run


@pytest.mark.slow
def test_train_page_trains_in_the_background_and_keeps_the_job(
    dataset_factory: Callable[..., Path],
) -> None:
    data = home_dataset((8, 4, 4))
    at = open_page("train", dataset=str(data))
    at.selectbox(key="train_model").set_value("catdog-net").run()
    assert at.number_input(key="train_time_limit_minutes").value == 28  # catdog-net's
    at.number_input(key="train_time_limit_minutes").set_value(30.0)  # ample for 2 epochs
    assert at.number_input(key="train_label_smoothing").value == 0.1  # catdog-net's preset
    at.number_input(key="train_weight_decay").set_value(0.01)
    _start_tiny_run(at)
    run_id = at.session_state["watched_run"]
    saved = runs.run_info(runs.resolve_run(run_id)).config["train"]
    assert saved["time_limit_minutes"] == 30.0
    assert (saved["weight_decay"], saved["label_smoothing"]) == (0.01, 0.1)
    assert f"Run `{run_id}`" in texts(at)

    at.switch_page(PAGES["history"]).run()  # leaving the page does not stop or lose the job
    at.switch_page(PAGES["train"]).run()
    assert at.session_state["watched_run"] == run_id
    assert f"Run `{run_id}`" in texts(at)

    wait_for_job(at)
    at.run()
    assert f"Run {run_id} completed after 2 epoch(s)." in [s.value for s in at.success]
    assert len(at.get("plotly_chart")) == 2  # loss and accuracy curves
    assert [p.value for p in at.progress][-1] == 100  # all epochs done
    assert runs.run_info(runs.resolve_run(run_id)).state == "completed"

    fresh = open_page("train", dataset=str(data))  # a new session (a refresh) finds it again
    watch = next(b for b in fresh.button if b.key == f"watch_{run_id}")
    watch.click().run()
    assert fresh.session_state["watched_run"] == run_id
    assert f"Run {run_id} completed after 2 epoch(s)." in [s.value for s in fresh.success]


@pytest.mark.slow
def test_train_page_stops_a_run_on_request(dataset_factory: Callable[..., Path]) -> None:
    at = open_page("train", dataset=str(home_dataset((4, 2, 2))))
    at.number_input(key="train_steps_per_epoch").set_value(5000)  # long enough to stop it
    _start_tiny_run(at)
    job = manager().get(at.session_state["watched_run"])
    deadline = time.monotonic() + 60
    while job.snapshot().step == 0 and time.monotonic() < deadline:
        time.sleep(0.1)  # stop in mid-epoch (training.py marks a stop before fit "completed")
    at.run()
    next(b for b in at.button if b.label == "Stop training").click().run()
    assert "Stopping after the current batch…" in texts(at)
    wait_for_job(at)
    at.run()
    assert not at.exception
    (message,) = [w.value for w in at.warning]
    assert message.startswith(f"Run {at.session_state['watched_run']} stopped after ")
    assert runs.run_info(runs.resolve_run(at.session_state["watched_run"])).state == "stopped"


@pytest.mark.slow
def test_train_page_shows_a_failed_run_as_an_error(
    dataset_factory: Callable[..., Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    from catdog.train import trainer
    from catdog.train.config import TrainingError

    def fail(*args, **kwargs):
        raise TrainingError("the disk is full (pretend)")

    monkeypatch.setattr(trainer, "train_created", fail)
    at = open_page("train", dataset=str(home_dataset((3, 2, 2))))
    _start_tiny_run(at)
    wait_for_job(at)
    at.run()
    assert not at.exception
    assert [e.value for e in at.error] == [
        "Training failed: TrainingError: the disk is full (pretend)"
    ]
    info = runs.run_info(runs.resolve_run(at.session_state["watched_run"]))
    assert (info.state, info.error) == (  # recorded on disk too, not left "running"
        "failed",
        "TrainingError: the disk is full (pretend)",
    )


PRETRAINED_KEYS = {"train_weights_source", "train_fine_tune_epochs", "train_fine_tune_lr",
                   "train_fine_tune_from"}  # fmt: skip


def widget_keys(at: AppTest) -> set[str]:
    """The keys of the page's input widgets."""
    kinds = ("radio", "number_input", "selectbox", "select_slider", "text_input", "toggle",
             "file_uploader")  # fmt: skip
    return {w.key for kind in kinds for w in getattr(at, kind)}


def start_button(at: AppTest):
    return next(b for b in at.button if b.label == "Start training")


def small_weights_file(folder: Path) -> Path:
    """A MobileNetV3Small weights file (Keras' .weights.h5) from a fresh base at 32 px."""
    from catdog.model.backend import keras

    path = folder / "mobilenet.weights.h5"
    keras.applications.MobileNetV3Small(
        include_top=False, weights=None, include_preprocessing=False, input_shape=(32, 32, 3)
    ).save_weights(path)
    return path


@pytest.mark.slow
def test_train_page_offers_weights_and_fine_tuning_for_pretrained_models_only() -> None:
    small_demo()
    at = open_page("train")
    assert at.selectbox(key="train_model").value == "seed-baseline"
    assert not PRETRAINED_KEYS & widget_keys(at)
    at.selectbox(key="train_model").set_value("mobilenet-v3-small").run()
    assert not at.exception, [e.value for e in at.exception]
    assert widget_keys(at) >= PRETRAINED_KEYS
    assert at.radio(key="train_weights_source").value == "imagenet"
    assert at.radio(key="train_weights_source").options == [
        "ImageNet (Keras' cache)", "A file on this machine", "Upload a file"
    ]  # fmt: skip
    assert "MobileNetV3Small's ImageNet weights" in texts(at)  # what it downloads, if needed
    assert at.number_input(key="train_fine_tune_epochs").value == 5  # the preset: 5 of 15
    assert at.select_slider(key="train_fine_tune_lr").value == 1e-5
    assert at.selectbox(key="train_fine_tune_from").value == "expanded_conv_9_expand"
    at.number_input(key="train_epochs").set_value(3).run()  # the head trains 1 epoch at least
    assert at.number_input(key="train_fine_tune_epochs").value == 2
    assert at.number_input(key="train_fine_tune_epochs").max == 2
    assert not start_button(at).disabled
    at.selectbox(key="train_model").set_value("seed-dropout").run()
    assert not PRETRAINED_KEYS & widget_keys(at)


@pytest.mark.slow
def test_train_page_refuses_a_wrong_weights_file_in_one_sentence(tmp_path: Path) -> None:
    from catdog.data.paths import weights_dir
    from catdog.model.backend import keras

    small_demo()
    at = open_page("train")
    at.selectbox(key="train_model").set_value("mobilenet-v3-small").run()
    at.radio(key="train_weights_source").set_value("upload").run()
    assert start_button(at).disabled  # no file yet
    at.file_uploader(key="train_weights_upload").set_value(
        ("notes.h5", b"these are not weights", "application/octet-stream")
    ).run()
    assert not at.exception, [e.value for e in at.exception]
    assert [e.value for e in at.error] == [
        "notes.h5 is not a weights file: it is not in the HDF5 format of Keras' .h5 files"
    ]
    assert start_button(at).disabled
    assert not list(weights_dir().iterdir())  # a refused upload is not kept

    other = keras.Sequential([keras.Input((4,)), keras.layers.Dense(2)])  # HDF5, another model
    other.save_weights(tmp_path / "dense.weights.h5")
    at.radio(key="train_weights_source").set_value("path").run()
    at.text_input(key="train_weights_path").set_value(str(tmp_path / "dense.weights.h5")).run()
    (error,) = [e.value for e in at.error]
    assert error.startswith(f"{tmp_path / 'dense.weights.h5'} is not a weights file of "
                            "MobileNetV3Small (")  # fmt: skip
    assert "\n" not in error and len(error) < 300
    assert start_button(at).disabled
    at.text_input(key="train_weights_path").set_value("/no/such/file.h5").run()
    assert [e.value for e in at.error] == [
        "/no/such/file.h5 does not exist; give the path of a weights file (.h5)"
    ]


@pytest.mark.slow
def test_train_page_trains_from_an_uploaded_weights_file(tmp_path: Path) -> None:
    from catdog.data.paths import weights_dir

    data = home_dataset((4, 2, 2))
    at = open_page("train", dataset=str(data))
    at.selectbox(key="train_model").set_value("mobilenet-v3-small").run()
    at.radio(key="train_weights_source").set_value("upload").run()
    weights = small_weights_file(tmp_path)
    upload = ("mobilenet.weights.h5", weights.read_bytes(), "application/octet-stream")
    at.file_uploader(key="train_weights_upload").set_value(upload).run()
    assert not at.exception and not at.error, [e.value for e in at.error]
    said = next(c.value for c in at.caption if c.value.startswith("Uses mobilenet.weights.h5"))
    assert "of MobileNetV3Small's base (not the ImageNet file Keras downloads)" in said
    (kept,) = weights_dir().iterdir()
    assert kept.read_bytes() == weights.read_bytes() and kept.name.endswith(".weights.h5")

    at.number_input(key="train_epochs").set_value(2)
    at.number_input(key="train_batch_size").set_value(8)
    at.number_input(key="train_image_size").set_value(32)
    at.selectbox(key="train_precision").set_value("float32")
    at.toggle(key="train_augment").set_value(False).run()
    assert "the frozen base computes each image's features once" in texts(at)
    at.number_input(key="train_fine_tune_epochs").set_value(1)
    at.select_slider(key="train_fine_tune_lr").set_value(3e-5)
    at.selectbox(key="train_fine_tune_from").set_value("expanded_conv_10_expand").run()
    start_button(at).click().run()
    assert not at.exception and not at.error, [e.value for e in at.error]
    path = runs.resolve_run(at.session_state["watched_run"])
    saved = runs.run_info(path).config["train"]
    assert saved["weights"] == str(kept.resolve())
    assert (saved["fine_tune_epochs"], saved["fine_tune_lr"], saved["fine_tune_from"]) == (
        1, 3e-5, "expanded_conv_10_expand"
    )  # fmt: skip
    wait_for_job(at)
    history = runs.read_history(path)
    assert runs.run_info(path).state == "completed"
    assert [(r["phase"], r.get("cached_features")) for r in history] == [(1, 1), (2, None)]


# --------------------------------------------------------------------------------- History


def test_history_page_compares_runs_and_marks_overfitting() -> None:
    data = small_demo()
    fake_run("20260101-000000-seed-baseline-aaaa", "seed-baseline", BASELINE, data)
    fake_run("20260101-000100-seed-dropout-bbbb", "seed-dropout", DROPOUT, data)
    at = open_page("history")
    assert len(at.multiselect[0].value) == 2  # the seed's story: baseline vs dropout
    accuracy, loss = figures(at)
    assert accuracy["layout"]["title"]["text"] == "Training and validation accuracy"
    assert loss["layout"]["xaxis"]["title"]["text"] == "Epoch"
    assert [s["x0"] for s in loss["layout"]["shapes"]] == [3]  # only the baseline overfits
    assert "validation loss bottoms out at epoch 3" in texts(at)
    table = at.dataframe[0].value
    assert list(table["model"]) == ["seed-dropout", "seed-baseline"]
    assert list(table["best_val_accuracy"]) == pytest.approx([82.0, 72.0])
    assert at.download_button[0].disabled is False  # history CSV
    assert at.download_button[1].disabled is True  # no model saved


@pytest.mark.slow
def test_history_and_predict_pages_without_runs_say_how_to_get_one() -> None:
    small_demo()
    for page in ("history", "predict"):
        at = open_page(page)
        assert at.page_link[-1].proto.page.endswith("train") or "Train" in at.page_link[-1].label
        assert at.info


# ------------------------------------------------------------------- Evaluation, Predict


@pytest.fixture
def trained_run(dataset_factory: Callable[..., Path]) -> str:
    """A real one-epoch run on 48-pixel images (a few seconds)."""
    from catdog.train.trainer import train

    data = dataset_factory(counts=(8, 4, 4))
    config = TrainConfig(data=str(data), epochs=1, batch_size=8, image_size=48, precision="float32")
    return train(config).run_id


@pytest.mark.slow
def test_history_page_exports_a_checked_model_to_download(trained_run: str) -> None:
    at = open_page("history")
    at.selectbox(key="history_export_format").set_value("TFLite, quantized (~4× smaller)")
    next(b for b in at.button if b.label == "Export").click().run()
    assert not at.exception and not at.error, [e.value for e in at.exception or at.error]
    assert "tflite (quantized):" in texts(at) and "validation images" in texts(at)
    run = runs.resolve_run(trained_run)
    exported = run / "exports" / f"{trained_run}-best-int8.tflite"
    assert exported.is_file() and exported.read_bytes()[4:8] == b"TFL3"  # a FlatBuffer model
    labels = [b.label for b in at.download_button]
    assert f"Download {exported.name}" in labels
    rule = exported.parent / f"{trained_run}-best-int8.trust.json"  # beside the model
    assert f"Download {rule.name} (calibration and 'not sure' rule)" in labels and rule.is_file()
    next(b for b in at.button if b.label == "Export").click().run()  # made again, not refused
    assert not at.error and exported.is_file()


@pytest.mark.slow
def test_history_page_evaluates_a_run(trained_run: str) -> None:
    at = open_page("history")
    next(b for b in at.button if b.label == "Evaluate on the test split").click().run()
    assert not at.exception, [e.value for e in at.exception]
    assert at.metric[0].label == "Test accuracy"
    per_class = at.dataframe[-1].value
    assert list(per_class["class"]) == ["cats", "dogs"]
    assert per_class["support"].sum() == 8
    matrix = next(f for f in figures(at) if f["layout"]["title"]["text"] == "Confusion matrix")
    assert matrix["layout"]["xaxis"]["title"]["text"] == "Predicted class"
    assert np.asarray(matrix["data"][0]["z"]).sum() == 8
    assert "Misclassified:" in texts(at)
    assert [b.disabled for b in at.download_button] == [False, False, False]  # with the CSV
    plain = [tuple(img.value) for img in at.image]
    assert plain, "the 1-epoch model should get some test images wrong"
    at.toggle(key="history_heatmaps").set_value(True).run()
    assert not at.exception, [e.value for e in at.exception]
    tinted = [tuple(img.value) for img in at.image]
    assert len(tinted) == len(plain) and set(tinted).isdisjoint(plain)


@pytest.mark.slow
def test_predict_page_classifies_uploads_and_warns_about_bad_ones(
    trained_run: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    classified: list[str] = []  # every photo the model was given, in order
    predict = Predictor.predict

    def counted(self, sources, **options):
        classified.extend(name for name, _ in sources if name != "warm-up.png")  # the page's own
        return predict(self, sources, **options)

    monkeypatch.setattr(Predictor, "predict", counted)
    at = open_page("predict")
    assert at.selectbox(key="predict_run").value.id == trained_run
    truncated = png_bytes(3)[:200]
    at.file_uploader[0].set_value([
        ("whiskers.png", png_bytes(1), "image/png"),
        ("notes.jpg", b"my shopping list", "image/jpeg"),
        ("half.png", truncated, "image/png"),
        ("rex.png", png_bytes(2, "dog"), "image/png"),
    ]).run()  # fmt: skip
    assert not at.exception, [e.value for e in at.exception]
    warnings = [literal(w.value) for w in at.warning]
    assert len(warnings) == 2
    assert "notes.jpg is not an image" in warnings[0]
    assert "half.png is a corrupt or truncated image" in warnings[1]
    assert len(at.progress) == 4  # two photos × two classes
    labels = [m.value for m in at.markdown if " — " in m.value]
    assert [literal(label.split(" — ")[1]) for label in labels] == ["whiskers.png", "rex.png"]
    shares = [p.value for p in at.progress]
    assert shares[0] + shares[1] in (99, 100, 101)  # percent, rounded per bar
    assert at.toggle(key="predict_heatmaps").value is True  # photos shown with their heatmap
    tinted = [tuple(img.value) for img in at.image]
    at.toggle(key="predict_heatmaps").set_value(False).run()
    plain = [tuple(img.value) for img in at.image]
    assert len(plain) == len(tinted) == 2 and set(plain).isdisjoint(tinted)
    at.toggle(key="predict_heatmaps").set_value(True).run()
    assert [tuple(img.value) for img in at.image] == tinted  # the same maps again
    assert classified == ["whiskers.png", "notes.jpg", "half.png", "rex.png"]  # once each

    at.toggle(key="predict_camera").set_value(True).run()
    jpeg = io.BytesIO()
    cartoon.draw_animal("dog", np.random.default_rng(5), (64, 48)).save(jpeg, "JPEG")
    at.camera_input[0].set_value(("photo.jpg", jpeg.getvalue(), "image/jpeg")).run()
    assert not at.exception, [e.value for e in at.exception]
    assert len(at.progress) == 6
    assert any(m.value.endswith("— camera photo") for m in at.markdown)
    assert classified[4:] == ["camera photo"]  # only the new one


# ------------------------------------------------------------ damaged runs, resuming


@pytest.mark.slow
def test_damaged_run_folders_break_no_page(trained_run: str) -> None:
    damaged = damaged_runs.all_damaged()  # {run id: the reason it must show}
    lines = {run_id: f"`{run_id}` — damaged: " for run_id in damaged}

    def assert_damaged_shown(at: AppTest) -> None:
        assert not at.exception, [e.value for e in at.exception]
        captions = [c.value for c in at.caption]
        for run_id, reason in damaged.items():
            assert any(c.startswith(lines[run_id]) and reason in c for c in captions), run_id

    at = open_page()
    assert_damaged_shown(at)
    assert f"Training runs: {len(damaged) + 1}" in texts(at)
    assert trained_run in texts(at)  # the good run is still the best one

    at.switch_page(PAGES["history"]).run()
    assert_damaged_shown(at)
    for offered in (at.multiselect(key="history_runs"), at.selectbox(key="history_run")):
        assert len(offered.options) == 1 and offered.options[0].startswith(short_id(trained_run))
    assert at.selectbox(key="history_run").value == trained_run
    states = dict(zip(at.dataframe[0].value["run"], at.dataframe[0].value["state"], strict=True))
    assert states == {trained_run: "completed", **dict.fromkeys(damaged, "damaged")}
    assert [b.disabled for b in at.download_button] == [False, False]  # the good one's files

    at.switch_page(PAGES["predict"]).run()
    assert_damaged_shown(at)
    (offered,) = at.selectbox(key="predict_run").options
    assert offered.startswith(trained_run)
    at.file_uploader[0].set_value([("whiskers.png", png_bytes(1), "image/png")]).run()
    assert not at.exception, [e.value for e in at.exception]
    assert len(at.progress) == 2  # the good run still predicts: one bar per class

    at.switch_page(PAGES["train"]).run()  # lists runs too (running ones, unfinished ones)
    assert not at.exception, [e.value for e in at.exception]


@pytest.mark.slow
def test_pages_with_only_damaged_runs_say_so() -> None:
    small_demo()
    damaged = damaged_runs.damaged_run("train-an-int").name
    for page in ("history", "predict"):
        at = open_page(page)
        assert f"`{damaged}` — damaged: config.json: 'train' must be an object, got int" in [
            c.value for c in at.caption
        ]
        assert at.info  # no run to open / no trained model yet


def stopped_run(data: Path, epochs: int = 2) -> str:
    """A real run stopped (as by its Stop button) in its first of ``epochs`` epochs."""
    import threading

    from catdog.train.trainer import train

    stop = threading.Event()
    config = TrainConfig(data=str(data), epochs=epochs, batch_size=8, image_size=48,
                         precision="float32")  # fmt: skip
    result = train(config, stop=stop, on_event=lambda e: e.kind == "batch" and stop.set())
    assert (result.state, len(result.history)) == ("stopped", 1)
    return result.run_id


@pytest.mark.slow
def test_train_page_resumes_an_unfinished_run_and_says_why_not_when_refused() -> None:
    run_id = stopped_run(home_dataset((8, 4, 4)))
    at = open_page("train", dataset=str(datasets_dir() / "photos"))
    assert f"`{run_id}` — stopped after 1 of 2 epochs" in texts(at)
    resume = next(b for b in at.button if b.key == f"resume_{run_id}")
    with runs.RunLock.acquire(runs.resolve_run(run_id)):  # e.g. `train --resume` in a terminal
        resume.click().run()
        assert not at.exception, [e.value for e in at.exception]
        assert [e.value for e in at.error] == [
            f"Cannot resume: run {run_id} is being trained by process {os.getpid()} "
            "(this one); stop it first"
        ]
    assert "watched_run" not in at.session_state
    next(b for b in at.button if b.key == f"resume_{run_id}").click().run()
    assert not at.exception, [e.value for e in at.exception]
    assert at.session_state["watched_run"] == run_id
    wait_for_job(at)
    at.run()
    assert f"Run {run_id} completed after 2 epoch(s)." in [s.value for s in at.success]
    assert not [b for b in at.button if b.key == f"resume_{run_id}"]  # nothing left to resume
    path = runs.resolve_run(run_id)
    assert [r["epoch"] for r in runs.read_history(path)] == [1, 2]
    assert runs.run_info(path).state == "completed"


@pytest.mark.slow
def test_history_page_resumes_the_selected_run(dataset_factory: Callable[..., Path]) -> None:
    small_demo()
    run_id = stopped_run(dataset_factory(counts=(8, 4, 4)))
    at = open_page("history")
    assert at.selectbox(key="history_run").value == run_id
    assert "This run stopped after 1 of 2 epochs." in texts(at)
    at.button(key="history_resume").click().run()
    assert not at.exception, [e.value for e in at.exception]
    assert f"Run {run_id} is training again, from epoch 2." in [s.value for s in at.success]
    assert at.session_state["watched_run"] == run_id
    wait_for_job(at)
    path = runs.resolve_run(run_id)
    assert [r["epoch"] for r in runs.read_history(path)] == [1, 2]
    at.run()
    assert runs.run_info(path).state == "completed"
    assert not [b for b in at.button if b.key == "history_resume"]


def test_dataset_page_shows_a_damaged_file_as_a_grey_cross_not_an_error() -> None:
    """One damaged photo (or a link to nowhere) in a dataset never breaks its grid or dialog."""
    root = home_dataset((3, 1, 1))
    cats = root / "train" / "cats"
    damaged = sorted(cats.iterdir())[0]
    damaged.write_bytes(b"\xff\xd8\xff\xe0 not really a JPEG")
    (cats / "gone.jpg").symlink_to(cats / "missing.jpg")
    at = open_page("dataset", dataset=str(root))
    assert not at.exception
    listed = list_images(root, "train")
    assert len(listed) == 7 and len(at.image) == 7  # 3 cats, the dangling link, 3 dogs
    at.button(key=f"enlarge_{damaged}").click().run()
    assert not at.exception
    assert [literal(w.value) for w in at.warning] == [
        f"{damaged.name} has a damaged image header (Truncated File Read)"
    ]
