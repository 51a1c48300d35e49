"""The workers panel: the worker registry of every open queue, lost workers marked."""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from typing import Any

from PySide6.QtCore import Qt, QTimer
from PySide6.QtGui import QBrush, QColor
from PySide6.QtWidgets import (
    QAbstractItemView,
    QHeaderView,
    QLabel,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from jobtree.registry import listWorkers

from ..model import STATE_COLORS, fmtDuration, fmtTime, stateIcon
from ..tasks import Tasks

REFRESH_MS = 3000
COLUMNS = (
    "Worker",
    "State",
    "Current job",
    "Done",
    "Failed",
    "Host",
    "PID",
    "Cores",
    "RAM GB",
    "GPU",
    "Pools",
    "Tags",
    "Started",
    "Heartbeat",
    "Queue",
)


def _readAll(
    source: Callable[[str], list[dict[str, Any]]], queues: list[str]
) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    for q in queues:
        for w in source(q):
            rows.append({**w, "_queue": q})
    return rows


class WorkersPanel(QWidget):
    def __init__(
        self,
        tasks: Tasks,
        source: Callable[[str], list[dict[str, Any]]] | None = None,
        parent: QWidget | None = None,
    ) -> None:
        super().__init__(parent)
        self.tasks = tasks
        self.source = source or listWorkers
        self.queues: list[str] = []
        self.workers: list[dict[str, Any]] = []
        self.message = QLabel(self)
        self.message.setStyleSheet("color:#666")
        self.table = QTableWidget(0, len(COLUMNS), self)
        self.table.setHorizontalHeaderLabels(COLUMNS)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setAlternatingRowColors(True)
        self.table.verticalHeader().setVisible(False)
        self.table.verticalHeader().setDefaultSectionSize(22)
        self.table.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.Interactive)
        self.table.horizontalHeader().setStretchLastSection(True)
        lay = QVBoxLayout(self)
        lay.setContentsMargins(4, 4, 4, 4)
        lay.addWidget(self.message)
        lay.addWidget(self.table, 1)
        self.timer = QTimer(self)
        self.timer.setInterval(REFRESH_MS)
        self.timer.timeout.connect(self.refresh)
        self._busy = False
        self.live = self.lost = 0
        self.onChange: Callable[[], None] | None = None

    def setQueues(self, queues: list[str]) -> None:
        self.queues = list(queues)
        self.table.setColumnHidden(COLUMNS.index("Queue"), len(self.queues) < 2)
        self.refresh()
        self.timer.start()

    def refresh(self) -> None:
        if self._busy or not self.queues:
            return
        self._busy = True
        self.tasks.submit(_readAll, self._got, self.source, list(self.queues))

    def _got(self, rows: list[dict[str, Any]] | None, err: Any) -> None:
        self._busy = False
        if err is not None:
            self.workers = []
            self.table.setRowCount(0)
            self.message.setText(str(err))
            self.message.show()
            self.live = self.lost = 0
        else:
            rows = rows or []
            rows.sort(key=lambda w: (bool(w.get("lost")), str(w.get("name", "")), w.get("pid", 0)))
            self.workers = rows
            self._fill(rows)
        if self.onChange is not None:
            self.onChange()

    def _fill(self, rows: list[dict[str, Any]]) -> None:
        now = time.time()
        self.live = sum(1 for w in rows if not w.get("lost"))
        self.lost = len(rows) - self.live
        self.message.setText(
            f"{self.live} live worker(s)" + (f", {self.lost} lost" if self.lost else "")
            if rows
            else "No workers have registered with this queue."
        )
        self.table.setUpdatesEnabled(False)
        self.table.setRowCount(len(rows))
        lostBrush = QBrush(QColor("#c62828"))
        for r, w in enumerate(rows):
            lost = bool(w.get("lost"))
            job = w.get("currentJob")
            hb = w.get("heartbeat")
            values = [
                str(w.get("name") or w.get("host") or "?"),
                "lost" if lost else ("busy" if job else "idle"),
                _shortJob(job) if job else "",
                str(w.get("jobsDone", "")),
                str(w.get("jobsFailed", "")),
                str(w.get("host", "")),
                str(w.get("pid", "")),
                str(w.get("cores", "")),
                _num(w.get("ramGB")),
                str(w.get("gpu") or ""),
                ", ".join(map(str, w.get("pools") or ())),
                ", ".join(map(str, w.get("tags") or ())),
                fmtTime(
                    w.get("startTime") if isinstance(w.get("startTime"), (int, float)) else None,
                    now,
                ),
                (fmtDuration(now - hb) + " ago") if isinstance(hb, (int, float)) else "",
                str(w.get("_queue", "")),
            ]
            for c, v in enumerate(values):
                item = self.table.item(r, c)
                if item is None:
                    item = QTableWidgetItem()
                    self.table.setItem(r, c, item)
                item.setText(v)
                item.setToolTip(str(job) if c == 2 and job else "")
                item.setForeground(lostBrush if lost else QBrush())
                if c in (3, 4, 6, 7, 8):
                    item.setTextAlignment(
                        Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter
                    )
                if c == 1:
                    state = "failed" if lost else ("running" if job else "done")
                    item.setIcon(stateIcon(state))
                    item.setForeground(QBrush(QColor(STATE_COLORS[state])))
        self.table.resizeColumnsToContents()
        self.table.setUpdatesEnabled(True)


def _num(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:.1f}"
    return "" if v is None else str(v)


def _shortJob(location: str) -> str:
    """roots/<rootid>/0001/0002 -> <short id>:root.0001.0002"""
    parts = str(location).split(os.sep)
    if "roots" in parts:
        i = len(parts) - 1 - parts[::-1].index("roots")
        rest = parts[i + 1 :]
        if rest:
            return f"{rest[0][-6:]}:" + ".".join(["root", *rest[1:]])
    return str(location)
