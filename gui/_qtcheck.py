"""Refuse a Qt binding known to crash the monitor.

PySide6 6.12.0 on Python < 3.12 loses a reference to ``None`` every time C++ calls a Python
method that returns ``None`` (a model's ``data()`` does so for most roles) and to ``True`` on every
``Signal.emit()``; after a few thousand calls the interpreter aborts ("none_dealloc: deallocating
None"). Python 3.12 made those objects immortal, which hides the bug there. PySide6 6.11.3 is fine.
"""

from __future__ import annotations

import sys

from PySide6.QtCore import QAbstractItemModel, QModelIndex, QObject, Signal


class _Probe(QAbstractItemModel):
    ping = Signal()

    def rowCount(self, parent: object = None) -> int:
        return 1

    def columnCount(self, parent: object = None) -> int:
        return 1

    def index(self, row: int, column: int, parent: object = None) -> QModelIndex:
        return self.createIndex(row, column, 1)

    def parent(self, index: object = None) -> QModelIndex:  # type: ignore[override]
        return QModelIndex()

    def data(self, index: object, role: int = 0) -> None:
        return None


def bindingProblem() -> str | None:
    """A sentence saying why this PySide6 cannot run the monitor, or None when it can."""
    if sys.version_info >= (3, 12):
        return None
    probe = _Probe()
    n = 32
    idx = probe.index(0, 0)
    before = sys.getrefcount(None)
    for _ in range(n):
        idx.data()  # C++ calls our data(), which returns None
    lost = before - sys.getrefcount(None)
    if lost >= n // 2:
        import ctypes

        for _ in range(lost):  # give back what the probe took
            ctypes.pythonapi.Py_IncRef(ctypes.py_object(None))
        import PySide6

        return (
            f"PySide6 {PySide6.__version__} has a reference-counting bug on Python "
            f"{sys.version_info.major}.{sys.version_info.minor} that crashes the monitor; "
            "install another version: pip install 'PySide6-Essentials<6.12'"
        )
    return None


__all__ = ["QObject", "bindingProblem"]
