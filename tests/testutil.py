"""Helpers shared by the test modules (plain functions; fixtures live in conftest.py)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

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
