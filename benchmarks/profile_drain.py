#!/usr/bin/env python3
"""Profile a single-process drain (1 root + N no-op sub-jobs) and print the top cProfile entries.

Not a benchmark with a target: a tool for finding where runNextAvailableJob spends its time.
Also counts the system calls of interest per job by wrapping a few os functions (optional,
--count-calls), which shows how many file-system operations one claim + run + commit costs.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import os
import pstats
import sys
import time
from collections import Counter

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import benchutil as bu

WRAPPED = [
    "open",
    "rename",
    "replace",
    "mkdir",
    "rmdir",
    "unlink",
    "remove",
    "listdir",
    "scandir",
    "stat",
    "lstat",
    "chdir",
    "getcwd",
    "fsync",
    "dup",
    "dup2",
    "pipe",
    "utime",
    "link",
]


def wrap_os(counter: Counter[str]) -> None:
    import builtins

    def wrapper(name: str, fn):  # type: ignore[no-untyped-def]
        def w(*a, **k):  # type: ignore[no-untyped-def]
            counter[name] += 1
            return fn(*a, **k)

        return w

    for name in WRAPPED:
        if hasattr(os, name):
            setattr(os, name, wrapper("os." + name, getattr(os, name)))
    builtins.open = wrapper("builtins.open", builtins.open)  # type: ignore[assignment]
    io.open = builtins.open  # type: ignore[assignment]


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--jobs", type=int, default=2000, help="sub-jobs under the root (default 2000)")
    p.add_argument(
        "--roots", type=int, default=1, help="roots, each with --jobs sub-jobs (default 1)"
    )
    p.add_argument(
        "--top", type=int, default=30, help="entries to print per sort order (default 30)"
    )
    p.add_argument(
        "--count-calls",
        action="store_true",
        help="count os.* calls per job (separate, unprofiled drain)",
    )
    bu.common_args(p)
    args = p.parse_args(argv)

    from benchprocs import NoOp

    import jobtree

    print(f"== profile_drain: {args.roots} root(s) x {args.jobs} no-op sub-jobs, 1 process ==")
    scratch = bu.Scratch("profile", args.dir, args.keep)
    try:
        bu.disk_anchor(scratch, "start")

        def build(name: str) -> object:
            q = jobtree.createJobQueue(scratch.sub(name))
            for _ in range(args.roots):
                with q.createJob(NoOp) as root:
                    for _ in range(args.jobs):
                        root.createJob(NoOp)
            return jobtree.JobQueue(scratch.sub(name))

        q = build("profiled")
        q2 = build("unprofiled")
        os.sync()
        t0 = time.perf_counter()
        n2 = 0
        while q2.runNextAvailableJob():  # type: ignore[attr-defined]
            n2 += 1
        dt = time.perf_counter() - t0
        print(
            f"unprofiled single-process drain: {n2} jobs in {dt:.3f} s = {n2 / dt:,.0f} jobs/s ({dt / n2 * 1e3:.3f} ms/job)"
        )

        os.sync()
        prof = cProfile.Profile()
        n = 0
        t0 = time.perf_counter()
        prof.enable()
        while q.runNextAvailableJob():  # type: ignore[attr-defined]
            n += 1
        prof.disable()
        dt = time.perf_counter() - t0
        print(f"profiled drain: {n} jobs in {dt:.3f} s (profiler overhead included)")
        for order in ("cumulative", "tottime"):
            s = io.StringIO()
            pstats.Stats(prof, stream=s).strip_dirs().sort_stats(order).print_stats(args.top)
            print(f"--- top {args.top} by {order} ---")
            print("\n".join(line for line in s.getvalue().splitlines() if line.strip()))

        if args.count_calls:
            q3 = build("counted")
            counter: Counter[str] = Counter()
            wrap_os(counter)
            n3 = 0
            while q3.runNextAvailableJob():  # type: ignore[attr-defined]
                n3 += 1
            print(f"--- os calls per job ({n3} jobs) ---")
            for name, c in counter.most_common():
                print(f"  {name:18s} {c / n3:8.2f}")
    finally:
        scratch.cleanup()
    return 0


if __name__ == "__main__":
    sys.exit(main())
