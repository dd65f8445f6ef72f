"""Answers you can trust: calibration, the "not sure" rule, and the evaluation to click through.

The library's arithmetic against hand-made numbers; then the session's tiny real run (conftest's
``trained``) through the library, the command line and the pages.
"""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import numpy as np
import pytest
from pagetest import literal, navigation_only, open_page  # noqa: F401 - a fixture
from test_pages import figures, texts

from catdog.cli import main
from catdog.data.datasets import labelled_images
from catdog.data.ood import KINDS, ood_images
from catdog.inference.calibration import ece, fit_temperature, nll, scaled
from catdog.inference.curves import binary_confusion, one_vs_rest
from catdog.inference.evaluation_table import results_csv
from catdog.inference.predict import Predictor
from catdog.inference.trust import load_trust, threshold_for, trust_files


def _sigmoid(z: np.ndarray) -> np.ndarray:
    return 1 / (1 + np.exp(-z))


def test_temperature_undoes_overconfidence() -> None:
    rng = np.random.default_rng(0)
    z = rng.normal(0, 2, 4000)
    labels = (rng.random(4000) < _sigmoid(z)).astype(int)  # z is the true log-odds
    sure = _sigmoid(3 * z)  # a model three times too sure
    probs = np.stack([1 - sure, sure], axis=1)
    t = fit_temperature(probs, labels)
    assert t == pytest.approx(3.0, rel=0.1)
    after = scaled(probs, t)
    assert nll(after, labels) < nll(probs, labels) - 0.05
    assert ece(after, labels) < 0.02 < ece(probs, labels)
    assert (after.argmax(1) == probs.argmax(1)).all()  # the classes' order never changes


def test_threshold_answers_the_stated_share() -> None:
    scores = np.random.default_rng(1).random(1000)
    for share in (0.5, 0.9, 0.95, 1.0):
        answered = np.mean(scores <= threshold_for(scores, share))
        assert share <= answered < share + 0.002
    with pytest.raises(ValueError, match=r"in \(0, 1\], got 0"):
        threshold_for(scores, 0)


def test_curves_match_hand_computed_numbers() -> None:
    c = one_vs_rest([0.9, 0.8, 0.7, 0.6], [True, False, True, False])
    assert c["roc"]["tpr"] == [0, 0.5, 0.5, 1, 1] and c["roc"]["fpr"] == [0, 0, 0.5, 0.5, 1]
    assert c["auc"] == pytest.approx(0.75)
    assert c["average_precision"] == pytest.approx((1 + 2 / 3) / 2)  # scikit-learn's
    m = binary_confusion([0.9, 0.2, 0.6, 0.4], [1, 0, 0, 1], 0.5)
    assert m.tolist() == [[1, 1], [1, 1]]


def test_ood_pictures_are_drawn_alike_from_a_seed() -> None:
    first = ood_images(16, 32, seed=3)
    assert [k for k, _ in first] == list(KINDS) * 2
    again = ood_images(16, 32, seed=3)
    other = ood_images(16, 32, seed=4)
    same = [
        np.array_equal(np.asarray(a), np.asarray(b))
        for (_, a), (_, b) in zip(first, again, strict=True)
    ]
    differ = [
        np.array_equal(np.asarray(a), np.asarray(b))
        for (_, a), (_, b) in zip(first, other, strict=True)
    ]
    assert all(same) and not all(differ)
    assert all(image.size == (32, 32) and image.mode == "RGB" for _, image in first)


# ---------------------------------------------------------------- a real tiny run


@pytest.fixture(scope="module")
def run(trained: tuple[Path, Path]) -> Path:
    """The session's run, its trust learned (and saved) once."""
    Predictor.from_run(trained[1])
    return trained[1]


@pytest.fixture
def home(run: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The data home holding the session's run (for the pages and the command line)."""
    monkeypatch.setenv("CATDOG_HOME", str(run.parent.parent))
    return run.parent.parent


def _validation(trained: tuple[Path, Path]) -> tuple[list[Path], np.ndarray]:
    paths, labels = labelled_images(trained[0] / "validation", ["cats", "dogs"])
    return paths, np.asarray(labels)


def test_saved_trust_calibrates_and_answers_the_share_of_validation(
    trained: tuple[Path, Path], run: Path
) -> None:
    json_file, npz_file = trust_files(run)
    assert json_file.is_file() and npz_file.is_file()
    saved = json.loads(json_file.read_text())
    trust = load_trust(run)
    assert trust is not None and trust.temperature == saved["temperature"] != 1.0
    paths, labels = _validation(trained)
    predictor = Predictor.from_run(run)
    predictions = predictor.predict(paths)
    raw = np.array([list(p.uncalibrated.values()) for p in predictions])
    calibrated = np.array([list(p.probabilities.values()) for p in predictions])
    assert nll(calibrated, labels) < nll(raw, labels)  # the saved temperature helps
    answered = np.mean([p.answered for p in predictions])
    assert 0.95 <= answered < 0.95 + 1 / len(paths) + 1e-9  # 16 photos: 16 of 16 answered
    assert saved["rule"]["score"] in saved["compared"]


@pytest.fixture(scope="module")
def doubtful(trained: tuple[Path, Path], run: Path) -> tuple[Path, float]:
    """The validation photo the rule doubts most, and a share that refuses it alone."""
    paths, _ = _validation(trained)
    predictions = Predictor.from_run(trained[1]).predict(paths)
    worst = max(predictions, key=lambda p: p.score)
    return Path(worst.file), (len(paths) - 1) / len(paths)


@pytest.mark.slow
def test_cli_predict_answers_not_sure_with_the_reason(
    doubtful: tuple[Path, float], run: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    photo, share = doubtful
    assert main(["predict", str(run), str(photo), "--json", "--coverage", str(share)]) == 0
    refused = json.loads(capsys.readouterr().out)
    assert refused["answered"] is False and refused["calibrated"] is True
    assert "validation photos" in refused["reason"] and refused["label"] in ("cats", "dogs")
    assert main(["predict", str(run), str(photo), "--coverage", str(share)]) == 0
    assert "neither class / not sure: " in capsys.readouterr().out
    assert main(["predict", str(run), str(photo), "--json", "--coverage", "1"]) == 0
    assert json.loads(capsys.readouterr().out)["answered"] is True
    with pytest.raises(SystemExit) as exits:
        main(["predict", str(run), str(photo), "--coverage", "1.5"])
    assert exits.value.code == 2
    assert "must be a share in (0, 1]" in capsys.readouterr().err


def test_evaluate_json_has_the_figures(run: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["evaluate", str(run), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert set(report["per_class"]["cats"]) == {"precision", "recall", "f1", "support"}
    curve = report["curves"]["dogs"]
    assert curve["roc"]["fpr"][0] == 0 and curve["roc"]["tpr"][-1] == 1
    assert 0 <= curve["auc"] <= 1 and set(curve["operating_point"]) >= {"fpr", "tpr", "precision"}
    c = report["calibration"]
    assert c["images"] == 16 and {"ece_before", "ece_after", "reliability_after"} <= set(c)
    assert sum(b["count"] for b in c["reliability_before"]) == 16
    assert {"score", "threshold", "answered", "accuracy_answered"} <= set(report["rejection"])
    assert len(report["images"]) == 16
    assert {"file", "true", "predicted", "answered", "probabilities"} <= set(report["images"][0])
    rows = list(csv.DictReader(io.StringIO(results_csv(report))))
    assert [r["file"] for r in rows] == [i["file"] for i in report["images"]]
    assert set(rows[0]) == {"file", "true", "predicted", "correct", "answered", "score",
                            "p_cats", "p_dogs"}  # fmt: skip


@pytest.mark.slow
def test_predict_page_says_not_sure_and_moves_the_threshold(
    doubtful: tuple[Path, float], home: Path
) -> None:
    photo, share = doubtful
    at = open_page("predict")
    at.file_uploader[0].set_value([(photo.name, photo.read_bytes(), "image/jpeg")]).run()
    assert not at.exception, [e.value for e in at.exception]
    assert at.slider(key="predict_coverage").value == 95
    assert "calibrated (temperature" in texts(at)
    answered = [m.value for m in at.markdown if " — " in m.value]
    at.slider(key="predict_coverage").set_value(int(share * 100)).run()  # 93%: 15 of 16
    assert not at.exception, [e.value for e in at.exception]
    refused = [m.value for m in at.markdown if " — " in m.value]
    name = photo.name.replace(".", "\\.")  # as Markdown shows it
    assert refused == [f"**Neither class / not sure** — {name}"]
    assert refused != answered
    assert any("Not answered: " in c.value for c in at.caption)


def _matrix(at, title: str) -> np.ndarray:
    """The counts of the page's confusion matrix titled ``title``."""
    chart = next(f for f in figures(at) if f["layout"]["title"]["text"] == title)
    return np.asarray(chart["data"][0]["z"])


@pytest.mark.slow
def test_history_page_clicks_through_the_confusion_matrix(home: Path) -> None:
    at = open_page("history")
    next(b for b in at.button if b.label == "Evaluate on the test split").click().run()
    assert not at.exception, [e.value for e in at.exception]
    assert [m.label for m in at.metric] == ["Test accuracy", "Calibration error (ECE)", "Answered"]
    titles = {f["layout"]["title"]["text"] for f in figures(at)}
    assert {"Confusion matrix", "ROC curve", "Precision-recall curve", "Reliability"} <= titles
    matrix = _matrix(at, "Confusion matrix")
    true_cats = int(matrix[0].sum())
    at.selectbox(key="history_cell").set_value("cats → cats").run()
    shown = len(at.image)
    at.selectbox(key="history_cell").set_value("").run()
    assert shown - len(at.image) == min(int(matrix[0, 0]), 12)  # that cell's images
    at.slider(key="history_threshold").set_value(1).run()  # everything is called dogs
    matrix = _matrix(at, "At threshold 1%")
    assert matrix.tolist() == [[0, true_cats], [0, 16 - true_cats]]
    at.selectbox(key="history_cell").set_value("cats → dogs").run()
    assert f"Showing {min(true_cats, 12)} of {true_cats}" in texts(at)
    plain = [tuple(i.value) for i in at.image]
    at.toggle(key="history_cell_heatmaps").set_value(True).run()
    assert not at.exception, [e.value for e in at.exception]
    assert len(at.image) == len(plain) and set(map(tuple, (i.value for i in at.image))) != set(
        plain
    )
    assert any(b.label == "Per-image results (.csv)" for b in at.download_button)


def test_a_run_without_validation_photos_answers_everything_and_says_why(
    trained: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import shutil

    data = tmp_path / "data"
    shutil.copytree(trained[0] / "train", data / "train")  # its validation split is gone
    run = tmp_path / "runs" / trained[1].name
    shutil.copytree(trained[1], run, ignore=shutil.ignore_patterns("trust-*"))
    config = json.loads((run / "config.json").read_text())
    config["train"]["data"] = str(data)
    (run / "config.json").write_text(json.dumps(config))
    predictor = Predictor.from_run(run)
    assert predictor.trust is None
    assert predictor.trust_problem == (
        f"the run's dataset {data} has no validation photos of cats, dogs to learn when to "
        "answer 'not sure' from"
    )
    (prediction,) = predictor.predict([next((data / "train" / "cats").iterdir())])
    assert prediction.answered and not prediction.calibrated and prediction.score is None
    assert prediction.probabilities == prediction.uncalibrated
    assert not list(run.glob("trust-*"))  # nothing half-learned is saved
    assert main(["predict", str(run), prediction.file, "--json"]) == 0
    out = capsys.readouterr()
    assert json.loads(out.out)["calibrated"] is False
    assert "note: every image gets a class, with the model's own probabilities: " in out.err
