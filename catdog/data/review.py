"""The review queue: what to do with each image an audit named, and a new dataset version.

People decide per image: **keep** it, **drop** it, or **move** it to another class. Each
decision is saved at once (:func:`decide`, written atomically) beside the dataset: in its own
hidden ``.catdog/review.json``, or, for a shared example seen from a workspace (read-only
there), in the workspace's ``reviews/NAME.json``. The dataset itself is never changed:
:func:`apply_review` writes a **new dataset** (``NAME-reviewed``, ``NAME-reviewed-2`` …) with
every image copied except the dropped ones, the moved ones in their new class folder, so runs
on the two versions can be compared.

Plain Python: no TensorFlow, no Streamlit.
"""

from __future__ import annotations

import json
import shutil
import tempfile
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path, PurePosixPath

from catdog.data.choices import check_new_dataset_name
from catdog.data.datasets import (
    MANIFEST_NAME,
    SPLITS,
    DatasetError,
    DatasetInfo,
    class_images,
    scan_dataset,
)
from catdog.data.health import write_json_atomic
from catdog.data.importer import work_dir_prefix
from catdog.data.paths import datasets_dir, is_shared, workspace_dir
from catdog.policy import current_policy
from catdog.progress import ProgressFn, report

ACTIONS = ("keep", "drop", "move")
REVIEW_FOLDER = ".catdog"  # hidden: never listed as a class, a split or an image
REVIEW_FILE = "review.json"


@dataclass(frozen=True)
class Decision:
    """What to do with one image: ``keep``, ``drop``, or ``move`` to class ``to``."""

    action: str
    to: str | None = None

    def describe(self) -> str:
        """``"keep"``, ``"drop"`` or ``"move to dogs"``."""
        return f"move to {self.to}" if self.action == "move" else self.action


def review_path(root: str | Path) -> Path:
    """Where the decisions on dataset ``root`` are kept (see the module docstring)."""
    root = Path(root)
    if is_shared(root):
        return workspace_dir() / "reviews" / f"{root.name}.json"  # type: ignore[operator]
    return root / REVIEW_FOLDER / REVIEW_FILE


def load_review(root: str | Path) -> dict[str, Decision]:
    """The decisions saved for a dataset, by image (``train/cats/cat.1.jpg``); none if there
    are none or the file cannot be read."""
    try:
        saved = json.loads(review_path(root).read_text(encoding="utf-8"))
        return {
            file: Decision(d["action"], d.get("to"))
            for file, d in saved["decisions"].items()
            if d.get("action") in ACTIONS
        }
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return {}


def _save(root: Path, decisions: dict[str, Decision]) -> None:
    data = {
        "dataset": root.name,
        "updated": datetime.now(UTC).isoformat(timespec="seconds"),
        "decisions": {
            file: {"action": d.action} | ({"to": d.to} if d.to else {})
            for file, d in sorted(decisions.items())
        },
    }
    write_json_atomic(review_path(root), data)


def _check_file(info: DatasetInfo, file: str) -> tuple[str, str, str]:
    """``(split, class, name)`` of an image named as in an audit report, if it is one of the
    dataset's images."""
    parts = PurePosixPath(file).parts
    if (
        len(parts) != 3
        or parts[0] not in SPLITS
        or parts[1] not in info.classes
        or info.root / file not in class_images(info.root / parts[0] / parts[1])
    ):
        raise DatasetError(
            f"{file!r} is not an image of {info.name} (expected SPLIT/CLASS/FILE, as an audit "
            "names them)"
        )
    return parts[0], parts[1], parts[2]


def decide(root: str | Path, file: str, action: str, to: str | None = None) -> Decision:
    """Record what to do with one image, saved at once (``keep`` forgets any earlier choice).

    Args:
        root: the dataset folder.
        file: the image as an audit names it (``train/cats/cat.1.jpg``).
        action: ``keep``, ``drop`` or ``move``.
        to: for ``move``, the class it belongs to (another of the dataset's classes).

    Raises:
        DatasetError: the image, the action or the class is not one of the dataset's.
    """
    info = scan_dataset(root)
    _, cls, _ = _check_file(info, file)
    if action not in ACTIONS:
        raise DatasetError(f"unknown decision {action!r}; use one of {', '.join(ACTIONS)}")
    if action == "move" and (to not in info.classes or to == cls):
        others = ", ".join(c for c in info.classes if c != cls)
        raise DatasetError(f"{file} can move to {others}, not to {to!r}")
    decision = Decision(action, to if action == "move" else None)
    decisions = load_review(info.root)
    if action == "keep":
        decisions.pop(file, None)
    else:
        decisions[file] = decision
    _save(info.root, decisions)
    return decision


def _free_name(folder: Path, name: str) -> str:
    """``name``, or ``stem-2.jpg``, ``stem-3.jpg`` … if ``folder`` already holds it."""
    stem, suffix = Path(name).stem, Path(name).suffix
    candidate, k = name, 1
    while (folder / candidate).exists():
        k += 1
        candidate = f"{stem}-{k}{suffix}"
    return candidate


def next_version_name(root: str | Path) -> str:
    """The name the next reviewed version of a dataset gets: ``NAME-reviewed``, then
    ``NAME-reviewed-2`` … (the first not taken)."""
    base = f"{Path(root).name[:50]}-reviewed"
    name, k = base, 1
    while (datasets_dir() / name).exists():
        k += 1
        name = f"{base}-{k}"
    return name


def apply_review(
    root: str | Path, name: str | None = None, progress: ProgressFn | None = None
) -> Path:
    """Write a new dataset: the images of ``root`` with the saved decisions applied.

    The new dataset is built in a hidden folder beside the others and renamed into place when
    complete; ``root`` is only read.

    Args:
        root: the dataset reviewed.
        name: the new dataset's name (default :func:`next_version_name`).
        progress: called as ``progress(done, total, message)`` while copying.

    Returns:
        The new dataset's folder.

    Raises:
        DatasetError: nothing to apply (no drop or move saved), the name is not usable or taken.
        catdog.policy.HostedLimitError: in hosted mode, the copy would exceed a cap, or a
            read-only visitor.
    """
    policy = current_policy()
    policy.check_writable("writing a reviewed dataset")
    info = scan_dataset(root)
    decisions = load_review(info.root)
    if not decisions:
        raise DatasetError(
            f"no image of {info.name} is marked to drop or move; decide on some first"
        )
    out = check_new_dataset_name(name or next_version_name(info.root))
    if out.exists():
        raise DatasetError(f"a dataset {out.name} exists already; choose another name")
    plan = _plan(info, decisions)
    policy.check_dataset_images(len(plan), out.name)
    policy.check_quota(sum(source.stat().st_size for source, _ in plan), out.name)
    work = Path(tempfile.mkdtemp(dir=datasets_dir(), prefix=work_dir_prefix(out.name)))
    try:
        _copy(info, plan, work, progress)
        _write_manifest(info, decisions, plan, work)
        work.rename(out)
    except BaseException:
        shutil.rmtree(work, ignore_errors=True)
        raise
    return out


def _plan(info: DatasetInfo, decisions: dict[str, Decision]) -> list[tuple[Path, str]]:
    """``(source, split/class)`` of every image the new version holds."""
    plan = []
    for split in SPLITS:
        for cls in info.classes:
            for path in class_images(info.root / split / cls):
                decision = decisions.get(f"{split}/{cls}/{path.name}", Decision("keep"))
                if decision.action == "drop":
                    continue
                to = decision.to if decision.action == "move" and decision.to else cls
                plan.append((path, f"{split}/{to}"))
    return plan


def _copy(
    info: DatasetInfo, plan: list[tuple[Path, str]], work: Path, progress: ProgressFn | None
) -> None:
    for split in SPLITS:
        for cls in info.classes:
            (work / split / cls).mkdir(parents=True, exist_ok=True)
    for done, (source, folder) in enumerate(plan, 1):
        target = work / folder
        shutil.copyfile(source, target / _free_name(target, source.name))
        report(progress, done, len(plan), "Writing the new version")


def _write_manifest(
    info: DatasetInfo, decisions: dict[str, Decision], plan: list[tuple[Path, str]], work: Path
) -> None:
    counts = {s: {c: 0 for c in info.classes} for s in SPLITS}
    for _, folder in plan:
        split, cls = folder.split("/")
        counts[split][cls] += 1
    manifest = {
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
        "derived_from": info.name,
        "review": {f: d.describe() for f, d in sorted(decisions.items())},
        "counts": counts,
    }
    (work / MANIFEST_NAME).write_text(json.dumps(manifest, indent=1) + "\n", encoding="utf-8")
