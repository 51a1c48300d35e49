"""Job states, the reasons a queue is idle, and the table of allowed transitions."""

from __future__ import annotations

from enum import Enum

from . import _layout as L


class JobState(str, Enum):
    """The state of one job.

    ``WAITING``: sub-jobs or dependencies are unfinished. ``READY``: runnable, waiting for a worker.
    ``RUNNING``: a worker runs it. ``DONE`` and ``FAILED``: finished. ``BLOCKED``: waiting, but a
    failed job in its subtree or dependencies keeps it from ever running until that is retried.
    """

    WAITING = "waiting"
    READY = "ready"
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"
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
    BLOCKED = "blocked"
    """Nothing is ready or running, and failed jobs keep the rest from running."""

    def __str__(self) -> str:
        return self.value


# Which index directory a token may move to from which. BLOCKED is derived and never stored.
TRANSITIONS: dict[str, frozenset[str]] = {
    L.WAITING: frozenset({L.READY, L.FAILED}),
    L.READY: frozenset({L.RUNNING, L.WAITING, L.FAILED}),
    L.RUNNING: frozenset({L.DONE, L.FAILED, L.READY}),
    L.DONE: frozenset(),
    L.FAILED: frozenset({L.READY, L.WAITING}),
}


def checkTransition(source: str, target: str) -> None:
    """Raise ValueError unless a token may move from *source* to *target*."""
    if target not in TRANSITIONS[source]:
        raise ValueError(f"jobtree bug: a job cannot go from {source} to {target}")
