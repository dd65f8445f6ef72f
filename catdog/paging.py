"""Showing a long list a page at a time."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TypeVar

T = TypeVar("T")


def page_count(total: int, per_page: int) -> int:
    """Number of pages needed for ``total`` items (at least 1)."""
    return max(1, math.ceil(total / per_page))


def page_items(items: Sequence[T], page: int, per_page: int) -> list[T]:
    """The items on 1-based page ``page`` (clamped to the valid range)."""
    page = min(max(page, 1), page_count(len(items), per_page))
    start = (page - 1) * per_page
    return list(items[start : start + per_page])
