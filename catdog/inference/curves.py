"""ROC and precision-recall curves, and the confusion matrix at any decision threshold.

For one class against the rest: each threshold on that class' probability makes a decision,
with a true-positive rate (recall), a false-positive rate and a precision. Sweeping it over
every probability seen gives the receiver operating characteristic (ROC) and precision-recall
curves; their areas (AUC; average precision, as scikit-learn computes it) sum them up, and
the *operating point* is where catdog's own decision sits (the most probable class: 0.5 for
two classes). Plain NumPy.
"""

from __future__ import annotations

from typing import Any

import numpy as np


def one_vs_rest(scores: Any, positive: Any) -> dict[str, Any]:
    """ROC and precision-recall curves of ``scores`` (higher: more likely positive).

    Args:
        scores: one probability per image ``[N]``.
        positive: whether each image is of the class ``[N]`` (bool).

    Returns:
        ``{"roc": {"fpr", "tpr", "threshold"}, "pr": {"precision", "recall", "threshold"},
        "auc", "average_precision"}``, lists from the strictest threshold to the loosest
        (the ROC curve starts at (0, 0); AUC and average precision are ``None`` when there are
        no positives or no negatives).
    """
    scores = np.asarray(scores, dtype=np.float64).ravel()
    positive = np.asarray(positive, dtype=bool).ravel()
    order = np.argsort(-scores, kind="stable")
    scores, positive = scores[order], positive[order]
    last = np.r_[np.flatnonzero(np.diff(scores)), len(scores) - 1] if len(scores) else []
    tp = np.cumsum(positive)[last].astype(np.float64)
    fp = (np.asarray(last) + 1 - tp).astype(np.float64)
    pos, neg = float(positive.sum()), float((~positive).sum())
    tpr = tp / pos if pos else np.zeros_like(tp)
    fpr = fp / neg if neg else np.zeros_like(fp)
    precision = tp / np.maximum(tp + fp, 1.0)
    thresholds = scores[last] if len(scores) else np.zeros(0)
    auc = float(np.trapezoid(np.r_[0.0, tpr], np.r_[0.0, fpr])) if pos and neg else None
    ap = float(np.sum(np.diff(np.r_[0.0, tpr]) * precision)) if pos and neg else None
    return {
        "roc": {"fpr": [0.0, *fpr.tolist()], "tpr": [0.0, *tpr.tolist()],
                "threshold": [None, *thresholds.tolist()]},
        "pr": {"precision": precision.tolist(), "recall": tpr.tolist(),
               "threshold": thresholds.tolist()},
        "auc": auc, "average_precision": ap,
    }  # fmt: skip


def operating_point(scores: Any, positive: Any, chosen: Any) -> dict[str, float]:
    """Where a decision sits on the curves: its ``fpr``, ``tpr`` (= ``recall``) and
    ``precision``, for ``chosen`` (whether each image was called positive)."""
    positive = np.asarray(positive, dtype=bool).ravel()
    chosen = np.asarray(chosen, dtype=bool).ravel()
    tp, fp = float((chosen & positive).sum()), float((chosen & ~positive).sum())
    pos, neg = float(positive.sum()), float((~positive).sum())
    return {
        "fpr": fp / neg if neg else 0.0,
        "tpr": tp / pos if pos else 0.0,
        "recall": tp / pos if pos else 0.0,
        "precision": tp / (tp + fp) if tp + fp else 0.0,
    }


def class_curves(probabilities: Any, true: Any, classes: list[str]) -> dict[str, Any]:
    """Each class' curves against the rest (for two classes, the second class' alone: the
    first's are its mirror image), with the operating point of the most probable class."""
    probs = np.asarray(probabilities, dtype=np.float64)
    true = np.asarray(true, dtype=np.int64)
    chosen = probs.argmax(axis=1) if len(probs) else np.zeros(0, np.int64)
    which = [1] if len(classes) == 2 else range(len(classes))
    out = {}
    for k in which:
        curve = one_vs_rest(probs[:, k], true == k)
        curve["operating_point"] = operating_point(probs[:, k], true == k, chosen == k)
        out[classes[k]] = curve
    return out


def binary_confusion(p_second: Any, true: Any, threshold: float) -> np.ndarray:
    """The 2 × 2 confusion matrix (rows true, columns predicted) when an image is called the
    second class if its probability of it is at least ``threshold``."""
    called = (np.asarray(p_second, dtype=np.float64) >= threshold).astype(np.int64)
    true = np.asarray(true, dtype=np.int64)
    return np.bincount(true * 2 + called, minlength=4).reshape(2, 2)
