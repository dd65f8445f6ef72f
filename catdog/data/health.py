"""The data audit: duplicates, leaks between splits, suspect labels and odd images.

:func:`audit_dataset` reads each image of a dataset once (a 64×64 picture, decoded at reduced
size) and finds:

* **duplicates** (:mod:`catdog.data.fingerprints`): identical pictures, and near-duplicates that
  survive resizing, re-compression, crops of up to 10% and mirroring; a pair in two splits is a
  **leak** (the same photo in training and test inflates the test score), counted per split
  pair;
* **suspect labels** (:mod:`catdog.data.suspects`): confident learning on out-of-sample
  predictions of a fast model, on cheap features or a pretrained base's (``label_features``,
  :mod:`catdog.inference.audit_features`), or networks cross-fitted on the photos. Each split
  is checked and ranked on its own: a wrong training label teaches the model a mistake, a
  wrong test label misstates its score, and the splits' probabilities need not be alike (a
  cross-fitted check judges test photos with the average of its networks, more sure of itself
  than any one of them), so one split's doubts must not crowd out another's;
* **odd images** (:mod:`catdog.data.odd`): tiny, extreme aspect ratios, blank or near-uniform
  frames, few colours (drawings, text, graphics); and classes of very unequal size.

The cost is bounded (at most :data:`MAX_AUDIT_IMAGES` images; hosted mode stops an audit after
:data:`HOSTED_AUDIT_SECONDS`), shown as it goes (``progress`` with the time left), and paid once
per dataset version: the report is cached in the data home under a key made of every image's
path, size and modification time. One audit runs at a time per workspace.

Plain numpy and Pillow: no TensorFlow, no Streamlit.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from itertools import combinations
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from catdog.data import fingerprints, odd, suspects
from catdog.data.datasets import SPLITS, DatasetInfo, balance_warnings, class_images, scan_dataset
from catdog.data.images import ImageError, image_header, open_rgb
from catdog.data.paths import current_workspace, data_home
from catdog.policy import HostedLimitError, current_policy
from catdog.progress import ProgressFn, TimeLeft, duration, report

AUDIT_VERSION = 2  # part of the cache key: a new version of the checks audits again
# Largest dataset audited: ~9 KB per image is kept while it runs (180 MB at this size), and the
# comparison of all pairs grows with its square.
MAX_AUDIT_IMAGES = 20_000
# Hosted mode stops an audit after this long (the 3,000 images hosted mode allows take ~2 min
# on 2 cores).
HOSTED_AUDIT_SECONDS = 300.0
# Rough cost of each step per image, for one estimate of the time left over all of them.
_STEP_COST = {"read": 1.0, "compare": 2.5, "features": 4.0, "training": 150.0, "labels": 1.0}


class AuditError(ValueError):
    """An audit cannot run or was stopped; the message says why and what to do."""


@dataclass(frozen=True)
class LabelFeatures:
    """Features for the label check other than the cheap ones (a pretrained base's, see
    :mod:`catdog.inference.audit_features`).

    Attributes:
        name: what they are, as the report says it (``"mobilenet-v3-small features"``).
        extract: ``extract(paths, tick)`` returns one row of features per image path, calling
            ``tick(done, total)`` as it goes.
        probabilities: the rows are already each image's out-of-sample class probabilities
            (columns in the dataset's class order; paths are ``root/split/class/file``), as
            :func:`catdog.inference.cross_fit.cross_fitted` gives them: no model is fitted
            on top.
    """

    name: str
    extract: Callable[[list[Path], Callable[[int, int], None]], np.ndarray]
    probabilities: bool = False


CHEAP_FEATURES = "colour, thumbnail and gradient features"


@dataclass
class AuditReport:
    """What an audit found. Images are named by their path in the dataset
    (``train/cats/cat.1.jpg``).

    Attributes:
        dataset: the dataset's folder name.
        key: the dataset version audited (see :func:`audit_key`).
        classes: the dataset's classes.
        images: images read.
        seconds: how long the audit took.
        pairs: duplicates, most alike first: ``{"a", "b", "score", "kind" ("exact" or
            "near"), "leak" ("train/test"-style split pair, or "")}``.
        leaks: cross-split pairs per split pair (every pair of splits, 0 included).
        suspects: suspect labels split by split (training first), most confidently wrong
            first within each: ``{"file", "split", "given", "predicted", "confidence",
            "margin"}``.
        agreement: share of images whose out-of-sample prediction is the given class.
        label_model: the features the label check's model learned from.
        odd: ``{"file", "reasons"}`` for tiny, stretched, blank and few-colour images.
        warnings: sentences about the dataset as a whole (unequal classes).
        unreadable: ``{"file", "reason"}`` for files that could not be read.
    """

    dataset: str
    key: str
    classes: list[str]
    images: int
    seconds: float = 0.0
    pairs: list[dict[str, Any]] = field(default_factory=list)
    leaks: dict[str, int] = field(default_factory=dict)
    suspects: list[dict[str, Any]] = field(default_factory=list)
    agreement: float = 0.0
    label_model: str = CHEAP_FEATURES
    odd: list[dict[str, Any]] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    unreadable: list[dict[str, str]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """The report as plain JSON-ready values."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> AuditReport:
        """The report :meth:`to_dict` wrote."""
        return cls(**data)

    def findings(self) -> set[str]:
        """Every image some finding names."""
        named = {p[k] for p in self.pairs for k in ("a", "b")}
        return named | {s["file"] for s in self.suspects} | {o["file"] for o in self.odd}

    def in_split(self, split: str) -> list[dict[str, Any]]:
        """The suspect labels of one split, most confidently wrong first."""
        return [s for s in self.suspects if s["split"] == split]

    def _per_split(self) -> str:
        counts = [f"{split} {n:,}" for split in SPLITS if (n := len(self.in_split(split)))]
        return f" ({', '.join(counts)})" if counts else ""

    def summary(self) -> str:
        """A few lines for people."""
        leaked = sum(self.leaks.values())
        lines = [
            f"Audited {self.images:,} images of {self.dataset} in {duration(self.seconds)}.",
            f"Duplicates: {len(self.pairs):,} pair(s), {leaked:,} of them across splits "
            f"(leaks: {', '.join(f'{k} {v}' for k, v in self.leaks.items())}).",
            f"Suspect labels: {len(self.suspects):,}{self._per_split()}; the label check "
            f"({self.label_model}) agrees with {self.agreement:.0%} of the labels on images it "
            "did not learn from.",
            f"Odd images: {len(self.odd):,}.",
        ]
        lines += [f"  {p['leak'] or 'same split'}: {p['a']} ~ {p['b']} ({p['kind']}, "
                  f"{p['score']:.3f})" for p in self.pairs[:20]]  # fmt: skip
        for split in SPLITS:
            lines += [f"  suspect {s['file']}: looks like {s['predicted']} "
                      f"({s['confidence']:.0%})" for s in self.in_split(split)[:5]]  # fmt: skip
        lines += [f"  odd {o['file']}: {'; '.join(o['reasons'])}" for o in self.odd[:10]]
        lines += [f"Unreadable: {u['reason']}" for u in self.unreadable[:10]]
        lines += [f"Warning: {w}." for w in self.warnings]
        return "\n".join(lines)


# ------------------------------------------------------------------------ reading the images


@dataclass
class _Facts:
    """What one read of an image yields."""

    path: Path
    file: str
    split: str
    label: int
    width: int
    height: int
    digest: str  # of the 64×64 RGB picture: identical pictures, whatever their files
    grey: np.ndarray
    signature: dict[str, np.ndarray]
    features: np.ndarray
    spread: float
    few_colours: float


def _examine(path: Path, file: str, split: str, label: int) -> _Facts | str:
    """Read one image: its facts, or why it cannot be read."""
    try:
        _, width, height = image_header(path)
        image = open_rgb(path, min_side=fingerprints.SIDE)
    except ImageError as exc:
        return str(exc)
    side = fingerprints.SIDE
    rgb = np.asarray(image.resize((side, side), Image.Resampling.BILINEAR))
    grey = fingerprints.grey_square(image)
    return _Facts(
        path=path,
        file=file,
        split=split,
        label=label,
        width=width,
        height=height,
        digest=hashlib.sha256(rgb.tobytes()).hexdigest(),
        grey=grey,
        signature=fingerprints.signature(grey),
        features=suspects.features(rgb),
        spread=float(grey.std()),
        few_colours=odd.few_colours_share(rgb),
    )


def _images(info: DatasetInfo) -> list[tuple[Path, str, str, int]]:
    """(path, name in the dataset, split, label) of every image, split by split."""
    found = []
    for split in SPLITS:
        for label, cls in enumerate(info.classes):
            for path in class_images(info.root / split / cls):
                found.append((path, f"{split}/{cls}/{path.name}", split, label))
    return found


# ----------------------------------------------------------------------------------- findings


def _split_pair(a: str, b: str) -> str:
    """``"train/test"`` for two different splits (in split order), ``""`` for the same one."""
    if a == b:
        return ""
    first, second = sorted((a, b), key=SPLITS.index)
    return f"{first}/{second}"


def _pairs(facts: list[_Facts], tick: Callable[[int, int], None]) -> list[dict[str, Any]]:
    """Identical and near-duplicate pairs, each with its leak (see :class:`AuditReport`)."""
    first_seen: dict[str, int] = {}
    exact: set[tuple[int, int]] = set()
    for j, f in enumerate(facts):
        if f.digest in first_seen:
            exact.add((first_seen[f.digest], j))
        first_seen.setdefault(f.digest, j)
    near = fingerprints.near_duplicates([f.grey for f in facts], [f.signature for f in facts], tick)
    found = [(i, j, 1.0, "exact") for i, j in sorted(exact)]
    found += [(i, j, s, "near") for i, j, s in near if (i, j) not in exact]
    return [
        {
            "a": facts[i].file,
            "b": facts[j].file,
            "score": round(float(score), 4),
            "kind": kind,
            "leak": _split_pair(facts[i].split, facts[j].split),
        }
        for i, j, score, kind in found
    ]


def leak_counts(pairs: list[dict[str, Any]]) -> dict[str, int]:
    """Cross-split pairs per split pair, every pair of splits listed (0 included)."""
    counts = {f"{a}/{b}": 0 for a, b in combinations(SPLITS, 2)}
    for pair in pairs:
        if pair["leak"]:
            counts[pair["leak"]] += 1
    return counts


def _suspects(
    facts: list[_Facts],
    classes: list[str],
    tick: Callable[[int, int], None],
    rows: np.ndarray | None = None,
    probabilities: bool = False,
) -> tuple[list[dict[str, Any]], float]:
    """Suspect labels (see :class:`AuditReport`) and the check model's agreement. ``rows``
    are out-of-sample class probabilities (``probabilities``) or features to fit a model on
    k-fold (by default each image's cheap features)."""
    y = np.array([f.label for f in facts])
    if len(facts) < 2 * suspects.FOLDS or min(np.bincount(y, minlength=len(classes))) < 2:
        return [], 0.0
    if not probabilities:
        x = np.stack([f.features for f in facts]) if rows is None else rows
        folds = min(suspects.FOLDS, int(min(np.bincount(y, minlength=len(classes)))))
        rows = suspects.out_of_sample(x, y, len(classes), folds=folds, tick=tick)
    groups = [f.split for f in facts]  # each split on its own: see the module docstring
    found = [
        {"file": facts[s.index].file, "split": groups[s.index], "given": classes[y[s.index]],
         "predicted": classes[s.predicted], "confidence": s.confidence, "margin": s.margin}
        for s in suspects.by_group(rows, y, groups, SPLITS)
    ]  # fmt: skip
    return found, suspects.agreement(rows, y)


# ------------------------------------------------------------------------- running and cache


class _Steps:
    """One progress bar over the three steps, with the time left, and the time cap."""

    def __init__(
        self, images: int, progress: ProgressFn | None, limit: float | None, names: list[str]
    ) -> None:
        self.progress, self.limit = progress, limit
        self.total = max(1, round(images * sum(_STEP_COST[name] for name in names)))
        self.images, self.offset, self.clock = images, 0.0, TimeLeft()
        self.started = time.monotonic()

    def step(self, name: str, text: str) -> Callable[[int, int], None]:
        """A ``tick(done, total)`` for step ``name``, drawn as ``text``."""
        start, share = self.offset, self.images * _STEP_COST[name]
        self.offset += share

        def tick(done: int, total: int) -> None:
            self.check_time()
            at = round(start + share * done / max(1, total))
            report(self.progress, at, self.total, self.clock.message(text, at, self.total))

        return tick

    def check_time(self) -> None:
        """Stop the audit once it has run for its cap (hosted mode)."""
        if self.limit is not None and time.monotonic() - self.started > self.limit:
            raise AuditError(
                f"the audit was stopped after {duration(self.limit)}, the limit on this "
                "server; audit a smaller dataset, or run catdog on your own computer"
            )


def audit_key(root: str | Path, label_model: str = CHEAP_FEATURES) -> str:
    """The dataset version an audit is cached under: the dataset's folder, every image's path,
    size and modification time, the label check's features and the audit's own version (so
    one workspace's dataset can never stand for another's)."""
    info = scan_dataset(root)
    head = f"audit {AUDIT_VERSION} {info.root.resolve()} {info.classes} {label_model}\n"
    digest = hashlib.sha256(head.encode("utf-8", "surrogateescape"))
    for path, file, _, _ in _images(info):
        try:
            st = path.stat()
            line = f"{file}\0{st.st_size}\0{st.st_mtime_ns}\n"
        except OSError:
            line = f"{file}\0gone\n"
        digest.update(line.encode("utf-8", "surrogateescape"))
    return digest.hexdigest()[:32]


def _cache_file(key: str) -> Path:
    return data_home() / "cache" / "audit" / f"{key}.json"


def write_json_atomic(path: Path, data: Any) -> None:
    """Write ``data`` as JSON so that readers see the old file or the new one, never half:
    a temporary file beside it, flushed to disk, then renamed over it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump(data, f, indent=1)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def cached_audit(root: str | Path, label_model: str = CHEAP_FEATURES) -> AuditReport | None:
    """The cached report of this version of the dataset (its label check on ``label_model``,
    a :class:`LabelFeatures` name), or ``None`` if there is none readable."""
    try:
        data = json.loads(_cache_file(audit_key(root, label_model)).read_text(encoding="utf-8"))
        return AuditReport.from_dict(data)
    except (OSError, ValueError, TypeError):
        return None


_RUNNING: set[str | None] = set()
_RUNNING_LOCK = threading.Lock()


@contextmanager
def _one_at_a_time() -> Iterator[None]:
    """Hold this workspace's audit slot (locally: the process's) for the block."""
    workspace = current_workspace()
    with _RUNNING_LOCK:
        if workspace in _RUNNING:
            raise AuditError(
                "an audit is already running here; wait for it to finish (its result is kept)"
            )
        _RUNNING.add(workspace)
    try:
        yield
    finally:
        with _RUNNING_LOCK:
            _RUNNING.discard(workspace)


def audit_dataset(
    root: str | Path,
    progress: ProgressFn | None = None,
    refresh: bool = False,
    label_features: LabelFeatures | None = None,
) -> AuditReport:
    """Audit a dataset, or return its cached report.

    Args:
        root: the dataset folder.
        progress: called as ``progress(done, total, message)``, the message with the time left.
        refresh: audit again even if this version of the dataset was audited.
        label_features: features for the label check (default: the cheap ones); a report
            is cached per dataset version and features.

    Returns:
        The :class:`AuditReport` (also cached in the data home).

    Raises:
        AuditError: the dataset is too large, another audit of this workspace is running, or
            hosted mode's time limit stopped it.
        catdog.data.datasets.DatasetError: ``root`` is not a dataset.
    """
    info = scan_dataset(root)
    if info.total > MAX_AUDIT_IMAGES:
        raise AuditError(
            f"{info.name} has {info.total:,} images; the audit reads at most "
            f"{MAX_AUDIT_IMAGES:,} (its comparison of every pair grows with the square)"
        )
    label_model = CHEAP_FEATURES if label_features is None else label_features.name
    key = audit_key(root, label_model)
    if not refresh and (cached := cached_audit(root, label_model)) is not None:
        return cached
    policy = current_policy()
    try:  # one audit per workspace; in hosted mode also one on the server at a time
        with _one_at_a_time(), policy.job_slot("audit"):
            limit = HOSTED_AUDIT_SECONDS if policy.hosted else None
            names = ["read", "compare", "labels"]
            if label_features is not None:
                names.append("training" if label_features.probabilities else "features")
            steps = _Steps(info.total, progress, limit, names)
            result = _audit(info, key, steps, label_features)
    except HostedLimitError as exc:
        raise AuditError(str(exc)) from None
    write_json_atomic(_cache_file(key), result.to_dict())
    return result


def _audit(
    info: DatasetInfo, key: str, steps: _Steps, label_features: LabelFeatures | None
) -> AuditReport:
    """The steps of :func:`audit_dataset`: read, compare, (features,) labels."""
    started = time.monotonic()
    listed = _images(info)
    read = steps.step("read", "Reading images")
    facts: list[_Facts] = []
    unreadable = []
    with ThreadPoolExecutor(max_workers=os.cpu_count() or 1) as pool:
        for done, result in enumerate(pool.map(lambda item: _examine(*item), listed), 1):
            if isinstance(result, str):
                unreadable.append({"file": listed[done - 1][1], "reason": result})
            else:
                facts.append(result)
            read(done, len(listed))
    pairs = _pairs(facts, steps.step("compare", "Comparing images"))
    rows, probabilities = None, False
    if label_features is not None:
        probabilities = label_features.probabilities
        tick = (steps.step("training", f"Judging labels with {label_features.name}")
                if probabilities
                else steps.step("features", f"Computing {label_features.name}"))  # fmt: skip
        rows = label_features.extract([f.path for f in facts], tick)
    labels = steps.step("labels", "Checking labels")
    found, agreement = _suspects(facts, list(info.classes), labels, rows, probabilities)
    strange = [
        {"file": f.file, "reasons": r}
        for f in facts
        if (r := odd.reasons(f.width, f.height, f.spread, f.few_colours))
    ]
    return AuditReport(
        dataset=info.name,
        key=key,
        classes=list(info.classes),
        images=len(facts),
        seconds=round(time.monotonic() - started, 1),
        pairs=pairs,
        leaks=leak_counts(pairs),
        suspects=found,
        agreement=round(agreement, 4),
        label_model=CHEAP_FEATURES if label_features is None else label_features.name,
        odd=strange,
        warnings=balance_warnings(info.counts),
        unreadable=unreadable,
    )
