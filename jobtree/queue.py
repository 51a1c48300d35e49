"""JobQueue: a queue directory, and createJobQueue to make one."""

from __future__ import annotations

import logging
import os
import random
import secrets
import time
from collections.abc import Iterable
from typing import Any

from . import _fs, _options, _run, automation, control
from . import _layout as L
from ._index import RootIndex, indexDir, release
from .check import Problem, check, healRoot
from .errors import (
    CorruptJob,
    JobNotFound,
    JobRunningError,
    JobTreeError,
    QueueExists,
    QueueNotFound,
    QueueVersionError,
)
from .explain import whyWaiting
from .handle import JobHandle
from .host import WorkerInfo
from .lease import Monitor, ServerClock, serverClock, staleTokens, takeOver
from .limits import getLimits, holders, setLimit
from .security import Policy, makeDir
from .state import IdleReason, JobState
from .submit import JobRoot

RETENTION_SECONDS = 60.0
"""How often a worker applies the queue's retention setting."""
TAKEOVER_SCAN_SECONDS = 1.0
"""How often a worker looks for expired leases while it lists ready jobs."""
REFRESH_SECONDS = 0.2
"""How long a worker may work from one listing of the ready jobs before listing again."""
SPREAD = 8
"""After losing a race a worker skips up to SPREAD-1 candidates, so workers do not all chase one job."""


def createJobQueue(location: str | os.PathLike[str], **settings: Any) -> JobQueue:
    """Create a queue directory and return it as a :class:`JobQueue`.

    The parent directory must exist. *settings* are stored in the queue and are the defaults of
    every job's options (see the settings page of the docs); an unknown one is an error.
    """
    loc = os.path.abspath(os.fspath(location))
    checked = _options.checkSettings(settings, f"queue {loc}")
    parent = os.path.dirname(loc)
    if not os.path.isdir(parent):
        raise FileNotFoundError(
            f"cannot create queue {loc}: its parent directory {parent} does not exist"
        )
    try:
        os.mkdir(loc)
    except FileExistsError:
        if os.path.exists(os.path.join(loc, L.QUEUE_FILE)):
            raise QueueExists(
                f"{loc} is already a jobtree queue; open it with JobQueue({loc!r})"
            ) from None
        if not os.path.isdir(loc):
            raise QueueExists(
                f"cannot create queue {loc}: it exists and is not a directory"
            ) from None
        if os.listdir(loc):
            raise QueueExists(
                f"cannot create queue {loc}: the directory is not empty and is not a queue; "
                "choose an empty or new directory"
            ) from None
    shared = bool(checked.get("shared"))
    if shared:
        os.chmod(loc, 0o2775)
    for d in (L.ROOTS_DIR, L.STAGING_DIR, L.TRASH_DIR, L.CLOCK_DIR):
        if not os.path.isdir(os.path.join(loc, d)):
            makeDir(os.path.join(loc, d), shared)
    marker = {
        "format": L.FORMAT_NAME,
        "version": L.FORMAT_VERSION,
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "settings": checked,
    }
    # Written last, atomically: a half-created queue is never mistaken for one.
    _fs.writeAtomic(os.path.join(loc, L.QUEUE_FILE), _fs.dumpJson(marker), fsync=True)
    return JobQueue(loc)


class JobQueue:
    """A queue directory.

    It holds no state about jobs: any number of JobQueue objects, in any processes on any hosts,
    may use one queue at once, and any may be discarded at any time. (It keeps a short-lived
    list of candidates to claim, a hint that every claim checks against the disk.)
    ``JobQueue(None)`` is an empty queue that cannot receive jobs.
    """

    def __init__(
        self,
        location: str | os.PathLike[str] | None,
        logger: logging.Logger | None = None,
        *,
        keyFile: str | None = None,
        worker: WorkerInfo | None = None,
    ) -> None:
        self._logger = logger if logger is not None else logging.getLogger("jobtree")
        self._candidates: list[tuple[Any, ...]] = []
        self._cursor = 0
        self._listedAt = -1e9
        self._doneRoots: set[str] = set()
        self._spread = random.Random()
        self._scannedAt = -1e9
        self._monitorObj: Monitor | None = None
        self._unconfirmed: dict[str, float] = {}
        self._archivedAt = -1e9
        self._refreshEvery = REFRESH_SECONDS
        self._parsed: dict[str, dict[str, tuple[Any, str, int]]] = {}
        """Parsed ready-token names per root (a name never changes meaning)."""
        self._cannotRun: set[tuple[str, str]] = set()
        self._limited: dict[tuple[str, str], list[str]] = {}
        """Jobs given back because a limit was full, with their limits (read-only checks)."""
        """Jobs whose requirements this worker does not meet (job files never change them)."""
        self._workerInfo = worker
        self._limitCache: tuple[float, dict[str, int]] = (-1e9, {})
        if location is None:
            self.location: str | None = None
            self._settings: dict[str, Any] = {}
            self._policy = Policy("<empty queue>", {}, keyFile)
            return
        loc = os.path.abspath(os.fspath(location))
        self.location = loc
        markerFile = os.path.join(loc, L.QUEUE_FILE)
        try:
            marker = _fs.readJson(markerFile)
        except (ValueError, UnicodeDecodeError) as exc:
            raise CorruptJob(f"queue file {markerFile} is corrupt ({exc})") from exc
        except NotADirectoryError:
            marker = None
        if marker is None:
            raise QueueNotFound(
                f"{loc} is not a jobtree queue (no {L.QUEUE_FILE}); create one with createJobQueue()"
            )
        if not isinstance(marker, dict) or marker.get("format") != L.FORMAT_NAME:
            raise CorruptJob(f"queue file {markerFile} is not a jobtree queue marker")
        version = marker.get("version")
        if not isinstance(version, int) or version > L.FORMAT_VERSION:
            raise QueueVersionError(
                f"queue {loc} has format version {version}, but this jobtree reads versions up to "
                f"{L.FORMAT_VERSION}; upgrade jobtree on this host"
            )
        settings = marker.get("settings", {})
        self._settings = dict(settings) if isinstance(settings, dict) else {}
        self._policy = Policy(loc, self._settings, keyFile)
        if self._policy.shared:
            # Every member of the group must be able to rewrite tokens, logs and records that
            # another member created: files group-writable, directories inheriting the group.
            os.umask(os.umask(0o002) & 0o002)
        self._clockObj: ServerClock | None = None

    @property
    def _clock(self) -> ServerClock:
        if self._clockObj is None:
            self._clockObj = serverClock(self._need())
        return self._clockObj

    @property
    def _monitor(self) -> Monitor:
        m = self._monitorObj
        if m is None or (m.ident is not None and not m.is_alive()):
            # A monitor that died must not take every later job down with it.
            if m is not None:
                self._logger.error("jobtree: the lease monitor thread died; starting a new one")
            m = self._monitorObj = Monitor()
        return m

    @property
    def _worker(self) -> WorkerInfo:
        if self._workerInfo is None:
            self._workerInfo = WorkerInfo.detect(gpu=False)
        return self._workerInfo

    def _limitSlots(self, name: str) -> int:
        """Slots of a limit (re-read at most once a second); 0 for an undefined limit."""
        at, limits = self._limitCache
        if time.monotonic() - at > 1.0:
            limits = getLimits(self._need())
            self._limitCache = (time.monotonic(), limits)
        return limits.get(name, 0)

    def _limitsFull(self, names: list[str]) -> bool:
        return any(len(holders(self._need(), n)) >= self._limitSlots(n) for n in names)

    def setLimit(self, name: str, slots: int) -> None:
        """Define (or change) a limit: at most *slots* running jobs hold it at once, on all hosts."""
        setLimit(self._need(), name, slots)

    def limits(self) -> dict[str, int]:
        """The defined limits and their slots."""
        return getLimits(self._need()) if self.location is not None else {}

    def close(self) -> None:
        """Nothing to release: a JobQueue holds no open files. (The process's clock probe file
        in the queue is removed at exit.) Kept so that ``contextlib.closing`` works."""

    # -- locations -----------------------------------------------------------------------------

    def _need(self) -> str:
        if self.location is None:
            raise JobTreeError("JobQueue(None) is an empty queue and cannot receive jobs")
        return self.location

    @property
    def _roots(self) -> str:
        return os.path.join(self._need(), L.ROOTS_DIR)

    @property
    def _staging(self) -> str:
        return os.path.join(self._need(), L.STAGING_DIR)

    @property
    def _trash(self) -> str:
        return os.path.join(self._need(), L.TRASH_DIR)

    @property
    def settings(self) -> dict[str, Any]:
        """The queue's settings (defaults for every job's options)."""
        return dict(self._settings)

    def __repr__(self) -> str:
        return f"<JobQueue {self.location}>"

    # -- submission ------------------------------------------------------------------------------

    def createJobRoot(
        self,
        jobType: Any,
        *,
        label: str | None = None,
        jobOptions: dict[str, Any] | None = None,
        **params: Any,
    ) -> JobRoot:
        """Start a new root. Nothing of it is visible to workers until it is activated."""
        self._need()
        return JobRoot(self, jobType, label, jobOptions, params)

    createJob = createJobRoot

    # -- reading -------------------------------------------------------------------------------

    def _rootIds(self) -> list[str]:
        if self.location is None:
            return []
        roots = self._roots
        # A root that is a symbolic link was planted: it could point anywhere, so it is never
        # listed, run or followed (check() reports it).
        return sorted(
            n
            for n in _fs.listNames(roots)
            if L.ROOT_ID_RE.match(n) and not os.path.islink(os.path.join(roots, n))
        )

    def listJobs(self) -> list[JobHandle]:
        """The activated roots in processing order: higher priority first, then submission order."""
        handles = [self.jobHandle(os.path.join(self._roots, r)) for r in self._rootIds()]

        def priority(h: JobHandle) -> int:
            try:
                p = h.jobOptions.get("priority", 0)
            except (CorruptJob, OSError):
                return 0
            return p if isinstance(p, int) else 0

        return sorted(handles, key=lambda h: (-priority(h), h.rootId))

    def jobHandle(self, location: str | os.PathLike[str]) -> JobHandle:
        """The JobHandle of a job directory inside this queue."""
        loc = os.path.abspath(os.fspath(location))
        rel = os.path.relpath(loc, self._roots)
        parts = rel.split(os.sep)
        if (
            rel.startswith("..")
            or not L.ROOT_ID_RE.match(parts[0])
            or not all(L.CHILD_NAME_RE.match(p) for p in parts[1:])
        ):
            raise JobNotFound(f"{loc} is not a job directory of queue {self.location}")
        if not os.path.isdir(loc):
            raise JobNotFound(f"job {loc} does not exist (deleted, or never activated)")
        if any(
            os.path.islink(os.path.join(self._roots, *parts[: i + 1])) for i in range(len(parts))
        ):
            raise JobNotFound(f"{loc} passes through a symbolic link; jobtree never follows those")
        rootDir = os.path.join(self._roots, parts[0])
        return JobHandle(self, loc, rootDir, ".".join([L.ROOT_PATH, *parts[1:]]))

    def idleReason(self) -> IdleReason | None:
        """None when a job is runnable now; otherwise why nothing is."""
        rootIds = self._rootIds()
        if not rootIds:
            return IdleReason.EMPTY
        running = stuck = paused = delayed = inFlight = unsuitable = False
        now = self._clock.now()
        for rid in rootIds:
            rootDir = os.path.join(self._roots, rid)
            if os.path.exists(os.path.join(indexDir(rootDir, L.DONE), L.ROOT_PATH)):
                continue
            index = RootIndex(rootDir)
            for path, state in index.states().items():
                if state is JobState.READY:
                    if L.parseReadyName(index.tokens[path][1])[2] > now:
                        delayed = True
                    elif (rootDir, path) in self._cannotRun:
                        unsuitable = True
                    else:
                        return None
                elif state is JobState.RUNNING:
                    running = True
                elif state is JobState.PAUSED:
                    paused = True
                elif state is JobState.WAITING:
                    inFlight = True
                elif state is not JobState.DONE:
                    stuck = True
        if running:
            return IdleReason.RUNNING
        if delayed:
            return IdleReason.DELAYED
        if unsuitable:
            return IdleReason.UNSUITABLE
        if paused:
            return IdleReason.PAUSED
        if inFlight:
            # Waiting jobs with nothing failed below them and nothing running, delayed or
            # paused: a worker is between committing a last sub-job and releasing its parent
            # (or died there, which check() repairs).
            return IdleReason.RUNNING
        return IdleReason.BLOCKED if stuck else IdleReason.ALL_DONE

    # -- running -------------------------------------------------------------------------------

    def _refresh(self) -> None:
        """List the ready jobs of every unfinished root and order them (docs/format.md)."""
        started = time.monotonic()
        candidates: list[tuple[Any, ...]] = []
        rootIds = self._rootIds()
        self._doneRoots.intersection_update(rootIds)
        now = self._clock.now()
        scan = time.monotonic() - self._scannedAt > TAKEOVER_SCAN_SECONDS
        if scan:
            self._scannedAt = time.monotonic()
            self._housekeeping(now)
            rootIds = self._rootIds()
        for rid in rootIds:
            if rid in self._doneRoots:
                continue
            rootDir = os.path.join(self._roots, rid)
            if scan:
                self._takeOverStale(rootDir, now)
            names = _fs.listNames(indexDir(rootDir, L.READY))
            if not names:
                if os.path.exists(os.path.join(indexDir(rootDir, L.DONE), L.ROOT_PATH)):
                    self._doneRoots.add(rid)
                    continue
                # Nothing ready: if nothing runs either, a dead worker may have left a cascade
                # or a takeover half-done. Finishing it here keeps the farm going unattended.
                if not (scan and healRoot(rootDir, now)):
                    continue
                names = _fs.listNames(indexDir(rootDir, L.READY))
            parsed = self._parsed.setdefault(rootDir, {})
            if len(parsed) > 4 * len(names) + 1000:
                parsed.clear()  # names come and go; keep the cache near the ready list's size
            for name in names:
                entry = parsed.get(name)
                if entry is None:
                    try:
                        path, prio, notBefore = L.parseReadyName(name)
                        key = (-prio, rid, tuple(int(p) for p in L.pathParts(path)))
                    except ValueError:
                        self._logger.warning(
                            "ignoring a malformed ready entry %s in %s", name, rootDir
                        )
                        continue
                    entry = parsed[name] = (key, path, notBefore)
                key, path, notBefore = entry
                if notBefore > now:
                    continue  # a retry delay or notBefore that has not passed (server clock)
                if (rootDir, path) in self._cannotRun:
                    continue
                limited = self._limited.get((rootDir, path))
                if limited is not None and self._limitsFull(limited):
                    continue  # claiming it would only give it back: no renames, no churn
                candidates.append((key, rootDir, name, path))
        candidates.sort(key=lambda c: c[0])
        self._candidates = candidates
        self._cursor = 0
        done = time.monotonic()
        # Listing a huge backlog costs milliseconds: list again after 50 times as long as this
        # listing took (at least REFRESH_SECONDS), so listing stays under 2% of a worker's time.
        self._refreshEvery = max(REFRESH_SECONDS, 50 * (done - started))
        self._listedAt = done

    def _housekeeping(self, now: float) -> None:
        """What workers do for the queue while they look for work: schedules, retention."""
        try:
            automation.runSchedules(self, now)
            policy = self._settings.get("retention")
            if policy and time.monotonic() - self._archivedAt > RETENTION_SECONDS:
                self._archivedAt = time.monotonic()
                automation.archive(self, policy, now)
        except (OSError, JobTreeError) as exc:
            self._logger.error("jobtree housekeeping in %s failed: %s", self.location, exc)

    def _takeOverStale(self, rootDir: str, now: float) -> None:
        for name, _claim, age in staleTokens(rootDir, now, self._unconfirmed):
            takeOver(rootDir, name, now, f"no lease renewal for {age:.1f} s")

    def _claimNext(self) -> _run.Claimed | None:
        if time.monotonic() - self._listedAt > self._refreshEvery:
            self._refresh()
        refreshed = False
        while True:
            while self._cursor < len(self._candidates):
                _, rootDir, name, path = self._candidates[self._cursor]
                self._cursor += 1
                claimed = _run.claim(self, rootDir, name, path)
                if claimed is not None:
                    return claimed
                # Lost a race: another worker works from the same list. Jump a random few
                # places ahead so that we stop chasing it (a lone worker keeps strict order).
                self._cursor += self._spread.randrange(SPREAD)
            if refreshed:
                return None
            self._refresh()
            refreshed = True

    def runNextAvailableJob(self) -> bool:
        """Claim one runnable job, run it in this process and return True; False when no job is
        runnable right now (see :meth:`idleReason` for why)."""
        if self.location is None:
            return False
        if self._policy.signed:
            self._policy.key()  # a worker without the key must not fail jobs: refuse to start
        claimed = self._claimNext()
        if claimed is None:
            return False
        if _run.run(self, claimed, self._logger):
            self._listedAt = -1e9  # a parent became ready: list again before the next claim
        return True

    # -- deleting ------------------------------------------------------------------------------

    def deleteJobs(self, jobs: JobHandle | Iterable[JobHandle], force: bool = False) -> None:
        """Delete roots or subtrees. A subtree with a running job is refused (JobRunningError)
        unless *force*; then its worker's result is discarded. Symbolic links are never followed."""
        handles = [jobs] if isinstance(jobs, JobHandle) else list(jobs)
        for h in handles:
            if h.path == L.ROOT_PATH:
                self._deleteRoot(h, force)
            else:
                self._deleteSubtree(h, force)

    def _runningIn(self, index: RootIndex, paths: list[str]) -> list[str]:
        return [p for p in paths if index.tokens[p][0] == L.RUNNING]

    def _refuseRunning(self, h: JobHandle, running: list[str]) -> None:
        raise JobRunningError(
            f"cannot delete {h.location}: {len(running)} job(s) of it are running "
            f"({', '.join(running[:5])}); wait for them, or pass force=True to discard their results"
        )

    def _deleteRoot(self, h: JobHandle, force: bool) -> None:
        index = RootIndex(h.rootDir)
        running = self._runningIn(index, list(index.tokens))
        if running and not force:
            self._refuseRunning(h, running)
        trash = os.path.join(self._trash, f"{h.rootId}.{secrets.token_hex(4)}")
        if not _fs.move(h.rootDir, trash):
            raise JobNotFound(f"root {h.location} does not exist (already deleted?)")
        _fs.removeTree(trash)

    def _deleteSubtree(self, h: JobHandle, force: bool) -> None:
        index = RootIndex(h.rootDir)
        paths = index.subtree(h.path)
        if not paths:
            raise JobNotFound(f"job {h.location} is not in the queue (already deleted?)")
        running = self._runningIn(index, paths)
        if running and not force:
            self._refuseRunning(h, running)
        # Hide the whole subtree with one rename, then take its tokens out of the index: a job
        # claimed in between finds no directory and a token that is gone (it is fenced).
        trash = os.path.join(self._trash, f"{h.rootId}.{h.path}.{secrets.token_hex(4)}")
        if not _fs.move(h.location, trash):
            raise JobNotFound(f"job {h.location} does not exist (already deleted?)")
        for p in paths:
            for state in L.INDEX_STATES:
                for name in _fs.listNames(indexDir(h.rootDir, state)):
                    if L.tokenPath(name) == p:
                        _fs.unlinkIfExists(os.path.join(indexDir(h.rootDir, state), name))
        _fs.removeTree(trash)
        # Whoever waited for the deleted jobs no longer does.
        release(h.rootDir, paths)

    # -- requests (anyone may make them; see jobtree.control) ----------------------------------

    def cancel(self, jobs: JobHandle | Iterable[JobHandle]) -> int:
        """Cancel jobs and their unfinished sub-jobs; running ones are stopped by their workers
        within about a second. Returns how many jobs were cancelled."""
        return control.cancel(self._handles(jobs))

    def pause(self, jobs: JobHandle | Iterable[JobHandle]) -> int:
        """Hold these subtrees: no job of them starts until :meth:`resume` (running ones finish)."""
        return control.pause(self._handles(jobs))

    def resume(self, jobs: JobHandle | Iterable[JobHandle]) -> int:
        """Lift pauses on and below these jobs."""
        return control.resume(self._handles(jobs))

    def setPriority(self, jobs: JobHandle | Iterable[JobHandle], priority: int) -> int:
        """Set the priority of every job of these subtrees."""
        return control.setPriority(self._handles(jobs), priority)

    def retry(self, jobs: JobHandle | Iterable[JobHandle], recursive: bool = True) -> int:
        """Run failed or cancelled jobs again (with *recursive*, all of their subtrees)."""
        return control.retry(self._handles(jobs), recursive)

    def check(self, repair: bool = False) -> list[Problem]:
        """Find (and with *repair* fix) stale claims, half-submitted roots, orphaned temporary
        files and half-done cascades. Safe while workers run; a second run finds nothing."""
        return check(self, repair)

    def whyWaiting(self, job: JobHandle) -> str:
        """One sentence on why *job* is not running (or what it is doing)."""
        return whyWaiting(self, job)

    # -- schedules and retention -----------------------------------------------------------------

    def schedule(
        self,
        name: str,
        jobType: Any,
        *,
        interval: float | None = None,
        cron: str | None = None,
        repeats: int | None = None,
        catchUp: bool = False,
        start: float | None = None,
        replace: bool = False,
        label: str | None = None,
        jobOptions: dict[str, Any] | None = None,
        **params: Any,
    ) -> dict[str, Any]:
        """Submit a root with this job every *interval* seconds or on a *cron* expression,
        *repeats* times (None: forever). Each slot is created exactly once, by whichever worker
        gets there first; with *catchUp*, slots missed while no worker ran are created later."""
        spec = automation.jobSpec(self, jobType, label, jobOptions, params, f"schedule {name!r}")
        return automation.addSchedule(
            self,
            name,
            spec,
            interval=interval,
            cron=cron,
            repeats=repeats,
            catchUp=catchUp,
            start=start,
            replace=replace,
        )

    def listSchedules(self) -> list[dict[str, Any]]:
        """Every schedule, with how many slots were created and the last slot's time."""
        return automation.listSchedules(self) if self.location is not None else []

    def unschedule(self, name: str) -> None:
        automation.removeSchedule(self, name)

    def archive(
        self,
        doneAge: float | None = None,
        failedAge: float | None = None,
        keepDone: int | None = None,
        keepFailed: int | None = None,
        action: str | None = None,
    ) -> list[str]:
        """Archive (or delete) finished roots older than an age or beyond a count, the queue's
        retention setting filling in what is not given. Returns the root ids handled."""
        given = {
            k: v
            for k, v in dict(
                doneAge=doneAge,
                failedAge=failedAge,
                keepDone=keepDone,
                keepFailed=keepFailed,
                action=action,
            ).items()
            if v is not None
        }
        policy = _options.checkSettings(
            {"retention": {**(self._settings.get("retention") or {}), **given}},
            f"queue {self.location}",
        )["retention"]
        return automation.archive(self, policy, self._clock.now())

    def listArchived(self) -> list[str]:
        """Ids of archived roots (in QUEUE/archive/)."""
        return sorted(_fs.listNames(os.path.join(self._need(), automation.ARCHIVE_DIR)))

    def _handles(self, jobs: JobHandle | Iterable[JobHandle]) -> list[JobHandle]:
        return [jobs] if isinstance(jobs, JobHandle) else list(jobs)
