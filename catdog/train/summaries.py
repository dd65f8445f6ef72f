"""The layer tables of every preset at its default settings, kept beside the code.

The Train page shows the chosen model's layers and parameter count. Building a model takes
TensorFlow, and importing TensorFlow takes seconds on a small CPU: a visitor who opens the Train
page in the first seconds after a server starts would wait for it. So the tables of the presets
as they come (their default image size, the smaller one they take on a slow machine, and the
64 and 128 px the recommended recipes use; their default dropout; 2 or 3 classes) are written
once into
``preset_summaries.json`` and read from there without TensorFlow; any other setting builds the
model. ``tests/test_summaries.py`` builds every one of them again and compares, so the file
cannot drift from the code; ``python -m catdog.train.summaries`` writes it anew.
"""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

from catdog.train.presets import PRESETS, get_preset

FILE = Path(__file__).with_name("preset_summaries.json")
CLASS_COUNTS = (2, 3)  # the demo's and the seed's 2, a first dataset's 2 or 3
RECIPE_SIZES = (64, 128)  # catdog.train.recommend's image sizes


def summary_key(network: str, image_size: int, num_classes: int, dropout: float) -> str:
    """The file's key of a model: its network and what changes its layers."""
    return f"{network}|{int(image_size)}|{int(num_classes)}|{float(dropout):g}"


COLUMNS = ("layer", "type", "output_shape", "params")


@cache
def _known() -> dict[str, list[list[Any]]]:
    try:
        return json.loads(FILE.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}


def known_summary(
    network: str, image_size: int, num_classes: int, dropout: float
) -> list[dict[str, Any]] | None:
    """The stored layer table (as :func:`catdog.model.registry.summary_rows` gives it), or
    ``None`` for settings the file does not hold."""
    rows = _known().get(summary_key(network, image_size, num_classes, dropout))
    return None if rows is None else [dict(zip(COLUMNS, row, strict=True)) for row in rows]


def default_settings() -> list[tuple[str, int, int, float]]:
    """``(network, image size, classes, dropout)`` of every preset as it comes."""
    found = []
    for name in PRESETS:
        spec = get_preset(name)
        sizes = {spec.image_size, spec.slow_image_size, *RECIPE_SIZES} - {None}
        for size in sizes:
            if size < spec.min_image_size:
                continue
            for classes in CLASS_COUNTS:
                found.append((spec.network, int(size), classes, float(spec.dropout)))
    return sorted(set(found))


def build_summary(network: str, image_size: int, num_classes: int, dropout: float
                  ) -> list[dict[str, Any]]:  # fmt: skip
    """Build the model in a fresh Keras session and return its layer table."""
    from catdog.model.backend import keras
    from catdog.model.registry import build_model, summary_rows

    keras.backend.clear_session()  # layer names as a first build gives them
    model = build_model(network, image_size=image_size, num_classes=num_classes, dropout=dropout)
    return summary_rows(model)


def write_known_summaries(path: Path = FILE) -> int:
    """Build every preset's default models and write their tables; how many."""
    tables = {summary_key(*s): [[row[c] for c in COLUMNS] for row in build_summary(*s)]
              for s in default_settings()}  # fmt: skip
    text = json.dumps(tables, sort_keys=True, separators=(",", ":"))
    path.write_text(text.replace('],"', '],\n"') + "\n", encoding="utf-8")
    return len(tables)


if __name__ == "__main__":
    print(f"wrote {write_known_summaries()} layer tables to {FILE}")
