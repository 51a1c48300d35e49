"""JobQueue.check(): find, and with repair fix, what crashes and hands can leave half-done.

Safe while workers run: every repair is a step the format already allows (a takeover, a
repeated cascade, removing what no process can be using), and a second run finds nothing.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

from . import _fs
from . import _layout as L
from ._index import (
    RootIndex,
    indexDir,
    jobDirOf,
    makeReady,
    parentPath,
    readDeps,
    readSpec,
    release,
)
from .lease import GRACE, finishTakeOver, staleTokens, takeOver

if TYPE_CHECKING:
    from .queue import JobQueue

ABANDONED_AFTER = 3600.0
"""Seconds after which a staging root, temporary file or probe file counts as abandoned."""
TAKEOVER_STUCK_AFTER = 30.0
"""Seconds after which a half-done takeover (a private token name) is finished by check()."""


@dataclass
class Problem:
    """One finding of :meth:`JobQueue.check`."""

    kind: str
    path: str
    message: str
    repaired: bool = False

    def __str__(self) -> str:
        return f"{self.kind}: {self.path}: {self.message}{' (repaired)' if self.repaired else ''}"


def check(q: JobQueue, repair: bool) -> list[Problem]:
    loc = q._need()
    now = q._clock.now()
    problems: list[Problem] = []

    def found(kind: str, path: str, message: str, fix: object = None) -> None:
        repaired = False
        if repair and callable(fix):
            try:
                fix()
                repaired = True
            except OSError as exc:
                message += f"; repair failed: {exc}"
        problems.append(Problem(kind, path, message, repaired))

    def age(path: str) -> float:
        try:
            return now - os.lstat(path).st_mtime
        except OSError:
            return 0.0

    for name in _fs.listNames(q._staging):
        p = os.path.join(q._staging, name)
        if age(p) > ABANDONED_AFTER:
            found(
                "half-submitted root",
                p,
                "never activated (its submitter died or gave up)",
                lambda p=p: _fs.removeTree(p),
            )
    for name in os.listdir(q._trash) if os.path.isdir(q._trash) else []:
        p = os.path.join(q._trash, name)
        found(
            "interrupted deletion",
            p,
            "left in trash by a deletion that did not finish",
            lambda p=p: _fs.removeTree(p),
        )
    clockDir = os.path.join(loc, L.CLOCK_DIR)
    for name in _fs.listNames(clockDir):
        p = os.path.join(clockDir, name)
        if age(p) > ABANDONED_AFTER and p != q._clock.path:
            found(
                "stale probe file",
                p,
                "clock probe of a process that stopped",
                lambda p=p: _fs.unlinkIfExists(p),
            )

    for name in _fs.listNames(q._roots):
        p = os.path.join(q._roots, name)
        if os.path.islink(p):
            # Never followed: removing the link leaves whatever it points at alone.
            found(
                "planted symlink",
                p,
                f"points to {os.readlink(p)}; jobtree never lists or runs it",
                lambda p=p: _fs.unlinkIfExists(p),
            )
    for rid in q._rootIds():
        try:
            _checkRoot(q, os.path.join(q._roots, rid), now, found, age)
        except PermissionError as exc:
            found("unreadable", os.path.join(q._roots, rid), f"cannot be checked: {exc}")
    return problems


def _checkRoot(q: JobQueue, rootDir: str, now: float, found, age) -> None:  # type: ignore[no-untyped-def]
    if os.path.islink(rootDir):
        found("planted symlink", rootDir, "a root that is a symbolic link is never run or followed")
        return
    # Temporary files and half-done takeovers.
    for state in L.INDEX_STATES:
        d = indexDir(rootDir, state)
        try:
            names = os.listdir(d)
        except OSError:
            found(
                "missing index directory",
                d,
                "the root's index is incomplete",
                lambda d=d: os.makedirs(d, exist_ok=True),
            )
            continue
        for name in names:
            if not name.startswith(L.TEMP_PREFIX):
                continue
            p = os.path.join(d, name)
            if ".takeover." in name and age(p) > TAKEOVER_STUCK_AFTER:
                path = L.tokenPath(name[len(L.TEMP_PREFIX) :])
                found(
                    "interrupted takeover",
                    p,
                    f"job {path} was being taken over",
                    lambda p=p, path=path: finishTakeOver(rootDir, path, p, now, "check"),
                )
            elif ".takeover." not in name and age(p) > ABANDONED_AFTER:
                found(
                    "orphaned temporary file",
                    p,
                    "an atomic write that never finished",
                    lambda p=p: _fs.unlinkIfExists(p),
                )
    # Expired leases.
    for name, claim, ageSeconds in staleTokens(rootDir, now):
        found(
            "stale claim",
            os.path.join(indexDir(rootDir, L.RUNNING), name),
            f"attempt {claim.get('attempt')} on {claim.get('host')} (pid {claim.get('pid')}) "
            f"has not renewed its lease for {ageSeconds:.0f} s",
            lambda name=name: takeOver(rootDir, name, now, "expired lease (check)"),
        )
    index = RootIndex(rootDir)
    deps = readDeps(rootDir)
    dependants: dict[str, list[str]] = {}
    for job, ds in deps.items():
        for d in ds:
            dependants.setdefault(d, []).append(job)
    for path, (state, name) in sorted(index.tokens.items()):
        jobDir = jobDirOf(rootDir, path)
        if not os.path.isdir(jobDir) or os.path.islink(jobDir):
            found(
                "token without job",
                os.path.join(indexDir(rootDir, state), name),
                f"job {path} has no directory (deleted by hand?)",
                lambda state=state, name=name, path=path: (
                    _fs.unlinkIfExists(os.path.join(indexDir(rootDir, state), name)),
                    release(rootDir, [path]),
                ),
            )
            continue
        try:
            readSpec(jobDir)
        except Exception as exc:
            found("corrupt job", jobDir, str(exc))
        if state == L.DONE:
            waiters = [(parentPath(path), path.rpartition(".")[2])] if path != L.ROOT_PATH else []
            waiters += [(w, L.DEP_PREFIX + path) for w in dependants.get(path, ())]
            for waiter, entry in waiters:
                if waiter and os.path.lexists(
                    os.path.join(jobDirOf(rootDir, waiter), L.PENDING_DIR, entry)
                ):
                    found(
                        "unreleased dependant",
                        jobDirOf(rootDir, waiter),
                        f"still waits for {path}, which is done (a worker died mid-cascade)",
                        lambda path=path: release(rootDir, [path], deps),
                    )
        elif state == L.WAITING:
            pending = os.path.join(jobDir, L.PENDING_DIR)
            if (
                not _fs.listNames(pending)
                and age(os.path.join(indexDir(rootDir, state), name)) > GRACE
            ):
                found(
                    "stuck waiting job",
                    jobDir,
                    "waits for nothing but is not ready (a worker died mid-cascade)",
                    lambda pending=pending, path=path: (
                        _fs.rmdirIfEmpty(pending),
                        makeReady(rootDir, path),
                    ),
                )
    # Job directories without a token (a crash cannot make these; hands and half-restores can).
    # A token moving backwards (running to ready, say) while the index is listed looks missing
    # for an instant, and a token under a private takeover name is not missing: see _restoreToken.
    taking = {
        L.tokenPath(n[len(L.TEMP_PREFIX) :])
        for n in os.listdir(indexDir(rootDir, L.RUNNING))
        if n.startswith(L.TEMP_PREFIX) and ".takeover." in n
    }
    for d in _fs.walkDirs(rootDir):
        rel = [] if d == rootDir else os.path.relpath(d, rootDir).split(os.sep)
        if not all(L.CHILD_NAME_RE.match(p) for p in rel):
            continue
        path = ".".join([L.ROOT_PATH, *rel])
        for name in os.listdir(d):  # temporary files of atomic writes in job directories
            p = os.path.join(d, name)
            if (
                name.startswith(L.TEMP_PREFIX)
                and name.endswith(".tmp")
                and age(p) > ABANDONED_AFTER
            ):
                found(
                    "orphaned temporary file",
                    p,
                    "an atomic write that never finished",
                    lambda p=p: _fs.unlinkIfExists(p),
                )
        if d == rootDir or path in index.tokens or path in taking:
            continue
        if not os.path.exists(os.path.join(d, L.JOB_FILE)):
            continue
        found(
            "job without token",
            d,
            f"job {path} is in no index directory, so it can never run",
            lambda path=path, d=d: _restoreToken(rootDir, path, d),
        )


def _restoreToken(rootDir: str, path: str, jobDir: str) -> None:
    """Give a job its token back, but only if it is really missing: a token that moves backwards
    (running to ready) while the index is listed, or sits under a private takeover name, only
    looks missing. Two more listings apart in time make that impossible to mistake."""
    for _ in range(2):
        time.sleep(0.2)
        if path in RootIndex(rootDir).tokens or any(
            n.startswith(f"{L.TEMP_PREFIX}{path}@")
            for n in os.listdir(indexDir(rootDir, L.RUNNING))
        ):
            return
    waiting = os.path.join(indexDir(rootDir, L.WAITING), path)
    if not _fs.createEmpty(waiting):
        return
    if not _fs.listNames(os.path.join(jobDir, L.PENDING_DIR)):
        _fs.rmdirIfEmpty(os.path.join(jobDir, L.PENDING_DIR))
        makeReady(rootDir, path)


def healRoot(rootDir: str, now: float) -> int:
    """What a worker does for a root in which nothing is ready or running: finish cascades and
    takeovers that a dead worker left half-done (the repairs of check() that only a crash makes
    necessary). Idempotent; returns how many repairs it made."""
    repaired = 0
    runningDir = indexDir(rootDir, L.RUNNING)
    for name in os.listdir(runningDir) if os.path.isdir(runningDir) else []:
        if name.startswith(L.TEMP_PREFIX) and ".takeover." in name:
            p = os.path.join(runningDir, name)
            try:
                stuck = now - os.stat(p).st_mtime > TAKEOVER_STUCK_AFTER
            except OSError:
                continue
            if stuck and finishTakeOver(
                rootDir, L.tokenPath(name[len(L.TEMP_PREFIX) :]), p, now, "heal"
            ):
                repaired += 1
    index = RootIndex(rootDir)
    states = {p: s for p, (s, _) in index.tokens.items()}
    if any(s in (L.READY, L.RUNNING) for s in states.values()):
        return repaired
    deps = readDeps(rootDir)
    for path, state in states.items():
        if state != L.WAITING:
            continue
        pending = os.path.join(jobDirOf(rootDir, path), L.PENDING_DIR)
        entries = _fs.listNames(pending)
        waitedFor = [
            e[len(L.DEP_PREFIX) :] if e.startswith(L.DEP_PREFIX) else f"{path}.{e}" for e in entries
        ]
        done = [p for p in waitedFor if states.get(p) == L.DONE]
        if done:
            release(rootDir, done, deps)
            repaired += 1
        elif not entries:
            _fs.rmdirIfEmpty(pending)
            if makeReady(rootDir, path):
                repaired += 1
    return repaired
