"""The details panel: parameters, options, requirements, timings, attempts, why a job waits."""

from __future__ import annotations

import html
import json
import time
from collections.abc import Callable
from typing import Any

from PySide6.QtWidgets import QTextBrowser, QVBoxLayout, QWidget

from ..jobinfo import JobDetails, readJobDetails
from ..model import STATE_COLORS, fmtBytes, fmtDuration, fmtTime
from ..tasks import Tasks

_OPTION_KEYS_SHOWN_APART = ("requires", "limits", "notBefore", "metadata")


def _esc(v: Any) -> str:
    if isinstance(v, str):
        return html.escape(v)
    return html.escape(json.dumps(v, ensure_ascii=False))


def _table(rows: list[tuple[str, str]]) -> str:
    if not rows:
        return "<p><i>none</i></p>"
    body = "".join(
        f"<tr><td style='color:#555;padding-right:10px' valign='top'>{k}</td><td>{v}</td></tr>"
        for k, v in rows
    )
    return f"<table cellspacing='0' cellpadding='1'>{body}</table>"


def renderDetails(d: JobDetails, now: float | None = None) -> str:
    """The panel's HTML for one job."""
    now = now if now is not None else time.time()
    color = STATE_COLORS.get(d.state, "#000")
    title = html.escape(d.label or d.jobType)
    out = [
        f"<h3 style='margin:0'>{title}</h3>",
        f"<p style='margin:2px 0 6px 0'><span style='color:{color};font-weight:bold'>"
        f"{html.escape(d.state)}</span>"
        + (" (paused here)" if d.paused else "")
        + f" &nbsp; <span style='color:#777'>{html.escape(d.rootId)}:{html.escape(d.path)}</span></p>",
    ]
    if d.whyWaiting:
        out.append(
            f"<p style='background:#fff8e1;padding:4px'><b>Why it waits:</b> {_esc(d.whyWaiting)}</p>"
        )
    if d.error:
        out.append(f"<p style='color:#c62828'><b>Error:</b> {_esc(d.error)}</p>")
    timing = [("type", _esc(d.jobType)), ("location", _esc(d.location))]
    if d.submitTime:
        timing.append(
            ("submitted", f"{fmtTime(d.submitTime, now)} from {_esc(d.submitHost or '?')}")
        )
    if d.startTime:
        timing.append(
            ("started", fmtTime(d.startTime, now) + (f" on {_esc(d.host)}" if d.host else ""))
        )
    if d.endTime:
        timing.append(("ended", fmtTime(d.endTime, now)))
    if d.startTime:
        end = d.endTime or (now if d.state == "running" else None)
        if end:
            timing.append(("elapsed", fmtDuration(end - d.startTime)))
    if d.state == "running":
        timing.append(("progress", f"{d.progress:.0f}%"))
        if d.statusLine:
            timing.append(("status", _esc(d.statusLine)))
    out.append("<h4>Job</h4>" + _table(timing))
    if d.result is not None:
        rows = (
            [(_esc(k), _esc(v)) for k, v in d.result.items()]
            if isinstance(d.result, dict)
            else [("value", _esc(d.result))]
        )
        out.append("<h4>Result</h4>" + _table(rows))
    out.append("<h4>Parameters</h4>" + _table([(_esc(k), _esc(v)) for k, v in d.params.items()]))
    opts = d.options
    req = opts.get("requires")
    reqRows = [(_esc(k), _esc(v)) for k, v in req.items()] if isinstance(req, dict) else []
    if opts.get("limits"):
        reqRows.append(("limits", _esc(opts["limits"])))
    if opts.get("notBefore"):
        nb = opts["notBefore"]
        reqRows.append(
            ("not before", fmtTime(nb, now) if isinstance(nb, (int, float)) else _esc(nb))
        )
    out.append("<h4>Requirements</h4>" + _table(reqRows))
    meta = opts.get("metadata")
    if isinstance(meta, dict) and meta:
        out.append("<h4>Metadata</h4>" + _table([(_esc(k), _esc(v)) for k, v in meta.items()]))
    out.append(
        "<h4>Options</h4>"
        + _table([(_esc(k), _esc(v)) for k, v in opts.items() if k not in _OPTION_KEYS_SHOWN_APART])
    )
    if d.attempts:
        head = "".join(
            f"<th align='left' style='padding-right:8px'>{h}</th>"
            for h in ("#", "host", "started", "elapsed", "outcome", "logs")
        )
        rows = []
        for a in reversed(d.attempts):
            oc = a.outcome or ""
            c = {"done": "#2e7d32", "failed": "#c62828", "lost": "#6d4c41"}.get(oc, "#333")
            el = (
                fmtDuration((a.endTime or now) - a.startTime)
                if a.startTime and (a.endTime or oc == "running")
                else ""
            )
            logs = " ".join(
                f"{s} {fmtBytes(n)}"
                for s, n in (("out", a.stdoutSize), ("err", a.stderrSize))
                if n is not None
            )
            rows.append(
                f"<tr><td>{a.n}</td><td>{_esc(a.host or '')}</td>"
                f"<td>{fmtTime(a.startTime, now)}</td><td>{el}</td>"
                f"<td style='color:{c}'>{_esc(oc)}</td><td>{logs}</td></tr>"
            )
            if a.error and oc != "done":
                rows.append(
                    f"<tr><td></td><td colspan='5' style='color:#c62828'>{_esc(a.error)}</td></tr>"
                )
        out.append(
            f"<h4>Attempts</h4><table cellspacing='0'><tr>{head}</tr>{''.join(rows)}</table>"
        )
    if d.traceback:
        out.append(
            "<h4>Traceback</h4><pre style='font-size:small'>" + html.escape(d.traceback) + "</pre>"
        )
    return "".join(out)


class DetailsPanel(QWidget):
    """Shows one job; the read happens in a pool thread."""

    def __init__(self, tasks: Tasks, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.tasks = tasks
        self.browser = QTextBrowser(self)
        self.browser.setOpenLinks(False)
        lay = QVBoxLayout(self)
        lay.setContentsMargins(4, 4, 4, 4)
        lay.addWidget(self.browser)
        self._target: tuple[str, str] | None = None
        self._seq = 0
        self.details: JobDetails | None = None
        self.onLoaded: Callable[[JobDetails], None] | None = None
        self.browser.setHtml("<p style='color:#777'>Select a job to see its details.</p>")

    def showJob(self, queue: str | None, jobDir: str | None) -> None:
        self._target = (queue, jobDir) if queue and jobDir else None
        if self._target is None:
            self.details = None
            self.browser.setHtml("<p style='color:#777'>Select a job to see its details.</p>")
            return
        self.refresh()

    def refresh(self) -> None:
        if self._target is None:
            return
        self._seq += 1
        seq = self._seq
        target = self._target
        self.tasks.submit(readJobDetails, lambda r, e: self._show(seq, target, r, e), *target)

    def _show(self, seq: int, target: tuple[str, str], d: JobDetails | None, err: Any) -> None:
        if seq != self._seq or target != self._target:
            return  # a newer request is on its way
        if err is not None or d is None:
            self.details = None
            self.browser.setHtml(f"<p style='color:#c62828'>{html.escape(str(err))}</p>")
            return
        self.details = d
        bar = self.browser.verticalScrollBar()
        pos = bar.value()
        self.browser.setHtml(renderDetails(d))
        bar.setValue(pos)
        if self.onLoaded is not None:
            self.onLoaded(d)
