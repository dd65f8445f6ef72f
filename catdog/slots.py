"""Per-workspace job slots: one import (or audit...) per workspace at a time, a few per server.

The policy (:meth:`catdog.policy.Policy.job_slot`) decides whether slots apply and how many the
server has; this module only keeps count, for this process. A slot is refused at once, never
waited for: a visitor's page must not hang behind someone else's work.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager

from catdog.quota import HostedLimitError

_NOUNS = {"import": "import", "audit": "data audit", "training": "training"}


class Slots:
    """The slots held now in this process, by kind and workspace (thread-safe)."""

    def __init__(self) -> None:
        self._held: dict[str, list[str | None]] = {}
        self._lock = threading.Lock()
        self._mine = threading.local()  # the slots this thread holds: nested holds are free

    def held(self, kind: str) -> int:
        """How many slots of ``kind`` are held on the server now."""
        with self._lock:
            return len(self._held.get(kind, []))

    @contextmanager
    def hold(self, kind: str, workspace: str | None, server_cap: int) -> Iterator[None]:
        """Hold ``workspace``'s one slot of ``kind`` for the ``with`` block (a thread that holds
        it already holds it again for free: an entry point may call another).

        Raises:
            HostedLimitError: the workspace holds one already, or ``server_cap`` are held.
        """
        mine: set = self._mine.__dict__.setdefault("held", set())
        if (kind, workspace) in mine:
            yield
            return
        noun = _NOUNS.get(kind, kind)
        with self._lock:
            holders = self._held.setdefault(kind, [])
            if workspace in holders:
                article = "an" if noun[0] in "aeiou" else "a"
                raise HostedLimitError(
                    f"{article} {noun} is already running in your workspace; wait for it to "
                    "finish, then try again"
                )
            if len(holders) >= server_cap:
                raise HostedLimitError(
                    f"the server is busy ({len(holders)} {noun}(s) running, its limit); try "
                    "again in a minute"
                )
            holders.append(workspace)
        mine.add((kind, workspace))
        try:
            yield
        finally:
            mine.discard((kind, workspace))
            with self._lock:
                holders.remove(workspace)


SLOTS = Slots()
