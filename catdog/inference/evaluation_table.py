"""An evaluation's per-image table seen from the History page: the classes decided at any
threshold, the confusion matrix they give, the photos in one cell, and the table as CSV."""

from __future__ import annotations

from typing import Any

import numpy as np

from catdog.inference.evaluate import confusion_matrix


def results_csv(evaluation: dict[str, Any]) -> str:
    """The per-image results of an evaluation (:meth:`Evaluation.to_dict`) as CSV text: file,
    true and predicted class, right or not, answered or "not sure", the doubt score, and each
    class' (calibrated) probability."""
    import csv
    import io

    classes = evaluation["classes"]
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(["file", "true", "predicted", "correct", "answered", "score",
                     *[f"p_{c}" for c in classes]])  # fmt: skip
    for row in evaluation["images"]:
        score = "" if row["score"] is None else f"{row['score']:.6g}"
        writer.writerow([row["file"], row["true"], row["predicted"],
                         row["true"] == row["predicted"], row["answered"], score,
                         *[f"{row['probabilities'][c]:.6f}" for c in classes]])  # fmt: skip
    return buffer.getvalue()


def decided(evaluation: dict[str, Any], threshold: float | None = None) -> list[str]:
    """The class each image of an evaluation (:meth:`Evaluation.to_dict`) is called: its most
    probable class, or for two classes with a ``threshold``, the second class when its
    (calibrated) probability is at least that."""
    classes = evaluation["classes"]
    if threshold is None or len(classes) != 2:
        return [row["predicted"] for row in evaluation["images"]]
    second = classes[1]
    return [
        second if row["probabilities"][second] >= threshold else classes[0]
        for row in evaluation["images"]
    ]


def confusion_at(evaluation: dict[str, Any], threshold: float | None = None) -> np.ndarray:
    """The confusion matrix of an evaluation when images are called as :func:`decided` says."""
    index = {c: k for k, c in enumerate(evaluation["classes"])}
    true = [index[row["true"]] for row in evaluation["images"]]
    called = [index[c] for c in decided(evaluation, threshold)]
    return confusion_matrix(true, called, len(index))


def images_in_cell(
    evaluation: dict[str, Any], true: str, predicted: str, threshold: float | None = None
) -> list[dict[str, Any]]:
    """The images of one confusion-matrix cell (true class, class called as :func:`decided`
    says), most confident first: each image's row of ``evaluation["images"]``."""
    rows = [
        row
        for row, called in zip(evaluation["images"], decided(evaluation, threshold), strict=True)
        if row["true"] == true and called == predicted
    ]
    return sorted(rows, key=lambda r: (-r["probabilities"][predicted], r["file"]))
