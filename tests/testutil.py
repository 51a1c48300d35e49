"""Helpers shared by the test modules (plain functions; fixtures live in conftest.py)."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, TypeVar

import psutil
import pytest

TESTS_DIR = Path(__file__).resolve().parent
WORKER_SCRIPT = TESTS_DIR / "worker_for_tests.py"

T = TypeVar("T")


def subprocess_env() -> dict[str, str]:
    """os.environ with tests/ first on PYTHONPATH, so that workers import procs_for_tests."""
    env = dict(os.environ)
    paths = [str(TESTS_DIR)]
    if env.get("PYTHONPATH"):
        paths.append(env["PYTHONPATH"])
    env["PYTHONPATH"] = os.pathsep.join(paths)
    env["PYTHONUNBUFFERED"] = "1"
    return env


def wait_for(
    predicate: Callable[[], T], timeout: float = 10.0, what: str = "condition", interval=0.01
) -> T:
    """Poll ``predicate`` until it returns something truthy; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        result = predicate()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(interval)


def read_records(path: str | os.PathLike[str]) -> list[dict[str, Any]]:
    """The JSON lines of a record file; [] if it does not exist."""
    try:
        text = Path(path).read_text()
    except FileNotFoundError:
        return []
    return [json.loads(line) for line in text.splitlines() if line]


def run_all(queue: Any, limit: int = 100_000) -> int:
    """Run jobs in this process until none is available; return how many ran."""
    n = 0
    while queue.runNextAvailableJob():
        n += 1
        assert n < limit, "runNextAvailableJob() keeps returning True"
    return n


def python_cmd(*args: str) -> list[str]:
    return [sys.executable, *args]


def require(ok: bool, what: str) -> None:
    """Skip a test that cannot run here; fail it instead when JOBTREE_REQUIRE_ALL=1 (CI)."""
    if ok:
        return
    if os.environ.get("JOBTREE_REQUIRE_ALL") == "1":
        pytest.fail(f"JOBTREE_REQUIRE_ALL=1 but {what}")
    pytest.skip(what)


def require_tool(name: str, package: str) -> str:
    """The path of the program *name*; skip (fail in CI) when it is not installed."""
    path = shutil.which(name)
    require(path is not None, f"{name!r} is not installed (Debian package {package})")
    assert path is not None
    return path


def run_daemon(queue: Any, *args: str, timeout: float = 120.0) -> subprocess.CompletedProcess[str]:
    """Run ``python -m jobtree.worker QUEUE --burst --allow-root ARGS`` until the queue has
    nothing left; fail the test with the daemon's output unless it exits 0."""
    location = str(getattr(queue, "location", queue))
    done = subprocess.run(
        [sys.executable, "-m", "jobtree.worker", location, "--burst", "--allow-root", *args],
        env=subprocess_env(),
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return done


def pid_alive(pid: int) -> bool:
    """True while *pid* exists and is not a zombie (a killed process whose parent has not reaped
    it yet is dead for our purposes)."""
    try:
        return psutil.Process(pid).status() not in (psutil.STATUS_ZOMBIE, psutil.STATUS_DEAD)
    except psutil.NoSuchProcess:
        return False


def descendants(pid: int) -> list[int]:
    """Every process below *pid* (children, theirs, ...); [] once *pid* is gone."""
    try:
        return [p.pid for p in psutil.Process(pid).children(recursive=True)]
    except psutil.NoSuchProcess:
        return []


def command_lines() -> dict[int, list[str]]:
    """The command line of every process but this one, by pid (processes whose command line
    cannot be read are left out)."""
    found = {}
    for p in psutil.process_iter(["cmdline"]):
        argv = p.info["cmdline"]
        if argv and p.pid != os.getpid():
            found[p.pid] = argv
    return found


class Proc:
    """A subprocess in its own session, stdin from /dev/null, its output in the files
    ``LOGS/NAME.stdout`` and ``LOGS/NAME.stderr``; kill() SIGKILLs its whole process group.
    *argv* and *env* are passed whole; *cwd* None runs it in this process's directory."""

    def __init__(
        self,
        logs: Path,
        name: str,
        argv: Sequence[str],
        env: Mapping[str, str],
        cwd: str | os.PathLike[str] | None = None,
    ) -> None:
        self.name = name
        self.stdout_path = logs / f"{name}.stdout"
        self.stderr_path = logs / f"{name}.stderr"
        with self.stdout_path.open("wb") as out, self.stderr_path.open("wb") as err:
            self.proc = subprocess.Popen(
                list(argv),
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=err,
                env=env,
                cwd=cwd,
                start_new_session=True,
            )
        self.pid = self.proc.pid

    def describe(self) -> str:
        """This process in failure messages."""
        return f"{self.name} (pid {self.pid})"

    def _output_tails(self) -> str:
        return f"stdout (end):\n{self.stdout[-2000:]}\nstderr (end):\n{self.stderr[-3000:]}"

    def poll(self) -> int | None:
        return self.proc.poll()

    def wait(self, timeout: float = 60.0) -> int:
        """Wait for the process; on timeout kill its process group and fail with its output."""
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            raise AssertionError(
                f"{self.describe()} still running after {timeout} s; killed.\n"
                + self._output_tails()
            ) from None

    def kill(self) -> None:
        """SIGKILL the process group (unless the process has exited) and reap the process."""
        if self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.pid, signal.SIGKILL)
        self.proc.wait()

    def wait_for_file(self, path: Path, timeout: float = 30.0) -> None:
        """Wait until ``path`` exists; fail at once (with the output) if the process exits."""
        deadline = time.monotonic() + timeout
        while not path.exists():
            if self.proc.poll() is not None:
                raise AssertionError(
                    f"{self.describe()} exited {self.proc.returncode} before {path} appeared.\n"
                    + self._output_tails()
                )
            if time.monotonic() > deadline:
                raise AssertionError(
                    f"{path} did not appear within {timeout} s ({self.describe()} still running)"
                )
            time.sleep(0.005)

    @property
    def stdout(self) -> str:
        return self.stdout_path.read_text(errors="replace")

    @property
    def stderr(self) -> str:
        return self.stderr_path.read_text(errors="replace")
