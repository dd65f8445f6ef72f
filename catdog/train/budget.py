"""How much memory decoded images may take, and whether a run keeps them in memory or streams.

A split decoded into memory takes N images × size² × 3 bytes (2,000 photos at 112 px: 75 MB;
25,000 at 150 px: 1.7 GB; 100,000: 6.8 GB). :func:`choose_input` compares that, for the
training and validation splits together, with the *memory budget*:

* ``CATDOG_MEMORY_BUDGET_MB`` if set (a server's own limit, or a test's);
* in hosted mode, the policy's :attr:`~catdog.policy.Policy.memory_budget_bytes` (a small
  shared server);
* else a quarter of the memory the machine has available now (``MemAvailable`` in
  ``/proc/meminfo``), at most :data:`MAX_BUDGET_BYTES`.

Within the budget, images are decoded into memory (the fastest path); over it, they are decoded
once into a disk cache and streamed (see :mod:`catdog.train.shards`). Plain Python: no TensorFlow.
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass

from catdog.policy import current_policy
from catdog.system import MB

ENV_VAR = "CATDOG_MEMORY_BUDGET_MB"
# The share of the available memory decoded images may take: the model, its activations and
# TensorFlow need the rest, and other programs run too.
AVAILABLE_SHARE = 0.25
# Never more than this, however much memory the machine has: past it, streaming costs little.
MAX_BUDGET_BYTES = 4096 * MB
# When the available memory cannot be read (no /proc/meminfo).
FALLBACK_BUDGET_BYTES = 512 * MB


class BudgetError(ValueError):
    """A memory budget in the environment that cannot be used; the message says why."""


def decoded_bytes(images: int, image_size: int) -> int:
    """Bytes ``images`` decoded ``uint8`` RGB images of ``image_size``² pixels take."""
    return int(images) * int(image_size) ** 2 * 3


def available_memory_bytes() -> int | None:
    """The memory the machine has available now (Linux' ``MemAvailable``), or None if unknown."""
    try:
        with open("/proc/meminfo", encoding="ascii") as meminfo:
            for line in meminfo:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024  # the line says kB
    except (OSError, ValueError, IndexError):
        pass
    try:  # other Unixes: the free pages
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return None


def env_megabytes(name: str) -> tuple[str, float]:
    """The environment variable ``name`` as it is set ("" when unset) and its number of
    megabytes (-1 when it is not a number), for the caller to check its range."""
    raw = os.environ.get(name, "").strip()
    try:
        return raw, float(raw) if raw else -1.0
    except ValueError:
        return raw, -1.0


def memory_budget() -> tuple[int, str]:
    """The bytes decoded images may take, and where that number comes from (for people).

    Raises:
        BudgetError: ``CATDOG_MEMORY_BUDGET_MB`` is set but is not a positive number.
    """
    raw, megabytes = env_megabytes(ENV_VAR)
    if raw:
        if not 0 < megabytes < float("inf"):
            raise BudgetError(
                f"{ENV_VAR} must be a positive number of megabytes, got {raw!r}; "
                "set it to e.g. 800, or unset it to size the budget from the machine's memory"
            )
        return int(megabytes * MB), f"{ENV_VAR}={raw}"
    if (hosted_budget := current_policy().memory_budget_bytes) is not None:
        return hosted_budget, "hosted mode's budget"
    available = available_memory_bytes()
    if available is None:
        return FALLBACK_BUDGET_BYTES, "memory available unknown"
    budget = min(int(available * AVAILABLE_SHARE), MAX_BUDGET_BYTES)
    return budget, f"a quarter of the {human_bytes(available)} available, at most 4 GB"


def human_bytes(nbytes: float) -> str:
    """``1.7 GB``, ``800 MB``, ``12 kB``: sizes for people (powers of 1024, one decimal at most)."""
    for unit, scale in (("GB", 1024**3), ("MB", MB), ("kB", 1024)):
        if nbytes >= scale:
            value = nbytes / scale
            return f"{value:.1f} {unit}" if value < 10 else f"{value:.0f} {unit}"
    return f"{int(nbytes)} bytes"


@dataclass(frozen=True)
class InputChoice:
    """Whether a run keeps its decoded images in memory or streams them, and why."""

    streaming: bool
    decoded_bytes: int  # the training and validation images, decoded
    budget_bytes: int
    budget_source: str  # where the budget comes from, for people

    @property
    def reason(self) -> str:
        """One line for people: ``streaming: 1.7 GB decoded > 800 MB budget``."""
        size, budget = human_bytes(self.decoded_bytes), human_bytes(self.budget_bytes)
        if self.streaming:
            return f"streaming: {size} decoded > {budget} budget ({self.budget_source})"
        return f"in memory: {size} decoded ≤ {budget} budget ({self.budget_source})"

    def to_dict(self) -> dict[str, object]:
        """The choice as plain JSON values (a run's ``config.json`` keeps it)."""
        return {"mode": "streaming" if self.streaming else "memory", "reason": self.reason,
                **asdict(self)}  # fmt: skip


def choose_input(images: int, image_size: int) -> InputChoice:
    """Decide, from the decoded size of ``images`` images of ``image_size`` px against the
    :func:`memory_budget`, whether to keep them in memory (within it) or stream them.

    Raises:
        BudgetError: ``CATDOG_MEMORY_BUDGET_MB`` is set but is not a positive number.
    """
    size = decoded_bytes(images, image_size)
    budget, source = memory_budget()
    return InputChoice(size > budget, size, budget, source)
