"""Chaos: worker processes are SIGKILLed at random while they drain a large queue.

4 roots x 10 children x 110 grandchildren (4,444 jobs) with a 2 s lease, 4 worker processes; the
test is the supervisor: every 0.5 s it SIGKILLs a random worker (its whole process group) and
starts a replacement, 40 times, then lets the workers finish. Jobs sleep 2-25 ms, so kills land
mid-job, mid-claim and mid-commit.

Every run appends a ``start`` record and, if it is not killed, an ``end`` record (pid, attempt,
times). At the end: every job is done; its final successful run is among the completed runs; no
two completed runs of one job overlap; a run that never ended belongs to a killed worker and the
next run of that job started only after the kill plus the lease; every parent started after all
its children's successful runs ended; and check() finds nothing.

If no job finishes for STALL_SECONDS (longer than any takeover takes), the test fails with a
report of the stuck tokens: workers alone must repair what killed workers leave half-done (a
cascade cut between commit and release, a claim renamed but never written), with no operator
running check(repair=True).
"""

from __future__ import annotations

import itertools
import json
import os
import random
import time
from collections import defaultdict
from pathlib import Path

import pytest
from resil_procs import ChaosProc
from resil_util import Proc, spawner
from testutil import read_records

import jobtree
from jobtree import JobState

N_ROOTS, N_CHILDREN, N_GRANDCHILDREN = 4, 10, 110
N_JOBS = N_ROOTS * (1 + N_CHILDREN * (1 + N_GRANDCHILDREN))
N_WORKERS = 4
LEASE = 2.0
SLEEP = {"minSleep": 0.002, "maxSleep": 0.025}
KILL_EVERY = 0.5
MIN_KILLS = 30
MAX_KILLS = 40
"""Then the supervisor lets the workers finish (see the module's docstring for why it stops)."""
DEADLINE = 170.0
STALL_SECONDS = 12.0
"""No job finished for this long although kills stopped being the cause (a takeover needs
lease + 2 s grace + up to 1 s until a worker's next scan): the queue is stuck."""

pytestmark = pytest.mark.stress


def submit(queue: jobtree.JobQueue, record_file: str) -> list[jobtree.JobHandle]:
    roots = []
    for r in range(N_ROOTS):
        with queue.createJob(ChaosProc, label=f"root {r}", recordFile=record_file, **SLEEP) as root:
            for c in range(N_CHILDREN):
                child = root.createJob(ChaosProc, label=f"{r}.{c}", recordFile=record_file, **SLEEP)
                for g in range(N_GRANDCHILDREN):
                    child.createJob(
                        ChaosProc, label=f"{r}.{c}.{g}", recordFile=record_file, **SLEEP
                    )
        roots.append(root.handle)
    return roots


def count_done(roots: list[jobtree.JobHandle]) -> int:
    return sum(len(os.listdir(Path(h.location) / "_index" / "done")) for h in roots)


def stuck_report(roots: list[jobtree.JobHandle]) -> str:
    """What the index looks like (for a stalled queue)."""
    lines = []
    for h in roots:
        idx = Path(h.location) / "_index"
        for d in ("ready", "running", "waiting", "failed", "paused", "cancelled"):
            names = os.listdir(idx / d)
            if d == "waiting":
                names = [n for n in names if not _pending(h, n)]
            for n in names[:10]:
                p = idx / d / n
                try:
                    age = time.time() - p.stat().st_mtime
                    content = p.read_text()[:200]
                except OSError:
                    age, content = -1, "?"
                lines.append(f"{h.rootId} {d}/{n} age {age:.1f} s: {content!r}")
    return "\n".join(lines)


def _pending(h: jobtree.JobHandle, name: str) -> list[str]:
    """The _pending entries of a waiting job ([] when the directory is gone)."""
    try:
        return os.listdir(Path(h.location, *name.split("@")[0].split(".")[1:], "_pending"))
    except FileNotFoundError:
        return []


def test_chaos_kills(tmp_path: Path) -> None:
    queue = jobtree.createJobQueue(tmp_path / "q", leaseSeconds=LEASE)
    record_file = str(tmp_path / "records.jsonl")
    t0 = time.monotonic()
    roots = submit(queue, record_file)
    submitted = time.monotonic() - t0
    seed = random.randrange(1 << 30)
    rng = random.Random(seed)
    kill_times: dict[int, float] = {}

    with spawner(tmp_path) as sp:
        barrier = tmp_path / "barrier"
        live: list[Proc] = [
            sp.worker(queue.location, "--barrier", barrier, "--deadline", DEADLINE)
            for _ in range(N_WORKERS)
        ]
        barrier.touch()
        start = time.monotonic()
        deadline = start + DEADLINE
        next_kill = start + KILL_EVERY
        last_done, last_progress = 0, start
        while True:
            now = time.monotonic()
            done = count_done(roots)
            if done == N_JOBS:
                break
            for w in live:
                code = w.poll()
                # (A worker exits 0 by itself once everything is done.)
                if code is not None and not (code == 0 and count_done(roots) == N_JOBS):
                    raise AssertionError(f"worker {w.pid} exited {code}: {w.stderr[-3000:]}")
            assert now < deadline, (
                f"only {done} of {N_JOBS} jobs done after {DEADLINE} s\n{stuck_report(roots)}"
            )
            if done != last_done:
                last_done, last_progress = done, now
            else:
                assert now - last_progress <= STALL_SECONDS, (
                    f"no job finished for {STALL_SECONDS} s after {now - start:.1f} s: a killed "
                    f"worker left something no other worker repairs\n{stuck_report(roots)}"
                )
            if len(kill_times) < MAX_KILLS and now >= next_kill:
                victim = live.pop(rng.randrange(len(live)))
                victim.kill()
                kill_times[victim.pid] = time.time()
                live.append(sp.worker(queue.location, "--deadline", DEADLINE))
                next_kill += KILL_EVERY
            time.sleep(0.01)
        elapsed = time.monotonic() - start
        for w in live:
            code = w.wait(30)
            assert code == 0, f"worker {w.pid} exited {code}: {w.stderr[-3000:]}"
        worker_pids = {p.pid for p in sp.procs}
        tracebacks = [p.stderr for p in sp.procs if "Traceback" in p.stderr]
        assert not tracebacks, tracebacks[0][-3000:]

    kills = len(kill_times)
    # -- every job is done --------------------------------------------------------------------
    for h in roots:
        counts = h.stateCounts()
        assert counts[JobState.DONE] == 1 + N_CHILDREN * (1 + N_GRANDCHILDREN), counts
    assert queue.idleReason() == jobtree.IdleReason.ALL_DONE

    # -- the runs -----------------------------------------------------------------------------
    records = read_records(record_file)
    starts = {}
    ends = {}
    for r in records:
        key = (r["rootId"], r["path"], r["pid"], r["attempt"])
        (starts if r["ev"] == "start" else ends)[key] = r
    assert set(ends) <= set(starts)
    runs: dict[tuple[str, str], list[dict]] = defaultdict(list)
    for key, s in starts.items():
        e = ends.get(key)
        runs[key[:2]].append(
            {"pid": key[2], "attempt": key[3], "start": s["start"], "end": e and e["end"]}
        )
    assert len(runs) == N_JOBS
    assert {k[2] for k in starts} <= worker_pids

    takeovers = 0
    final: dict[tuple[str, str], dict] = {}
    for h in roots:
        done_dir = Path(h.location) / "_index" / "done"
        for name in os.listdir(done_dir):
            claim = json.loads((done_dir / name).read_text())
            takeovers += sum(1 for e in claim.get("history", []) if e.get("outcome") == "lost")
            key = (h.rootId, name)
            mine = [
                r
                for r in runs[key]
                if r["pid"] == claim["pid"] and r["attempt"] == claim["attempt"]
            ]
            why = (
                f"{key}: the done token names attempt {claim['attempt']} in pid {claim['pid']}, "
                f"but the completed runs are {runs[key]}"
            )
            assert len(mine) == 1, why
            assert mine[0]["end"] is not None, why
            final[key] = mine[0]

    killed_runs = 0
    for key, job_runs in runs.items():
        job_runs.sort(key=lambda r: r["start"])
        completed = [r for r in job_runs if r["end"] is not None]
        for a, b in itertools.pairwise(completed):
            assert b["start"] >= a["end"], f"{key}: completed runs overlap: {a} and {b}"
        for i, r in enumerate(job_runs):
            if r["end"] is not None:
                continue
            killed_runs += 1
            assert r["pid"] in kill_times, f"{key}: run {r} never ended but its worker lived"
            for later in job_runs[i + 1 :]:
                # Taken over only after the lease expired: never while the killed run lived,
                # and not before a lease's time after the kill.
                assert later["start"] >= kill_times[r["pid"]] + LEASE * 0.75, (
                    f"{key}: {later} started too soon after its worker {r['pid']} was killed "
                    f"at {kill_times[r['pid']]}"
                )
    for (rid, path), job_runs in runs.items():
        children = [
            final[(rid, f"{path}.{c:04d}")]
            for c in range(N_CHILDREN if path == "root" else N_GRANDCHILDREN)
            if path.count(".") < 2
        ]
        if not children:
            continue
        last_child_end = max(c["end"] for c in children)
        for r in job_runs:
            assert r["start"] >= last_child_end, f"{rid}:{path} ran {r} before a child ended"

    # -- the queue is clean -------------------------------------------------------------------
    problems = queue.check()
    assert problems == [], problems
    print(
        f"\nchaos: {N_JOBS} jobs, {N_WORKERS} workers, submitted in {submitted:.1f} s, drained "
        f"in {elapsed:.1f} s under {kills} kills (seed {seed}); {killed_runs} runs killed "
        f"mid-job, {takeovers} takeovers"
    )
    assert kills >= MIN_KILLS, f"the queue drained after only {kills} kills; make the jobs longer"
