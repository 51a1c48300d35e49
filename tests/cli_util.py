"""Helpers of test_cli.py: run the `jobtree` command in-process (CliRunner) or as a subprocess."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

from click.testing import CliRunner, Result
from testutil import subprocess_env

from jobtree import JobQueue
from jobtree.cli import cli

COMMAND_TYPE = "command"


def jobtree(*args: Any, code: int | None = 0, input: str | None = None) -> Result:
    """Run `jobtree ARGS` in this process; check its exit code (None: any)."""
    result = CliRunner().invoke(
        cli, [str(a) for a in args], input=input, catch_exceptions=False, prog_name="jobtree"
    )
    if code is not None:
        assert result.exit_code == code, (
            f"jobtree {' '.join(map(str, args))} exited {result.exit_code}, expected {code}\n"
            f"stdout: {result.stdout}\nstderr: {result.stderr}"
        )
    return result


def jobtree_json(*args: Any, code: int = 0) -> Any:
    """Run `jobtree ARGS --json` and parse its output (--json goes before a `--`)."""
    items = list(args)
    at = items.index("--") if "--" in items else len(items)
    return json.loads(jobtree(*items[:at], "--json", *items[at:], code=code).stdout)


def executable() -> list[str]:
    """The installed `jobtree` script, else `python -m jobtree.cli`."""
    exe = shutil.which("jobtree")
    return [exe] if exe else [sys.executable, "-m", "jobtree.cli"]


def run_exe(
    *args: Any, env: dict[str, str] | None = None, timeout: float = 30
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*executable(), *map(str, args)],
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**subprocess_env(), **(env or {})},
        check=False,
    )


def run_jobs(queue: str | os.PathLike[str], limit: int = 1000) -> int:
    """Run jobs in this process until none is runnable; how many ran."""
    q = JobQueue(queue)
    n = 0
    while q.runNextAvailableJob():
        n += 1
        assert n < limit
    return n


def run_one(queue: str | os.PathLike[str]) -> bool:
    return JobQueue(queue).runNextAvailableJob()


def submit_command(queue: Path, *command: str, options: tuple[str, ...] = ()) -> str:
    """Submit a command with the quick form; its short id."""
    data = jobtree_json("submit", queue, *options, "--", *command)
    return str(data["roots"][0]["id"])


def write_tree(path: Path, data: Any) -> Path:
    path.write_text(json.dumps(data))
    return path


def cmd_job(label: str, *argv: str, **extra: Any) -> dict[str, Any]:
    """A job of a submission file that runs argv with the Command procedure."""
    job: dict[str, Any] = {"jobType": COMMAND_TYPE, "label": label}
    if argv:
        job["params"] = {"commands": [list(argv)]}
    job.update(extra)
    return job
