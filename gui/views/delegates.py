"""The progress bar column."""

from __future__ import annotations

from PySide6.QtCore import QModelIndex, QPersistentModelIndex, QRectF, Qt
from PySide6.QtGui import QColor, QPainter, QPen
from PySide6.QtWidgets import QStyledItemDelegate, QStyleOptionViewItem

from ..model import STATE_COLORS, ProgressRole, StateRole


class ProgressDelegate(QStyledItemDelegate):
    """Draws ProgressRole (0-100) as a flat bar in the row's state colour, with the display
    text (``40%`` or ``400/1,000``) centred on it. Rows without a value draw as plain cells.
    Painted directly (no QStyle round trip): cheap enough for every visible row at 60 fps."""

    def paint(
        self,
        painter: QPainter,
        option: QStyleOptionViewItem,
        index: QModelIndex | QPersistentModelIndex,
    ) -> None:
        value = index.data(ProgressRole)
        if value is None:
            super().paint(painter, option, index)
            return
        # The cell's own background (selection, alternate rows) first.
        opt = QStyleOptionViewItem(option)
        self.initStyleOption(opt, index)
        opt.text = ""
        widget = option.widget
        style = widget.style() if widget is not None else None
        if style is not None:
            style.drawControl(style.ControlElement.CE_ItemViewItem, opt, painter, widget)
        frac = max(0.0, min(100.0, float(value))) / 100.0
        state = index.data(StateRole) or ""
        color = QColor(STATE_COLORS.get(state, "#42a5f5"))
        if state in ("waiting", "ready", "blocked", "paused") and frac > 0:
            color = QColor(STATE_COLORS["done"])  # a parent's bar: what of it is done
        r = QRectF(option.rect).adjusted(3, 4, -3, -4)
        painter.save()
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        painter.setPen(QPen(QColor("#b0bec5"), 1))
        painter.setBrush(QColor("#f4f6f7"))
        painter.drawRoundedRect(r, 3, 3)
        if frac > 0:
            fill = QRectF(r.x(), r.y(), max(4.0, r.width() * frac), r.height())
            painter.setPen(Qt.PenStyle.NoPen)
            light = QColor(color)
            light.setAlpha(200)
            painter.setBrush(light)
            painter.drawRoundedRect(fill, 3, 3)
        text = index.data()
        painter.setPen(QColor("#212121"))
        painter.drawText(
            r, Qt.AlignmentFlag.AlignCenter, str(text) if text else f"{float(value):.0f}%"
        )
        painter.restore()
