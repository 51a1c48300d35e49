"""Commands that change jobs: retry, cancel, pause, resume, rm, priority."""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any

import click

from ..errors import JobRunningError
from ..handle import JobHandle
from ..queue import JobQueue
from ..state import JobState
from ._address import JobAddress, handleAddress, queueOf, resolveJobs
from ._app import CliError, Exit, app, jsonOption, printJson, queueOption

Action = Callable[[JobQueue, JobHandle], int]


def _apply(
    name: str, past: str, jobs: tuple[str, ...], queuePath: str | None, asJson: bool, action: Action
) -> None:
    handles = resolveJobs(jobs, queuePath)
    results = []
    for h in handles:
        results.append(
            {"id": handleAddress(h), "location": h.location, "count": action(queueOf(h), h)}
        )
    _report(name, past, results, asJson)


def _report(name: str, past: str, results: list[dict[str, Any]], asJson: bool) -> None:
    total = sum(r["count"] for r in results)
    if asJson:
        printJson({"action": name, "jobs": results, "total": total})
        return
    console = app().console()
    for r in results:
        n = r["count"]
        console.print(f"{r['id']}: {n} job{'s' if n != 1 else ''} {past}")


def _jobsArgument(f: Callable[..., Any]) -> Callable[..., Any]:
    return click.argument("jobs", nargs=-1, required=True, type=JobAddress())(f)


@click.command()
@_jobsArgument
@queueOption
@click.option(
    "--no-recursive", is_flag=True, help="Only the jobs named, not the failed jobs below them."
)
@jsonOption
def retry(jobs: tuple[str, ...], queuePath: str | None, no_recursive: bool, asJson: bool) -> None:
    """Run failed or cancelled jobs again (and those of their subtrees)."""
    _apply(
        "retry",
        "retried",
        jobs,
        queuePath,
        asJson,
        lambda q, h: q.retry(h, recursive=not no_recursive),
    )


@click.command()
@_jobsArgument
@queueOption
@jsonOption
def cancel(jobs: tuple[str, ...], queuePath: str | None, asJson: bool) -> None:
    """Cancel jobs and their unfinished sub-jobs (running ones are stopped within a second)."""
    _apply("cancel", "cancelled", jobs, queuePath, asJson, lambda q, h: q.cancel(h))


@click.command()
@_jobsArgument
@queueOption
@jsonOption
def pause(jobs: tuple[str, ...], queuePath: str | None, asJson: bool) -> None:
    """Hold jobs: nothing in their subtrees starts until resumed (running ones finish)."""
    _apply("pause", "paused", jobs, queuePath, asJson, lambda q, h: q.pause(h))


@click.command()
@_jobsArgument
@queueOption
@jsonOption
def resume(jobs: tuple[str, ...], queuePath: str | None, asJson: bool) -> None:
    """Lift the pauses on and below jobs."""
    _apply("resume", "resumed", jobs, queuePath, asJson, lambda q, h: q.resume(h))


@click.command(context_settings={"ignore_unknown_options": True})
@click.argument("args", nargs=-1, required=True, metavar="JOB... PRIORITY")
@queueOption
@jsonOption
def priority(args: tuple[str, ...], queuePath: str | None, asJson: bool) -> None:
    """Set the priority of jobs and their whole subtrees (higher runs first; may be negative)."""
    if len(args) < 2:
        raise CliError(
            "give one or more jobs and then the priority: jobtree priority 3fa9c1 10", Exit.USAGE
        )
    *jobs, last = args
    try:
        value = int(last)
    except ValueError:
        raise CliError(f"the priority must be an integer, not {last!r}", Exit.USAGE) from None
    for j in jobs:
        if j.startswith("-"):
            raise CliError(f"no such option: {j}", Exit.USAGE)
    _apply(
        "priority",
        f"set to priority {value}",
        tuple(jobs),
        queuePath,
        asJson,
        lambda q, h: q.setPriority(h, value),
    )


@click.command()
@_jobsArgument
@queueOption
@click.option(
    "--force", is_flag=True, help="Also delete running jobs (their results are discarded)."
)
@click.option("-y", "--yes", is_flag=True, help="Do not ask for confirmation.")
@jsonOption
def rm(jobs: tuple[str, ...], queuePath: str | None, force: bool, yes: bool, asJson: bool) -> None:
    """Delete jobs: whole roots, or sub-jobs with their subtrees."""
    handles = resolveJobs(jobs, queuePath)
    sizes = [sum(h.stateCounts().values()) for h in handles]
    if not yes:
        what = ", ".join(handleAddress(h) for h in handles)
        question = f"delete {what} ({sum(sizes)} job{'s' if sum(sizes) != 1 else ''})?"
        if not sys.stdin.isatty():
            raise CliError(
                f"refusing to {question[:-1]} without confirmation: pass --yes", Exit.REFUSED
            )
        if not click.confirm(question, default=False, err=True):
            raise CliError("nothing deleted", Exit.REFUSED)
    if not force:
        for h in handles:
            running = h.stateCounts()[JobState.RUNNING]
            if running:
                raise CliError(
                    f"cannot delete {handleAddress(h)}: {running} job(s) of it are running; wait "
                    "for them, cancel them, or pass --force to discard their results",
                    Exit.REFUSED,
                )
    results = []
    for h, n in zip(handles, sizes, strict=True):
        try:
            queueOf(h).deleteJobs(h, force=force)
        except JobRunningError as exc:
            raise CliError(str(exc).replace("force=True", "--force"), Exit.REFUSED) from None
        results.append({"id": handleAddress(h), "location": h.location, "count": n})
    _report("rm", "deleted", results, asJson)
