"""The data audit on generated images with planted problems, the review queue, the audit
command, and the Dataset page's Data health tab."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from builders import tree_digest
from health_data import CLASSES, planted_dataset
from pagetest import PAGES, navigation_only, open_page  # noqa: F401 (autouse fixture)

from catdog.audit_jobs import audit_job, start_audit
from catdog.data import health, suspects
from catdog.data.datasets import SPLITS, list_datasets, scan_dataset
from catdog.data.health import AuditError, AuditReport, audit_dataset, cached_audit
from catdog.data.review import apply_review, decide, load_review, review_path
from ui.health_view import PER_PAGE

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def planted(catdog_home: Path):
    """The planted dataset, imported in the data home (so the dashboard lists it)."""
    return planted_dataset(catdog_home / "datasets" / "planted")


def test_audit_finds_planted_duplicates_flips_and_odd_images(planted) -> None:
    report = audit_dataset(planted.root)
    found = {frozenset((p["a"], p["b"])) for p in report.pairs}
    # Targets: >= 95% of the planted near-duplicates, <= 5% false pairs.
    assert len(planted.pairs & found) >= 0.95 * len(planted.pairs)
    assert len(found - planted.pairs) <= 0.05 * max(1, len(found))
    assert report.leaks == {"train/validation": 3, "train/test": 3, "validation/test": 0}
    assert all(p["leak"] for p in report.pairs)
    # >= 70% of the flipped labels among the top 2 x (number flipped) suspects.
    top = {s["file"] for s in report.in_split("train")[: 2 * len(planted.flipped)]}
    assert len(top & planted.flipped) >= 0.7 * len(planted.flipped)
    assert report.suspects == [s for split in SPLITS for s in report.in_split(split)]
    assert all(s["file"].startswith(f"{s['split']}/") for s in report.suspects)
    assert report.agreement > 0.9
    odd = {o["file"]: " ".join(o["reasons"]) for o in report.odd}
    assert set(odd) == set(planted.odd)
    for file, kind in planted.odd.items():
        expected = {"tiny": "tiny", "stretched": "stretched", "blank": "blank",
                    "drawing": "few colours"}[kind]  # fmt: skip
        assert expected in odd[file], (file, odd[file])
    # Cached per dataset version: the same report without reading again; a changed file
    # (a new version) is audited again.
    assert cached_audit(planted.root) == report
    assert AuditReport.from_dict(json.loads(json.dumps(report.to_dict()))) == report
    (planted.root / "test" / "cats" / "test0.jpg").unlink()
    assert cached_audit(planted.root) is None


def test_each_split_is_ranked_on_its_own_so_a_surer_split_crowds_out_no_doubts() -> None:
    # Test photos judged by a sure ensemble (its doubt 0.99), training photos by one network
    # (its doubt 0.85): ranked together, the test split's doubts would come first.
    y = np.array([0, 0, 0, 1, 1, 1] * 2)
    probabilities = np.array([[0.9, 0.1], [0.8, 0.2], [0.15, 0.85], [0.2, 0.8], [0.1, 0.9],
                              [0.2, 0.8], [0.95, 0.05], [0.97, 0.03], [0.96, 0.04], [0.99, 0.01],
                              [0.01, 0.99], [0.02, 0.98]])  # fmt: skip
    groups = ["train"] * 6 + ["test"] * 6
    found = suspects.by_group(probabilities, y, groups, SPLITS)
    assert [(s.index, groups[s.index], s.predicted) for s in found] == [
        (2, "train", 1), (9, "test", 0)]  # fmt: skip
    assert found[0].margin == pytest.approx(-0.7) and found[1].confidence == pytest.approx(0.99)
    assert suspects.confident_learning(probabilities, y).suspects == [9, 2]


def test_unreadable_file_is_reported_and_imbalance_warned(dataset_factory) -> None:
    root = dataset_factory(counts=(15, 1, 1))
    for i in range(15):
        (root / "train" / "dogs" / f"dog.{i}.jpg").unlink()
    (root / "train" / "dogs" / "broken.jpg").write_bytes(b"not a photo")
    report = audit_dataset(root)
    assert [u["file"] for u in report.unreadable] == ["train/dogs/broken.jpg"]
    assert "broken.jpg" in report.unreadable[0]["reason"]
    assert any("very unequal" in w for w in report.warnings)


def test_one_audit_at_a_time_and_hosted_time_cap(dataset_factory, monkeypatch) -> None:
    root = dataset_factory(counts=(4, 2, 2))
    refused = []

    def audit_again(done: int, total: int, message: str) -> None:
        if not refused:
            with pytest.raises(AuditError, match="already running") as caught:
                audit_dataset(root, refresh=True)
            refused.append(str(caught.value))

    audit_dataset(root, progress=audit_again)
    assert refused
    monkeypatch.setenv("CATDOG_HOSTED", "1")
    monkeypatch.setattr(health, "HOSTED_AUDIT_SECONDS", 0.0)
    with pytest.raises(AuditError, match="stopped after"):
        audit_dataset(root, refresh=True)


def test_review_writes_a_new_version_and_never_changes_the_dataset(planted) -> None:
    before = tree_digest(planted.root)
    flipped = sorted(planted.flipped)[0]
    copy = next(f for pair in planted.pairs for f in pair if not f.startswith("train/"))
    to = CLASSES[1 - CLASSES.index(flipped.split("/")[1])]
    decide(planted.root, flipped, "move", to)
    decide(planted.root, copy, "drop")
    decide(planted.root, "train/cats/odd-blank.png", "drop")
    decide(planted.root, "train/cats/odd-blank.png", "keep")  # changed my mind
    assert set(load_review(planted.root)) == {flipped, copy}
    for bad in ("../../etc/passwd", "train/cats/none.jpg", "train/birds/x.jpg"):
        with pytest.raises(ValueError, match="not an image of planted"):
            decide(planted.root, bad, "drop")
    with pytest.raises(ValueError, match="can move to"):
        decide(planted.root, flipped, "move", flipped.split("/")[1])

    out = apply_review(planted.root)
    assert out.name == "planted-reviewed"
    assert tree_digest(planted.root) == before | {
        review_path(planted.root).relative_to(planted.root).as_posix(): tree_digest(
            review_path(planted.root)
        )["review.json"]
    }
    old, new = scan_dataset(planted.root), scan_dataset(out)
    assert new.total == old.total - 1
    name = flipped.split("/")[2]
    assert (out / "train" / to / name).is_file() and not (out / flipped).exists()
    assert not (out / copy).exists()
    assert out in [info.root for info in list_datasets()]
    manifest = json.loads((out / "catdog-dataset.json").read_text())
    assert manifest["derived_from"] == "planted" and manifest["review"][copy] == "drop"
    assert apply_review(planted.root).name == "planted-reviewed-2"  # never overwritten


@pytest.mark.slow
def test_a_run_trains_on_the_reviewed_version(planted) -> None:
    from catdog.train.config import TrainConfig
    from catdog.train.trainer import train

    decide(planted.root, sorted(planted.flipped)[0], "drop")
    out = apply_review(planted.root)
    result = train(TrainConfig(data=str(out), model="seed-baseline", epochs=1, image_size=48,
                               batch_size=16, precision="float32"))  # fmt: skip
    assert result.state == "completed"
    assert result.metrics["epochs_done"] == 1


@pytest.mark.slow
def test_audit_command_prints_json(planted, catdog_home) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "catdog", "audit", "planted", "--json"],
        capture_output=True, text=True, cwd=ROOT, timeout=300,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["leaks"]["train/test"] == 3 and len(report["odd"]) == 4
    done = subprocess.run(
        [sys.executable, "-m", "catdog", "review", "planted"],
        capture_output=True, text=True, cwd=ROOT, timeout=300,
    )  # fmt: skip
    assert done.returncode == 2 and "decide on some first" in done.stderr


@pytest.mark.slow
def test_data_health_tab_audits_and_writes_a_new_version(planted) -> None:
    at = open_page("dataset", query={"data": "planted"})
    at.button(key="health_run").click().run()
    assert not at.exception, [e.value for e in at.exception]
    job = audit_job(planted.root)  # in the background: the page answers at once
    assert job is not None and job.join(120) and job.snapshot().state == "done"
    at.run()
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["Leaks across splits"] == "6" and metrics["Odd images"] == "4"
    copy = next(f for pair in planted.pairs for f in pair if not f.startswith("train/"))
    shown = [s for s in at.selectbox if s.key and s.key.startswith("review_")]
    assert len(shown) == 2 * 6  # the first page: six pairs, both images of each
    at.selectbox(key=f"review_{copy}").set_value("drop").run()
    assert load_review(planted.root)[copy].action == "drop"
    at.session_state["health_section"] = "Suspect labels"
    at.run()
    split = at.radio(key="health_suspects_split")
    report = cached_audit(planted.root)
    assert split.value == "train" and report.in_split("train")
    shown = {s.key.removeprefix("review_") for s in at.selectbox if s.key.startswith("review_")}
    assert shown == {s["file"] for s in report.in_split("train")[:PER_PAGE]}
    at.button(key="health_write").click().run()
    assert not at.exception, [e.value for e in at.exception]
    assert (planted.root.parent / "planted-reviewed").is_dir()
    assert any("Wrote planted-reviewed" in s.value for s in at.success)


def test_hosted_visitor_reviews_a_shared_example_into_their_workspace(planted, monkeypatch):
    from catdog.data.paths import in_workspace, new_workspace_token, workspace_dir

    monkeypatch.setenv("CATDOG_HOSTED", "1")
    with in_workspace(new_workspace_token()):
        shared = planted.root  # the data home's own datasets: a shared example here
        decide(shared, sorted(planted.flipped)[0], "drop")
        assert review_path(shared).is_relative_to(workspace_dir())
        assert not (shared / ".catdog").exists()
        out = apply_review(shared)
        assert out.parent == workspace_dir() / "datasets"
        assert scan_dataset(out).total == scan_dataset(shared).total - 1


@pytest.mark.slow
def test_label_check_on_a_pretrained_base_where_its_weights_are(planted, tmp_path, monkeypatch):
    from catdog.inference.audit_features import IMAGE_SIZE, pretrained_features
    from catdog.model.backend import keras

    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras"))  # an empty Keras cache
    assert pretrained_features() is None  # nothing is downloaded for an audit
    weights = tmp_path / "mobilenet_v3_small.weights.h5"  # a fresh (untrained) base's weights
    base = keras.applications.MobileNetV3Small(
        include_top=False, weights=None, include_preprocessing=False, input_shape=(32, 32, 3)
    )
    base.save_weights(weights)
    features = pretrained_features(weights)
    report = audit_dataset(planted.root, label_features=features)
    assert report.label_model == "mobilenet-v3-small features"
    assert cached_audit(planted.root, features.name) == report
    assert cached_audit(planted.root) is None  # cached apart from the quick check's report
    rows = features.extract([planted.root / "train/cats/train0.jpg"], lambda d, t: None)
    assert rows.shape == (1, 576) and IMAGE_SIZE == 128


@pytest.mark.slow
def test_label_check_on_a_trained_runs_features(planted, catdog_home) -> None:
    from catdog.train.config import TrainConfig
    from catdog.train.trainer import train

    result = train(TrainConfig(data=str(planted.root), model="seed-baseline", epochs=1,
                               image_size=48, batch_size=16, precision="float32"))  # fmt: skip
    run_id = result.run_id
    audit = [sys.executable, "-m", "catdog", "audit", "planted", "--json", "--run", run_id[:15]]
    done = subprocess.run(audit, capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["label_model"] == f"features of run {run_id}"
    assert report["leaks"]["train/test"] == 3  # the other finders do not depend on it
    assert cached_audit(planted.root, f"features of run {run_id}") is not None
    assert cached_audit(planted.root) is None  # apart from the quick check's report
    for bad, says in ((["--run", "no-such-run"], "no run 'no-such-run'"),
                      (["--run", run_id, "--features", "quick"], "not several")):  # fmt: skip
        done = subprocess.run([*audit[:5], *bad], capture_output=True, text=True, cwd=ROOT,
                              timeout=120)  # fmt: skip
        assert done.returncode == 2 and says in done.stderr and "Traceback" not in done.stderr
    # The Data health tab offers the run, and its report is the one just cached.
    at = open_page("dataset", query={"data": "planted"})
    label = f"features of run {run_id}"
    at.selectbox(key="health_features").set_value(label).run()
    assert not at.exception, [e.value for e in at.exception]
    assert {m.label: m.value for m in at.metric}["Leaks across splits"] == "6"


def test_an_audit_in_the_background_reports_stops_and_fails_in_words(planted, tmp_path) -> None:
    job = start_audit(planted.root)
    assert start_audit(planted.root) is job  # one audit of a dataset at a time
    assert job.join(120)
    snap = job.snapshot()
    assert (snap.state, snap.fraction, snap.error) == ("done", 1.0, "")
    assert cached_audit(planted.root) is not None  # the report is where the page reads it

    job = start_audit(planted.root, refresh=True)
    job.stop()
    assert job.join(120) and job.snapshot().state == "stopped"
    assert "stopped" in job.snapshot().error

    (tmp_path / "nothing").mkdir()
    job = start_audit(tmp_path / "nothing")
    assert job.join(60)
    snap = job.snapshot()
    assert snap.state == "failed" and snap.error and "Traceback" not in snap.error


@pytest.mark.slow
def test_the_tab_shows_a_running_audit_after_a_page_switch_and_can_stop_it(planted) -> None:
    at = open_page("dataset", query={"data": "planted"})
    job = start_audit(planted.root, label_features=health.LabelFeatures(
        "a slow check", _slow_features, probabilities=False), refresh=True)  # fmt: skip
    at.run()  # the page (or a fresh visit) finds the running audit
    assert not at.exception, [e.value for e in at.exception]
    assert any("Auditing planted" in m.value for m in at.markdown)
    assert at.button(key="health_stop")
    at.button(key="health_stop").click().run()
    assert job.join(60) and job.snapshot().state == "stopped"
    at.run()
    assert any("stopped" in i.value for i in at.info)
    assert at.button(key="health_run")  # ready to start again


def _slow_features(paths: list[Path], tick) -> np.ndarray:
    """Features that take their time: each image ticks, for a while."""
    import time

    rows = []
    for done, _ in enumerate(paths, 1):
        time.sleep(0.05)
        tick(done, len(paths))
        rows.append([float(done % 2), 1.0])
    return np.array(rows, np.float32)


def test_the_cross_fitted_check_is_offered_on_your_own_computer_only(planted, monkeypatch):
    at = open_page("dataset", query={"data": "planted"})
    options = at.selectbox(key="health_features").options
    cross_fit = next(o for o in options if "networks trained across folds" in o)
    at.selectbox(key="health_features").set_value(cross_fit).run()
    assert at.number_input(key="health_cross_fit_minutes").value == 30
    assert at.button(key="health_run")  # not started until asked: it trains for 30 minutes
    assert audit_job(planted.root) is None
    at.number_input(key="health_cross_fit_minutes").set_value(45).run()
    at.switch_page(PAGES["train"]).run()
    at.switch_page(PAGES["dataset"]).run()  # the choice survives a visit elsewhere
    assert at.selectbox(key="health_features").value == cross_fit
    assert at.number_input(key="health_cross_fit_minutes").value == 45
    assert not at.exception and not at.warning, [w.value for w in at.warning]

    monkeypatch.setenv("CATDOG_HOSTED", "1")
    at = open_page("dataset")
    assert not any("across folds" in o for o in at.selectbox(key="health_features").options)
