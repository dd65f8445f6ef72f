"""The protocol-level Streamlit client of ``benchmarks/remote_visitors.py``
(``benchmarks/st_client.py``) against a real hosted server (``CATDOG_HOSTED=1 streamlit run
app.py`` on a small demo): it must see what a browser sees, in a workspace of its own."""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Iterator

import pytest
from journey import serve
from test_browser import _home_with_demo

from benchmarks.st_client import Client

pytestmark = pytest.mark.slow  # a server starts (a few seconds)


@pytest.fixture(scope="module")
def hosted(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with serve(_home_with_demo(tmp_path_factory, "remote_client"), CATDOG_HOSTED="1") as url:
        yield url


async def _home_then_dataset(url: str) -> dict:
    """One new visitor: Home, then the Dataset page; what it saw."""
    client = Client(url, timeout=120)
    try:
        started = time.monotonic()
        await client.open("/")
        await client.settled(started)
        seen = {"workspace": client.query, "home": client.text()}
        await client.settled(await client.switch_page("dataset"))
        return {**seen, "dataset": client.text(), "images": client.images(),
                "query": client.query, "received": client.http.received}  # fmt: skip
    finally:
        await client.close()


def test_two_clients_see_home_and_the_dataset_page_each_in_its_own_workspace(hosted: str) -> None:
    async def both() -> list[dict]:
        return await asyncio.gather(_home_then_dataset(hosted), _home_then_dataset(hosted))

    first, second = asyncio.run(both())
    for seen in (first, second):
        assert re.fullmatch(r"ws=[A-Za-z0-9_-]{44}", seen["workspace"])
        assert seen["query"] == seen["workspace"]  # the page switch kept the workspace
        assert "Training runs: 0" in seen["home"]
        assert "Images per split and class" in seen["dataset"]
        assert "Image sizes (pixels)" in seen["dataset"]
        assert seen["images"] >= 1  # the thumbnails, fetched like a browser's
        assert seen["received"] > 1_000_000  # the frontend's scripts too
    assert first["workspace"] != second["workspace"]
