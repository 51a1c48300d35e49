"""Helpers shared by the jobtree benchmarks (not part of the library).

Rules these helpers enforce (see shared FACTS, "the disk remembers what you deleted"):

- scratch trees live under ``--dir`` (default /var/tmp, never tmpfs) and are removed only at the
  very end of a run (or never, with ``--keep``), so no deletion slows a later measurement;
- every figure is compared against a same-run anchor and configurations are measured alternately;
- ``os.sync()`` runs before each timed section.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import shutil
import socket
import statistics
import sys
import tempfile
import time
import traceback
from collections.abc import Callable, Iterable
from typing import Any

BENCH_DIR = os.path.dirname(os.path.abspath(__file__))
REPO_DIR = os.path.dirname(BENCH_DIR)

if BENCH_DIR not in sys.path:
    sys.path.insert(0, BENCH_DIR)

NOT_LOCAL = {"tmpfs", "ramfs", "nfs", "nfs4", "cifs", "smb3", "fuse.sshfs", "9p", "overlay"}


# --------------------------------------------------------------------------- environment


def fs_type(path: str) -> str:
    """File system type of the mount holding ``path`` (from /proc/self/mounts)."""
    path = os.path.realpath(path)
    best, typ = "", "?"
    try:
        with open("/proc/self/mounts") as f:
            for line in f:
                parts = line.split()
                if len(parts) < 3:
                    continue
                mnt = parts[1].replace("\\040", " ")
                prefix = mnt.rstrip("/") + "/"
                if (path == mnt or path.startswith(prefix)) and len(mnt) >= len(best):
                    best, typ = mnt, parts[2]
    except OSError:
        pass
    return typ


def default_parent() -> str:
    for cand in ("/var/tmp", os.getcwd()):
        if (
            os.path.isdir(cand)
            and os.access(cand, os.W_OK)
            and fs_type(cand) not in ("tmpfs", "ramfs")
        ):
            return cand
    return os.getcwd()


def loadavg() -> str:
    try:
        return " ".join(f"{x:.2f}" for x in os.getloadavg())
    except OSError:
        return "?"


def other_busy_processes() -> int:
    """Number of runnable tasks on the machine (from /proc/loadavg), a noise indicator."""
    try:
        with open("/proc/loadavg") as f:
            return int(f.read().split()[3].split("/")[0])
    except (OSError, ValueError, IndexError):
        return -1


# --------------------------------------------------------------------------- arguments


def common_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--dir",
        default=None,
        help="parent directory for the scratch tree (default: /var/tmp, else the cwd; "
        "never tmpfs). A new directory is made inside it.",
    )
    parser.add_argument(
        "--keep",
        action="store_true",
        help="do not delete the scratch tree at the end (run_all.sh deletes it once, after all runs)",
    )
    parser.add_argument(
        "--strict",
        action="store_true",
        help="exit 1 when a target is missed (default: always exit 0)",
    )


# --------------------------------------------------------------------------- scratch


class Scratch:
    """A scratch directory that is deleted only at the very end of the run."""

    def __init__(self, name: str, parent: str | None, keep: bool) -> None:
        parent = parent or default_parent()
        os.makedirs(parent, exist_ok=True)
        self.path = tempfile.mkdtemp(prefix=f"jobtree-bench-{name}-", dir=parent)
        self.keep = keep
        self.fstype = fs_type(self.path)
        print(f"scratch: {self.path} (file system: {self.fstype})")
        if self.fstype in NOT_LOCAL:
            print(
                f"NOTE: {self.fstype} is not a local disk; the targets are defined for local disk."
            )

    def sub(self, *names: str) -> str:
        return os.path.join(self.path, *names)

    def cleanup(self) -> None:
        if self.keep:
            print(f"scratch kept: {self.path}")
            return
        t0 = time.monotonic()
        shutil.rmtree(self.path, ignore_errors=True)
        print(
            f"scratch removed: {self.path} ({time.monotonic() - t0:.1f} s). NOTE: file creation on "
            "this disk may be slow for a few minutes after a large deletion."
        )


def count_entries(top: str) -> tuple[int, int]:
    """(directories, non-directories) below ``top``, not counting ``top`` itself."""
    dirs = files = 0
    stack = [top]
    while stack:
        d = stack.pop()
        with os.scandir(d) as it:
            for e in it:
                if e.is_dir(follow_symlinks=False):
                    dirs += 1
                    stack.append(e.path)
                else:
                    files += 1
    return dirs, files


# --------------------------------------------------------------------------- anchors


def plain_pairs(base: str, n: int, payload: bytes = b'{"jobType": "benchprocs:NoOp"}\n') -> float:
    """The plain loop: ``n`` times one mkdir + one small file in it. Returns seconds."""
    os.makedirs(base, exist_ok=True)
    t0 = time.perf_counter()
    for i in range(n):
        d = f"{base}/{i:06d}"
        os.mkdir(d)
        with open(f"{d}/job.json", "wb") as f:
            f.write(payload)
    return time.perf_counter() - t0


def disk_anchor(scratch: Scratch, tag: str, n: int = 2000) -> float:
    """Rate of the plain mkdir+file loop right now: tells whether the disk is in its slow state."""
    os.sync()
    dt = plain_pairs(scratch.sub(f"anchor-{tag}"), n)
    rate = n / dt
    note = ""
    if rate < 3000:
        note = "  <-- SLOW: the disk is probably still recovering from a large deletion; figures are suspect"
    print(
        f"disk anchor ({tag}): plain mkdir+file loop {rate:,.0f} pairs/s "
        f"(FACTS: healthy ~12,000/s, after a mass deletion ~650/s); load average {loadavg()}{note}"
    )
    return rate


# --------------------------------------------------------------------------- statistics / report


def median(xs: Iterable[float]) -> float:
    return statistics.median(list(xs))


def percentile(xs: list[float], p: float) -> float:
    s = sorted(xs)
    if not s:
        return float("nan")
    k = min(len(s) - 1, max(0, round(p / 100 * (len(s) - 1))))
    return s[k]


class Report:
    def __init__(self, title: str) -> None:
        self.title = title
        self.results: list[tuple[str, bool]] = []
        print(f"== {title} ==")
        print(
            f"python {sys.version.split()[0]}, host {socket.gethostname()}, {os.cpu_count()} cpus, "
            f"load average {loadavg()}"
        )

    def target(self, name: str, ok: bool, detail: str) -> None:
        self.results.append((name, ok))
        print(f"{'PASS' if ok else 'FAIL'}: {name}: {detail}")

    def finish(self, strict: bool) -> int:
        failed = [n for n, ok in self.results if not ok]
        print(
            f"summary: {len(self.results) - len(failed)} of {len(self.results)} targets met"
            + (f" (missed: {', '.join(failed)})" if failed else "")
            + f"; load average at end {loadavg()}"
        )
        return 1 if (strict and failed) else 0


# --------------------------------------------------------------------------- worker processes


def _put_result(out: Any, result: dict[str, Any]) -> None:
    out.put(json.dumps(result))


def jobtree_drain_worker(
    path: str, barrier: Any, out: Any, timeout: float, progress_every: int = 0
) -> None:
    """Loop on runNextAvailableJob until the queue has nothing left for anyone."""
    result: dict[str, Any] = {"kind": "jobtree", "pid": os.getpid(), "n": 0, "polls": 0}
    try:
        if BENCH_DIR not in sys.path:
            sys.path.insert(0, BENCH_DIR)
        import jobtree

        q = jobtree.JobQueue(path)
        barrier.wait(timeout=120)
        t0 = time.monotonic()
        deadline = t0 + timeout
        n = polls = blocked_glitches = 0
        blocked_since: float | None = None
        status = "?"
        while True:
            if q.runNextAvailableJob():
                n += 1
                if progress_every and n % progress_every == 0:
                    print(
                        f"  [worker {os.getpid()}] {n:,} jobs run, {time.monotonic() - t0:.1f} s",
                        flush=True,
                    )
                continue
            reason = q.idleReason()
            if reason != jobtree.IdleReason.BLOCKED:
                blocked_since = None
            if reason is None:
                continue
            if reason == jobtree.IdleReason.RUNNING:
                # the other worker runs the last child(ren); our next job (the parent) follows
                polls += 1
                if time.monotonic() > deadline:
                    status = "timeout"
                    break
                time.sleep(0.0002)
                continue
            if reason == jobtree.IdleReason.BLOCKED:
                # Nothing fails in a no-op drain, so "blocked" is a glitch of the library (seen
                # while another worker takes a job over). Keep polling for a while: stop only if
                # it lasts, so that the drain still completes; the glitches are reported.
                if blocked_since is None:
                    blocked_since = time.monotonic()
                    blocked_glitches += 1
                if time.monotonic() - blocked_since < 5.0:
                    polls += 1
                    time.sleep(0.001)
                    continue
            status = str(getattr(reason, "value", reason))
            break
        t1 = time.monotonic()
        if blocked_glitches:
            status += f" (idleReason() said 'blocked' {blocked_glitches} time(s) during the drain)"
        result.update(n=n, polls=polls, t0=t0, t1=t1, status=status)
    except BaseException:
        result["error"] = traceback.format_exc()
    _put_result(out, result)


DIRQ_SCHEMA = {"body": "string"}


def open_dirq(path: str, kind: str) -> Any:
    """dirq queue object: kind "simple" (QueueSimple, the reference) or "queue" (dirq.queue.Queue)."""
    if kind == "simple":
        from dirq.QueueSimple import QueueSimple

        return QueueSimple(path)
    from dirq.queue import Queue

    return Queue(path, schema=DIRQ_SCHEMA)


def dirq_drain_worker(
    path: str, barrier: Any, out: Any, timeout: float, progress_every: int = 0
) -> None:
    """The reference: for name in q: if q.lock(name): q.get(name); q.remove(name).

    ``path`` may end with "#queue" to use dirq.queue.Queue instead of QueueSimple.
    """
    result: dict[str, Any] = {"kind": "dirq", "pid": os.getpid(), "n": 0, "polls": 0}
    try:
        kind = "simple"
        if path.endswith("#queue"):
            path, kind = path[: -len("#queue")], "queue"
        q = open_dirq(path, kind)
        barrier.wait(timeout=120)
        t0 = time.monotonic()
        n = passes = 0
        while True:
            got = 0
            for name in q:
                if q.lock(name):
                    q.get(name)
                    q.remove(name)
                    got += 1
            n += got
            passes += 1
            if got == 0 or time.monotonic() > t0 + timeout:
                break
        t1 = time.monotonic()
        result.update(n=n, polls=passes, t0=t0, t1=t1, status="empty")
    except BaseException:
        result["error"] = traceback.format_exc()
    _put_result(out, result)


def run_workers(
    worker: Callable[..., None],
    path: str,
    nworkers: int,
    timeout: float,
    progress_every: int = 0,
) -> dict[str, Any]:
    """Start ``nworkers`` fresh processes (spawn), release them together on a barrier.

    Returns {"elapsed": last end - first start, "counts": [...], "results": [...]}. The time
    excludes process start-up and queue opening: it runs from the barrier to the last worker's end.
    """
    ctx = mp.get_context("spawn")
    barrier = ctx.Barrier(nworkers + 1)
    out = ctx.Queue()
    procs = [
        ctx.Process(target=worker, args=(path, barrier, out, timeout, progress_every), daemon=True)
        for _ in range(nworkers)
    ]
    os.sync()
    for p in procs:
        p.start()
    import queue as _queue

    deadline = time.monotonic() + 120
    while barrier.n_waiting < nworkers:  # fail fast when a worker dies before the start line
        dead = [p.exitcode for p in procs if p.exitcode is not None]
        if dead or time.monotonic() > deadline:
            for p in procs:
                p.kill()
            raise RuntimeError(f"worker processes did not reach the barrier (exit codes {dead})")
        time.sleep(0.01)
    barrier.wait(timeout=120)
    results: list[dict[str, Any]] = []
    deadline = time.monotonic() + timeout + 120
    while len(results) < nworkers:
        try:
            results.append(json.loads(out.get(timeout=1.0)))
        except _queue.Empty:
            dead = [p.exitcode for p in procs if p.exitcode not in (None, 0)]
            if dead or time.monotonic() > deadline:
                for p in procs:
                    p.kill()
                raise RuntimeError(f"worker processes died or hung (exit codes {dead})") from None
    for p in procs:
        p.join(timeout=60)
    errors = [r["error"] for r in results if "error" in r]
    if errors:
        raise RuntimeError("worker failed:\n" + "\n".join(errors))
    elapsed = max(r["t1"] for r in results) - min(r["t0"] for r in results)
    return {
        "elapsed": elapsed,
        "counts": [r["n"] for r in results],
        "polls": [r["polls"] for r in results],
        "status": [r["status"] for r in results],
        "results": results,
    }
