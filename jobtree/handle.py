"""JobHandle: a view of one job on disk. It caches nothing: every property reads the disk."""

from __future__ import annotations

import os
import socket
import time
from collections import Counter
from typing import TYPE_CHECKING, Any

from . import _fs
from . import _layout as L
from ._index import RootIndex, indexDir, jobDirOf, loadToken, readSpec
from .errors import CorruptJob, JobNotFound, JobRunningError, JobTreeError
from .state import JobState, checkTransition

if TYPE_CHECKING:
    from .queue import JobQueue


class JobHandle:
    """A job of an activated root, addressed by its directory."""

    def __init__(self, queue: JobQueue, location: str, rootDir: str, path: str) -> None:
        self._queue = queue
        self.location = location
        self.rootDir = rootDir
        self.path = path
        """The job's path in its root: ``root``, ``root.0002``, ``root.0002.0000``."""

    # -- identity ------------------------------------------------------------------------------

    @property
    def rootId(self) -> str:
        return os.path.basename(self.rootDir)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, JobHandle) and other.location == self.location

    def __hash__(self) -> int:
        return hash(self.location)

    def __repr__(self) -> str:
        return f"<JobHandle {self.rootId}:{self.path} at {self.location}>"

    # -- the specification (job.json) ------------------------------------------------------------

    def _spec(self) -> dict[str, Any]:
        return readSpec(self.location)

    @property
    def label(self) -> str | None:
        label = self._spec().get("label")
        return label if isinstance(label, str) else None

    @property
    def jobType(self) -> str:
        return str(self._spec()["jobType"])

    @property
    def params(self) -> dict[str, Any]:
        params = self._spec().get("params")
        return dict(params) if isinstance(params, dict) else {}

    @property
    def jobOptions(self) -> dict[str, Any]:
        options = self._spec().get("jobOptions")
        return dict(options) if isinstance(options, dict) else {}

    @property
    def submitTime(self) -> float | None:
        t = self._spec().get("submitTime")
        return float(t) if isinstance(t, (int, float)) else None

    # -- state -----------------------------------------------------------------------------------

    def _token(self) -> tuple[str, str]:
        index = RootIndex(self.rootDir)
        token = index.tokens.get(self.path)
        if token is None:
            raise JobNotFound(f"job {self.location} is not in the queue (deleted?)")
        return token

    @property
    def state(self) -> JobState:
        states = RootIndex(self.rootDir).states()
        try:
            return states[self.path]
        except KeyError:
            raise JobNotFound(f"job {self.location} is not in the queue (deleted?)") from None

    def _claim(self) -> dict[str, Any]:
        """The last claim (the token's content): attempt, host, pid, startTime, progress..."""
        state, name = self._token()
        return loadToken(self.rootDir, state, name)

    def _attempt(self, n: int) -> dict[str, Any]:
        try:
            data = _fs.readJson(os.path.join(self.location, L.attemptFile(n)))
        except ValueError:
            return {}
        return data if isinstance(data, dict) else {}

    def _record(self) -> tuple[str, dict[str, Any]]:
        """(index state, the latest attempt's information: the finished record, else the claim)."""
        state, name = self._token()
        claim = loadToken(self.rootDir, state, name)
        n = claim.get("attempt")
        if state != L.RUNNING and isinstance(n, int):
            record = self._attempt(n)
            if record.get("claim") == claim.get("claim"):
                return state, {**claim, **record}
        return state, claim

    @property
    def attempts(self) -> int:
        """How many times the job was started."""
        n = self._claim().get("attempt")
        return n if isinstance(n, int) else 0

    @property
    def progress(self) -> float:
        state, info = self._record()
        if state == L.DONE:
            return 100
        p = info.get("progress")
        return p if isinstance(p, (int, float)) else 0

    @property
    def statusLine(self) -> str:
        s = self._record()[1].get("statusLine")
        return s if isinstance(s, str) else ""

    @property
    def startTime(self) -> float | None:
        t = self._record()[1].get("startTime")
        return float(t) if isinstance(t, (int, float)) else None

    @property
    def endTime(self) -> float | None:
        state, info = self._record()
        t = info.get("endTime") if state in (L.DONE, L.FAILED) else None
        return float(t) if isinstance(t, (int, float)) else None

    @property
    def host(self) -> str | None:
        h = self._record()[1].get("host")
        return h if isinstance(h, str) else None

    @property
    def pid(self) -> int | None:
        p = self._record()[1].get("pid")
        return p if isinstance(p, int) else None

    @property
    def error(self) -> str | None:
        """The error message of a failed job."""
        e = self._record()[1].get("error")
        return e if isinstance(e, str) else None

    @property
    def traceback(self) -> str | None:
        """The traceback of a job whose run() raised."""
        t = self._record()[1].get("traceback")
        return t if isinstance(t, str) else None

    def attemptRecords(self) -> list[dict[str, Any]]:
        """Every attempt so far, oldest first: its ``attempt.<n>.json`` record where the attempt
        wrote one (outcome done, failed, retry, lost or cancelled), the claim for the attempt
        that is running, and the token's history for attempts whose worker died (outcome lost).
        Each dict has at least ``attempt`` and ``outcome``."""
        state, name = self._token()
        claim: dict[str, Any] = loadToken(self.rootDir, state, name)
        last = claim.get("attempt")
        n = last if isinstance(last, int) else 0
        entries = claim.get("history")
        history = {
            e.get("attempt"): e
            for e in (entries if isinstance(entries, list) else [])
            if isinstance(e, dict)
        }
        out: list[dict[str, Any]] = []
        for i in range(1, n + 1):
            record = self._attempt(i)
            if not record and i == n:
                record = dict(claim)
                record.pop("history", None)
                record["outcome"] = "running" if state == L.RUNNING else state
            elif not record:
                record = {"host": None, "outcome": "lost", **history.get(i, {})}
            record["attempt"] = i
            record.setdefault("outcome", "")
            out.append(record)
        return out

    @property
    def result(self) -> Any:
        """What the job saved with :meth:`JobProc.setResult` (the ``python`` procedure saves its
        function's return value): the value of the latest attempt, or None if it saved none."""
        n = self.attempts
        if n == 0:
            return None
        path = os.path.join(self.location, L.resultFile(n))
        try:
            return _fs.readJson(path)
        except ValueError as exc:
            raise CorruptJob(
                f"result file {path} is corrupt ({exc}); run the job again to remake it"
            ) from None

    def _log(self, stream: str) -> str:
        n = self.attempts
        if n == 0:
            return ""
        data = _fs.readBytes(os.path.join(self.location, L.logFile(stream, n)))
        return data.decode("utf-8", "replace") if data else ""

    @property
    def stdout(self) -> str:
        """The standard output of the latest attempt so far."""
        return self._log("stdout")

    @property
    def stderr(self) -> str:
        """The standard error of the latest attempt so far."""
        return self._log("stderr")

    # -- the tree --------------------------------------------------------------------------------

    def listSubJobs(self) -> list[JobHandle]:
        """The sub-jobs, in creation order."""
        names = sorted(
            (
                n
                for n in _fs.listNames(self.location)
                if L.CHILD_NAME_RE.match(n) and not os.path.islink(os.path.join(self.location, n))
            ),
            key=int,
        )
        return [
            JobHandle(self._queue, os.path.join(self.location, n), self.rootDir, f"{self.path}.{n}")
            for n in names
        ]

    @property
    def parent(self) -> JobHandle | None:
        if self.path == L.ROOT_PATH:
            return None
        parentPath = self.path.rpartition(".")[0]
        return JobHandle(self._queue, jobDirOf(self.rootDir, parentPath), self.rootDir, parentPath)

    def isWaiting(self) -> bool:
        """Not started yet: waiting, ready or blocked."""
        return self.state in (JobState.WAITING, JobState.READY, JobState.BLOCKED)

    def isRunning(self) -> bool:
        return self.state is JobState.RUNNING

    def isFinished(self) -> bool:
        """Done, failed or cancelled."""
        return self.state in (JobState.DONE, JobState.FAILED, JobState.CANCELLED)

    def hasError(self, recursive: bool = False) -> bool:
        """True when this job failed (or, with *recursive*, any job of its subtree)."""
        index = RootIndex(self.rootDir)
        paths = index.subtree(self.path) if recursive else [self.path]
        return any(index.tokens.get(p, ("",))[0] == L.FAILED for p in paths)

    def stateCounts(self) -> dict[JobState, int]:
        """How many jobs of this subtree (itself included) are in each state."""
        index = RootIndex(self.rootDir)
        states = index.states()
        counts = Counter(states[p] for p in index.subtree(self.path))
        return {s: counts.get(s, 0) for s in JobState}

    def setError(self, message: str | None = None) -> None:
        """Mark this job as failed (its ancestors become blocked). A running job is refused."""
        state, name = self._token()
        if state == L.RUNNING:
            raise JobRunningError(f"job {self.location} is running; it cannot be marked failed")
        if state == L.DONE:
            raise JobTreeError(
                f"job {self.location} is done; a finished job cannot be marked failed"
            )
        if state == L.FAILED:
            return
        checkTransition(state, L.FAILED)
        claim = loadToken(self.rootDir, state, name)
        target = os.path.join(indexDir(self.rootDir, L.FAILED), self.path)
        if not _fs.move(os.path.join(indexDir(self.rootDir, state), name), target):
            raise JobTreeError(f"job {self.location} changed state meanwhile; try again")
        claim.update(
            error=message or "marked as failed",
            markedFailedBy=f"{socket.gethostname()}:{os.getpid()}",
            markedFailedAt=time.time(),
        )
        _fs.writeAtomic(target, _fs.dumpJson(claim))
