#!/usr/bin/env python3
"""Submission rate: R roots x P no-op sub-jobs vs a plain loop of one mkdir + one JSON file per job.

jobtree: for each root, ``with q.createJob(NoOp) as root: for _ in range(P): root.createJob(NoOp)``
(activation included). The plain loop builds the same tree shape with one directory and one small
JSON file (json.dumps of a job.json-like dict) per job. Both run in this process, alternately, in
chunks of R/rounds roots (the first configuration alternates per round), os.sync() before each
chunk. The inodes created per job are counted by walking both trees afterwards (exact) and from
os.statvfs().f_ffree around each chunk (shared file system: other users add noise).

Target (issue): jobtree's rate >= 40% of the plain loop's rate.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import sys
import time
from collections import Counter

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import benchutil as bu

TARGET_FRACTION = 0.40


def submit_jobtree(q: object, first: int, count: int, per_root: int) -> None:
    from benchprocs import NoOp

    for r in range(first, first + count):
        with q.createJob(NoOp, label=f"root {r}") as root:  # type: ignore[attr-defined]
            for _ in range(per_root):
                root.createJob(NoOp)


def submit_plain(base: str, first: int, count: int, per_root: int) -> None:
    host = socket.gethostname()

    def write(d: str, children: int) -> None:
        os.mkdir(d)
        spec = {
            "jobType": "benchprocs:NoOp",
            "label": None,
            "params": {},
            "jobOptions": {"priority": 0},
            "submitTime": time.time(),
            "submitHost": host,
            "children": children,
        }
        with open(f"{d}/job.json", "w") as f:
            f.write(json.dumps(spec))

    for r in range(first, first + count):
        rd = f"{base}/root-{r:05d}"
        write(rd, per_root)
        for j in range(per_root):
            write(f"{rd}/{j:04d}", 0)


def classify(top: str) -> Counter[str]:
    """Inodes below a jobtree queue by role (names from docs/format.md)."""
    c: Counter[str] = Counter()
    for dirpath, dirnames, filenames in os.walk(top):
        rel = os.path.relpath(dirpath, top)
        parts = [] if rel == "." else rel.split(os.sep)
        for d in dirnames:
            if not parts:
                c["queue dirs (roots/ staging/ trash/)"] += 1
            elif d == "_index" or "_index" in parts:
                c["_index dirs"] += 1
            elif d == "_pending":
                c["_pending dirs"] += 1
            elif parts == ["roots"] or parts == ["staging"]:
                c["root dirs"] += 1
            else:
                c["sub-job dirs"] += 1
        for f in filenames:
            if not parts:
                c["queue files"] += 1
            elif "_index" in parts:
                c["tokens"] += 1
            elif parts[-1] == "_pending":
                c["_pending entries"] += 1
            elif f == "job.json":
                c["job.json"] += 1
            else:
                c[f"other files ({f})"] += 1
    return c


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--roots", type=int, default=100, help="roots (default 100)")
    p.add_argument("--per-root", type=int, default=1000, help="sub-jobs per root (default 1,000)")
    p.add_argument(
        "--rounds", type=int, default=5, help="alternating chunks per configuration (default 5)"
    )
    bu.common_args(p)
    args = p.parse_args(argv)

    rounds = max(1, min(args.rounds, args.roots))
    njobs = args.roots * (args.per_root + 1)
    rep = bu.Report(
        f"bench_submit: {args.roots} roots x {args.per_root} no-op sub-jobs ({njobs:,} jobs) vs plain "
        f"mkdir+file loop, {rounds} alternating rounds"
    )
    import jobtree

    print(f"jobtree from {os.path.dirname(jobtree.__file__)}")
    scratch = bu.Scratch("submit", args.dir, args.keep)
    try:
        bu.disk_anchor(scratch, "start")
        qpath, ppath = scratch.sub("jobtree"), scratch.sub("plain")
        q = jobtree.createJobQueue(qpath)
        os.mkdir(ppath)
        base_dirs, base_files = bu.count_entries(qpath)

        # untimed warm-up of both code paths (imports, caches), in trees that are not counted
        wq = jobtree.createJobQueue(scratch.sub("warmup-jobtree"))
        submit_jobtree(wq, 0, 1, min(args.per_root, 200))
        os.mkdir(scratch.sub("warmup-plain"))
        submit_plain(scratch.sub("warmup-plain"), 0, 1, min(args.per_root, 200))

        chunks = []
        first = 0
        for k in range(rounds):
            n = args.roots // rounds + (1 if k < args.roots % rounds else 0)
            chunks.append((first, n))
            first += n

        times = {"jobtree": 0.0, "plain": 0.0}
        jobs_done = {"jobtree": 0, "plain": 0}
        ffree = {"jobtree": 0, "plain": 0}
        per_round: list[float] = []
        for k, (first, n) in enumerate(chunks, 1):
            order = ("jobtree", "plain") if k % 2 else ("plain", "jobtree")
            rates = {}
            for conf in order:
                os.sync()
                f0 = os.statvfs(scratch.path).f_ffree
                t0 = time.perf_counter()
                if conf == "jobtree":
                    submit_jobtree(q, first, n, args.per_root)
                else:
                    submit_plain(ppath, first, n, args.per_root)
                dt = time.perf_counter() - t0
                f1 = os.statvfs(scratch.path).f_ffree
                cj = n * (args.per_root + 1)
                times[conf] += dt
                jobs_done[conf] += cj
                ffree[conf] += f0 - f1
                rates[conf] = cj / dt
                print(
                    f"  round {k} {conf:7s}: {n} roots = {cj:,} jobs in {dt:.2f} s = {cj / dt:,.0f} jobs/s "
                    f"(statvfs: {(f0 - f1) / cj:.2f} inodes/job)",
                    flush=True,
                )
            per_round.append(rates["jobtree"] / rates["plain"])
        bu.disk_anchor(scratch, "end")

        # sanity: everything activated, nothing left in staging
        listed = len(jobtree.JobQueue(qpath).listJobs())
        staging = (
            os.listdir(os.path.join(qpath, "staging"))
            if os.path.isdir(os.path.join(qpath, "staging"))
            else []
        )
        if listed != args.roots or staging:
            print(
                f"  WARNING: listJobs() gives {listed} roots (expected {args.roots}); {len(staging)} entries left in staging/"
            )

        jd, jf = bu.count_entries(qpath)
        pd, pf = bu.count_entries(ppath)
        jinodes = (jd - base_dirs) + (jf - base_files)
        pinodes = pd + pf
        print(
            f"inodes per job (tree walk): jobtree {jinodes / njobs:.2f} ({jd - base_dirs:,} dirs + "
            f"{jf - base_files:,} files for {njobs:,} jobs); plain loop {pinodes / njobs:.2f}"
        )
        print(
            f"inodes per job (statvfs f_ffree, noisy): jobtree {ffree['jobtree'] / njobs:.2f}, "
            f"plain loop {ffree['plain'] / njobs:.2f}"
        )
        cls = classify(qpath)
        print(
            "jobtree inodes by role: "
            + ", ".join(f"{k} {v:,} ({v / njobs:.2f}/job)" for k, v in sorted(cls.items()))
        )

        rj = jobs_done["jobtree"] / times["jobtree"]
        rp = jobs_done["plain"] / times["plain"]
        frac = rj / rp
        print(
            f"jobtree submission rate: {rj:,.0f} jobs/s ({jobs_done['jobtree']:,} jobs in {times['jobtree']:.1f} s)"
        )
        print(
            f"plain loop rate:         {rp:,.0f} jobs/s ({jobs_done['plain']:,} jobs in {times['plain']:.1f} s)"
        )
        print(
            f"ratio jobtree/plain: {frac:.1%} (per round: {', '.join(f'{x:.1%}' for x in per_round)}; median {bu.median(per_round):.1%})"
        )
        rep.target(
            "submission >= 40% of plain loop",
            frac >= TARGET_FRACTION,
            f"{frac:.1%} ({rj:,.0f} vs {rp:,.0f} jobs/s)",
        )
    finally:
        scratch.cleanup()
    return rep.finish(args.strict)


if __name__ == "__main__":
    sys.exit(main())
