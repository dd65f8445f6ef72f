"""A dataset's numbers as rows for charts and tables: images per split and class, image sizes.

Plain Python: no Streamlit, no TensorFlow.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from catdog.data.datasets import SPLITS, DatasetInfo, image_sizes


def count_rows(info: DatasetInfo) -> list[dict[str, Any]]:
    """Images per split and class: ``[{"split", "class", "images"}]`` in split, class order."""
    return [
        {"split": split, "class": cls, "images": info.counts[split][cls]}
        for split in SPLITS
        for cls in info.classes
    ]


def size_rows(root: str | Path) -> list[dict[str, Any]]:
    """Every image's split, class, file name, width and height (headers only: fast)."""
    keys = ("split", "class", "file", "width", "height")
    return [dict(zip(keys, row, strict=True)) for row in image_sizes(root)]


def size_summary(rows: Sequence[dict[str, Any]]) -> dict[str, int]:
    """Smallest, median and largest width and height of :func:`size_rows` output."""
    if not rows:
        return {}
    summary = {}
    for side in ("width", "height"):
        values = sorted(int(r[side]) for r in rows)
        summary[f"min_{side}"] = values[0]
        summary[f"median_{side}"] = values[len(values) // 2]
        summary[f"max_{side}"] = values[-1]
    return summary
