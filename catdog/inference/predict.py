"""Prediction: a trained run's model applied to any images the user has.

:class:`Predictor` loads a run's model once and classifies paths or raw bytes. Every image goes
through the same steps as in training (:func:`catdog.data.model_input.load_for_model` at the run's
image size, then :func:`catdog.model.pixels.scale_pixels`), so a photo gets the same score here as
it would in the training pipeline. A file that cannot be read comes back as a :class:`Prediction`
with an ``error`` instead of stopping the others. Importing this module is cheap; Keras is imported
when a model is loaded.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from catdog.data.images import ImageError
from catdog.data.model_input import load_for_model
from catdog.data.names import shown
from catdog.inference.trust import Outputs, Rule, Trust, TrustError, run_trust
from catdog.policy import current_policy
from catdog.progress import ProgressFn, report
from catdog.train.config import tta_zoom_error
from catdog.train.runs import RunError, load_model, resolve_run, usable_run_info

if TYPE_CHECKING:
    from catdog.model.backend import keras

# What predict() accepts: a path, a file's bytes, or (name for messages, bytes).
ImageSource = str | Path | bytes | tuple[str, bytes]

# Images decoded and sent to the model at once: bounds memory (64 images of 150 px are ~17 MB
# as float32) while keeping a typical upload to a single model call.
DEFAULT_BATCH_SIZE = 64


@dataclass
class Prediction:
    """The model's answer for one image.

    Attributes:
        file: the path as given, or the name given with the bytes (``image-3`` if none).
        label: the most probable class, or ``None`` when the image could not be read.
        probabilities: ``{class: probability}`` in the run's class order, summing to 1
            (empty when the image could not be read).
        error: why the image could not be read (one line naming the file as
            :func:`catdog.data.names.shown` shows it), else ``None``.
        heatmap: with ``predict(..., heatmaps=True)``, where the model saw evidence for
            ``label``: a Grad-CAM map in [0, 1] (:func:`catdog.inference.explain.grad_cam`), else
            ``None``.
        answered: ``False`` when the run's rule for "neither class / not sure" rejects the
            image (``label`` is then the model's best guess, not an answer).
        reason: why it was not answered (one sentence), else ``None``.
        calibrated: whether ``probabilities`` are temperature-scaled (the run's
            :class:`~catdog.inference.trust.Trust` was available), else the model's own.
        score: the rule's doubt score (higher = less like the photos the run learned from),
            ``None`` without a rule.
    """

    file: str
    label: str | None
    probabilities: dict[str, float] = field(default_factory=dict)
    error: str | None = None
    heatmap: np.ndarray | None = field(default=None, repr=False, compare=False)
    answered: bool = True
    reason: str | None = None
    calibrated: bool = False
    score: float | None = None
    uncalibrated: dict[str, float] = field(default_factory=dict, repr=False, compare=False)

    @property
    def ok(self) -> bool:
        """Whether the image was read and classified."""
        return self.error is None

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready data (probabilities to 4 decimals); ``error`` only for failed images;
        ``answered``, ``calibrated`` and ``score`` for classified ones, ``reason`` when the
        image was not answered."""
        data: dict[str, Any] = {
            "file": self.file,
            "label": self.label,
            "probabilities": {c: round(float(p), 4) for c, p in self.probabilities.items()},
        }
        if self.error is not None:
            data["error"] = self.error
            return data
        data |= {"answered": self.answered, "calibrated": self.calibrated}
        if self.score is not None:
            data["score"] = round(float(self.score), 6)
        if self.reason is not None:
            data["reason"] = self.reason
        return data


def centre_zoom(images: np.ndarray, zoom: float) -> np.ndarray:
    """Zoom a batch in by ``zoom`` about its centre: crop the centred square of side about
    ``side / zoom`` (equal margins, so the view of a mirrored image is the mirrored view) and
    scale it back to ``side`` (bilinear), as a test-time view.

    Args:
        images: float array ``[N, side, side, C]``.
        zoom: magnification, ≥ 1 (1 returns the images unchanged).

    Returns:
        A float32 array of the same shape.
    """
    side = images.shape[1]
    margin = min(round((side - side / zoom) / 2), (side - 1) // 2)
    if margin <= 0:
        return np.asarray(images, dtype=np.float32)
    from catdog.model.backend import tf

    window = images[:, margin : side - margin, margin : side - margin]
    return tf.image.resize(window, (side, side), method="bilinear").numpy()


def class_probabilities(outputs: np.ndarray, num_classes: int) -> np.ndarray:
    """Turn model outputs into one probability per class.

    Binary models have one sigmoid unit giving P(classes[1]); it becomes the two columns
    ``[1 - p, p]``. Softmax outputs are returned as they are.

    Args:
        outputs: the model's output, shape ``[N, 1]`` (binary) or ``[N, num_classes]``.
        num_classes: the number of classes the run was trained on.

    Returns:
        A float64 array of shape ``[N, num_classes]`` whose rows sum to 1.

    Raises:
        ValueError: the output width fits neither a binary nor a ``num_classes`` softmax head.
    """
    outputs = np.asarray(outputs, dtype=np.float64)
    outputs = outputs.reshape(len(outputs), -1)
    width = outputs.shape[1]
    if width == 1 and num_classes == 2:
        p = outputs[:, 0]
        return np.stack([1.0 - p, p], axis=1)
    if width == num_classes and num_classes > 2:
        return outputs
    raise ValueError(
        f"the model has {width} output unit(s) but the run has {num_classes} classes; "
        "expected 1 sigmoid unit for 2 classes or one softmax unit per class"
    )


def _name_and_data(source: ImageSource, index: int) -> tuple[str, str | Path | bytes]:
    """Split a source into (name shown to the user, what to open)."""
    if isinstance(source, (str, Path)):
        return str(source), source
    if isinstance(source, bytes):
        return f"image-{index + 1}", source
    if (
        isinstance(source, tuple)
        and len(source) == 2
        and isinstance(source[0], str)
        and isinstance(source[1], bytes)
    ):
        return source
    raise TypeError(
        f"cannot predict on a {type(source).__name__} (item {index + 1}); "
        "pass a path, the file's bytes, or a (name, bytes) pair"
    )


def _checked_zoom(zoom: float | None) -> float:
    """``zoom`` as a float; ValueError if it cannot be a test-time zoom."""
    if problem := tta_zoom_error(zoom):
        raise ValueError(problem)
    return float(zoom or 0.0)


class Predictor:
    """A run's model, loaded once, ready to classify images.

    Args:
        model: the trained Keras model (inputs are pixels scaled to [0, 1]).
        classes: class names in the run's order (index = label).
        image_size: side of the model's square input, in pixels.
        run_id: the run the model comes from (for display).
        tta: average the probabilities of each image and its mirror image (test-time
            augmentation), as the run was configured to.
        tta_zoom: with ``tta``, also average over a centred crop of side ``1/tta_zoom`` of
            each of the two, scaled back to ``image_size`` (0 or 1: no zoomed views).
        trust: the run's calibration and "not sure" rule
            (:class:`~catdog.inference.trust.Trust`), applied to every prediction; ``None``
            gives the model's own probabilities and answers every image.
    """

    def __init__(
        self,
        model: keras.Model,
        classes: Sequence[str],
        image_size: int,
        run_id: str = "",
        tta: bool = False,
        tta_zoom: float = 0.0,
        trust: Trust | None = None,
    ) -> None:
        self.model = model
        self.classes = list(classes)
        self.image_size = int(image_size)
        self.run_id = run_id
        self.tta = tta
        self.tta_zoom = _checked_zoom(tta_zoom)
        self.trust = trust
        self.trust_problem: str | None = None  # why there is no trust, when there is none
        self._probe: Any = None

    @classmethod
    def from_run(
        cls,
        run: str | Path,
        which: str = "best",
        *,
        tta: bool | None = None,
        tta_zoom: float | None = None,
        trust: bool = True,
    ) -> Predictor:
        """Load the ``best`` (or ``last``) model of a run given by id, id prefix or folder.

        ``tta`` and ``tta_zoom`` default to the run's configuration (runs made before
        ``tta_zoom`` existed: mirror only); give them to predict another way. With ``trust``
        the run's calibration and "not sure" rule come too, learned on its validation split
        and saved with the run the first time (:func:`catdog.inference.trust.run_trust`); if
        they cannot be learned, ``trust_problem`` says why and every image is answered.

        Raises:
            RunError: the run does not exist, is damaged, has no saved model, or its config
                lacks classes.
        """
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
        if tta_zoom is not None:
            _checked_zoom(tta_zoom)  # before the model is loaded
        path = resolve_run(run)
        info = usable_run_info(path)
        if len(info.classes) < 2:
            raise RunError(f"run {info.id} lists {len(info.classes)} classes in its config.json")
        model = load_model(path, which=which)
        train = info.config.get("train", {})
        size = train.get("image_size") or model.input_shape[1]
        predictor = cls(
            model,
            info.classes,
            int(size),
            run_id=info.id,
            tta=bool(train.get("tta")) if tta is None else tta,
            tta_zoom=(train.get("tta_zoom") or 0.0) if tta_zoom is None else tta_zoom,
        )
        if trust:
            try:
                predictor.trust = run_trust(path, which, predictor)
            except TrustError as exc:
                predictor.trust_problem = str(exc)
        return predictor

    @property
    def views(self) -> dict[str, Any]:
        """The test-time views this predictor averages (``tta``, ``tta_zoom``)."""
        return {"tta": bool(self.tta), "tta_zoom": float(self.tta_zoom if self.tta else 0.0)}

    def probabilities(self, images: np.ndarray) -> np.ndarray:
        """Class probabilities for a batch of ``uint8`` images already at the model's size.

        Args:
            images: array ``[N, image_size, image_size, 3]`` of 0–255 pixels, as produced by
                :func:`catdog.data.model_input.load_for_model`.

        Returns:
            Float array ``[N, len(classes)]``; each row sums to 1.
        """
        return self.outputs(images).probabilities

    def outputs(self, images: np.ndarray) -> Outputs:
        """The model's probabilities, penultimate features and logits for a batch of ``uint8``
        images at the model's size, each averaged over the predictor's test-time views (the
        head is linear, so the logits are those of the averaged features)."""
        from catdog.model.pixels import scale_pixels

        if len(images) == 0:
            empty = np.zeros((0, 0))
            return Outputs(np.zeros((0, len(self.classes))), empty, empty)
        views = [scale_pixels(images)]
        if self.tta:
            views.append(views[0][:, :, ::-1])
            if self.tta_zoom > 1:
                views += [centre_zoom(view, self.tta_zoom) for view in views]
        probe, kernel, bias = self._feature_probe()
        features, outputs = probe(np.concatenate(views))  # one model call for every view
        n = len(images)
        outputs = np.asarray(outputs, dtype=np.float64).reshape(len(views), n, -1).mean(axis=0)
        features = np.asarray(features, dtype=np.float64).reshape(len(views), n, -1).mean(axis=0)
        logits = features @ kernel + bias if kernel.size else np.zeros((len(features), 0))
        return Outputs(class_probabilities(outputs, len(self.classes)), features, logits)

    def _feature_probe(self) -> tuple[Any, np.ndarray, np.ndarray]:
        """``(probe, kernel, bias)``: ``probe(x)`` gives the head's input and the model's
        output in one pass; kernel and bias are the dense head's, as float64."""
        if self._probe is None:
            from catdog.inference.explain import ExplainError, feature_probe

            try:
                self._probe = feature_probe(self.model)
            except ExplainError:  # no dense head: the outputs alone, no features

                def outputs_only(x: np.ndarray) -> tuple[np.ndarray, Any]:
                    return np.zeros((len(x), 0)), self.model.predict_on_batch(x)

                self._probe = (outputs_only, np.zeros((0, 0)), np.zeros(0))
        return self._probe

    def heatmaps(self, images: np.ndarray, class_indices: Sequence[int] | np.ndarray) -> np.ndarray:
        """Grad-CAM maps of ``uint8`` images at the model's size for the given classes.

        See :func:`catdog.inference.explain.grad_cam` (values in [0, 1], at the feature map's size).
        """
        from catdog.inference.explain import grad_cam
        from catdog.model.pixels import scale_pixels

        return grad_cam(self.model, scale_pixels(images), np.asarray(class_indices))

    def predict(
        self,
        sources: Sequence[ImageSource],
        *,
        batch_size: int = DEFAULT_BATCH_SIZE,
        progress: ProgressFn | None = None,
        heatmaps: bool = False,
        rule: Rule | None = None,
    ) -> list[Prediction]:
        """Classify images; unreadable ones get an ``error`` and do not stop the rest.

        Any image in one of :data:`catdog.data.images.ACCEPTED_FORMATS` is accepted (any size up
        to :data:`catdog.data.images.MAX_PIXELS`, any mode).

        Args:
            sources: paths, file bytes, or ``(name, bytes)`` pairs (in hosted mode: no paths,
                at most :attr:`~catdog.policy.Policy.max_predict_photos` of them,
                each within the upload cap).
            batch_size: images decoded and passed to the model in one call.
            progress: called as ``progress(done, total, message)`` after each batch.
            heatmaps: also give each prediction a Grad-CAM ``heatmap`` of its label (one
                more pass through the model, forward and back, for the plain view).
            rule: when to answer "not sure" instead of the run's own rule (e.g.
                ``predictor.trust.rule.with_coverage(0.9)``); needs ``trust``.

        Returns:
            One :class:`Prediction` per source, in the same order.

        Raises:
            catdog.policy.HostedLimitError: in hosted mode, too many photos, one too big, or
                a path of the server.
        """
        named = [_name_and_data(source, i) for i, source in enumerate(sources)]
        policy = current_policy()
        policy.check_photos(len(named))
        for name, data in named:
            if isinstance(data, bytes):
                policy.check_upload(len(data), name)
            else:
                policy.refuse_server_files(f"classifying the file {name}")
        return self._predict_named(named, batch_size, progress, heatmaps, rule)

    def predict_files(
        self,
        sources: Sequence[ImageSource],
        *,
        batch_size: int = DEFAULT_BATCH_SIZE,
        progress: ProgressFn | None = None,
        heatmaps: bool = False,
        rule: Rule | None = None,
    ) -> list[Prediction]:
        """:meth:`predict` without hosted mode's checks: for the images of a dataset the caller
        has already vetted (a run's own test split, in
        :func:`catdog.inference.evaluate.evaluate_run`)."""
        named = [_name_and_data(source, i) for i, source in enumerate(sources)]
        return self._predict_named(named, batch_size, progress, heatmaps, rule)

    def _predict_named(
        self,
        named: list[tuple[str, str | Path | bytes]],
        batch_size: int,
        progress: ProgressFn | None,
        heatmaps: bool,
        rule: Rule | None = None,
    ) -> list[Prediction]:
        if batch_size < 1:
            raise ValueError(f"batch size must be ≥ 1, got {batch_size}")
        if rule is not None and self.trust is None:
            raise ValueError("a rule for 'not sure' needs the run's trust (none was learned)")
        results: list[Prediction] = []
        for start in range(0, len(named), batch_size):
            chunk = named[start : start + batch_size]
            results.extend(self._predict_chunk(chunk, heatmaps, rule))
            report(progress, len(results), len(named), "images")
        return results

    def _predict_chunk(
        self,
        chunk: list[tuple[str, str | Path | bytes]],
        heatmaps: bool = False,
        rule: Rule | None = None,
    ) -> list[Prediction]:
        """Decode a chunk, run the good images through the model in one call."""
        results: list[Prediction | None] = []
        good: list[np.ndarray] = []
        slots: list[int] = []
        for name, data in chunk:
            try:  # the error names the file on one line, whatever its name holds
                good.append(load_for_model(data, self.image_size, name=shown(name)))
            except ImageError as exc:
                results.append(Prediction(file=name, label=None, error=str(exc)))
                continue
            slots.append(len(results))
            results.append(None)
        if good:
            images = np.stack(good)
            predictions = self._judged(self.outputs(images), rule)
            if heatmaps:
                labels = [self.classes.index(str(p.label)) for p in predictions]
                for prediction, heat in zip(
                    predictions, self.heatmaps(images, labels), strict=True
                ):
                    prediction.heatmap = heat
            for slot, prediction in zip(slots, predictions, strict=True):
                prediction.file = chunk[slot][0]
                results[slot] = prediction
        return [r for r in results if r is not None]

    def _judged(self, out: Outputs, rule: Rule | None) -> list[Prediction]:
        """One unnamed :class:`Prediction` per row of ``out``: calibrated and judged by the
        rule when the predictor has trust, else the model's own probabilities."""
        raw = out.probabilities
        probs, scores, answered, reasons = raw, [None] * len(raw), [True] * len(raw), None
        if self.trust is not None:
            verdict = self.trust.judge(out, rule)
            probs, scores, answered, reasons = (
                verdict.probabilities, verdict.scores.tolist(), verdict.answered.tolist(),
                verdict.reasons,
            )  # fmt: skip
        return [
            Prediction(
                file="",
                label=self.classes[int(np.argmax(row))],
                probabilities={c: float(p) for c, p in zip(self.classes, row, strict=True)},
                uncalibrated={c: float(p) for c, p in zip(self.classes, plain, strict=True)},
                calibrated=self.trust is not None,
                score=score,
                answered=bool(ok),
                reason=None if reasons is None else reasons[k],
            )
            for k, (row, plain, score, ok) in enumerate(
                zip(probs, raw, scores, answered, strict=True)
            )
        ]


def learn_trust(run: str | Path, which: str = "best") -> str:
    """Learn a run's calibration and "not sure" rule now, as its training ends (the saved one
    is kept if its model has not changed); one line saying what they are, or why there are
    none (predictions then learn them on first use, or go without)."""
    from catdog.inference.trust import load_trust

    path = resolve_run(run)
    trust = load_trust(path, which)
    if trust is None:
        predictor = Predictor.from_run(path, which)
        if predictor.trust is None:
            return f"no 'not sure' rule: {predictor.trust_problem}"
        trust = predictor.trust
    rule = trust.rule
    return (
        f"probabilities calibrated (temperature {trust.temperature:.2f}); 'not sure' when the "
        f"{rule.score} score is above {rule.threshold:.3g}, which {rule.coverage:.0%} of the "
        "validation photos stay within"
    )
