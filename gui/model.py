"""The tree model: queues, their roots and sub-jobs, over plain dataclass nodes.

Nodes hold only identity (queue, root id, job path) and their materialized children; every value
shown is looked up in the root's current :class:`~jobtree.gui.scan.RootSnapshot` (immutable, made
by the scanner thread) and in the per-row extras the scanner reads on request. Children are
materialized lazily (``canFetchMore``/``fetchMore``) when a row is expanded, so a queue of 100,000
jobs starts with one row per root.

Updates are incremental: a new snapshot of a root replaces the old one; rows whose values changed
get ``dataChanged``; jobs that appeared or went are inserted or removed with
``beginInsertRows``/``beginRemoveRows`` in contiguous runs. There is never a model reset per update.
Model indexes carry a node id (``internalId``), never a Python object pointer, so a stale index
held by a view can never reach a freed node.
"""

from __future__ import annotations

import itertools
import os
import time
from collections import deque
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from PySide6.QtCore import (
    QAbstractItemModel,
    QModelIndex,
    QPersistentModelIndex,
    Qt,
    QTimer,
)
from PySide6.QtGui import QBrush, QColor, QFont, QIcon, QPainter, QPixmap

from .scan import STATE_INDEX, STATES, JobExtra, Rollup, RootSnapshot, ScanResult

QUEUE, JOB = 0, 1

COLUMNS = ("Job", "State", "Progress", "Status", "Host", "Started", "Elapsed", "ETA", "Attempts")
(
    COL_LABEL,
    COL_STATE,
    COL_PROGRESS,
    COL_STATUS,
    COL_HOST,
    COL_START,
    COL_ELAPSED,
    COL_ETA,
    COL_ATTEMPTS,
) = range(len(COLUMNS))

ProgressRole = Qt.ItemDataRole.UserRole + 1
"""float 0-100 for the progress column (None: no bar)."""
StateRole = Qt.ItemDataRole.UserRole + 2
"""the state shown for the row (a STATES value, or "" for a queue without jobs)."""
NodeRole = Qt.ItemDataRole.UserRole + 3
"""the row's Node"""

STATE_COLORS = {
    "waiting": "#90a4ae",
    "ready": "#42a5f5",
    "running": "#fb8c00",
    "done": "#43a047",
    "failed": "#e53935",
    "cancelled": "#616161",
    "paused": "#8e24aa",
    "blocked": "#8d6e63",
}
STATE_GLYPHS = {
    "waiting": "…",
    "ready": "•",
    "running": "▶",
    "done": "✓",
    "failed": "✗",
    "cancelled": "\u2013",
    "paused": "Ⅱ",
    "blocked": "!",
}

_DISPLAY = Qt.ItemDataRole.DisplayRole
_DECORATION = Qt.ItemDataRole.DecorationRole
_FOREGROUND = Qt.ItemDataRole.ForegroundRole
_TOOLTIP = Qt.ItemDataRole.ToolTipRole
_ALIGN = Qt.ItemDataRole.TextAlignmentRole
_FONT = Qt.ItemDataRole.FontRole
_NO_PARENT = QModelIndex()
_ROLES = frozenset({_DISPLAY, _DECORATION, _FOREGROUND, _TOOLTIP, _ALIGN, _FONT})


def stateIcon(state: str, size: int = 14) -> QIcon:
    """A round icon in the state's colour with its glyph (cached)."""
    key = (state, size)
    icon = _icons.get(key)
    if icon is None:
        pm = QPixmap(size, size)
        pm.fill(Qt.GlobalColor.transparent)
        p = QPainter(pm)
        p.setRenderHint(QPainter.RenderHint.Antialiasing)
        p.setPen(Qt.PenStyle.NoPen)
        p.setBrush(QColor(STATE_COLORS.get(state, "#9e9e9e")))
        p.drawEllipse(1, 1, size - 2, size - 2)
        p.setPen(QColor("white"))
        f = QFont()
        f.setPixelSize(max(6, size - 5))
        f.setBold(True)
        p.setFont(f)
        p.drawText(pm.rect(), Qt.AlignmentFlag.AlignCenter, STATE_GLYPHS.get(state, ""))
        p.end()
        icon = _icons[key] = QIcon(pm)
    return icon


_icons: dict[tuple[str, int], QIcon] = {}


def fmtBytes(n: int) -> str:
    """A size for the panels: ``512 B``, ``1.5 KB``, ``20.0 MB``, ``3.2 GB``."""
    x = float(n)
    for unit in ("B", "KB", "MB", "GB"):
        if x < 1024 or unit == "GB":
            return f"{x:.0f} {unit}" if unit == "B" else f"{x:.1f} {unit}"
        x /= 1024
    return f"{n} B"


def fmtDuration(seconds: float | None) -> str:
    if seconds is None or seconds < 0:
        return ""
    s = int(seconds + 0.5)
    if s < 60:
        return f"{s}s"
    m, s = divmod(s, 60)
    if m < 60:
        return f"{m}m {s:02d}s"
    h, m = divmod(m, 60)
    if h < 48:
        return f"{h}h {m:02d}m"
    d, h = divmod(h, 24)
    return f"{d}d {h}h"


def fmtTime(t: float | None, now: float | None = None) -> str:
    if t is None:
        return ""
    lt = time.localtime(t)
    today = time.localtime(now if now is not None else time.time())
    if lt[:3] == today[:3]:
        return time.strftime("%H:%M:%S", lt)
    return time.strftime("%Y-%m-%d %H:%M", lt)


def countsText(r: Rollup) -> str:
    parts = [f"{n:,} {s}" for s, n in zip(STATES, r.counts, strict=True) if n]
    return ", ".join(parts)


@dataclass(eq=False, slots=True)
class Node:
    """One row: a queue, or a job (root or sub-job) of a queue."""

    id: int
    kind: int
    queue: int
    rootId: str = ""
    path: str = ""
    parent: Node | None = None
    row: int = 0
    children: list[Node] = field(default_factory=list)
    loaded: bool = False

    @property
    def key(self) -> str:
        return self.rootId if self.path == "root" else self.path


@dataclass
class _Rate:
    """Recent (time, completed-work) samples of a subtree, for an ETA."""

    samples: deque[tuple[float, float]] = field(default_factory=lambda: deque(maxlen=120))

    def add(self, t: float, work: float) -> None:
        if not self.samples or self.samples[-1][1] != work or t - self.samples[-1][0] > 5:
            self.samples.append((t, work))

    def eta(self, remaining: float, now: float) -> float | None:
        while len(self.samples) > 2 and now - self.samples[0][0] > 120:
            self.samples.popleft()
        if len(self.samples) < 2 or remaining <= 0:
            return None
        (t0, w0), (t1, w1) = self.samples[0], self.samples[-1]
        if t1 - t0 < 1 or w1 <= w0:
            return None
        return remaining / ((w1 - w0) / (t1 - t0))


class JobTreeModel(QAbstractItemModel):
    """Queues at the top, then each queue's roots in submission order, then sub-jobs."""

    def __init__(self, parent: Any = None) -> None:
        super().__init__(parent)
        self._ids = itertools.count(1)
        self._top = Node(0, QUEUE, -1, loaded=True)
        self._byId: dict[int, Node] = {}
        self.queues: list[str] = []
        self._rootOrder: list[list[str]] = []
        self._snaps: list[dict[str, RootSnapshot]] = []
        self._extras: list[dict[str, dict[str, JobExtra]]] = []
        self._nodes: list[dict[str, dict[str, Node]]] = []
        """queue -> root id -> path -> materialized node"""
        self._visible: list[dict[str, set[str] | None]] = []
        self._filtering: list[bool] = []
        self._totals: list[list[float]] = []
        self._rates: dict[tuple[int, str], _Rate] = {}
        self.now = time.time
        self._changing = 0
        self._bold = QFont()
        self._bold.setBold(True)

    # -- queues ----------------------------------------------------------------------------------

    def addQueue(self, location: str) -> int:
        qi = len(self.queues)
        node = Node(next(self._ids), QUEUE, qi, parent=self._top, row=len(self._top.children))
        node.loaded = True
        self.beginInsertRows(QModelIndex(), node.row, node.row)
        self.queues.append(location)
        self._rootOrder.append([])
        self._snaps.append({})
        self._extras.append({})
        self._nodes.append({})
        self._visible.append({})
        self._filtering.append(False)
        self._totals.append([0.0] * (len(STATES) + 1))
        self._byId[node.id] = node
        self._top.children.append(node)
        self.endInsertRows()
        return qi

    def queueNode(self, qi: int) -> Node:
        return self._top.children[qi]

    def queueIndex(self, qi: int) -> QModelIndex:
        return self.createIndex(qi, 0, self._top.children[qi].id)

    def queueRollup(self, qi: int) -> Rollup:
        t = self._totals[qi]
        return Rollup(tuple(int(x) for x in t[: len(STATES)]), t[len(STATES)])

    def snapshot(self, qi: int, rootId: str) -> RootSnapshot | None:
        return self._snaps[qi].get(rootId)

    def snapshots(self, qi: int) -> dict[str, RootSnapshot]:
        return self._snaps[qi]

    # -- Qt's model interface --------------------------------------------------------------------

    def node(self, index: QModelIndex | QPersistentModelIndex) -> Node | None:
        if not index.isValid():
            return None
        return self._byId.get(index.internalId())

    def _parentNode(self, parent: QModelIndex | QPersistentModelIndex) -> Node | None:
        return self._byId.get(parent.internalId()) if parent.isValid() else self._top

    def index(
        self, row: int, column: int, parent: QModelIndex | QPersistentModelIndex = _NO_PARENT
    ) -> QModelIndex:
        p = self._parentNode(parent)
        if p is None or row < 0 or column < 0 or column >= len(COLUMNS) or row >= len(p.children):
            return QModelIndex()
        return self.createIndex(row, column, p.children[row].id)

    def parent(self, index: Any = None) -> Any:  # type: ignore[override]
        if index is None:
            return super().parent()  # QObject.parent()
        n = self.node(index)
        if n is None or n.parent is None or n.parent is self._top:
            return QModelIndex()
        return self.createIndex(n.parent.row, 0, n.parent.id)

    def rowCount(self, parent: QModelIndex | QPersistentModelIndex = _NO_PARENT) -> int:
        if parent.isValid() and parent.column() != 0:
            return 0
        p = self._parentNode(parent)
        return len(p.children) if p is not None else 0

    def columnCount(self, parent: QModelIndex | QPersistentModelIndex = _NO_PARENT) -> int:
        return len(COLUMNS)

    def hasChildren(self, parent: QModelIndex | QPersistentModelIndex = _NO_PARENT) -> bool:
        if parent.isValid() and parent.column() != 0:
            return False
        p = self._parentNode(parent)
        if p is None:
            return False
        if p.children:
            return True
        if p.kind == JOB and not p.loaded:
            return bool(self._childKeys(p))
        return False

    def canFetchMore(self, parent: QModelIndex | QPersistentModelIndex) -> bool:
        p = self._parentNode(parent)
        return p is not None and p.kind == JOB and not p.loaded and bool(self._childKeys(p))

    def fetchMore(self, parent: QModelIndex | QPersistentModelIndex) -> None:
        p = self._parentNode(parent)
        if p is None or p.kind != JOB or p.loaded:
            return
        if self._changing:
            # Called from a slot of our own rowsInserted/rowsRemoved (Qt's model tester does
            # that): a nested insertion is not allowed there. Do it right after.
            QTimer.singleShot(0, lambda nid=p.id: self._fetchLater(nid))
            return
        self._fetch(p)

    def _fetchLater(self, nodeId: int) -> None:
        p = self._byId.get(nodeId)
        if p is not None and not p.loaded and not self._changing:
            self._fetch(p)

    def _fetch(self, p: Node) -> None:
        keys = self._childKeys(p)
        p.loaded = True
        if keys:
            self._insert(p, 0, keys)

    def headerData(self, section: int, orientation: Qt.Orientation, role: int = _DISPLAY) -> Any:
        if orientation == Qt.Orientation.Horizontal and role == _DISPLAY:
            return COLUMNS[section]
        return None

    def flags(self, index: QModelIndex | QPersistentModelIndex) -> Qt.ItemFlag:
        if not index.isValid():
            return Qt.ItemFlag.NoItemFlags
        return Qt.ItemFlag.ItemIsEnabled | Qt.ItemFlag.ItemIsSelectable

    def data(self, index: QModelIndex | QPersistentModelIndex, role: int = _DISPLAY) -> Any:
        if role not in _ROLES and role < ProgressRole:
            return None
        n = self._byId.get(index.internalId()) if index.isValid() else None
        if n is None:
            return None
        col = index.column()
        if role == NodeRole:
            return n
        if n.kind == QUEUE:
            return self._queueData(n, col, role)
        snap = self._snaps[n.queue].get(n.rootId)
        if snap is None:
            return None
        return self._jobData(n, snap, col, role)

    # -- values ----------------------------------------------------------------------------------

    def shownState(self, snap: RootSnapshot, path: str) -> str:
        """A leaf's state; a parent waiting for its running sub-jobs shows as running."""
        state = snap.states.get(path, "")
        if state == "waiting" and path in snap.rollups:
            r = snap.rollups[path]
            if r.counts[STATE_INDEX["running"]]:
                return "running"
        return state

    def _queueData(self, n: Node, col: int, role: int) -> Any:
        qi = n.queue
        r = self.queueRollup(qi)
        total = r.total
        if role == _DISPLAY:
            if col == COL_LABEL:
                return self.queues[qi]
            if col == COL_STATE:
                return _summaryState(r)
            if col == COL_PROGRESS:
                return f"{r.count('done'):,}/{total:,}" if total else ""
            if col == COL_STATUS:
                return f"{len(self._rootOrder[qi]):,} roots: {countsText(r)}"
            if col == COL_ETA:
                return fmtDuration(self._eta((qi, ""), r))
            return None
        if role == ProgressRole:
            return r.progress if col == COL_PROGRESS and total else None
        if role == StateRole:
            return _summaryState(r)
        if role == _DECORATION and col == COL_STATE and total:
            return stateIcon(_summaryState(r))
        if role == _FONT and col == COL_LABEL:
            return self._bold
        if role == _TOOLTIP:
            return f"{self.queues[qi]}\n{countsText(r)}"
        return None

    def _jobData(self, n: Node, snap: RootSnapshot, col: int, role: int) -> Any:
        path = n.path
        state = self.shownState(snap, path)
        internal = path in snap.children
        if role == _DISPLAY:
            if col == COL_LABEL:
                return self.label(n, snap)
            if col == COL_STATE:
                return state
            if col == COL_PROGRESS:
                if internal:
                    r = snap.rollups[path]
                    return f"{r.count('done'):,}/{r.total:,}"
                return f"{snap.progressOf(path):.0f}%" if state in ("running", "done") else ""
            if col == COL_STATUS:
                return self.statusText(n, snap, state)
            run = snap.running.get(path)
            extra = self._extra(n)
            if col == COL_HOST:
                return run.host if run is not None else (extra.host if extra else None)
            if col == COL_START:
                t = run.startTime if run is not None else (extra.startTime if extra else None)
                return fmtTime(t)
            if col == COL_ELAPSED:
                if run is not None and run.startTime is not None:
                    return fmtDuration(self.now() - run.startTime)
                if extra and extra.startTime and extra.endTime:
                    return fmtDuration(extra.endTime - extra.startTime)
                return None
            if col == COL_ETA:
                if internal:
                    return fmtDuration(
                        self._eta((n.queue, n.rootId + ":" + path), snap.rollups[path])
                    )
                if run is not None and run.startTime is not None and 0 < run.progress < 100:
                    el = self.now() - run.startTime
                    return fmtDuration(el * (100 - run.progress) / run.progress)
                return None
            if col == COL_ATTEMPTS:
                a = run.attempt if run is not None else (extra.attempts if extra else 0)
                return str(a) if a else None
            return None
        if role == ProgressRole:
            if col != COL_PROGRESS:
                return None
            if internal:
                return snap.rollups[path].progress
            return snap.progressOf(path) if state in ("running", "done", "failed") else None
        if role == StateRole:
            return state
        if role == _DECORATION:
            return stateIcon(state) if col == COL_STATE else None
        if role == _FOREGROUND:
            if col == COL_STATE:
                return QBrush(QColor(STATE_COLORS.get(state, "#000000")))
            return None
        if role == _ALIGN:
            if col in (COL_ELAPSED, COL_ETA, COL_ATTEMPTS):
                return int(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
            return None
        if role == _FONT:
            return self._bold if (col == COL_LABEL and path == "root") else None
        if role == _TOOLTIP:
            own = snap.states.get(path, "")
            tip = f"{n.rootId}:{path}\nstate: {own}"
            if internal:
                tip += "\n" + countsText(snap.rollups[path])
            extra = self._extra(n)
            if extra is not None:
                tip += f"\ntype: {extra.jobType}"
                if extra.error:
                    tip += f"\nerror: {extra.error}"
            return tip
        return None

    def staleExtras(self, nodes: Iterable[Node]) -> dict[tuple[int, str], list[str]]:
        """Of these rows, those whose extras (label, host, times) are missing or older than
        their token: {(queue, root id): paths}. The window asks only for the rows on screen."""
        out: dict[tuple[int, str], list[str]] = {}
        for n in nodes:
            if n.kind != JOB:
                continue
            snap = self._snaps[n.queue].get(n.rootId)
            token = snap.tokens.get(n.path) if snap is not None else None
            if token is None:
                continue
            e = self._extra(n)
            if e is None or e.key != token:
                out.setdefault((n.queue, n.rootId), []).append(n.path)
        return out

    def _extra(self, n: Node) -> JobExtra | None:
        e = self._extras[n.queue].get(n.rootId)
        return e.get(n.path) if e else None

    def label(self, n: Node, snap: RootSnapshot | None = None) -> str:
        if n.kind == QUEUE:
            return self.queues[n.queue]
        snap = snap or self._snaps[n.queue].get(n.rootId)
        if n.path == "root" and snap is not None:
            return snap.spec.label or f"{snap.spec.jobType.rpartition(':')[2]} {n.rootId[-6:]}"
        extra = self._extra(n)
        if extra is not None and extra.label:
            return extra.label
        tail = n.path.rpartition(".")[2]
        if extra is not None:
            return f"{extra.jobType.rpartition(':')[2]} #{tail}"
        return f"#{tail}"

    def statusText(self, n: Node, snap: RootSnapshot, state: str) -> str:
        path = n.path
        run = snap.running.get(path)
        if run is not None and run.statusLine:
            return run.statusLine
        if path in snap.children:
            return countsText(snap.rollups[path])
        if state in ("failed", "cancelled"):
            extra = self._extra(n)
            if extra is not None and extra.error:
                return extra.error.splitlines()[0] if extra.error.strip() else extra.error
        if state in ("ready", "paused"):
            nb = snap.notBefore(path)
            if nb and nb > self.now():
                return f"retry after {fmtTime(nb)}"
        return ""

    def _eta(self, key: tuple[int, str], r: Rollup) -> float | None:
        rate = self._rates.get(key)
        if rate is None:
            return None
        return rate.eta(100.0 * r.total - r.progressSum, time.monotonic())

    # -- applying what the scanner found ---------------------------------------------------------

    def applyScan(self, qi: int, result: ScanResult) -> None:
        """Take a scan result: new and changed roots, removed roots, the root order."""
        snaps = self._snaps[qi]
        totals = self._totals[qi]
        now = time.monotonic()
        for rid in result.removed:
            old = snaps.pop(rid, None)
            if old is not None:
                _addRollup(totals, old.rollup("root"), -1)
            self._extras[qi].pop(rid, None)
            self._visible[qi].pop(rid, None)
            self._rates.pop((qi, rid), None)
        changedRoots: list[tuple[RootSnapshot | None, RootSnapshot]] = []
        for snap in result.updated:
            old = snaps.get(snap.rootId)
            if old is not None:
                _addRollup(totals, old.rollup("root"), -1)
            _addRollup(totals, snap.rollup("root"), +1)
            snaps[snap.rootId] = snap
            changedRoots.append((old, snap))
        # Root rows first (inserts/removes under the queue node), then each root's rows.
        order = [r for r in result.rootIds if r in snaps] if result.complete else None
        if order is None:
            known = set(self._rootOrder[qi]) | {s.rootId for s in result.updated}
            order = [r for r in result.rootIds if r in known and r in snaps]
        self._rootOrder[qi] = order
        self._syncRoots(qi)
        qnode = self.queueNode(qi)
        self._emitRow(qnode)
        r = self.queueRollup(qi)
        self._rates.setdefault((qi, ""), _Rate()).add(now, r.progressSum)
        for old, snap in changedRoots:
            self._applyRoot(qi, old, snap, now)

    def _applyRoot(self, qi: int, old: RootSnapshot | None, snap: RootSnapshot, now: float) -> None:
        nodes = self._nodes[qi].get(snap.rootId)
        for path, rollup in snap.rollups.items():
            if path == "root" or (nodes is not None and path in nodes):
                self._rates.setdefault((qi, snap.rootId + ":" + path), _Rate()).add(
                    now, rollup.progressSum
                )
        if not nodes:
            return
        if old is not None and (snap.added or snap.removed or old.children is not snap.children):
            # Structure changed: re-sync every loaded parent of this root.
            for node in list(nodes.values()):
                if node.loaded and node.id in self._byId:
                    self._syncChildren(node)
        for path in snap.changed:
            node = nodes.get(path)
            if node is not None:
                self._emitRow(node)

    def applyExtras(self, qi: int, rootId: str, found: dict[str, JobExtra]) -> None:
        self._extras[qi].setdefault(rootId, {}).update(found)
        nodes = self._nodes[qi].get(rootId)
        if not nodes:
            return
        rows = [nodes[p] for p in found if p in nodes]
        for node in rows:
            self._emitRow(node)

    def applyVisible(self, qi: int, visible: dict[str, set[str] | None]) -> None:
        """The filter's result for these roots: paths shown (None: all)."""
        self._visible[qi].update(visible)
        self._filtering[qi] = any(v is not None for v in self._visible[qi].values())
        self._syncRoots(qi)
        for rid in visible:
            nodes = self._nodes[qi].get(rid)
            if nodes:
                for node in list(nodes.values()):
                    if node.loaded and node.id in self._byId:
                        self._syncChildren(node)

    def clearFilter(self, qi: int) -> None:
        self.applyVisible(qi, dict.fromkeys(self._visible[qi]))

    # -- rows ------------------------------------------------------------------------------------

    def _emitRow(self, node: Node) -> None:
        if node.id not in self._byId:
            return
        parent = node.parent
        if parent is None:
            return
        left = self.createIndex(node.row, 0, node.id)
        right = self.createIndex(node.row, len(COLUMNS) - 1, node.id)
        self.dataChanged.emit(left, right)

    def _indexOf(self, node: Node) -> QModelIndex:
        if node is self._top:
            return QModelIndex()
        return self.createIndex(node.row, 0, node.id)

    def _childKeys(self, node: Node) -> list[str]:
        qi = node.queue
        if node.kind == QUEUE:
            vis = self._visible[qi]
            if not self._filtering[qi]:
                return self._rootOrder[qi]
            return [r for r in self._rootOrder[qi] if vis.get(r) is None or vis[r]]
        snap = self._snaps[qi].get(node.rootId)
        if snap is None:
            return []
        kids = snap.children.get(node.path, [])
        shown = self._visible[qi].get(node.rootId)
        if shown is not None:
            kids = [k for k in kids if k in shown]
        return kids

    def _syncRoots(self, qi: int) -> None:
        self._syncChildren(self.queueNode(qi))

    def _syncChildren(self, parent: Node) -> None:
        """Make parent's rows equal its wanted keys, with contiguous removes and inserts."""
        wanted = self._childKeys(parent)
        cur = parent.children
        if len(cur) == len(wanted) and all(c.key == w for c, w in zip(cur, wanted, strict=True)):
            return
        wantedSet = set(wanted)
        pindex = self._indexOf(parent)
        # Removals, from the end so that earlier rows keep their numbers.
        i = len(cur) - 1
        while i >= 0:
            if cur[i].key in wantedSet:
                i -= 1
                continue
            j = i
            while j > 0 and cur[j - 1].key not in wantedSet:
                j -= 1
            self._changing += 1
            try:
                self.beginRemoveRows(pindex, j, i)
                gone = cur[j : i + 1]
                del cur[j : i + 1]
                for k in range(j, len(cur)):
                    cur[k].row = k
                for g in gone:
                    self._forget(g)
                self.endRemoveRows()
            finally:
                self._changing -= 1
            i = j - 1
        # Insertions: the remaining rows are a subsequence of wanted (same order).
        have = {c.key for c in cur}
        pos = 0
        k = 0
        while k < len(wanted):
            if wanted[k] in have:
                pos += 1
                k += 1
                continue
            run = []
            while k < len(wanted) and wanted[k] not in have:
                run.append(wanted[k])
                k += 1
            self._insert(parent, pos, run)
            pos += len(run)

    def _insert(self, parent: Node, pos: int, keys: Sequence[str]) -> None:
        qi = parent.queue
        nodes: list[Node] = []
        for key in keys:
            if parent.kind == QUEUE:
                n = Node(next(self._ids), JOB, qi, rootId=key, path="root", parent=parent)
            else:
                n = Node(next(self._ids), JOB, qi, rootId=parent.rootId, path=key, parent=parent)
            nodes.append(n)
        self._changing += 1
        try:
            self.beginInsertRows(self._indexOf(parent), pos, pos + len(nodes) - 1)
            parent.children[pos:pos] = nodes
            for k in range(pos, len(parent.children)):
                parent.children[k].row = k
            for n in nodes:
                self._byId[n.id] = n
                self._nodes[qi].setdefault(n.rootId, {})[n.path] = n
            self.endInsertRows()
        finally:
            self._changing -= 1

    def _forget(self, node: Node) -> None:
        stack = [node]
        while stack:
            n = stack.pop()
            self._byId.pop(n.id, None)
            if n.kind == JOB:
                per = self._nodes[n.queue].get(n.rootId)
                if per is not None and per.get(n.path) is n:
                    del per[n.path]
                    if not per:
                        del self._nodes[n.queue][n.rootId]
            stack.extend(n.children)

    # -- periodic ----------------------------------------------------------------------------------

    def tick(self) -> None:
        """Once a second: elapsed and ETA move on for running rows and rolled-up rows."""
        first, last = COL_ELAPSED, COL_ETA
        for qi, qnode in enumerate(self._top.children):
            self.dataChanged.emit(
                self.createIndex(qnode.row, COL_ETA, qnode.id),
                self.createIndex(qnode.row, COL_ETA, qnode.id),
            )
            for rid, nodes in self._nodes[qi].items():
                snap = self._snaps[qi].get(rid)
                if snap is None:
                    continue
                for path in itertools.chain(snap.running, ("root",)):
                    node = nodes.get(path)
                    if node is not None:
                        self.dataChanged.emit(
                            self.createIndex(node.row, first, node.id),
                            self.createIndex(node.row, last, node.id),
                        )

    # -- for views and actions -------------------------------------------------------------------

    def jobDir(self, node: Node) -> str | None:
        snap = self._snaps[node.queue].get(node.rootId) if node.kind == JOB else None
        return snap.jobDir(node.path) if snap is not None else None

    def findIndex(self, qi: int, rootId: str, path: str = "root") -> QModelIndex:
        node = self._nodes[qi].get(rootId, {}).get(path)
        return self._indexOf(node) if node is not None else QModelIndex()

    def loadedNodes(self, qi: int, rootId: str) -> dict[str, Node]:
        return self._nodes[qi].get(rootId, {})

    def iterNodes(self) -> Iterable[Node]:
        return list(self._byId.values())

    def location(self, node: Node) -> str:
        if node.kind == QUEUE:
            return self.queues[node.queue]
        d = self.jobDir(node)
        return d if d is not None else os.path.join(self.queues[node.queue], "roots", node.rootId)


def _addRollup(totals: list[float], r: Rollup, sign: int) -> None:
    for i, c in enumerate(r.counts):
        totals[i] += sign * c
    totals[len(STATES)] += sign * r.progressSum


def _summaryState(r: Rollup) -> str:
    c = r.counts
    if not sum(c):
        return ""
    for s in ("running", "failed", "blocked", "ready", "paused", "waiting"):
        if c[STATE_INDEX[s]]:
            return s
    if c[STATE_INDEX["cancelled"]]:
        return "cancelled"
    return "done"
