"""What the monitor can do to jobs: small command objects over the jobtree API.

Every command works on *targets*: the selected jobs, each standing for its whole subtree (as the
jobtree requests do). A job selected together with one of its ancestors is dropped (the ancestor
covers it). The commands never touch the queue's files themselves: they call
:class:`jobtree.JobQueue` methods, in a pool thread (a subtree of thousands of jobs takes a moment),
and the GUI rescans the roots they touched. Pure Python: no Qt here.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, ClassVar

from jobtree import JobQueue


@dataclass(frozen=True)
class Target:
    """One selected job: its queue, root, path and directory, and what its subtree holds."""

    queue: str
    rootId: str
    path: str
    jobDir: str
    label: str
    running: int = 0
    """running jobs in its subtree (a delete must stop them)"""
    total: int = 1


def collapse(targets: Iterable[Target]) -> list[Target]:
    """Targets without those inside another target's subtree, in a stable order."""
    ts = sorted(set(targets), key=lambda t: (t.queue, t.rootId, t.path.count("."), t.path))
    kept: list[Target] = []
    keys: set[tuple[str, str, str]] = set()
    for t in ts:
        p: str | None = t.path
        covered = False
        while p is not None:
            if (t.queue, t.rootId, p) in keys:
                covered = True
                break
            p = p.rpartition(".")[0] if "." in p else None
        if not covered:
            kept.append(t)
            keys.add((t.queue, t.rootId, t.path))
    return kept


def _byQueue(targets: list[Target]) -> dict[str, list[Target]]:
    out: dict[str, list[Target]] = {}
    for t in targets:
        out.setdefault(t.queue, []).append(t)
    return out


def _describe(targets: list[Target]) -> str:
    if len(targets) == 1:
        t = targets[0]
        what = "root" if t.path == "root" else "job"
        sub = f" and its {t.total - 1:,} sub-jobs" if t.total > 1 else ""
        return f'{what} "{t.label}"{sub}'
    total = sum(t.total for t in targets)
    return f"{len(targets)} selected jobs ({total:,} jobs with their sub-jobs)"


class Command:
    """One action. Subclasses set the class attributes and implement :meth:`apply`."""

    name: ClassVar[str] = ""
    text: ClassVar[str] = ""
    shortcut: ClassVar[str] = ""
    tip: ClassVar[str] = ""
    destructive: ClassVar[bool] = False
    needsValue: ClassVar[bool] = False

    def confirmation(self, targets: list[Target]) -> str | None:
        """The question to ask before running, or None when none is needed."""
        return None

    def run(self, targets: list[Target], value: Any = None) -> str:
        """Apply to every target (grouped by queue); returns a one-line summary."""
        targets = collapse(targets)
        count = 0
        for location, ts in _byQueue(targets).items():
            q = JobQueue(location)
            handles = [q.jobHandle(t.jobDir) for t in ts]
            count += self.apply(q, handles, targets=ts, value=value)
        return self.summary(count, targets, value)

    def apply(self, q: JobQueue, handles: list[Any], *, targets: list[Target], value: Any) -> int:
        raise NotImplementedError

    def summary(self, count: int, targets: list[Target], value: Any) -> str:
        return f"{self.text}: {count:,} job(s)"


class Retry(Command):
    name, text, shortcut = "retry", "Retry", "Ctrl+R"
    tip = "Run failed or cancelled jobs of the selected subtrees again"

    def apply(self, q: JobQueue, handles: list[Any], *, targets: list[Target], value: Any) -> int:
        return q.retry(handles, recursive=True)

    def summary(self, count: int, targets: list[Target], value: Any) -> str:
        return f"Retry: {count:,} job(s) put back"


class Cancel(Command):
    name, text, shortcut = "cancel", "Cancel", "Ctrl+K"
    tip = "Cancel every unfinished job of the selected subtrees (running ones are stopped)"
    destructive = True

    def confirmation(self, targets: list[Target]) -> str:
        targets = collapse(targets)
        running = sum(t.running for t in targets)
        extra = f"\n\n{running:,} running job(s) will be stopped." if running else ""
        return f"Cancel {_describe(targets)}?{extra}"

    def apply(self, q: JobQueue, handles: list[Any], *, targets: list[Target], value: Any) -> int:
        return q.cancel(handles)

    def summary(self, count: int, targets: list[Target], value: Any) -> str:
        return f"Cancel: {count:,} job(s) cancelled"


class Pause(Command):
    name, text, shortcut = "pause", "Pause", "Ctrl+P"
    tip = "Hold the selected subtrees: nothing in them starts until resumed"

    def apply(self, q: JobQueue, handles: list[Any], *, targets: list[Target], value: Any) -> int:
        return q.pause(handles)

    def summary(self, count: int, targets: list[Target], value: Any) -> str:
        return f"Pause: {len(targets):,} subtree(s) paused, {count:,} ready job(s) held"


class Resume(Command):
    name, text, shortcut = "resume", "Resume", "Ctrl+U"
    tip = "Lift pauses on and below the selected jobs"

    def apply(self, q: JobQueue, handles: list[Any], *, targets: list[Target], value: Any) -> int:
        return q.resume(handles)

    def summary(self, count: int, targets: list[Target], value: Any) -> str:
        return f"Resume: {count:,} job(s) ready again"


class SetPriority(Command):
    name, text, shortcut = "priority", "Set priority...", "Ctrl+I"
    tip = "Give every job of the selected subtrees a new priority (higher runs first)"
    needsValue = True

    def apply(self, q: JobQueue, handles: list[Any], *, targets: list[Target], value: Any) -> int:
        return q.setPriority(handles, int(value))

    def summary(self, count: int, targets: list[Target], value: Any) -> str:
        return f"Priority {value}: {count:,} job(s)"


class Delete(Command):
    name, text, shortcut = "delete", "Delete", "Del"
    tip = "Delete the selected jobs with their sub-jobs (running ones are stopped)"
    destructive = True

    def confirmation(self, targets: list[Target]) -> str:
        targets = collapse(targets)
        running = sum(t.running for t in targets)
        extra = (
            f"\n\n{running:,} running job(s) will be stopped and their results discarded."
            if running
            else ""
        )
        return f"Delete {_describe(targets)}? This cannot be undone.{extra}"

    def apply(self, q: JobQueue, handles: list[Any], *, targets: list[Target], value: Any) -> int:
        force = any(t.running for t in targets)
        q.deleteJobs(handles, force=force)
        return sum(t.total for t in targets)

    def summary(self, count: int, targets: list[Target], value: Any) -> str:
        return f"Delete: {len(targets):,} subtree(s), {count:,} job(s) deleted"


COMMANDS: tuple[Command, ...] = (Retry(), Cancel(), Pause(), Resume(), SetPriority(), Delete())
BY_NAME = {c.name: c for c in COMMANDS}
