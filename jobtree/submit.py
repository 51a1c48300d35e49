"""Building a root in staging/ and publishing it with one rename (docs/format.md, "Submission")."""

from __future__ import annotations

import json
import math
import os
import secrets
import socket
import time
from collections.abc import Mapping
from types import TracebackType
from typing import TYPE_CHECKING, Any

from . import _fs, _options, _procs
from . import _layout as L
from ._index import childPath, indexDir
from .errors import DependencyCycleError, JobTreeError, SubmissionError
from .security import SIGNATURE_FIELD, makeDir

if TYPE_CHECKING:
    from .handle import JobHandle
    from .queue import JobQueue


def newRootId() -> str:
    now = time.time()
    stamp = time.strftime("%Y%m%d-%H%M%S", time.gmtime(now))
    return f"{stamp}-{int((now % 1) * 1e6):06d}-{secrets.token_hex(3)}"


def _checkParams(params: Mapping[str, Any], where: str) -> dict[str, Any]:
    """Params as the worker will see them (a JSON round trip); TypeError naming a bad one."""
    for name, value in params.items():
        try:
            json.dumps(value, allow_nan=False, ensure_ascii=False).encode("utf-8")
        except (TypeError, ValueError) as exc:
            what = "a float that is not finite" if _hasNonFinite(value) else type(value).__name__
            raise TypeError(
                f"{where}: parameter {name!r} cannot be stored as JSON ({what}: {exc}); "
                "pass only str, int, float, bool, None, lists and dicts with string keys"
            ) from None
    result: dict[str, Any] = json.loads(json.dumps(dict(params)))
    return result


def _hasNonFinite(value: Any) -> bool:
    if isinstance(value, float):
        return not math.isfinite(value)
    if isinstance(value, dict):
        return any(_hasNonFinite(v) for v in value.values())
    if isinstance(value, (list, tuple)):
        return any(_hasNonFinite(v) for v in value)
    return False


class Job:
    """A job being submitted. Made by :meth:`JobRoot.createJob` / :meth:`Job.createJob`."""

    def __init__(
        self,
        root: JobRoot | None,
        parent: Job | None,
        path: str,
        jobType: Any,
        label: str | None,
        jobOptions: Mapping[str, Any] | None,
        params: dict[str, Any],
    ) -> None:
        self._root: JobRoot = root if root is not None else self  # type: ignore[assignment]
        self._parent = parent
        self._path = path
        self._children: list[Job] = []
        self._deps: list[Job] = []
        where = f"job {label!r}" if label is not None else f"job {path}"
        if label is not None and not isinstance(label, str):
            raise TypeError(f"{where}: label must be a str, not {type(label).__name__}")
        if label is not None:
            try:
                label.encode("utf-8")
            except UnicodeEncodeError as exc:
                raise ValueError(
                    f"job at {path}: label {label!r} is not valid text ({exc.reason}); decode "
                    "file names with errors='replace' before using them as labels"
                ) from None
        self.jobType = _procs.jobTypeName(jobType)
        where = f"{where} ({self.jobType})"
        policy = self._root._queue._policy
        policy.checkType(self.jobType, where)
        for limit in (jobOptions or {}).get("limits") or ():
            if limit not in self._root._queue.limits():
                raise SubmissionError(
                    f"{where}: limit {limit!r} is not defined in this queue; define it first "
                    f"with setLimit({limit!r}, slots)"
                )
        cls = _procs.resolve(self.jobType)
        self.params = _checkParams(params, where)
        self.jobOptions: dict[str, Any] = _options.resolveJobOptions(
            jobOptions,
            parent.jobOptions if parent is not None else None,
            self._root._queue._settings,
            where,
        )
        try:
            proc = cls(**self.params)
        except Exception as exc:
            raise SubmissionError(f"{where}: the procedure rejected its parameters: {exc}") from exc
        if label is None and isinstance(proc.label, str):
            label = proc.label
        self.label = label

        # Nothing below is visible to any worker: the whole root lives in staging/ until activate().
        jobDir = self.location
        makeDir(jobDir, policy.shared)
        if root is None:
            makeDir(os.path.join(jobDir, L.INDEX_DIR), policy.shared)
            for state in L.INDEX_STATES:
                makeDir(indexDir(jobDir, state), policy.shared)
        spec = {
            "jobType": self.jobType,
            "label": label,
            "params": self.params,
            "jobOptions": self.jobOptions,
            "submitTime": time.time(),
            "submitHost": socket.gethostname(),
        }
        if policy.signed:
            spec[SIGNATURE_FIELD] = policy.signature(self._root.rootId, path, spec)
        _fs.writeNew(os.path.join(jobDir, L.JOB_FILE), _fs.dumpJson(spec))
        try:
            proc.postCreate(jobDir)
        except Exception as exc:
            _fs.removeTree(jobDir)
            raise SubmissionError(f"{where}: postCreate({jobDir!r}) failed: {exc}") from exc
        self._tokenState = L.READY
        _fs.writeNew(self._tokenFile(), b"")

    # -- locations -----------------------------------------------------------------------------

    @property
    def location(self) -> str:
        """The job's directory (in staging/ until the root is activated)."""
        parts = L.pathParts(self._path)
        base = self._root._base
        return os.path.join(base, *parts) if parts else base

    @property
    def path(self) -> str:
        return self._path

    def _tokenFile(self) -> str:
        name = (
            L.readyName(self._path, self.jobOptions["priority"], self.jobOptions.get("notBefore"))
            if self._tokenState == L.READY
            else self._path
        )
        return os.path.join(indexDir(self._root._base, self._tokenState), name)

    def _wait(self, entry: str) -> None:
        """Make this job wait for *entry* (a child's name or dep-<path>) in its _pending dir."""
        pending = os.path.join(self.location, L.PENDING_DIR)
        if self._tokenState == L.READY:
            makeDir(pending, self._root._queue._policy.shared)
            old = self._tokenFile()
            self._tokenState = L.WAITING
            os.rename(old, self._tokenFile())
        _fs.writeNew(os.path.join(pending, entry), b"")

    # -- building the tree ---------------------------------------------------------------------

    def createJob(
        self,
        jobType: Any,
        *,
        label: str | None = None,
        jobOptions: Mapping[str, Any] | None = None,
        **params: Any,
    ) -> Job:
        """Add a sub-job. It runs before this job; sub-jobs keep their creation order."""
        self._root._checkOpen()
        name = L.childName(len(self._children))
        child = Job(
            self._root, self, childPath(self._path, name), jobType, label, jobOptions, params
        )
        self._children.append(child)
        self._wait(name)
        return child

    def addDependency(self, job: Job) -> None:
        """Also wait for *job*, a job in another branch of the same root (as in cgkit)."""
        self._root._checkOpen()
        if not isinstance(job, Job):
            raise TypeError(f"addDependency needs a Job of the same root, not {job!r}")
        if job is self:
            raise DependencyCycleError(f"job {self._path} cannot depend on itself")
        if job._root is not self._root:
            raise JobTreeError(
                f"job {self._path} cannot depend on {job._path} of another root; a dependency "
                "must be in the same root (submit both under one root)"
            )
        if job in self._deps:
            return
        self._deps.append(job)
        self._wait(L.DEP_PREFIX + job._path)

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self._path} {self.label!r} at {self.location}>"


class JobRoot(Job):
    """The root of a job tree being submitted. Nothing of it runs until :meth:`activate`.

    Use it as a context manager: leaving the block activates the root; an exception discards
    everything that was written.
    """

    def __init__(
        self,
        queue: JobQueue,
        jobType: Any,
        label: str | None,
        jobOptions: Mapping[str, Any] | None,
        params: dict[str, Any],
    ) -> None:
        self._queue = queue
        self.rootId = newRootId()
        self._base = os.path.join(queue._staging, self.rootId)
        self._state = "open"
        self._hooks: list[dict[str, Any]] = []
        self._root = self
        try:
            super().__init__(None, None, L.ROOT_PATH, jobType, label, jobOptions, params)
        except BaseException:
            _fs.removeTree(self._base)  # nothing of a refused root stays behind
            raise

    @property
    def finalLocation(self) -> str:
        """The root's directory once activated (``<queue>/roots/<rootId>``), known before
        :meth:`activate`: for hooks that must name the root they report on."""
        return os.path.join(self._queue._roots, self.rootId)

    def onDone(
        self,
        jobType: Any,
        *,
        label: str | None = None,
        jobOptions: Mapping[str, Any] | None = None,
        **params: Any,
    ) -> None:
        """Submit this job as a new root, exactly once, when this root is done."""
        self._addHook("done", jobType, label, jobOptions, params)

    def onFailed(
        self,
        jobType: Any,
        *,
        label: str | None = None,
        jobOptions: Mapping[str, Any] | None = None,
        **params: Any,
    ) -> None:
        """Submit this job as a new root, exactly once, when a job of this root fails for good
        (no attempts left) or is cancelled: the root cannot finish without a retry."""
        self._addHook("failed", jobType, label, jobOptions, params)

    def _addHook(
        self,
        when: str,
        jobType: Any,
        label: str | None,
        jobOptions: Mapping[str, Any] | None,
        params: dict[str, Any],
    ) -> None:
        from .automation import jobSpec

        self._checkOpen()
        spec = jobSpec(
            self._queue, jobType, label, jobOptions, params, f"root {self.rootId}: {when} hook"
        )
        self._hooks.append(dict(spec, when=when))

    def _checkOpen(self) -> None:
        if self._state != "open":
            raise JobTreeError(
                f"root {self.rootId} ({self.label!r}) is {self._state}; create a new root to add jobs"
            )

    def _allJobs(self) -> list[Job]:
        out: list[Job] = []
        stack: list[Job] = [self]
        while stack:
            job = stack.pop()
            out.append(job)
            stack.extend(job._children)
        return out

    def _checkCycles(self) -> dict[str, list[str]]:
        jobs = self._allJobs()
        deps = {j._path: [d._path for d in j._deps] for j in jobs if j._deps}
        if not deps:
            return {}
        byPath = {j._path: j for j in jobs}
        WHITE, GREY, BLACK = 0, 1, 2
        color = dict.fromkeys(byPath, WHITE)
        for start in byPath:
            if color[start] != WHITE:
                continue
            stack: list[tuple[str, list[str]]] = []
            trail: list[str] = []

            def edges(p: str) -> list[str]:
                j = byPath[p]
                return [c._path for c in j._children] + [d._path for d in j._deps]

            color[start] = GREY
            trail.append(start)
            stack.append((start, edges(start)))
            while stack:
                node, todo = stack[-1]
                if not todo:
                    color[node] = BLACK
                    stack.pop()
                    trail.pop()
                    continue
                nxt = todo.pop()
                if color[nxt] == GREY:
                    cycle = [*trail[trail.index(nxt) :], nxt]
                    labels = " -> ".join(f"{p} ({byPath[p].label!r})" for p in cycle)
                    raise DependencyCycleError(
                        f"root {self.rootId}: jobs wait for each other in a cycle: {labels}; "
                        "remove one of these dependencies"
                    )
                if color[nxt] == WHITE:
                    color[nxt] = GREY
                    trail.append(nxt)
                    stack.append((nxt, edges(nxt)))
        return deps

    def activate(self) -> JobHandle:
        """Publish the whole root in one atomic rename; from now on workers can run its jobs."""
        self._checkOpen()
        try:
            deps = self._checkCycles()
        except DependencyCycleError:
            self.discard()
            raise
        if deps:
            _fs.writeNew(os.path.join(self._base, L.DEPS_FILE), _fs.dumpJson(deps))
        if self._hooks:
            from .automation import HOOKS_FILE

            _fs.writeNew(os.path.join(self._base, HOOKS_FILE), _fs.dumpJson(self._hooks))
        target = self.finalLocation
        os.rename(self._base, target)  # the one atomic step that publishes the root
        self._base = target
        self._state = "activated"
        return self.handle

    def discard(self) -> None:
        """Throw the unactivated root away (what leaving the with-block by an exception does)."""
        if self._state == "open":
            self._state = "discarded"
            _fs.removeTree(self._base)

    @property
    def handle(self) -> JobHandle:
        """The JobHandle of the activated root."""
        if self._state != "activated":
            raise JobTreeError(f"root {self.rootId} is {self._state}, not activated")
        return self._queue.jobHandle(self._base)

    def __enter__(self) -> JobRoot:
        return self

    def __exit__(
        self,
        excType: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if excType is None:
            self.activate()
        else:
            self.discard()
