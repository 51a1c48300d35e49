"""Commands that look at jobs: ls, tree, show."""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from typing import Any, TypeVar

import click
from rich.console import Group
from rich.table import Table
from rich.text import Text

from .. import _layout as L
from ..errors import CorruptJob
from ..queue import JobQueue
from ..state import JobState
from ._address import JobAddress, address, queueOf, resolveJob
from ._app import app, jsonOption, printJson, queueOption
from ._render import (
    bar,
    counts,
    duration,
    renderTree,
    rootsTable,
    stateText,
    timestamp,
    treeData,
    visiblePaths,
)
from ._snapshot import (
    STATE_NAMES,
    Filters,
    RootView,
    attemptNumbers,
    dependencies,
    readAttempt,
    rootViews,
    whyWaiting,
)

F = TypeVar("F", bound=Callable[..., Any])


def _meta(
    ctx: click.Context, param: click.Parameter, values: tuple[str, ...]
) -> list[tuple[str, str]]:
    out = []
    for v in values:
        k, sep, val = v.partition("=")
        if not sep or not k:
            raise click.BadParameter(f"{v!r} is not KEY=VALUE")
        out.append((k, val))
    return out


def filterOptions(f: F) -> F:
    for opt in reversed(
        [
            click.option(
                "-s",
                "--state",
                "states",
                multiple=True,
                type=click.Choice(STATE_NAMES, case_sensitive=False),
                help="Only jobs in this state (repeatable).",
            ),
            click.option(
                "-l",
                "--label",
                metavar="GLOB",
                help="Only jobs whose label matches (case-insensitive glob).",
            ),
            click.option(
                "-H",
                "--host",
                metavar="GLOB",
                help="Only jobs that ran or run on this host (glob).",
            ),
            click.option(
                "-m",
                "--meta",
                multiple=True,
                metavar="KEY=VALUE",
                callback=_meta,
                help="Only jobs with this metadata (repeatable; VALUE may be a glob).",
            ),
        ]
    ):
        f = opt(f)
    return f


# -- ls ------------------------------------------------------------------------------------------


@click.command("ls")
@queueOption
@filterOptions
@click.option("--archived", is_flag=True, help="List the archived roots instead.")
@jsonOption
def ls(
    queuePath: str | None,
    states: tuple[str, ...],
    label: str | None,
    host: str | None,
    meta: list[tuple[str, str]],
    archived: bool,
    asJson: bool,
) -> None:
    """List the roots of the queue with their state, progress and job counts."""
    q = app().queue(queuePath)
    filters = Filters(states, label, host, meta)
    views = archivedViews(q) if archived else rootViews(q)
    rows = [v.rootSummary() for v in views if filters.matchRoot(v)]
    if asJson:
        printJson({"queue": q.location, "roots": rows})
        return
    if not rows:
        empty = "no roots match" if filters.active else f"queue {q.location} is empty"
        app().print(Text(empty, style="dim"))
        return
    app().print(rootsTable(rows))


def archivedViews(q: JobQueue) -> list[RootView]:
    from ..automation import ARCHIVE_DIR

    assert q.location is not None
    return [RootView(q, os.path.join(q.location, ARCHIVE_DIR, rid)) for rid in q.listArchived()]


# -- tree ----------------------------------------------------------------------------------------


@click.command()
@click.argument("jobs", nargs=-1, type=JobAddress())
@queueOption
@click.option(
    "-d",
    "--depth",
    type=click.IntRange(min=0),
    help="Show sub-jobs down to this depth (0: roots only).",
)
@filterOptions
@jsonOption
def tree(
    jobs: tuple[str, ...],
    queuePath: str | None,
    depth: int | None,
    states: tuple[str, ...],
    label: str | None,
    host: str | None,
    meta: list[tuple[str, str]],
    asJson: bool,
) -> None:
    """Show jobs with their sub-jobs as a tree: every root, or the JOBS given."""
    filters = Filters(states, label, host, meta)
    trees: list[dict[str, Any]] = []
    location: str | None
    if jobs:
        location = None
        for text in jobs:
            h = resolveJob(text, queuePath)
            view = RootView(queueOf(h), h.rootDir)
            limit = None if depth is None else depth + len(h.path.split(".")) - 1
            keep = visiblePaths(view, filters, limit)
            if keep is None or h.path in keep:
                trees.append(treeData(view, h.path, limit, keep))
            location = queueOf(h).location
    else:
        q = app().queue(queuePath)
        location = q.location
        for view in rootViews(q):
            keep = visiblePaths(view, filters, depth)
            if keep is None or L.ROOT_PATH in keep:
                trees.append(treeData(view, L.ROOT_PATH, depth, keep))
    if asJson:
        printJson({"queue": location, "jobs": trees})
        return
    if not trees:
        app().print(Text("no jobs match", style="dim"))
        return
    app().print(*(renderTree(t) for t in trees))


# -- show ----------------------------------------------------------------------------------------


@click.command()
@click.argument("job", type=JobAddress())
@queueOption
@jsonOption
def show(job: str, queuePath: str | None, asJson: bool) -> None:
    """Everything about one job: state, why it waits, attempts, error, parameters."""
    h = resolveJob(job, queuePath)
    data = showData(h)
    if asJson:
        printJson(data)
        return
    app().print(renderShow(data))


def showData(h: Any) -> dict[str, Any]:
    view = RootView(queueOf(h), h.rootDir)
    d = view.job(h.path)
    spec = view.spec(h.path)
    state = JobState(d["state"])
    deps, dependants = dependencies(h.rootDir, h.path)
    attempts = []
    for n in attemptNumbers(h.location):
        a = readAttempt(h.location, n)
        a.setdefault("attempt", n)
        for stream in ("stdout", "stderr"):
            try:
                a[f"{stream}Bytes"] = os.path.getsize(
                    os.path.join(h.location, L.logFile(stream, n))
                )
            except OSError:
                a[f"{stream}Bytes"] = 0
        attempts.append(a)
    if state is JobState.RUNNING:
        rec = view.record(h.path)
        if not any(a.get("claim") == rec.get("claim") for a in attempts):
            attempts.append(
                {
                    "attempt": rec.get("attempt"),
                    "claim": rec.get("claim"),
                    "host": rec.get("host"),
                    "pid": rec.get("pid"),
                    "startTime": rec.get("startTime"),
                    "endTime": None,
                    "outcome": "running",
                    "progress": rec.get("progress"),
                    "statusLine": rec.get("statusLine"),
                    "error": None,
                    "traceback": None,
                }
            )
    rec = view.record(h.path)
    d.update(
        whyWaiting=whyWaiting(queueOf(h), h, state),
        params=spec.get("params") if isinstance(spec.get("params"), dict) else {},
        jobOptions=spec.get("jobOptions") if isinstance(spec.get("jobOptions"), dict) else {},
        submitHost=spec.get("submitHost"),
        corrupt=spec.get("corrupt"),
        traceback=rec.get("traceback") if isinstance(rec.get("traceback"), str) else None,
        counts=view.counts(h.path),
        children=[address(h.rootId, c) for c in view.children(h.path)],
        parent=address(h.rootId, h.path.rpartition(".")[0]) if h.path != L.ROOT_PATH else None,
        dependsOn=[address(h.rootId, p) for p in deps],
        dependants=[address(h.rootId, p) for p in dependants],
        attempts=attempts,
        result=_result(h),
    )
    return d


def _result(h: Any) -> Any:
    """What the job saved with setResult (None if nothing); a corrupt file shows its error."""
    try:
        return h.result
    except CorruptJob as exc:
        return {"error": str(exc)}


def renderShow(d: dict[str, Any]) -> Group:
    rows: list[tuple[str, Text | str]] = []
    add = rows.append
    add(("job", Text(d["id"]) + Text(f"  ({d['rootId']}:{d['path']})", style="dim")))
    add(("label", d["label"] or "-"))
    add(("type", d["jobType"]))
    if d["corrupt"]:
        add(("corrupt", Text(d["corrupt"], style="bold red")))
    add(("state", stateText(d["state"])))
    if d["whyWaiting"]:
        add(("why", Text(d["whyWaiting"], style="yellow")))
    add(("progress", bar(d["progress"])))
    if d["statusLine"]:
        add(("status", Text(d["statusLine"], style="italic")))
    if d["error"]:
        add(("error", Text(d["error"], style="red")))
    add(("priority", str(d["priority"])))
    if d["metadata"]:
        add(("metadata", ", ".join(f"{k}={v}" for k, v in d["metadata"].items())))
    if d["host"]:
        add(("host", f"{d['host']} (pid {d['pid']})"))
    submitted = timestamp(d["submitTime"])
    add(("submitted", submitted + (f" from {d['submitHost']}" if d["submitHost"] else "")))
    if d["startTime"]:
        add(("started", timestamp(d["startTime"])))
    if d["endTime"]:
        ran = duration(d["endTime"] - (d["startTime"] or d["endTime"]))
        add(("ended", f"{timestamp(d['endTime'])} (ran {ran})"))
    if d["children"]:
        subtree = Text(f"{len(d['children'])} (with all below and itself: ")
        add(("sub-jobs", subtree.append_text(counts(d["counts"])).append(")")))
    if d["parent"]:
        add(("parent", d["parent"]))
    if d["dependsOn"]:
        add(("depends on", ", ".join(d["dependsOn"])))
    if d["dependants"]:
        add(("needed by", ", ".join(d["dependants"])))
    if d["result"] is not None:
        add(("result", _compact(d["result"])))
    add(("params", _compact(d["params"])))
    add(("options", _compact({k: v for k, v in d["jobOptions"].items() if v is not None})))
    add(("location", d["location"]))
    parts: list[Any] = [
        Text.assemble((f"{k:<11}", "bold"), v if isinstance(v, Text) else Text(v)) for k, v in rows
    ]
    if d["attempts"]:
        a = Table(
            title="attempts", title_justify="left", box=None, header_style="bold", pad_edge=False
        )
        for col in ("#", "OUTCOME", "HOST", "STARTED", "RAN", "OUT", "ERR", "ERROR"):
            a.add_column(col, overflow="fold" if col == "ERROR" else "ellipsis")
        for r in d["attempts"]:
            start, end = r.get("startTime"), r.get("endTime")
            seconds = (
                end - start
                if isinstance(start, (int, float)) and isinstance(end, (int, float))
                else None
            )
            outcome = str(r.get("outcome"))
            a.add_row(
                str(r.get("attempt")),
                Text(
                    outcome,
                    style={"done": "green", "failed": "red", "running": "blue"}.get(
                        outcome, "yellow"
                    ),
                ),
                str(r.get("host") or "-"),
                timestamp(start if isinstance(start, (int, float)) else None),
                duration(seconds),
                _size(r.get("stdoutBytes")),
                _size(r.get("stderrBytes")),
                Text(str(r.get("error") or ""), style="red"),
            )
        parts += [Text(""), a]
    if d["traceback"]:
        parts += [
            Text(""),
            Text("traceback:", style="bold"),
            Text(d["traceback"].rstrip(), style="red"),
        ]
    return Group(*parts)


def _compact(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, sort_keys=True, default=str) if value else "{}"


def _size(n: Any) -> str:
    if not isinstance(n, int) or n == 0:
        return "-" if n is None else "0"
    for unit in ("B", "K", "M", "G"):
        if n < 1024:
            return f"{n}{unit}"
        n //= 1024
    return f"{n}T"
