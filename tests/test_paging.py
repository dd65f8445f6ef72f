"""catdog.paging: a long list a page at a time."""

from __future__ import annotations

from catdog.paging import page_count, page_items


def test_paging() -> None:
    items = list(range(40))
    assert page_count(40, 18) == 3 and page_count(0, 18) == 1
    assert page_items(items, 1, 18) == list(range(18))
    assert page_items(items, 3, 18) == list(range(36, 40))
    assert page_items(items, 9, 18) == list(range(36, 40))  # clamped to the last page
