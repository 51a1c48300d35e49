"""Commands about workers: workers (the registry), worker (start the daemon), gui.

The worker daemon (jobtree.worker), the registry (jobtree.registry) and the GUI (jobtree.gui)
are imported only when these commands run, so the rest of the command line works without them.
"""

from __future__ import annotations

import importlib
import os
import time
from types import ModuleType
from typing import Any

import click
from rich.table import Table
from rich.text import Text

from .. import _layout as L
from ._address import address
from ._app import CliError, Exit, app, jsonOption, openQueue, printJson, queueOption
from ._render import ago, duration


def importComponent(module: str, what: str, hint: str = "") -> ModuleType:
    """Import an optional part of jobtree; CliError (exit 6) saying what is missing."""
    try:
        return importlib.import_module(module)
    except ModuleNotFoundError as exc:
        if exc.name is not None and (module == exc.name or module.startswith(exc.name + ".")):
            raise CliError(
                f"{what} is not available in this installation ({module} is missing){hint}",
                Exit.UNAVAILABLE,
            ) from None
        raise CliError(f"{what} cannot be loaded: {exc}{hint}", Exit.UNAVAILABLE) from None


def jobAddressOf(location: Any, queueLocation: str | None) -> str | None:
    """The short address of a job directory in the queue, or None."""
    if not isinstance(location, str) or queueLocation is None:
        return None
    rel = os.path.relpath(location, os.path.join(queueLocation, L.ROOTS_DIR))
    parts = rel.split(os.sep)
    if rel.startswith("..") or not L.ROOT_ID_RE.match(parts[0]):
        return None
    return address(parts[0], ".".join([L.ROOT_PATH, *parts[1:]]))


def workerRecords(queueLocation: str | None) -> list[dict[str, Any]]:
    registry = importComponent("jobtree.registry", "the worker registry")
    records = []
    for w in registry.listWorkers(queueLocation):
        d = dict(w)
        d["state"] = "lost" if d.get("lost") else ("busy" if d.get("currentJob") else "idle")
        d["currentJobId"] = jobAddressOf(d.get("currentJob"), queueLocation)
        records.append(d)
    return records


@click.command()
@queueOption
@jsonOption
def workers(queuePath: str | None, asJson: bool) -> None:
    """List the workers of the queue: host, state, current job, jobs done, heartbeat."""
    q = app().queue(queuePath)
    records = workerRecords(q.location)
    if asJson:
        printJson({"queue": q.location, "workers": records})
        return
    if not records:
        app().print(Text(f"no workers have registered in {q.location}", style="dim"))
        return
    table = Table(box=None, header_style="bold", pad_edge=False)
    for col in (
        "NAME",
        "HOST",
        "PID",
        "STATE",
        "JOB",
        "DONE",
        "FAILED",
        "POOLS",
        "TAGS",
        "CPU",
        "RAM",
        "UP",
        "HEARTBEAT",
    ):
        table.add_column(col, no_wrap=col not in ("POOLS", "TAGS"))
    now = time.time()
    for w in records:
        style = {"lost": "red", "busy": "blue", "idle": "green"}[w["state"]]
        start = w.get("startTime")
        table.add_row(
            str(w.get("name") or "-"),
            str(w.get("host") or "-"),
            str(w.get("pid") or "-"),
            Text(w["state"], style=style),
            w["currentJobId"] or "-",
            str(w.get("jobsDone", 0)),
            str(w.get("jobsFailed", 0)),
            ",".join(w.get("pools") or []) or "-",
            ",".join(w.get("tags") or []) or "-",
            str(w.get("cores") or "-"),
            f"{w['ramGB']:.0f}G" if isinstance(w.get("ramGB"), (int, float)) else "-",
            duration(now - start) if isinstance(start, (int, float)) else "-",
            ago(w["heartbeat"]) if isinstance(w.get("heartbeat"), (int, float)) else "-",
        )
    app().print(table)


@click.command()
@click.argument("queue", type=click.Path(file_okay=False))
@click.option(
    "-w",
    "--workers",
    "nWorkers",
    type=click.IntRange(min=1),
    help="Worker processes (default: CPU count).",
)
@click.option("--burst", is_flag=True, help="Run what is runnable now, then exit.")
@click.option("--max-jobs", type=click.IntRange(min=1), help="Exit after this many jobs.")
@click.option("--name", help="The worker's name in the registry (default: the host name).")
@click.option(
    "--recycle",
    type=click.IntRange(min=1),
    metavar="N",
    help="Restart a worker process after N jobs.",
)
@click.option(
    "--pool",
    "pools",
    multiple=True,
    help="A pool this worker belongs to (repeatable; default $JOBTREE_POOL).",
)
@click.option(
    "--tag",
    "tags",
    multiple=True,
    help="A tag this worker offers (repeatable; default $JOBTREE_TAGS).",
)
@click.option("--pin-cpus", is_flag=True, help="Pin each worker process to its own CPU.")
@click.option(
    "--poll",
    type=click.FloatRange(min=0, min_open=True),
    metavar="SECONDS",
    help="Poll at this interval instead of watching the filesystem.",
)
@click.option("--allow-root", is_flag=True, help="Run jobs even as root.")
@click.option(
    "--log-level",
    type=click.Choice(["DEBUG", "INFO", "WARNING", "ERROR"], case_sensitive=False),
    default="INFO",
    show_default=True,
    help="Level of the daemon's log on stderr.",
)
def worker(
    queue: str,
    nWorkers: int | None,
    burst: bool,
    max_jobs: int | None,
    name: str | None,
    recycle: int | None,
    pools: tuple[str, ...],
    tags: tuple[str, ...],
    pin_cpus: bool,
    poll: float | None,
    allow_root: bool,
    log_level: str,
) -> None:
    """Start the worker daemon on QUEUE: a supervisor with worker processes that run jobs.

    The first SIGTERM or Ctrl-C finishes the running jobs and takes no new ones; a second one
    stops them at once and gives them back to the queue. Exits with the daemon's exit code.
    """
    q = openQueue(os.path.abspath(queue), "the QUEUE argument")
    daemon = importComponent("jobtree.worker", "the worker daemon")
    code = daemon.runDaemon(
        q.location,
        workers=nWorkers,
        burst=burst,
        maxJobs=max_jobs,
        name=name,
        recycle=recycle,
        pools=list(pools) if pools else None,
        tags=list(tags) if tags else None,
        pinCpus=pin_cpus,
        poll=poll,
        allowRoot=allow_root,
        logLevel=log_level.upper(),
    )
    raise click.exceptions.Exit(int(code or 0))


@click.command()
@click.argument("queues", nargs=-1, type=click.Path(file_okay=False))
def gui(queues: tuple[str, ...]) -> None:
    """Open the graphical viewer on QUEUES (default: the configured queue)."""
    paths = [os.path.abspath(p) for p in queues]
    if not paths:
        try:
            paths = [app().queueLocation()[0]]
        except CliError:
            paths = []
    for p in paths:
        openQueue(p, "the QUEUES argument")
    module = importComponent(
        "jobtree.gui.app", "the GUI", "; install it with: pip install 'jobtree-farm[gui]'"
    )
    try:
        code = module.main(paths)
    except ModuleNotFoundError as exc:  # PySide6, imported when the window opens
        raise CliError(
            f"the GUI cannot start: {exc}; install it with: pip install 'jobtree-farm[gui]'",
            Exit.UNAVAILABLE,
        ) from None
    raise click.exceptions.Exit(int(code or 0))
