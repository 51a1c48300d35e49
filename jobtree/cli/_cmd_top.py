"""jobtree top: a live monitor of a queue (like Django Q's qmonitor)."""

from __future__ import annotations

import os
import time
from typing import Any

import click
from rich.console import Group, RenderableType
from rich.live import Live
from rich.table import Table
from rich.text import Text

from .. import _layout as L
from .._index import indexDir
from ..queue import JobQueue
from ._app import CliError, Exit, app, jsonOption, printJson, queueOption
from ._render import bar, counts, duration, oneLine, rootsTable, stateText
from ._snapshot import STATE_NAMES, RootView


def topData(q: JobQueue) -> dict[str, Any]:
    """One frame: unfinished roots, running jobs, totals and workers (the --json of top)."""
    roots: list[tuple[Any, dict[str, Any]]] = []
    running: list[dict[str, Any]] = []
    jobs = dict.fromkeys(STATE_NAMES, 0)
    doneRoots = 0
    for rid in q._rootIds():
        rootDir = os.path.join(q._roots, rid)
        # A finished root is only counted: one stat instead of reading its index.
        if os.path.exists(os.path.join(indexDir(rootDir, L.DONE), L.ROOT_PATH)):
            doneRoots += 1
            continue
        view = RootView(q, rootDir)
        summary = view.rootSummary()
        for s, n in summary["counts"].items():
            jobs[s] += n
        prio = summary["priority"] if isinstance(summary["priority"], int) else 0
        roots.append(((-prio, rid), summary))
        running.extend(view.job(p) for p in view.runningPaths())
    roots.sort(key=lambda r: r[0])
    running.sort(key=lambda j: j["startTime"] or 0)
    return {
        "queue": q.location,
        "time": time.time(),
        "doneRoots": doneRoots,
        "roots": [r for _, r in roots],
        "jobs": jobs,
        "running": running,
        "workers": _workers(q.location),
    }


def _workers(location: str | None) -> dict[str, int] | None:
    try:
        from ._cmd_workers import workerRecords

        records = workerRecords(location)
    except CliError:
        return None
    states = [r["state"] for r in records]
    return {s: states.count(s) for s in ("idle", "busy", "lost")}


def renderTop(data: dict[str, Any], height: int) -> RenderableType:
    head = Text()
    head.append("jobtree top ", style="bold")
    head.append(f"{data['queue']}  ", style="dim")
    head.append(time.strftime("%H:%M:%S", time.localtime(data["time"])))
    line2 = Text(f"roots: {len(data['roots'])} unfinished, {data['doneRoots']} done   jobs: ")
    line2.append_text(counts(data["jobs"]))
    w = data["workers"]
    if w is not None:
        line2.append(f"   workers: {w['busy']} busy, {w['idle']} idle")
        if w["lost"]:
            line2.append(f", {w['lost']} lost", style="red")
    room = max(6, height - 8)
    rootRows = data["roots"][: max(3, room // 2)]
    runRows = data["running"][: max(3, room - len(rootRows))]
    parts: list[RenderableType] = [head, line2, Text("")]
    if rootRows:
        parts.append(rootsTable(rootRows))
        if len(data["roots"]) > len(rootRows):
            parts.append(Text(f"... {len(data['roots']) - len(rootRows)} more roots", style="dim"))
    else:
        parts.append(Text("no unfinished roots", style="dim"))
    parts.append(Text(""))
    table = Table(
        box=None, header_style="bold", pad_edge=False, title="running", title_justify="left"
    )
    for col in ("ID", "LABEL", "HOST", "PROGRESS", "TIME", "STATUS"):
        table.add_column(
            col, no_wrap=True, overflow="ellipsis", max_width=60 if col == "STATUS" else None
        )
    now = data["time"]
    for j in runRows:
        table.add_row(
            Text(j["id"], style="bold"),
            oneLine(j["label"] or ""),
            j["host"] or "-",
            bar(j["progress"]),
            duration(now - j["startTime"]) if j["startTime"] else "-",
            Text(j["statusLine"], style="italic"),
        )
    if runRows:
        parts.append(table)
        if len(data["running"]) > len(runRows):
            parts.append(
                Text(f"... {len(data['running']) - len(runRows)} more running", style="dim")
            )
    else:
        parts.append(Text.assemble(stateText("running"), (" nothing is running", "dim")))
    return Group(*parts)


@click.command()
@queueOption
@click.option("--once", is_flag=True, help="Print one frame and exit.")
@click.option(
    "-n",
    "--refresh",
    type=click.FloatRange(min=0.1),
    metavar="SECONDS",
    help="Seconds between frames (default: refresh in the config file, 1).",
)
@jsonOption
def top(queuePath: str | None, once: bool, refresh: float | None, asJson: bool) -> None:
    """A live view of the queue: unfinished roots, running jobs, workers. Ctrl-C quits."""
    q = app().queue(queuePath)
    if asJson:
        printJson(topData(q))
        return
    console = app().console()
    if once or not console.is_terminal:
        app().print(renderTop(topData(q), console.size.height if console.is_terminal else 1000))
        return
    interval = refresh or app().config.refresh
    try:
        with Live(console=console, screen=True, auto_refresh=False) as live:
            while True:
                live.update(renderTop(topData(q), console.size.height), refresh=True)
                time.sleep(interval)
    except KeyboardInterrupt:
        raise click.exceptions.Exit(int(Exit.OK)) from None
