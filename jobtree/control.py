"""Requests anyone may write to a queue: cancel, pause, resume, set priority, retry.

Each is a set of token renames (docs/format.md), so it needs no worker's cooperation and no lock.
A running job's worker notices a cancel within a fraction of a second because its token is gone
(see lease.Monitor) and stops the job's processes.
"""

from __future__ import annotations

import os
import socket
import time
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from . import _fs
from . import _layout as L
from ._index import (
    RootIndex,
    indexDir,
    jobDirOf,
    jobOptionsOf,
    jobPriority,
    loadToken,
    parseToken,
    pausedBy,
    readSpec,
)
from .errors import JobNotFound
from .state import checkTransition

if TYPE_CHECKING:
    from .handle import JobHandle


def _who() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def _subtree(h: JobHandle, recursive: bool = True) -> tuple[RootIndex, list[str]]:
    index = RootIndex(h.rootDir)
    paths = index.subtree(h.path) if recursive else [h.path]
    paths = [p for p in paths if p in index.tokens]
    if not paths:
        raise JobNotFound(f"job {h.location} is not in the queue (deleted?)")
    return index, paths


def cancel(handles: Iterable[JobHandle]) -> int:
    """Cancel jobs and every unfinished job of their subtrees. Running ones lose their claim:
    their workers stop them and discard their results. Returns how many jobs were cancelled."""
    count = 0
    for h in handles:
        index, paths = _subtree(h)
        for p in paths:
            state, name = index.tokens[p]
            if state in L.FINAL_STATES:
                continue
            checkTransition(state, L.CANCELLED)
            target = os.path.join(indexDir(h.rootDir, L.CANCELLED), p)
            claim = loadToken(h.rootDir, state, name)
            if _fs.move(os.path.join(indexDir(h.rootDir, state), name), target):
                claim.update(cancelledBy=_who(), cancelledAt=time.time(), error="cancelled")
                if state == L.RUNNING:
                    claim["cancelledWhileRunning"] = True
                _fs.writeAtomic(target, _fs.dumpJson(claim))
                count += 1
    return count


def pause(handles: Iterable[JobHandle]) -> int:
    """Hold subtrees: none of their jobs is claimed until resumed (running ones finish)."""
    count = 0
    for h in handles:
        index, paths = _subtree(h)
        _fs.createEmpty(os.path.join(h.location, L.PAUSE_MARKER))
        for p in paths:
            state, name = index.tokens[p]
            if state == L.READY:
                checkTransition(L.READY, L.PAUSED)
                if _fs.move(
                    os.path.join(indexDir(h.rootDir, L.READY), name),
                    os.path.join(indexDir(h.rootDir, L.PAUSED), name),
                ):
                    count += 1
    return count


def resume(handles: Iterable[JobHandle]) -> int:
    """Lift the pauses on and below these jobs; their held jobs become ready again (unless an
    ancestor is still paused)."""
    count = 0
    for h in handles:
        index, paths = _subtree(h)
        for p in paths:
            _fs.unlinkIfExists(os.path.join(jobDirOf(h.rootDir, p), L.PAUSE_MARKER))
        for p in paths:
            state, name = index.tokens[p]
            if state == L.PAUSED and pausedBy(h.rootDir, p) is None:
                checkTransition(L.PAUSED, L.READY)
                if _fs.move(
                    os.path.join(indexDir(h.rootDir, L.PAUSED), name),
                    os.path.join(indexDir(h.rootDir, L.READY), name),
                ):
                    count += 1
    return count


def setPriority(handles: Iterable[JobHandle], priority: int) -> int:
    """Give every job of these subtrees a new priority (runnable ones are re-ordered at once)."""
    if isinstance(priority, bool) or not isinstance(priority, int):
        raise TypeError(f"priority must be an int, not {priority!r}")
    count = 0
    for h in handles:
        index, paths = _subtree(h)
        for p in paths:
            jobDir = jobDirOf(h.rootDir, p)
            spec = readSpec(jobDir)
            opts = spec.get("jobOptions")
            spec["jobOptions"] = dict(opts if isinstance(opts, dict) else {}, priority=priority)
            _fs.writeAtomic(os.path.join(jobDir, L.JOB_FILE), _fs.dumpJson(spec))
            state, name = index.tokens[p]
            if state in (L.READY, L.PAUSED):
                _, _, notBefore = L.parseReadyName(name)
                newName = L.readyName(p, priority, notBefore or None)
                if newName != name:
                    checkTransition(state, state)
                    _fs.move(
                        os.path.join(indexDir(h.rootDir, state), name),
                        os.path.join(indexDir(h.rootDir, state), newName),
                    )
            count += 1
    return count


def retry(handles: Iterable[JobHandle], recursive: bool = True) -> int:
    """Run failed or cancelled jobs again (with *recursive*, every one of the subtrees), with a
    fresh allowance of ``maxAttempts``. Returns how many jobs were put back."""
    count = 0
    for h in handles:
        index, paths = _subtree(h, recursive)
        for p in paths:
            state, name = index.tokens[p]
            if state not in (L.FAILED, L.CANCELLED):
                continue
            jobDir = jobDirOf(h.rootDir, p)
            pending = os.path.join(jobDir, L.PENDING_DIR)
            waiting = bool(_fs.listNames(pending)) if os.path.isdir(pending) else False
            if not waiting:
                _fs.rmdirIfEmpty(pending)
            if waiting:
                target = os.path.join(indexDir(h.rootDir, L.WAITING), p)
            else:
                where = L.PAUSED if pausedBy(h.rootDir, p) else L.READY
                target = os.path.join(
                    indexDir(h.rootDir, where),
                    L.readyName(p, jobPriority(jobOptionsOf(h.rootDir, p))),
                )
            source = os.path.join(indexDir(h.rootDir, state), name)
            claim = _retryClaim(_fs.readBytes(source))
            # Rewrite while the token is still in failed/ (no worker touches it there), then move.
            _fs.writeAtomic(source, _fs.dumpJson(claim))
            checkTransition(state, L.WAITING if waiting else L.READY)
            if _fs.move(source, target):
                count += 1
    return count


def _retryClaim(data: bytes | None) -> dict[str, Any]:
    claim = parseToken(data)
    for k in (
        "error",
        "cancelledBy",
        "cancelledAt",
        "cancelledWhileRunning",
        "markedFailedBy",
        "markedFailedAt",
    ):
        claim.pop(k, None)
    claim["failures"] = 0
    claim["lost"] = 0
    claim["retriedBy"] = _who()
    claim["retriedAt"] = time.time()
    return claim
