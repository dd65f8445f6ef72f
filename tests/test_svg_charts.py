"""catdog.svg_charts: the Dataset page's two charts, parsed as the XML they are."""

from __future__ import annotations

import random
import re
import xml.etree.ElementTree as ET

from catdog.svg_charts import MOST_POINTS, image_sizes_svg, nice_ticks, split_counts_svg

SVG = "{http://www.w3.org/2000/svg}"


def _titles(svg: str, tag: str) -> list[str]:
    root = ET.fromstring(svg)
    return [mark.find(f"{SVG}title").text for mark in root.iter(f"{SVG}{tag}")
            if mark.find(f"{SVG}title") is not None]  # fmt: skip


def test_split_counts_draw_one_labelled_bar_per_split_and_class() -> None:
    rows = [{"split": s, "class": c, "images": n} for s, c, n in
            (("train", "cats", 1000), ("train", "dogs", 990), ("test", "cats", 7))]  # fmt: skip
    svg = split_counts_svg(rows)
    assert _titles(svg, "rect") == ["train, cats: 1,000 images", "train, dogs: 990 images",
                                    "test, cats: 7 images", "test, dogs: 0 images"]  # fmt: skip
    labels = [t.text for t in ET.fromstring(svg).iter(f"{SVG}text")]
    assert {"1,000", "990", "7", "cats", "dogs", "train", "test", "Split", "Images"} <= set(labels)
    bars = {
        m.find(f"{SVG}title").text: float(m.get("height"))
        for m in ET.fromstring(svg).iter(f"{SVG}rect")
        if m.find(f"{SVG}title") is not None
    }
    assert bars["train, cats: 1,000 images"] > bars["train, dogs: 990 images"] > 0
    assert bars["test, dogs: 0 images"] == 0


def test_names_from_the_data_are_escaped_and_kept_on_one_line() -> None:
    rows = [{"split": "train", "class": '<script>alert("x")</script>\n\n*a_b*', "images": 3},
            {"split": "train", "class": "dogs", "images": 2}]  # fmt: skip
    svg = split_counts_svg(rows)
    assert "<script>" not in svg and "&lt;script&gt;" in svg
    assert "\n\n" not in svg  # no blank line: Markdown keeps the drawing one raw HTML block
    assert svg.split("\n", 1)[0].startswith("<svg") and svg.split("\n", 1)[0].endswith(">")
    sizes = image_sizes_svg([{"class": "<img src=x onerror=alert(1)>", "width": 9, "height": 9}])
    assert "<img" not in sizes
    ET.fromstring(sizes)


def test_image_sizes_merge_identical_sizes_and_say_how_many() -> None:
    rows = [{"class": c, "width": 500 - 100 * (k % 2), "height": 375}
            for c in ("cats", "dogs") for k in range(2000)]  # fmt: skip
    titles = sorted(_titles(image_sizes_svg(rows), "circle"))
    expected = [f"{c}: {w}×375 px, 1,000 image(s)" for c in ("cats", "dogs") for w in (400, 500)]
    assert titles == expected


def test_image_sizes_stay_small_however_many_sizes_there_are() -> None:
    rng = random.Random(0)
    rows = [{"class": c, "width": rng.randint(50, 4000), "height": rng.randint(50, 3000)}
            for c in ("cats", "dogs") for _ in range(20_000)]  # fmt: skip
    svg = image_sizes_svg(rows)
    points = _titles(svg, "circle")
    assert len(points) <= 2 * MOST_POINTS
    counted = sum(int(re.search(r"([\d,]+) image\(s\)", t).group(1).replace(",", ""))
                  for t in points)  # fmt: skip
    assert counted == 40_000  # every image is in some point
    assert len(svg) < 120_000


def test_nice_ticks_are_round_and_cover_the_range() -> None:
    assert nice_ticks(1000) == [0, 200, 400, 600, 800, 1000]
    assert nice_ticks(7) == [0, 2, 4, 6, 8]
    assert nice_ticks(266, low=114) == [150, 200, 250]
    assert nice_ticks(0) == [0.0, 1.0]
