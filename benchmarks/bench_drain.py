#!/usr/bin/env python3
"""Drain throughput: 1 root + N no-op sub-jobs, W worker processes, vs the dirq flat queue.

Each round builds one fresh jobtree queue (1 root + N sub-jobs) and one fresh dirq QueueSimple
(N items), then drains each with W fresh worker processes released together on a barrier.
Submission is not timed. The configurations alternate (jobtree first in odd rounds, dirq first in
even rounds); the medians over the rounds are compared.

Targets (issue): jobtree >= 5,000 jobs/s on local disk AND >= 3x dirq in the same run.
"""

from __future__ import annotations

import argparse
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import benchutil as bu

TARGET_RATE = 5000.0
TARGET_RATIO = 3.0


def build_jobtree(path: str, njobs: int) -> tuple[object, float]:
    from benchprocs import NoOp

    import jobtree

    q = jobtree.createJobQueue(path)
    t0 = time.perf_counter()
    with q.createJob(NoOp, label="drain root") as root:
        for _ in range(njobs):
            root.createJob(NoOp)
    return root.handle, time.perf_counter() - t0


def build_dirq(path: str, n: int, kind: str) -> float:
    q = bu.open_dirq(path, kind)
    t0 = time.perf_counter()
    for i in range(n):
        q.add(f"item {i}\n" if kind == "simple" else {"body": f"item {i}\n"})
    return time.perf_counter() - t0


def measure_jobtree(
    scratch: bu.Scratch, tag: str, njobs: int, workers: int, timeout: float
) -> float:
    import jobtree

    path = scratch.sub(f"{tag}-jobtree")
    handle, tsub = build_jobtree(path, njobs)
    r = bu.run_workers(bu.jobtree_drain_worker, path, workers, timeout)
    total = sum(r["counts"])
    expected = njobs + 1
    state = handle.state
    if any(st != "all done" for st in r["status"]):
        print(f"  WARNING: worker status {r['status']}")
    if total != expected or state != jobtree.JobState.DONE:
        counts = handle.stateCounts()
        print(
            f"  WARNING: jobtree ran {total} jobs, expected {expected}; root state {state}; "
            f"state counts {counts}; worker status {r['status']}"
        )
    rate = total / r["elapsed"]
    print(
        f"  {tag} {'jobtree:':11s} {total} jobs in {r['elapsed']:.3f} s = {rate:,.0f} jobs/s "
        f"(split {'/'.join(map(str, r['counts']))}, idle polls {sum(r['polls'])}; "
        f"submission {tsub:.2f} s, not timed)",
        flush=True,
    )
    return rate


def measure_dirq(
    scratch: bu.Scratch, tag: str, n: int, workers: int, timeout: float, kind: str = "simple"
) -> float:
    path = scratch.sub(f"{tag}-dirq-{kind}")
    tsub = build_dirq(path, n, kind)
    r = bu.run_workers(
        bu.dirq_drain_worker, path + ("#queue" if kind == "queue" else ""), workers, timeout
    )
    total = sum(r["counts"])
    left = bu.open_dirq(path, kind).count()
    if total != n or left:
        print(f"  WARNING: dirq drained {total} items, expected {n}; {left} left")
    rate = total / r["elapsed"]
    name = "dirq" if kind == "simple" else "dirq.queue"
    print(
        f"  {tag} {name + ':':11s} {total} items in {r['elapsed']:.3f} s = {rate:,.0f} items/s "
        f"(split {'/'.join(map(str, r['counts']))}; submission {tsub:.2f} s, not timed)",
        flush=True,
    )
    return rate


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument(
        "--jobs", type=int, default=2000, help="sub-jobs under the root / dirq items (default 2000)"
    )
    p.add_argument("--workers", type=int, default=2, help="worker processes (default 2)")
    p.add_argument("--rounds", type=int, default=3, help="alternating rounds (default 3)")
    p.add_argument("--timeout", type=float, default=300, help="seconds before a drain is abandoned")
    p.add_argument(
        "--no-dirq-queue",
        action="store_true",
        help="skip the informational dirq.queue.Queue configuration (the target uses QueueSimple)",
    )
    bu.common_args(p)
    args = p.parse_args(argv)

    rep = bu.Report(
        f"bench_drain: 1 root + {args.jobs} no-op sub-jobs, {args.workers} workers, {args.rounds} rounds"
    )
    import dirq

    import jobtree

    print(
        f"jobtree from {os.path.dirname(jobtree.__file__)}; dirq {getattr(dirq, '__version__', '?')}"
    )
    scratch = bu.Scratch("drain", args.dir, args.keep)
    try:
        bu.disk_anchor(scratch, "start")
        jt: list[float] = []
        dq: list[float] = []
        dqq: list[float] = []
        confs = ["jobtree", "dirq"] + ([] if args.no_dirq_queue else ["dirq.queue"])
        for rnd in range(1, args.rounds + 1):
            tag = f"round{rnd}"
            order = confs if rnd % 2 else confs[::-1]
            for conf in order:
                if conf == "jobtree":
                    jt.append(measure_jobtree(scratch, tag, args.jobs, args.workers, args.timeout))
                elif conf == "dirq":
                    dq.append(measure_dirq(scratch, tag, args.jobs, args.workers, args.timeout))
                else:
                    dqq.append(
                        measure_dirq(scratch, tag, args.jobs, args.workers, args.timeout, "queue")
                    )
        bu.disk_anchor(scratch, "end")

        mj, md = bu.median(jt), bu.median(dq)
        ratio = mj / md
        per_round = [a / b for a, b in zip(jt, dq, strict=True)]
        print(
            f"jobtree drain rate:          median {mj:,.0f} jobs/s over {len(jt)} rounds ({', '.join(f'{x:,.0f}' for x in jt)})"
        )
        print(
            f"dirq QueueSimple drain rate: median {md:,.0f} items/s over {len(dq)} rounds ({', '.join(f'{x:,.0f}' for x in dq)})"
        )
        if dqq:
            mq = bu.median(dqq)
            print(
                f"dirq.queue.Queue drain rate: median {mq:,.0f} items/s ({', '.join(f'{x:,.0f}' for x in dqq)}); "
                f"jobtree/dirq.queue {mj / mq:.2f}x (information only; the target uses QueueSimple)"
            )
        print(
            f"ratio jobtree/dirq QueueSimple: {ratio:.2f}x (per round: {', '.join(f'{x:.2f}' for x in per_round)})"
        )
        local = scratch.fstype not in bu.NOT_LOCAL
        rep.target(
            "drain rate >= 5,000 jobs/s",
            mj >= TARGET_RATE,
            f"{mj:,.0f} jobs/s on {scratch.fstype}" + ("" if local else " (not a local disk)"),
        )
        rep.target(
            "drain rate >= 3x dirq",
            ratio >= TARGET_RATIO,
            f"{ratio:.2f}x ({mj:,.0f} vs {md:,.0f}/s)",
        )
    finally:
        scratch.cleanup()
    return rep.finish(args.strict)


if __name__ == "__main__":
    sys.exit(main())
