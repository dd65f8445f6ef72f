"""The dashboard's figures: training curves, evaluation (confusion matrix, ROC, precision-recall,
reliability). (A dataset's counts and sizes are drawn as SVG: catdog.svg_charts.)

Each function takes plain values (history rows, a confusion matrix, table rows) and returns a
Plotly figure with titled, labelled axes; the dashboard only draws them. This is the one
catdog module that imports Plotly.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import plotly.graph_objects as go

from catdog.train.history import fine_tuning_start, overfitting_onset

# Run colours for overlaid curves: one hue per run, train dotted and validation solid.
PALETTE = ("#1f77b4", "#e4572e", "#2ca02c", "#9467bd", "#8c564b", "#17becf", "#bcbd22")

METRIC_TITLES = {"accuracy": "Accuracy", "loss": "Loss"}


def curves_figure(
    histories: Mapping[str, Sequence[Mapping[str, float]]],
    metric: str = "accuracy",
    *,
    batch_points: Sequence[Mapping[str, float]] | None = None,
    mark_onset: bool = True,
    height: int = 360,
) -> go.Figure:
    """The seed's figure for ``metric``: training (dots) vs validation (line) per epoch.

    Args:
        histories: ``{label: per-epoch rows}``; several labels overlay runs, one colour each.
        metric: ``"accuracy"`` or ``"loss"``.
        batch_points: running per-batch values (``x`` = fractional epoch) to draw as a thin
            line under the first run's curves, as during training.
        mark_onset: draw a vertical line where each run's validation loss bottoms out,
            annotated "overfitting starts".
        height: figure height in pixels.

    Returns:
        A Plotly figure with labelled axes.
    """
    fig = go.Figure()
    single = len(histories) == 1
    last = max((int(r["epoch"]) for rows in histories.values() for r in rows), default=1)
    for k, (label, rows) in enumerate(histories.items()):
        colour = PALETTE[k % len(PALETTE)]
        name = "" if single else f"{label}: "
        if batch_points and k == 0:
            _add_batch_curve(fig, batch_points, metric, colour, name)
        _add_epoch_curves(fig, rows, metric, colour, name)
        tuning = fine_tuning_start(rows)
        if tuning is not None:
            _mark_fine_tuning(fig, tuning, colour, row=k)
        onset = overfitting_onset(rows) if mark_onset else None
        if onset is not None:
            _mark_onset(fig, onset, colour, row=k, last=last)
    _lay_out_curves(fig, metric, last=last, from_zero=bool(batch_points), height=height)
    return fig


def _add_batch_curve(
    fig: go.Figure, points: Sequence[Mapping[str, float]], metric: str, colour: str, name: str
) -> None:
    """The running per-batch training value, a thin pale line."""
    fig.add_scatter(
        x=[p["x"] for p in points if metric in p],
        y=[p[metric] for p in points if metric in p],
        mode="lines",
        name=f"{name}training (per batch)",
        line={"color": colour, "width": 1},
        opacity=0.35,
    )


def _add_epoch_curves(
    fig: go.Figure, rows: Sequence[Mapping[str, float]], metric: str, colour: str, name: str
) -> None:
    """One run's training values (dots) and validation values (a line), per epoch."""
    for key, mode, style in (
        (metric, "markers", {"marker": {"color": colour, "size": 7}}),
        (
            f"val_{metric}",
            "lines+markers",
            {"line": {"color": colour, "width": 2.5}, "marker": {"size": 5}},
        ),
    ):
        points = [(r["epoch"], r[key]) for r in rows if r.get(key) is not None]
        fig.add_scatter(
            x=[p[0] for p in points],
            y=[p[1] for p in points],
            mode=mode,
            name=f"{name}{'validation' if key.startswith('val_') else 'training'}",
            **style,
        )


def _mark_onset(fig: go.Figure, onset: int, colour: str, *, row: int, last: int) -> None:
    """A dashed line at the epoch where overfitting starts, labelled (one label row per run)."""
    late = onset > (1 + last) / 2  # write towards the middle, never off the plot
    _mark_epoch(fig, onset, f"overfitting starts (epoch {onset})", colour, dash="dash",
                y=1 - 0.08 * row, top=True, left=not late)  # fmt: skip


def _mark_fine_tuning(fig: go.Figure, start: int, colour: str, *, row: int) -> None:
    """A dotted line before the first fine-tuning epoch of a pretrained model's run, where its
    base starts to train too, labelled at the bottom (one label row per run)."""
    _mark_epoch(fig, start - 0.5, f"fine-tuning from epoch {start}", colour, dash="dot",
                y=0.02 + 0.08 * row, top=False, left=True)  # fmt: skip


def _mark_epoch(
    fig: go.Figure, x: float, text: str, colour: str, *, dash: str, y: float, top: bool, left: bool
) -> None:
    """A vertical line at ``x`` with ``text`` beside it (right of the line if ``left``, else
    left of it), hanging from height ``y`` (a fraction of the plot) if ``top``, else standing
    on it."""
    fig.add_vline(x=x, line={"color": colour, "dash": dash, "width": 1.5})
    fig.add_annotation(
        x=x,
        y=y,
        yref="paper",
        yanchor="top" if top else "bottom",
        showarrow=False,
        text=text,
        font={"color": colour, "size": 12},
        bgcolor="rgba(255,255,255,0.8)",
        xanchor="left" if left else "right",
        xshift=4 if left else -4,
    )


def _lay_out_curves(
    fig: go.Figure, metric: str, *, last: int, from_zero: bool, height: int
) -> None:
    """Title, legend below, about ten epoch ticks, and percentages for accuracy."""
    title = METRIC_TITLES.get(metric, metric)
    fig.update_layout(
        title={"text": f"Training and validation {title.lower()}", "x": 0, "xanchor": "left"},
        height=height,
        margin={"l": 10, "r": 10, "t": 60, "b": 10},
        legend={"orientation": "h", "yanchor": "top", "y": -0.2, "x": 0},
        hovermode="x unified",
    )
    fig.update_xaxes(
        title_text="Epoch", tick0=0 if from_zero else 1, dtick=max(1, math.ceil(last / 10))
    )
    fig.update_yaxes(title_text=title, tickformat=".0%" if metric == "accuracy" else None)


def confusion_figure(
    matrix: Sequence[Sequence[int]], classes: Sequence[str], title: str = "Confusion matrix"
) -> go.Figure:
    """A confusion matrix as a blue heatmap with the counts written in: rows are the true
    class, columns the predicted one. A transparent square marker over each cell carries
    ``customdata = [true, predicted]``, so that clicking a cell selects it (Plotly's point
    selection; heatmap cells themselves cannot be selected)."""
    fig = go.Figure(
        go.Heatmap(
            z=[list(row) for row in matrix], x=list(classes), y=list(classes),
            text=[list(row) for row in matrix], texttemplate="%{text}", colorscale="Blues",
            colorbar={"title": {"text": "Images"}},
        )
    )  # fmt: skip
    fig.update_layout(title=title)
    fig.update_xaxes(title_text="Predicted class", side="bottom")
    fig.update_yaxes(title_text="True class", autorange="reversed")  # the first class on top
    cells = [(t, p) for t in classes for p in classes]
    fig.add_scatter(
        x=[p for _, p in cells], y=[t for t, _ in cells], customdata=[list(c) for c in cells],
        mode="markers", marker={"symbol": "square", "size": 60, "color": "rgba(0,0,0,0)"},
        hovertemplate="true %{y}, predicted %{x}: click to see the images<extra></extra>",
        showlegend=False,
    )  # fmt: skip
    fig.update_layout(
        height=360, margin={"l": 10, "r": 10, "t": 60, "b": 10}, clickmode="event+select"
    )
    return fig


def roc_figure(curves: Mapping[str, Mapping[str, Any]]) -> go.Figure:
    """ROC curves (one per class against the rest; for two classes the second's), each with
    its operating point, the chance diagonal, and the area under each curve in the legend."""
    fig = go.Figure()
    fig.add_scatter(
        x=[0, 1],
        y=[0, 1],
        mode="lines",
        name="chance",
        line={"color": "#999", "dash": "dot", "width": 1},
    )
    for k, (name, c) in enumerate(curves.items()):
        colour = PALETTE[k % len(PALETTE)]
        auc = "" if c["auc"] is None else f" (AUC {c['auc']:.3f})"
        _add_curve(fig, name, auc, colour, c["roc"], c["operating_point"], ("fpr", "tpr"))
    return _lay_out_rates(fig, "ROC curve", "False-positive rate", "True-positive rate (recall)")


def _add_curve(
    fig: go.Figure, name: str, score: str, colour: str, curve: Mapping[str, Sequence[float]],
    point: Mapping[str, float], axes: tuple[str, str], shape: str = "linear",
) -> None:  # fmt: skip
    """One run's curve (``curve[x]`` against ``curve[y]``, ``axes = (x, y)``) and its
    operating point as an open circle, in the run's colour."""
    x, y = axes
    fig.add_scatter(x=curve[x], y=curve[y], mode="lines", name=f"{name}{score}",
                    line={"color": colour, "width": 2.5, "shape": shape})  # fmt: skip
    fig.add_scatter(
        x=[point[x]], y=[point[y]], mode="markers", name=f"{name}: operating point",
        marker={"color": colour, "size": 12, "symbol": "circle-open", "line": {"width": 3}},
    )  # fmt: skip


def pr_figure(curves: Mapping[str, Mapping[str, Any]]) -> go.Figure:
    """Precision-recall curves (as :func:`roc_figure`), average precision in the legend."""
    fig = go.Figure()
    for k, (name, c) in enumerate(curves.items()):
        colour = PALETTE[k % len(PALETTE)]
        ap = "" if c["average_precision"] is None else f" (AP {c['average_precision']:.3f})"
        _add_curve(fig, name, ap, colour, c["pr"], c["operating_point"], ("recall", "precision"),
                   shape="hv")  # fmt: skip
    return _lay_out_rates(fig, "Precision-recall curve", "Recall", "Precision")


def reliability_figure(
    before: Sequence[Mapping[str, float]],
    after: Sequence[Mapping[str, float]],
    ece: tuple[float, float],
) -> go.Figure:
    """A reliability diagram: accuracy against confidence per bin, before and after
    calibration (marker size: photos in the bin), the diagonal being perfect calibration."""
    fig = go.Figure()
    fig.add_scatter(
        x=[0, 1],
        y=[0, 1],
        mode="lines",
        name="perfectly calibrated",
        line={"color": "#999", "dash": "dot", "width": 1},
    )
    for k, (label, rows, value) in enumerate(
        (("before", before, ece[0]), ("after", after, ece[1]))
    ):
        largest = max((r["count"] for r in rows), default=1)
        fig.add_scatter(
            x=[r["confidence"] for r in rows],
            y=[r["accuracy"] for r in rows],
            mode="lines+markers",
            name=f"{label} calibration (ECE {value:.1%})",
            line={"color": PALETTE[k], "width": 2},
            marker={"size": [6 + 14 * (r["count"] / largest) ** 0.5 for r in rows]},
            customdata=[r["count"] for r in rows],
            hovertemplate="confidence %{x:.1%}: %{y:.1%} right (%{customdata} photos)",
        )
    return _lay_out_rates(
        fig, "Reliability", "Confidence (probability of the class chosen)", "Share right"
    )


def _lay_out_rates(fig: go.Figure, title: str, x: str, y: str) -> go.Figure:
    """Square-ish [0, 1] axes, a title and the legend below."""
    fig.update_layout(
        title={"text": title, "x": 0, "xanchor": "left"},
        height=380,
        margin={"l": 10, "r": 10, "t": 60, "b": 10},
        legend={"orientation": "h", "yanchor": "top", "y": -0.2, "x": 0},
    )
    fig.update_xaxes(title_text=x, range=[-0.02, 1.02], tickformat=".0%")
    fig.update_yaxes(title_text=y, range=[-0.02, 1.02], tickformat=".0%")
    return fig
