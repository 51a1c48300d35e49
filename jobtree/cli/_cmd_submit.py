"""jobtree submit: a job tree from a file, or a command split into frame chunks."""

from __future__ import annotations

import os
import shlex
import sys
from typing import Any

import click
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from .. import _layout as L
from ..errors import JobTreeError
from ..frames import chunked, parseFrames
from ._address import shortId
from ._app import CliError, Exit, app, errorFor, jsonOption, openQueue, printJson
from ._cmd_queue import parseKeyValue
from ._procs import Command
from ._treefile import (
    FORMATS,
    JobSpec,
    TreeFileError,
    formatOf,
    loadRoots,
    parse,
    substitute,
    usesPlaceholder,
)
from ._treefile import submit as submitRoot

COMMAND_TYPE = f"{Command.__module__}:{Command.__qualname__}"
PROGRESS_FROM = 200
"""Show a progress bar when submitting at least this many jobs (on a terminal)."""
LABEL_MAX = 60


class SubmitCommand(click.Command):
    """Keeps everything after ``--`` apart: it is the command of the quick form, not arguments
    of jobtree (click would otherwise mix it into the positional arguments)."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        if "--" in args:
            i = args.index("--")
            ctx.meta["jobtree.command"] = args[i + 1 :]
            args = args[:i]
        else:
            ctx.meta["jobtree.command"] = None
        return super().parse_args(ctx, args)


@click.command(cls=SubmitCommand)
@click.argument("queue", type=click.Path(file_okay=False))
@click.argument("file", required=False, type=click.Path(dir_okay=False, allow_dash=True))
@click.option(
    "--format", "fmt", type=click.Choice(FORMATS), help="The file's format (default: by extension)."
)
@click.option("--dry-run", is_flag=True, help="Check everything, build the tree, submit nothing.")
@click.option("-l", "--label", help="Quick form: the root's label (default: the command).")
@click.option(
    "-f", "--frames", metavar="RANGE", help="Quick form: frames, e.g. 1-240, 1-99x2, 1,5,10-20."
)
@click.option(
    "-c",
    "--chunk",
    type=click.IntRange(min=1),
    default=1,
    show_default=True,
    help="Quick form: frames per sub-job.",
)
@click.option(
    "--cwd",
    type=click.Path(file_okay=False),
    help="Quick form: run the command here (default: the current directory).",
)
@click.option("-p", "--priority", type=int, help="The root's priority (its sub-jobs inherit it).")
@click.option(
    "-o",
    "--job-option",
    "jobOptions",
    multiple=True,
    metavar="KEY=VALUE",
    help="Quick form: a job option of every job (repeatable): -o maxAttempts=3.",
)
@click.option(
    "-m",
    "--meta",
    multiple=True,
    metavar="KEY=VALUE",
    help="Quick form: metadata of every job (repeatable): -m shot=010.",
)
@jsonOption
def submit(
    queue: str,
    file: str | None,
    fmt: str | None,
    dry_run: bool,
    label: str | None,
    frames: str | None,
    chunk: int,
    cwd: str | None,
    priority: int | None,
    jobOptions: tuple[str, ...],
    meta: tuple[str, ...],
    asJson: bool,
) -> None:
    """Submit a job tree from FILE (JSON, TOML or YAML; - reads stdin), or a command:

    \b
      jobtree submit QUEUE shot010.yaml
      jobtree submit QUEUE --frames 1-240 --chunk 10 -- blender -b s.blend -s {first} -e {last} -a

    The command's arguments may hold {first} and {last} (the chunk's frames) and {frame}
    (then the command runs once per frame of the chunk); {frame:04d} pads.
    """
    ctx = click.get_current_context()
    command: list[str] | None = ctx.meta.get("jobtree.command")
    q = openQueue(os.path.abspath(queue), "the QUEUE argument")
    if file is not None and command is not None:
        raise CliError("give either FILE or a command after --, not both", Exit.USAGE)
    if file is None and command is None:
        raise CliError(
            "nothing to submit: give FILE, or a command after -- "
            "(jobtree submit QUEUE -- echo hello)",
            Exit.USAGE,
        )
    if file is not None:
        quickOnly = {
            "--label": label,
            "--frames": frames,
            "--cwd": cwd,
            "--job-option": jobOptions,
            "--meta": meta,
            "--chunk": chunk if chunk != 1 else None,
        }
        used = [k for k, v in quickOnly.items() if v]
        if used:
            raise CliError(
                f"{', '.join(used)} only work with a command after --; put them in the file",
                Exit.USAGE,
            )
        roots = _loadFile(file, fmt)
        if priority is not None:
            for r in roots:
                r.jobOptions = dict(r.jobOptions or {}, priority=priority)
    else:
        assert command is not None
        roots = [_quickRoot(command, label, frames, chunk, cwd, priority, jobOptions, meta)]
    source = "the command" if file is None else ("<stdin>" if file == "-" else file)
    results = _submitAll(q, roots, dry_run, asJson, source)
    if asJson:
        printJson({"queue": q.location, "dryRun": dry_run, "roots": results})
        return
    console = app().console()
    for res in results:
        what = f'"{res["label"]}" ' if res["label"] else ""
        n = f"{res['jobs']} job{'s' if res['jobs'] != 1 else ''}"
        if dry_run:
            console.print(f"would submit {what}({n}) to {q.location}")
        else:
            console.print(f"submitted {res['id']} {what}({n}) to {q.location}")


def _loadFile(file: str, fmt: str | None) -> list[JobSpec]:
    name = "<stdin>" if file == "-" else file
    fmt = fmt or (formatOf(file) if file != "-" else "json")
    if fmt is None:
        raise CliError(
            f"{file}: cannot tell the format from the name; use .json, .toml, .yaml or --format",
            Exit.USAGE,
        )
    try:
        if file == "-":
            text = click.get_text_stream("stdin").read()
        else:
            with open(file, encoding="utf-8") as f:
                text = f.read()
    except FileNotFoundError:
        raise CliError(f"submission file {file} does not exist", Exit.USAGE) from None
    except UnicodeDecodeError as exc:
        raise CliError(f"{name}: not UTF-8 text ({exc})", Exit.USAGE) from None
    try:
        return loadRoots(parse(text, fmt, name), name)
    except TreeFileError as exc:
        raise CliError(str(exc), Exit.USAGE) from None


def _quickRoot(
    command: list[str],
    label: str | None,
    frames: str | None,
    chunk: int,
    cwd: str | None,
    priority: int | None,
    jobOptions: tuple[str, ...],
    meta: tuple[str, ...],
) -> JobSpec:
    if not command:
        raise CliError("the command after -- is empty", Exit.USAGE)
    options: dict[str, Any] = dict(parseKeyValue(o, "KEY") for o in jobOptions)
    if meta:
        options["metadata"] = {
            k: v if isinstance(v, (str, int, float, bool)) else str(v)
            for k, v in (parseKeyValue(m, "KEY") for m in meta)
        }
    rootOptions = dict(options)
    if priority is not None:
        rootOptions["priority"] = priority
    params: dict[str, Any] = {"cwd": os.path.abspath(cwd) if cwd else os.getcwd()}
    rootLabel = label or _shorten(shlex.join(command))
    if frames is None:
        if chunk != 1:
            raise CliError("--chunk needs --frames", Exit.USAGE)
        if usesPlaceholder(command):
            raise CliError(
                "the command uses {first}, {last} or {frame}, but no --frames were given",
                Exit.USAGE,
            )
        return JobSpec(
            L.ROOT_PATH,
            COMMAND_TYPE,
            rootLabel,
            {**params, "commands": [command]},
            rootOptions or None,
        )
    try:
        frameList = parseFrames(frames)
        perFrame = usesPlaceholder(command, "frame")
        root = JobSpec(L.ROOT_PATH, COMMAND_TYPE, rootLabel, dict(params), rootOptions or None)
        for i, c in enumerate(chunked(frameList, chunk)):
            first, last = c[0], c[-1]
            if perFrame:
                commands = [substitute(command, first, last, f) for f in c]
            else:
                commands = [substitute(command, first, last, None)]
            root.children.append(
                JobSpec(
                    f"{L.ROOT_PATH}.{L.childName(i)}",
                    COMMAND_TYPE,
                    f"frame {first}" if len(c) == 1 else f"frames {first}-{last}",
                    {**params, "commands": commands},
                    dict(options) or None,
                )
            )
    except ValueError as exc:
        raise CliError(str(exc), Exit.USAGE) from None
    return root


def _shorten(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= LABEL_MAX else text[: LABEL_MAX - 1] + "…"


def _submitAll(
    q: Any, roots: list[JobSpec], dryRun: bool, quiet: bool, source: str
) -> list[dict[str, Any]]:
    total = sum(len(r.walk()) for r in roots)
    showBar = total >= PROGRESS_FROM and not quiet and sys.stderr.isatty()
    results = []
    progress = Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=app().console(stderr=True),
        transient=True,
        disable=not showBar,
    )
    with progress:
        task = progress.add_task("building jobs" if dryRun else "submitting", total=total)
        for r in roots:
            try:
                rootId, handle = submitRoot(
                    q, r, dryRun=dryRun, onJob=lambda: progress.advance(task)
                )
            except (TypeError, TreeFileError) as exc:
                raise CliError(f"{source}: {exc}", Exit.USAGE) from None
            except JobTreeError as exc:
                error = errorFor(exc)
                assert error is not None
                raise CliError(f"{source}: {exc}", Exit(error.exit_code)) from exc
            results.append(
                {
                    "id": None if handle is None else shortId(rootId),
                    "rootId": None if handle is None else rootId,
                    "location": None if handle is None else handle.location,
                    "label": r.label,
                    "jobType": r.jobType,
                    "jobs": len(r.walk()),
                }
            )
    return results
