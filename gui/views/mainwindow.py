"""The main window: the tree of queues and jobs, with details, log and workers panels around it."""

from __future__ import annotations

import os
import sys
import time
from collections import deque
from collections.abc import Callable
from typing import Any

from PySide6.QtCore import QModelIndex, QPoint, QSettings, Qt, QTimer
from PySide6.QtGui import QAction, QCloseEvent, QKeySequence
from PySide6.QtWidgets import (
    QAbstractItemView,
    QComboBox,
    QDockWidget,
    QFileDialog,
    QHBoxLayout,
    QInputDialog,
    QLabel,
    QLineEdit,
    QMainWindow,
    QMenu,
    QMessageBox,
    QToolBar,
    QTreeView,
    QVBoxLayout,
    QWidget,
)

from jobtree import JobQueue

from ..actions import COMMANDS, Command, Target
from ..jobinfo import JobDetails
from ..model import (
    COL_ATTEMPTS,
    COL_ELAPSED,
    COL_ETA,
    COL_HOST,
    COL_LABEL,
    COL_PROGRESS,
    COL_START,
    COL_STATE,
    COL_STATUS,
    JOB,
    STATE_COLORS,
    JobTreeModel,
    Node,
)
from ..scan import STATE_INDEX, STATES, JobFilter, ScanResult
from ..tasks import Tasks
from ..watcher import Bridge, Monitor
from .delegates import ProgressDelegate
from .details import DetailsPanel
from .logview import LogPanel
from .workers import WorkersPanel

SWITCH_INTERVAL = 0.001
"""Seconds a Python thread may hold the GIL while another waits (the default is 0.005)."""
STATE_FILTERS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("All states", ()),
    ("Unfinished", ("waiting", "ready", "running", "paused", "blocked")),
    ("Running", ("running",)),
    ("Failed, blocked, cancelled", ("failed", "blocked", "cancelled")),
    ("Ready", ("ready",)),
    ("Waiting", ("waiting", "blocked")),
    ("Paused", ("paused",)),
    ("Done", ("done",)),
)
COLUMN_WIDTHS = {
    COL_LABEL: 230,
    COL_STATE: 90,
    COL_PROGRESS: 120,
    COL_STATUS: 210,
    COL_HOST: 75,
    COL_START: 68,
    COL_ELAPSED: 58,
    COL_ETA: 58,
    COL_ATTEMPTS: 55,
}


def defaultSettings() -> QSettings:
    """QSettings for the layout; ``$JOBTREE_GUI_SETTINGS`` names an ini file instead (tests)."""
    path = os.environ.get("JOBTREE_GUI_SETTINGS")
    if path:
        return QSettings(path, QSettings.Format.IniFormat)
    return QSettings("jobtree", "jobtree-gui")


class MainWindow(QMainWindow):
    def __init__(
        self,
        queues: list[str],
        *,
        settings: QSettings | None = None,
        poll: float | None = None,
        useInotify: bool | None = None,
        workerSource: Callable[[str], list[dict[str, Any]]] | None = None,
    ) -> None:
        super().__init__()
        # Disk reads run in Python threads of this process: let the GUI thread get the GIL back
        # quickly (with the default 5 ms switch interval every call from Qt into Python, such as
        # the model's data(), may wait that long while a reader thread computes).
        if sys.getswitchinterval() > SWITCH_INTERVAL:
            sys.setswitchinterval(SWITCH_INTERVAL)
        self.t0 = time.perf_counter()
        self.firstScreenAt: float | None = None
        self.setWindowTitle("jobtree monitor")
        self.settings = settings if settings is not None else defaultSettings()
        self.poll = poll
        self.useInotify = useInotify
        self.tasks = Tasks(parent=self)
        self.bridge = Bridge(self)
        self.model = JobTreeModel(self)
        self.monitors: list[Monitor] = []
        self.modes: dict[int, str] = {}
        self._finished: deque[tuple[float, int]] = deque(maxlen=600)
        self._filter: JobFilter | None = None
        self._currentKey: tuple[int, str, str] | None = None
        # Confirmation and value prompts; tests replace these.
        self.confirm: Callable[[str, str], bool] = self._confirmDialog
        self.askPriority: Callable[[], int | None] = self._priorityDialog
        self.lastMessage = ""
        self.lastError = ""

        q = Qt.ConnectionType.QueuedConnection
        self.bridge.scanned.connect(self._onScanned, q)
        self.bridge.extras.connect(self._onExtras, q)
        self.bridge.visible.connect(self._onVisible, q)
        self.bridge.mode.connect(self._onMode, q)
        self.bridge.failed.connect(self._onFailed, q)

        self._buildTree()
        self._buildPanels(workerSource)
        self._buildActions()
        self._buildStatus()
        self._restoreLayout()

        self.ticker = QTimer(self)
        self.ticker.setInterval(1000)
        self.ticker.timeout.connect(self._tick)
        self.ticker.start()
        self.extrasTimer = QTimer(self)
        self.extrasTimer.setInterval(150)
        self.extrasTimer.timeout.connect(self._requestVisibleExtras)
        self.extrasTimer.start()
        self._asked: dict[tuple[int, str, str], float] = {}
        self.detailsTimer = QTimer(self)
        self.detailsTimer.setInterval(2000)
        self.detailsTimer.timeout.connect(self._refreshRunningDetails)
        self.detailsTimer.start()

        for loc in queues:
            self.addQueue(loc)

    # -- construction ------------------------------------------------------------------------------

    def _buildTree(self) -> None:
        self.tree = QTreeView(self)
        self.tree.setObjectName("jobTree")
        self.tree.setModel(self.model)
        self.tree.setUniformRowHeights(True)
        self.tree.setAlternatingRowColors(True)
        self.tree.setSelectionMode(QAbstractItemView.SelectionMode.ExtendedSelection)
        self.tree.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.tree.setItemDelegateForColumn(COL_PROGRESS, ProgressDelegate(self.tree))
        self.tree.setContextMenuPolicy(Qt.ContextMenuPolicy.CustomContextMenu)
        self.tree.customContextMenuRequested.connect(self._contextMenu)
        self.tree.setExpandsOnDoubleClick(True)
        self.tree.setTextElideMode(Qt.TextElideMode.ElideMiddle)
        header = self.tree.header()
        header.setStretchLastSection(False)
        for col, w in COLUMN_WIDTHS.items():
            header.resizeSection(col, w)
        self.tree.selectionModel().currentChanged.connect(self._currentChanged)

        self.stateFilter = QComboBox(self)
        for text, _states in STATE_FILTERS:
            self.stateFilter.addItem(text)
        self.stateFilter.setToolTip("Show only jobs in these states (and their parents)")
        self.search = QLineEdit(self)
        self.search.setPlaceholderText(
            "Filter: words in label/type/path, host:NAME, state:failed, KEY:VALUE for metadata"
        )
        self.search.setClearButtonEnabled(True)
        self.filterTimer = QTimer(self)
        self.filterTimer.setSingleShot(True)
        self.filterTimer.setInterval(300)
        self.filterTimer.timeout.connect(self.applyFilter)
        self.search.textChanged.connect(lambda _t: self.filterTimer.start())
        self.stateFilter.currentIndexChanged.connect(lambda _i: self.applyFilter())

        bar = QHBoxLayout()
        bar.setContentsMargins(0, 0, 0, 0)
        bar.addWidget(self.stateFilter)
        bar.addWidget(self.search, 1)
        central = QWidget(self)
        lay = QVBoxLayout(central)
        lay.setContentsMargins(4, 4, 4, 0)
        lay.addLayout(bar)
        lay.addWidget(self.tree, 1)
        self.setCentralWidget(central)

    def _buildPanels(self, workerSource: Callable[[str], list[dict[str, Any]]] | None) -> None:
        self.details = DetailsPanel(self.tasks, self)
        self.log = LogPanel(self.tasks, self)
        self.workers = WorkersPanel(self.tasks, workerSource, self)
        self.workers.onChange = self._updateSummary
        self.details.onLoaded = self._detailsLoaded
        self.detailsDock = self._dock("Details", "detailsDock", self.details)
        self.logDock = self._dock("Log", "logDock", self.log)
        self.workersDock = self._dock("Workers", "workersDock", self.workers)
        self.addDockWidget(Qt.DockWidgetArea.RightDockWidgetArea, self.detailsDock)
        self.addDockWidget(Qt.DockWidgetArea.BottomDockWidgetArea, self.logDock)
        self.addDockWidget(Qt.DockWidgetArea.BottomDockWidgetArea, self.workersDock)
        self.tabifyDockWidget(self.logDock, self.workersDock)
        self.logDock.raise_()
        self.resizeDocks([self.detailsDock], [380], Qt.Orientation.Horizontal)
        self.resizeDocks([self.logDock], [260], Qt.Orientation.Vertical)

    def _dock(self, title: str, name: str, widget: QWidget) -> QDockWidget:
        dock = QDockWidget(title, self)
        dock.setObjectName(name)
        dock.setWidget(widget)
        return dock

    def _buildActions(self) -> None:
        tb = QToolBar("Main", self)
        tb.setObjectName("mainToolbar")
        tb.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextOnly)
        self.addToolBar(tb)
        self.toolbar = tb
        menu = self.menuBar()
        fileMenu = menu.addMenu("&Queue")
        jobMenu = menu.addMenu("&Jobs")
        viewMenu = menu.addMenu("&View")

        add = QAction("Open queue...", self)
        add.setShortcut(QKeySequence("Ctrl+O"))
        add.triggered.connect(self._openQueueDialog)
        refresh = QAction("Refresh", self)
        refresh.setShortcut(QKeySequence("F5"))
        refresh.setToolTip("Re-read every queue from the disk (F5)")
        refresh.triggered.connect(self.rescanAll)
        quit_ = QAction("Quit", self)
        quit_.setShortcut(QKeySequence("Ctrl+Q"))
        quit_.triggered.connect(self.close)
        fileMenu.addActions([add, refresh])
        fileMenu.addSeparator()
        fileMenu.addAction(quit_)
        tb.addAction(add)
        tb.addAction(refresh)
        tb.addSeparator()

        self.commandActions: dict[str, QAction] = {}
        for cmd in COMMANDS:
            act = QAction(cmd.text, self)
            act.setShortcut(QKeySequence(cmd.shortcut))
            act.setShortcutContext(Qt.ShortcutContext.WindowShortcut)
            act.setToolTip(f"{cmd.tip} ({cmd.shortcut})")
            act.setStatusTip(cmd.tip)
            act.triggered.connect(lambda _c=False, c=cmd: self.runCommand(c))
            self.commandActions[cmd.name] = act
            jobMenu.addAction(act)
            tb.addAction(act)

        findAct = QAction("Filter jobs", self)
        findAct.setShortcut(QKeySequence("Ctrl+F"))
        findAct.triggered.connect(lambda: (self.search.setFocus(), self.search.selectAll()))
        logFind = QAction("Search log", self)
        logFind.setShortcut(QKeySequence("Ctrl+L"))
        logFind.triggered.connect(self._focusLogSearch)
        expand = QAction("Expand subtree", self)
        expand.setShortcut(QKeySequence("Ctrl+E"))
        expand.triggered.connect(self._expandCurrent)
        for a in (findAct, logFind, expand):
            self.addAction(a)
            viewMenu.addAction(a)
        viewMenu.addSeparator()
        for dock in (self.detailsDock, self.logDock, self.workersDock):
            viewMenu.addAction(dock.toggleViewAction())
        self.tree.selectionModel().selectionChanged.connect(lambda *_: self._updateActions())
        self._updateActions()

    def _buildStatus(self) -> None:
        self.summary = QLabel(self)
        self.summary.setTextFormat(Qt.TextFormat.RichText)
        self.statusBar().addPermanentWidget(self.summary, 1)

    # -- queues ------------------------------------------------------------------------------------

    def addQueue(self, location: str) -> int:
        loc = os.path.abspath(location)
        if loc in self.model.queues:
            return self.model.queues.index(loc)
        qi = self.model.addQueue(loc)
        mon = Monitor(qi, loc, self.bridge, poll=self.poll, useInotify=self.useInotify)
        self.monitors.append(mon)
        mon.start()
        self.tree.expand(self.model.queueIndex(qi))
        self.workers.setQueues(self.model.queues)
        if self._filter is not None:
            mon.setFilter(self._filter)
        self._updateSummary()
        return qi

    def _openQueueDialog(self) -> None:
        path = QFileDialog.getExistingDirectory(self, "Open a jobtree queue")
        if not path:
            return
        try:
            JobQueue(path)
        except Exception as exc:
            QMessageBox.warning(self, "Not a queue", str(exc))
            return
        self.addQueue(path)

    def rescanAll(self) -> None:
        for mon in self.monitors:
            mon.rescan()
        self.workers.refresh()
        self.details.refresh()

    # -- results from the monitor threads ------------------------------------------------------------

    def _onScanned(self, qi: int, result: ScanResult) -> None:
        self.model.applyScan(qi, result)
        if self.firstScreenAt is None:
            shown = self.model.rowCount(self.model.queueIndex(qi))
            if shown >= min(30, len(result.rootIds)):
                self.firstScreenAt = time.perf_counter()
        cur = self._currentKey
        if cur is not None and cur[0] == qi:
            for snap in result.updated:
                if snap.rootId == cur[1] and (cur[2] in snap.changed or cur[2] in snap.removed):
                    self.details.refresh()
                    break
        self._updateSummary()

    def _onExtras(self, qi: int, rootId: str, found: dict[str, Any]) -> None:
        self.model.applyExtras(qi, rootId, found)

    def _onVisible(self, qi: int, visible: dict[str, set[str] | None]) -> None:
        self.model.applyVisible(qi, visible)
        if self._filter is not None:
            self._expandFiltered(qi)

    def _onMode(self, qi: int, text: str) -> None:
        self.modes[qi] = text
        self._updateSummary()

    def _onFailed(self, qi: int, text: str) -> None:
        self.lastError = text
        self.statusBar().showMessage(text, 15000)

    def visibleNodes(self) -> list[Node]:
        """The rows on screen (and a screenful below, for scrolling)."""
        vp = self.tree.viewport()
        idx = self.tree.indexAt(QPoint(1, 1))
        out: list[Node] = []
        limit = 2 * max(1, vp.height() // max(1, self.tree.sizeHintForRow(0) or 18)) + 2
        while idx.isValid() and len(out) < limit:
            node = self.model.node(idx)
            if node is not None:
                out.append(node)
            idx = self.tree.indexBelow(idx)
        return out

    def _requestVisibleExtras(self) -> None:
        """Label, host and times are read only for rows on screen (a drain of 1,000 jobs/s
        would otherwise cost the monitor thousands of file reads per second)."""
        now = time.monotonic()
        for (qi, rid), paths in self.model.staleExtras(self.visibleNodes()).items():
            ask = [p for p in paths if now - self._asked.get((qi, rid, p), -1e9) > 1.0]
            if ask and 0 <= qi < len(self.monitors):
                for p in ask:
                    self._asked[(qi, rid, p)] = now
                self.monitors[qi].requestExtras(rid, ask)
        if len(self._asked) > 20000:
            self._asked = {k: t for k, t in self._asked.items() if now - t < 5}

    # -- selection, details, log -----------------------------------------------------------------

    def currentNode(self) -> Node | None:
        return self.model.node(self.tree.currentIndex())

    def _currentChanged(self, current: QModelIndex, _previous: QModelIndex) -> None:
        node = self.model.node(current)
        if node is None or node.kind != JOB:
            self._currentKey = None
            self.details.showJob(None, None)
            self.log.showJob(None, 0, False)
            return
        self._currentKey = (node.queue, node.rootId, node.path)
        self.details.showJob(self.model.queues[node.queue], self.model.jobDir(node))

    def _detailsLoaded(self, d: JobDetails) -> None:
        self.log.showJob(d.location, len(d.attempts), d.state == "running")

    def _refreshRunningDetails(self) -> None:
        d = self.details.details
        if d is not None and d.state == "running" and self.detailsDock.isVisible():
            self.details.refresh()

    def _focusLogSearch(self) -> None:
        self.logDock.show()
        self.logDock.raise_()
        self.log.search.setFocus()
        self.log.search.selectAll()

    def _expandCurrent(self) -> None:
        idx = self.tree.currentIndex()
        if idx.isValid():
            self.tree.expandRecursively(idx.siblingAtColumn(0), 2)

    def _expandFiltered(self, qi: int) -> None:
        """With a filter on, open the roots that hold matches (few, or it would be no filter)."""
        qindex = self.model.queueIndex(qi)
        n = self.model.rowCount(qindex)
        if n > 50:
            return
        for r in range(n):
            idx = self.model.index(r, 0, qindex)
            if not self.tree.isExpanded(idx):
                self.tree.expandRecursively(idx, 3)

    # -- filter --------------------------------------------------------------------------------------

    def applyFilter(self) -> None:
        states = STATE_FILTERS[self.stateFilter.currentIndex()][1]
        flt = JobFilter.parse(self.search.text(), states)
        self._filter = None if flt.isEmpty() else flt
        for qi, mon in enumerate(self.monitors):
            if self._filter is None:
                self.model.clearFilter(qi)
            mon.setFilter(self._filter)

    # -- actions -------------------------------------------------------------------------------------

    def selectedTargets(self) -> list[Target]:
        out: list[Target] = []
        rows = self.tree.selectionModel().selectedRows(0)
        if not rows and self.tree.currentIndex().isValid():
            rows = [self.tree.currentIndex().siblingAtColumn(0)]
        for idx in rows:
            node = self.model.node(idx)
            if node is None or node.kind != JOB:
                continue
            snap = self.model.snapshot(node.queue, node.rootId)
            jobDir = self.model.jobDir(node)
            if snap is None or jobDir is None:
                continue
            r = snap.rollup(node.path)
            out.append(
                Target(
                    queue=self.model.queues[node.queue],
                    rootId=node.rootId,
                    path=node.path,
                    jobDir=jobDir,
                    label=self.model.label(node, snap),
                    running=r.count("running"),
                    total=r.total,
                )
            )
        return out

    def _updateActions(self) -> None:
        has = bool(self.selectedTargets())
        for act in self.commandActions.values():
            act.setEnabled(has)

    def runCommand(self, cmd: Command, value: Any = None) -> bool:
        """Run an action on the selection (after confirming a destructive one). False when it
        was not started (nothing selected, or the user said no)."""
        targets = self.selectedTargets()
        if not targets:
            self.statusBar().showMessage("Select jobs first", 5000)
            return False
        question = cmd.confirmation(targets)
        if question is not None and not self.confirm(cmd.text, question):
            return False
        if cmd.needsValue and value is None:
            value = self.askPriority()
            if value is None:
                return False
        self.statusBar().showMessage(f"{cmd.text}...")
        roots = {(t.queue, t.rootId) for t in targets}
        self.tasks.submit(cmd.run, lambda r, e: self._commandDone(cmd, roots, r, e), targets, value)
        return True

    def _commandDone(self, cmd: Command, roots: set[tuple[str, str]], msg: Any, err: Any) -> None:
        if err is not None:
            self.lastError = f"{cmd.text} failed: {err}"
            self.statusBar().showMessage(self.lastError, 15000)
            QMessageBox.warning(self, f"{cmd.text} failed", str(err)) if self.isVisible() else None
        else:
            self.lastMessage = str(msg)
            self.statusBar().showMessage(self.lastMessage, 10000)
        for qi, mon in enumerate(self.monitors):
            rids = [rid for (loc, rid) in roots if loc == self.model.queues[qi]]
            if rids:
                mon.rescan(rids)
        self.details.refresh()

    def _confirmDialog(self, title: str, text: str) -> bool:
        answer = QMessageBox.question(
            self,
            title,
            text,
            QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.No,
            QMessageBox.StandardButton.No,
        )
        return answer == QMessageBox.StandardButton.Yes

    def _priorityDialog(self) -> int | None:
        value, ok = QInputDialog.getInt(
            self, "Set priority", "Priority (higher runs first):", 0, -1000000, 1000000
        )
        return int(value) if ok else None

    def _contextMenu(self, pos: Any) -> None:
        menu = QMenu(self)
        for act in self.commandActions.values():
            menu.addAction(act)
        menu.exec(self.tree.viewport().mapToGlobal(pos))

    # -- summary -------------------------------------------------------------------------------------

    def _tick(self) -> None:
        self.model.tick()
        self._updateSummary()

    def totals(self) -> list[int]:
        counts = [0] * len(STATES)
        for qi in range(len(self.model.queues)):
            for i, c in enumerate(self.model.queueRollup(qi).counts):
                counts[i] += c
        return counts

    def throughput(self) -> float:
        """Jobs finished per second over the last minute."""
        s = self._finished
        if len(s) < 2:
            return 0.0
        (t0, n0), (t1, n1) = s[0], s[-1]
        return max(0.0, (n1 - n0) / (t1 - t0)) if t1 > t0 else 0.0

    def _updateSummary(self) -> None:
        counts = self.totals()
        now = time.monotonic()
        finished = counts[STATE_INDEX["done"]] + counts[STATE_INDEX["failed"]]
        self._finished.append((now, finished))
        while len(self._finished) > 2 and now - self._finished[0][0] > 60:
            self._finished.popleft()
        parts = []
        for s in (
            "running",
            "ready",
            "waiting",
            "paused",
            "blocked",
            "failed",
            "cancelled",
            "done",
        ):
            n = counts[STATE_INDEX[s]]
            if n or s in ("running", "done", "failed"):
                parts.append(f"<span style='color:{STATE_COLORS[s]}'>&#9679;</span> {n:,} {s}")
        rate = self.throughput()
        rateText = f"{rate:,.1f} jobs/s" if rate >= 1 else f"{rate * 60:,.1f} jobs/min"
        w = self.workers
        workers = f"{w.live} worker(s)" + (
            f", <span style='color:#c62828'>{w.lost} lost</span>" if w.lost else ""
        )
        modes = {m for m in self.modes.values() if m}
        mode = "; ".join(sorted(modes))
        self.summary.setText(
            " &nbsp; ".join(parts)
            + f" &nbsp;|&nbsp; {rateText} &nbsp;|&nbsp; {workers}"
            + (f" &nbsp;|&nbsp; <span style='color:#777'>{mode}</span>" if mode else "")
        )

    # -- layout --------------------------------------------------------------------------------------

    def _restoreLayout(self) -> None:
        s = self.settings
        geo = s.value("window/geometry")
        if geo is not None:
            self.restoreGeometry(geo)
        else:
            self.resize(1400, 850)
        state = s.value("window/state")
        if state is not None:
            self.restoreState(state)
        header = s.value("tree/header")
        if header is not None:
            self.tree.header().restoreState(header)

    def saveLayout(self) -> None:
        s = self.settings
        s.setValue("window/geometry", self.saveGeometry())
        s.setValue("window/state", self.saveState())
        s.setValue("tree/header", self.tree.header().saveState())
        s.setValue("queues", list(self.model.queues))
        s.sync()

    def closeEvent(self, event: QCloseEvent) -> None:
        self.saveLayout()
        self.shutdown()
        super().closeEvent(event)

    def shutdown(self) -> None:
        """Stop the monitor threads and the pool (idempotent)."""
        self.ticker.stop()
        self.extrasTimer.stop()
        self.detailsTimer.stop()
        self.workers.timer.stop()
        self.log.timer.stop()
        for mon in self.monitors:
            mon.stop()
        self.tasks.shutdown()
