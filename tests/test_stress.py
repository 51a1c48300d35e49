"""Several worker processes drain one queue at once (after filelock's strict stress test).

Every job records who ran it and when; the assertions check that each job ran exactly once,
that no job started before everything it waits for had ended, and that the work was shared.
"""

from __future__ import annotations

import os
import time
from collections import Counter

import pytest
from procs_for_tests import RecordProc
from testutil import read_records

from jobtree import IdleReason, JobState

pytestmark = pytest.mark.stress

N_WORKERS = 4
DEADLINE = 120.0


def parent_of(path):
    return path.rsplit(".", 1)[0] if "." in path else None


def run_workers(queue, tmp_path, spawn_worker):
    """Start N_WORKERS workers on a barrier, release them together, wait for all of them."""
    barrier = tmp_path / "barrier"
    workers = [
        spawn_worker(queue.location, "--barrier", barrier, "--deadline", DEADLINE)
        for _ in range(N_WORKERS)
    ]
    barrier.touch()
    deadline = time.monotonic() + DEADLINE
    codes = [w.wait(max(1.0, deadline - time.monotonic())) for w in workers]
    for w, code in zip(workers, codes, strict=True):
        assert code == 0, f"worker {w.pid} exited {code}: {w.stderr[-2000:]}"
    return workers


def check_records(records, expected, waits_for, workers):
    """Every expected (rootId, path) ran exactly once, after everything in ``waits_for`` ended,
    in a worker process, and more than one worker ran jobs."""
    ran = Counter((r["rootId"], r["path"]) for r in records)
    twice = {k: n for k, n in ran.items() if n > 1}
    assert not twice, f"jobs that ran more than once: {sorted(twice)[:10]}"
    assert set(ran) == expected, (
        f"missing: {sorted(expected - set(ran))[:10]}, unexpected: {sorted(set(ran) - expected)[:10]}"
    )
    by_key = {(r["rootId"], r["path"]): r for r in records}
    for key, before in waits_for.items():
        latest_end = max(by_key[b]["end"] for b in before)
        assert by_key[key]["start"] >= latest_end, (
            f"{key} started at {by_key[key]['start']} before a job it waits for ended "
            f"at {latest_end}"
        )
    pids = Counter(r["pid"] for r in records)
    assert set(pids) <= {w.pid for w in workers}
    assert os.getpid() not in pids
    assert len(pids) > 1, f"only one process ran jobs: {pids}"


def check_worker_output(workers, n_jobs):
    # A spurious BLOCKED idleReason() shows up on a worker's stderr.
    for w in workers:
        assert w.stderr == "", f"worker {w.pid} wrote to stderr: {w.stderr[-2000:]}"
        assert w.stdout.startswith("ran "), w.stdout
    assert sum(int(w.stdout.split()[1]) for w in workers) == n_jobs


def test_workers_run_every_job_exactly_once(queue, tmp_path, spawn_worker):
    # Two roots of 1 + 10 children + 10 x 100 grandchildren = 1011 jobs each.
    record_file = str(tmp_path / "records.jsonl")
    roots = []
    for label in ("A", "B"):
        paths = ["root"]
        with queue.createJob(RecordProc, label=label, recordFile=record_file) as root:
            for i in range(10):
                child = root.createJob(RecordProc, recordFile=record_file)
                paths.append(f"root.{i:04d}")
                for j in range(100):
                    child.createJob(RecordProc, recordFile=record_file)
                    paths.append(f"root.{i:04d}.{j:04d}")
        roots.append((root, paths))
    expected = {(root.handle.rootId, p) for root, paths in roots for p in paths}
    assert len(expected) == 2022
    waits_for: dict[tuple[str, str], list[tuple[str, str]]] = {}
    for root_id, path in expected:
        if parent_of(path):
            waits_for.setdefault((root_id, parent_of(path)), []).append((root_id, path))

    workers = run_workers(queue, tmp_path, spawn_worker)

    check_records(read_records(record_file), expected, waits_for, workers)
    assert queue.idleReason() == IdleReason.ALL_DONE
    for root, paths in roots:
        assert root.handle.stateCounts()[JobState.DONE] == len(paths)
    check_worker_output(workers, len(expected))


def test_workers_respect_dependencies_across_many_roots(queue, tmp_path, spawn_worker):
    # 150 small roots: R -> a, b, c with b waiting for c and c waiting for a (a, c, b, R).
    record_file = str(tmp_path / "records.jsonl")
    roots = []
    for _ in range(150):
        with queue.createJob(RecordProc, recordFile=record_file) as root:
            a = root.createJob(RecordProc, recordFile=record_file)
            b = root.createJob(RecordProc, recordFile=record_file)
            c = root.createJob(RecordProc, recordFile=record_file)
            b.addDependency(c)
            c.addDependency(a)
        roots.append(root)
    expected = set()
    waits_for = {}
    for root in roots:
        rid = root.handle.rootId
        expected |= {(rid, p) for p in ("root", "root.0000", "root.0001", "root.0002")}
        waits_for[(rid, "root")] = [(rid, "root.0000"), (rid, "root.0001"), (rid, "root.0002")]
        waits_for[(rid, "root.0001")] = [(rid, "root.0002")]
        waits_for[(rid, "root.0002")] = [(rid, "root.0000")]

    workers = run_workers(queue, tmp_path, spawn_worker)

    check_records(read_records(record_file), expected, waits_for, workers)
    assert queue.idleReason() == IdleReason.ALL_DONE
    assert all(h.state == JobState.DONE for h in queue.listJobs())
    check_worker_output(workers, len(expected))
