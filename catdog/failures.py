"""Turning any exception into the one sentence a user reads.

Training can fail in ways no setting check foresees: a oneDNN kernel the CPU lacks, memory or
disk running out, a file vanishing. The user gets one line that says what happened and what to
do; the full traceback goes to the run folder's ``error.log`` (and to the terminal only with
``--debug``). No TensorFlow here: TensorFlow's errors are recognised by name.
"""

from __future__ import annotations

from catdog.system import disk_full


class TrainingFailed(RuntimeError):
    """Training stopped on an unexpected error; the message is the one line to show (the
    original exception is its ``__cause__``, the traceback in the run's ``error.log``)."""


def one_line(exc: BaseException, limit: int = 240) -> str:
    """The most telling line of an exception's message, prefixed with its type's name.

    TensorFlow wraps a kernel's own words in many lines of graph context ("Detected at node
    ..."); the kernel's complaint (a line saying "could not" or "error") is the one kept.
    """
    lines = [ln.strip() for ln in str(exc).splitlines() if ln.strip()]
    telling = [ln for ln in lines if "could not" in ln.lower() or "error" in ln.lower()]
    line = (telling or lines or [""])[-1 if telling else 0]
    line = line if len(line) <= limit else line[: limit - 1] + "…"
    return f"{type(exc).__name__}: {line}" if line else type(exc).__name__


def failure_message(exc: BaseException, precision: str | None = None) -> str:
    """One sentence for a failed training run: what happened and what to do.

    Args:
        exc: what was raised.
        precision: the run's arithmetic (float32, bfloat16, float16), to name it when a kernel
            for it is missing.
    """
    text = str(exc)
    name = type(exc).__name__
    if type(exc).__module__.startswith("catdog."):  # catdog's own errors say what to do
        return text.splitlines()[0] if text else name
    if isinstance(exc, MemoryError) or name == "ResourceExhaustedError" or " OOM " in text:
        return "out of memory: train with a smaller batch size or image size, then try again"
    if disk_full(exc):
        filename = getattr(exc, "filename", None)
        where = f" writing {filename}" if filename else ""
        return f"the disk is full{where}: free some space, then resume the run"
    if "could not create a primitive" in text or "primitive descriptor" in text:
        arithmetic = f"{precision} " if precision else ""
        return (
            f"this CPU has no {arithmetic}kernel for one of the model's layers (oneDNN: "
            "could not create a primitive descriptor): train with precision float32 or auto"
        )
    return one_line(exc)
