"""History: training curves of runs, compared; a table of runs; evaluation on the test split."""

from pathlib import Path

import pandas as pd
import plotly.graph_objects as go
import streamlit as st

from catdog.figures import curves_figure
from catdog.jobs import manager
from catdog.train.history import (
    distribution_line,
    run_label,
    run_note,
    runs_table,
    short_id,
    start_line,
    stopped_line,
    story_runs,
)
from catdog.train.runs import (
    HISTORY_FILE,
    RunError,
    RunInfo,
    can_resume,
    delete_run,
    list_runs,
    model_file,
    read_history,
)
from pages.evaluation_view import evaluation_view, heatmaps, percent_column
from pages.shared import PAGES, confirmed, damaged_ui, model_choice, start_resume, thumb

RUN_COLUMNS = {
    "run": "Run", "model": "Model", "dataset": "Dataset", "state": "State", "epochs": "Epochs",
    "best_val_accuracy": percent_column("Best val acc"),
    "test_accuracy": percent_column("Test acc"),
    "augment": "Augment", "dropout": "Dropout", "batch_size": "Batch",
    "learning_rate": st.column_config.NumberColumn("LR", format="%.0e"),
    "image_size": "Image size", "created": "Created",
    "example": st.column_config.CheckboxColumn("Shared example"),
}  # fmt: skip
GALLERY_COLUMNS, GALLERY_SIZE = 6, 12


def compare_ui(runs: list[RunInfo]) -> list[RunInfo]:
    by_id = {r.id: r for r in runs}
    chosen = st.multiselect(
        "Runs to compare",
        list(by_id),
        default=story_runs(runs),
        format_func=lambda i: run_label(by_id[i]),
        key="history_runs",
    )
    return [by_id[i] for i in chosen]


@st.cache_resource(max_entries=32, show_spinner=False)
def cached_curves(runs: tuple[tuple[str, str, int], ...], metric: str) -> go.Figure:
    """:func:`curves_figure` of runs given as (label, folder, history's mtime), built once
    per version of their histories and shared by every visitor."""
    histories = {label: read_history(Path(folder)) for label, folder, _ in runs}
    return curves_figure(histories, metric, height=400)


def history_version(run: RunInfo) -> int:
    """The run's history file's modification time (0 if it has none yet)."""
    try:
        return (run.path / HISTORY_FILE).stat().st_mtime_ns
    except OSError:
        return 0


def curves(chosen: list[RunInfo]) -> None:
    """The seed's two figures for the chosen runs, with where overfitting starts."""
    histories = {short_id(r.id): read_history(r.path) for r in chosen}
    versions = tuple((short_id(r.id), str(r.path), history_version(r)) for r in chosen)
    left, right = st.columns(2)
    for col, metric in ((left, "accuracy"), (right, "loss")):
        col.plotly_chart(cached_curves(versions, metric))
    notes = [f"- **{short_id(r.id)}**: {run_note(r, histories[short_id(r.id)])}." for r in chosen]
    st.markdown("\n".join(notes))


@st.cache_data(max_entries=16, show_spinner="Evaluating on the test split (the first time, "
               "also learning when to answer 'not sure')…")  # fmt: skip
def evaluation(run_id: str, which: str, version: float) -> dict:
    from catdog.inference.evaluate import evaluate_run

    return evaluate_run(run_id, which=which).to_dict()


def evaluation_ui(run: RunInfo) -> None:
    """An Evaluate button; once pressed, the run's scores on the test split and its mistakes."""
    which = model_choice(key="history_which")
    model = model_file(run.path, which)
    if model is None:
        return
    key = (run.id, which)
    if st.button("Evaluate on the test split", icon=":material/fact_check:"):
        st.session_state.setdefault("evaluated", set()).add(key)
    if key not in st.session_state.get("evaluated", set()):
        return
    version = model.stat().st_mtime
    try:
        result = evaluation(run.id, which, version)
    except (ValueError, OSError) as exc:
        st.error(f"Evaluation failed: {exc}")
        return
    evaluation_view(run.id, which, version, result)
    mistakes_ui(run.id, which, version, result["misclassified"])


def mistakes_ui(run_id: str, which: str, version: float, wrong: list[dict]) -> None:
    """The most confident mistakes as a gallery, optionally tinted where the model looked."""
    text, toggle = st.columns([3, 1], vertical_alignment="center")
    text.markdown(f"**Misclassified: {len(wrong)}** (most confident mistakes first)")
    shown = wrong[:GALLERY_SIZE]
    pictures = [thumb(item["file"]) for item in shown]
    if shown and toggle.toggle(
        "Where it looked", key="history_heatmaps",
        help="Grad-CAM: tint the regions whose features argued most for the (wrong) class "
        "the model predicted, from blue (a little) to red (most).",
    ):  # fmt: skip
        try:
            mistakes = tuple((item["file"], item["predicted"]) for item in shown)
            pictures = heatmaps(run_id, which, version, mistakes)
        except (ValueError, OSError) as exc:
            st.warning(f"No heatmaps for this model: {exc}")
    cells = st.columns(GALLERY_COLUMNS)
    for k, (item, picture) in enumerate(zip(shown, pictures, strict=True)):
        cells[k % GALLERY_COLUMNS].image(
            picture,
            width="stretch",
            caption=f"{item['true']} → {item['predicted']} ({item['probability']:.0%})",
        )


def resume_ui(run: RunInfo) -> None:
    """A Resume button for an interrupted, stopped or failed run that can go on."""
    if not can_resume(run):
        return
    text, button = st.columns([3, 1], vertical_alignment="center")
    text.caption(f"This run {stopped_line(run)}.")
    if button.button("Resume training", icon=":material/play_arrow:", key="history_resume",
                     width="stretch") and start_resume(run.id):  # fmt: skip
        queued = (job := manager().get(run.id)) is not None and job.queued
        st.success(f"Run {run.id} is {'waiting in the queue to train' if queued else 'training'}"
                   f" again, from epoch {run.epochs_done + 1}.")  # fmt: skip
        st.page_link(PAGES["train"], label="Watch it on the Train page",
                     icon=":material/model_training:")  # fmt: skip


def export_ui(run: RunInfo, has_model: bool) -> None:
    """Export the run's model for use without catdog, checked, then offered as a download."""
    from catdog.inference.export import EXPORT_CHOICES, ExportError, download, export_run

    with st.expander("Export for use without catdog (raw RGB pixels in, probabilities out)"):
        kind, go = st.columns([3, 1], vertical_alignment="bottom")
        choice = kind.selectbox("Format", list(EXPORT_CHOICES), key="history_export_format")
        if go.button("Export", disabled=not has_model, width="stretch", key="history_export"):
            fmt, quantize = EXPORT_CHOICES[choice]
            try:
                with st.spinner("Exporting and checking it against the run's model…"):
                    result = export_run(run.id, fmt, quantize=quantize, replace=True)
            except (ExportError, ValueError) as exc:
                st.error(f"Export failed: {exc}")
                return
            st.session_state["history_export_done"] = (run.id, choice, result)
        done = st.session_state.get("history_export_done")
        if done and done[0] == run.id and done[1] == choice:
            result = done[2]
            st.caption(result.summary())
            data, name = download(result)
            st.download_button(f"Download {name}", data, file_name=name,
                               icon=":material/download:", key="history_export_dl")  # fmt: skip
            if result.trust is not None and result.trust.exists():
                st.download_button(
                    f"Download {result.trust.name} (calibration and 'not sure' rule)",
                    result.trust.read_bytes(), file_name=result.trust.name,
                    icon=":material/download:", key="history_export_trust",
                )  # fmt: skip


def run_ui(runs: list[RunInfo]) -> None:
    """Downloads and evaluation of one run."""
    by_id = {r.id: r for r in runs}
    run = by_id[
        st.selectbox(
            "Run", list(by_id), format_func=lambda i: run_label(by_id[i]), key="history_run"
        )
    ]
    for line in (start_line(run), distribution_line(run)):
        if line:
            st.caption(line)
    model = model_file(run.path)
    a, b, _ = st.columns([1, 1, 2])
    history = run.path / HISTORY_FILE
    a.download_button(
        "History (.csv)",
        history.read_bytes() if history.exists() else b"",
        file_name=f"{run.id}-history.csv",
        mime="text/csv",
        icon=":material/download:",
        disabled=not history.exists(),
        width="stretch",
    )
    b.download_button(
        "Model (.keras)",
        (lambda: model.read_bytes()) if model else b"",
        file_name=f"{run.id}-{model.name if model else 'model.keras'}",
        mime="application/octet-stream",
        icon=":material/download:",
        disabled=model is None,
        width="stretch",
    )
    export_ui(run, model is not None)
    if run.error:
        st.error(f"This run failed: {run.error}")
    resume_ui(run)
    if model is None:
        st.info("This run saved no model yet, so it cannot be evaluated.")
        return
    evaluation_ui(run)


def delete_ui(runs: list[RunInfo]) -> None:
    """Delete one of the visitor's own runs (not a shared example), after a confirmation."""
    own = {r.id: r for r in runs if not r.example}
    if not own:
        return
    st.subheader("Delete a run")
    left, right = st.columns([3, 1], vertical_alignment="bottom")
    run_id = left.selectbox("Run to delete", list(own), key="history_delete_run",
                            format_func=lambda i: run_label(own[i]))  # fmt: skip
    if st.session_state.get("history_delete_pending") != run_id:
        if right.button("Delete…", icon=":material/delete:", key="history_delete",
                        width="stretch"):  # fmt: skip
            st.session_state["history_delete_pending"] = run_id
            st.rerun()
        return
    question = f"Delete run {run_id}, its models and its history? This cannot be undone."
    if confirmed("history_delete", run_id, question):
        try:
            delete_run(run_id)
        except RunError as exc:
            st.error(f"Cannot delete: {exc}")
            return
        st.session_state["history_deleted"] = run_id
        st.rerun()


st.title("History")
if deleted := st.session_state.pop("history_deleted", None):
    st.success(f"Run {deleted} was deleted.")
runs = list_runs()
if not runs:
    st.info("No training run yet.")
    st.page_link(PAGES["train"], label="Train a model", icon=":material/model_training:")
    st.stop()
intact = [r for r in runs if not r.damaged]  # a damaged folder is listed, never opened
damaged_ui(runs)
chosen = compare_ui(intact)
if chosen:
    curves(chosen)
st.subheader("All runs")
table = pd.DataFrame(runs_table(runs))
table[["best_val_accuracy", "test_accuracy"]] *= 100
st.dataframe(table, hide_index=True, column_config=RUN_COLUMNS)
st.subheader("One run")
if intact:
    run_ui(intact)
else:
    st.info("Every run folder is damaged: there is no run to open.")
delete_ui(runs)
