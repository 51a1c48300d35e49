"""jobtree submit: a job tree from a file, a command split into frame chunks, or an animation
(render chunks of frames, then encode the movie) built by :func:`jobtree.procs.submitAnimation`."""

from __future__ import annotations

import importlib
import os
import shlex
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

import click
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from .. import _layout as L
from ..errors import JobTreeError
from ..frames import chunked, formatFrames, parseFrames
from ..queue import JobQueue, createJobQueue
from ._address import shortId
from ._app import CliError, Exit, app, errorFor, jsonOption, openQueue, printJson
from ._cmd_queue import parseKeyValue
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

if TYPE_CHECKING:
    from ..handle import JobHandle

COMMAND_TYPE = "command"
"""The job type of the quick form: the standard procedure ``command`` (jobtree.procs.command),
with the parameters ``commands`` (argv lists run in order) and ``cwd``."""
RENDERERS = ("blender", "demo")
ANIMATION_CHUNK = 10
"""Frames per sub-job of --animation unless --chunk says otherwise (submitAnimation's default)."""
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
@click.option("-l", "--label", help="The root's label (default: the command, or the scene).")
@click.option("-f", "--frames", metavar="RANGE", help="Frames, e.g. 1-240, 1-99x2, 1,5,10-20.")
@click.option(
    "-c",
    "--chunk",
    type=click.IntRange(min=1),
    help=f"Frames per sub-job (default: 1; {ANIMATION_CHUNK} with --animation).",
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
    help="A job option of every job (repeatable): -o maxAttempts=3.",
)
@click.option(
    "-m",
    "--meta",
    multiple=True,
    metavar="KEY=VALUE",
    help="Metadata of every job (repeatable): -m shot=010.",
)
@click.option(
    "-a",
    "--animation",
    metavar="SCENE",
    help="Render SCENE (a .blend) in chunks of frames, then encode the movie.",
)
@click.option(
    "--output",
    metavar="PATTERN",
    help="--animation: the frames to write, a pattern with # (out/shot_####.png) or a directory.",
)
@click.option(
    "--movie",
    metavar="PATH",
    help="--animation: the movie (.mp4, .mov, .mkv, .webm; .gif, .webp: an animated image); "
    "default <output dir>/<scene>.mp4.",
)
@click.option("--no-encode", "noEncode", is_flag=True, help="--animation: render frames only.")
@click.option(
    "--renderer",
    type=click.Choice(RENDERERS),
    help="--animation: blender (default), or demo (jobtree's own renderer; SCENE is a name).",
)
@click.option(
    "--notify",
    metavar="ADDR",
    multiple=True,
    help="--animation: e-mail ADDR when the animation is done or failed (repeatable).",
)
@click.option(
    "--smtp",
    metavar="HOST[:PORT]",
    help="--notify: the SMTP server the workers send through (default: localhost).",
)
@jsonOption
def submit(
    queue: str,
    file: str | None,
    fmt: str | None,
    dry_run: bool,
    label: str | None,
    frames: str | None,
    chunk: int | None,
    cwd: str | None,
    priority: int | None,
    jobOptions: tuple[str, ...],
    meta: tuple[str, ...],
    animation: str | None,
    output: str | None,
    movie: str | None,
    noEncode: bool,
    renderer: str | None,
    notify: tuple[str, ...],
    smtp: str | None,
    asJson: bool,
) -> None:
    """Submit a job tree from FILE (JSON, TOML or YAML; - reads stdin), a command, or an
    animation:

    \b
      jobtree submit QUEUE shot010.yaml
      jobtree submit QUEUE --frames 1-240 --chunk 10 -- blender -b s.blend -s {first} -e {last} -a
      jobtree submit QUEUE --animation shot010.blend --frames 1-240 --chunk 10
                           --output /farm/out/shot010_####.png --notify ann@example.com

    The command's arguments may hold {first} and {last} (the chunk's frames) and {frame}
    (then the command runs once per frame of the chunk); {frame:04d} pads.

    --animation renders SCENE with Blender in sub-jobs of --chunk frames, writing --output,
    under a root that encodes the frames into --movie once they are all done (ffmpeg; an
    animated image for .gif and .webp), or does nothing with --no-encode. See docs/cli-submit.md.
    """
    ctx = click.get_current_context()
    command: list[str] | None = ctx.meta.get("jobtree.command")
    q = openQueue(os.path.abspath(queue), "the QUEUE argument")
    animationOnly = {
        "--output": output,
        "--movie": movie,
        "--no-encode": noEncode,
        "--renderer": renderer,
        "--notify": notify,
        "--smtp": smtp,
    }
    if animation is not None:
        if command is not None:
            raise CliError(
                "give either --animation or a command after --, not both "
                f"(the command was: {shlex.join(command)})",
                Exit.USAGE,
            )
        if file is not None:
            raise CliError(
                f"--animation takes no FILE (got {file}): the animation is described by "
                "--frames, --chunk, --output and --movie",
                Exit.USAGE,
            )
        if cwd is not None:
            raise CliError("--cwd only works with a command after --", Exit.USAGE)
        root = _submitAnimation(
            q,
            scene=animation,
            renderer=renderer or "blender",
            frames=frames,
            chunk=chunk,
            output=output,
            movie=movie,
            noEncode=noEncode,
            notify=notify,
            smtp=smtp,
            label=label,
            priority=priority,
            jobOptions=_jobOptions(jobOptions, meta),
            dryRun=dry_run,
        )
        _report(q, [root], dry_run, asJson)
        return
    used = [k for k, v in animationOnly.items() if v]
    if used:
        raise CliError(
            f"{', '.join(used)} only work{'s' if len(used) == 1 else ''} with --animation SCENE "
            "(jobtree submit QUEUE --animation shot.blend --frames 1-240 --output out/f_####.png)",
            Exit.USAGE,
        )
    if file is not None and command is not None:
        raise CliError("give either FILE or a command after --, not both", Exit.USAGE)
    if file is None and command is None:
        raise CliError(
            "nothing to submit: give FILE, a command after -- "
            "(jobtree submit QUEUE -- echo hello), or --animation SCENE",
            Exit.USAGE,
        )
    if file is not None:
        quickOnly = {
            "--label": label,
            "--frames": frames,
            "--cwd": cwd,
            "--job-option": jobOptions,
            "--meta": meta,
            "--chunk": chunk,
        }
        used = [k for k, v in quickOnly.items() if v]
        if used:
            raise CliError(
                f"{', '.join(used)} only work{'s' if len(used) == 1 else ''} with a command "
                "after --; put them in the file",
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
    _report(q, _submitAll(q, roots, dry_run, asJson, source), dry_run, asJson)


def _report(q: JobQueue, results: list[dict[str, Any]], dryRun: bool, asJson: bool) -> None:
    if asJson:
        roots = [{k: v for k, v in r.items() if k != "summary"} for r in results]
        printJson({"queue": q.location, "dryRun": dryRun, "roots": roots})
        return
    console = app().console()
    for res in results:
        what = f'"{res["label"]}" ' if res["label"] else ""
        n = f"{res['jobs']} job{'s' if res['jobs'] != 1 else ''}"
        if dryRun:
            console.print(f"would submit {what}({n}) to {q.location}", markup=False)
        else:
            console.print(f"submitted {res['id']} {what}({n}) to {q.location}", markup=False)
        for line in res.get("summary", []):
            console.print(f"  {line}", markup=False)


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
            text = sys.stdin.buffer.read().decode("utf-8")
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


def _jobOptions(jobOptions: tuple[str, ...], meta: tuple[str, ...]) -> dict[str, Any]:
    """The job options of -o KEY=VALUE and -m KEY=VALUE (metadata)."""
    options: dict[str, Any] = dict(parseKeyValue(o, "KEY") for o in jobOptions)
    if meta:
        options["metadata"] = {
            k: v if isinstance(v, (str, int, float, bool)) else str(v)
            for k, v in (parseKeyValue(m, "KEY") for m in meta)
        }
    return options


def _quickRoot(
    command: list[str],
    label: str | None,
    frames: str | None,
    chunk: int | None,
    cwd: str | None,
    priority: int | None,
    jobOptions: tuple[str, ...],
    meta: tuple[str, ...],
) -> JobSpec:
    if not command:
        raise CliError("the command after -- is empty", Exit.USAGE)
    options = _jobOptions(jobOptions, meta)
    rootOptions = dict(options)
    if priority is not None:
        rootOptions["priority"] = priority
    params: dict[str, Any] = {"cwd": os.path.abspath(cwd) if cwd else os.getcwd()}
    rootLabel = label or _shorten(shlex.join(command))
    if frames is None:
        if chunk is not None:
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
        for i, c in enumerate(chunked(frameList, chunk or 1)):
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


# -- --animation ---------------------------------------------------------------------------------


def procsFunction(name: str) -> Any:
    """A function of jobtree.procs, imported when first needed.

    The layers go one way: procs/ depends on jobtree/, so jobtree/ never imports it at module
    level (nor statically: mypy sees procs/ as the top-level package ``procs``)."""
    return getattr(importlib.import_module("jobtree.procs"), name)


def _absolute(path: str) -> str:
    """*path* made absolute against the current directory (the workers run elsewhere), keeping
    a trailing slash, which says "a directory" to submitAnimation."""
    full = os.path.abspath(os.path.expanduser(path))
    return full + os.sep if path.endswith(("/", os.sep)) and full != os.sep else full


def _smtp(text: str) -> dict[str, Any]:
    host, sep, port = text.rpartition(":")
    if not sep:
        host, port = text, ""
    if not host or (port and not port.isdigit()):
        raise CliError(
            f"--smtp {text!r}: give HOST or HOST:PORT (mail.example.com:587)", Exit.USAGE
        )
    return {"host": host, "port": int(port)} if port else {"host": host}


@contextmanager
def _dryRunQueue(q: JobQueue) -> Iterator[JobQueue]:
    """A throwaway queue with *q*'s settings (allowed procedures, signing, defaults).

    submitAnimation always activates what it builds, so a dry run submits to this copy instead:
    every procedure is instantiated and checked as in a real submission, and no worker of *q*
    ever sees the tree."""
    with tempfile.TemporaryDirectory(prefix="jobtree-dry-run-") as tmp:
        copy = createJobQueue(os.path.join(tmp, "queue"), **q.settings)
        try:
            yield copy
        finally:
            copy.close()


def _submitAnimation(
    q: JobQueue,
    *,
    scene: str,
    renderer: str,
    frames: str | None,
    chunk: int | None,
    output: str | None,
    movie: str | None,
    noEncode: bool,
    notify: tuple[str, ...],
    smtp: str | None,
    label: str | None,
    priority: int | None,
    jobOptions: dict[str, Any],
    dryRun: bool,
) -> dict[str, Any]:
    """Submit (or, with *dryRun*, build and check) an animation; its entry of ``roots``."""
    example = f"jobtree submit {q.location} --animation {scene} --frames 1-240"
    if frames is None:
        raise CliError(f"--animation needs --frames: {example} ...", Exit.USAGE)
    if output is None and renderer == "blender":
        raise CliError(
            f"--animation needs --output, the frames to write: {example} "
            "--output /farm/out/shot010_####.png (a pattern with #, or a directory)",
            Exit.USAGE,
        )
    if movie is not None and noEncode:
        raise CliError("give --movie or --no-encode, not both", Exit.USAGE)
    if smtp is not None and not notify:
        raise CliError("--smtp only works with --notify ADDR", Exit.USAGE)
    try:
        frameList = parseFrames(frames)
    except ValueError as exc:
        raise CliError(f"--frames: {exc}", Exit.USAGE) from None
    notifyArg: Any = None
    if notify:
        to: str | list[str] = notify[0] if len(notify) == 1 else list(notify)
        notifyArg = {"to": to, **_smtp(smtp)} if smtp is not None else to
    kwargs: dict[str, Any] = {
        "chunk": chunk or ANIMATION_CHUNK,
        "output": _absolute(output) if output is not None else None,
        "encode": not noEncode,
        "notify": notifyArg,
        "renderer": renderer,
        "movie": _absolute(movie) if movie is not None else None,
        "label": label,
        "priority": priority,
        "jobOptions": jobOptions or None,
    }
    submitAnimation = procsFunction("submitAnimation")
    sceneArg = _absolute(scene) if renderer == "blender" else scene
    if renderer == "blender" and not dryRun and not os.path.isfile(sceneArg):
        # Only a warning: the workers may see a filesystem this host does not.
        click.echo(f"jobtree: warning: the scene {sceneArg} does not exist on this host", err=True)
    try:
        if dryRun:
            with _dryRunQueue(q) as copy:
                handle = submitAnimation(copy, sceneArg, frameList, **kwargs)
                return _animationResult(handle, frameList, notify, smtp, dryRun=True)
        handle = submitAnimation(q, sceneArg, frameList, **kwargs)
    except (TypeError, ValueError) as exc:
        raise CliError(f"--animation {scene}: {exc}", Exit.USAGE) from None
    except JobTreeError as exc:
        error = errorFor(exc)
        assert error is not None
        raise CliError(f"--animation {scene}: {exc}", Exit(error.exit_code)) from exc
    return _animationResult(handle, frameList, notify, smtp, dryRun=False)


def _animationResult(
    root: JobHandle,
    frames: list[int],
    notify: tuple[str, ...],
    smtp: str | None,
    *,
    dryRun: bool,
) -> dict[str, Any]:
    """The ``roots`` entry of an animation, with the lines that describe its tree."""
    chunks = root.listSubJobs()
    encode = root.jobType != COMMAND_TYPE
    movie = root.params.get("output") if encode else None
    renderType = chunks[0].jobType if chunks else "-"
    pattern = chunks[0].params.get("output") if chunks else None
    size = max((len(_framesOf(c)) for c in chunks), default=0)
    summary = [
        f"frames {formatFrames(frames)}: {len(chunks)} {renderType} job"
        f"{'s' if len(chunks) != 1 else ''} of up to {size} frame{'s' if size != 1 else ''}"
        + (f" -> {pattern}" if pattern else ""),
        f"then {root.jobType} -> {movie}" if encode else "then nothing (--no-encode)",
    ]
    if notify:
        via = f" via {smtp}" if smtp else ""
        summary.append(f"then e-mail {', '.join(notify)}{via} when it is done or has failed")
    return {
        "id": None if dryRun else shortId(root.rootId),
        "rootId": None if dryRun else root.rootId,
        "location": None if dryRun else root.location,
        "label": root.label,
        "jobType": root.jobType,
        "jobs": 1 + len(chunks),
        "frames": formatFrames(frames),
        "chunks": len(chunks),
        "renderer": renderType,
        "output": pattern,
        "movie": movie,
        "notify": list(notify),
        "summary": summary,
    }


def _framesOf(job: JobHandle) -> list[int]:
    value = job.params.get("frames", job.params.get("frame"))
    try:
        return parseFrames(value) if value is not None else []
    except ValueError:
        return []
