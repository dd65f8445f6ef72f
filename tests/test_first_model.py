"""A new user's journey in a real browser, locally and on a hosted server: loose photo files
and a camera photo become a 2-class dataset (a bad file refused in one line, the good ones
kept) and, locally, a 3-class one; the recommended recipe trains one epoch, and its first model
classifies a photo.

Skips (saying why) when Debian's Chromium or the playwright package is missing.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from builders import image_bytes, write
from journey import CHROMIUM, CHROMIUM_ARGS, VIEWPORT, Journey, serve

from catdog.data.datasets import scan_dataset

pytestmark = [pytest.mark.browser, pytest.mark.slow]
CLASSES = ("cats", "dogs", "owls")


def loose_photos(folder: Path, n: int = 6) -> dict[str, list[Path]]:
    """``n`` tiny photo files per class, and a text file among the cats."""
    photos = {
        cls: [write(folder / cls / f"IMG_{i}.jpg", image_bytes(k, 64, seed=10 * k + i))
              for i in range(n)]
        for k, cls in enumerate(CLASSES)
    }  # fmt: skip
    photos["cats"].append(write(folder / "cats" / "notes.jpg", b"not a photo at all"))
    return photos


def journey_in(home: Path, photos: dict[str, list[Path]], hosted: bool) -> None:
    """Both datasets, one training, one prediction; checks what each step shows."""
    from playwright.sync_api import sync_playwright

    extra = {"CATDOG_HOSTED": "1"} if hosted else {}
    with serve(home, **extra) as url, sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        context = browser.new_context(viewport=VIEWPORT, permissions=["camera"])
        trip = Journey(context.new_page(), url)
        try:
            trip.open()
            two = {c: photos[c] for c in CLASSES[:2]}
            said = trip.new_dataset(two, camera="dogs")
            assert said.startswith("Made dataset my-photos from 13 photo(s).")
            assert any("cats/notes.jpg is not an image (got 18 bytes of text) — left out."
                       in alert for alert in trip.alerts)  # fmt: skip
            if not hosted:  # (hosted, the 2-class one trains: the test stays short)
                three = {c: photos[c][:6] for c in CLASSES}
                made = trip.new_dataset(three)
                assert made.startswith("Made dataset my-photos-2 from 18 photo")
            trip.train(epochs=1)
            shown = trip.predict(photos["cats"][0], classes=2 if hosted else 3)
            assert "dogs:" in shown and "cats:" in shown and "%" in shown
            assert not trip.errors()
        finally:
            trip.page.screenshot(path=str(home / "last.png"))
            browser.close()
    root = home / "workspaces" if hosted else home / "datasets"
    made = {p.name: p for p in root.rglob("my-photos*") if p.is_dir()}
    assert scan_dataset(made["my-photos"]).classes == ("cats", "dogs")
    assert scan_dataset(made["my-photos"]).total == 13  # 6 + 6 files and the camera photo
    if not hosted:
        assert scan_dataset(made["my-photos-2"]).classes == CLASSES


@pytest.mark.parametrize("hosted", [False, True], ids=["local", "hosted"])
def test_loose_photos_to_a_first_prediction(tmp_path: Path, hosted: bool) -> None:
    if not CHROMIUM.exists():
        pytest.skip(f"needs Debian's Chromium at {CHROMIUM} (apt-get install chromium)")
    pytest.importorskip("playwright.sync_api", reason="needs `pip install playwright`")
    photos = loose_photos(tmp_path / "photos")
    home = tmp_path / "home"
    home.mkdir()
    journey_in(home, photos, hosted)
