"""The History page's evaluation of one run, to click through: scores, a confusion matrix whose
cells open their images (with Grad-CAM on demand), a decision threshold for two classes, ROC
and precision-recall curves, calibration before and after, and the per-image results as CSV.

Not a page (app.py does not list it): pages/4_history.py calls :func:`evaluation_view`.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import streamlit as st

from catdog.figures import confusion_figure, pr_figure, reliability_figure, roc_figure
from catdog.inference.evaluation_table import confusion_at, images_in_cell, results_csv
from pages.shared import literal, predictor, thumb

GALLERY_COLUMNS, GALLERY_SIZE = 6, 12
CELL = "history_cell"  # the chosen cell, "TRUE → PREDICTED", or "" for none


def percent_column(label: str) -> st.column_config.NumberColumn:
    return st.column_config.NumberColumn(label, format="%.1f%%")


@st.cache_data(max_entries=8, show_spinner="Drawing heatmaps…")
def heatmaps(
    run_id: str, which: str, version: float, images: tuple[tuple[str, str], ...]
) -> list[bytes]:
    """Square thumbnails of the ``(file, class)`` images, tinted where the model saw that
    class."""
    from catdog.data.model_input import load_for_model
    from catdog.data.thumbnails import thumbnail
    from catdog.inference.explain import heatmap_jpeg

    model = predictor(run_id, which, version)
    pixels = np.stack([load_for_model(f, model.image_size) for f, _ in images])
    maps = model.heatmaps(pixels, [model.classes.index(c) for _, c in images])
    return [
        thumbnail(heatmap_jpeg(f, heat, max_side=320))
        for (f, _), heat in zip(images, maps, strict=True)
    ]


def headline_ui(result: dict) -> None:
    """Test accuracy, calibration error before → after, and the "not sure" rule's coverage."""
    cols = st.columns(3)
    cols[0].metric("Test accuracy", f"{result['accuracy']:.1%}",
                   help=f"{result['count']:,} images in {result['data']}")  # fmt: skip
    if c := result.get("calibration"):
        cols[1].metric(
            "Calibration error (ECE)", f"{c['ece_after']:.1%}",
            delta=f"{c['ece_after'] - c['ece_before']:+.1%} (was {c['ece_before']:.1%})",
            delta_color="inverse",
            help=f"Expected calibration error on these images, 15 bins, after temperature "
            f"scaling (T = {c['temperature']:.2f}, fitted on the validation photos).",
        )  # fmt: skip
    if r := result.get("rejection"):
        cols[2].metric(
            "Answered", f"{r['answered']:.1%}",
            help=f"Images given a class rather than 'neither class / not sure' (the run's "
            f"{r['score']} rule, set to answer {r['coverage_target']:.0%} of the validation "
            f"photos); {r['accuracy_answered']:.1%} of them right.",
        )  # fmt: skip


def threshold_ui(result: dict) -> float | None:
    """For two classes, a slider for the probability of the second class above which an image
    is called that class (the operating point is 50%)."""
    classes = result["classes"]
    if len(classes) != 2:
        return None
    share = st.slider(
        f"Decision threshold: called {classes[1]} from", min_value=1, max_value=99, value=50,
        format="%d%%", key="history_threshold",
        help=f"An image is called {classes[1]} when its (calibrated) probability of "
        f"{classes[1]} is at least this; the matrix and the images below follow it.",
    )  # fmt: skip
    return share / 100


def scores_ui(result: dict, threshold: float | None) -> None:
    """Per-class precision/recall/F1 and the confusion matrix (at ``threshold``), whose cells
    can be clicked; the clicked cell becomes the chosen one."""
    left, right = st.columns(2, gap="large")
    table = pd.DataFrame(result["per_class"]).T.rename_axis("class").reset_index()
    table[["precision", "recall"]] *= 100
    left.dataframe(table, hide_index=True, column_config={
        "class": "Class", "precision": percent_column("Precision"),
        "recall": percent_column("Recall"),
        "f1": st.column_config.NumberColumn("F1", format="%.3f"),
        "support": st.column_config.NumberColumn("Images", format="%d"),
    })  # fmt: skip
    matrix = confusion_at(result, threshold)
    title = "Confusion matrix" if threshold in (None, 0.5) else f"At threshold {threshold:.0%}"
    event = right.plotly_chart(
        confusion_figure(matrix.tolist(), result["classes"], title=title),
        on_select="rerun", selection_mode="points", key="history_matrix",
    )  # fmt: skip
    points = (event or {}).get("selection", {}).get("points", [])
    clicked = next((p["customdata"] for p in points if p.get("customdata")), None)
    if clicked != st.session_state.get("history_clicked"):
        st.session_state["history_clicked"] = clicked  # a new click picks the cell
        if clicked:
            st.session_state[CELL] = f"{clicked[0]} → {clicked[1]}"


def cell_ui(run_id: str, which: str, version: float, result: dict, threshold: float | None) -> None:
    """The images of the chosen confusion-matrix cell, optionally tinted where the model
    looked for the class it called them."""
    classes, matrix = result["classes"], confusion_at(result, threshold)
    cells = {f"{t} → {p}": (t, p) for t in classes for p in classes}
    counts = {name: int(matrix[classes.index(t), classes.index(p)]) for name, (t, p) in
              cells.items()}  # fmt: skip
    text, toggle = st.columns([3, 1], vertical_alignment="bottom")
    name = text.selectbox(
        "Images of a cell (or click the matrix)", ["", *cells], key=CELL,
        format_func=lambda n: "—" if not n else f"true {n} predicted ({counts[n]} images)",
    )  # fmt: skip
    if not name:
        return
    true, called = cells[name]
    rows = images_in_cell(result, true, called, threshold)[:GALLERY_SIZE]
    if not rows:
        st.caption("No image in this cell.")
        return
    pictures = [thumb(row["file"]) for row in rows]
    if toggle.toggle("Where it looked", key="history_cell_heatmaps",
                     help="Grad-CAM: tint the regions that argued most for the class the model "
                     "called each image, from blue (a little) to red (most)."):  # fmt: skip
        try:
            pictures = heatmaps(run_id, which, version, tuple((r["file"], called) for r in rows))
        except (ValueError, OSError) as exc:
            st.warning(f"No heatmaps for this model: {exc}")
    st.caption(f"Showing {len(rows)} of {counts[name]}, most confident first.")
    grid = st.columns(GALLERY_COLUMNS)
    for k, (row, picture) in enumerate(zip(rows, pictures, strict=True)):
        note = "" if row["answered"] else ", not sure"
        grid[k % GALLERY_COLUMNS].image(
            picture, width="stretch",
            caption=f"{literal(called)} {row['probabilities'][called]:.0%}{note}",
        )  # fmt: skip


def curves_ui(result: dict) -> None:
    """ROC, precision-recall and reliability diagrams, one tab each."""
    roc, pr, reliability = st.tabs(["ROC curve", "Precision-recall", "Calibration"])
    roc.plotly_chart(roc_figure(result["curves"]), key="history_roc")
    pr.plotly_chart(pr_figure(result["curves"]), key="history_pr")
    if c := result.get("calibration"):
        figure = reliability_figure(c["reliability_before"], c["reliability_after"],
                                    (c["ece_before"], c["ece_after"]))  # fmt: skip
        reliability.plotly_chart(figure, key="history_reliability")
    else:
        reliability.caption("This run's probabilities are the model's own (no calibration).")


def evaluation_view(run_id: str, which: str, version: float, result: dict) -> None:
    """Everything above, then the per-image results to download."""
    headline_ui(result)
    threshold = threshold_ui(result)
    scores_ui(result, threshold)
    cell_ui(run_id, which, version, result, threshold)
    curves_ui(result)
    st.download_button(
        "Per-image results (.csv)", results_csv(result), file_name=f"{run_id}-{which}-test.csv",
        mime="text/csv", icon=":material/download:", key="history_results_csv",
    )  # fmt: skip
