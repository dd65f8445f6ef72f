"""How a handful of photos per class is split into train, validation and test, said in words.

The dataset builder (:mod:`catdog.data.builder`) splits each class on its own (stratified), at
random but repeatably (seeded): 15% of a class validates and 15% tests, at least
:data:`MIN_EVAL` photos each once the class has :data:`MIN_FOR_EVAL` photos, the rest trains.
A class of fewer than :data:`MIN_PHOTOS` photos cannot be split (each split needs one); below
:data:`FEW_TO_VALIDATE` validation photos a warning says the validation accuracy of that class
means little. Photos added to a class later go where its split falls short of this rule for
the new total, so the proportions hold. Plain Python: no Streamlit, no TensorFlow.
"""

from __future__ import annotations

import random
from collections.abc import Mapping, Sequence
from typing import TypeVar

from catdog.data.datasets import SPLITS, DatasetError

# Of each class, this share validates and as much tests (rounded half up); the rest trains.
EVAL_FRACTION = 0.15
# Validation and test photos per class once a class has MIN_FOR_EVAL photos: one photo alone
# is right or wrong, two at least tell a guess from a lean.
MIN_EVAL = 2
MIN_FOR_EVAL = 6
# Each split needs a photo of every class.
MIN_PHOTOS = 3
# Fewer validation photos of a class than this and its validation accuracy moves in steps of
# a third or more: the warning asks for more photos (17 per class give 3).
FEW_TO_VALIDATE = 3

T = TypeVar("T")


def split_counts(n: int, cls: str = "this class") -> tuple[int, int, int]:
    """How many of a class's ``n`` photos train, validate and test.

    Raises:
        DatasetError: fewer than :data:`MIN_PHOTOS` photos; the message says how many to add.
    """
    if n < MIN_PHOTOS:
        raise DatasetError(
            f"{cls} has {n} usable photo{'s' if n != 1 else ''}: at least {MIN_PHOTOS} are "
            f"needed (one to train, one to validate, one to test); add "
            f"{MIN_PHOTOS - n} more"
        )
    held = max(MIN_EVAL, int(n * EVAL_FRACTION + 0.5)) if n >= MIN_FOR_EVAL else 1
    return n - 2 * held, held, held


def split_sentence(cls: str, n: int) -> str:
    """``"20 cats: 14 train, 3 validation, 3 test"``."""
    train, val, test = split_counts(n, cls)
    return f"{n} {cls}: {train} train, {val} validation, {test} test"


def few_photos_warning(cls: str, n: int, validation: int) -> str | None:
    """A sentence when ``cls`` has too few photos (``n``, ``validation`` of them to validate on)
    for its validation accuracy to mean much; None otherwise."""
    if validation >= FEW_TO_VALIDATE:
        return None
    need = next(k for k in range(n, 10_000) if split_counts(k)[1] >= FEW_TO_VALIDATE)
    return (
        f"{cls} has only {n} photos, so {validation} to validate on: too few to tell a good "
        f"model from a lucky one; add {need - n} more ({need} in all) for {FEW_TO_VALIDATE}"
    )


def plan_preview(counts: Mapping[str, int]) -> tuple[list[str], list[str], list[str]]:
    """What a new dataset of ``counts[class]`` photos would be: ``(split sentences, warnings,
    errors)``, one sentence per class each (for a page to show before anything is written)."""
    lines, warnings, errors = [], [], []
    for cls, n in counts.items():
        try:
            lines.append(split_sentence(cls, n))
        except DatasetError as exc:
            errors.append(str(exc))
            continue
        if warning := few_photos_warning(cls, n, split_counts(n)[1]):
            warnings.append(warning)
    return lines, warnings, errors


def assign(items: Sequence[T], seed: int, cls: str) -> dict[str, list[T]]:
    """Split one class's photos by :func:`split_counts`, shuffled by ``seed`` and the class
    name (the same photos and seed give the same split)."""
    shuffled = list(items)
    random.Random(f"{seed}:{cls}").shuffle(shuffled)
    train, val, _ = split_counts(len(shuffled), cls)
    return {
        "train": shuffled[:train],
        "validation": shuffled[train : train + val],
        "test": shuffled[train + val :],
    }


def assign_added(
    items: Sequence[T], have: Mapping[str, int], seed: int, cls: str
) -> dict[str, list[T]]:
    """Split photos added to a class that already ``have[split]`` photos: each split gets
    what it lacks of :func:`split_counts` for the new total (validation first, then test), the
    rest trains; nothing already there moves."""
    shuffled = list(items)
    random.Random(f"{seed}:{cls}:added").shuffle(shuffled)
    total = sum(have.values()) + len(shuffled)
    target = dict(zip(SPLITS, split_counts(total, cls), strict=True))
    out: dict[str, list[T]] = {s: [] for s in SPLITS}
    for split in ("validation", "test"):
        lacking = max(0, target[split] - have.get(split, 0))
        out[split], shuffled = shuffled[:lacking], shuffled[lacking:]
    out["train"] = shuffled
    return out


def added_sentence(cls: str, added: Mapping[str, int], total: int) -> str:
    """``"cats: 10 added (7 train, 2 validation, 1 test), 30 in all"``."""
    n = sum(added.values())
    parts = ", ".join(f"{added.get(s, 0)} {s}" for s in SPLITS)
    return f"{cls}: {n} added ({parts}), {total} in all"
