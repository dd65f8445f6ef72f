"""A training job's status in words: its state, its progress bars, its numbers, its queue place.

Everything here reads a :class:`~catdog.job_snapshot.JobSnapshot` (or the queue's counts) and
returns text or ``(fraction, label)`` pairs for progress bars, so the dashboard and any other
front end say the same thing. Plain Python: no TensorFlow, no Streamlit.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from catdog.job_snapshot import JobState

if TYPE_CHECKING:
    from catdog.job_snapshot import JobSnapshot
    from catdog.jobs import TrainingJob

STATE_LABELS = {
    JobState.QUEUED: "Waiting in the training queue",
    JobState.CANCELLED: "Cancelled in the queue",
    JobState.STARTING: "Starting",
    JobState.TIMING: "Timing float32 and bfloat16 on this machine (once)",
    JobState.LOADING: "Loading images",
    JobState.FEATURES: "Computing the frozen base's features (once: no augmentation)",
    JobState.RUNNING: "Training",
    JobState.EVALUATING: "Evaluating on the test split",
    JobState.COMPLETED: "Completed",
    JobState.STOPPED: "Stopped",
    JobState.FAILED: "Failed",
}


def job_line(snap: JobSnapshot) -> str:
    """One line about a job: ``Training — epoch 3 of 30`` or ``Completed — 30 of 30 epochs``."""
    state = STATE_LABELS.get(snap.state, snap.state)
    total = snap.epochs or "?"
    if snap.finished:
        return f"{state} — {len(snap.history)} of {total} epochs"
    if snap.state in ("running", "evaluating"):
        return f"{state} — epoch {min(max(snap.epoch, 1), snap.epochs or snap.epoch)} of {total}"
    return state


def epoch_progress(snap: JobSnapshot) -> tuple[float, str]:
    """Fraction of the run done (epochs and batches) and a label for a progress bar."""
    done = len(snap.history)
    if snap.finished:
        return done / max(snap.epochs, 1), f"{done} of {snap.epochs or '?'} epochs done"
    current = min(max(snap.epoch, 1), snap.epochs or 1)
    return snap.fraction, f"Epoch {current} of {snap.epochs or '?'} ({done} done)"


def batch_progress(snap: JobSnapshot) -> tuple[float, str] | None:
    """Fraction of the current epoch's batches done and a label with the running loss and
    accuracy; None when no epoch is under way."""
    if snap.finished or not snap.steps or snap.state != "running":
        return None
    logs = snap.batch_logs
    detail = ""
    if "loss" in logs and "accuracy" in logs:
        detail = f" · loss {logs['loss']:.3f} · accuracy {logs['accuracy']:.1%}"
    return min(snap.step / snap.steps, 1.0), f"Batch {snap.step} of {snap.steps}{detail}"


def loading_progress(snap: JobSnapshot) -> tuple[float, str] | None:
    """Fraction of the images loaded (or, for a pretrained model trained without
    augmentation, of their features computed) and a label, while the job does it; else None."""
    if snap.state not in ("loading", "features") or not snap.loading_total:
        return None
    done, total = snap.loading_done, snap.loading_total
    what = "Loading images" if snap.state == "loading" else "Computing features"
    return done / total, f"{what}: {done:,}/{total:,}"


def progress_bars(snap: JobSnapshot) -> list[tuple[float, str]]:
    """The progress bars a job shows now, as ``(fraction, label)``: loading the images (while
    it does), the run's epochs, and the current epoch's batches (while one is under way)."""
    bars = (loading_progress(snap), epoch_progress(snap), batch_progress(snap))
    return [bar for bar in bars if bar is not None]


def job_metrics(snap: JobSnapshot) -> list[tuple[str, str]]:
    """The four numbers to show for a job, as ``(label, value)``: time elapsed, best
    validation accuracy, last validation loss and test accuracy (``–`` while unknown)."""
    val = [row["val_accuracy"] for row in snap.history if "val_accuracy" in row]
    test = snap.metrics.get("test_accuracy")
    return [
        ("Elapsed", f"{snap.seconds:,.0f} s"),
        ("Best validation accuracy", f"{max(val):.1%}" if val else "–"),
        ("Last validation loss", f"{snap.history[-1]['val_loss']:.3f}" if val else "–"),
        ("Test accuracy", f"{test:.1%}" if test is not None else "–"),
    ]


def best_so_far_line(snap: JobSnapshot) -> str | None:
    """While a job trains, once an epoch is saved: its best model so far in a sentence
    (``A first model is ready: 68.8% validation accuracy after 1 epoch …``); else None."""
    val = [row["val_accuracy"] for row in snap.history if "val_accuracy" in row]
    if snap.finished or not val:
        return None
    epochs = len(snap.history)
    return (
        f"A first model is ready: {max(val):.1%} validation accuracy (the best of "
        f"{epochs} epoch{'s' if epochs > 1 else ''} so far); training goes on and keeps the best."
    )


def outcome_line(snap: JobSnapshot) -> str:
    """How a finished job ended: ``Run r1 completed after 30 epoch(s).``, with why if it
    stopped by itself (``... stopped after 3 epoch(s): stopped before saving epoch 4: ...``)."""
    why = f": {snap.reason}" if snap.reason else "."
    return f"Run {snap.run_id} {snap.state} after {len(snap.history)} epoch(s){why}"


def queue_place(place: int | None, wait_seconds: float | None) -> str:
    """A queued job's place and expected wait: ``number 2 in the queue, so it should start in
    about 3 min`` (the wait left out when unknown)."""
    when = ""
    if wait_seconds:
        when = f", so it should start in about {max(1, round(wait_seconds / 60))} min"
    return f"number {place} in the queue{when}"


def capacity_line(limit: int, training: int, waiting: int) -> str:
    """What a server with a training queue does with a new run."""
    return (
        f"This server trains {limit} run(s) at a time (now {training} training, {waiting} "
        "waiting); a new run waits for its turn in the queue."
    )


def jobs_to_offer(jobs: Sequence[TrainingJob], finished: int = 3) -> list[TrainingJob]:
    """The jobs worth offering to watch: every running one, then the ``finished`` most recent
    that have ended (``jobs`` oldest first, as the job manager lists them)."""
    running = [job for job in jobs if job.running]
    ended = [job for job in reversed(jobs) if not job.running]
    return running + ended[:finished]


def run_notes(snap: JobSnapshot) -> list[str]:
    """What the run settled as it started, one sentence each: its arithmetic, its input size
    (where a time limit chose it) and its start message (in memory or streamed, devices,
    feature cache, a resume without mixup)."""
    notes = [snap.precision, snap.input_size, snap.start_message]
    return [note[:1].upper() + note[1:] for note in notes if note]
