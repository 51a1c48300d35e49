from __future__ import annotations

import os
import signal
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

TESTS_DIR = str(Path(__file__).resolve().parent)
if TESTS_DIR not in sys.path:
    # Test modules import procs_for_tests and testutil by name; workers get it via PYTHONPATH.
    sys.path.insert(0, TESTS_DIR)

from testutil import WORKER_SCRIPT, Proc, subprocess_env  # noqa: E402

import jobtree  # noqa: E402

LEAK_GRACE = 5.0  # seconds a thread or child may take to finish after its test

# A shell without job control starts background commands (`python -m pytest &`, nohup, some CI
# runners) with SIGINT ignored, and exec'd children inherit "ignored": the tests' Ctrl-C would
# then never reach the demo or a worker. A handler (unlike SIG_IGN) is reset to the default by
# exec, so with one installed here every child starts with Ctrl-C working, as in a terminal.
signal.signal(signal.SIGINT, signal.default_int_handler)


@pytest.fixture
def queue(tmp_path: Path) -> jobtree.JobQueue:
    return jobtree.createJobQueue(tmp_path / "q")


def _has_children() -> bool:
    try:
        pid, _ = os.waitpid(-1, os.WNOHANG)
    except ChildProcessError:
        return False
    if pid:
        # A zombie nobody waited for: reap it and report it as a leak.
        raise AssertionError(f"child process {pid} exited but was never waited for")
    return True


@pytest.fixture(autouse=True)
def _no_leaks() -> Iterator[None]:
    """Fail a test that leaves non-daemon threads or child processes behind."""
    threads_before = set(threading.enumerate())
    try:
        children_before = _has_children()
    except AssertionError:  # an earlier zombie, now reaped: not this test's doing
        children_before = False
    yield
    deadline = time.monotonic() + LEAK_GRACE
    problems = []
    for t in threading.enumerate():
        if t in threads_before or t.daemon:
            continue
        t.join(max(0.0, deadline - time.monotonic()))
        if t.is_alive():
            problems.append(f"leaked non-daemon thread {t!r}")
    if not children_before:
        try:
            while _has_children():
                if time.monotonic() > deadline:
                    kids = [p.pid for p in psutil.Process().children()]
                    for pid in kids:
                        try:
                            os.kill(pid, signal.SIGKILL)
                            os.waitpid(pid, 0)
                        except (ProcessLookupError, ChildProcessError):
                            pass
                    problems.append(f"leaked child processes {kids} (killed)")
                    break
                time.sleep(0.01)
        except AssertionError as e:
            problems.append(str(e))
    if problems:
        pytest.fail("; ".join(problems))


@pytest.fixture
def spawn_worker(tmp_path: Path) -> Iterator[object]:
    """``spawn_worker(*args)`` starts worker_for_tests.py (a :class:`testutil.Proc` with its
    output in tmp_path); leftovers are killed at teardown."""
    workers: list[Proc] = []

    def spawn(*args: str) -> Proc:
        argv = [sys.executable, str(WORKER_SCRIPT), *(str(a) for a in args)]
        w = Proc(tmp_path, f"worker{len(workers)}", argv, subprocess_env())
        workers.append(w)
        return w

    yield spawn
    for w in workers:
        w.kill()


# -- the command line ---------------------------------------------------------------------------


@pytest.fixture
def cli_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """For `jobtree` command tests (``pytestmark = pytest.mark.usefixtures("cli_env")``):
    workers may run as root; no user config, queue or colour from the machine running them."""
    monkeypatch.setenv("JOBTREE_ALLOW_ROOT", "1")
    monkeypatch.setenv("JOBTREE_CONFIG", str(tmp_path / "config.toml"))
    for var in ("JOBTREE_QUEUE", "NO_COLOR", "FORCE_COLOR", "JOBTREE_POOL", "JOBTREE_TAGS"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.chdir(tmp_path)


@pytest.fixture
def q(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, cli_env: None) -> Path:
    """A queue made by `jobtree init`, and the default queue of every command ($JOBTREE_QUEUE)."""
    from cli_util import jobtree as run_jobtree

    path = tmp_path / "q"
    run_jobtree("init", path)
    monkeypatch.setenv("JOBTREE_QUEUE", str(path))
    return path
