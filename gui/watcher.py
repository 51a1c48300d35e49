"""Watching a queue: a background thread that rescans what changed and hands snapshots to Qt.

Two sources of change hints, chosen from the mount (``/proc/self/mountinfo``):

- local disks: watchdog's inotify layer, with one non-recursive watch on ``QUEUE/roots`` and one
  on each of the seven index directories of every root (not one per job directory), and an event
  mask of created/deleted/moved/closed-after-write only (the default mask includes opens, and
  rescans then overflow the kernel queue and spin at ~96% CPU: shared FACTS, "Watching a tree").
  Events are hints naming a root; the root is then re-read from its index markers. A marker rescan
  of every root runs every :data:`SAFETY_RESCAN` seconds all the same (dropped events, overflow).
- network filesystems (NFS, SMB, sshfs, other FUSE): inotify only sees this host's own changes, so
  the thread polls the cheap markers (seven ``stat`` calls per root, a listing only where one moved)
  every ``poll`` seconds; finished roots only every :data:`FINISHED_EVERY` polls.

Bursts are coalesced: the thread waits :data:`COALESCE` seconds after the first hint, and never
scans more often than twice its last scan's duration, so a worker farm draining 1,000 jobs/s costs
the monitor a bounded share of one core. watchdog's thread never touches Qt: it only adds root ids
to a set and sets a :class:`threading.Event`. Results go to the GUI thread through
:class:`Bridge`, a QObject living there, with queued connections.
"""

from __future__ import annotations

import errno
import logging
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from PySide6.QtCore import QObject, Signal

from jobtree import _layout as L

from .scan import JobFilter, QueueScanner, ScanResult

log = logging.getLogger("jobtree.gui")

COALESCE = 0.03
"""Seconds to wait after the first change hint, so that a burst becomes one rescan."""
SAFETY_RESCAN = 30.0
"""Seconds between marker rescans of every root even when inotify reports nothing."""
NETWORK_POLL = 2.0
"""Default polling interval on network filesystems."""
LOCAL_POLL = 1.0
"""Polling interval on a local disk when inotify is unavailable (watch limit reached)."""
FINISHED_EVERY = 10
"""In polling mode, roots that finished are re-checked only on every n-th poll."""
MIN_GAP = 0.05
"""Seconds between two rescans at least (more when scans take long: twice their duration)."""


class Bridge(QObject):
    """Lives in the GUI thread; the monitor threads emit its signals (queued delivery)."""

    scanned = Signal(object, object)
    """(queue index, ScanResult)"""
    extras = Signal(object, object, object)
    """(queue index, root id, {path: JobExtra})"""
    visible = Signal(object, object)
    """(queue index, {root id: set of shown paths or None})"""
    mode = Signal(object, str)
    """(queue index, a sentence saying how the queue is watched)"""
    failed = Signal(object, str)
    """(queue index, error message)"""


@dataclass
class _Requests:
    lock: threading.Lock = field(default_factory=threading.Lock)
    dirty: set[str] = field(default_factory=set)
    rootsChanged: bool = False
    force: set[str] = field(default_factory=set)
    forceAll: bool = False
    extras: dict[str, set[str]] = field(default_factory=dict)
    filter: JobFilter | None = None
    filterChanged: bool = False


class _IndexWatch:
    """inotify watches on exactly what says "something changed": ``QUEUE/roots`` (roots added
    or removed) and the seven index directories of every root (tokens created, moved, deleted,
    rewritten). Built on watchdog's inotify layer (one inotify descriptor, one reader thread),
    with the event mask the shared FACTS ask for: no open, access or close-without-write events.
    A recursive watch of the whole queue would need one watch per job directory: 14 s to set up
    for 100,000 jobs, and it overflows the kernel queue on the way.

    The callbacks run in watchdog's reader thread: they only call ``sink`` (which adds to a set).
    """

    def __init__(
        self, rootsDir: str, sink: Callable[[str | None], None], overflow: Callable[[], None]
    ) -> None:
        from watchdog.observers.inotify_c import InotifyConstants as C
        from watchdog.observers.inotify_c import InotifyFD

        self._C = C
        self.mask = (
            C.IN_CREATE
            | C.IN_DELETE
            | C.IN_MOVED_FROM
            | C.IN_MOVED_TO
            | C.IN_CLOSE_WRITE
            | C.IN_DELETE_SELF
            | C.IN_MOVE_SELF
            | C.IN_ONLYDIR
            | C.IN_DONT_FOLLOW
        )
        self.sink = sink
        self.overflow = overflow
        self.rootsDir = rootsDir
        self._fd = InotifyFD()
        self._fd.start()
        self._lock = threading.Lock()
        self._rootOf: dict[int, str | None] = {}
        self._watches: dict[str | None, list[int]] = {}
        self._id = 1
        self.add(None)

    # watchdog's WatchCallback protocol (called in its reader thread) -------------------------------

    def on_event(self, event: Any) -> None:
        rootId = self._rootOf.get(event.wd, "")
        if rootId != "":
            self.sink(rootId)

    def on_watch_deleted(self, wd: int) -> None:
        with self._lock:
            self._rootOf.pop(wd, None)

    def on_queue_overflow(self) -> None:
        self.overflow()

    # called from the monitor thread --------------------------------------------------------------

    def add(self, rootId: str | None) -> None:
        """Watch a root's index directories (None: the roots directory itself)."""
        if rootId in self._watches:
            return
        if rootId is None:
            dirs = [self.rootsDir]
        else:
            dirs = [os.path.join(self.rootsDir, rootId, L.INDEX_DIR, s) for s in L.INDEX_STATES]
        wds: list[int] = []
        for d in dirs:
            try:
                wd = self._fd.add_callback(os.fsencode(d), self.mask, self, self._id)
            except OSError as exc:
                if exc.errno in (errno.ENOENT, errno.ENOTDIR):
                    continue  # the root went meanwhile
                raise
            with self._lock:
                self._rootOf[wd] = rootId
            wds.append(wd)
        self._watches[rootId] = wds

    def remove(self, rootId: str) -> None:
        wds = self._watches.pop(rootId, [])
        live = []
        with self._lock:
            for wd in wds:
                if self._rootOf.get(wd, "") == rootId:
                    del self._rootOf[wd]
                    live.append((wd, self._id))
        if live:
            self._fd.remove_callbacks(live)

    def sync(self, rootIds: list[str]) -> list[str]:
        """Watch exactly these roots; returns the roots that were newly watched."""
        wanted = set(rootIds)
        for rid in [r for r in self._watches if r is not None and r not in wanted]:
            self.remove(rid)
        new = [r for r in rootIds if r not in self._watches]
        for rid in new:
            self.add(rid)
        return new

    @property
    def count(self) -> int:
        return sum(len(w) for w in self._watches.values())

    def close(self) -> None:
        self._fd.stop()
        self._fd.join(5)


class Monitor:
    """One queue's background reader. :meth:`start` it; :meth:`stop` joins it."""

    def __init__(
        self,
        queueIndex: int,
        location: str,
        bridge: Bridge,
        *,
        poll: float | None = None,
        useInotify: bool | None = None,
    ) -> None:
        self.index = queueIndex
        self.scanner = QueueScanner(location)
        self.location = self.scanner.location
        self.bridge = bridge
        self.network = self.scanner.network
        self.inotify = (not self.network) if useInotify is None else useInotify
        self.poll = poll if poll is not None else (NETWORK_POLL if self.network else LOCAL_POLL)
        self._req = _Requests()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread = threading.Thread(
            target=self._run, name=f"jobtree-gui-monitor-{queueIndex}", daemon=True
        )
        self._observer: Any = None
        self._watching = False
        self.modeText = ""
        self.lastScan = 0.0
        self.scans = 0

    # -- called from the GUI thread ----------------------------------------------------------------

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        self._thread.join(10)
        obs = self._observer
        if obs is not None:
            self._observer = None
            obs.close()

    def rescan(self, rootIds: list[str] | None = None) -> None:
        """Re-read these roots (all when None) from the disk now, trusting no marker."""
        with self._req.lock:
            if rootIds is None:
                self._req.forceAll = True
            else:
                self._req.force.update(rootIds)
        self._wake.set()

    def requestExtras(self, rootId: str, paths: list[str]) -> None:
        with self._req.lock:
            self._req.extras.setdefault(rootId, set()).update(paths)
        self._wake.set()

    def setFilter(self, flt: JobFilter | None) -> None:
        with self._req.lock:
            self._req.filter = None if flt is None or flt.isEmpty() else flt
            self._req.filterChanged = True
        self._wake.set()

    # -- called from watchdog's thread -----------------------------------------------------------

    def _hint(self, rootId: str | None) -> None:
        with self._req.lock:
            if rootId is None:
                self._req.rootsChanged = True
            else:
                self._req.dirty.add(rootId)
        self._wake.set()

    # -- the thread ------------------------------------------------------------------------------

    def _emitMode(self, text: str) -> None:
        self.modeText = text
        self.bridge.mode.emit(self.index, text)

    def _startInotify(self) -> bool:
        try:
            self._observer = _IndexWatch(self.scanner.rootsDir, self._hint, self._overflow)
            self._observer.sync(self.scanner.rootIds)
        except Exception as exc:  # ENOSPC (watch limit), no inotify, an older watchdog
            log.warning("inotify unavailable for %s (%s); polling", self.location, exc)
            if self._observer is not None:
                self._observer.close()
                self._observer = None
            self.inotify = False
            self._emitMode(f"polling every {self.poll:g} s (inotify unavailable: {exc})")
            return False
        self._watching = True
        self._emitMode(f"watching with inotify (local disk, {self._observer.count} watches)")
        return True

    def _overflow(self) -> None:
        with self._req.lock:
            self._req.forceAll = True
        self._wake.set()

    def _run(self) -> None:
        try:
            self._loop()
        except Exception as exc:  # never let the thread die silently
            log.exception("monitor of %s failed", self.location)
            self.bridge.failed.emit(self.index, f"monitor of {self.location} stopped: {exc}")

    def _loop(self) -> None:
        sc = self.scanner
        if not os.path.isdir(sc.rootsDir):
            self.bridge.failed.emit(self.index, f"{self.location} is not a jobtree queue")
            return
        for result in sc.scanIncrementally():
            if self._stop.is_set():
                return
            self.bridge.scanned.emit(self.index, result)
        if self.inotify and self._startInotify():
            # whatever changed between the first scan and the watches being in place
            with self._req.lock:
                self._req.forceAll = True
            self._wake.set()
        elif not self.inotify:
            why = "network filesystem" if self.network else "inotify disabled"
            self._emitMode(f"polling every {self.poll:g} s ({why}: {sc.fstype})")
        lastPoll = time.monotonic()
        while not self._stop.is_set():
            interval = SAFETY_RESCAN if self._watching else self.poll
            timeout = max(0.0, interval - (time.monotonic() - lastPoll))
            woke = self._wake.wait(timeout)
            if self._stop.is_set():
                return
            if woke:
                # Coalesce the burst, and keep a gap after the last scan.
                gap = max(MIN_GAP, 2 * self.lastScan)
                time.sleep(COALESCE)
                self._stop.wait(max(0.0, gap - COALESCE))
                if self._stop.is_set():
                    return
            self._wake.clear()
            with self._req.lock:
                req = self._req
                dirty, req.dirty = req.dirty, set()
                rootsChanged, req.rootsChanged = req.rootsChanged, False
                force, req.force = req.force, set()
                forceAll, req.forceAll = req.forceAll, False
                extras, req.extras = req.extras, {}
                flt, filterChanged = req.filter, req.filterChanged
                req.filterChanged = False
            t0 = time.perf_counter()
            for rid in force:
                sc.refreshSpec(rid)
            due = time.monotonic() - lastPoll >= interval
            result: ScanResult | None = None
            if forceAll or due:
                lastPoll = time.monotonic()
                result = sc.scan(
                    None,
                    force=forceAll,
                    includeFinished=forceAll or self._watching or sc.polls % FINISHED_EVERY == 0,
                )
            elif rootsChanged:
                result = sc.scan(None)
            elif dirty:
                result = sc.scan(dirty)
            if force and not forceAll:
                if result is None:
                    result = ScanResult(self.location, sc.rootIds)
                for rid in force:
                    snap = sc.scanRoot(rid, force=True)
                    if snap is not None:
                        result.updated.append(snap)
            obs = self._observer
            if self._watching and obs is not None and result is not None:
                try:
                    new = obs.sync(sc.rootIds)
                except OSError as exc:  # the watch limit, reached while the queue grew
                    log.warning("cannot watch more roots of %s: %s; polling", self.location, exc)
                    self._watching = self.inotify = False
                    self._emitMode(f"polling every {self.poll:g} s (inotify: {exc})")
                    new = []
                if new:
                    # changes between their first listing and their watch: look once more
                    with self._req.lock:
                        self._req.dirty.update(new)
                    self._wake.set()
            if result is not None and (result.updated or result.removed or rootsChanged):
                self.bridge.scanned.emit(self.index, result)
                if flt is not None and not filterChanged:
                    vis = {s.rootId: sc.matching(s.rootId, flt) for s in result.updated}
                    if vis:
                        self.bridge.visible.emit(self.index, vis)
            if filterChanged:
                vis = {}
                last = time.perf_counter()
                for rid in list(sc.roots):
                    vis[rid] = sc.matching(rid, flt) if flt is not None else None
                    if time.perf_counter() - last > 0.2:
                        self.bridge.visible.emit(self.index, vis)
                        vis, last = {}, time.perf_counter()
                self.bridge.visible.emit(self.index, vis)
            self.lastScan = time.perf_counter() - t0
            self.scans += 1
            for rid, paths in extras.items():
                found = sc.extras(rid, paths)
                if found:
                    self.bridge.extras.emit(self.index, rid, found)
