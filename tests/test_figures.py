"""catdog.figures: the dashboard's Plotly figures, checked trace by trace."""

from __future__ import annotations

from test_history import OVERFITTING, STILL_LEARNING, TWO_PHASES

from catdog.figures import confusion_figure, curves_figure


def test_curves_figure_draws_the_seeds_figure_with_the_onset_marked() -> None:
    fig = curves_figure({"baseline": OVERFITTING}, "loss")
    names = [trace.name for trace in fig.data]
    assert names == ["training", "validation"]
    assert list(fig.data[1].y) == [r["val_loss"] for r in OVERFITTING]
    assert fig.layout.xaxis.title.text == "Epoch"
    assert fig.layout.yaxis.title.text == "Loss"
    assert [shape.x0 for shape in fig.layout.shapes] == [3]
    assert "overfitting starts" in fig.layout.annotations[0].text


def test_curves_figure_overlays_runs_and_batch_points() -> None:
    points = [{"x": 0.5, "loss": 0.7, "accuracy": 0.5}, {"x": 1.0, "loss": 0.6, "accuracy": 0.6}]
    fig = curves_figure({"a": OVERFITTING, "b": STILL_LEARNING}, "accuracy", batch_points=points)
    names = [trace.name for trace in fig.data]
    assert names == [
        "a: training (per batch)",
        "a: training",
        "a: validation",
        "b: training",
        "b: validation",
    ]
    assert fig.layout.yaxis.tickformat == ".0%"
    assert len(fig.layout.shapes) == 1  # only run a shows overfitting


def test_confusion_figure_puts_true_classes_on_rows() -> None:
    fig = confusion_figure([[8, 2], [1, 9]], ["cats", "dogs"])
    heat = fig.data[0]  # under the clickable cells' markers
    assert heat.type == "heatmap"
    assert [list(row) for row in heat.z] == [[8, 2], [1, 9]]
    assert list(heat.x) == list(heat.y) == ["cats", "dogs"]
    assert fig.layout.xaxis.title.text == "Predicted class"
    assert fig.layout.yaxis.title.text == "True class"


def test_curves_figure_marks_where_fine_tuning_starts() -> None:
    fig = curves_figure({"run": TWO_PHASES}, "accuracy", mark_onset=False)
    assert [a.text for a in fig.layout.annotations] == ["fine-tuning from epoch 4"]
    assert [s.x0 for s in fig.layout.shapes] == [3.5]  # between the two phases
