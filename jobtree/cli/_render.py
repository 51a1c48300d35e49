"""How jobs look in a terminal: state colours and symbols, progress bars, times, the job tree."""

from __future__ import annotations

import time
from typing import Any

from rich.table import Table
from rich.text import Text
from rich.tree import Tree

from ._snapshot import STATE_NAMES, Filters, RootView

STYLES: dict[str, str] = {
    "waiting": "dim",
    "ready": "cyan",
    "running": "bold blue",
    "done": "green",
    "failed": "bold red",
    "cancelled": "magenta",
    "paused": "yellow",
    "blocked": "red",
}
SYMBOLS: dict[str, str] = {
    "waiting": "○",
    "ready": "◌",
    "running": "▶",
    "done": "✔",
    "failed": "✘",
    "cancelled": "⊘",
    "paused": "‖",
    "blocked": "■",
}
BAR_WIDTH = 12


def stateText(state: str, symbol: bool = True) -> Text:
    style = STYLES.get(state, "")
    return Text(f"{SYMBOLS.get(state, '?')} {state}" if symbol else state, style=style)


def bar(percent: float, width: int = BAR_WIDTH, style: str = "blue") -> Text:
    """A text progress bar with its percentage: ``━━━━━━╺━━━━━  50%``."""
    p = max(0.0, min(100.0, float(percent)))
    filled = round(p / 100 * width)
    t = Text()
    t.append("━" * filled, style="green" if p >= 100 else style)
    t.append("─" * (width - filled), style="grey37")
    t.append(f" {p:3.0f}%")
    return t


def counts(c: dict[str, int], total: bool = True) -> Text:
    """``12 done · 2 running · 1 failed`` in state colours (states with 0 left out)."""
    t = Text()
    for s in STATE_NAMES:
        n = c.get(s, 0)
        if n:
            if t:
                t.append(" · ", style="dim")
            t.append(f"{n} {s}", style=STYLES.get(s, ""))
    if total and not t:
        t.append("no jobs", style="dim")
    return t


def duration(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    if seconds < 9.95:
        return f"{max(0.0, seconds):.1f}s"
    s = round(seconds)
    if s < 60:
        return f"{s}s"
    m, s = divmod(s, 60)
    if m < 60:
        return f"{m}m{s:02d}s"
    h, m = divmod(m, 60)
    if h < 24:
        return f"{h}h{m:02d}m"
    d, h = divmod(h, 24)
    return f"{d}d{h:02d}h"


def ago(t: float | None, now: float | None = None) -> str:
    if t is None:
        return "-"
    delta = (now or time.time()) - t
    if delta < 0:
        return "in " + duration(-delta)
    return duration(delta) + " ago"


def timestamp(t: float | None) -> str:
    if t is None:
        return "-"
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(t))


def jobLine(job: dict[str, Any], extra: Text | None = None) -> Text:
    """One line about a job: ``▶ running 3fa9c1:0002 frames 11-20  ━━━━  40%  status (node07)``."""
    t = Text()
    t.append_text(stateText(job["state"]))
    t.append(" ")
    t.append(job["id"], style="bold")
    if job["label"]:
        t.append(" ")
        t.append(oneLine(job["label"]))
    if job["state"] in ("running", "failed") or 0 < job["progress"] < 100:
        t.append("  ")
        t.append_text(bar(job["progress"]))
    if job["statusLine"]:
        t.append("  ")
        t.append(job["statusLine"], style="italic")
    if job["state"] == "running" and job["host"]:
        t.append(f"  ({job['host']}", style="dim")
        if job["startTime"]:
            t.append(f", {duration(time.time() - job['startTime'])}", style="dim")
        t.append(")", style="dim")
    if job["state"] != "done" and job["error"] and job["error"] != "cancelled":
        t.append("  ")
        t.append(job["error"].splitlines()[0][:200], style="red")
    if extra is not None:
        t.append_text(extra)
    return t


# -- the tree ----------------------------------------------------------------------------------


def visiblePaths(view: RootView, filters: Filters, depth: int | None) -> set[str] | None:
    """Paths to show under the filters (matching jobs and their ancestors), None for all."""
    if not filters.active:
        return None
    keep: set[str] = set()
    for p in view.states:
        if depth is not None and len(p.split(".")) - 1 > depth:
            continue
        if filters.matchJob(view, p):
            q: str | None = p
            while q is not None and q not in keep:
                keep.add(q)
                q = q.rpartition(".")[0] or None
    return keep


def treeData(view: RootView, path: str, depth: int | None, keep: set[str] | None) -> dict[str, Any]:
    """The JSON of ``jobtree tree``: a job with its children down to *depth*."""
    d = view.job(path)
    kids = view.children(path)
    d["childCount"] = len(kids)
    d["counts"] = view.counts(path)
    level = len(path.split(".")) - 1
    shown = [] if depth is not None and level >= depth else kids
    d["children"] = [treeData(view, k, depth, keep) for k in shown if keep is None or k in keep]
    return d


def renderTree(data: dict[str, Any], guide: str = "grey50") -> Tree:
    def label(d: dict[str, Any]) -> Text:
        extra = None
        hidden = d["childCount"] - len(d["children"])
        if d["childCount"]:
            extra = Text("  [", style="dim")
            extra.append_text(counts(d["counts"]))
            extra.append("]", style="dim")
            if hidden and not d["children"]:
                extra.append(f"  ({d['childCount']} sub-jobs)", style="dim")
        return jobLine(d, extra)

    tree = Tree(label(data), guide_style=guide)

    def add(node: Tree, d: dict[str, Any]) -> None:
        for c in d["children"]:
            add(node.add(label(c)), c)

    add(tree, data)
    return tree


def rootsTable(rows: list[dict[str, Any]], title: str | None = None) -> Table:
    table = Table(title=title, box=None, pad_edge=False, header_style="bold", expand=False)
    table.add_column("ID", style="bold", no_wrap=True)
    table.add_column("STATE", no_wrap=True)
    table.add_column("PROGRESS", no_wrap=True)
    table.add_column("JOBS", no_wrap=False)
    table.add_column("LABEL", overflow="fold")
    table.add_column("PRI", justify="right")
    table.add_column("SUBMITTED", no_wrap=True)
    table.add_column("STATUS", overflow="ellipsis", max_width=60)
    for r in rows:
        table.add_row(
            r["id"],
            stateText(r["summaryState"]),
            bar(r["treeProgress"]),
            counts(r["counts"]),
            Text(oneLine(r["label"] or "")),
            str(r["priority"]),
            ago(r["submitTime"]),
            Text(r["treeStatusLine"] or "", style="italic"),
        )
    return table


def oneLine(text: str) -> str:
    """Labels may hold line breaks; a line of a list may not."""
    return " ".join(text.splitlines())
