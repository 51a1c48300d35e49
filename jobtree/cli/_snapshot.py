"""Reading a root for display: one listing of its index, then each job's files at most once.

JobHandle re-reads the disk on every property (it must: it is a live view); a command that
shows hundreds of jobs reads each root's index once here instead. The dictionaries built here
are the ``--json`` output, so their keys are a documented interface (docs/cli.md).
"""

from __future__ import annotations

import fnmatch
import os
from collections.abc import Iterable
from typing import Any

from .. import _fs
from .. import _layout as L
from .._index import (
    RootIndex,
    indexDir,
    jobDirOf,
    loadToken,
    parentPath,
    readDeps,
    readSpec,
)
from ..errors import CorruptJob, JobTreeError
from ..handle import JobHandle
from ..queue import JobQueue
from ..state import JobState
from ._address import address

STATE_NAMES = [s.value for s in JobState]
FINISHED = (JobState.DONE, JobState.FAILED, JobState.CANCELLED)


class RootView:
    """A snapshot of one root: its index read once, each job's files read on demand and kept."""

    def __init__(self, queue: JobQueue, rootDir: str) -> None:
        self.queue = queue
        self.rootDir = rootDir
        self.rootId = os.path.basename(rootDir)
        self.index = RootIndex(rootDir)
        self.states = self.index.states()
        self._specs: dict[str, dict[str, Any]] = {}
        self._records: dict[str, dict[str, Any]] = {}
        self._children: dict[str, list[str]] | None = None
        self._counts: dict[str, dict[str, int]] | None = None

    # -- structure -------------------------------------------------------------------------------

    def children(self, path: str) -> list[str]:
        if self._children is None:
            kids: dict[str, list[str]] = {}
            for p in self.states:
                parent = parentPath(p)
                if parent is not None:
                    kids.setdefault(parent, []).append(p)
            for v in kids.values():
                v.sort(key=lambda p: [int(x) for x in L.pathParts(p)])
            self._children = kids
        return self._children.get(path, [])

    def counts(self, path: str = L.ROOT_PATH) -> dict[str, int]:
        """How many jobs of the subtree at *path* (itself included) are in each state."""
        if self._counts is None:
            # One pass: every job counts for itself and each of its ancestors.
            table: dict[str, dict[str, int]] = {}
            for p, s in self.states.items():
                q: str | None = p
                while q is not None:
                    row = table.get(q)
                    if row is None:
                        row = table[q] = dict.fromkeys(STATE_NAMES, 0)
                    row[s.value] += 1
                    q = parentPath(q)
            self._counts = table
        return dict(self._counts.get(path) or dict.fromkeys(STATE_NAMES, 0))

    # -- per-job files ---------------------------------------------------------------------------

    def spec(self, path: str) -> dict[str, Any]:
        spec = self._specs.get(path)
        if spec is None:
            try:
                spec = dict(readSpec(jobDirOf(self.rootDir, path)))
            except CorruptJob as exc:
                spec = {"jobType": "?", "corrupt": str(exc)}
            self._specs[path] = spec
        return spec

    def record(self, path: str) -> dict[str, Any]:
        """The latest attempt's information: the finished attempt's record merged over the claim
        (as JobHandle reads it), or the running claim with its progress."""
        rec = self._records.get(path)
        if rec is None:
            token = self.index.tokens.get(path)
            rec = {}
            if token is not None:
                state, name = token
                rec = dict(loadToken(self.rootDir, state, name))
                n = rec.get("attempt")
                if state != L.RUNNING and isinstance(n, int):
                    attempt = readAttempt(jobDirOf(self.rootDir, path), n)
                    if attempt.get("claim") == rec.get("claim"):
                        rec.update(attempt)
            self._records[path] = rec
        return rec

    def job(self, path: str) -> dict[str, Any]:
        """The JSON object of one job (the keys every read command shares)."""
        spec = self.spec(path)
        rec = self.record(path)
        state = self.states.get(path, JobState.WAITING)
        options = spec.get("jobOptions")
        options = options if isinstance(options, dict) else {}
        meta = options.get("metadata")
        progress = 100 if state is JobState.DONE else _number(rec.get("progress")) or 0
        return {
            "id": address(self.rootId, path),
            "rootId": self.rootId,
            "path": path,
            "location": jobDirOf(self.rootDir, path),
            "label": spec.get("label") if isinstance(spec.get("label"), str) else None,
            "jobType": str(spec.get("jobType")),
            "state": state.value,
            "progress": progress,
            "statusLine": rec.get("statusLine") if isinstance(rec.get("statusLine"), str) else "",
            "host": rec.get("host") if isinstance(rec.get("host"), str) else None,
            "pid": rec.get("pid") if isinstance(rec.get("pid"), int) else None,
            "attempt": rec.get("attempt") if isinstance(rec.get("attempt"), int) else 0,
            "priority": options.get("priority", 0),
            "submitTime": _number(spec.get("submitTime")),
            "startTime": _number(rec.get("startTime")),
            "endTime": _number(rec.get("endTime"))
            if state in (JobState.DONE, JobState.FAILED)
            else None,
            "error": rec.get("error") if isinstance(rec.get("error"), str) else spec.get("corrupt"),
            "metadata": dict(meta) if isinstance(meta, dict) else {},
        }

    # -- summaries -------------------------------------------------------------------------------

    def treeProgress(self, path: str = L.ROOT_PATH) -> float:
        """Progress of a whole subtree in percent: done jobs count 100, running ones their own."""
        prefix = path + "."
        total = 0.0
        n = 0
        for p, s in self.states.items():
            if p == path or p.startswith(prefix):
                n += 1
                if s is JobState.DONE:
                    total += 100
                elif s is JobState.RUNNING:
                    total += _number(self.record(p).get("progress")) or 0
        return round(total / n, 1) if n else 0.0

    def summaryState(self) -> JobState:
        """What a root is doing, for lists: its own state when finished, running, or paused;
        otherwise running if any job of it runs, blocked, paused if any is held, else its own."""
        own = self.states.get(L.ROOT_PATH, JobState.WAITING)
        if own in (*FINISHED, JobState.RUNNING, JobState.PAUSED):
            return own
        values = set(self.states.values())
        for s in (JobState.RUNNING, JobState.BLOCKED, JobState.PAUSED):
            if s in values or own is s:
                return s
        return own

    def runningPaths(self) -> list[str]:
        return sorted(p for p, s in self.states.items() if s is JobState.RUNNING)

    def rootSummary(self) -> dict[str, Any]:
        """The JSON object of a root in ``jobtree ls``."""
        d = self.job(L.ROOT_PATH)
        counts = self.counts()
        running = self.runningPaths()
        status = d["statusLine"]
        if not status and running:
            status = self.record(running[0]).get("statusLine") or ""
        d.update(
            summaryState=self.summaryState().value,
            jobs=sum(counts.values()),
            counts=counts,
            treeProgress=self.treeProgress(),
            running=[address(self.rootId, p) for p in running],
            treeStatusLine=status if isinstance(status, str) else "",
        )
        return d

    def hosts(self, path: str = L.ROOT_PATH) -> set[str]:
        prefix = path + "."
        out = set()
        for p in self.states:
            if p == path or p.startswith(prefix):
                h = self.record(p).get("host")
                if isinstance(h, str):
                    out.add(h)
        return out


def _number(v: Any) -> float | None:
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        return None
    return v


def readAttempt(jobDir: str, n: int) -> dict[str, Any]:
    try:
        data = _fs.readJson(os.path.join(jobDir, L.attemptFile(n)))
    except (ValueError, UnicodeDecodeError):
        return {}
    return data if isinstance(data, dict) else {}


def attemptNumbers(jobDir: str) -> list[int]:
    out = []
    for name in _fs.listNames(jobDir):
        parts = name.split(".")
        if len(parts) == 3 and parts[0] == "attempt" and parts[2] == "json" and parts[1].isdigit():
            out.append(int(parts[1]))
    return sorted(out)


def rootViews(q: JobQueue) -> list[RootView]:
    """A view of every activated root, in processing order (as listJobs)."""
    return [RootView(q, h.rootDir) for h in q.listJobs()]


# -- filters -------------------------------------------------------------------------------------


class Filters:
    """--state, --label, --host and --meta of ls and tree. Empty filters match everything."""

    def __init__(
        self,
        states: Iterable[str] = (),
        label: str | None = None,
        host: str | None = None,
        meta: Iterable[tuple[str, str]] = (),
    ) -> None:
        self.states = {s.lower() for s in states}
        self.label = label
        self.host = host
        self.meta = list(meta)

    @property
    def active(self) -> bool:
        return bool(self.states or self.label or self.host or self.meta)

    def matchJob(self, view: RootView, path: str, states: Iterable[str] | None = None) -> bool:
        if self.states:
            own = {states} if isinstance(states, str) else set(states or ())
            own.add(view.states.get(path, JobState.WAITING).value)
            if not own & self.states:
                return False
        spec = view.spec(path)
        if self.label is not None:
            label = spec.get("label")
            if not isinstance(label, str) or not fnmatch.fnmatchcase(
                label.lower(), self.label.lower()
            ):
                return False
        if self.host is not None:
            host = view.record(path).get("host")
            if not isinstance(host, str) or not fnmatch.fnmatchcase(host, self.host):
                return False
        if self.meta:
            options = spec.get("jobOptions")
            meta = options.get("metadata") if isinstance(options, dict) else None
            meta = meta if isinstance(meta, dict) else {}
            for k, v in self.meta:
                if k not in meta or not fnmatch.fnmatchcase(_metaStr(meta[k]), v):
                    return False
        return True

    def matchRoot(self, view: RootView) -> bool:
        """ls: the root's own and summary state, label and metadata; a host any job ran on."""
        if self.host is not None:
            if not any(fnmatch.fnmatchcase(h, self.host) for h in view.hosts()):
                return False
            sub = Filters(self.states, self.label, None, self.meta)
            return sub.matchJob(view, L.ROOT_PATH, [view.summaryState().value])
        return self.matchJob(view, L.ROOT_PATH, [view.summaryState().value])


def _metaStr(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    return str(v)


# -- why a job waits -----------------------------------------------------------------------------


def whyWaiting(q: JobQueue, h: JobHandle, state: JobState) -> str | None:
    """Why a job is not running (JobQueue.whyWaiting); None for running and finished jobs."""
    if state is JobState.RUNNING or state in FINISHED:
        return None
    try:
        return q.whyWaiting(h)
    except (JobTreeError, OSError) as exc:
        return f"cannot tell: {exc}"


def dependencies(rootDir: str, path: str) -> tuple[list[str], list[str]]:
    """(paths this job depends on, paths that depend on it) from deps.json."""
    deps = readDeps(rootDir)
    return list(deps.get(path, [])), sorted(k for k, v in deps.items() if path in v)


def indexMtime(rootDir: str, states: Iterable[str]) -> float:
    """The latest mtime of some index directories: a rename into one changes it."""
    out = 0.0
    for s in states:
        try:
            out = max(out, os.stat(indexDir(rootDir, s)).st_mtime)
        except OSError:
            pass
    return out
