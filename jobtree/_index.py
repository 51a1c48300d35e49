"""The index of a root: where each job's token is, what that means, and how finishing a job
releases the jobs that waited for it (the cascade). See docs/format.md, "The index"."""

from __future__ import annotations

import json
import os
from collections.abc import Iterable
from typing import Any

from . import _fs
from . import _layout as L
from .errors import CorruptJob
from .state import JobState, checkTransition


def indexDir(rootDir: str, state: str) -> str:
    return os.path.join(rootDir, L.INDEX_DIR, state)


def jobDirOf(rootDir: str, path: str) -> str:
    parts = L.pathParts(path)
    return os.path.join(rootDir, *parts) if parts else rootDir


def parentPath(path: str) -> str | None:
    if path == L.ROOT_PATH:
        return None
    return path.rpartition(".")[0]


def childPath(path: str, name: str) -> str:
    return f"{path}.{name}"


def readDeps(rootDir: str) -> dict[str, list[str]]:
    """``{dependant: [dependencies]}`` of a root; {} without dependencies."""
    try:
        data = _fs.readJson(os.path.join(rootDir, L.DEPS_FILE))
    except ValueError as exc:
        raise CorruptJob(f"{os.path.join(rootDir, L.DEPS_FILE)} is corrupt: {exc}") from exc
    return data or {}


def readSpec(jobDir: str) -> dict[str, object]:
    """A job's ``job.json``; CorruptJob (naming the file) when it is unreadable or gone."""
    path = os.path.join(jobDir, L.JOB_FILE)
    try:
        data = _fs.readJson(path)
    except (ValueError, UnicodeDecodeError) as exc:
        raise CorruptJob(f"job file {path} is corrupt ({exc}); delete or resubmit the job") from exc
    if data is None:
        raise CorruptJob(f"job file {path} is missing; the job was deleted or never written")
    if not isinstance(data, dict) or not isinstance(data.get("jobType"), str):
        raise CorruptJob(f"job file {path} does not describe a job (no jobType)")
    return data


class RootIndex:
    """A snapshot of one root's index: five directory listings, no file opened."""

    def __init__(self, rootDir: str) -> None:
        self.rootDir = rootDir
        self.tokens: dict[str, tuple[str, str]] = {}
        """job path -> (index directory, token name)"""
        for state in L.INDEX_STATES:
            for name in _fs.listNames(indexDir(rootDir, state)):
                self.tokens[L.tokenPath(name)] = (state, name)
        self._states: dict[str, JobState] | None = None

    def states(self) -> dict[str, JobState]:
        """Every job's state, with BLOCKED derived: a waiting job whose subtree or dependencies
        hold a failed job."""
        if self._states is None:
            states = {p: JobState(s) for p, (s, _) in self.tokens.items()}
            bad = [p for p, s in states.items() if s in (JobState.FAILED, JobState.CANCELLED)]
            if bad:
                dependants: dict[str, list[str]] = {}
                for job, deps in readDeps(self.rootDir).items():
                    for d in deps:
                        dependants.setdefault(d, []).append(job)
                while bad:
                    p = bad.pop()
                    waiters = list(dependants.get(p, ()))
                    parent = parentPath(p)
                    if parent is not None:
                        waiters.append(parent)
                    for w in waiters:
                        if states.get(w) is JobState.WAITING:
                            states[w] = JobState.BLOCKED
                            bad.append(w)
            self._states = states
        return self._states

    def subtree(self, path: str) -> list[str]:
        prefix = path + "."
        return [p for p in self.tokens if p == path or p.startswith(prefix)]


def pausedBy(rootDir: str, path: str) -> str | None:
    """The path of the job (itself or an ancestor) whose pause holds this job, or None."""
    p: str | None = path
    while p is not None:
        if os.path.lexists(os.path.join(jobDirOf(rootDir, p), L.PAUSE_MARKER)):
            return p
        p = parentPath(p)
    return None


def jobOptionsOf(rootDir: str, path: str) -> dict[str, Any]:
    """A job's options for moving its token ({} when its job file cannot be read: the job still
    moves, and the worker that claims it fails it with the reason)."""
    try:
        options = readSpec(jobDirOf(rootDir, path)).get("jobOptions")
    except (CorruptJob, OSError):
        return {}
    return options if isinstance(options, dict) else {}


def jobPriority(options: dict[str, Any]) -> int:
    p = options.get("priority", 0)
    return p if isinstance(p, int) and not isinstance(p, bool) else 0


def makeReady(rootDir: str, path: str) -> bool:
    """Move a waiting job's token to ready/ (paused/ inside a paused subtree). False when it was
    not waiting (someone else moved it already)."""
    options = jobOptionsOf(rootDir, path)
    priority = jobPriority(options)
    notBefore = options.get("notBefore")
    target = L.PAUSED if pausedBy(rootDir, path) else L.READY
    checkTransition(L.WAITING, target)
    return _fs.move(
        os.path.join(indexDir(rootDir, L.WAITING), path),
        os.path.join(indexDir(rootDir, target), L.readyName(path, priority, notBefore)),
    )


def release(
    rootDir: str, paths: Iterable[str], deps: dict[str, list[str]] | None = None
) -> list[str]:
    """The cascade after jobs finished successfully (or were deleted): remove their entries from
    the ``_pending`` directories of their parents and dependants; whoever empties a ``_pending``
    directory makes its job ready. Idempotent. Returns the paths made ready by this call."""
    paths = list(paths)
    dependants: dict[str, list[str]] | None = None
    made: list[str] = []
    for path in paths:
        waiters: list[tuple[str, str]] = []
        parent = parentPath(path)
        if parent is not None:
            waiters.append((parent, path.rpartition(".")[2]))
        if deps is None:
            deps = readDeps(rootDir)
        if deps:
            if dependants is None:
                dependants = {}
                for job, ds in deps.items():
                    for d in ds:
                        dependants.setdefault(d, []).append(job)
            waiters.extend((w, L.DEP_PREFIX + path) for w in dependants.get(path, ()))
        for waiter, entry in waiters:
            pending = os.path.join(jobDirOf(rootDir, waiter), L.PENDING_DIR)
            _fs.unlinkIfExists(os.path.join(pending, entry))
            # rmdir succeeds for exactly one process, and only once the directory is empty:
            # that process is the one that finished the last thing the waiter waited for.
            if _fs.rmdirIfEmpty(pending) and makeReady(rootDir, waiter):
                made.append(waiter)
    return made


def pendingEntries(rootDir: str, path: str) -> list[str]:
    return _fs.listNames(os.path.join(jobDirOf(rootDir, path), L.PENDING_DIR))


def loadToken(rootDir: str, state: str, name: str) -> dict[str, Any]:
    """A token's content ({} when empty or gone; a half-written one reads as {})."""
    return parseToken(_fs.readBytes(os.path.join(indexDir(rootDir, state), name)))


def parseToken(data: bytes | None) -> dict[str, Any]:
    """A token's bytes as its claim: {} for a token that is gone (None), empty (a job that never
    ran), half-written or not a JSON object."""
    if not data or not data.strip():
        return {}
    try:
        value = json.loads(data)
    except ValueError:
        # A running job's token is rewritten in place; a reader can catch it half-written.
        return {}
    return value if isinstance(value, dict) else {}
