"""A dataset's two overview charts as plain SVG: images per split and class, and image sizes.

The Dataset page is the first page most visitors open, and a Plotly chart costs each visitor's
browser about a second of its main thread the first time (the Plotly library is loaded and
compiled; measured with Chromium's own counters in ``benchmarks/profile_pages.py``), several
seconds on a phone. These two charts need no zoom, so they are drawn here as a few kilobytes of
SVG the browser shows at once (given to ``st.markdown`` as HTML); a ``<title>`` in each mark is
its tooltip. Every text from the data (class and split names) is escaped. Plain Python: no
Plotly, no Streamlit.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from html import escape as _escape
from typing import Any

Rows = Sequence[Mapping[str, Any]]
Range = tuple[float, float]
Scale = Callable[[float], float]

# Run and class colours, as in catdog.figures (which imports Plotly, not needed here).
PALETTE = ("#1f77b4", "#e4572e", "#2ca02c", "#9467bd", "#8c564b", "#17becf", "#bcbd22")
FONT = 'font-family="sans-serif" font-size="12" fill="#31333f"'
WIDTH, HEIGHT = 480, 340  # the drawing's own units; it scales to the column's width
SIZE_BINS = 30  # bars of each margin's histogram
MERGE_PX = 2  # points of one class this close on the chart are drawn as one (with their count)
MOST_POINTS = 300  # points of one class at most (the cells grow until there are no more)


def escape(text: str) -> str:
    """``text`` safe inside SVG markup, on one line."""
    return " ".join(_escape(text).split())


def nice_ticks(top: float, count: int = 5, low: float = 0.0) -> list[float]:
    """Round tick values from ``low`` to ``top`` (about ``count`` of them): from 0 (or the
    first round value above ``low``) to at least ``top`` when ``low`` is 0, within
    ``[low, top]`` otherwise."""
    if top <= low:
        return [low, low + 1.0]
    raw = (top - low) / count
    magnitude = 10 ** math.floor(math.log10(raw))
    step = next(m * magnitude for m in (1, 2, 2.5, 5, 10) if m * magnitude >= raw)
    first = math.ceil(low / step - 1e-9)
    if low == 0:
        return [k * step for k in range(math.ceil(top / step - 1e-9) + 1)]
    return [k * step for k in range(first, math.floor(top / step + 1e-9) + 1)]


def _number(value: float) -> str:
    return f"{value:,.0f}" if value == int(value) else f"{value:,.1f}"


def _svg(body: list[str], label: str) -> str:
    # The opening tag alone on its line, and no blank line: Markdown passes the whole drawing
    # through as one HTML block (no emphasis made of a class name's underscores).
    return "\n".join([
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {WIDTH} {HEIGHT}" width="100%" '
        f'role="img" aria-label="{escape(label)}" {FONT}>',
        f"<title>{escape(label)}</title>", *body, "</svg>",
    ])  # fmt: skip


def _legend(names: Sequence[str], y: float = 14) -> list[str]:
    """A row of coloured squares and names at the top."""
    parts, x = [], 48.0
    for k, name in enumerate(names):
        colour = PALETTE[k % len(PALETTE)]
        parts.append(f'<rect x="{x:.0f}" y="{y - 9}" width="10" height="10" fill="{colour}"/>')
        parts.append(f'<text x="{x + 14:.0f}" y="{y}">{escape(name)}</text>')
        x += 24 + 7 * len(name)
    return parts


def split_counts_svg(rows: Rows) -> str:
    """Grouped bars of images per split and class (each bar labelled with its count), from rows
    ``{split, class, images}``."""
    splits = list(dict.fromkeys(str(r["split"]) for r in rows))
    classes = list(dict.fromkeys(str(r["class"]) for r in rows))
    count = {(str(r["split"]), str(r["class"])): int(r["images"]) for r in rows}
    left, right, top, bottom = 48, WIDTH - 10, 40, HEIGHT - 40
    ticks = nice_ticks(max(count.values(), default=0))
    scale = (bottom - top) / ticks[-1]
    body = _legend(classes)
    body += _y_grid(ticks, lambda t: bottom - t * scale, left, right)
    group = (right - left) / max(len(splits), 1)
    bar = group * 0.8 / max(len(classes), 1)
    for i, split in enumerate(splits):
        centre = left + group * (i + 0.5)
        body.append(f'<text x="{centre:.1f}" y="{bottom + 18}" text-anchor="middle">'
                    f"{escape(split)}</text>")  # fmt: skip
        for k, cls in enumerate(classes):
            n = count.get((split, cls), 0)
            x = left + group * (i + 0.1) + bar * k
            height = n * scale
            body.append(
                f'<rect x="{x:.1f}" y="{bottom - height:.1f}" width="{bar * 0.92:.1f}" '
                f'height="{height:.1f}" fill="{PALETTE[k % len(PALETTE)]}"><title>'
                f"{escape(split)}, {escape(cls)}: {n:,} images</title></rect>"
                f'<text x="{x + bar * 0.46:.1f}" y="{bottom - height - 4:.1f}" '
                f'text-anchor="middle" font-size="11">{n:,}</text>'
            )  # fmt: skip
    body.append(f'<text x="{(left + right) / 2}" y="{HEIGHT - 6}" text-anchor="middle">'
                "Split</text>")  # fmt: skip
    body.append(f'<text transform="translate(12 {(top + bottom) / 2}) rotate(-90)" '
                'text-anchor="middle">Images</text>')  # fmt: skip
    return _svg(body, "Images per split and class")


def _axis(values: Sequence[int]) -> Range:
    """A value range with a little room on both sides."""
    low, high = min(values), max(values)
    pad = max((high - low) * 0.05, 1.0)
    return max(low - pad, 0.0), high + pad


def image_sizes_svg(rows: Rows) -> str:
    """Every image's width against its height, coloured by class, with histograms of widths
    (above) and heights (right), from rows ``{class, width, height}``.

    Images of one class drawn within :data:`MERGE_PX` of each other are one point, bigger the
    more images it stands for (its tooltip says how many): the drawing stays small however
    many images there are."""
    classes = list(dict.fromkeys(str(r["class"]) for r in rows))
    widths = [int(r["width"]) for r in rows]
    heights = [int(r["height"]) for r in rows]
    if not rows:
        return _svg(_legend([]), "Image sizes (pixels)")
    left, right, top, bottom = 56, WIDTH - 70, 80, HEIGHT - 40
    (x0, x1), (y0, y1) = _axis(widths), _axis(heights)

    def px(w: float) -> float:
        return left + (w - x0) / (x1 - x0) * (right - left)

    def py(h: float) -> float:
        return bottom - (h - y0) / (y1 - y0) * (bottom - top)

    body = _legend(classes)
    body += _size_axes((left, right, top, bottom), (x0, x1), (y0, y1), px, py)
    for k, cls in enumerate(classes):
        colour = PALETTE[k % len(PALETTE)]
        mine = [r for r in rows if str(r["class"]) == cls]
        body += _size_points(mine, cls, colour, px, py)
        body += _margins(mine, colour, (x0, x1), (y0, y1), (left, right, top, bottom))
    return _svg(body, "Image sizes (pixels)")


def _size_axes(box: tuple[int, int, int, int], xs: Range, ys: Range, px: Scale, py: Scale
               ) -> list[str]:  # fmt: skip
    """Ticks, grid lines and titles of the size chart."""
    left, right, top, bottom = box
    body = [f'<rect x="{left}" y="{top}" width="{right - left}" height="{bottom - top}" '
            'fill="none" stroke="#cccccc"/>']  # fmt: skip
    body += _x_grid([t for t in nice_ticks(xs[1], low=xs[0]) if xs[0] <= t <= xs[1]], px,
                    top, bottom)  # fmt: skip
    body += _y_grid([t for t in nice_ticks(ys[1], low=ys[0]) if ys[0] <= t <= ys[1]], py,
                    left, right)  # fmt: skip
    body.append(f'<text x="{(left + right) / 2}" y="{HEIGHT - 6}" text-anchor="middle">'
                "Width (px)</text>")  # fmt: skip
    body.append(f'<text transform="translate(12 {(top + bottom) / 2}) rotate(-90)" '
                'text-anchor="middle">Height (px)</text>')  # fmt: skip
    return body


def _x_grid(ticks: list[float], px: Scale, top: float, bottom: float) -> list[str]:
    """Vertical grid lines at ``ticks``, labelled below."""
    return [f'<line x1="{px(t):.1f}" x2="{px(t):.1f}" y1="{top}" y2="{bottom}" stroke="#eeeeee"/>'
            f'<text x="{px(t):.1f}" y="{bottom + 16}" text-anchor="middle">{_number(t)}</text>'
            for t in ticks]  # fmt: skip


def _y_grid(ticks: list[float], py: Scale, left: float, right: float) -> list[str]:
    """Horizontal grid lines at ``ticks``, labelled on the left."""
    return [f'<line x1="{left}" x2="{right}" y1="{py(t):.1f}" y2="{py(t):.1f}" stroke="#eeeeee"/>'
            f'<text x="{left - 6}" y="{py(t) + 4:.1f}" text-anchor="end">{_number(t)}</text>'
            for t in ticks]  # fmt: skip


def _size_points(rows: Rows, cls: str, colour: str, px: Scale, py: Scale) -> list[str]:
    """One class's points, merged by position on the chart (cells of :data:`MERGE_PX`, doubled
    until there are at most :data:`MOST_POINTS`)."""
    merge = MERGE_PX
    while True:
        cells: dict[tuple[int, int], Counter[tuple[int, int]]] = {}
        for r in rows:
            w, h = int(r["width"]), int(r["height"])
            cells.setdefault((round(px(w) / merge), round(py(h) / merge)), Counter())[w, h] += 1
        if len(cells) <= MOST_POINTS:
            break
        merge *= 2
    body = [f'<g fill="{colour}" fill-opacity="0.5">']
    for sizes in cells.values():
        (w, h), _ = sizes.most_common(1)[0]
        n = sum(sizes.values())
        radius = min(2.5 + 1.2 * math.log2(n), 9)
        shown = f"{w}×{h} px" if len(sizes) == 1 else f"about {w}×{h} px"
        body.append(f'<circle cx="{px(w):.0f}" cy="{py(h):.0f}" r="{radius:.1f}"><title>'
                    f"{escape(cls)}: {shown}, {n:,} image(s)</title></circle>")  # fmt: skip
    return [*body, "</g>"]


def _margins(rows: Rows, colour: str, xs: Range, ys: Range, box: tuple[int, int, int, int]
             ) -> list[str]:  # fmt: skip
    """One class's histograms: widths above the plot, heights to its right."""
    left, right, top, bottom = box
    body = []
    for values, (low, high), across in (
        ([int(r["width"]) for r in rows], xs, True),
        ([int(r["height"]) for r in rows], ys, False),
    ):
        step = (high - low) / SIZE_BINS
        bins = Counter(min(int((v - low) / step), SIZE_BINS - 1) for v in values)
        most = max(bins.values(), default=1)
        for b, n in bins.items():
            length = n / most * 36
            if across:
                x = left + b * (right - left) / SIZE_BINS
                body.append(f'<rect x="{x:.1f}" y="{top - 4 - length:.1f}" '
                            f'width="{(right - left) / SIZE_BINS:.1f}" height="{length:.1f}" '
                            f'fill="{colour}" fill-opacity="0.5"/>')  # fmt: skip
            else:
                y = bottom - (b + 1) * (bottom - top) / SIZE_BINS
                body.append(f'<rect x="{right + 4}" y="{y:.1f}" width="{length:.1f}" '
                            f'height="{(bottom - top) / SIZE_BINS:.1f}" fill="{colour}" '
                            f'fill-opacity="0.5"/>')  # fmt: skip
    return body
