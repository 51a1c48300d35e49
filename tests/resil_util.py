"""Helpers of the resilience, chaos, bad-input and security tests (plain functions and classes;
each test module defines its own fixtures from these)."""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import testutil
from testutil import TESTS_DIR, require, require_tool, subprocess_env

RESIL_WORKER = TESTS_DIR / "resil_worker.py"


def require_root() -> None:
    require(os.geteuid() == 0, "this test needs root (mounts, setuid)")


class Proc(testutil.Proc):
    """``python ARGV`` as a :class:`testutil.Proc`: output in *tmp_path*, run in ``/`` with
    subprocess_env() updated with *env*; its whole process group is SIGKILLed on kill() (and by
    the Spawner at teardown)."""

    def __init__(
        self,
        tmp_path: Path,
        name: str,
        argv: Sequence[str],
        env: dict[str, str] | None = None,
    ) -> None:
        full_env = subprocess_env()
        full_env.update(env or {})
        super().__init__(tmp_path, name, [sys.executable, *argv], full_env, cwd="/")
        self.started = time.time()

    def signal(self, sig: int) -> None:
        os.kill(self.pid, sig)


class Spawner:
    """Starts Procs; every one still running at teardown is killed with its process group."""

    def __init__(self, tmp_path: Path) -> None:
        self.tmp_path = tmp_path
        self.procs: list[Proc] = []

    def script(self, script: str | Path, *args: Any, name: str | None = None, **kw: Any) -> Proc:
        p = Proc(
            self.tmp_path,
            name or f"proc{len(self.procs)}",
            [str(script), *(str(a) for a in args)],
            **kw,
        )
        self.procs.append(p)
        return p

    def worker(self, queue_dir: Any, *args: Any, name: str | None = None, **kw: Any) -> Proc:
        """A resil_worker.py process on ``queue_dir``."""
        return self.script(
            RESIL_WORKER, str(queue_dir), *args, name=name or f"worker{len(self.procs)}", **kw
        )

    def python(self, code: str, *args: Any, name: str | None = None, **kw: Any) -> Proc:
        p = Proc(self.tmp_path, name or f"py{len(self.procs)}", ["-c", code, *map(str, args)], **kw)
        self.procs.append(p)
        return p

    def close(self) -> None:
        for p in self.procs:
            p.kill()


@contextlib.contextmanager
def spawner(tmp_path: Path) -> Iterator[Spawner]:
    s = Spawner(tmp_path)
    try:
        yield s
    finally:
        s.close()


# -- processes -------------------------------------------------------------------------------


def read_pid(path: Path) -> int:
    return int(path.read_text().strip())


# -- mounts ----------------------------------------------------------------------------------


@contextlib.contextmanager
def tmpfs(mountpoint: Path, size: str = "2m", mode: str = "0755") -> Iterator[Path]:
    """Mount a tmpfs of ``size`` on ``mountpoint`` (created) for the block; unmounted after."""
    require_root()
    require_tool("mount", "mount")
    mountpoint.mkdir(parents=True, exist_ok=True)
    r = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size},mode={mode}", "tmpfs", str(mountpoint)],
        capture_output=True,
        text=True,
    )
    require(r.returncode == 0, f"cannot mount a tmpfs here: {r.stderr.strip()}")
    try:
        yield mountpoint
    finally:
        # A remount to read-write first, so that a read-only test leaves nothing behind; lazy
        # unmount as a fallback if something still holds it.
        subprocess.run(["mount", "-o", "remount,rw", str(mountpoint)], capture_output=True)
        r = subprocess.run(["umount", str(mountpoint)], capture_output=True, text=True)
        if r.returncode != 0:
            subprocess.run(["umount", "-l", str(mountpoint)], capture_output=True)


def remount(mountpoint: Path, how: str) -> None:
    subprocess.run(["mount", "-o", f"remount,{how}", str(mountpoint)], check=True)


# -- the queue on disk -----------------------------------------------------------------------


def index_tokens(root_dir: str | os.PathLike[str]) -> dict[str, list[str]]:
    """{index directory: sorted token names} of a root, temporary names included."""
    idx = Path(root_dir) / "_index"
    return {d.name: sorted(os.listdir(d)) for d in sorted(idx.iterdir()) if d.is_dir()}


def read_json(path: str | os.PathLike[str]) -> Any:
    return json.loads(Path(path).read_text())


def attempt_record(job_dir: str | os.PathLike[str], n: int) -> dict[str, Any]:
    return read_json(Path(job_dir) / f"attempt.{n}.json")


def all_handles(queue: Any) -> list[Any]:
    """Every job of every root, pre-order."""
    out = []
    stack = list(reversed(queue.listJobs()))
    while stack:
        h = stack.pop()
        out.append(h)
        stack.extend(reversed(h.listSubJobs()))
    return out


def drain(queue: Any, timeout: float = 30.0) -> int:
    """Run jobs in this process until the queue is idle and not merely waiting for a retry
    delay; returns how many ran."""
    from jobtree import IdleReason

    n = 0
    deadline = time.monotonic() + timeout
    while True:
        if queue.runNextAvailableJob():
            n += 1
            continue
        if queue.idleReason() != IdleReason.DELAYED:
            return n
        assert time.monotonic() < deadline, "queue still delayed after the deadline"
        time.sleep(0.05)
