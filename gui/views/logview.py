"""The log panel: stdout/stderr of the selected job and of each attempt, live tail, search.

Only a window of the log is ever in the widget: the last :data:`~jobtree.gui.jobinfo.PAGE` bytes
first, earlier pages on request ("Earlier"), and while the job runs only what was appended is read
(every :data:`TAIL_MS`). Reads run in a pool thread; a 300 MB log opens as fast as a small one.
Search looks through the loaded text first, then backwards through the rest of the file in chunks
(in a pool thread) and loads the page around the hit.
"""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import Qt, QTimer
from PySide6.QtGui import QFont, QFontDatabase, QKeySequence, QShortcut, QTextCursor, QTextDocument
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPlainTextEdit,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from ..jobinfo import (
    PAGE,
    LogChunk,
    logPath,
    pageAround,
    readFrom,
    readPage,
    readTail,
    searchBackward,
)
from ..model import fmtBytes
from ..tasks import Tasks

TAIL_MS = 500
MAX_LOADED = 8 * PAGE
"""Most bytes kept in the widget while following; older text is dropped from the top."""


class LogPanel(QWidget):
    def __init__(self, tasks: Tasks, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.tasks = tasks
        self.jobDir: str | None = None
        self.attempts = 0
        self.running = False
        self._seq = 0
        self._busy = False
        self._chunkStart = 0
        self._chunkEnd = 0
        self._size = 0
        self._carry = b""

        self.attemptBox = QComboBox(self)
        self.attemptBox.setToolTip("Which attempt's log")
        self.attemptBox.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToContents)
        self.attemptBox.setMinimumContentsLength(16)
        self.streamBox = QComboBox(self)
        self.streamBox.addItems(["stdout", "stderr"])
        self.follow = QCheckBox("Follow", self)
        self.follow.setChecked(True)
        self.follow.setToolTip("Keep reading what a running job writes, and scroll along")
        self.earlier = QPushButton("Earlier", self)
        self.earlier.setToolTip("Load the page of the log before what is shown")
        self.search = QLineEdit(self)
        self.search.setPlaceholderText("Search log (Enter: next, Shift+Enter: previous)")
        self.search.setClearButtonEnabled(True)
        self.info = QLabel(self)
        self.info.setStyleSheet("color:#666")
        self.text = QPlainTextEdit(self)
        self.text.setReadOnly(True)
        self.text.setLineWrapMode(QPlainTextEdit.LineWrapMode.NoWrap)
        self.text.setUndoRedoEnabled(False)
        font = QFontDatabase.systemFont(QFontDatabase.SystemFont.FixedFont)
        font.setStyleHint(QFont.StyleHint.Monospace)
        self.text.setFont(font)

        top = QHBoxLayout()
        top.setContentsMargins(0, 0, 0, 0)
        top.addWidget(self.attemptBox)
        top.addWidget(self.streamBox)
        top.addWidget(self.follow)
        top.addWidget(self.earlier)
        top.addWidget(self.search, 1)
        top.addWidget(self.info)
        lay = QVBoxLayout(self)
        lay.setContentsMargins(4, 4, 4, 4)
        lay.addLayout(top)
        lay.addWidget(self.text, 1)

        self.timer = QTimer(self)
        self.timer.setInterval(TAIL_MS)
        self.timer.timeout.connect(self._tail)
        self.attemptBox.activated.connect(lambda _i: self.reload())
        self.streamBox.activated.connect(lambda _i: self.reload())
        self.earlier.clicked.connect(self.loadEarlier)
        self.search.returnPressed.connect(lambda: self.find(backward=False))
        QShortcut(
            QKeySequence("Shift+Return"), self.search, lambda: self.find(backward=True)
        ).setContext(Qt.ShortcutContext.WidgetShortcut)
        self.follow.toggled.connect(self._followToggled)
        self._setEmpty("Select a job to see its output.")

    # -- what is shown -----------------------------------------------------------------------------

    @property
    def stream(self) -> str:
        return self.streamBox.currentText()

    @property
    def attempt(self) -> int:
        data = self.attemptBox.currentData()
        return int(data) if data else self.attempts

    @property
    def path(self) -> str | None:
        if self.jobDir is None or not self.attempt:
            return None
        return logPath(self.jobDir, self.stream, self.attempt)

    def showJob(self, jobDir: str | None, attempts: int, running: bool) -> None:
        """Show this job's latest attempt (or keep the current one when only counts changed)."""
        same = jobDir == self.jobDir
        newAttempt = attempts != self.attempts
        wasRunning, self.running = self.running, running
        if same and not newAttempt:
            if wasRunning and not running:
                self._tail()  # the last words of a job that just finished
            self._updateTimer()
            return
        followLatest = not same or self.attemptBox.currentIndex() <= 0
        self.jobDir = jobDir
        self.attempts = attempts
        self.attemptBox.clear()
        if attempts:
            self.attemptBox.addItem(f"attempt {attempts} (latest)", attempts)
            for n in range(attempts - 1, 0, -1):
                self.attemptBox.addItem(f"attempt {n}", n)
        if followLatest or not same:
            self.attemptBox.setCurrentIndex(0)
        self.reload()

    def reload(self) -> None:
        self._seq += 1
        self._busy = False
        self._carry = b""
        path = self.path
        if path is None:
            self._setEmpty("No output: the job has not run yet." if self.jobDir else "")
            self._updateTimer()
            return
        seq = self._seq
        self._busy = True
        self.tasks.submit(readTail, lambda r, e: self._gotTail(seq, r, e), path)

    def _setEmpty(self, message: str) -> None:
        self.text.setPlainText("")
        self.text.setPlaceholderText(message)
        self.info.setText("")
        self._chunkStart = self._chunkEnd = self._size = 0
        self.earlier.setEnabled(False)

    def _gotTail(self, seq: int, chunk: LogChunk | None, err: Any) -> None:
        if seq != self._seq:
            return
        self._busy = False
        if err is not None or chunk is None:
            self._setEmpty(f"cannot read the log: {err}")
            return
        self._chunkStart, self._chunkEnd, self._size = chunk.start, chunk.end, chunk.size
        self._carry = chunk.tail
        self.text.setPlainText(chunk.text)
        if not chunk.size:
            self.text.setPlaceholderText(f"No {self.stream} output.")
        self._scrollToEnd()
        self._updateInfo()
        self._updateTimer()

    def _updateInfo(self) -> None:
        if self._size == 0:
            self.info.setText("")
        elif self._chunkStart == 0 and self._chunkEnd >= self._size:
            self.info.setText(fmtBytes(self._size))
        else:
            self.info.setText(
                f"bytes {fmtBytes(self._chunkStart)}-{fmtBytes(self._chunkEnd)} of {fmtBytes(self._size)}"
            )
        self.earlier.setEnabled(self._chunkStart > 0)

    def _scrollToEnd(self) -> None:
        self.text.moveCursor(QTextCursor.MoveOperation.End)
        bar = self.text.verticalScrollBar()
        bar.setValue(bar.maximum())

    # -- following a running job ---------------------------------------------------------------

    def _followToggled(self, on: bool) -> None:
        if on and self._chunkEnd < self._size:
            self.reload()
        self._updateTimer()

    def _updateTimer(self) -> None:
        want = bool(self.path) and self.running and self.follow.isChecked() and self.isVisible()
        if want and not self.timer.isActive():
            self.timer.start()
        elif not want and self.timer.isActive():
            self.timer.stop()

    def _tail(self) -> None:
        path = self.path
        if path is None or self._busy:
            return
        if self.attemptBox.currentIndex() > 0 and not self.running:
            return  # an older attempt's log does not grow
        seq = self._seq
        self._busy = True
        self.tasks.submit(
            readFrom, lambda r, e: self._gotMore(seq, r, e), path, self._chunkEnd, self._carry
        )

    def _gotMore(self, seq: int, chunk: LogChunk | None, err: Any) -> None:
        if seq != self._seq:
            return
        self._busy = False
        if err is not None or chunk is None:
            return
        self._size = chunk.size
        if chunk.end > self._chunkEnd or chunk.text:
            bar = self.text.verticalScrollBar()
            atEnd = bar.value() >= bar.maximum() - 2
            cursor = QTextCursor(self.text.document())
            cursor.movePosition(QTextCursor.MoveOperation.End)
            cursor.insertText(chunk.text)
            self._chunkEnd = chunk.end
            self._carry = chunk.tail
            if self._chunkEnd - self._chunkStart > MAX_LOADED:
                self._dropHead()
            if atEnd:
                self._scrollToEnd()
        self._updateInfo()

    def _dropHead(self) -> None:
        """Keep the widget small while following a chatty job: drop the oldest half."""
        doc = self.text.document()
        keepFrom = doc.findBlockByNumber(doc.blockCount() // 2)
        cursor = QTextCursor(doc)
        cursor.setPosition(0)
        cursor.setPosition(keepFrom.position(), QTextCursor.MoveMode.KeepAnchor)
        dropped = len(cursor.selectedText().encode("utf-8", "replace"))
        cursor.removeSelectedText()
        self._chunkStart += dropped

    # -- paging and search -------------------------------------------------------------------------

    def loadEarlier(self) -> None:
        path = self.path
        if path is None or self._chunkStart <= 0:
            return
        seq = self._seq
        self.tasks.submit(
            readPage, lambda r, e: self._gotEarlier(seq, r, e), path, self._chunkStart
        )

    def _gotEarlier(self, seq: int, chunk: LogChunk | None, err: Any) -> None:
        if seq != self._seq or chunk is None or err is not None:
            return
        bar = self.text.verticalScrollBar()
        cursor = QTextCursor(self.text.document())
        cursor.setPosition(0)
        text = chunk.text if chunk.text.endswith("\n") else chunk.text + "\n"
        cursor.insertText(text)
        self._chunkStart = chunk.start
        self._updateInfo()
        bar.setValue(0)

    def find(self, backward: bool = False) -> bool:
        """Find the search text in the loaded part (wrapping); when it is not there, search the
        unloaded earlier part of the file in a pool thread."""
        needle = self.search.text()
        if not needle:
            return False
        flags = QTextDocument.FindFlag.FindBackward if backward else QTextDocument.FindFlag(0)
        if self.text.find(needle, flags):
            return True
        cursor = self.text.textCursor()
        saved = QTextCursor(cursor)
        cursor.movePosition(
            QTextCursor.MoveOperation.End if backward else QTextCursor.MoveOperation.Start
        )
        self.text.setTextCursor(cursor)
        if self.text.find(needle, flags):
            return True
        self.text.setTextCursor(saved)
        path = self.path
        if path is not None and self._chunkStart > 0:
            self.info.setText("searching earlier output...")
            seq = self._seq
            self.tasks.submit(
                searchBackward,
                lambda r, e: self._foundEarlier(seq, needle, r, e),
                path,
                needle,
                self._chunkStart,
            )
        else:
            self.info.setText(f"'{needle}' not found")
        return False

    def _foundEarlier(self, seq: int, needle: str, offset: int | None, err: Any) -> None:
        if seq != self._seq:
            return
        path = self.path
        if err is not None or offset is None or offset < 0 or path is None:
            self._updateInfo()
            self.info.setText(self.info.text() + f" - '{needle}' not found")
            return
        self.follow.setChecked(False)
        self._seq += 1
        seq = self._seq
        self.tasks.submit(pageAround, lambda r, e: self._gotPage(seq, needle, r, e), path, offset)

    def _gotPage(self, seq: int, needle: str, chunk: LogChunk | None, err: Any) -> None:
        if seq != self._seq or chunk is None or err is not None:
            return
        self._chunkStart, self._chunkEnd, self._size = chunk.start, chunk.end, chunk.size
        self._carry = b""
        self.text.setPlainText(chunk.text)
        self._updateInfo()
        self.text.moveCursor(QTextCursor.MoveOperation.End)
        self.text.find(needle, QTextDocument.FindFlag.FindBackward)

    def showEvent(self, event: Any) -> None:
        super().showEvent(event)
        self._updateTimer()

    def hideEvent(self, event: Any) -> None:
        super().hideEvent(event)
        self._updateTimer()
