#!/usr/bin/env python3
"""Claim cost vs history: runNextAvailableJob with 100,000 finished jobs vs an empty history.

Builds two queues first:
  history: R roots x P no-op sub-jobs (default 100 x 1,000), drained by W worker processes;
  empty:   nothing.
Then submits one fresh measurement root of C no-op sub-jobs (default 2,000) to each, syncs, and
times each runNextAvailableJob() call in this one process, alternating between the two queues in
blocks (C/B calls per block, B blocks each, the first queue alternating per block), so that both
figures see the same disk conditions. A no-op job's own run is negligible; what is timed is the
claim, the run bookkeeping (logs, attempt file) and the commit + cascade.

Targets (issue): median per-call time with history <= 0.5 ms AND <= 1.5x the empty-history median.
"""

from __future__ import annotations

import argparse
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import benchutil as bu

TARGET_MS = 0.5
TARGET_RATIO = 1.5


def submit_roots(q: object, nroots: int, per_root: int, label: str) -> float:
    from benchprocs import NoOp

    t0 = time.perf_counter()
    step = max(1, nroots // 10)
    for r in range(nroots):
        with q.createJob(NoOp, label=f"{label} {r}") as root:  # type: ignore[attr-defined]
            for _ in range(per_root):
                root.createJob(NoOp)
        if (r + 1) % step == 0 or r + 1 == nroots:
            el = time.perf_counter() - t0
            done = (r + 1) * (per_root + 1)
            print(
                f"  submitted {r + 1}/{nroots} roots ({done:,} jobs) in {el:.1f} s ({done / el:,.0f} jobs/s)",
                flush=True,
            )
    return time.perf_counter() - t0


def time_calls(q: object, n: int, samples: list[float]) -> None:
    pc = time.perf_counter_ns
    run = q.runNextAvailableJob  # type: ignore[attr-defined]
    for _ in range(n):
        t0 = pc()
        ok = run()
        samples.append((pc() - t0) / 1e6)
        if not ok:
            raise RuntimeError(f"runNextAvailableJob() returned False; idleReason {q.idleReason()}")  # type: ignore[attr-defined]


def describe(name: str, xs: list[float]) -> str:
    return (
        f"{name}: median {bu.median(xs):.3f} ms, p10 {bu.percentile(xs, 10):.3f}, "
        f"p90 {bu.percentile(xs, 90):.3f}, p99 {bu.percentile(xs, 99):.3f}, "
        f"max {max(xs):.3f}, mean {sum(xs) / len(xs):.3f} ms over {len(xs)} calls "
        f"({sum(xs) / 1e3:.2f} s in all)"
    )


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument(
        "--jobs", type=int, default=100_000, help="finished sub-jobs of history (default 100,000)"
    )
    p.add_argument(
        "--per-root", type=int, default=1000, help="sub-jobs per history root (default 1,000)"
    )
    p.add_argument(
        "--calls",
        type=int,
        default=2000,
        help="timed calls per queue = sub-jobs of the measurement root (default 2,000)",
    )
    p.add_argument(
        "--blocks", type=int, default=10, help="alternation blocks per queue (default 10)"
    )
    p.add_argument(
        "--workers", type=int, default=2, help="worker processes draining the history (default 2)"
    )
    p.add_argument(
        "--backlog",
        action="store_true",
        help="information only: leave the R x P jobs queued (ready, not run) instead of draining them; "
        "the measurement roots get priority 1 so they run first. Shows whether a claim's cost grows "
        "with the number of queued jobs.",
    )
    p.add_argument(
        "--timeout", type=float, default=1800, help="seconds before the history drain is abandoned"
    )
    bu.common_args(p)
    args = p.parse_args(argv)

    nroots = max(1, args.jobs // args.per_root)
    hist_jobs = nroots * (args.per_root + 1)
    what = "queued (backlog mode)" if args.backlog else "finished"
    rep = bu.Report(
        f"bench_history: runNextAvailableJob with {hist_jobs:,} {what} jobs ({nroots} roots x "
        f"{args.per_root} sub-jobs + roots) vs empty history; {args.calls} calls each"
    )
    from benchprocs import NoOp

    import jobtree

    print(f"jobtree from {os.path.dirname(jobtree.__file__)}")
    scratch = bu.Scratch("history", args.dir, args.keep)
    try:
        bu.disk_anchor(scratch, "start")
        hpath, epath = scratch.sub("history"), scratch.sub("empty")
        qh = jobtree.createJobQueue(hpath)
        jobtree.createJobQueue(epath)

        print(f"building history: {nroots} roots x {args.per_root} sub-jobs", flush=True)
        tsub = submit_roots(qh, nroots, args.per_root, "history")
        if args.backlog:
            print(f"  backlog mode: the {hist_jobs:,} jobs stay queued (not drained)", flush=True)
        else:
            print(f"draining history with {args.workers} workers", flush=True)
            r = bu.run_workers(
                bu.jobtree_drain_worker,
                hpath,
                args.workers,
                args.timeout,
                progress_every=max(1000, hist_jobs // args.workers // 5),
            )
            total = sum(r["counts"])
            print(
                f"  history: submitted {hist_jobs:,} jobs in {tsub:.1f} s, drained {total:,} in "
                f"{r['elapsed']:.1f} s ({total / r['elapsed']:,.0f} jobs/s with {args.workers} workers)",
                flush=True,
            )
            if any(st != "all done" for st in r["status"]):
                print(f"  WARNING: worker status {r['status']}")
            if total != hist_jobs:
                print(
                    f"  WARNING: drained {total:,} jobs, expected {hist_jobs:,}; worker status {r['status']}"
                )
        qh = jobtree.JobQueue(hpath)
        print(f"  history queue: {len(qh.listJobs())} roots listed, idleReason {qh.idleReason()}")

        # the measurement roots, one per queue, submitted before any timing
        roots = {}
        for name, path in (("history", hpath), ("empty", epath)):
            q = jobtree.JobQueue(path)
            opts = {"priority": 1} if args.backlog else None
            with q.createJob(NoOp, label=f"measure {name}", jobOptions=opts) as root:
                for _ in range(args.calls):
                    root.createJob(NoOp)
            roots[name] = root.handle

        bu.disk_anchor(scratch, "before timing")
        queues = {"history": jobtree.JobQueue(hpath), "empty": jobtree.JobQueue(epath)}
        samples: dict[str, list[float]] = {"history": [], "empty": []}
        first: dict[str, float] = {}
        os.sync()
        # first call of a fresh JobQueue object, reported apart (a cache may be filled there)
        for name in ("history", "empty"):
            s: list[float] = []
            time_calls(queues[name], 1, s)
            first[name] = s[0]
        per_block = [args.calls // args.blocks] * args.blocks
        per_block[-1] += args.calls - 1 - sum(per_block)  # the first call is already made
        for b, n in enumerate(per_block):
            order = ("history", "empty") if b % 2 == 0 else ("empty", "history")
            for name in order:
                time_calls(queues[name], n, samples[name])
        bu.disk_anchor(scratch, "after timing")

        for name in ("history", "empty"):
            counts = roots[name].stateCounts()
            print(
                f"  measurement root ({name}): {dict((str(getattr(k, 'value', k)), v) for k, v in counts.items() if v)}"
            )
        print(
            f"first call of a fresh JobQueue: history {first['history']:.3f} ms, empty {first['empty']:.3f} ms"
        )
        print(describe("per call, history", samples["history"]))
        print(describe("per call, empty  ", samples["empty"]))
        blocks_h = []
        blocks_e = []
        i = 0
        for n in per_block:
            if n <= 0:
                continue
            blocks_h.append(bu.median(samples["history"][i : i + n]))
            blocks_e.append(bu.median(samples["empty"][i : i + n]))
            i += n
        print("block medians history (ms): " + ", ".join(f"{x:.3f}" for x in blocks_h))
        print("block medians empty   (ms): " + ", ".join(f"{x:.3f}" for x in blocks_e))
        mh, me = bu.median(samples["history"]), bu.median(samples["empty"])
        ratio = mh / me
        print(f"ratio history/empty: {ratio:.2f}x")
        rep.target(
            ("[backlog, information only] " if args.backlog else "")
            + (
                "claim with 100k history <= 0.5 ms"
                if hist_jobs >= 100_000
                else f"claim with {hist_jobs:,} history <= 0.5 ms"
            ),
            mh <= TARGET_MS,
            f"median {mh:.3f} ms",
        )
        rep.target(
            ("[backlog, information only] " if args.backlog else "")
            + "history claim <= 1.5x empty",
            ratio <= TARGET_RATIO,
            f"{ratio:.2f}x ({mh:.3f} vs {me:.3f} ms)",
        )
    finally:
        scratch.cleanup()
    return rep.finish(args.strict)


if __name__ == "__main__":
    sys.exit(main())
