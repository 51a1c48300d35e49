"""Commands about a whole queue: init, check, archive, config, stats."""

from __future__ import annotations

import json
import os
import re
import statistics
import time
from typing import Any

import click
from rich.table import Table
from rich.text import Text

from .. import _layout as L
from .._index import jobDirOf
from ..queue import JobQueue, createJobQueue
from ..registry import listWorkers
from ..state import JobState
from ._app import CliError, Exit, app, jsonOption, openQueue, printJson, queueOption
from ._render import STYLES, counts, duration
from ._snapshot import STATE_NAMES, RootView, attemptNumbers, indexMtime, readAttempt


def parseKeyValue(text: str, what: str) -> tuple[str, Any]:
    """``key=value``; the value is JSON when it parses as JSON (5, true, [..], {..}), else a
    string."""
    key, sep, raw = text.partition("=")
    key = key.strip()
    if not sep or not key:
        raise click.BadParameter(f"{text!r} is not {what}=VALUE")
    try:
        value: Any = json.loads(raw)
    except ValueError:
        value = raw
    return key, value


_DURATION_RE = re.compile(r"(\d+(?:\.\d+)?)\s*([smhdw]?)")
_UNITS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def parseDuration(text: str) -> float:
    """``90``, ``30s``, ``15m``, ``1h30m``, ``2d``, ``1w`` -> seconds."""
    s = text.strip().lower()
    pos = 0
    total = 0.0
    for m in _DURATION_RE.finditer(s):
        if m.start() != pos:
            break
        total += float(m.group(1)) * _UNITS[m.group(2)]
        pos = m.end()
    if pos != len(s) or not s:
        raise click.BadParameter(f"{text!r} is not a duration: write 90, 30s, 15m, 1h30m, 2d or 1w")
    return total


class DurationType(click.ParamType):  # type: ignore[type-arg,unused-ignore]
    name = "DURATION"

    def convert(
        self, value: Any, param: click.Parameter | None, ctx: click.Context | None
    ) -> float:
        if isinstance(value, (int, float)):
            return float(value)
        try:
            return parseDuration(str(value))
        except click.BadParameter as exc:
            self.fail(exc.message, param, ctx)


DURATION = DurationType()


# -- init ----------------------------------------------------------------------------------------


@click.command()
@click.argument("queue", type=click.Path(file_okay=False))
@click.option(
    "-s",
    "--setting",
    "settings",
    multiple=True,
    metavar="KEY=VALUE",
    help="A queue setting (repeatable); VALUE is JSON or a string: -s priority=5 -s maxAttempts=3.",
)
@click.option("-p", "--parents", is_flag=True, help="Create missing parent directories.")
@jsonOption
def init(queue: str, settings: tuple[str, ...], parents: bool, asJson: bool) -> None:
    """Create a queue directory QUEUE with its settings."""
    values = dict(parseKeyValue(s, "KEY") for s in settings)
    location = os.path.abspath(queue)
    if parents:
        os.makedirs(os.path.dirname(location), exist_ok=True)
    elif not os.path.isdir(os.path.dirname(location)):
        raise CliError(
            f"cannot create queue {location}: its parent directory {os.path.dirname(location)} "
            "does not exist (pass --parents to create it)",
            Exit.USAGE,
        )
    q = createJobQueue(location, **values)
    if asJson:
        printJson({"location": q.location, "settings": q.settings})
    else:
        app().console().print(f"created queue {q.location}")


# -- check ---------------------------------------------------------------------------------------


@click.command()
@queueOption
@click.option("--repair", is_flag=True, help="Fix what can be fixed (safe while workers run).")
@jsonOption
def check(queuePath: str | None, repair: bool, asJson: bool) -> None:
    """Find (and with --repair fix) what crashes left half-done. Exit 1 if problems remain."""
    q = app().queue(queuePath)
    problems = q.check(repair=repair)
    remaining = sum(1 for p in problems if not p.repaired)
    if asJson:
        printJson(
            {
                "queue": q.location,
                "problems": [
                    {"kind": p.kind, "path": p.path, "message": p.message, "repaired": p.repaired}
                    for p in problems
                ],
                "remaining": remaining,
            }
        )
    else:
        console = app().console()
        for p in problems:
            t = Text()
            t.append(
                "repaired " if p.repaired else "problem  ", style="green" if p.repaired else "red"
            )
            t.append(p.kind, style="bold")
            t.append(f": {p.path}: {p.message}")
            console.print(t)
        if not problems:
            console.print(f"no problems in {q.location}")
        elif remaining:
            hint = "" if repair else " (run with --repair to fix what can be fixed)"
            console.print(f"{remaining} problem(s) remain{hint}")
    if remaining:
        raise click.exceptions.Exit(int(Exit.FAILED))


# -- archive -------------------------------------------------------------------------------------


@click.command()
@click.argument("queue", type=click.Path(file_okay=False))
@click.option("--done-age", type=DURATION, help="Archive done roots finished longer ago (90m, 7d).")
@click.option("--failed-age", type=DURATION, help="Archive failed roots finished longer ago.")
@click.option("--keep-done", type=click.IntRange(min=0), help="Keep at most this many done roots.")
@click.option(
    "--keep-failed", type=click.IntRange(min=0), help="Keep at most this many failed roots."
)
@click.option(
    "--action", type=click.Choice(["archive", "delete"]), help="Move to QUEUE/archive or delete."
)
@jsonOption
def archive(
    queue: str,
    done_age: float | None,
    failed_age: float | None,
    keep_done: int | None,
    keep_failed: int | None,
    action: str | None,
    asJson: bool,
) -> None:
    """Archive or delete finished roots of QUEUE by age and count (defaults: the queue's
    retention setting)."""
    q = openQueue(os.path.abspath(queue), "the QUEUE argument")
    handled = q.archive(
        doneAge=done_age,
        failedAge=failed_age,
        keepDone=keep_done,
        keepFailed=keep_failed,
        action=action,
    )
    ids = [str(r) for r in handled]
    if asJson:
        printJson({"queue": q.location, "action": action, "roots": ids})
    else:
        console = app().console()
        for r in ids:
            console.print(r)
        console.print(f"{len(ids)} root(s) {'deleted' if action == 'delete' else 'archived'}")


# -- config --------------------------------------------------------------------------------------


@click.command("config")
@queueOption
@jsonOption
def configCmd(queuePath: str | None, asJson: bool) -> None:
    """Show the user config file, the queue in use and its settings."""
    a = app()
    data: dict[str, Any] = a.config.asDict()
    data["color"] = a.color
    try:
        location, source = a.queueLocation(queuePath)
        data["queue"], data["queueSource"] = location, source
        try:
            data["queueSettings"] = a.queue(queuePath).settings
        except CliError:
            data["queueSettings"] = None
    except CliError:
        data["queue"], data["queueSource"], data["queueSettings"] = None, None, None
    if asJson:
        printJson(data)
        return
    console = a.console()
    console.print(f"config file: {data['path']}" + ("" if data["exists"] else " (does not exist)"))
    console.print(
        f"queue:       {data['queue'] or '-'}"
        + (f" (from {data['queueSource']})" if data["queueSource"] else "")
    )
    console.print(f"color:       {data['color']}")
    console.print(f"refresh:     {data['refresh']} s")
    if data["queueSettings"] is not None:
        console.print(f"queue settings: {json.dumps(data['queueSettings'], sort_keys=True)}")


# -- stats ---------------------------------------------------------------------------------------

SPARK = "▁▂▃▄▅▆▇█"
MAX_BUCKETS = 60


@click.command()
@queueOption
@click.option(
    "--since", type=DURATION, default="1h", show_default=True, help="The period: 30m, 1h, 2d."
)
@jsonOption
def stats(queuePath: str | None, since: float, asJson: bool) -> None:
    """Counts by state, jobs finished per minute and run times over a period (Django Q's qinfo)."""
    q = app().queue(queuePath)
    data = collectStats(q, since)
    if asJson:
        printJson(data)
        return
    parts: list[Any] = []
    parts.append(Text(f"queue {q.location}", style="bold"))
    parts.append(Text("roots: ").append_text(counts(data["roots"])))
    parts.append(Text("jobs:  ").append_text(counts(data["jobs"])))
    if data["workers"] is not None:
        w = data["workers"]
        parts.append(f"workers: {w['alive']} alive, {w['busy']} busy, {w['lost']} lost")
    p = data["period"]
    parts.append(Text(""))
    parts.append(Text(f"last {duration(p['seconds'])}:", style="bold"))
    table = Table(box=None, show_header=False, pad_edge=False)
    table.add_row("finished", f"{p['done']} done, {p['failed']} failed")
    table.add_row("rate", f"{p['perMinute']:.2f} jobs/min")
    rt = p["runTime"]
    if rt["count"]:
        table.add_row(
            "run time",
            f"mean {duration(rt['mean'])}, median {duration(rt['median'])}, "
            f"min {duration(rt['min'])}, max {duration(rt['max'])} ({rt['count']} attempts)",
        )
    outcomes = ", ".join(f"{n} {k}" for k, n in sorted(p["attempts"].items()) if n)
    table.add_row("attempts", outcomes or "none")
    if p["timeline"]:
        peak = max(b["done"] + b["failed"] for b in p["timeline"]) or 1
        spark = "".join(
            SPARK[min(len(SPARK) - 1, (b["done"] + b["failed"]) * (len(SPARK) - 1) // peak)]
            if b["done"] + b["failed"]
            else " "
            for b in p["timeline"]
        )
        table.add_row(f"per {duration(p['bucketSeconds'])}", Text(spark, style=STYLES["done"]))
    parts.append(table)
    app().print(*parts)


def collectStats(q: JobQueue, since: float) -> dict[str, Any]:
    now = time.time()
    start = now - since
    rootCounts = dict.fromkeys(STATE_NAMES, 0)
    jobCounts = dict.fromkeys(STATE_NAMES, 0)
    bucket = max(60.0, since / MAX_BUCKETS)
    nb = max(1, int(-(-since // bucket)))
    timeline = [{"start": start + i * bucket, "done": 0, "failed": 0} for i in range(nb)]
    runTimes: list[float] = []
    outcomes: dict[str, int] = {}
    finished = {"done": 0, "failed": 0}
    for rid in q._rootIds():
        rootDir = os.path.join(q._roots, rid)
        view = RootView(q, rootDir)
        rootCounts[view.summaryState().value] += 1
        for s in view.states.values():
            jobCounts[s.value] += 1
        # Nothing of this root finished in the period if no token moved into done/ or failed/
        # since it began (a rename into a directory changes the directory's mtime).
        if indexMtime(rootDir, (L.DONE, L.FAILED)) < start:
            continue
        for path, state in view.states.items():
            if state not in (JobState.DONE, JobState.FAILED):
                continue
            rec = view.record(path)
            end = rec.get("endTime")
            if isinstance(end, (int, float)) and start <= end <= now:
                finished[state.value] += 1
                i = min(nb - 1, int((end - start) // bucket))
                timeline[i][state.value] += 1
            _attemptStats(view, path, rec, start, now, runTimes, outcomes)
    minutes = since / 60
    return {
        "queue": q.location,
        "now": now,
        "roots": rootCounts,
        "jobs": jobCounts,
        "workers": _workerCounts(q.location),
        "period": {
            "seconds": since,
            "start": start,
            "done": finished["done"],
            "failed": finished["failed"],
            "perMinute": (finished["done"] + finished["failed"]) / minutes if minutes else 0.0,
            "attempts": outcomes,
            "runTime": {
                "count": len(runTimes),
                "mean": statistics.fmean(runTimes) if runTimes else None,
                "median": statistics.median(runTimes) if runTimes else None,
                "min": min(runTimes) if runTimes else None,
                "max": max(runTimes) if runTimes else None,
            },
            "bucketSeconds": bucket,
            "timeline": timeline,
        },
    }


def _attemptStats(
    view: RootView,
    path: str,
    rec: dict[str, Any],
    start: float,
    now: float,
    runTimes: list[float],
    outcomes: dict[str, int],
) -> None:
    """Count the attempts of a finished job that ended in the period; run times of done ones."""
    jobDir = jobDirOf(view.rootDir, path)
    n = rec.get("attempt")
    numbers = attemptNumbers(jobDir) if not isinstance(n, int) or n > 1 else [n]
    for k in numbers:
        a = readAttempt(jobDir, k) if k != n or "outcome" not in rec else rec
        end, begin = a.get("endTime"), a.get("startTime")
        if not isinstance(end, (int, float)) or not start <= end <= now:
            continue
        outcome = str(a.get("outcome"))
        outcomes[outcome] = outcomes.get(outcome, 0) + 1
        if outcome == "done" and isinstance(begin, (int, float)):
            runTimes.append(max(0.0, end - begin))


def _workerCounts(location: str | None) -> dict[str, int] | None:
    if location is None:
        return None
    workers = listWorkers(location)
    lost = sum(1 for w in workers if w.get("lost"))
    busy = sum(1 for w in workers if not w.get("lost") and w.get("currentJob"))
    return {"alive": len(workers) - lost, "busy": busy, "lost": lost}
