"""Evaluation: how a trained run does on a labelled folder of images, and where it goes wrong.

:func:`evaluate_run` lists the folder's images once, in a fixed order, and classifies them with
the run's :class:`~catdog.inference.predict.Predictor` (the training preprocessing). Accuracy, the
confusion matrix, per-class precision/recall/F1 and the list of misclassified files are all
computed from that one ordered list, so a file can never be paired with another file's
prediction. The metric functions are plain NumPy and import no TensorFlow.
"""

from __future__ import annotations

import unicodedata
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from catdog.data.datasets import labelled_images, visible_folders
from catdog.data.names import case_twins, class_key, look_alike_letters, shown
from catdog.data.paths import in_dataset_roots
from catdog.inference.calibration import calibration_report
from catdog.inference.curves import class_curves
from catdog.policy import current_policy
from catdog.progress import ProgressFn
from catdog.train.runs import resolve_run, usable_run_info

if TYPE_CHECKING:
    from catdog.inference.predict import Prediction, Predictor

# Misclassified files listed by Evaluation.summary() (to_dict() keeps them all).
SUMMARY_MISTAKES = 10


class EvaluationError(ValueError):
    """A folder that cannot be evaluated with a run; the message says why and what to do."""


def confusion_matrix(true: Any, pred: Any, num_classes: int) -> np.ndarray:
    """Count (true class, predicted class) pairs.

    Args:
        true: true class indices, shape ``[N]``.
        pred: predicted class indices, shape ``[N]``.
        num_classes: number of classes ``C``.

    Returns:
        An ``int64`` array ``[C, C]``: row = true class, column = predicted class.

    Raises:
        ValueError: the two lists differ in length or hold an index outside ``0..C-1``.
    """
    true = np.asarray(true, dtype=np.int64).ravel()
    pred = np.asarray(pred, dtype=np.int64).ravel()
    if true.shape != pred.shape:
        raise ValueError(f"got {len(true)} true labels but {len(pred)} predictions")
    for name, values in (("true", true), ("predicted", pred)):
        bad = values[(values < 0) | (values >= num_classes)]
        if bad.size:
            raise ValueError(
                f"{name} label {int(bad[0])} is outside 0..{num_classes - 1} "
                f"for {num_classes} classes"
            )
    counts = np.bincount(true * num_classes + pred, minlength=num_classes * num_classes)
    return counts.reshape(num_classes, num_classes)


def per_class_metrics(cm: np.ndarray, classes: list[str]) -> dict[str, dict[str, float]]:
    """Precision, recall, F1 and support of every class, from a confusion matrix.

    A class that is never predicted has precision 0, one with no images has recall 0, and F1
    is 0 when precision and recall are both 0 (no division by zero).

    Args:
        cm: confusion matrix ``[C, C]``, rows = true class, columns = predicted class.
        classes: the ``C`` class names, in the matrix's order.

    Returns:
        ``{class: {"precision", "recall", "f1", "support"}}``; support (the number of images
        of that class) is an ``int``.
    """
    cm = np.asarray(cm)
    if cm.shape != (len(classes), len(classes)):
        raise ValueError(
            f"confusion matrix of shape {cm.shape} does not fit {len(classes)} classes"
        )
    metrics: dict[str, dict[str, float]] = {}
    for k, name in enumerate(classes):
        hits = float(cm[k, k])
        predicted = float(cm[:, k].sum())
        support = int(cm[k, :].sum())
        precision = hits / predicted if predicted else 0.0
        recall = hits / support if support else 0.0
        both = precision + recall
        f1 = 2 * precision * recall / both if both else 0.0
        metrics[name] = {"precision": precision, "recall": recall, "f1": f1, "support": support}
    return metrics


@dataclass
class Misclassified:
    """One image the model got wrong."""

    file: str  # path of the image
    true: str  # its class folder
    predicted: str  # the class the model chose
    probability: float  # the model's probability for the predicted class
    true_probability: float  # the model's probability for the true class


@dataclass
class Evaluation:
    """A run's results on one labelled folder; see :func:`evaluate_run`."""

    run_id: str
    which: str  # "best" or "last" model
    data: str  # the folder of class folders that was evaluated
    classes: list[str]
    count: int  # images evaluated
    accuracy: float
    confusion_matrix: np.ndarray  # [C, C] rows = true class, columns = predicted class
    per_class: dict[str, dict[str, float]]
    misclassified: list[Misclassified]  # most confidently wrong first
    skipped: list[dict[str, str]] = field(default_factory=list)  # unreadable: {file, error}
    # Every image read: {file, true, predicted, probabilities, answered, score}, in file order.
    images: list[dict[str, Any]] = field(default_factory=list)
    curves: dict[str, Any] = field(default_factory=dict)  # curves.class_curves
    calibration: dict[str, Any] = field(default_factory=dict)  # before/after, with temperature
    rejection: dict[str, Any] = field(default_factory=dict)  # the "not sure" rule on these

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready data (the confusion matrix as a list of lists)."""
        return {
            "run_id": self.run_id,
            "which": self.which,
            "data": self.data,
            "classes": list(self.classes),
            "count": self.count,
            "accuracy": self.accuracy,
            "confusion_matrix": self.confusion_matrix.tolist(),
            "per_class": self.per_class,
            "misclassified": [asdict(m) for m in self.misclassified],
            "skipped": list(self.skipped),
            "calibration": self.calibration,
            "rejection": self.rejection,
            "curves": self.curves,
            "images": self.images,
        }

    def summary(self) -> str:
        """A plain-text report: accuracy, per-class table, confusion matrix, worst mistakes."""
        correct = int(np.trace(self.confusion_matrix))
        lines = [
            f"Run {self.run_id} ({self.which} model) on {shown(self.data)}",
            f"Accuracy {self.accuracy:.1%} ({correct}/{self.count} images)",
            "",
        ]
        for name in self.classes:
            if not self.per_class[name]["support"]:
                lines.insert(
                    -1,
                    f"No {name} among these {self.count} images: its recall and F1 of 0 "
                    "measure nothing; evaluate on a folder that has some",
                )
        width = max(len("class"), *(len(c) for c in self.classes))
        lines.append(f"{'class':<{width}}  precision  recall     f1  support")
        for name in self.classes:
            m = self.per_class[name]
            lines.append(
                f"{name:<{width}}  {m['precision']:9.3f}  {m['recall']:6.3f}  {m['f1']:5.3f}"
                f"  {int(m['support']):7d}"
            )
        lines += ["", "Confusion matrix (rows = true class, columns = predicted):"]
        cell = max(width, *(len(str(v)) for v in self.confusion_matrix.ravel()), 5)
        lines.append(" " * width + "".join(f"  {c:>{cell}}" for c in self.classes))
        for name, row in zip(self.classes, self.confusion_matrix, strict=True):
            lines.append(f"{name:<{width}}" + "".join(f"  {int(v):>{cell}}" for v in row))
        if self.misclassified:
            worst = self.misclassified[:SUMMARY_MISTAKES]
            lines += ["", f"Most confidently wrong ({len(worst)} of {len(self.misclassified)}):"]
            for m in worst:
                lines.append(
                    f"  {shown(_relative(m.file, self.data))}: {m.true} taken for {m.predicted} "
                    f"(p={m.probability:.3f})"
                )
        lines += self._trust_lines()
        if self.skipped:
            lines += ["", f"Skipped {len(self.skipped)} unreadable file(s):"]
            lines += [f"  {s['error']}" for s in self.skipped[:SUMMARY_MISTAKES]]
        return "\n".join(lines)

    def _trust_lines(self) -> list[str]:
        """Calibration and the "not sure" rule, as summary lines (none without trust)."""
        c, r = self.calibration, self.rejection
        if not c:
            return []
        lines = [
            "",
            f"Calibration (temperature {c['temperature']:.3g}): expected calibration error "
            f"{c['ece_before']:.1%} before, {c['ece_after']:.1%} after",
        ]
        if r:
            lines.append(
                f"Not sure ({r['score']} rule): {r['answered']:.1%} of these images answered, "
                f"{r['accuracy_answered']:.1%} of those right"
            )
        return lines


def _relative(file: str, folder: str) -> str:
    try:
        return str(Path(file).relative_to(folder))
    except ValueError:
        return file


def resolve_eval_folder(run_config: dict[str, Any], data: str | Path | None) -> Path:
    """The folder of class folders to evaluate on (see :func:`evaluate_run`).

    Raises:
        EvaluationError: the folder, or the run's test split, does not exist.
    """
    if data is None:
        trained_on = run_config.get("train", {}).get("data")
        if not trained_on:
            raise EvaluationError("the run's config.json does not say which data it was trained on")
        folder = Path(trained_on) / "test"
        if not folder.is_dir():
            raise EvaluationError(
                f"the run's dataset {trained_on} has no test/ folder; "
                "pass another folder of class folders to evaluate on"
            )
        return folder
    root = Path(data).expanduser()
    if not in_dataset_roots(root):  # before saying what exists
        current_policy().refuse_server_files(f"evaluating on {root}")
    if not root.is_dir():
        raise EvaluationError(f"{root} is not a folder; pass a folder of class folders")
    return root / "test" if (root / "test").is_dir() else root


def _named_class(name: str) -> str:
    """A class folder's name, with the letters that only look Latin pointed out."""
    letters = look_alike_letters(name)
    return shown(name) + (f" ({'; '.join(letters)})" if letters else "")


def _check_classes(folder: Path, classes: list[str]) -> list[str]:
    """The folder names of ``folder``'s class folders, one per run class in its order: names
    are compared in composed form (NFC), so a folder written in decomposed form is its class.

    Raises:
        EvaluationError: two folders differ only in case, or the folders are not the classes.
    """
    found = [p.name for p in visible_folders(folder)]
    if twins := case_twins(found):
        pairs = "; ".join(f"{shown(a)}/ and {shown(b)}/" for a, b in twins)
        raise EvaluationError(
            f"{shown(str(folder))} has class folders whose names differ only in case ({pairs}): "
            "one class or two? Merge them into one folder, or rename one"
        )
    by_nfc = {unicodedata.normalize("NFC", name): name for name in found}
    wanted = [unicodedata.normalize("NFC", c) for c in classes]
    if sorted(by_nfc) == sorted(wanted):
        return [by_nfc[c] for c in wanted]
    missing = [_named_class(c) for c in wanted if c not in by_nfc]
    extra = [_named_class(c) for c in sorted(by_nfc) if c not in wanted]
    parts = []
    if missing:
        parts.append(f"missing {', '.join(missing)}")
    if extra:
        parts.append(f"unexpected {', '.join(extra)}")
    hint = ""
    if {"train", "validation"} & set(by_nfc):
        hint = " (it looks like a dataset without a test/ split)"
    elif {class_key(c) for c in wanted} == {class_key(c) for c in by_nfc}:
        hint = " (the names differ only in case: rename the folders as the run names them)"
    raise EvaluationError(
        f"the class folders of {shown(str(folder))} ({', '.join(map(shown, found)) or 'none'}) "
        f"do not match the run's classes ({', '.join(map(shown, classes))}): {'; '.join(parts)}"
        f"{hint}. Give a folder with one sub-folder per class, named as in training"
    )


def evaluate_run(
    run: str | Path,
    data: str | Path | None = None,
    *,
    which: str = "best",
    batch_size: int = 32,
    progress: ProgressFn | None = None,
    tta: bool | None = None,
    tta_zoom: float | None = None,
    trust: bool = True,
) -> Evaluation:
    """Evaluate a run's model on its own test split or on any folder of class folders.

    Args:
        run: run id, unique id prefix, or run folder.
        data: ``None`` for the run's own ``<data>/test``; else a folder that either has a
            ``test/`` split (used) or is itself a folder of class folders. Its class folder
            names must be exactly the run's classes.
        which: ``"best"`` or ``"last"`` model of the run.
        batch_size: images decoded and classified per model call.
        progress: called as ``progress(done, total, message)`` while images are classified.
        tta, tta_zoom: test-time views (see :class:`~catdog.inference.predict.Predictor`); ``None``
            takes the run's own setting.
        trust: calibrate the probabilities and apply the run's "not sure" rule (learned the
            first time, :func:`catdog.inference.trust.run_trust`); ``calibration`` and
            ``rejection`` say how they do on these images. The accuracy, the confusion matrix
            and the mistakes count every image, answered or not.

    Returns:
        An :class:`Evaluation`. Unreadable files are left out of the numbers and listed in
        ``skipped``.

    Raises:
        EvaluationError: no such folder, class folders that do not match, or no images.
        catdog.train.runs.RunError: the run does not exist, is damaged or has no saved model.
    """
    from catdog.inference.predict import Predictor

    path = resolve_run(run)
    info = usable_run_info(path)
    shown = current_policy().shown  # hosted mode: messages name no server folder
    try:
        folder = resolve_eval_folder(info.config, data)
        paths, labels = _images_to_evaluate(folder, info.classes)
    except EvaluationError as exc:
        raise EvaluationError(shown(str(exc))) from None
    predictor = Predictor.from_run(path, which=which, tta=tta, tta_zoom=tta_zoom, trust=trust)
    predictions = predictor.predict_files(paths, batch_size=batch_size, progress=progress)
    true, pred, mistakes, skipped = _sort_predictions(paths, labels, predictions, info.classes)
    if not true:
        raise EvaluationError(
            f"none of the {len(paths)} files in {shown(folder)} could be read as images"
        )
    cm = confusion_matrix(true, pred, len(info.classes))
    read = [p for p in predictions if p.ok]
    images = [_image_row(str(f), info.classes[y], p) for f, y, p in
              zip(paths, labels, predictions, strict=True) if p.ok]  # fmt: skip
    probs = np.array([list(p.probabilities.values()) for p in read])
    return Evaluation(
        run_id=info.id,
        which=which,
        data=shown(folder),
        classes=list(info.classes),
        count=len(true),
        accuracy=float(np.trace(cm)) / len(true),
        confusion_matrix=cm,
        per_class=per_class_metrics(cm, info.classes),
        misclassified=mistakes,
        skipped=skipped,
        images=images,
        curves=class_curves(probs, true, info.classes),
        calibration=_calibration(predictor, read, true),
        rejection=_rejection(predictor, read, true, pred),
    )


def _image_row(file: str, true: str, p: Prediction) -> dict[str, Any]:
    """One image's result, as the per-image table and its CSV show it."""
    return {
        "file": file, "true": true, "predicted": p.label, "answered": p.answered,
        "probabilities": {c: round(v, 6) for c, v in p.probabilities.items()},
        "score": p.score,
    }  # fmt: skip


def _calibration(predictor: Predictor, read: list[Prediction], true: list[int]) -> dict[str, Any]:
    """Calibration before and after the run's temperature on these images ({} without)."""
    if predictor.trust is None:
        return {}
    raw = np.array([list(p.uncalibrated.values()) for p in read])
    calibrated = np.array([list(p.probabilities.values()) for p in read])
    report = calibration_report(raw, calibrated, true)
    return {"temperature": predictor.trust.temperature} | report


def _rejection(
    predictor: Predictor, read: list[Prediction], true: list[int], pred: list[int]
) -> dict[str, Any]:
    """How the run's "not sure" rule does on these images ({} without a rule)."""
    if predictor.trust is None:
        return {}
    rule = predictor.trust.rule
    answered = np.array([p.answered for p in read], dtype=bool)
    right = np.asarray(true) == np.asarray(pred)
    return {
        "score": rule.score, "threshold": rule.threshold, "coverage_target": rule.coverage,
        "answered": float(answered.mean()),
        "accuracy_answered": float(right[answered].mean()) if answered.any() else 0.0,
    }  # fmt: skip


def _images_to_evaluate(folder: Path, classes: list[str]) -> tuple[list[Path], list[int]]:
    """The images of ``folder``'s class folders, in a fixed order, with their labels.

    Raises:
        EvaluationError: the class folders are not the run's classes, or hold no images.
    """
    paths, labels = labelled_images(folder, _check_classes(folder, classes))
    if not paths:
        raise EvaluationError(f"{folder} has no images in its class folders ({', '.join(classes)})")
    return paths, labels


def _sort_predictions(
    paths: list[Path], labels: list[int], predictions: list[Prediction], classes: list[str]
) -> tuple[list[int], list[int], list[Misclassified], list[dict[str, str]]]:
    """Pair every file with its own prediction: the true and predicted class indices of the
    files read, the mistakes (most confidently wrong first) and the files skipped as
    unreadable (``{file, error}``)."""
    index = {name: k for k, name in enumerate(classes)}
    true, pred, mistakes, skipped = [], [], [], []
    for file, label, prediction in zip(paths, labels, predictions, strict=True):
        if prediction.error is not None or prediction.label is None:
            skipped.append({"file": str(file), "error": prediction.error or "no prediction"})
            continue
        guess = index[prediction.label]
        true.append(label)
        pred.append(guess)
        if guess != label:
            mistakes.append(
                Misclassified(
                    file=str(file),
                    true=classes[label],
                    predicted=prediction.label,
                    probability=prediction.probabilities[prediction.label],
                    true_probability=prediction.probabilities[classes[label]],
                )
            )
    mistakes.sort(key=lambda m: (-m.probability, m.file))
    return true, pred, mistakes, skipped


def final_test(run_path: Path, batch_size: int) -> dict[str, Any]:
    """A run's final test metrics: its best model on the test split, evaluated in one pass as
    ``catdog evaluate`` does (mirror-averaged if the run's config asks for it), so metrics.json
    and the History page agree. The job and the CLI pass it to the trainer as ``test_with``.

    Returns:
        ``{"test_accuracy": ..., "test_images": ...}``.
    """
    evaluation = evaluate_run(run_path, which="best", batch_size=batch_size)
    return {"test_accuracy": float(evaluation.accuracy), "test_images": int(evaluation.count)}
