"""Hosted demo mode: its switch and limits, private workspaces, the training queue, expiry.

Library tests call catdog directly; page tests drive app.py with Streamlit's AppTest, one
AppTest per visitor (each its own session, as two browsers would be). The browser test with
two visitors on one real server is in test_browser.py.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest
import streamlit.config as streamlit_config
from conftest import make_dataset
from pagetest import APP, PAGES, NavigationOnly, open_page
from streamlit.testing.v1 import AppTest
from streamlit.testing.v1 import app_test as app_test_module
from test_pages import _zip_of, png_bytes, small_demo, texts

import catdog.policy as hosting
from catdog import jobs, workspaces
from catdog.data.choices import import_named
from catdog.data.datasets import DatasetError, delete_dataset, list_datasets
from catdog.data.importer import import_dataset
from catdog.data.paths import (
    WorkspaceError,
    check_workspace_token,
    current_workspace,
    datasets_dir,
    demo_dataset_dir,
    in_workspace,
    new_workspace_token,
    runs_dir,
    set_workspace,
    shared_datasets_dir,
    shared_runs_dir,
    workspaces_dir,
)
from catdog.data.workspace_links import link_for, open_link
from catdog.inference.evaluate import evaluate_run
from catdog.jobs import JobManager, manager
from catdog.policy import HostedLimitError, current_policy
from catdog.train import runs
from catdog.train.config import TrainConfig
from catdog.train.history import short_id
from catdog.train.runs import runs_training_on
from ui.frame import SOMETHING_WENT_WRONG


@pytest.fixture(autouse=True)
def _navigation_only(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(app_test_module, "PagesManager", NavigationOnly)


@pytest.fixture
def hosted_mode(monkeypatch: pytest.MonkeyPatch) -> hosting.HostedSettings:
    """Hosted mode on, with its default limits."""
    monkeypatch.setenv(hosting.ENV_VAR, "1")
    for name in list(os.environ):
        if name.startswith(hosting.ENV_PREFIX):
            monkeypatch.delenv(name)
    return hosting.HostedSettings.from_env()


def visit(page: str | None = None, query: dict[str, str] | None = None, **state) -> AppTest:
    """A new browser session on app.py (with the URL's query parameters), on ``page``."""
    return open_page(page, query, **state)


# ------------------------------------------------------------------------ 1. the switch


def test_hosted_mode_is_off_unless_switched_on() -> None:
    assert hosting.current_policy({}).hosted is False
    assert hosting.current_policy({"CATDOG_HOSTED": "0"}).hosted is False
    assert hosting.current_policy({"CATDOG_HOSTED": "1"}).hosted is True
    assert hosting.current_policy({"CATDOG_HOSTED": " True "}).hosted is True
    with pytest.raises(hosting.HostingError, match=r"CATDOG_HOSTED must be 1 .* got 'maybe'"):
        hosting.current_policy({"CATDOG_HOSTED": "maybe"})


def test_settings_have_defaults_each_overridden_by_its_variable() -> None:
    defaults = hosting.HostedSettings.from_env({})
    assert (defaults.max_trainings, defaults.max_epochs, defaults.max_image_size) == (1, 30, 128)
    assert (defaults.max_batch_size, defaults.max_training_minutes) == (64, 10.0)
    assert (defaults.max_dataset_images, defaults.max_dataset_mb) == (3000, 200.0)
    assert (defaults.max_upload_mb, defaults.max_predict_photos) == (50.0, 20)
    assert (defaults.workspace_idle_hours, defaults.workspace_quota_mb) == (24.0, 300.0)
    assert hosting.Policy(defaults).max_upload_bytes == 50 * 1024 * 1024
    changed = hosting.HostedSettings.from_env(
        {"CATDOG_HOSTED_MAX_EPOCHS": "50", "CATDOG_HOSTED_WORKSPACE_IDLE_HOURS": "0.5"}
    )
    assert (changed.max_epochs, changed.workspace_idle_hours) == (50, 0.5)
    with pytest.raises(hosting.HostingError, match="CATDOG_HOSTED_MAX_EPOCHS must be a whole"):
        hosting.HostedSettings.from_env({"CATDOG_HOSTED_MAX_EPOCHS": "2.5"})
    with pytest.raises(hosting.HostingError, match=r"MAX_UPLOAD_MB must be a number > 0, got '0'"):
        hosting.HostedSettings.from_env({"CATDOG_HOSTED_MAX_UPLOAD_MB": "0"})


def test_home_page_says_hosted_mode_and_its_limits(hosted_mode) -> None:
    at = visit()
    assert "shared demo server (hosted mode)" in texts(at)
    assert "runs of at most 30 epochs, 128 px, batch 64 and 10 minutes, in float32" in texts(at)
    assert "up to 8 more wait in a queue; one per workspace" in texts(at)
    assert "photos of at most 4 megapixels" in texts(at)


def test_home_page_locally_says_nothing_of_hosting() -> None:
    assert "hosted mode" not in texts(visit())


def test_hosted_mode_can_come_from_streamlit_secrets(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.delenv(hosting.ENV_VAR, raising=False)
    monkeypatch.delenv("CATDOG_HOSTED_MAX_EPOCHS", raising=False)
    monkeypatch.delenv("CATDOG_HOME")  # restored after the test
    at = AppTest.from_file(str(APP), default_timeout=90)
    at.secrets["CATDOG_HOSTED"] = True
    at.secrets["CATDOG_HOSTED_MAX_EPOCHS"] = 12
    at.secrets["CATDOG_HOME"] = str(tmp_path / "from-secrets")
    try:
        at.run()
        assert not at.exception, [e.value for e in at.exception]
        assert "runs of at most 12 epochs" in texts(at)
        assert (tmp_path / "from-secrets" / "workspaces" / at.query_params["ws"][:22]).is_dir()
    finally:
        os.environ.pop(hosting.ENV_VAR, None)
        os.environ.pop("CATDOG_HOSTED_MAX_EPOCHS", None)


# ------------------------------------------------------------- 2. caps, in the library


def tiny_config(data: Path, **changes) -> TrainConfig:
    """A run small enough for any test: 48 px, 1 epoch, batch 8, float32, 1-minute limit."""
    settings = {"epochs": 1, "batch_size": 8, "image_size": 48, "precision": "float32",
                "time_limit_minutes": 1.0, **changes}  # fmt: skip
    return TrainConfig(data=str(data), **settings)


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"epochs": 31}, "epochs 31 is over hosted mode's cap of 30; choose at most 30"),
        ({"image_size": 130}, "image size 130 px is over hosted mode's cap of 128 px"),
        ({"batch_size": 65}, "batch size 65 is over hosted mode's cap of 64; choose at most 64"),
        ({"time_limit_minutes": 0.0}, "time limit 0 (none) is over hosted mode's cap of 10 min"),
        ({"time_limit_minutes": 11.0}, "time limit 11 minutes is over hosted mode's cap of 10"),
        ({"strategy": "mirrored"}, "strategy mirrored is not offered in hosted mode; choose auto"),
    ],
)
def test_a_run_over_a_cap_is_refused_by_create_run(hosted_mode, changes, message) -> None:
    data = make_dataset(datasets_dir() / "photos", counts=(2, 1, 1))
    with pytest.raises(HostedLimitError) as refused:
        runs.create_run(tiny_config(data, **changes))
    assert str(refused.value).startswith(message)
    assert list(runs_dir().iterdir()) == []  # nothing made
    runs.create_run(tiny_config(data))  # within the caps: made


def test_caps_do_not_apply_locally() -> None:
    data = make_dataset(datasets_dir() / "photos", counts=(2, 1, 1))
    runs.create_run(tiny_config(data, epochs=500, image_size=256, time_limit_minutes=0.0))


def test_hosted_mode_trains_only_on_datasets_of_the_data_home(hosted_mode, tiny_dataset) -> None:
    with pytest.raises(HostedLimitError, match=f"training on {tiny_dataset} is refused in hosted"):
        runs.create_run(tiny_config(tiny_dataset))


def test_a_run_made_locally_over_the_caps_cannot_resume_in_hosted_mode(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    data = make_dataset(datasets_dir() / "photos", counts=(2, 1, 1))
    path = runs.create_run(tiny_config(data, epochs=100))
    runs.write_status(path, "stopped")
    assert runs.can_resume(runs.run_info(path))
    monkeypatch.setenv(hosting.ENV_VAR, "1")
    assert runs.resume_problem(runs.run_info(path)) == (
        f"run {path.name} cannot train here: epochs 100 is over hosted mode's cap of 30; "
        "choose at most 30"
    )


def test_folder_import_is_refused_in_hosted_mode(hosted_mode, tiny_dataset) -> None:
    refusal = "is refused in hosted mode: the server's own files are not visitors' to read"
    with pytest.raises(HostedLimitError, match=f"importing {tiny_dataset} {refusal}"):
        import_dataset(tiny_dataset, datasets_dir() / "mine")
    with pytest.raises(HostedLimitError, match=refusal):
        import_named(tiny_dataset, "mine")
    archive = tiny_dataset.parent / "pets.zip"  # a .zip on the server is no upload either
    archive.write_bytes(_zip_of(tiny_dataset))
    with pytest.raises(HostedLimitError, match=f"importing {archive} {refusal}"):
        import_dataset(archive, datasets_dir() / "mine")
    with pytest.raises(HostedLimitError, match="importing /no/such/folder is refused"):
        import_named("/no/such/folder", "mine")  # not even whether it exists is told
    assert not (datasets_dir() / "mine").exists()


def test_an_upload_within_the_caps_is_imported(hosted_mode, tiny_dataset) -> None:
    report, _ = import_named(("pets.zip", _zip_of(tiny_dataset)), "pets")
    assert report.total == 64


@pytest.mark.parametrize(
    ("variable", "value", "message"),
    [
        ("MAX_UPLOAD_MB", "0.01", r"upload pets.zip of 0.\d MB is over hosted mode's cap of "
         "0.0 MB"),
        ("MAX_DATASET_IMAGES", "50", "pets.zip: a dataset of 64 images is over hosted mode's cap "
         "of 50 images; import fewer photos"),
        ("MAX_DATASET_MB", "{0.7}", r"pets.zip: a dataset of 0.\d MB is over hosted mode's cap "
         r"of 0.\d MB; import fewer or smaller photos"),
    ],
)  # fmt: skip
def test_uploads_and_datasets_over_a_cap_are_refused(
    hosted_mode, tiny_dataset, monkeypatch: pytest.MonkeyPatch, variable, value, message
) -> None:
    if value == "{0.7}":  # 70% of the photos' size: below the dataset, above half of it
        value = str(0.7 * hosting.quota.folder_size(tiny_dataset) / hosting.MB)
    monkeypatch.setenv(hosting.ENV_PREFIX + variable, value)
    with pytest.raises(HostedLimitError, match=message):
        import_named(("pets.zip", _zip_of(tiny_dataset)), "pets")
    assert not (datasets_dir() / "pets").exists()
    assert [p.name for p in datasets_dir().iterdir()] == []  # no work folder left either


@pytest.mark.slow
def test_prediction_takes_uploads_only_and_at_most_the_cap(
    trained: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    from catdog.inference.predict import Predictor

    data, run_path = trained
    model = Predictor.from_run(run_path)
    monkeypatch.setenv(hosting.ENV_VAR, "1")
    monkeypatch.setenv("CATDOG_HOSTED_MAX_PREDICT_PHOTOS", "2")
    photos = [(f"p{k}.png", png_bytes(k)) for k in range(3)]
    with pytest.raises(HostedLimitError, match="classifying 3 photos at once is over hosted "
                       "mode's cap of 2; give at most 2 at a time"):  # fmt: skip
        model.predict(photos)
    assert [p.ok for p in model.predict(photos[:2])] == [True, True]
    image = next((data / "test" / "cats").iterdir())
    with pytest.raises(HostedLimitError, match=f"classifying the file {image} is refused"):
        model.predict([image])
    with pytest.raises(HostedLimitError, match=f"evaluating on {data} is refused"):
        evaluate_run(run_path, data=data)


@pytest.mark.slow
def test_train_page_widgets_stop_at_the_caps(hosted_mode) -> None:
    make_dataset(datasets_dir() / "photos", counts=(2, 1, 1))
    at = visit("train", dataset=str(datasets_dir() / "photos"))
    at.selectbox(key="train_model").set_value("catdog-net").run()
    assert at.number_input(key="train_epochs").max == 30
    assert at.number_input(key="train_epochs").value == 30  # catdog-net's 145, capped
    assert at.number_input(key="train_image_size").max == 128
    assert at.number_input(key="train_image_size").value == 112
    assert at.number_input(key="train_batch_size").max == 64
    assert at.number_input(key="train_time_limit_minutes").value == 10  # its 28, capped
    assert at.selectbox(key="train_precision").value == "float32"  # auto: a 2nd TF process
    assert at.selectbox(key="train_precision").options == ["float32"]  # the only one offered
    strategies = [o.split(":")[0] for o in at.selectbox(key="train_strategy").options]
    assert strategies == ["auto", "one"]  # one device (locally also mirrored)
    assert "Hosted demo: at most 30 epochs, 128 px, batch 64 and 10 minutes per run." in texts(at)


@pytest.mark.slow
def test_dataset_page_offers_no_server_folder_in_hosted_mode(
    hosted_mode, monkeypatch: pytest.MonkeyPatch
) -> None:
    make_dataset(datasets_dir() / "photos", counts=(2, 1, 1))
    at = visit("dataset", dataset=str(datasets_dir() / "photos"))
    assert at.radio[1].options == ["Upload a .zip"]
    assert "Hosted demo: a .zip of at most 50 MB" in texts(at)
    monkeypatch.setenv(hosting.ENV_VAR, "0")
    local = visit("dataset", dataset=str(datasets_dir() / "photos"))
    assert local.radio[1].options == ["Upload a .zip", "A folder on this computer"]


def test_hosted_runs_read_only_weights_files_visitors_uploaded(
    hosted_mode, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from catdog.data.paths import weights_dir
    from catdog.model.weights import HDF5_SIGNATURE, save_uploaded_weights

    data = make_dataset(datasets_dir() / "photos", counts=(2, 1, 1))
    server_file = tmp_path / "secret.weights.h5"  # never opened: refused by where it is
    pretrained = {"model": "mobilenet-v3-small", "image_size": 32, "epochs": 2}
    with pytest.raises(HostedLimitError, match=f"reading the weights file {server_file} is "
                       "refused in hosted mode.*; upload the weights file instead"):  # fmt: skip
        runs.create_run(tiny_config(data, weights=str(server_file), **pretrained))
    uploaded = weights_dir() / "mine-0123456789ab.weights.h5"  # where an upload is kept
    assert runs.create_run(tiny_config(data, weights=str(uploaded), **pretrained)).is_dir()

    monkeypatch.setenv("CATDOG_HOSTED_MAX_UPLOAD_MB", "0.001")
    with pytest.raises(HostedLimitError, match=r"upload big\.h5 of 0\.0 MB is over hosted mode's"):
        save_uploaded_weights("mobilenet-v3-small", "big.h5", HDF5_SIGNATURE + bytes(4000))
    assert not list(weights_dir().iterdir())


@pytest.mark.slow
def test_train_page_offers_no_weights_path_in_hosted_mode(hosted_mode) -> None:
    make_dataset(datasets_dir() / "photos", counts=(2, 1, 1))
    # Even a session that asks for the path field does not get one.
    at = visit("train", dataset=str(datasets_dir() / "photos"), train_weights_source="path")
    at.selectbox(key="train_model").set_value("mobilenet-v3-small").run()
    assert not at.exception, [e.value for e in at.exception]
    assert at.radio(key="train_weights_source").options == ["ImageNet (Keras' cache)",
                                                             "Upload a file"]  # fmt: skip
    assert at.radio(key="train_weights_source").value == "imagenet"
    at.radio(key="train_weights_source").set_value("upload").run()
    assert not at.text_input and len(at.file_uploader) == 1
    assert "Hosted demo: a weights file of at most 50 MB (MobileNetV3Small's ImageNet file is " \
        "4.1 MB)." in texts(at)  # fmt: skip


# ------------------------------------------------------------------- 3. private workspaces

A, B = "A" * 21 + "a", "B" * 21 + "b"  # two visitors' tokens (the shape token_urlsafe makes)


def example_run(data: Path, run_id: str = "20260101-000000-seed-baseline-ex01") -> Path:
    """A finished run in the data home's own runs folder: a shared example in hosted mode."""
    path = shared_runs_dir() / run_id
    config = TrainConfig(data=str(data), model="seed-baseline").resolved()
    runs.atomic_write_json(path / runs.CONFIG_FILE, {
        "run_id": run_id, "created": "2026-01-01T00:00:00", "classes": ["cats", "dogs"],
        "train": config.to_dict(),
    })  # fmt: skip
    runs.write_history(path, [{"epoch": 1, "loss": 0.6, "accuracy": 0.6, "val_loss": 0.6,
                               "val_accuracy": 0.7}])  # fmt: skip
    runs.write_status(path, "stopped", epochs_done=1)
    return path


def test_workspace_tokens_are_checked_before_they_name_a_folder() -> None:
    token = new_workspace_token()
    assert check_workspace_token(token) == token and len(token) == 22
    for bad in ("../" + "a" * 19, "a" * 21, "a" * 23, "a" * 21 + "/", "", None, "a" * 21 + "é"):
        with pytest.raises(WorkspaceError, match="is not one catdog makes"):
            check_workspace_token(bad)
        if bad is not None:  # None is no workspace (the local app)
            with pytest.raises(WorkspaceError):
                set_workspace(bad)
    assert current_workspace() is None


def test_each_workspace_sees_its_own_datasets_and_runs_and_the_shared_examples() -> None:
    shared = make_dataset(shared_datasets_dir() / "pets", counts=(2, 1, 1))
    example = example_run(shared)
    with in_workspace(A):
        mine = make_dataset(datasets_dir() / "mine", counts=(2, 1, 1))
        assert mine.parent == workspaces_dir() / A / "datasets"
        run = runs.create_run(tiny_config(mine))
        assert run.parent == workspaces_dir() / A / "runs"
        assert {(d.name, d.example) for d in list_datasets()} == {("mine", False),
                                                                  ("pets", True)}  # fmt: skip
        assert {(r.id, r.example) for r in runs.list_runs()} == {(run.name, False),
                                                                 (example.name, True)}  # fmt: skip
        assert runs.resolve_run(example.name[:20]) == example  # a prefix finds the example
        assert runs.resume_problem(runs.run_info(example)) == (
            f"run {example.name} is a shared example: it cannot be trained here; train a new run"
        )
        assert not runs.can_resume(runs.run_info(example))
    with in_workspace(B):
        assert [d.name for d in list_datasets()] == ["pets"]
        assert [r.id for r in runs.list_runs()] == [example.name]
        for asked in (run.name, run.name[:18], str(run), f"../../{A}/runs/{run.name}"):
            with pytest.raises(runs.RunError, match="in your workspace or the shared examples"):
                runs.resolve_run(asked)
    assert [r.id for r in runs.list_runs()] == [example.name]  # locally: the data home's own
    assert runs.run_info(example).example is False  # no workspace, nothing is "shared"


def test_a_visitor_trains_only_on_their_own_or_shared_data(hosted_mode) -> None:
    with in_workspace(A):
        theirs = make_dataset(datasets_dir() / "theirs", counts=(2, 1, 1))
    with in_workspace(B), pytest.raises(HostedLimitError, match=f"training on {theirs} is refused"):
        runs.create_run(tiny_config(theirs))


@pytest.mark.slow
def test_a_job_trains_in_its_workspace_and_only_that_workspace_sees_it() -> None:
    with in_workspace(A):
        data = make_dataset(datasets_dir() / "mine", counts=(4, 2, 2))
        job = manager().start(tiny_config(data))
        assert manager().get(job.run_id) is job
    with in_workspace(B):
        assert manager().get(job.run_id) is None
        assert job not in manager().all() and job not in manager().active()
    assert manager().get(job.run_id) is None  # nor the host's view
    assert job.join(timeout=120)
    assert job.snapshot().state == "completed", job.snapshot().error
    assert (workspaces_dir() / A / "runs" / job.run_id / runs.BEST_MODEL).is_file()


@pytest.mark.slow
def test_two_visitors_pages_show_only_their_own_runs(hosted_mode) -> None:
    shared = make_dataset(shared_datasets_dir() / "pets", counts=(2, 1, 1))
    example = example_run(shared)
    with in_workspace(A):
        mine = runs.create_run(tiny_config(make_dataset(datasets_dir() / "mine", counts=(2, 1, 1))))
        runs.write_status(mine, "stopped")
    visitor_a = visit("history", query={"ws": link_for(A)})
    visitor_b = visit("history", query={"ws": link_for(B)})
    assert visitor_a.query_params["ws"] == link_for(A)
    assert visitor_b.query_params["ws"] == link_for(B)
    options_a = visitor_a.selectbox(key="history_run").options
    options_b = visitor_b.selectbox(key="history_run").options
    assert any(o.startswith(short_id(mine.name)) for o in options_a) and len(options_a) == 2
    assert len(options_b) == 1 and "shared example" in options_b[0]
    assert list(visitor_b.dataframe[0].value["run"]) == [example.name]
    assert list(visitor_b.dataframe[0].value["example"]) == [True]
    visitor_b.switch_page(PAGES["dataset"]).run()
    assert not any("mine" in o for o in visitor_b.radio[0].options)
    visitor_a.switch_page(PAGES["dataset"]).run()
    assert any(o.startswith("mine — ") for o in visitor_a.radio[0].options)


def test_a_url_token_of_the_wrong_shape_gets_a_new_workspace(hosted_mode) -> None:
    at = visit(query={"ws": "../../etc"})
    link = at.query_params["ws"]
    assert link != "../../etc" and check_workspace_token(open_link(link).token)
    assert at.session_state["workspace"] == link


def test_locally_there_are_no_workspaces() -> None:
    at = visit()
    assert "ws" not in at.query_params and current_workspace() is None
    assert not workspaces_dir().exists()


# -------------------------------------------------------------- 4. a refresh keeps one's place


@pytest.mark.slow
def test_a_refresh_keeps_the_workspace_and_the_active_dataset(hosted_mode) -> None:
    at = visit("dataset")
    link = at.query_params["ws"]
    token = open_link(link).token
    with in_workspace(token):
        make_dataset(datasets_dir() / "mine", counts=(2, 1, 1))
    at.run()
    picked = next(o for o in at.radio[0].options if o.startswith("mine — "))
    at.radio[0].set_value(next(p for p in at.radio[0].options if p == picked)).run()
    assert at.query_params == {"ws": link, "data": "mine"}

    refreshed = visit("train", query=dict(at.query_params))  # a new session, the same URL
    assert refreshed.session_state["workspace"] == link
    assert refreshed.session_state["dataset"] == str(workspaces_dir() / token / "datasets" / "mine")
    assert "On **mine**" in texts(refreshed)
    assert refreshed.query_params == {"ws": link, "data": "mine"}


@pytest.mark.slow
def test_a_refresh_keeps_the_active_dataset_locally_too() -> None:
    make_dataset(datasets_dir() / "mine", counts=(2, 1, 1))
    refreshed = visit("train", query={"data": "mine"})
    assert refreshed.session_state["dataset"] == str(datasets_dir() / "mine")
    assert "On **mine**" in texts(refreshed)
    gone = visit(query={"data": "deleted-meanwhile"})  # falls back to the demo
    assert "Active dataset: demo" in texts(gone) and "data" not in gone.query_params


# ------------------------------------------------------------------------------ 5. delete


def test_delete_run_takes_only_ones_own_idle_runs(hosted_mode) -> None:
    example = example_run(make_dataset(shared_datasets_dir() / "pets", counts=(2, 1, 1)))
    with in_workspace(A):
        data = make_dataset(datasets_dir() / "mine", counts=(2, 1, 1))
        idle, busy = runs.create_run(tiny_config(data)), runs.create_run(tiny_config(data))
        runs.write_status(idle, "stopped")
    with in_workspace(B), pytest.raises(runs.RunError, match=f"no run '{idle.name}' in your"):
        runs.delete_run(idle.name)
    with in_workspace(A):
        with pytest.raises(runs.RunError, match=f"run {example.name} is a shared example; only"):
            runs.delete_run(example.name)
        with runs.RunLock.acquire(busy):  # trained by someone (the command line, say)
            with pytest.raises(runs.RunError, match=f"run {busy.name} is training; stop it first"):
                runs.delete_run(busy.name)
            with pytest.raises(DatasetError, match=f"dataset 'mine' is what run {busy.name} "
                               "trains on \\(running\\); stop it first"):  # fmt: skip
                delete_dataset(data, runs_training_on)
        assert runs.delete_run(idle.name) == idle and not idle.exists()
        assert [r.id for r in runs.list_runs()] == [busy.name, example.name]
    assert example.is_dir()


def test_delete_dataset_takes_only_ones_own(hosted_mode) -> None:
    shared = make_dataset(shared_datasets_dir() / "pets", counts=(2, 1, 1))
    demo_dataset_dir().mkdir(parents=True)
    with in_workspace(A):
        mine = make_dataset(datasets_dir() / "mine", counts=(2, 1, 1))
    with in_workspace(B):
        with pytest.raises(DatasetError, match="no dataset 'mine' among your datasets"):
            delete_dataset(mine, runs_training_on)
        with pytest.raises(DatasetError, match="'pets' is a shared example; only your own"):
            delete_dataset(shared, runs_training_on)
        with pytest.raises(DatasetError, match="'demo' is the built-in demo dataset; it stays"):
            delete_dataset(demo_dataset_dir(), runs_training_on)
    with in_workspace(A):
        assert delete_dataset(mine, runs_training_on) == mine and not mine.exists()
    assert shared.is_dir() and demo_dataset_dir().is_dir()


@pytest.mark.slow
def test_history_page_deletes_a_run_after_confirming(hosted_mode) -> None:
    example_run(make_dataset(shared_datasets_dir() / "pets", counts=(2, 1, 1)))
    with in_workspace(A):
        data = make_dataset(datasets_dir() / "mine", counts=(2, 1, 1))
        keep, drop = runs.create_run(tiny_config(data)), runs.create_run(tiny_config(data))
        for path in (keep, drop):
            runs.write_status(path, "stopped")
    at = visit("history", query={"ws": link_for(A)})
    offered = at.selectbox(key="history_delete_run")
    assert len(offered.options) == 2 and not any("example" in o for o in offered.options)
    offered.set_value(drop.name).run()
    at.button(key="history_delete").click().run()
    assert f"Delete run {drop.name}, its models and its history? This cannot be undone." in texts(
        at
    )
    at.button(key="history_delete_no").click().run()  # cancelled: nothing happens
    assert drop.is_dir() and not [b for b in at.button if b.key == "history_delete_yes"]
    at.button(key="history_delete").click().run()
    at.button(key="history_delete_yes").click().run()
    assert not at.exception, [e.value for e in at.exception]
    assert f"Run {drop.name} was deleted." in texts(at)
    assert not drop.exists() and keep.is_dir()
    assert len(at.selectbox(key="history_delete_run").options) == 1


@pytest.mark.slow
def test_dataset_page_deletes_the_active_dataset_after_confirming() -> None:
    mine = make_dataset(datasets_dir() / "mine", counts=(2, 1, 1))
    small_demo()
    at = visit("dataset", query={"data": "mine"})
    at.button(key="dataset_delete").click().run()
    assert "Delete dataset mine and its 8 images? This cannot be undone." in texts(at)
    at.button(key="dataset_delete_yes").click().run()
    assert not at.exception, [e.value for e in at.exception]
    assert "Dataset mine was deleted." in texts(at) and not mine.exists()
    assert at.session_state["dataset"] == str(demo_dataset_dir())
    assert "data" not in at.query_params
    assert not [b for b in at.button if b.key == "dataset_delete"]  # the demo stays


# -------------------------------------------------------------------------------- 6. queue


@pytest.mark.slow
def test_the_queue_starts_jobs_in_order_and_honours_cancel() -> None:
    queue = JobManager(limit=1)
    data = make_dataset(datasets_dir() / "photos", counts=(4, 2, 2))
    first, second, third = (queue.start(tiny_config(data, seed=k)) for k in range(3))
    assert (first.training, second.queued, third.queued) == (True, True, True)
    assert [queue.position(j.run_id) for j in (first, second, third)] == [None, 1, 2]
    assert queue.load() == (1, 2)
    for job in (second, third):
        assert runs.run_info(job.path).state == "queued"  # listed, on disk, waiting
        assert job.snapshot().state == "queued"
    wait = queue.estimated_start(third.run_id)  # first's and second's 1-minute limits, at most
    assert wait is not None and wait <= 2 * (60 + jobs.OVERHEAD_SECONDS)
    with pytest.raises(runs.RunError, match="is waiting in the training queue; cancel it first"):
        runs.delete_run(second.run_id)

    assert queue.cancel(third.run_id)
    assert third.join(0) and third.snapshot().state == "cancelled"
    info = runs.run_info(third.path)
    assert info.state == "cancelled" and runs.can_resume(info)  # nothing lost: it can start
    assert queue.position(third.run_id) is None and queue.load()[1] == 1

    assert first.join(120) and second.join(120), "two tiny runs did not finish in 2 minutes"
    assert [first.snapshot().state, second.snapshot().state] == ["completed", "completed"]
    assert first.ended_at <= second.began_at  # one at a time, in order
    assert third.began_at is None  # never trained
    assert runs.run_info(second.path).state == "completed"


def test_a_visitor_cannot_cancel_or_see_anothers_queued_job() -> None:
    queue = JobManager(limit=0)  # nothing trains: every job waits
    with in_workspace(A):
        data = make_dataset(datasets_dir() / "photos", counts=(2, 1, 1))
        job = queue.start(tiny_config(data))
    with in_workspace(B):
        assert queue.cancel(job.run_id) is False
        assert queue.position(job.run_id) is None and queue.estimated_start(job.run_id) is None
        assert queue.get(job.run_id) is None and queue.load() == (0, 1)
    assert job.queued
    with in_workspace(A):
        assert queue.position(job.run_id) == 1
        assert queue.cancel(job.run_id) and not job.running


@pytest.mark.slow
def test_train_page_queues_a_second_visitors_run_and_cancels_it(hosted_mode) -> None:
    data = make_dataset(shared_datasets_dir() / "pets", counts=(4, 2, 2))

    def start(token: str) -> AppTest:
        at = visit("train", query={"ws": link_for(token)}, dataset=str(data))
        at.number_input(key="train_steps_per_epoch").set_value(5000)  # long: stopped below
        at.number_input(key="train_epochs").set_value(2)
        at.number_input(key="train_batch_size").set_value(8)
        at.number_input(key="train_image_size").set_value(48).run()
        next(b for b in at.button if b.label == "Start training").click().run()
        assert not at.exception, [e.value for e in at.exception]
        return at

    visitor_a = start(A)
    run_a = visitor_a.session_state["watched_run"]
    visitor_b = start(B)
    run_b = visitor_b.session_state["watched_run"]
    assert f"Run `{run_b}` is waiting for its turn: number 1 in the queue, so it should start" \
        in texts(visitor_b)  # fmt: skip
    assert not [b for b in visitor_b.button if b.key == f"watch_{run_a}"]
    with in_workspace(B):
        assert manager().get(run_a) is None  # B cannot reach A's job to stop it
    visitor_b.button(key="cancel_queued").click().run()
    assert f"Run {run_b} cancelled after 0 epoch(s)." in [w.value for w in visitor_b.warning]
    with in_workspace(B):
        assert runs.run_info(runs.resolve_run(run_b)).state == "cancelled"
    with in_workspace(A):
        job = manager().get(run_a)
    assert job.training
    visitor_a.run()
    next(b for b in visitor_a.button if b.label == "Stop training").click().run()
    assert job.join(120)
    assert job.snapshot().state in ("stopped", "completed")


# ------------------------------------------------------------------- 7. expiry and quota


def _age(folder: Path, hours: float) -> None:
    """Set the modification time of ``folder`` and everything in it ``hours`` into the past."""
    then = time.time() - hours * 3600
    for path in [*folder.rglob("*"), folder]:
        os.utime(path, (then, then), follow_symlinks=False)


def test_expiry_removes_an_idle_workspace_and_nothing_else() -> None:
    tokens = {name: new_workspace_token() for name in ("idle", "recent", "busy", "training")}
    for token in tokens.values():
        with in_workspace(token):
            data = make_dataset(datasets_dir() / "mine", counts=(2, 1, 1))
            runs.create_run(tiny_config(data))
    shared = make_dataset(shared_datasets_dir() / "pets", counts=(2, 1, 1))
    example = example_run(shared)
    stray = workspaces_dir() / "not-a-workspace"
    stray.mkdir()
    for folder in (*(workspaces_dir() / t for t in tokens.values()), shared, example, stray):
        _age(folder, 30)
    _age(workspaces_dir() / tokens["recent"], 30)
    workspaces.touch_workspace(tokens["recent"])  # visited just now
    (training_run,) = (workspaces_dir() / tokens["training"] / "runs").iterdir()
    with runs.RunLock.acquire(training_run):  # trained right now (the command line, say)
        removed = workspaces.sweep_idle_workspaces(busy={tokens["busy"]}, idle_hours=24)
    assert removed == [workspaces_dir() / tokens["idle"]]
    assert not removed[0].exists()
    for name in ("recent", "busy", "training"):
        assert (workspaces_dir() / tokens[name] / "runs").is_dir(), name
    assert shared.is_dir() and example.is_dir() and stray.is_dir()
    later = workspaces.sweep_idle_workspaces(idle_hours=24)  # kept only while its job ran
    assert later == [workspaces_dir() / tokens["busy"]]  # (taking the lock wrote to the other)
    much_later = workspaces.sweep_idle_workspaces(idle_hours=24, now=time.time() + 25 * 3600)
    assert sorted(much_later) == sorted(
        workspaces_dir() / tokens[n] for n in ("recent", "training")
    )
    assert shared.is_dir() and example.is_dir() and stray.is_dir()


def test_a_visit_keeps_a_workspace_from_expiring(hosted_mode) -> None:
    at = visit()
    marker = workspaces_dir() / open_link(at.query_params["ws"]).token / workspaces.LAST_SEEN
    assert marker.is_file() and time.time() - marker.stat().st_mtime < 60


def test_a_workspace_over_its_quota_cannot_import_or_train(
    hosted_mode, monkeypatch: pytest.MonkeyPatch, tiny_dataset: Path
) -> None:
    archive = _zip_of(tiny_dataset)
    with in_workspace(A):
        import_named(("pets.zip", archive), "pets")
        used = current_policy().workspace_usage()
        monkeypatch.setenv("CATDOG_HOSTED_WORKSPACE_QUOTA_MB", str(1.5 * used / hosting.MB))
        over = r"your workspace holds 0.\d MB and pets.zip would add 0.\d MB: over its quota of "
        with pytest.raises(HostedLimitError, match=over + r"0.\d MB; delete runs"):
            import_named(("pets.zip", archive), "pets-again")
        monkeypatch.setenv("CATDOG_HOSTED_RUN_RESERVE_MB", str(0.1 * used / hosting.MB))
        runs.create_run(tiny_config(datasets_dir() / "pets"))  # still under the quota
        monkeypatch.setenv("CATDOG_HOSTED_WORKSPACE_QUOTA_MB", str(0.9 * used / hosting.MB))
        with pytest.raises(HostedLimitError, match=r"your workspace holds 0.\d MB and a new run "
                           r"\(its models\) would add 0.\d MB: over its quota"):  # fmt: skip
            runs.create_run(tiny_config(datasets_dir() / "pets"))
    with in_workspace(B):  # another workspace has its own quota
        assert current_policy().workspace_usage() == 0
        current_policy().check_quota()


# ------------------------------------------------------------------- 8. no tracebacks


@pytest.fixture(autouse=True)
def _error_details_restored() -> None:
    """Hosted mode sets Streamlit's process-wide error option; put it back for other tests."""
    before = streamlit_config.get_option("client.showErrorDetails")
    yield
    streamlit_config.set_option("client.showErrorDetails", before)


def test_an_unexpected_error_is_one_sentence_in_hosted_mode(
    hosted_mode, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    broken = tmp_path / "not-a-folder"
    broken.write_text("the data home is a file: every page fails to read it")
    monkeypatch.setenv("CATDOG_HOME", str(broken))
    at = visit("history")
    assert [e.value for e in at.error] == [SOMETHING_WENT_WRONG]
    assert not at.exception and str(broken) not in texts(at)
    logged = [r for r in caplog.records if r.name == "catdog.dashboard"]
    assert logged and logged[0].exc_info and "FileExistsError" in caplog.text
    assert streamlit_config.get_option("client.showErrorDetails") == "none"


def test_an_unexpected_error_is_shown_in_full_locally(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    broken = tmp_path / "not-a-folder"
    broken.write_text("the data home is a file")
    monkeypatch.setenv("CATDOG_HOME", str(broken))
    at = AppTest.from_file(str(APP), default_timeout=90).run()
    assert at.exception and "File exists" in at.exception[0].value
    assert at.exception[0].stack_trace  # the traceback, as Streamlit shows it
    assert streamlit_config.get_option("client.showErrorDetails") != "none"
