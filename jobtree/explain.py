"""JobQueue.whyWaiting(): one sentence on why a job is not running."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from . import _layout as L
from ._index import RootIndex, jobDirOf, pausedBy, pendingEntries, readDeps
from .errors import CorruptJob
from .host import WorkerInfo, unmet
from .limits import holders
from .registry import listWorkers
from .state import JobState

if TYPE_CHECKING:
    from .handle import JobHandle
    from .queue import JobQueue


def _when(t: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(t))


def _label(h: JobHandle, path: str) -> str:
    try:
        label = h._queue.jobHandle(jobDirOf(h.rootDir, path)).label
    except Exception:
        label = None
    return f"{path} ({label})" if label else path


def liveWorkers(queueDir: str) -> list[WorkerInfo]:
    """The workers of the registry that are not lost."""
    out = []
    for w in listWorkers(queueDir):
        if w.get("lost"):
            continue
        out.append(
            WorkerInfo(
                host=str(w.get("host", "")),
                os=str(w.get("os", "")),
                cores=int(w.get("cores", 0) or 0),
                ramGB=float(w.get("ramGB", 0) or 0),
                pools=tuple(w.get("pools") or ()),
                tags=tuple(w.get("tags") or ()),
            )
        )
    return out


def whyWaiting(q: JobQueue, h: JobHandle) -> str:
    index = RootIndex(h.rootDir)
    states = index.states()
    state = states.get(h.path)
    if state is None:
        return "not in the queue (deleted?)"
    if state is JobState.DONE:
        return "done"
    if state is JobState.CANCELLED:
        return "cancelled; retry it to run it again"
    if state is JobState.FAILED:
        return f"failed: {h.error or 'no message'}; retry it to run it again"
    if state is JobState.RUNNING:
        return f"running on {h.host} (pid {h.pid}) since {_when(h.startTime or 0)}"
    if state is JobState.PAUSED:
        return f"paused by {_label(h, pausedBy(h.rootDir, h.path) or h.path)}; resume it to run"
    if state is JobState.BLOCKED:
        bad = [
            p
            for p, s in states.items()
            if s in (JobState.FAILED, JobState.CANCELLED)
            and (p.startswith(h.path + ".") or p in _dependencyClosure(h.rootDir, h.path, states))
        ]
        culprits = ", ".join(f"{_label(h, p)} {states[p].value}" for p in sorted(bad)[:3])
        return f"blocked: {culprits or 'a job it waits for failed'}; retry it to go on"
    if state is JobState.WAITING:
        entries = pendingEntries(h.rootDir, h.path)
        kids = [e for e in entries if not e.startswith(L.DEP_PREFIX)]
        deps = [e[len(L.DEP_PREFIX) :] for e in entries if e.startswith(L.DEP_PREFIX)]
        parts = []
        if kids:
            parts.append(f"{len(kids)} sub-job{'s' if len(kids) != 1 else ''}")
        if deps:
            parts.append("dependencies " + ", ".join(_label(h, d) for d in deps[:3]))
        return "waiting for " + (" and ".join(parts) or "its last sub-job to be released")
    # READY
    name = index.tokens[h.path][1]
    _, _, notBefore = L.parseReadyName(name)
    if notBefore > q._clock.now():
        return f"delayed until {_when(notBefore)} (retry delay or notBefore)"
    try:
        options = h.jobOptions
    except CorruptJob as exc:
        return f"ready, but its job file is corrupt ({exc}); a worker will fail it"
    requires: dict[str, Any] | None = options.get("requires")
    workers = liveWorkers(h._queue._need())
    if requires:
        able = [w for w in workers if not unmet(w, requires)]
        if not able:
            need = unmet(WorkerInfo(host="", os="", cores=0, ramGB=0.0), requires)
            return (
                f"needs {'; '.join(need) or requires}; none of the {len(workers)} live "
                "workers offers that"
            )
    for limit in options.get("limits") or ():
        slots = q._limitSlots(limit)
        used = len(holders(q._need(), limit))
        if used >= slots:
            return f"waiting for limit {limit!r}: {used} of {slots} slots in use"
    if not workers:
        return "ready; no live worker is running on this queue (start one: jobtree worker QUEUE)"
    return "ready: waiting for a free worker"


def _dependencyClosure(rootDir: str, path: str, states: dict[str, JobState]) -> set[str]:
    """Every job *path* waits for through dependencies (of itself or its subtree), transitively."""
    deps = readDeps(rootDir)
    out: set[str] = set()
    todo = [p for p in states if p == path or p.startswith(path + ".")]
    while todo:
        p = todo.pop()
        for d in deps.get(p, ()):
            if d not in out:
                out.add(d)
                todo.extend(q for q in states if q.startswith(d + "."))
                todo.append(d)
    return out
