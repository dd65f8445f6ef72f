"""The cross-fitted label check: networks trained across folds judge photos they never saw."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from catdog.data.health import AuditError, audit_dataset
from catdog.data.paths import data_home
from catdog.inference.cross_fit import FOLDS, cross_fitted, fold_of
from catdog.policy import ENV_VAR
from catdog.train.runs import list_runs

ROOT = Path(__file__).resolve().parents[1]


def test_folds_deal_each_class_out_evenly_and_leave_test_images_out() -> None:
    labels = np.array([0] * 9 + [1] * 6 + [0, 1])
    labelled = np.array([True] * 15 + [False, False])
    fold = fold_of(labels, labelled, 3, seed=0)
    assert list(fold[15:]) == [-1, -1]
    for c, n in ((0, 9), (1, 6)):
        assert np.bincount(fold[:15][labels[:15] == c], minlength=3).tolist() == [n // 3] * 3
    assert (fold_of(labels, labelled, 3, seed=0) == fold).all()  # seeded


def test_too_little_time_is_refused_in_one_sentence() -> None:
    with pytest.raises(AuditError, match=f"at least {FOLDS} minutes .* got 1"):
        cross_fitted(1)


def test_a_shared_server_does_not_offer_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(ENV_VAR, "1")
    with pytest.raises(AuditError, match="shared server does not offer"):
        cross_fitted(30)


@pytest.mark.slow
def test_flipped_labels_are_found_and_nothing_is_left_behind(
    dataset_factory: Callable[..., Path],
) -> None:
    root = dataset_factory(counts=(20, 10, 4), size=48)
    flipped = []
    for k, (given, true) in enumerate((("cats", "dogs"), ("dogs", "cats"))):
        source = sorted((root / "train" / true).iterdir())[k]
        flipped.append(source.rename(root / "train" / given / f"flipped-{source.name}"))
    judge = cross_fitted(3, model="seed-baseline", epochs=25, image_size=48, batch_size=8,
                         precision="float32")  # fmt: skip
    report = audit_dataset(root, label_features=judge)
    found = [s["file"] for s in report.in_split("train")]
    assert {f"train/{p.parent.name}/{p.name}" for p in flipped} <= set(found[:4])
    assert report.label_model.startswith(f"{FOLDS} seed-baseline networks trained across folds")
    assert report.agreement > 0.8
    assert not list(data_home().glob(".cross-fit-*"))  # no folds left
    assert list_runs() == []  # the networks were the audit's, not runs


def test_the_command_line_says_what_is_wrong_in_one_line() -> None:
    for extra, says in ((["--cross-fit", "1"], "needs at least 3 minutes"),
                        (["--cross-fit", "9", "--run", "x"], "give one of --run, --cross-fit, "
                         "not several")):  # fmt: skip
        done = subprocess.run([sys.executable, "-m", "catdog", "audit", "demo", *extra],
                              capture_output=True, text=True, cwd=ROOT, timeout=120)  # fmt: skip
        assert done.returncode == 2 and says in done.stderr and "Traceback" not in done.stderr


def test_a_class_too_small_for_the_folds_is_refused(dataset_factory: Callable[..., Path]) -> None:
    root = dataset_factory(counts=(1, 1, 1), size=48)
    paths = sorted(root.glob("*/*/*.jpg"))
    judge = cross_fitted(3)
    assert judge.extract([], lambda done, total: None).size == 0  # nothing to judge: no work
    with pytest.raises(AuditError, match="at least 3 training and validation photos of each"):
        judge.extract(paths, lambda done, total: None)
    assert not list(data_home().glob(".cross-fit-*"))
