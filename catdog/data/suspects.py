"""Suspect labels: images whose class folder a model trained without them confidently doubts.

Confident learning (Northcutt, Jiang and Chuang, 2021): every image gets *out-of-sample*
class probabilities from a model trained on the other folds (k-fold, :data:`FOLDS`); a class's
threshold is the mean probability its own images get for it; an image is a suspect when
another class reaches that class's threshold and beats the given one. Suspects are ranked by
the normalised margin, the given class's probability minus the best other one (most negative
first: the most confidently wrong label).

The model is a logistic regression on cheap features computed once per image from its 64×64
picture (:func:`features`): a colour histogram, an 8×8 colour thumbnail and histograms of
gradient orientations (HOG-like). It is fast (seconds for thousands of images) but weak on
photos (about 70% agreement on the seed's cats and dogs), so its suspects are hints to look at,
strong where the classes differ in colour, layout or texture. The agreement it reaches is
reported with the suspects so people can judge them.

Plain numpy: no TensorFlow.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

FOLDS = 5  # k of the k-fold: each image is judged by a model that never saw it
# L2 penalty of the logistic regression on standardised features: the best of 0.001–0.1 on the
# seed's validation photos (64–70% accuracy; stronger was better, 0.1 the strongest tried).
PENALTY = 0.1
STEPS = 100  # accelerated gradient steps per fit (300 agreed to 0.1 point on the seed's photos)
# The features are first projected on their top principal components (no labels used): the same
# agreement on the seed's photos as all 832 features (71.3% vs 71.2%), at a quarter of the time.
COMPONENTS = 256
_CELLS = 8  # HOG: 8×8 cells ...
_ORIENTATIONS = 9  # ... of 9 unsigned orientations each
_BINS = 4  # colour histogram: 4 levels per channel, 64 bins


def features(rgb: np.ndarray) -> np.ndarray:
    """Cheap features of a ``64×64×3`` ``uint8`` picture (832 numbers, ``float32``).

    A 4×4×4 colour histogram (square-rooted shares), an 8×8 colour thumbnail (0–1) and, for each
    of 8×8 cells, a normalised histogram of 9 gradient orientations weighted by magnitude.
    """
    side = rgb.shape[0]
    k = side // _CELLS
    pixels = rgb.astype(np.float32) / 255.0
    thumb = pixels.reshape(_CELLS, k, _CELLS, k, 3).mean((1, 3)).ravel()
    levels = (rgb // (256 // _BINS)).astype(np.int64)
    codes = (levels[..., 0] * _BINS + levels[..., 1]) * _BINS + levels[..., 2]
    histogram = np.sqrt(np.bincount(codes.ravel(), minlength=_BINS**3) / codes.size)
    grey = pixels.mean(-1)
    dy, dx = np.gradient(grey)
    magnitude = np.hypot(dx, dy)
    orientation = np.minimum((np.arctan2(dy, dx) % np.pi) / np.pi * _ORIENTATIONS, 8).astype(int)
    cells = np.zeros((_CELLS, _CELLS, _ORIENTATIONS), np.float32)
    for o in range(_ORIENTATIONS):
        cells[..., o] = (magnitude * (orientation == o)).reshape(_CELLS, k, _CELLS, k).sum((1, 3))
    cells /= np.linalg.norm(cells, axis=-1, keepdims=True) + 1e-3
    return np.concatenate([histogram, thumb, np.sqrt(cells).ravel()]).astype(np.float32)


def _softmax(z: np.ndarray) -> np.ndarray:
    z = z - z.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


def fit_predict(x: np.ndarray, y: np.ndarray, x_new: np.ndarray, classes: int) -> np.ndarray:
    """Fit an L2-penalised multinomial logistic regression on ``(x, y)`` (Nesterov's
    accelerated gradient) and return ``x_new``'s probabilities.

    The features should be on comparable scales, as :func:`principal_components` makes them
    (they are not rescaled here: rescaling each principal component alike would blow up the
    near-constant ones).
    """
    n, d = x.shape
    targets = np.eye(classes, dtype=np.float32)[y]
    # Step 1/L: the loss' curvature is at most half the top eigenvalue of xᵀx/n, plus PENALTY.
    v = np.ones(d, np.float32) / np.sqrt(d)
    for _ in range(20):
        v = x.T @ (x @ v) / n
        top = float(np.linalg.norm(v))
        v /= top + 1e-12
    step = np.float32(1.0 / (0.5 * top + PENALTY))
    w = np.zeros((d + 1, classes), np.float32)
    ahead, t = w.copy(), 1.0
    for _ in range(STEPS):
        error = (_softmax(x @ ahead[:-1] + ahead[-1]) - targets) / n
        grad = np.vstack([x.T @ error + np.float32(PENALTY) * ahead[:-1], error.sum(0)])
        w_next = ahead - step * grad
        t_next = (1 + math.sqrt(1 + 4 * t * t)) / 2
        ahead = w_next + np.float32((t - 1) / t_next) * (w_next - w)
        w, t = w_next, t_next
    return _softmax(x_new @ w[:-1] + w[-1])


def principal_components(x: np.ndarray, components: int) -> np.ndarray:
    """``x`` standardised and projected on its top ``components`` principal directions (as
    it is if it has no more columns than that)."""
    x = (x - x.mean(0)) / (x.std(0) + 1e-6)
    if x.shape[1] <= components:
        return x.astype(np.float32)
    _, _, directions = np.linalg.svd(x, full_matrices=False)
    return (x @ directions[:components].T).astype(np.float32)


def out_of_sample(
    x: np.ndarray,
    y: np.ndarray,
    classes: int,
    folds: int = FOLDS,
    seed: int = 0,
    tick: Callable[[int, int], None] | None = None,
) -> np.ndarray:
    """Each image's class probabilities from a model fitted on the other folds.

    Folds are stratified: each class's images are dealt out in turn, in a shuffled order.

    Returns:
        An ``(images, classes)`` array; rows of images in no fold's complement (a class too
        small to split) stay uniform.
    """
    x = principal_components(x, COMPONENTS)
    rng = np.random.default_rng(seed)
    fold_of = np.zeros(len(y), int)
    for c in range(classes):
        members = rng.permutation(np.flatnonzero(y == c))
        fold_of[members] = np.arange(len(members)) % folds
    probabilities = np.full((len(y), classes), 1.0 / classes, np.float32)
    for k in range(folds):
        held = fold_of == k
        if held.any() and len(np.unique(y[~held])) == classes:
            probabilities[held] = fit_predict(x[~held], y[~held], x[held], classes)
        if tick is not None:
            tick(k + 1, folds)
    return probabilities


@dataclass(frozen=True)
class LabelCheck:
    """What confident learning says of every image.

    Attributes:
        probabilities: out-of-sample class probabilities, one row per image.
        suspects: indices of the suspect images, most confidently wrong first.
        margins: per image, the given class's probability minus the best other class's.
        agreement: share of images whose most probable class is the given one.
    """

    probabilities: np.ndarray
    suspects: list[int]
    margins: np.ndarray
    agreement: float

    def predicted(self, i: int) -> int:
        """The class the model finds most probable for image ``i``."""
        return int(np.argmax(self.probabilities[i]))


def confident_learning(probabilities: np.ndarray, y: np.ndarray) -> LabelCheck:
    """Find the suspect labels among out-of-sample probabilities (see the module docstring).

    Args:
        probabilities: ``(images, classes)``, from :func:`out_of_sample`.
        y: each image's given class index.
    """
    n, classes = probabilities.shape
    given = probabilities[np.arange(n), y]
    thresholds = np.array([given[y == c].mean() if (y == c).any() else 1.0 for c in range(classes)])
    confident = np.where(probabilities >= thresholds, probabilities, -1.0)
    best = confident.argmax(axis=1)
    flagged = (confident.max(axis=1) >= 0) & (best != y)
    others = probabilities.copy()
    others[np.arange(n), y] = -1.0
    margins = given - others.max(axis=1)
    order = [int(i) for i in np.argsort(margins, kind="stable") if flagged[i]]
    return LabelCheck(probabilities, order, margins, agreement(probabilities, y))


@dataclass(frozen=True)
class Suspect:
    """One suspect label: the image's index, the class the model prefers, its probability,
    and the given class's probability minus the best other class's (negative: doubted)."""

    index: int
    predicted: int
    confidence: float
    margin: float


def by_group(
    probabilities: np.ndarray, y: np.ndarray, groups: list[str], order: Sequence[str]
) -> list[Suspect]:
    """Confident learning within each group of images (e.g. each split) on its own: the
    groups in ``order``, most confidently wrong first within each.

    Thresholds and ranking are per group, so a group whose probabilities are surer of
    themselves (an ensemble's average, say) cannot crowd another group's doubts out of the top.
    """
    found = []
    names = np.asarray(groups, dtype=object)
    for group in order:
        rows = np.flatnonzero(names == group)
        if not len(rows):
            continue
        check = confident_learning(probabilities[rows], y[rows])
        for i in check.suspects:
            predicted = check.predicted(i)
            confidence = float(check.probabilities[i, predicted])
            found.append(Suspect(int(rows[i]), predicted, round(confidence, 4),
                                 round(float(check.margins[i]), 4)))  # fmt: skip
    return found


def agreement(probabilities: np.ndarray, y: np.ndarray) -> float:
    """Share of images whose most probable class is the given one (0 for none)."""
    return float((probabilities.argmax(axis=1) == y).mean()) if len(y) else 0.0
