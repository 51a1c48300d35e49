"""Farm-wide settings: named limits (``jobtree limit``) and recurring schedules
(``jobtree schedule add|ls|rm``), see docs/cli-farm.md."""

from __future__ import annotations

import datetime
import difflib
import inspect
import os
import shlex
import time
from collections.abc import Iterable
from typing import Any

import click
from rich.table import Table
from rich.text import Text

from .. import _layout as L
from .. import automation
from .._index import jobDirOf, loadToken, readSpec
from ..errors import JobTreeError
from ..limits import holders as limitHolders
from ..queue import JobQueue
from ._address import address
from ._app import CliError, Exit, JobtreeGroup, app, errorFor, jsonOption, printJson, queueOption
from ._cmd_queue import DURATION, parseKeyValue
from ._cmd_submit import COMMAND_TYPE, SubmitCommand, _shorten
from ._render import ago, duration, timestamp


def _suggest(name: str, known: Iterable[str]) -> str:
    """`` (did you mean 'x'?)`` for a near miss, else the known names, else nothing."""
    names = sorted(known)
    close = difflib.get_close_matches(name, names, n=1)
    if close:
        return f" (did you mean {close[0]!r}?)"
    if names:
        return f" (there are: {', '.join(names)})"
    return ""


def _usage(exc: JobTreeError, where: str) -> CliError:
    """A library error about the user's input: exit 2, unless it has a more specific code
    (no queue, ...); the message names *where* (``schedule 'x'``)."""
    error = errorFor(exc)
    code = Exit.USAGE if error is None or error.exit_code == Exit.FAILED else Exit(error.exit_code)
    message = str(exc)
    if where not in message:
        message = f"{where}: {message}"
    return CliError(message, code)


# -- limits --------------------------------------------------------------------------------------


def _holder(q: JobQueue, token: str) -> dict[str, Any]:
    """What the CLI says about the running token that holds a slot (queue-relative path)."""
    parts = token.split("/")
    info: dict[str, Any] = {
        "token": token,
        "id": None,
        "rootId": None,
        "path": None,
        "location": None,
        "label": None,
        "host": None,
        "pid": None,
        "startTime": None,
    }
    if len(parts) != 5 or parts[0] != L.ROOTS_DIR or parts[2] != L.INDEX_DIR:
        return info
    rootId, path = parts[1], L.tokenPath(parts[4])
    rootDir = os.path.join(q._need(), L.ROOTS_DIR, rootId)
    jobDir = jobDirOf(rootDir, path)
    info.update(id=address(rootId, path), rootId=rootId, path=path, location=jobDir)
    try:
        label = readSpec(jobDir).get("label")
        info["label"] = label if isinstance(label, str) else None
    except (OSError, JobTreeError):
        pass  # the job finished and was deleted since: the rest still says which it was
    try:
        claim = loadToken(rootDir, parts[3], parts[4])
    except OSError:
        claim = {}
    for key in ("host", "pid", "startTime"):
        info[key] = claim.get(key)
    return info


def _limitRecord(q: JobQueue, name: str, slots: int) -> dict[str, Any]:
    held = [_holder(q, t) for t in sorted(limitHolders(q._need(), name))]
    return {"name": name, "slots": slots, "inUse": len(held), "holders": held}


def _holderLine(h: dict[str, Any], now: float) -> Text:
    t = Text("  ")
    t.append(h["id"] or h["token"], style="bold")
    if h["label"]:
        t.append(f" {h['label']}")
    where = [str(h["host"])] if h["host"] else []
    if h["pid"]:
        where.append(f"pid {h['pid']}")
    if isinstance(h["startTime"], (int, float)):
        where.append(f"running {duration(now - h['startTime'])}")
    if where:
        t.append(f"  ({', '.join(where)})", style="dim")
    return t


def _limitText(rec: dict[str, Any], previous: int | None = None, changed: bool = False) -> Text:
    t = Text("limit ")
    t.append(rec["name"], style="bold")
    t.append(f": {rec['slots']} slot{'s' if rec['slots'] != 1 else ''}")
    if changed:
        t.append(" (new)" if previous is None else f" (was {previous})", style="dim")
    full = rec["inUse"] >= rec["slots"]
    t.append(", ")
    t.append(f"{rec['inUse']} in use", style="yellow" if full and rec["inUse"] else "")
    return t


def _parseSlots(name: str, text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise CliError(
            f"limit {name!r}: SLOTS must be a whole number >= 0, not {text!r}", Exit.USAGE
        ) from None


@click.command(context_settings={"ignore_unknown_options": True})
@click.argument("name", required=False)
@click.argument("slots", required=False)
@queueOption
@jsonOption
def limit(name: str | None, slots: str | None, queuePath: str | None, asJson: bool) -> None:
    """List the limits (no arguments), show the limit NAME, or set it to SLOTS.

    \b
      jobtree limit                       every limit: slots, how many are in use
      jobtree limit blender-licence       one limit and the jobs holding it
      jobtree limit blender-licence 4     at most 4 running jobs hold it, on all hosts

    Jobs take a limit with the job option limits, in a submission file's jobOptions or
    with -o in the quick forms of submit and schedule add:

    \b
      -o 'limits=["blender-licence"]'
    """
    for arg in (name, slots):
        if arg is not None and arg.startswith("-") and not arg[1:].isdigit():
            raise CliError(f"no such option: {arg}", Exit.USAGE)
    q = app().queue(queuePath)
    defined = q.limits()
    now = time.time()
    if name is None:
        records = [_limitRecord(q, n, defined[n]) for n in sorted(defined)]
        if asJson:
            printJson({"queue": q.location, "limits": records})
            return
        if not records:
            app().print(
                Text(
                    f"no limits in {q.location}; define one with: jobtree limit NAME SLOTS",
                    style="dim",
                )
            )
            return
        table = Table(box=None, header_style="bold", pad_edge=False)
        for col in ("NAME", "SLOTS", "IN USE", "HELD BY"):
            table.add_column(col, no_wrap=col != "HELD BY")
        for r in records:
            full = r["inUse"] >= r["slots"]
            table.add_row(
                r["name"],
                str(r["slots"]),
                Text(str(r["inUse"]), style="yellow" if full and r["inUse"] else ""),
                " ".join(h["id"] or h["token"] for h in r["holders"]) or "-",
            )
        app().print(table)
        return
    previous = defined.get(name)
    if slots is None:
        if previous is None:
            raise CliError(
                f"no limit {name!r} in {q.location}{_suggest(name, defined)}; "
                f"define it with: jobtree limit {name} SLOTS",
                Exit.USAGE,
            )
        rec = _limitRecord(q, name, previous)
        changed = False
    else:
        value = _parseSlots(name, slots)
        try:
            q.setLimit(name, value)
        except JobTreeError as exc:
            raise _usage(exc, f"limit {name!r}") from exc
        rec = _limitRecord(q, name, value)
        changed = True
    if asJson:
        out: dict[str, Any] = {"queue": q.location, **rec}
        if changed:
            out["previous"] = previous
        printJson(out)
        return
    parts: list[Any] = [_limitText(rec, previous, changed)]
    parts.extend(_holderLine(h, now) for h in rec["holders"])
    app().print(*parts)


# -- schedules -----------------------------------------------------------------------------------

RESERVED_PARAMS = frozenset(
    n
    for n, p in inspect.signature(JobQueue.schedule).parameters.items()
    if p.kind is not inspect.Parameter.VAR_KEYWORD
)
"""Parameter names JobQueue.schedule() takes itself: a job parameter cannot have them."""


def _parseStart(text: str) -> float:
    """``2026-11-23T02:00:00`` (UTC when no zone is given), ``2026-11-23``, or epoch seconds."""
    try:
        return float(text)
    except ValueError:
        pass
    try:
        t = datetime.datetime.fromisoformat(text.strip())
    except ValueError:
        raise click.BadParameter(
            f"{text!r} is not an ISO-8601 time (2026-11-23T02:00:00, UTC unless it has a zone: "
            "2026-11-23T02:00:00+01:00) or epoch seconds",
            param_hint="'--start'",
        ) from None
    if t.tzinfo is None:
        t = t.replace(tzinfo=datetime.timezone.utc)
    return t.timestamp()


def nextSlot(rec: dict[str, Any], now: float) -> float | None:
    """When the schedule's next root is due: a time <= now when a slot is due that no worker has
    created yet (workers look at most once a second), None when all its repeats were made."""
    repeats = rec.get("repeats")
    if repeats is not None and rec.get("created", 0) >= repeats:
        return None
    try:
        due = automation._dueSlots(rec, rec.get("lastSlot"), now)
        if due:
            return float(due[0])
        start = float(rec["start"])
        if rec.get("interval"):
            step = float(rec["interval"])
            if now < start:
                return start
            return start + (int((now - start) // step) + 1) * step
        from croniter import croniter

        return float(croniter(rec["cron"], max(now, start - 1)).get_next(float))
    except (KeyError, TypeError, ValueError):
        return None  # a schedule file written by hand: ls still lists it


def _scheduleRecord(rec: dict[str, Any], now: float) -> dict[str, Any]:
    out = dict(rec)
    out.setdefault("created", 0)
    out.setdefault("lastSlot", None)
    out["next"] = nextSlot(out, now)
    out["finished"] = out["next"] is None and out.get("repeats") is not None
    return out


def _seconds(value: float) -> str:
    return f"{value:g}s" if value < 60 else duration(value)


def _when(rec: dict[str, Any]) -> str:
    if rec.get("interval"):
        text = f"every {_seconds(float(rec['interval']))}"
    elif rec.get("cron"):
        text = f"cron {rec['cron']}"
    else:
        text = "?"
    return text + (", catch up" if rec.get("catchUp") else "")


def _runs(rec: dict[str, Any]) -> str:
    if rec.get("repeats") is None:
        return "forever"
    return f"{rec['created']} of {rec['repeats']}"


def _next(rec: dict[str, Any], now: float) -> Text:
    if rec["finished"]:
        return Text("finished", style="dim")
    if rec["next"] is None:
        return Text("-")
    if rec["next"] <= now:
        return Text("due", style="cyan")
    return Text(f"{ago(rec['next'], now)} ({timestamp(rec['next'])})")


def _jobText(rec: dict[str, Any]) -> str:
    if rec.get("jobType") == COMMAND_TYPE and not rec.get("label"):
        commands = (rec.get("params") or {}).get("commands") or []
        return "; ".join(shlex.join(c) for c in commands) or COMMAND_TYPE
    return str(rec.get("label") or rec.get("jobType") or "-")


def _scheduleNames(q: JobQueue) -> list[str]:
    return [str(s.get("name")) for s in q.listSchedules()]


@click.group(cls=JobtreeGroup)
def schedule() -> None:
    """Recurring jobs: submit a root every interval or on a cron expression, with no scheduler
    process (the workers do it, each slot exactly once). See docs/farm.md."""


@schedule.command("add", cls=SubmitCommand)
@click.argument("name")
@click.argument("jobtype", metavar="[JOBTYPE]", required=False)
@queueOption
@click.option(
    "-i", "--interval", type=DURATION, help="Every this long: 90 (seconds), 30s, 15m, 1h30m, 2d."
)
@click.option("--cron", metavar="EXPR", help="On this cron expression, UTC: '0 3 * * *'.")
@click.option(
    "-n", "--repeats", type=click.IntRange(min=1), help="Stop after N roots (default: forever)."
)
@click.option(
    "--catch-up", "catchUp", is_flag=True, help="Make up for every slot missed while no worker ran."
)
@click.option(
    "--start",
    metavar="TIME",
    help="The first slot: ISO-8601 (UTC unless it has a zone) or epoch seconds (default: now).",
)
@click.option("-l", "--label", help="The label of each root (quick form default: the command).")
@click.option(
    "--param",
    "params",
    multiple=True,
    metavar="KEY=VALUE",
    help="A parameter of the job (repeatable); VALUE is JSON or a string: --param frames=240.",
)
@click.option(
    "-o",
    "--option",
    "--job-option",
    "jobOptions",
    multiple=True,
    metavar="KEY=VALUE",
    help="A job option (repeatable): -o priority=5 -o 'limits=[\"licence\"]'.",
)
@click.option(
    "-m",
    "--meta",
    multiple=True,
    metavar="KEY=VALUE",
    help="Metadata of each root (repeatable), beside the schedule and slot: -m shot=010.",
)
@click.option(
    "--cwd",
    type=click.Path(file_okay=False),
    help="Quick form: run the command here (default: the current directory).",
)
@click.option("--replace", is_flag=True, help="Replace a schedule of the same name.")
@jsonOption
def scheduleAdd(
    name: str,
    jobtype: str | None,
    queuePath: str | None,
    interval: float | None,
    cron: str | None,
    repeats: int | None,
    catchUp: bool,
    start: str | None,
    label: str | None,
    params: tuple[str, ...],
    jobOptions: tuple[str, ...],
    meta: tuple[str, ...],
    cwd: str | None,
    replace: bool,
    asJson: bool,
) -> None:
    """Submit JOBTYPE as a new root every --interval or on --cron; or a command (the quick form):

    \b
      jobtree schedule add nightly-cleanup studio.procs:Cleanup --cron '0 3 * * *'
      jobtree schedule add poll-ftp studio.procs:PollFtp -i 5m -n 12 --param host=ftp.example
      jobtree schedule add sync -i 1h -- rsync -a /mnt/proj/ /mnt/backup/proj/
    """
    ctx = click.get_current_context()
    command: list[str] | None = ctx.meta.get("jobtree.command")
    jobType = jobtype
    where = f"schedule {name!r}"
    if interval is None and cron is None:
        raise CliError(f"{where}: give --interval or --cron", Exit.USAGE)
    if interval is not None and cron is not None:
        raise CliError(f"{where}: give --interval or --cron, not both", Exit.USAGE)
    if jobType is not None and command is not None:
        raise CliError(f"{where}: give either JOBTYPE or a command after --, not both", Exit.USAGE)
    if jobType is None and command is None:
        raise CliError(
            f"{where}: nothing to schedule: give JOBTYPE, or a command after -- "
            f"(jobtree schedule add {name} --interval 1h -- echo hello)",
            Exit.USAGE,
        )
    values: dict[str, Any] = dict(parseKeyValue(p, "KEY") for p in params)
    options: dict[str, Any] = dict(parseKeyValue(o, "KEY") for o in jobOptions)
    metadata = options.get("metadata")
    if meta and (metadata is None or isinstance(metadata, dict)):  # else the check says why
        options["metadata"] = {
            **(metadata or {}),
            **{
                k: v if isinstance(v, (str, int, float, bool)) else str(v)
                for k, v in (parseKeyValue(m, "KEY") for m in meta)
            },
        }
    if command is not None:
        if not command:
            raise CliError(f"{where}: the command after -- is empty", Exit.USAGE)
        if values:
            raise CliError(
                f"{where}: --param only works with JOBTYPE (the command form runs the command)",
                Exit.USAGE,
            )
        jobType = COMMAND_TYPE
        values = {"commands": [command], "cwd": os.path.abspath(cwd) if cwd else os.getcwd()}
        label = label or _shorten(shlex.join(command))
    elif cwd is not None:
        raise CliError(f"{where}: --cwd only works with a command after --", Exit.USAGE)
    clash = sorted(RESERVED_PARAMS & set(values))
    if clash:
        raise CliError(
            f"{where}: a job parameter cannot be named {', '.join(map(repr, clash))} "
            "(JobQueue.schedule takes these names itself)",
            Exit.USAGE,
        )
    startTime = _parseStart(start) if start is not None else None
    q = app().queue(queuePath)
    if not replace and name in _scheduleNames(q):
        raise _exists(q, name)
    _checkLimits(q, where, options.get("limits"))
    assert jobType is not None
    try:
        rec = q.schedule(
            name,
            jobType,
            interval=interval,
            cron=cron,
            repeats=repeats,
            catchUp=catchUp,
            start=startTime,
            replace=replace,
            label=label,
            jobOptions=options or None,
            **values,
        )
    except JobTreeError as exc:
        if not replace and name in _scheduleNames(q):  # added by someone else meanwhile
            raise _exists(q, name) from exc
        raise _usage(exc, where) from exc
    now = time.time()
    # A replaced schedule keeps the slots it submitted: say so (a new one has none).
    stored = next((r for r in q.listSchedules() if r.get("name") == name), None)
    out = _scheduleRecord(stored or dict(rec, created=0, lastSlot=None), now)
    if asJson:
        printJson({"queue": q.location, "schedule": out})
        return
    t = Text("scheduled ")
    t.append(name, style="bold")
    t.append(f": {_jobText(out)}, {_when(out)}, {_runs(out)}; next ")
    t.append_text(_next(out, now))
    app().print(t)


def _checkLimits(q: JobQueue, where: str, names: Any) -> None:
    """Refuse a limit the queue does not define now, as submitting does: otherwise every slot
    would fail to submit later, in a worker's log."""
    if not isinstance(names, list):
        return  # not a list of names: the job options check says what is wrong
    defined = q.limits()
    for n in names:
        if isinstance(n, str) and n not in defined:
            raise CliError(
                f"{where}: limit {n!r} is not defined in {q.location}{_suggest(n, defined)}; "
                f"define it with: jobtree limit {n} SLOTS",
                Exit.USAGE,
            )


def _exists(q: JobQueue, name: str) -> CliError:
    return CliError(
        f"schedule {name!r} exists in {q.location}: pass --replace to replace it, or remove it "
        f"first with: jobtree schedule rm {name}",
        Exit.REFUSED,
    )


@schedule.command("ls")
@queueOption
@jsonOption
def scheduleLs(queuePath: str | None, asJson: bool) -> None:
    """List the schedules: when they run, how many roots they made, the last and next slot."""
    q = app().queue(queuePath)
    now = time.time()
    records = [_scheduleRecord(r, now) for r in q.listSchedules()]
    if asJson:
        printJson({"queue": q.location, "schedules": records})
        return
    if not records:
        app().print(
            Text(
                f"no schedules in {q.location}; add one with: jobtree schedule add NAME ...",
                style="dim",
            )
        )
        return
    table = Table(box=None, header_style="bold", pad_edge=False)
    for col in ("NAME", "WHEN", "RUNS", "LAST", "NEXT", "JOB"):
        table.add_column(col, no_wrap=col != "JOB", overflow="ellipsis")
    for r in records:
        last = r["lastSlot"]
        table.add_row(
            r["name"],
            _when(r),
            _runs(r),
            ago(float(last), now) if isinstance(last, (int, float)) else "-",
            _next(r, now),
            _jobText(r),
        )
    app().print(table)


@schedule.command("rm")
@click.argument("names", nargs=-1, required=True, metavar="NAME...")
@queueOption
@jsonOption
def scheduleRm(names: tuple[str, ...], queuePath: str | None, asJson: bool) -> None:
    """Remove schedules (the roots they made stay in the queue)."""
    q = app().queue(queuePath)
    known = _scheduleNames(q)
    for n in names:
        if n not in known:
            raise CliError(
                f"no schedule {n!r} in {q.location}{_suggest(n, known)}; nothing removed",
                Exit.USAGE,
            )
    removed = []
    for n in dict.fromkeys(names):
        try:
            q.unschedule(n)
        except JobTreeError as exc:
            raise _usage(exc, f"schedule {n!r}") from exc
        removed.append(n)
    if asJson:
        printJson({"queue": q.location, "removed": removed})
        return
    console = app().console()
    for n in removed:
        console.print(f"removed schedule {n}")
