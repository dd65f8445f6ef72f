"""Calibration: probabilities that mean what they say, and how far from it they are.

A network trained to low loss is often over-confident: of the photos it calls "96% cat", far
fewer than 96% are cats. *Temperature scaling* (Guo et al., 2017) divides the model's logits by
one number T, fitted on held-out photos to minimise their negative log-likelihood: the classes'
order never changes, only how sure the probabilities are. For a binary model (one sigmoid unit)
the logit is that of its probability; for a softmax model the log-probabilities serve as logits
(softmax(log p / T) is the same as dividing the logits, whatever constant they lost).

The *expected calibration error* (ECE) bins the photos by the probability of the class chosen
(15 equal bins of [0, 1]) and averages |accuracy − confidence| over the bins, weighted by their
counts; a reliability diagram draws those bins. Plain NumPy: no TensorFlow here.
"""

from __future__ import annotations

from typing import Any

import numpy as np

ECE_BINS = 15
# The temperatures searched (log-spaced): from 20× sharper to 20× softer than the model.
T_RANGE = (0.05, 20.0)
_CLIP = 1e-12  # keeps log(0) out of a saturated probability


def _checked(probs: Any, labels: Any | None = None) -> tuple[np.ndarray, np.ndarray | None]:
    probs = np.asarray(probs, dtype=np.float64)
    if probs.ndim != 2 or probs.shape[1] < 2:
        raise ValueError(f"probabilities must be [N, classes ≥ 2], got shape {probs.shape}")
    if labels is None:
        return probs, None
    labels = np.asarray(labels, dtype=np.int64).ravel()
    if len(labels) != len(probs):
        raise ValueError(f"got {len(probs)} rows of probabilities but {len(labels)} labels")
    return probs, labels


def scaled(probs: Any, temperature: float) -> np.ndarray:
    """Probabilities with their logits divided by ``temperature``.

    Args:
        probs: ``[N, C]`` rows summing to 1 (two columns ``[1 - p, p]`` for a binary model).
        temperature: T > 0; 1 leaves them as they are, > 1 makes them less sure.

    Returns:
        ``[N, C]`` float64 rows summing to 1, each row's order of classes unchanged.
    """
    probs, _ = _checked(probs)
    if not temperature > 0:
        raise ValueError(f"temperature must be > 0, got {temperature}")
    logs = np.log(np.clip(probs, _CLIP, 1.0)) / temperature
    logs -= logs.max(axis=1, keepdims=True)
    out = np.exp(logs)
    return out / out.sum(axis=1, keepdims=True)


def nll(probs: Any, labels: Any) -> float:
    """Mean negative log-likelihood of the true classes (natural log)."""
    probs, labels = _checked(probs, labels)
    chosen = probs[np.arange(len(labels)), labels]
    return float(-np.mean(np.log(np.clip(chosen, _CLIP, 1.0)))) if len(labels) else 0.0


def fit_temperature(probs: Any, labels: Any) -> float:
    """The temperature that minimises the negative log-likelihood of ``labels``.

    A log-spaced grid over :data:`T_RANGE`, then a golden-section search around its best point
    (the likelihood is smooth and has one minimum in log T).

    Args:
        probs: ``[N, C]`` held-out probabilities of the model (validation photos).
        labels: their true class indices ``[N]``.

    Returns:
        T in :data:`T_RANGE` (1.0 when there are no photos).
    """
    probs, labels = _checked(probs, labels)
    if not len(labels):
        return 1.0
    logs = np.log(np.clip(probs, _CLIP, 1.0))

    def loss(log_t: float) -> float:
        z = logs / np.exp(log_t)
        z -= z.max(axis=1, keepdims=True)
        log_norm = np.log(np.exp(z).sum(axis=1))
        return float(np.mean(log_norm - z[np.arange(len(labels)), labels]))

    low, high = np.log(T_RANGE[0]), np.log(T_RANGE[1])
    grid = np.linspace(low, high, 61)
    best = int(np.argmin([loss(g) for g in grid]))
    a, b = grid[max(best - 1, 0)], grid[min(best + 1, len(grid) - 1)]
    ratio = (np.sqrt(5) - 1) / 2
    for _ in range(40):  # golden section: the bracket shrinks to 0.618^40 of a grid step
        c, d = b - ratio * (b - a), a + ratio * (b - a)
        if loss(c) < loss(d):
            b = d
        else:
            a = c
    return float(np.exp((a + b) / 2))


def reliability(probs: Any, labels: Any, bins: int = ECE_BINS) -> list[dict[str, float]]:
    """The reliability diagram's bins: photos grouped by the probability of the class chosen.

    Returns:
        One row per non-empty bin: ``lower``, ``upper`` (its edges), ``confidence`` (the mean
        probability of the chosen class), ``accuracy`` (the share right) and ``count``.
    """
    probs, labels = _checked(probs, labels)
    confidence = probs.max(axis=1)
    right = probs.argmax(axis=1) == labels
    edges = np.linspace(0.0, 1.0, bins + 1)
    where = np.clip(np.searchsorted(edges, confidence, side="left") - 1, 0, bins - 1)
    rows = []
    for k in range(bins):
        inside = where == k
        if inside.any():
            rows.append({
                "lower": float(edges[k]), "upper": float(edges[k + 1]),
                "confidence": float(confidence[inside].mean()),
                "accuracy": float(right[inside].mean()), "count": int(inside.sum()),
            })  # fmt: skip
    return rows


def ece(probs: Any, labels: Any, bins: int = ECE_BINS) -> float:
    """Expected calibration error: Σ over bins of (count / N) · |accuracy − confidence|."""
    rows = reliability(probs, labels, bins)
    total = sum(r["count"] for r in rows)
    if not total:
        return 0.0
    return float(sum(r["count"] * abs(r["accuracy"] - r["confidence"]) for r in rows) / total)


def calibration_report(raw: Any, calibrated: Any, labels: Any) -> dict[str, Any]:
    """Before and after scaling on one set of photos: ``images``, ``nll_before``/``after``,
    ``ece_before``/``after`` and the two reliability diagrams' bins."""
    return {
        "images": len(np.asarray(labels)),
        "nll_before": nll(raw, labels),
        "nll_after": nll(calibrated, labels),
        "ece_before": ece(raw, labels),
        "ece_after": ece(calibrated, labels),
        "reliability_before": reliability(raw, labels),
        "reliability_after": reliability(calibrated, labels),
    }
