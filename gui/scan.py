"""Reading a queue for the monitor: pure Python, no Qt, no threads.

A :class:`QueueScanner` keeps the last snapshot of every root and rescans incrementally. The state
of a whole root is the listing of its seven index directories (docs/format.md, "The index"); their
mtimes are the cheap change markers: a root whose markers did not move since it was last listed
costs seven ``stat`` calls and no listing. A running job's progress and status line live in its
token, rewritten in place (its mtime moves on every renewal), so running tokens are re-read only
when their mtime moved.

Everything the scanner hands out (:class:`RootSnapshot`, :class:`JobExtra`) is immutable once
made, so the GUI thread may keep references while the scanner goes on.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from jobtree import _fs
from jobtree import _layout as L
from jobtree._index import RootIndex, indexDir, jobDirOf, loadToken, readSpec
from jobtree._wake import isNetworkFs, mountInfo
from jobtree.errors import CorruptJob

STATES: tuple[str, ...] = (
    "waiting",
    "ready",
    "running",
    "done",
    "failed",
    "cancelled",
    "paused",
    "blocked",
)
"""Every state a job can be shown in (JobState values); index into a counts tuple."""
STATE_INDEX = {s: i for i, s in enumerate(STATES)}
UNFINISHED = frozenset({"waiting", "ready", "running", "paused", "blocked"})


def _mtime(path: str) -> int | None:
    try:
        return os.stat(path).st_mtime_ns
    except OSError:
        return None


def _parent(path: str) -> str | None:
    return None if path == L.ROOT_PATH else path.rpartition(".")[0]


@dataclass(frozen=True, slots=True)
class RunInfo:
    """What a running job's token says (rewritten by its worker while it runs)."""

    progress: float
    statusLine: str
    host: str | None
    startTime: float | None
    attempt: int
    mtime: int


@dataclass(frozen=True, slots=True)
class RootSpec:
    """The root job's job.json, as much as the tree's top level needs."""

    label: str | None
    jobType: str
    priority: int
    submitTime: float | None
    metadata: dict[str, Any]


@dataclass(frozen=True, slots=True)
class JobExtra:
    """Per-job columns that need files opened (job.json, token content, attempt record): read
    only for rows the view shows."""

    label: str | None
    jobType: str
    host: str | None
    startTime: float | None
    endTime: float | None
    attempts: int
    error: str | None
    metadata: dict[str, Any]
    key: tuple[str, str]
    """(index state, token name) the extra was read for: stale when the token moved."""


@dataclass(frozen=True, slots=True)
class Rollup:
    """A subtree's counts by state (indexed like STATES) and its summed progress."""

    counts: tuple[int, ...]
    progressSum: float

    @property
    def total(self) -> int:
        return sum(self.counts)

    @property
    def progress(self) -> float:
        total = self.total
        return self.progressSum / total if total else 0.0

    def count(self, state: str) -> int:
        return self.counts[STATE_INDEX[state]]


@dataclass(slots=True)
class RootSnapshot:
    """One root as the scanner last saw it. Never changed after it is handed out."""

    queue: str
    rootId: str
    rootDir: str
    markers: tuple[int | None, ...]
    listedAt: float
    settled: bool
    tokens: dict[str, tuple[str, str]]
    """job path -> (index directory, token name)"""
    states: dict[str, str]
    """job path -> shown state (BLOCKED derived)"""
    running: dict[str, RunInfo]
    children: dict[str, list[str]]
    """parent path -> child paths in creation order (only paths that have children)"""
    rollups: dict[str, Rollup]
    """subtree counts of every job that has children"""
    spec: RootSpec
    changed: frozenset[str] = frozenset()
    """paths whose state, progress, status line or rollup differ from the previous snapshot"""
    added: frozenset[str] = frozenset()
    removed: frozenset[str] = frozenset()
    version: int = 0

    @property
    def state(self) -> str:
        return self.states.get(L.ROOT_PATH, "waiting")

    @property
    def finished(self) -> bool:
        return self.state in ("done", "failed", "cancelled") and not self.running

    def rollup(self, path: str) -> Rollup:
        r = self.rollups.get(path)
        if r is not None:
            return r
        counts = [0] * len(STATES)
        s = self.states.get(path)
        if s is not None:
            counts[STATE_INDEX[s]] = 1
        return Rollup(tuple(counts), self.progressOf(path))

    def progressOf(self, path: str) -> float:
        s = self.states.get(path)
        if s == "done":
            return 100.0
        if s == "running":
            r = self.running.get(path)
            return r.progress if r is not None else 0.0
        return 0.0

    def notBefore(self, path: str) -> int:
        token = self.tokens.get(path)
        if token is None or token[0] not in (L.READY, L.PAUSED):
            return 0
        try:
            return L.parseReadyName(token[1])[2]
        except ValueError:
            return 0

    def jobDir(self, path: str) -> str:
        return jobDirOf(self.rootDir, path)


@dataclass(slots=True)
class ScanResult:
    """What one scan of a queue found: the current root order and the roots that changed."""

    queue: str
    rootIds: list[str]
    updated: list[RootSnapshot] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    seconds: float = 0.0
    complete: bool = True
    """False for an early partial result of a long first scan (more roots follow)."""


class QueueScanner:
    """Incremental reader of one queue. Call :meth:`scan` from one thread only."""

    def __init__(self, location: str, *, settle: float | None = None) -> None:
        self.location = os.path.abspath(location)
        self.rootsDir = os.path.join(self.location, L.ROOTS_DIR)
        self.mountPoint, self.fstype = mountInfo(self.location)
        self.network = isNetworkFs(self.fstype)
        # A marker (mtime) only proves "unchanged" once it is older than the filesystem's
        # timestamp granularity: ext4 stamps with a coarse clock (one jiffy), sshfs and NFS
        # often with whole seconds, so two changes within one tick leave the same mtime.
        self.settle = settle if settle is not None else (2.5 if self.network else 0.05)
        self._rootsMarker: int | None = None
        self._rootsSettled = False
        self._rootIds: list[str] = []
        self.roots: dict[str, RootSnapshot] = {}
        self._extras: dict[tuple[str, str], JobExtra] = {}
        self._labels: dict[tuple[str, str], tuple[str | None, str, dict[str, Any]]] = {}
        self._version = 0
        self.polls = 0

    # -- the list of roots -----------------------------------------------------------------------

    @property
    def rootIds(self) -> list[str]:
        """The root ids of the last listing, in submission order."""
        return list(self._rootIds)

    def _listRoots(self, force: bool) -> list[str]:
        marker = _mtime(self.rootsDir)
        if not force and marker == self._rootsMarker and self._rootsSettled and marker is not None:
            return self._rootIds
        now = time.time()
        names = _fs.listNames(self.rootsDir)
        # Planted symbolic links are never listed (as JobQueue.listJobs does).
        ids = sorted(
            n
            for n in names
            if L.ROOT_ID_RE.match(n) and not os.path.islink(os.path.join(self.rootsDir, n))
        )
        self._rootsMarker = marker
        self._rootsSettled = marker is not None and marker / 1e9 < now - self.settle
        self._rootIds = ids
        return ids

    # -- one root ------------------------------------------------------------------------------

    def _markers(self, rootDir: str) -> tuple[int | None, ...]:
        return tuple(_mtime(indexDir(rootDir, s)) for s in L.INDEX_STATES)

    def _readRootSpec(self, rootDir: str) -> RootSpec:
        try:
            spec = readSpec(rootDir)
        except (CorruptJob, OSError) as exc:
            return RootSpec(f"<{exc}>", "?", 0, None, {})
        opts = spec.get("jobOptions")
        opts = opts if isinstance(opts, dict) else {}
        prio = opts.get("priority", 0)
        label = spec.get("label")
        meta = opts.get("metadata")
        t = spec.get("submitTime")
        return RootSpec(
            label if isinstance(label, str) else None,
            str(spec.get("jobType", "?")),
            prio if isinstance(prio, int) else 0,
            float(t) if isinstance(t, (int, float)) else None,
            dict(meta) if isinstance(meta, dict) else {},
        )

    def _readRun(self, rootDir: str, name: str, mtime: int) -> RunInfo:
        claim = loadToken(rootDir, L.RUNNING, name)
        p = claim.get("progress", 0)
        s = claim.get("statusLine")
        h = claim.get("host")
        t = claim.get("startTime")
        a = claim.get("attempt")
        return RunInfo(
            float(p) if isinstance(p, (int, float)) else 0.0,
            s if isinstance(s, str) else "",
            h if isinstance(h, str) else None,
            float(t) if isinstance(t, (int, float)) else None,
            a if isinstance(a, int) else 0,
            mtime,
        )

    def _runningInfo(
        self, rootDir: str, tokens: dict[str, tuple[str, str]], prev: RootSnapshot | None
    ) -> tuple[dict[str, RunInfo], bool]:
        """RunInfo of every running token (re-read only where its mtime moved). The flag says
        whether anything differs from *prev*."""
        running: dict[str, RunInfo] = {}
        changed = False
        runDir = indexDir(rootDir, L.RUNNING)
        now = time.time()
        for path, (state, name) in tokens.items():
            if state != L.RUNNING:
                continue
            m = _mtime(os.path.join(runDir, name))
            if m is None:
                changed = True  # it moved on meanwhile; the next listing shows where
                continue
            old = prev.running.get(path) if prev is not None else None
            settled = m / 1e9 < now - self.settle
            if old is not None and old.mtime == m and settled:
                running[path] = old
                continue
            info = self._readRun(rootDir, name, m)
            if old is None or (old.progress, old.statusLine, old.host) != (
                info.progress,
                info.statusLine,
                info.host,
            ):
                changed = True
            # An unsettled mtime is never trusted as "unchanged" next time.
            running[path] = info if settled else RunInfo(*_fields(info)[:-1], mtime=-1)
        if prev is not None and set(prev.running) != set(running):
            changed = True
        return running, changed

    def scanRoot(self, rootId: str, *, force: bool = False) -> RootSnapshot | None:
        """A new snapshot of one root if anything changed (None if not; a snapshot with no
        tokens and ``removed`` set when the root is gone)."""
        rootDir = os.path.join(self.rootsDir, rootId)
        prev = self.roots.get(rootId)
        markers = self._markers(rootDir)
        if all(m is None for m in markers):
            if prev is None:
                return None
            del self.roots[rootId]
            return None
        now = time.time()
        if not force and prev is not None and prev.markers == markers and prev.settled:
            if not any(s == L.RUNNING for s, _ in prev.tokens.values()):
                return None
            running, changed = self._runningInfo(rootDir, prev.tokens, prev)
            if not changed and running.keys() == prev.running.keys():
                # same content; keep the fresher mtimes for the next comparison
                prev.running = running
                return None
            return self._build(rootId, rootDir, prev, markers, now, prev.tokens, running)
        index = RootIndex(rootDir)
        running, _ = self._runningInfo(rootDir, index.tokens, prev)
        snap = self._build(rootId, rootDir, prev, markers, now, index.tokens, running, index)
        return snap

    def _build(
        self,
        rootId: str,
        rootDir: str,
        prev: RootSnapshot | None,
        markers: tuple[int | None, ...],
        listedAt: float,
        tokens: dict[str, tuple[str, str]],
        running: dict[str, RunInfo],
        index: RootIndex | None = None,
    ) -> RootSnapshot:
        if index is not None:
            states = {p: s.value for p, s in index.states().items()}
        else:
            assert prev is not None
            states = prev.states
        if prev is not None and (index is None or tokens.keys() == prev.tokens.keys()):
            children = prev.children
        else:
            children = _children(tokens)
        spec = (
            prev.spec
            if prev is not None and index is None
            else (
                self._readRootSpec(rootDir)
                if prev is None or prev.tokens.get(L.ROOT_PATH) != tokens.get(L.ROOT_PATH)
                else prev.spec
            )
        )
        settled = all(m is None or m / 1e9 < listedAt - self.settle for m in markers)
        snap = RootSnapshot(
            queue=self.location,
            rootId=rootId,
            rootDir=rootDir,
            markers=markers,
            listedAt=listedAt,
            settled=settled,
            tokens=tokens,
            states=states,
            running=running,
            children=children,
            rollups={},
            spec=spec,
        )
        snap.rollups = _rollups(snap)
        if prev is None:
            snap.added = frozenset(states)
            snap.changed = frozenset()
        else:
            snap.added = frozenset(states.keys() - prev.states.keys())
            snap.removed = frozenset(prev.states.keys() - states.keys())
            snap.changed = frozenset(_changed(prev, snap))
        self._version += 1
        snap.version = self._version
        self.roots[rootId] = snap
        for p in snap.removed:
            self._extras.pop((rootId, p), None)
        return snap

    def refreshSpec(self, rootId: str) -> None:
        """Forget the root's cached job.json (after a priority change, say)."""
        snap = self.roots.get(rootId)
        if snap is not None:
            snap.spec = self._readRootSpec(snap.rootDir)
        for key in [k for k in self._labels if k[0] == rootId]:
            del self._labels[key]
        for key in [k for k in self._extras if k[0] == rootId]:
            del self._extras[key]

    # -- the queue -------------------------------------------------------------------------------

    def scan(
        self,
        dirty: Iterable[str] | None = None,
        *,
        force: bool = False,
        includeFinished: bool = True,
    ) -> ScanResult:
        """Rescan: every root whose markers moved (or only *dirty* ones, plus new and removed
        roots, when given). *includeFinished* False skips roots that finished, for cheap
        network polls (they change only when someone acts on them)."""
        t0 = time.perf_counter()
        self.polls += 1
        ids = self._listRoots(force or dirty is None)
        result = ScanResult(self.location, list(ids))
        idSet = set(ids)
        for rid in list(self.roots):
            if rid not in idSet:
                del self.roots[rid]
                result.removed.append(rid)
                for key in [k for k in self._extras if k[0] == rid]:
                    del self._extras[key]
                for key in [k for k in self._labels if k[0] == rid]:
                    del self._labels[key]
        wanted: Iterable[str]
        if dirty is None:
            wanted = ids
        else:
            wanted = [r for r in ids if r in set(dirty) or r not in self.roots]
        for rid in wanted:
            prev = self.roots.get(rid)
            if not includeFinished and not force and prev is not None and prev.finished:
                continue
            snap = self.scanRoot(rid, force=force)
            if snap is not None:
                result.updated.append(snap)
            elif prev is not None and rid not in self.roots:
                result.removed.append(rid)
                result.rootIds.remove(rid)
        result.seconds = time.perf_counter() - t0
        return result

    def scanIncrementally(self, batchSeconds: float = 0.15) -> Iterable[ScanResult]:
        """A first full scan delivered in pieces: a result every *batchSeconds* (the first after
        at most a screenful of roots) so that the view fills while the rest is read."""
        t0 = time.perf_counter()
        ids = self._listRoots(True)
        batch: list[RootSnapshot] = []
        last = t0
        first = True
        for i, rid in enumerate(ids):
            snap = self.scanRoot(rid, force=True)
            if snap is not None:
                batch.append(snap)
            now = time.perf_counter()
            if i + 1 < len(ids) and (now - last > batchSeconds or (first and len(batch) >= 40)):
                yield ScanResult(self.location, list(ids), batch, [], now - t0, complete=False)
                batch, last, first = [], now, False
        yield ScanResult(self.location, list(ids), batch, [], time.perf_counter() - t0)

    # -- per-row extras --------------------------------------------------------------------------

    def _label(self, rootId: str, jobDir: str, path: str) -> tuple[str | None, str, dict[str, Any]]:
        key = (rootId, path)
        found = self._labels.get(key)
        if found is not None:
            return found
        try:
            spec = readSpec(jobDir)
            label = spec.get("label")
            opts = spec.get("jobOptions")
            meta = opts.get("metadata") if isinstance(opts, dict) else None
            found = (
                label if isinstance(label, str) else None,
                str(spec.get("jobType", "?")),
                dict(meta) if isinstance(meta, dict) else {},
            )
        except (CorruptJob, OSError) as exc:
            found = (f"<{exc}>", "?", {})
        self._labels[key] = found
        return found

    def extras(self, rootId: str, paths: Iterable[str]) -> dict[str, JobExtra]:
        """Label, host, times and attempts of these jobs (cached until their token moves)."""
        snap = self.roots.get(rootId)
        out: dict[str, JobExtra] = {}
        if snap is None:
            return out
        for path in paths:
            token = snap.tokens.get(path)
            if token is None:
                continue
            cached = self._extras.get((rootId, path))
            if cached is not None and cached.key == token and token[0] != L.RUNNING:
                out[path] = cached
                continue
            jobDir = snap.jobDir(path)
            label, jobType, meta = self._label(rootId, jobDir, path)
            state, name = token
            claim = loadToken(snap.rootDir, state, name)
            n = claim.get("attempt")
            n = n if isinstance(n, int) else 0
            endTime = None
            error = claim.get("error")
            if n and state in L.FINAL_STATES:
                try:
                    record = _fs.readJson(os.path.join(jobDir, L.attemptFile(n)))
                except (ValueError, OSError):
                    record = None
                if isinstance(record, dict) and record.get("claim") == claim.get("claim"):
                    e = record.get("endTime")
                    endTime = float(e) if isinstance(e, (int, float)) else None
                    error = error or record.get("error")
            h = claim.get("host")
            t = claim.get("startTime")
            extra = JobExtra(
                label=label,
                jobType=jobType,
                host=h if isinstance(h, str) else None,
                startTime=float(t) if isinstance(t, (int, float)) else None,
                endTime=endTime,
                attempts=n,
                error=error if isinstance(error, str) else None,
                metadata=meta,
                key=token,
            )
            self._extras[(rootId, path)] = extra
            out[path] = extra
        return out

    # -- filtering -------------------------------------------------------------------------------

    def matching(self, rootId: str, flt: JobFilter) -> set[str] | None:
        """The paths of a root that the filter shows (matches and their ancestors); None when the
        filter shows everything."""
        snap = self.roots.get(rootId)
        if snap is None or flt.isEmpty():
            return None
        hits: list[str] = []
        needText = flt.needsSpec()
        for path, state in snap.states.items():
            if flt.states and state not in flt.states:
                continue
            if needText or flt.hosts:
                if needText:
                    label, jobType, meta = self._label(rootId, snap.jobDir(path), path)
                else:
                    label, jobType, meta = None, "", {}
                host = None
                if flt.hosts:
                    run = snap.running.get(path)
                    if run is not None:
                        host = run.host
                    else:
                        s, name = snap.tokens[path]
                        h = loadToken(snap.rootDir, s, name).get("host")
                        host = h if isinstance(h, str) else None
                if not flt.matches(label, jobType, host, meta, path):
                    continue
            hits.append(path)
        shown: set[str] = set()
        for path in hits:
            p: str | None = path
            while p is not None and p not in shown:
                shown.add(p)
                p = _parent(p)
        return shown


@dataclass(frozen=True)
class JobFilter:
    """What the filter bar asks for. Text words match label, job type or path (all words must
    match); ``host:NAME`` matches the host; ``KEY:VALUE`` matches a metadata entry; ``state:S``
    adds a state."""

    states: frozenset[str] = frozenset()
    words: tuple[str, ...] = ()
    hosts: tuple[str, ...] = ()
    meta: tuple[tuple[str, str], ...] = ()

    @classmethod
    def parse(cls, text: str, states: Iterable[str] = ()) -> JobFilter:
        words: list[str] = []
        hosts: list[str] = []
        meta: list[tuple[str, str]] = []
        st = set(states)
        for tok in text.split():
            key, sep, value = tok.partition(":")
            if sep and key and value:
                k = key.lower()
                if k == "host":
                    hosts.append(value.lower())
                elif k == "state":
                    st.add(value.lower())
                else:
                    meta.append((key, value.lower()))
            else:
                words.append(tok.lower())
        return cls(frozenset(st), tuple(words), tuple(hosts), tuple(meta))

    def isEmpty(self) -> bool:
        return not (self.states or self.words or self.hosts or self.meta)

    def needsSpec(self) -> bool:
        return bool(self.words or self.meta)

    def matches(
        self,
        label: str | None,
        jobType: str,
        host: str | None,
        meta: dict[str, Any],
        path: str,
    ) -> bool:
        text = f"{label or ''}\n{jobType}\n{path}".lower()
        if any(w not in text for w in self.words):
            return False
        if self.hosts and not any(h in (host or "").lower() for h in self.hosts):
            return False
        return all(k in meta and v in str(meta[k]).lower() for k, v in self.meta)


def _fields(info: RunInfo) -> tuple[Any, ...]:
    return (info.progress, info.statusLine, info.host, info.startTime, info.attempt, info.mtime)


def _children(tokens: dict[str, tuple[str, str]]) -> dict[str, list[str]]:
    children: dict[str, list[str]] = {}
    for path in tokens:
        parent = _parent(path)
        if parent is not None and parent in tokens:
            children.setdefault(parent, []).append(path)
    for kids in children.values():
        kids.sort(key=lambda p: int(p.rpartition(".")[2]))
    return children


def _rollups(snap: RootSnapshot) -> dict[str, Rollup]:
    """Counts by state and summed progress of every subtree that has children."""
    n = len(STATES)
    acc: dict[str, list[float]] = {p: [0.0] * (n + 1) for p in snap.children}
    states = snap.states
    running = snap.running
    for path, state in states.items():
        if state == "done":
            prog = 100.0
        elif state == "running":
            r = running.get(path)
            prog = r.progress if r is not None else 0.0
        else:
            prog = 0.0
        i = STATE_INDEX[state]
        p: str | None = path
        while p is not None:
            a = acc.get(p)
            if a is not None:
                a[i] += 1
                a[n] += prog
            p = _parent(p)
    return {p: Rollup(tuple(int(x) for x in a[:n]), a[n]) for p, a in acc.items()}


def _changed(prev: RootSnapshot, snap: RootSnapshot) -> Iterable[str]:
    ps, ns = prev.states, snap.states
    if ps is not ns:
        for path, state in ns.items():
            if ps.get(path, state) != state:
                yield path
    pr, nr = prev.running, snap.running
    if pr is not nr:
        for path in pr.keys() | nr.keys():
            a, b = pr.get(path), nr.get(path)
            if a is None or b is None or (a.progress, a.statusLine) != (b.progress, b.statusLine):
                yield path
    po = prev.rollups
    for path, r in snap.rollups.items():
        if po.get(path) != r:
            yield path
