"""catdog.data.stats: a dataset's counts and image sizes as rows for charts."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from catdog.data.datasets import scan_dataset
from catdog.data.stats import count_rows, size_rows, size_summary


def test_counts_and_sizes(dataset_factory: Callable[..., Path]) -> None:
    info = scan_dataset(dataset_factory(counts=(3, 2, 1), size=40))
    rows = count_rows(info)
    assert rows[0] == {"split": "train", "class": "cats", "images": 3}
    assert sum(r["images"] for r in rows) == info.total == 12
    sizes = size_rows(info.root)
    assert len(sizes) == 12
    assert {(r["width"], r["height"]) for r in sizes} == {(40, 40)}
    assert size_summary(sizes)["median_width"] == 40
    assert size_summary([]) == {}
