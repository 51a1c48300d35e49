"""jobtree logs: a job's output, and following it while it runs."""

from __future__ import annotations

import os
import sys
import time
from typing import IO

import click
from rich.progress import BarColumn, Progress, TaskID, TextColumn
from rich.text import Text

from .. import _fs
from .. import _layout as L
from ..errors import JobNotFound
from ..handle import JobHandle
from ..state import JobState
from ._address import JobAddress, handleAddress, resolveJob
from ._app import CliError, Exit, app, isatty, jsonOption, printJson, queueOption

POLL_SECONDS = 0.2
STATUS_WIDTH = 40
FINISHED = (JobState.DONE, JobState.FAILED, JobState.CANCELLED)


@click.command()
@click.argument("job", type=JobAddress())
@queueOption
@click.option(
    "-f", "--follow", is_flag=True, help="Keep printing new output until the job finishes."
)
@click.option(
    "--stderr", "useStderr", is_flag=True, help="The job's standard error instead of its output."
)
@click.option(
    "-a", "--attempt", type=click.IntRange(min=1), help="This attempt (default: the latest)."
)
@jsonOption
def logs(
    job: str,
    queuePath: str | None,
    follow: bool,
    useStderr: bool,
    attempt: int | None,
    asJson: bool,
) -> None:
    """Print a job's output (stdout; --stderr for its standard error) of its latest attempt.

    With -f, follow a job until it finishes, across retries; exit 0 if it is done, 1 if it
    failed, was cancelled or is blocked.
    """
    if follow and asJson:
        raise CliError("--json cannot be combined with --follow", Exit.USAGE)
    h = resolveJob(job, queuePath)
    stream = "stderr" if useStderr else "stdout"
    latest = h.attempts
    if attempt is not None and attempt > latest and not (follow and attempt == latest + 1):
        raise CliError(
            f"job {handleAddress(h)} has no attempt {attempt} (it was started {latest} time(s))",
            Exit.NO_JOB,
        )
    if follow:
        state = _follow(h, stream, attempt)
        if state is not JobState.DONE:
            raise click.exceptions.Exit(int(Exit.FAILED))
        return
    n = attempt or latest
    data = _read(h, stream, n, 0) if n else b""
    if asJson:
        printJson(
            {
                "id": handleAddress(h),
                "location": h.location,
                "attempt": n,
                "stream": stream,
                "bytes": len(data),
                "text": data.decode("utf-8", "replace"),
            }
        )
        return
    if not n:
        click.echo(f"job {handleAddress(h)} has not run yet", err=True)
        return
    sys.stdout.flush()  # text already printed must come before the raw bytes
    sys.stdout.buffer.write(data)
    sys.stdout.buffer.flush()


def _read(h: JobHandle, stream: str, attempt: int, pos: int) -> bytes:
    path = os.path.join(h.location, L.logFile(stream, attempt))
    try:
        with open(path, "rb") as f:
            f.seek(pos)
            return f.read()
    except OSError as exc:
        if _fs.isGone(exc):
            return b""
        raise


class _Output:
    """Raw bytes to stdout; on a terminal, whole lines above a live progress bar."""

    def __init__(self, h: JobHandle) -> None:
        self.raw: IO[bytes] = sys.stdout.buffer
        self.live = isatty(sys.stdout) and isatty(sys.stderr)
        self.pending = b""
        self.progress: Progress | None = None
        self.task: TaskID | None = None
        if self.live:
            self.progress = Progress(
                TextColumn("[bold]{task.description}"),
                BarColumn(bar_width=20),
                TextColumn("{task.percentage:>3.0f}%"),
                TextColumn("{task.fields[status]}", style="italic"),
                console=app().console(),
                transient=True,
            )
            self.task = self.progress.add_task(handleAddress(h), total=100, status="")
            self.progress.start()

    def write(self, data: bytes) -> None:
        if not data:
            return
        if self.progress is None:
            self.raw.write(data)
            self.raw.flush()
            return
        *lines, self.pending = (self.pending + data).split(b"\n")
        for line in lines:
            self.progress.console.print(
                Text(line.decode("utf-8", "replace")), soft_wrap=True, highlight=False
            )

    def note(self, text: str) -> None:
        if self.progress is not None:
            self.progress.console.print(Text(text, style="dim"))
        else:
            click.echo(text, err=True)

    def update(self, progress: float, status: str) -> None:
        if self.progress is not None and self.task is not None:
            short = status if len(status) <= STATUS_WIDTH else status[: STATUS_WIDTH - 1] + "…"
            self.progress.update(self.task, completed=progress, status=short)

    def close(self) -> None:
        if self.progress is not None:
            if self.pending:
                self.progress.console.print(Text(self.pending.decode("utf-8", "replace")))
            self.progress.stop()


def _follow(h: JobHandle, stream: str, fixed: int | None) -> JobState:
    out = _Output(h)
    n = fixed or h.attempts
    pos = 0
    announced = False
    try:
        while True:
            try:
                state = h.state
                latest = h.attempts
                progress, status = h.progress, h.statusLine
            except JobNotFound:
                raise CliError(
                    f"job {handleAddress(h)} was deleted while its log was followed", Exit.NO_JOB
                ) from None
            if n:
                data = _read(h, stream, n, pos)
                pos += len(data)
                out.write(data)
            if fixed is None and latest > n:
                if n:
                    out.note(f"--- {handleAddress(h)}: attempt {latest} ---")
                n, pos = latest, 0
                continue
            done = state in FINISHED or state is JobState.BLOCKED
            if fixed is not None and latest > fixed:
                done = True
            if done:
                if n:
                    out.write(_read(h, stream, n, pos))
                if state is not JobState.DONE:
                    out.note(f"job {handleAddress(h)} is {state.value}")
                return state
            if not n and not announced:
                out.note(f"job {handleAddress(h)} is {state.value}; waiting for it to start")
                announced = True
            out.update(progress, status)
            time.sleep(POLL_SECONDS)
    except KeyboardInterrupt:
        raise click.exceptions.Exit(int(Exit.INTERRUPTED)) from None
    finally:
        out.close()
