"""Evaluation: metric arithmetic against hand-checked numbers, and a real tiny trained run."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import numpy as np
import pytest
from conftest import make_dataset

from catdog.inference.evaluate import (
    EvaluationError,
    confusion_matrix,
    evaluate_run,
    per_class_metrics,
)
from catdog.train.runs import METRICS_FILE, read_json


def test_confusion_matrix_and_metrics_match_a_hand_checked_case() -> None:
    # 3 classes; class c is never predicted.
    true = [0, 0, 0, 1, 1, 1, 2, 2]
    pred = [0, 0, 1, 1, 1, 0, 1, 0]
    cm = confusion_matrix(true, pred, 3)
    assert cm.tolist() == [[2, 1, 0], [1, 2, 0], [1, 1, 0]]

    metrics = per_class_metrics(cm, ["a", "b", "c"])
    # a: 2 right of 4 predicted a, of 3 true a → P 1/2, R 2/3, F1 2·(1/2)(2/3)/(7/6) = 4/7.
    assert metrics["a"]["precision"] == pytest.approx(0.5)
    assert metrics["a"]["recall"] == pytest.approx(2 / 3)
    assert metrics["a"]["f1"] == pytest.approx(4 / 7)
    assert metrics["a"]["support"] == 3
    assert metrics["b"] == pytest.approx(
        {"precision": 0.5, "recall": 2 / 3, "f1": 4 / 7, "support": 3}
    )
    # Never predicted: precision 0 instead of 0/0, and so F1 0.
    assert metrics["c"] == {"precision": 0.0, "recall": 0.0, "f1": 0.0, "support": 2}


def test_class_without_images_has_zero_recall_not_an_error() -> None:
    cm = confusion_matrix([0, 0, 1], [0, 1, 1], 3)
    metrics = per_class_metrics(cm, ["a", "b", "c"])
    assert metrics["c"] == {"precision": 0.0, "recall": 0.0, "f1": 0.0, "support": 0}
    assert metrics["b"]["precision"] == pytest.approx(0.5)
    assert metrics["b"]["recall"] == pytest.approx(1.0)


def test_confusion_matrix_rejects_bad_input_naming_it() -> None:
    with pytest.raises(ValueError, match=r"label 3 is outside 0\.\.2"):
        confusion_matrix([0, 3], [0, 1], 3)
    with pytest.raises(ValueError, match="2 true labels but 1 predictions"):
        confusion_matrix([0, 1], [0], 3)


def test_evaluate_on_the_runs_own_test_split(trained: tuple[Path, Path]) -> None:
    data, run = trained
    result = evaluate_run(run, batch_size=5)  # a batch size that does not divide 16

    assert result.data == str(data / "test")
    assert result.classes == ["cats", "dogs"]
    assert result.count == 16
    cm = result.confusion_matrix
    assert cm.sum() == 16
    assert cm.sum(axis=1).tolist() == [8, 8]  # rows are the true classes
    assert result.accuracy == pytest.approx(np.trace(cm) / 16)
    # Same images, same model, same preprocessing as training's own test evaluation.
    assert result.accuracy == pytest.approx(read_json(run / METRICS_FILE)["test_accuracy"])
    assert {m["support"] for m in result.per_class.values()} == {8}

    # The misclassified list agrees with the matrix, cell by cell.
    assert len(result.misclassified) == result.count - np.trace(cm)
    for t, true_name in enumerate(result.classes):
        for p, pred_name in enumerate(result.classes):
            if t != p:
                wrong = [
                    m
                    for m in result.misclassified
                    if (m.true, m.predicted) == (true_name, pred_name)
                ]
                assert len(wrong) == cm[t, p]
    probabilities = [m.probability for m in result.misclassified]
    assert probabilities == sorted(probabilities, reverse=True)
    for m in result.misclassified:
        assert Path(m.file).parent.name == m.true
        assert m.probability >= 0.5
        assert m.probability + m.true_probability == pytest.approx(1.0)


def test_misclassified_files_really_get_that_prediction(trained: tuple[Path, Path]) -> None:
    """Guards against paths and predictions drifting apart: re-predict each file alone."""
    from catdog.inference.predict import Predictor

    _, run = trained
    result = evaluate_run(run)
    predictor = Predictor.from_run(run)
    for m in result.misclassified:
        (alone,) = predictor.predict([m.file])
        assert alone.label == m.predicted
        assert alone.probabilities[m.predicted] == pytest.approx(m.probability, abs=1e-5)


def test_to_dict_is_json_with_the_documented_keys(trained: tuple[Path, Path]) -> None:
    _, run = trained
    result = evaluate_run(run)
    data = json.loads(json.dumps(result.to_dict()))
    for key in ("accuracy", "confusion_matrix", "classes", "per_class", "misclassified"):
        assert key in data
    assert data["count"] == 16
    assert data["run_id"] == run.name
    assert data["confusion_matrix"] == result.confusion_matrix.tolist()
    assert set(data["per_class"]["cats"]) == {"precision", "recall", "f1", "support"}
    if data["misclassified"]:
        assert {"file", "true", "predicted", "probability"} <= set(data["misclassified"][0])

    text = result.summary()
    assert f"Accuracy {result.accuracy:.1%}" in text
    assert "cats" in text and "dogs" in text and "precision" in text


def test_evaluate_on_a_folder_without_a_test_split(
    trained: tuple[Path, Path], tmp_path: Path
) -> None:
    data, run = trained
    folder = tmp_path / "photos"
    shutil.copytree(data / "validation", folder)
    (folder / "notes.txt").write_text("not a class folder, not an image")
    (folder / "cats" / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 truncated")

    result = evaluate_run(run, folder)

    assert result.data == str(folder)
    assert result.count == 16  # the broken file is skipped, not counted
    assert [s["file"] for s in result.skipped] == [str(folder / "cats" / "broken.jpg")]
    assert "broken.jpg" in result.skipped[0]["error"]
    assert result.confusion_matrix.sum(axis=1).tolist() == [8, 8]


def test_a_dataset_folder_uses_its_test_split(trained: tuple[Path, Path]) -> None:
    data, run = trained
    assert evaluate_run(run, data).data == str(data / "test")


def test_class_folders_that_do_not_match_the_run_are_named(
    trained: tuple[Path, Path], tmp_path: Path
) -> None:
    _, run = trained
    other = make_dataset(tmp_path / "birds", classes=("birds", "cats"), counts=(0, 0, 2))
    with pytest.raises(EvaluationError, match=r"missing dogs; unexpected birds"):
        evaluate_run(run, other)

    no_test = tmp_path / "no_test"
    (no_test / "train" / "cats").mkdir(parents=True)
    (no_test / "validation" / "cats").mkdir(parents=True)
    with pytest.raises(EvaluationError, match="without a test/ split"):
        evaluate_run(run, no_test)

    with pytest.raises(EvaluationError, match="is not a folder"):
        evaluate_run(run, tmp_path / "nowhere")


def test_odd_folders_are_reported_not_dropped(trained: tuple[Path, Path], tmp_path: Path) -> None:
    _, run = trained
    folder = make_dataset(tmp_path / "cats_only", counts=(0, 0, 3)) / "test"
    shutil.rmtree(folder / "dogs")
    (folder / "dogs").mkdir()  # no dogs at all
    os.mkfifo(folder / "cats" / "pipe.jpg")  # named as a photo, but a pipe
    (folder / "cats" / "zero.jpg").symlink_to("/dev/zero")
    result = evaluate_run(run, folder)
    assert result.count == 3
    assert [s["error"] for s in result.skipped] == [
        f"{folder / 'cats' / 'pipe.jpg'} is a named pipe (FIFO), not a regular file",
        f"{folder / 'cats' / 'zero.jpg'} is a device, not a regular file",
    ]
    assert "No dogs among these 3 images: its recall and F1 of 0 measure nothing" in (
        result.summary()
    )
    (folder / "dogs").rename(folder / "d\u03bfgs")  # a Greek omicron
    with pytest.raises(EvaluationError) as caught:
        evaluate_run(run, folder)
    assert "missing dogs; unexpected d\u03bfgs (\u03bf is U+03BF GREEK SMALL LETTER OMICRON)" in (
        str(caught.value)
    )


def test_multi_class_softmax_run(dataset_factory, catdog_home: Path) -> None:
    """A 3-class run (softmax head), made by hand: an untrained model saved in a run folder."""
    from catdog.data.paths import runs_dir
    from catdog.model.registry import build_model
    from catdog.train.runs import atomic_write_json

    data = dataset_factory(classes=("ants", "bees", "cats"), counts=(0, 0, 3), size=48)
    run = runs_dir() / "hand-made"
    run.mkdir()
    build_model("seed-convnet", image_size=48, num_classes=3).save(run / "best.keras")
    config = {
        "run_id": run.name,
        "classes": ["ants", "bees", "cats"],
        "train": {"data": str(data), "model": "seed-baseline", "image_size": 48},
    }
    atomic_write_json(run / "config.json", config)

    result = evaluate_run("hand")  # an id prefix

    assert result.confusion_matrix.shape == (3, 3)
    assert result.confusion_matrix.sum(axis=1).tolist() == [3, 3, 3]
    assert len(result.misclassified) == 9 - np.trace(result.confusion_matrix)
    assert result.misclassified  # an untrained model gets some wrong
    for m in result.misclassified:
        assert m.probability > m.true_probability  # the predicted class is the arg-max


def test_counting_training_and_evaluation_see_the_same_images(
    trained: tuple[Path, Path], tmp_path: Path
) -> None:
    """A nested folder, a hidden file and a photo not named as an image are left out by the
    Dataset page's counts, the training pipeline and evaluation alike."""
    from catdog.data.datasets import list_images, scan_dataset
    from catdog.train.pipeline import load_split

    _, run = trained
    root = make_dataset(tmp_path / "odd", counts=(1, 1, 3))
    photo = (root / "test" / "cats" / "cat.0.jpg").read_bytes()
    (root / "test" / "cats" / "more").mkdir()
    (root / "test" / "cats" / "more" / "cat.9.jpg").write_bytes(photo)
    (root / "test" / "cats" / ".cat.8.jpg").write_bytes(photo)
    (root / "test" / "cats" / "cat.7.txt").write_bytes(photo)
    (root / "test" / "cats" / "cat.10.JPG").write_bytes(photo)  # counted: the case is no matter

    info = scan_dataset(root)
    assert info.counts["test"] == {"cats": 4, "dogs": 3}
    files = list_images(root, "test")
    assert [p.name for p in files[:4]] == ["cat.0.jpg", "cat.1.jpg", "cat.2.jpg", "cat.10.JPG"]
    loaded = load_split(root, "test", info.classes, image_size=48)
    assert loaded.paths == files and loaded.labels.tolist() == [0] * 4 + [1] * 3
    assert evaluate_run(run, root).count == info.totals["test"] == 7
