"""Progress reporting without any UI: a plain callable, a time-left estimate, and a text bar
for the command line.

Long library functions take ``progress: ProgressFn | None`` and call it as
``progress(done, total, message)``. The CLI passes a :class:`TextProgress`; the dashboard
passes a function that stores the numbers for a Streamlit fragment to draw.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from typing import TextIO

ProgressFn = Callable[[int, int, str], None]


def report(progress: ProgressFn | None, done: int, total: int, message: str = "") -> None:
    """Call ``progress`` if one was given (saves an ``if`` at every call site)."""
    if progress is not None:
        progress(done, total, message)


# A time left is estimated only after this long (the first seconds' pace misleads: pools start,
# caches warm).
ESTIMATE_AFTER_SECONDS = 3.0


class TimeLeft:
    """Estimates the time a long task has left from its pace so far.

    Args:
        clock: the time in seconds (``time.monotonic``; a test passes its own).
    """

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self.clock = clock
        self.started = clock()

    def seconds(self, done: int, total: int) -> float | None:
        """Seconds left at the average pace so far; None before :data:`ESTIMATE_AFTER_SECONDS`,
        before anything is done, or once everything is."""
        elapsed = self.clock() - self.started
        if done <= 0 or done >= total or elapsed < ESTIMATE_AFTER_SECONDS:
            return None
        return elapsed / done * (total - done)

    def message(self, text: str, done: int, total: int) -> str:
        """``text`` with the time left added when there is an estimate:
        ``"Checking images, about 3 min left"``."""
        left = self.seconds(done, total)
        return text if left is None else f"{text}, about {duration(left)} left"


def duration(seconds: float) -> str:
    """A rounded duration for people: ``40 s``, ``3 min``, ``1 h 20 min``."""
    if seconds < 10:
        return f"{max(1, round(seconds))} s"
    if seconds < 57.5:
        return f"{round(seconds / 5) * 5} s"
    minutes = max(1, round(seconds / 60))
    if minutes < 60:
        return f"{minutes} min"
    return f"{minutes // 60} h {minutes % 60} min" if minutes % 60 else f"{minutes // 60} h"


class TextProgress:
    """A one-line text progress bar on a terminal stream, redrawn at most ~10 times a second.

    Args:
        stream: where to draw (standard error by default, so standard output stays clean
            for results that scripts read).
        width: number of characters in the bar itself.
    """

    def __init__(self, stream: TextIO | None = None, width: int = 30) -> None:
        self.stream = stream if stream is not None else sys.stderr
        self.width = width
        self._last_draw = 0.0
        self._open = False
        isatty = getattr(self.stream, "isatty", None)
        self.interactive = bool(isatty and isatty())

    def __call__(self, done: int, total: int, message: str = "") -> None:
        now = time.monotonic()
        finished = total > 0 and done >= total
        # On a terminal, redraw ~10 times a second; in a log file or pipe, where "\r" cannot
        # redraw, write only the finished bar.
        interval = 0.1 if self.interactive else float("inf")
        if not finished and now - self._last_draw < interval:
            return
        self._last_draw = now
        if total > 0:
            frac = min(max(done / total, 0.0), 1.0)
            filled = round(frac * self.width)
            bar = "#" * filled + "-" * (self.width - filled)
            line = f"[{bar}] {done}/{total} {message}"
        else:
            line = f"{done} {message}"
        self.stream.write(("\r" + line[:120].ljust(120)) if self.interactive else line)
        self._open = True
        if finished:
            self.close()
        self.stream.flush()

    def close(self) -> None:
        """End the bar's line (safe to call twice)."""
        if self._open:
            self.stream.write("\n")
            self.stream.flush()
            self._open = False
