"""Answers you can trust: calibrated probabilities and a rule for "neither class / not sure".

A run's :class:`Trust` is learned once, after training, from its own photos:

- a temperature (:mod:`catdog.inference.calibration`) fitted on the validation split, applied
  to every probability catdog shows;
- a *doubt score* for each image — one of :data:`SCORES`: low top probability, low energy
  (Liu et al., 2020), or distance of the model's penultimate features from the training photos
  (Mahalanobis distance to the nearest class mean with one shared covariance, Lee et al., 2018;
  or cosine distance to the k-th nearest training photo, Sun et al., 2022) — and a threshold
  that keeps a stated share (default 95%) of the validation photos answered. The score is the
  one that refuses the most pictures of :func:`catdog.data.ood.ood_images` (seed 0) at that
  threshold: measured per run, because what works depends on the model.

Above the threshold, catdog answers "neither class / not sure" and says why. The trust is saved
in the run folder (``trust-best.json`` and ``.npz``, written whole or not at all) and learned on
first use for runs made before it existed.
"""

from __future__ import annotations

import contextlib
import math
import os
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from catdog.data.paths import is_shared
from catdog.inference.calibration import calibration_report, fit_temperature, scaled
from catdog.policy import current_policy
from catdog.train import runs

SCORES = ("probability", "energy", "mahalanobis", "knn")  # ties go to the first
# What each score measures, in words ("a photo whose ... is above the threshold").
SCORE_NAMES = {
    "probability": "doubt (1 − its highest probability)",
    "energy": "energy (little evidence of any class)",
    "mahalanobis": "distance from the training photos (Mahalanobis, penultimate layer)",
    "knn": "distance from its nearest training photos (cosine, penultimate layer)",
}
DEFAULT_COVERAGE = 0.95  # share of the validation photos the rule answers
MAX_SPLIT_IMAGES = 2000  # photos of a split read to learn from (evenly spread over it)
OOD_IMAGES, OOD_SEED = 64, 0  # generated pictures that choose the score
KNN_K = 10  # the k-th nearest training photo (Sun et al. use 50 of 50,000; fewer photos here)
TRUST_VERSION = 1


class TrustError(ValueError):
    """A run whose trust cannot be learned (no validation photos, say); the message says why."""


@dataclass
class Outputs:
    """What a model says about a batch of images, averaged over its test-time views."""

    probabilities: np.ndarray  # [N, classes], the model's own (not calibrated)
    features: np.ndarray  # [N, D], the input of the dense head (D = 0 without one)
    logits: np.ndarray  # [N, units], the dense head's (units = 0 without one)


class Predictor(Protocol):
    """What trust is learned from: :class:`catdog.inference.predict.Predictor`."""

    classes: list[str]
    image_size: int

    @property
    def views(self) -> dict[str, Any]: ...

    def outputs(self, images: np.ndarray) -> Outputs: ...


@dataclass(frozen=True)
class Rule:
    """When to answer "not sure": a doubt score above ``threshold``.

    Attributes:
        score: which of :data:`SCORES`.
        threshold: images scoring above it are not answered.
        coverage: the share of the validation photos that score at most ``threshold``.
        validation: the validation photos' scores, sorted (to move the threshold by coverage).
    """

    score: str
    threshold: float
    coverage: float
    validation: np.ndarray = field(repr=False, compare=False)

    def with_coverage(self, coverage: float) -> Rule:
        """The same score with the threshold that answers ``coverage`` of the validation
        photos (0 < coverage ≤ 1)."""
        return replace(self, threshold=threshold_for(self.validation, coverage), coverage=coverage)


def threshold_for(scores: np.ndarray, coverage: float) -> float:
    """The smallest threshold that answers at least ``coverage`` of ``scores``.

    Raises:
        ValueError: ``coverage`` is outside (0, 1] or there are no scores.
    """
    if not 0.0 < coverage <= 1.0:
        raise ValueError(f"the share of photos to answer must be in (0, 1], got {coverage}")
    ordered = np.sort(np.asarray(scores, dtype=np.float64))
    if not len(ordered):
        raise ValueError("no validation scores to set a threshold from")
    return float(ordered[max(math.ceil(coverage * len(ordered)) - 1, 0)])


@dataclass
class Verdict:
    """A rule applied to a batch: calibrated probabilities, scores, answered or not, and why."""

    probabilities: np.ndarray  # [N, C]
    scores: np.ndarray  # [N]
    answered: np.ndarray  # [N] bool
    reasons: list[str | None]


@dataclass
class Trust:
    """A run's calibration and "not sure" rule; see the module's docstring.

    Attributes:
        classes: the run's classes.
        temperature: the logits are divided by it (> 1: the model was over-confident).
        rule: the default :class:`Rule`.
        validation: calibration before and after on the validation split
            (:func:`catdog.inference.calibration.calibration_report`).
        compared: per score, ``{"threshold", "ood_rejected"}`` on the generated pictures.
        arrays: what the distance scores need (``means``, ``precision``, ``bank``).
        source: the model file and views it was learned for (a changed model relearns).
    """

    classes: list[str]
    temperature: float
    rule: Rule
    validation: dict[str, Any]
    compared: dict[str, dict[str, float]]
    arrays: dict[str, np.ndarray] = field(repr=False)
    source: dict[str, Any] = field(default_factory=dict)

    def calibrate(self, probabilities: np.ndarray) -> np.ndarray:
        """The model's probabilities ``[N, C]``, temperature-scaled."""
        return scaled(probabilities, self.temperature)

    def scores(self, out: Outputs, kind: str | None = None) -> np.ndarray:
        """The doubt score of each image of ``out`` (higher: less like the training photos)."""
        return doubt(kind or self.rule.score, out, self.temperature, self.arrays)

    def judge(self, out: Outputs, rule: Rule | None = None) -> Verdict:
        """Calibrate ``out`` and apply ``rule`` (default the run's) to every image."""
        rule = rule or self.rule
        probs = self.calibrate(out.probabilities)
        scores = self.scores(out, rule.score)
        answered = scores <= rule.threshold
        reasons = [None if ok else self.reason(rule, s, p) for ok, s, p in
                   zip(answered, scores, probs, strict=True)]  # fmt: skip
        return Verdict(probs, scores, answered, reasons)

    def reason(self, rule: Rule, score: float, probs: np.ndarray) -> str:
        """Why an image with this score was not answered, in one sentence."""
        share = f"{rule.coverage:.0%} of the validation photos"
        if rule.score == "probability":
            return (f"the model is not sure: its highest probability, {probs.max():.0%}, is "
                    f"below the {1 - rule.threshold:.0%} that {share} reach")  # fmt: skip
        if rule.score == "energy":
            return (f"the model sees little evidence of any class (energy {score:.3g}, above "
                    f"the {rule.threshold:.3g} that {share} stay under)")  # fmt: skip
        return (f"it looks unlike the {' and '.join(self.classes)} photos the model learned "
                f"from (distance {score:.3g}, above the {rule.threshold:.3g} that {share} "
                "stay within)")  # fmt: skip

    def to_json(self) -> dict[str, Any]:
        """JSON-ready data (all but the arrays, which go to the ``.npz`` beside it)."""
        return {
            "version": TRUST_VERSION, "classes": self.classes, "temperature": self.temperature,
            "rule": {"score": self.rule.score, "threshold": self.rule.threshold,
                     "coverage": self.rule.coverage},
            "validation_scores": self.rule.validation.tolist(),
            "validation": self.validation, "compared": self.compared, "source": self.source,
        }  # fmt: skip

    @classmethod
    def from_json(cls, data: dict[str, Any], arrays: dict[str, np.ndarray]) -> Trust:
        """The trust :meth:`to_json` wrote, with its arrays."""
        r = data["rule"]
        rule = Rule(str(r["score"]), float(r["threshold"]), float(r["coverage"]),
                    np.asarray(data["validation_scores"], dtype=np.float64))  # fmt: skip
        return cls(list(data["classes"]), float(data["temperature"]), rule, data["validation"],
                   data["compared"], arrays, data.get("source", {}))  # fmt: skip


# ---------------------------------------------------------------- doubt scores


def doubt(kind: str, out: Outputs, temperature: float, arrays: dict[str, np.ndarray]) -> np.ndarray:
    """One doubt score per image of ``out``; higher means less like the training photos.

    ``probability``: 1 − the highest calibrated probability. ``energy``: −log Σ exp(logits)
    (for one sigmoid unit, the logits ±z/2). ``mahalanobis``: squared distance of the features
    to the nearest class mean. ``knn``: 1 − cosine similarity to the k-th nearest training photo.
    """
    if kind == "probability":
        return 1.0 - scaled(out.probabilities, temperature).max(axis=1)
    if kind == "energy":
        z = out.logits
        if z.shape[1] == 1:
            z = np.concatenate([z / 2, -z / 2], axis=1)
        top = z.max(axis=1, keepdims=True)
        return -(top[:, 0] + np.log(np.exp(z - top).sum(axis=1)))
    if kind == "mahalanobis":
        means, precision = arrays["means"], arrays["precision"]
        gaps = out.features[:, None, :] - means[None, :, :]  # [N, C, D]
        return ((gaps @ precision.astype(np.float64)) * gaps).sum(axis=2).min(axis=1)
    if kind == "knn":
        bank = arrays["bank"].astype(np.float64)
        similarity = _unit(out.features) @ bank.T
        k = min(KNN_K, bank.shape[0])
        return 1.0 - np.sort(similarity, axis=1)[:, -k]
    raise ValueError(f"unknown doubt score {kind!r}; choose one of {', '.join(SCORES)}")


def _unit(features: np.ndarray) -> np.ndarray:
    return features / np.maximum(np.linalg.norm(features, axis=1, keepdims=True), 1e-12)


def feature_statistics(features: np.ndarray, labels: np.ndarray, classes: int) -> dict[str, Any]:
    """What the distance scores need from the training photos' features: the class ``means``,
    the ``precision`` (inverse) of their shared covariance, shrunk towards a multiple of the
    identity by D / (N + D) so that few photos still give a usable inverse, and the ``bank`` of
    unit-length features (float16) for the k-nearest-neighbour distance."""
    n, dims = features.shape
    means = np.stack([
        features[labels == c].mean(axis=0) if (labels == c).any() else features.mean(axis=0)
        for c in range(classes)
    ])  # fmt: skip
    centred = features - means[labels]
    covariance = centred.T @ centred / max(n, 1)
    shrink = dims / (n + dims)
    scale = max(float(np.trace(covariance)) / dims, 1e-12)
    covariance = (1 - shrink) * covariance + shrink * scale * np.eye(dims)
    return {
        "means": means.astype(np.float64),
        "precision": np.linalg.inv(covariance).astype(np.float32),
        "bank": _unit(features).astype(np.float16),
    }


# ---------------------------------------------------------------- learning a run's trust


def fit_trust(predictor: Predictor, data: str | Path, coverage: float = DEFAULT_COVERAGE) -> Trust:
    """Learn a model's trust from a dataset's ``train`` and ``validation`` splits.

    Args:
        predictor: the run's model (its test-time views are the ones learned for).
        data: the dataset folder the run trained on.
        coverage: the share of the validation photos the rule answers.

    Raises:
        TrustError: the dataset has no readable validation photos of every class, or no
            training photos.
    """
    from catdog.data.model_input import to_model_input
    from catdog.data.ood import ood_images

    val, val_labels = _split_outputs(predictor, Path(data), "validation")
    train, train_labels = _split_outputs(predictor, Path(data), "train")
    temperature = fit_temperature(val.probabilities, val_labels)
    calibrated = scaled(val.probabilities, temperature)
    arrays: dict[str, np.ndarray] = {}
    kinds = ["probability"]
    if val.logits.shape[1]:
        kinds.append("energy")
    if val.features.shape[1]:
        arrays = feature_statistics(train.features, train_labels, len(predictor.classes))
        kinds += ["mahalanobis", "knn"]
    pictures = ood_images(OOD_IMAGES, predictor.image_size, OOD_SEED)
    ood = predictor.outputs(
        np.stack([to_model_input(p, predictor.image_size) for _, p in pictures])
    )
    compared: dict[str, dict[str, float]] = {}
    for kind in kinds:
        threshold = threshold_for(doubt(kind, val, temperature, arrays), coverage)
        rejected = float(np.mean(doubt(kind, ood, temperature, arrays) > threshold))
        compared[kind] = {"threshold": threshold, "ood_rejected": rejected}
    best = max(kinds, key=lambda k: (compared[k]["ood_rejected"], -kinds.index(k)))
    scores = np.sort(doubt(best, val, temperature, arrays))
    return Trust(
        classes=list(predictor.classes),
        temperature=temperature,
        rule=Rule(best, compared[best]["threshold"], coverage, scores),
        validation=calibration_report(val.probabilities, calibrated, val_labels),
        compared=compared,
        arrays=arrays,
        source={"views": predictor.views, "ood_images": OOD_IMAGES},
    )


def _split_outputs(predictor: Predictor, data: Path, split: str) -> tuple[Outputs, np.ndarray]:
    """The model's outputs on (at most :data:`MAX_SPLIT_IMAGES`, evenly spread) readable
    images of one split, and their labels."""
    from catdog.data.datasets import labelled_images
    from catdog.data.model_input import load_or_reason

    folder = data / split
    missing = [c for c in predictor.classes if not (folder / c).is_dir()]
    if missing:
        raise TrustError(
            f"the run's dataset {data} has no {split} photos of {', '.join(missing)} to learn "
            "when to answer 'not sure' from"
        )
    paths, labels = labelled_images(folder, predictor.classes)
    step = max(1, math.ceil(len(paths) / MAX_SPLIT_IMAGES))
    paths, labels = paths[::step], labels[::step]
    parts, kept = [], []
    for start in range(0, len(paths), 64):
        images = [(load_or_reason(p, predictor.image_size), y)
                  for p, y in zip(paths[start : start + 64], labels[start : start + 64],
                                  strict=True)]  # fmt: skip
        good = [(image, y) for image, y in images if not isinstance(image, str)]
        if good:
            parts.append(predictor.outputs(np.stack([image for image, _ in good])))
            kept += [y for _, y in good]
    if len(set(kept)) < len(predictor.classes):
        raise TrustError(
            f"the run's dataset {data} has no readable {split} photos of every class to learn "
            "when to answer 'not sure' from"
        )
    joined = Outputs(*(np.concatenate([getattr(o, f) for o in parts]) for f in
                       ("probabilities", "features", "logits")))  # fmt: skip
    return joined, np.asarray(kept, dtype=np.int64)


# ---------------------------------------------------------------- saved with the run


def trust_files(run_path: Path, which: str = "best") -> tuple[Path, Path]:
    """Where a run keeps the trust of its ``which`` model: ``(json, npz)``."""
    stem = f"trust-{which}"
    return run_path / f"{stem}.json", run_path / f"{stem}.npz"


def _model_stamp(run_path: Path, which: str) -> dict[str, Any]:
    """The model file the trust belongs to, as it is now (a retrained model differs)."""
    found = runs.model_file(run_path, which)
    if found is None:
        raise TrustError(f"run {run_path.name} has no saved model yet")
    stat = found.stat()
    return {"model": found.name, "mtime_ns": stat.st_mtime_ns, "bytes": stat.st_size}


def load_trust(run_path: Path, which: str = "best") -> Trust | None:
    """The trust saved for the run's current ``which`` model, or ``None`` if there is none
    (or it was learned for an older model file, or cannot be read)."""
    json_path, npz_path = trust_files(run_path, which)
    data = runs.read_json(json_path)
    try:
        if not isinstance(data, dict) or data.get("version") != TRUST_VERSION:
            return None
        if data.get("source", {}).get("model_file") != _model_stamp(run_path, which):
            return None
        with np.load(npz_path, allow_pickle=False) as saved:
            arrays = {key: saved[key] for key in saved.files}
        return Trust.from_json(data, arrays)
    except (OSError, ValueError, KeyError, TypeError):
        return None


def save_trust(run_path: Path, which: str, trust: Trust) -> None:
    """Save ``trust`` for the run's ``which`` model: the arrays first, then the JSON that
    names the model, each written whole (a reader never sees half of one)."""
    json_path, npz_path = trust_files(run_path, which)
    temporary = npz_path.with_name(f".{npz_path.stem}.{os.getpid()}.tmp.npz")
    try:
        np.savez(temporary, **trust.arrays)
        with open(temporary, "rb+") as handle:
            os.fsync(handle.fileno())
        os.replace(temporary, npz_path)
    finally:
        temporary.unlink(missing_ok=True)
    runs.atomic_write_json(json_path, trust.to_json())


def run_trust(run: str | Path, which: str, predictor: Predictor) -> Trust:
    """A run's trust for its ``which`` model, loaded in ``predictor``: the saved one, else
    learned now from its dataset and saved (when the predictor's test-time views are the
    run's own; other views are learned and kept in memory).

    Raises:
        TrustError: it cannot be learned (see :func:`fit_trust`).
        catdog.train.runs.RunError: no such run, or no model.
    """
    path = runs.resolve_run(run)
    stamp = _model_stamp(path, which)
    saved = load_trust(path, which)
    if saved is not None and saved.source.get("views") == predictor.views:
        return saved
    data = runs.usable_run_info(path).config.get("train", {}).get("data")
    if not data:
        raise TrustError("the run's config.json does not say which data it was trained on")
    trust = fit_trust(predictor, data)
    trust.source["model_file"] = stamp
    # Kept beside the run when its views are the run's own and the caller may write there: a
    # shared example or a read-only link keeps it in memory (no file of theirs is touched).
    policy = current_policy()
    if predictor.views == _run_views(path) and not (policy.read_only or is_shared(path)):
        with contextlib.suppress(OSError):  # a read-only run folder: learned again next time
            save_trust(path, which, trust)
    return trust


def _run_views(path: Path) -> dict[str, Any]:
    """The test-time views the run predicts with (as :attr:`Predictor.views` says them)."""
    train = runs.usable_run_info(path).config.get("train", {})
    tta = bool(train.get("tta"))
    return {"tta": tta, "tta_zoom": float(train.get("tta_zoom") or 0.0) if tta else 0.0}


def export_files(model: Path) -> tuple[Path, Path]:
    """The files that carry a trust beside an exported model: ``(NAME.trust.json,
    NAME.trust.npz)`` for ``NAME.keras``, ``NAME.tflite`` or a SavedModel folder ``NAME``."""
    stem = model.name if model.is_dir() or not model.suffix else model.stem
    return model.parent / f"{stem}.trust.json", model.parent / f"{stem}.trust.npz"


def write_export(trust: Trust, model: Path, head: str) -> Path:
    """Write ``trust`` beside an exported ``model`` (:func:`export_files`), for code that runs
    the model without catdog; returns the JSON file.

    The JSON says how to use it: the temperature, the rule and, since an exported model gives
    probabilities only, the threshold of the ``probability`` score at the same coverage. A
    distance rule's statistics go to the ``.npz`` (``means`` and ``precision``, or ``bank``);
    its features are the input of layer ``head``.
    """
    json_path, npz_path = export_files(model)
    data = {
        "classes": trust.classes,
        "temperature": trust.temperature,
        "calibrate": "p = softmax(log(probabilities) / temperature); for one sigmoid output "
        "p, the calibrated p is sigmoid(logit(p) / temperature)",
        "rule": {"score": trust.rule.score, "threshold": trust.rule.threshold,
                 "coverage": trust.rule.coverage, "means": SCORE_NAMES[trust.rule.score]},
        "probability_rule": {"threshold": 1 - trust.compared["probability"]["threshold"],
                             "means": "answer 'not sure' when the highest calibrated "
                             "probability is below this"},
        "not_sure": "answer 'neither class / not sure' when the score is above the threshold",
        "features": f"the input of layer {head!r} (the distance scores)",
        "views": trust.source.get("views"),
    }  # fmt: skip
    if trust.rule.score in ("mahalanobis", "knn"):
        np.savez(npz_path, **trust.arrays)
    runs.atomic_write_json(json_path, data)
    return json_path
