"""The ``jobtree`` command line (docs/cli.md).

Every command is a thin layer over the jobtree API; the exit codes are in :class:`Exit`.
"""

from __future__ import annotations

from collections.abc import Sequence

import click

from ._app import App, Exit, JobtreeGroup
from ._cmd_blender import blenderAddon
from ._cmd_control import cancel, pause, priority, resume, retry, rm
from ._cmd_demo import demo
from ._cmd_farm import limit, schedule
from ._cmd_logs import logs
from ._cmd_queue import archive, check, configCmd, init, stats
from ._cmd_submit import submit
from ._cmd_top import top
from ._cmd_view import ls, show, tree
from ._cmd_workers import gui, worker, workers

__all__ = ["Exit", "cli", "main"]

CONTEXT_SETTINGS = {"help_option_names": ["-h", "--help"], "max_content_width": 100}


@click.group(cls=JobtreeGroup, context_settings=CONTEXT_SETTINGS)
@click.option(
    "-q",
    "--queue",
    metavar="PATH",
    type=click.Path(file_okay=False),
    help="The queue of every command below (default: $JOBTREE_QUEUE, then the config file).",
)
@click.option(
    "--color",
    type=click.Choice(["auto", "always", "never"]),
    help="Colour output (default: the config file's color, else auto).",
)
@click.option("--no-color", is_flag=True, help="Same as --color never.")
@click.version_option(package_name="jobtree-farm", prog_name="jobtree")
@click.pass_context
def cli(ctx: click.Context, queue: str | None, color: str | None, no_color: bool) -> None:
    """Run trees of jobs through a shared directory: submit, watch and steer them, and start
    workers. Jobs are addressed by short id (3fa9c1), with a sub-job path (3fa9c1:0002.0000),
    or by directory. See docs/cli.md."""
    ctx.obj = App(queue=queue, color="never" if no_color else color)


for command in (
    demo,
    init,
    submit,
    ls,
    tree,
    show,
    logs,
    retry,
    cancel,
    pause,
    resume,
    rm,
    priority,
    limit,
    schedule,
    workers,
    stats,
    top,
    check,
    worker,
    gui,
    archive,
    configCmd,
    blenderAddon,
):
    cli.add_command(command)


def main(args: Sequence[str] | None = None) -> None:
    """The console script ``jobtree``."""
    cli.main(args=list(args) if args is not None else None, prog_name="jobtree")
