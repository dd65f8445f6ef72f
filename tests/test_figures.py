"""catdog.figures: the dashboard's Plotly figures, checked trace by trace."""

from __future__ import annotations

from test_history import OVERFITTING, STILL_LEARNING, TWO_PHASES

from catdog.figures import (
    confusion_figure,
    curves_figure,
    image_sizes_figure,
    split_counts_figure,
)


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


def test_dataset_figures_group_by_class() -> None:
    counts = [
        {"split": "train", "class": "cats", "images": 3},
        {"split": "train", "class": "dogs", "images": 4},
    ]
    bars = split_counts_figure(counts)
    assert [(t.name, list(t.y)) for t in bars.data] == [("cats", [3]), ("dogs", [4])]
    assert bars.layout.yaxis.title.text == "Images"
    sizes = [
        {"split": "train", "class": "cats", "file": "a.jpg", "width": 64, "height": 48},
        {"split": "train", "class": "dogs", "file": "b.jpg", "width": 32, "height": 40},
    ]
    scatter = image_sizes_figure(sizes)
    points = [t for t in scatter.data if t.type == "scatter"]  # few points: SVG
    assert [(t.name, list(t.x), list(t.y)) for t in points] == [
        ("cats", [64], [48]),
        ("dogs", [32], [40]),
    ]
    assert scatter.layout.xaxis.title.text == "Width (px)"


def test_curves_figure_marks_where_fine_tuning_starts() -> None:
    fig = curves_figure({"run": TWO_PHASES}, "accuracy", mark_onset=False)
    assert [a.text for a in fig.layout.annotations] == ["fine-tuning from epoch 4"]
    assert [s.x0 for s in fig.layout.shapes] == [3.5]  # between the two phases


def test_image_sizes_figure_stays_small_for_many_images() -> None:
    rows = [
        {"class": cls, "width": 500 - 100 * (k % 2), "height": 375}
        for cls in ("cats", "dogs")
        for k in range(2000)
    ]
    fig = image_sizes_figure(rows)
    points = [t for t in fig.data if t.type == "scatter"]
    # One point per class and size, saying how many images it stands for.
    assert [(t.name, sorted(t.x), list(t.customdata)) for t in points] == [
        ("cats", [400, 500], [1000, 1000]),
        ("dogs", [400, 500], [1000, 1000]),
    ]
    bars = [t for t in fig.data if t.type == "bar"]
    assert sum(sum(t.y) for t in bars if t.orientation == "v") == 4000  # widths, binned
    assert len(fig.to_json()) < 20_000  # 4000 images, a few kilobytes


def test_image_sizes_figure_uses_webgl_only_for_very_many_points() -> None:
    from catdog.figures import SVG_POINTS

    rows = [{"class": "cats", "width": 100 + k, "height": 100} for k in range(SVG_POINTS + 1)]
    kinds = {t.type for t in image_sizes_figure(rows).data if t.type != "bar"}
    assert kinds == {"scattergl"}
    kinds = {t.type for t in image_sizes_figure(rows[:SVG_POINTS]).data if t.type != "bar"}
    assert kinds == {"scatter"}
