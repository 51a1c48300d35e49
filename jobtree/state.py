"""Job states, the reasons a queue is idle, and the table of allowed transitions."""

from __future__ import annotations

from enum import Enum

from . import _layout as L


class JobState(str, Enum):
    """The state of one job.

    ``WAITING``: sub-jobs or dependencies are unfinished. ``READY``: runnable, waiting for a worker.
    ``RUNNING``: a worker runs it. ``DONE``, ``FAILED`` and ``CANCELLED``: finished. ``PAUSED``:
    runnable but held by a pause of its subtree. ``BLOCKED``: waiting, but a failed or cancelled
    job in its subtree or dependencies keeps it from ever running until that is retried.
    """

    WAITING = "waiting"
    READY = "ready"
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"
    CANCELLED = "cancelled"
    PAUSED = "paused"
    BLOCKED = "blocked"

    def __str__(self) -> str:
        return self.value


class IdleReason(str, Enum):
    """Why ``runNextAvailableJob`` found nothing to run."""

    EMPTY = "empty"
    """The queue has no activated roots."""
    ALL_DONE = "all done"
    """Every job finished successfully."""
    RUNNING = "running elsewhere"
    """Nothing is ready, but jobs are running (their parents may become ready)."""
    DELAYED = "delayed"
    """Runnable jobs wait for their retry delay; nothing runs."""
    PAUSED = "paused"
    """Only paused jobs could run."""
    UNSUITABLE = "needs another worker"
    """The only runnable jobs need what this worker does not offer (requirements)."""
    BLOCKED = "blocked"
    """Nothing is ready or running, and failed or cancelled jobs keep the rest from running."""

    def __str__(self) -> str:
        return self.value


# Which index directory a token may move to from which. BLOCKED is derived and never stored.
TRANSITIONS: dict[str, frozenset[str]] = {
    L.WAITING: frozenset({L.READY, L.PAUSED, L.FAILED, L.CANCELLED}),
    L.READY: frozenset({L.RUNNING, L.PAUSED, L.FAILED, L.CANCELLED, L.READY}),
    L.PAUSED: frozenset({L.READY, L.CANCELLED, L.FAILED, L.PAUSED}),
    L.RUNNING: frozenset({L.DONE, L.FAILED, L.READY, L.PAUSED, L.CANCELLED}),
    L.DONE: frozenset(),
    L.FAILED: frozenset({L.READY, L.WAITING}),
    L.CANCELLED: frozenset({L.READY, L.WAITING}),
}


def checkTransition(source: str, target: str) -> None:
    """Raise ValueError unless a token may move from *source* to *target*."""
    if target not in TRANSITIONS[source]:
        raise ValueError(f"jobtree bug: a job cannot go from {source} to {target}")
