"""The label check's strongest judge without pretrained weights: networks trained across folds.

Confident learning needs *out-of-sample* probabilities (:mod:`catdog.data.suspects`), and the
better they are the more wrong labels rank first. On photos, cheap features agree with ~70% of
the labels and a network trained on the labels being checked learns the wrong ones by heart. So
:func:`cross_fitted` deals the training and validation photos into :data:`FOLDS` folds (by class,
seeded) and trains one catdog-net per fold on the *other* folds: each photo is judged by a
network that never saw it, trained on two thirds of the labelled photos. Test photos, which no
network sees, get the networks' average. The networks learn in a temporary folder under the data
home (hard links of the photos; nothing is copied when the file system allows) and are deleted
afterwards: they are the audit's, not runs of the user.

It costs :data:`FOLDS` trainings (``minutes`` in all, shared equally), so it is offered where
someone asks for it (``python -m catdog audit DATASET --cross-fit MINUTES``), never on a shared
server.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from catdog.data.datasets import scan_dataset
from catdog.data.health import AuditError, LabelFeatures
from catdog.data.paths import data_home
from catdog.inference.audit_features import in_batches
from catdog.policy import current_policy

if TYPE_CHECKING:
    from catdog.inference.predict import Predictor
    from catdog.train.events import ProgressEvent

FOLDS = 3  # each network learns from two thirds of the labelled photos
MODEL = "catdog-net"
Tick = Callable[[int, int], None]


def cross_fitted(
    minutes: float, model: str = MODEL, seed: int = 0, **settings: Any
) -> LabelFeatures:
    """The label check's judge made of :data:`FOLDS` networks trained across folds (see the
    module docstring), ``minutes`` of training in all.

    Args:
        minutes: the training time of all the networks together.
        model: the model they train (its defaults for every setting).
        seed: deals the folds.
        settings: other :class:`~catdog.train.config.TrainConfig` settings (e.g. ``epochs``).

    Raises:
        AuditError: on a shared server (hosted mode), or for a time under a minute a network.
    """
    if current_policy().hosted:
        raise AuditError(
            "the cross-fitted label check trains several networks, which a shared server "
            "does not offer; run catdog on your own computer for it"
        )
    if not minutes >= FOLDS:
        raise AuditError(f"the cross-fitted label check needs at least {FOLDS} minutes (one a "
                         f"network), got {minutes:g}")  # fmt: skip
    name = f"{FOLDS} {model} networks trained across folds ({minutes:g} min)"

    def judge(paths: list[Path], tick: Tick) -> np.ndarray:
        return _probabilities(paths, tick, minutes / FOLDS, seed, model=model, **settings)

    return LabelFeatures(name, judge, probabilities=True)


def fold_of(labels: np.ndarray, held: np.ndarray, folds: int, seed: int) -> np.ndarray:
    """Each image's fold (``-1`` for an image no network learns from, ``held`` False): each
    class's images dealt out in turn, in a shuffled order."""
    rng = np.random.default_rng(seed)
    out = np.full(len(labels), -1)
    for c in np.unique(labels):
        members = rng.permutation(np.flatnonzero((labels == c) & held))
        out[members] = np.arange(len(members)) % folds
    return out


def _probabilities(paths: list[Path], tick: Tick, minutes: float, seed: int, **settings: Any
                   ) -> np.ndarray:  # fmt: skip
    """Out-of-sample probabilities of every image (paths ``root/split/class/file``)."""
    if not paths:
        return np.zeros((0, 0), np.float32)
    root = paths[0].parents[2]
    classes = list(scan_dataset(root).classes)
    labels = np.array([classes.index(p.parent.name) for p in paths])
    labelled = np.array([p.parents[1].name != "test" for p in paths])
    if (few := min(np.bincount(labels[labelled], minlength=len(classes)))) < FOLDS:
        raise AuditError(f"the cross-fitted label check needs at least {FOLDS} training and "
                         f"validation photos of each class; one class has {few}")  # fmt: skip
    fold = fold_of(labels, labelled, FOLDS, seed)
    out = np.zeros((len(paths), len(classes)), np.float32)
    unseen = ~labelled
    work = tempfile.mkdtemp(prefix=".cross-fit-", dir=data_home())
    try:
        for k in range(FOLDS):

            def step(done: int, total: int, k: int = k) -> None:
                tick(k * 100 + round(100 * done / max(total, 1)), FOLDS * 100)

            judged = (fold == k) | unseen
            data = _fold_dataset(Path(work) / f"fold-{k}", paths, labels, classes, fold, k)
            predictor = _train(data, dict(settings, time_limit_minutes=minutes), step)
            rows = np.flatnonzero(judged)
            order = [predictor.classes.index(c) for c in classes]  # its columns in ours
            chosen = [paths[i] for i in rows]
            probabilities = in_batches(chosen, predictor.image_size, predictor.probabilities)
            probabilities = probabilities[:, order]
            weight = np.where(fold[rows] == k, 1.0, 1.0 / FOLDS)  # test: the average
            out[rows] += probabilities * weight[:, None]
            tick((k + 1) * 100, FOLDS * 100)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return out


def _fold_dataset(folder: Path, paths: list[Path], labels: np.ndarray, classes: list[str],
                  fold: np.ndarray, k: int) -> Path:  # fmt: skip
    """A dataset (hard links) that learns from every fold but ``k`` and validates on ``k``
    (its test split is empty)."""
    data = folder / "data"
    learn, held, none = (fold >= 0) & (fold != k), fold == k, np.zeros_like(fold, bool)
    for split, chosen in (("train", learn), ("validation", held), ("test", none)):
        for cls in classes:
            (data / split / cls).mkdir(parents=True, exist_ok=True)
        for i in np.flatnonzero(chosen):
            _link(paths[i], data / split / classes[labels[i]] / f"{i}-{paths[i].name}")
    (folder / "runs").mkdir()
    return data


def _train(data: Path, settings: dict[str, Any], tick: Tick) -> Predictor:
    """Train one network on ``data`` (its validation split, the held-out fold, only draws the
    curves: the last model judges) in a run beside it; its predictor, averaging the test-time
    views the model trained for (catdog-net: each photo and its mirror image)."""
    from catdog.inference.predict import Predictor
    from catdog.train.config import TrainConfig
    from catdog.train.runs import create_run
    from catdog.train.trainer import train_created

    config = TrainConfig(data=str(data), test=False, **settings)
    path = create_run(config, root=data.parent / "runs")

    def on_event(event: ProgressEvent) -> None:
        if event.kind == "epoch" and event.epochs:
            tick(event.epoch, event.epochs)

    result = train_created(path, on_event=on_event)
    if not (path / "last.keras").is_file():
        raise AuditError(f"a cross-fitted network did not train ({result.state})")
    return Predictor.from_run(path, "last", trust=False)  # its own test-time views


def _link(source: Path, target: Path) -> None:
    """A hard link of ``source`` at ``target`` (a copy where links are not allowed)."""
    try:
        os.link(source, target)
    except OSError:
        shutil.copyfile(source, target)
