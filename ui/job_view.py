"""A training job on screen: its progress, numbers and live curves; jobs to watch, runs to resume.

Not a page (app.py does not list it): the Train page draws the job it watches with these.
"""

import plotly.graph_objects as go
import streamlit as st

from catdog import job_status
from catdog.figures import curves_figure
from catdog.jobs import JobSnapshot, TrainingJob, manager
from catdog.train.history import resumable_runs, stopped_line
from catdog.train.runs import list_runs
from ui.frame import PAGES, enter_workspace, guarded
from ui.shared import WATCHED_RUN, start_resume


def queued_ui(snap: JobSnapshot) -> None:
    """A job waiting for a free training slot: its place, when it should start, a Cancel."""
    run_id = snap.run_id
    place = job_status.queue_place(manager().position(run_id), manager().estimated_start(run_id))
    st.info(
        f"Run `{run_id}` is waiting for its turn: {place}. It starts by itself; you may "
        "leave this page or close the browser meanwhile.",
        icon=":material/hourglass_top:",
    )
    if st.button("Cancel", icon=":material/cancel:", key="cancel_queued"):
        manager().cancel(run_id)
        st.rerun()


def draw(snap: JobSnapshot, job: TrainingJob) -> None:
    """Progress bars, metrics and live curves of one job."""
    if snap.state == "queued":
        queued_ui(snap)
        return
    finished = snap.finished and not job.running
    st.markdown(f"**Run `{snap.run_id}`** — {job_status.job_line(snap)}")
    for note in job_status.run_notes(snap):  # arithmetic, input size, how it trains
        st.caption(note)
    for fraction, text in job_status.progress_bars(snap):
        st.progress(fraction, text=text)
    for col, (name, value) in zip(st.columns(4), job_status.job_metrics(snap), strict=True):
        col.metric(name, value)
    for col, metric in zip(st.columns(2), ("loss", "accuracy"), strict=True):
        points = None if finished else snap.batch_points
        col.plotly_chart(live_figure(snap.run_id, metric, len(snap.history), progress(points),
                                     snap.history, points), key=f"live_{metric}")  # fmt: skip
    if not finished:
        first_result_ui(snap)
        if st.button("Stop training", icon=":material/stop_circle:", disabled=job.stop_requested):
            job.stop()
        if job.stop_requested:
            st.info("Stopping after the current batch…")
    elif snap.state == "failed":
        st.error(f"Training failed: {snap.error}")
    else:
        (st.success if snap.state == "completed" else st.warning)(job_status.outcome_line(snap))
        a, b, _ = st.columns([1, 1, 3])
        a.page_link(PAGES["history"], label="See it in History", icon=":material/monitoring:")
        b.page_link(PAGES["predict"], label="Predict with it", icon=":material/photo_camera:")


def first_result_ui(snap: JobSnapshot) -> None:
    """Once an epoch is saved, while training goes on: its best model so far, to try at once."""
    if line := job_status.best_so_far_line(snap):
        text, link = st.columns([3, 2], vertical_alignment="center")
        text.success(line, icon=":material/check_circle:")
        link.page_link(PAGES["predict"], label="Try it on the Predict page",
                       icon=":material/photo_camera:")  # fmt: skip


def progress(points: list | None) -> tuple | None:
    """How far the per-batch curve has come (its length and last point), for a cache key."""
    return None if points is None else (len(points), points[-1]["x"] if points else None)


@st.cache_resource(max_entries=16, show_spinner=False)
def live_figure(run_id: str, metric: str, epochs: int, batches: tuple | None,
                _history: list, _points: list | None) -> go.Figure:  # fmt: skip
    """A job's curves, built again only when an epoch or a batch point was added (the page
    redraws every second, most often with nothing new), and shared by all who watch it."""
    return curves_figure({run_id: _history}, metric, batch_points=_points)


@st.fragment(run_every=1.0)
def live(run_id: str) -> None:
    """Redraw the watched job every second; one full rerun when it ends."""
    job = None
    with guarded("the Train page's live view"):
        enter_workspace(update_url=False)  # a fragment's rerun does not pass through app.py
        job = manager().get(run_id)
        if job is None:
            return
        draw(job.snapshot(), job)
    if job is not None and not job.running:
        st.rerun()


def watch_ui() -> TrainingJob | None:
    """The job this session watches, or buttons to watch jobs found in this process."""
    job = manager().get(st.session_state.get(WATCHED_RUN, ""))
    if job is not None:
        return job
    offer = job_status.jobs_to_offer(manager().all())
    others = [r for r in list_runs() if r.state == "running" and manager().get(r.id) is None]
    for j in offer:
        snap = j.snapshot()
        text, button = st.columns([4, 1], vertical_alignment="center")
        text.markdown(f"`{snap.run_id}` — {job_status.job_line(snap)}")
        if button.button("Watch", key=f"watch_{snap.run_id}", width="stretch"):
            st.session_state[WATCHED_RUN] = snap.run_id
            st.rerun()
    for run in others:
        st.info(
            f"Run {run.id} is training in another process (e.g. the command line); "
            "its curves are on the History page."
        )
    return None


def resume_ui() -> None:
    """Resume buttons for the runs that were interrupted, stopped or failed and can go on."""
    unfinished = resumable_runs(list_runs())
    if not unfinished:
        return
    st.subheader("Unfinished runs")
    for run in unfinished:
        text, button = st.columns([4, 1], vertical_alignment="center")
        text.markdown(f"`{run.id}` — {stopped_line(run)}")
        if button.button("Resume", key=f"resume_{run.id}", icon=":material/play_arrow:",
                         width="stretch") and start_resume(run.id):  # fmt: skip
            st.rerun()  # the page now watches it
    st.divider()


def watched_ui() -> TrainingJob | None:
    """The job this session watches, drawn (live while it runs), else jobs to pick from."""
    job = watch_ui()
    if job is not None:
        if job.running:
            live(job.run_id)
        else:
            draw(job.snapshot(), job)
        st.divider()
    return job
