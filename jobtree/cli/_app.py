"""What every command shares: exit codes, error reporting, the user config, the queue to use,
the consoles, and the common options (--queue, --json)."""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable
from enum import IntEnum
from typing import Any, TypeVar

import click
from rich.console import Console, Group

from .. import _layout as L
from ..errors import (
    CorruptJob,
    DependencyCycleError,
    InvalidSetting,
    JobNotFound,
    JobRunningError,
    JobTreeError,
    ProcNotFound,
    QueueExists,
    QueueNotFound,
    QueueVersionError,
    SubmissionError,
)
from ..queue import JobQueue
from ._config import QUEUE_ENV, ConfigError, UserConfig, configPath, loadConfig

F = TypeVar("F", bound=Callable[..., Any])


class Exit(IntEnum):
    """The exit codes of every command (documented in docs/cli.md)."""

    OK = 0
    FAILED = 1
    """Problems remain (check), the followed job failed (logs -f), or the queue could not be
    read or written (permissions, corrupt files)."""
    USAGE = 2
    """Bad command line or bad input: options, submission files, job types, settings."""
    NO_QUEUE = 3
    """No queue given, or the path is not a jobtree queue (or one of a newer format)."""
    NO_JOB = 4
    """A job address matches no job, or more than one root."""
    REFUSED = 5
    """Refused: a running job (without --force), an existing queue, a deletion not confirmed."""
    UNAVAILABLE = 6
    """A component the command needs is not installed (worker daemon, GUI, archiving)."""
    INTERRUPTED = 130


class CliError(click.ClickException):
    """An expected error: printed as one line on stderr, no traceback, with its exit code."""

    def __init__(self, message: str, code: Exit = Exit.FAILED) -> None:
        super().__init__(message)
        self.exit_code = int(code)


ERROR_CODES: list[tuple[type[BaseException], Exit]] = [
    (QueueNotFound, Exit.NO_QUEUE),
    (QueueVersionError, Exit.NO_QUEUE),
    (JobNotFound, Exit.NO_JOB),
    (JobRunningError, Exit.REFUSED),
    (QueueExists, Exit.REFUSED),
    (InvalidSetting, Exit.USAGE),
    (SubmissionError, Exit.USAGE),
    (ProcNotFound, Exit.USAGE),
    (DependencyCycleError, Exit.USAGE),
    (ConfigError, Exit.USAGE),
    (JobTreeError, Exit.FAILED),
    (OSError, Exit.FAILED),
]


def errorFor(exc: BaseException) -> CliError | None:
    """The CliError for an expected exception, None for a bug (which keeps its traceback)."""
    for cls, code in ERROR_CODES:
        if isinstance(exc, cls):
            message = str(exc)
            if isinstance(exc, OSError) and not isinstance(exc, JobTreeError):
                message = _osMessage(exc)
            return CliError(message, code)
    return None


def _osMessage(exc: OSError) -> str:
    what = exc.strerror or str(exc)
    if exc.filename is not None:
        return f"{exc.filename}: {what}"
    return what


class JobtreeGroup(click.Group):
    """The command group: turns jobtree's expected errors into one-line messages and exit codes."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return list(self.commands)  # in the order they were added: by task, not alphabetically

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except (click.ClickException, click.exceptions.Exit, click.Abort):
            raise
        except Exception as exc:
            error = errorFor(exc)
            if error is None:
                raise
            raise error from exc


class App:
    """Per-invocation state: the user config and the group-level options."""

    def __init__(self, queue: str | None = None, color: str | None = None) -> None:
        self.queueOption = queue
        self.config: UserConfig = loadConfig()
        self.colorOption = color
        for warning in self.config.warnings:
            click.echo(f"jobtree: warning: {warning}", err=True)

    # -- the queue -------------------------------------------------------------------------------

    def queueLocation(self, explicit: str | None = None) -> tuple[str, str]:
        """(queue path, where it came from): --queue of the command, then of ``jobtree``, then
        $JOBTREE_QUEUE, then the config file."""
        for value, source in (
            (explicit, "--queue"),
            (self.queueOption, "--queue"),
            (os.environ.get(QUEUE_ENV) or None, f"${QUEUE_ENV}"),
            (self.config.queue, f"config file {self.config.path}"),
        ):
            if value:
                return os.path.abspath(os.path.expanduser(value)), source
        raise CliError(
            f'no queue given: pass --queue PATH, set ${QUEUE_ENV}, or put queue = "PATH" '
            f"in {configPath()}",
            Exit.NO_QUEUE,
        )

    def queue(self, explicit: str | None = None) -> JobQueue:
        location, source = self.queueLocation(explicit)
        return openQueue(location, source)

    # -- output ----------------------------------------------------------------------------------

    @property
    def color(self) -> str:
        return self.colorOption or self.config.color

    def console(self, stderr: bool = False) -> Console:
        color = self.color
        stream = sys.stderr if stderr else sys.stdout
        width = None
        if not isatty(stream):
            # Piped output is read by people with wide windows and by grep: do not wrap at 80.
            columns = os.environ.get("COLUMNS", "")
            width = int(columns) if columns.isdigit() and int(columns) > 0 else 200
        return Console(
            file=stream,
            stderr=stderr,
            no_color=color == "never" or None,
            force_terminal=True if color == "always" else None,
            color_system="auto" if color != "never" else None,
            highlight=False,
            width=width,
            soft_wrap=False,
        )

    def print(self, *renderables: Any) -> None:
        """Print to stdout; piped output loses the padding rich adds at the ends of lines."""
        console = self.console()
        group = Group(*renderables)
        if console.is_terminal:
            console.print(group)
            return
        with console.capture() as capture:
            console.print(group)
        text = "\n".join(line.rstrip() for line in capture.get().splitlines())
        click.echo(text)


def isatty(stream: Any) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):
        return False


def openQueue(location: str, source: str = "--queue") -> JobQueue:
    """JobQueue(location) with errors that say where the path came from."""
    if not os.path.exists(location):
        raise CliError(f"queue {location} does not exist (from {source})", Exit.NO_QUEUE)
    if not os.path.isdir(location):
        raise CliError(f"queue {location} is not a directory (from {source})", Exit.NO_QUEUE)
    if not os.path.exists(os.path.join(location, L.QUEUE_FILE)):
        raise CliError(
            f"{location} is not a jobtree queue (no {L.QUEUE_FILE}; from {source}); "
            f"create one with: jobtree init {location}",
            Exit.NO_QUEUE,
        )
    try:
        return JobQueue(location)
    except CorruptJob as exc:
        raise CliError(str(exc), Exit.NO_QUEUE) from None


def app(ctx: click.Context | None = None) -> App:
    """The App of the running command (created on first use, also under shell completion)."""
    ctx = ctx or click.get_current_context()
    root = ctx.find_root()
    if not isinstance(root.obj, App):
        root.obj = App()
    return root.obj


def printJson(data: Any) -> None:
    click.echo(json.dumps(data, indent=2, ensure_ascii=False, default=str))


# -- common options ------------------------------------------------------------------------------


def queueOption(f: F) -> F:
    return click.option(
        "-q",
        "--queue",
        "queuePath",
        metavar="PATH",
        help=f"The queue (default: jobtree --queue, ${QUEUE_ENV}, or queue in the config file).",
        type=click.Path(file_okay=False),
    )(f)


def jsonOption(f: F) -> F:
    return click.option(
        "--json", "asJson", is_flag=True, help="Print machine-readable JSON (see docs/cli.md)."
    )(f)
