"""Running disk reads and jobtree calls off the GUI thread; results come back by queued signal."""

from __future__ import annotations

import logging
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from PySide6.QtCore import QObject, Qt, Signal

log = logging.getLogger("jobtree.gui")

Callback = Callable[[Any, BaseException | None], None]


class Tasks(QObject):
    """A small thread pool. ``submit(fn, callback, *args)`` runs ``fn(*args)`` in a pool thread
    and later calls ``callback(result, error)`` in the GUI thread."""

    _finished = Signal(object, object, object)

    def __init__(self, workers: int = 3, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._pool = ThreadPoolExecutor(workers, thread_name_prefix="jobtree-gui-io")
        self._closed = False
        self.pending = 0
        self._finished.connect(self._deliver, Qt.ConnectionType.QueuedConnection)

    def submit(self, fn: Callable[..., Any], callback: Callback | None, *args: Any) -> None:
        if self._closed:
            return
        self.pending += 1

        def run() -> None:
            try:
                result, error = fn(*args), None
            except Exception as exc:
                result, error = None, exc
            if not self._closed:
                self._finished.emit(callback, result, error)

        self._pool.submit(run)

    def _deliver(self, callback: Callback | None, result: Any, error: BaseException | None) -> None:
        self.pending -= 1
        if callback is not None:
            try:
                callback(result, error)
            except Exception:
                log.exception("a GUI callback failed")
        elif error is not None:
            log.warning("background task failed: %s", error)

    def shutdown(self) -> None:
        self._closed = True
        self._pool.shutdown(wait=True, cancel_futures=True)
