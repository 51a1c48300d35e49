"""Leases, fencing, retries, timeouts, cancel/pause/resume/priority and check() (issue 3).

Tests that need a worker that dies, stops or runs beside the test use real worker processes
(tests/resil_worker.py) and wait on files with deadlines; the rest run jobs in this process.
Tests marked ``xfail(strict=True)`` show a library bug described in their reason: they start to
XPASS, and so fail, when the bug is fixed; then remove the marker.
"""

from __future__ import annotations

import json
import os
import signal
import time
from collections import Counter
from pathlib import Path

import pytest
from procs_for_tests import ExecCmdProc, FailProc, NoopProc, RecordProc
from resil_procs import BlockProc, ChildSleepProc, FailUnlessFileProc, FlakyProc, PythonSleepProc
from resil_util import (
    attempt_record,
    drain,
    index_tokens,
    read_json,
    read_pid,
    spawner,
)
from testutil import pid_alive, read_records, wait_for

import jobtree
from jobtree import IdleReason, JobState

GRACE = 2.0  # jobtree.lease.GRACE: what a takeover waits beyond the lease


@pytest.fixture
def sp(tmp_path):
    with spawner(tmp_path) as s:
        yield s


def tokens(handle: jobtree.JobHandle) -> dict[str, list[str]]:
    """Non-empty index directories of the handle's root."""
    return {k: v for k, v in index_tokens(handle.rootDir).items() if v}


# -- (a) zombie: a stopped worker wakes up after its job was taken over ----------------------


def test_zombie_commit_is_rejected(tmp_path, sp):
    lease = 2.0
    q = jobtree.createJobQueue(tmp_path / "q", leaseSeconds=lease)
    pid_file, rec = tmp_path / "child.pid", tmp_path / "runs.jsonl"
    with q.createJob(ChildSleepProc, pidFile=str(pid_file), recordFile=str(rec)) as root:
        pass
    h = root.handle

    zombie = sp.worker(q.location, "--deadline", 60, name="zombie")
    zombie.wait_for_file(pid_file)
    child = read_pid(pid_file)
    assert pid_alive(child)
    zombie.signal(signal.SIGSTOP)
    stopped = time.monotonic()
    try:
        other = sp.worker(q.location, "--deadline", 60, name="other")
        assert other.wait(30) == 0, other.stderr
        taken_after = time.monotonic() - stopped
        assert h.state == JobState.DONE
        assert pid_alive(child), "the zombie's child died although nobody could have killed it"
    finally:
        zombie.signal(signal.SIGCONT)
    woke = time.monotonic()
    # The zombie notices within a second that its token is gone and kills its job's processes.
    wait_for(lambda: not pid_alive(child), timeout=3.0, what=f"the zombie's child {child} to die")
    child_killed_after = time.monotonic() - woke
    assert zombie.wait(30) == 0, zombie.stderr
    assert taken_after > lease, f"taken over {taken_after:.1f} s after the worker stopped"

    # Its commit was rejected: the final record is the second attempt's...
    runs = read_records(rec)
    assert [(r["attempt"], r["pid"]) for r in runs] == [(1, zombie.pid), (2, other.pid)]
    assert h.state == JobState.DONE
    assert h.attempts == 2
    assert h.pid == other.pid
    assert h.stdout == "attempt 2 finished\n"
    done = read_json(Path(h.rootDir) / "_index" / "done" / "root")
    second = attempt_record(h.location, 2)
    assert second["outcome"] == "done"
    assert second["pid"] == other.pid
    assert done["attempt"] == 2
    assert done["claim"] == second["claim"]
    assert [e["outcome"] for e in done["history"]] == ["lost", "done"]
    # ...and the zombie wrote only its own attempt file, which says it was lost.
    first = attempt_record(h.location, 1)
    assert first["outcome"] == "lost"
    assert first["pid"] == zombie.pid
    assert first["claim"] != second["claim"]
    assert not (Path(h.location) / "attempt.3.json").exists()
    assert tokens(h) == {"done": ["root"]}
    assert "is no longer this worker's" in zombie.stderr, zombie.stderr
    assert "took over attempt 1" in other.stderr, other.stderr
    assert q.check() == []
    print(
        f"\nzombie: taken over {taken_after:.1f} s after SIGSTOP (lease {lease} s); after "
        f"SIGCONT its child was killed within {child_killed_after:.2f} s"
    )


def test_a_killed_worker_takes_its_commands_with_it(tmp_path, sp):
    """A SIGKILLed worker's execCmd child (in a session of its own) dies with it, so the job's
    next attempt after the takeover never runs beside the old one's command."""
    q = jobtree.createJobQueue(tmp_path / "q")
    started, child_pid = tmp_path / "started", tmp_path / "child.pid"
    with q.createJob(
        BlockProc,
        startedFile=str(started),
        releaseFile=str(tmp_path / "never"),
        childPidFile=str(child_pid),
    ):
        pass
    w = sp.worker(q.location, "--deadline", 60)
    w.wait_for_file(child_pid)
    child = read_pid(child_pid)
    assert os.getsid(child) == child  # not in the worker's process group: killpg misses it
    w.kill()
    wait_for(lambda: not pid_alive(child), timeout=3.0, what=f"the worker's command {child} to die")


def test_workers_recover_a_cascade_cut_by_a_kill(tmp_path):
    q = jobtree.createJobQueue(tmp_path / "q", leaseSeconds=1.0)
    with q.createJob(NoopProc) as root:
        root.createJob(NoopProc)
    idx = Path(root.handle.rootDir) / "_index"
    # What a worker killed right after its commit leaves behind: the child is done, the parent's
    # _pending still names it, and nobody holds a lease on anything.
    os.rename(idx / "ready" / "root.0000@p0", idx / "done" / "root.0000")
    past = time.time() - 60
    os.utime(idx / "waiting" / "root", (past, past))
    deadline = time.monotonic() + 1.0 + GRACE + 3.0  # as long as a takeover may take
    while time.monotonic() < deadline and root.handle.state != JobState.DONE:
        q.runNextAvailableJob()
        time.sleep(0.05)
    assert root.handle.state == JobState.DONE, "the parent was never released"


def test_empty_running_token_is_taken_over_after_the_jobs_lease(tmp_path):
    q = jobtree.createJobQueue(tmp_path / "q", leaseSeconds=1.0)
    with q.createJob(NoopProc) as root:
        pass
    idx = Path(root.handle.rootDir) / "_index"
    token = idx / "running" / "root@0a1b2c3d4e5f"
    os.rename(idx / "ready" / "root@p0", token)  # killed here: the claim was never written
    past = time.time() - 10  # 10 s > leaseSeconds 1 + grace 2
    os.utime(token, (past, past))
    # utime sets the ctime to now, as the rename of a claim does: the claim counts from now, so
    # the takeover comes after the job's lease + grace (3 s, not the default lease's 62 s) and
    # one scan (at most 1 s), with some slack.
    deadline = time.monotonic() + 5.5
    while time.monotonic() < deadline and root.handle.state != JobState.DONE:
        q.runNextAvailableJob()
        time.sleep(0.05)
    assert root.handle.state == JobState.DONE


def test_a_claim_written_while_a_worker_looks_is_not_taken_over(tmp_path, monkeypatch):
    """A claim renames the token (keeping the mtime of its submission) and then writes the claim
    into it. A worker that stats the token before that write and reads it after saw the claim
    with the old mtime and took over a job claimed a moment ago (CI, test_multihost)."""
    q = jobtree.createJobQueue(tmp_path / "q", leaseSeconds=1.0)
    with q.createJob(NoopProc) as root:
        pass
    idx = Path(root.handle.rootDir) / "_index"
    claim_id = "0a1b2c3d4e5f"
    token = idx / "running" / f"root@{claim_id}"
    os.rename(idx / "ready" / "root@p0", token)
    past = time.time() - 10  # 10 s > leaseSeconds 1 + grace 2: what the submission left
    os.utime(token, (past, past))
    claim = {"claim": claim_id, "attempt": 1, "host": "elsewhere", "leaseSeconds": 1.0}
    real_load = jobtree.lease.loadToken

    def load_as_the_claim_lands(rootDir, state, name):
        token.write_text(json.dumps(claim))  # the claiming worker's write: a fresh mtime
        return real_load(rootDir, state, name)

    monkeypatch.setattr(jobtree.lease, "loadToken", load_as_the_claim_lands)
    assert jobtree.lease.staleTokens(root.handle.rootDir, time.time(), {}) == []

    # The same claim, written 10 s ago and never renewed, is stale.
    monkeypatch.setattr(jobtree.lease, "loadToken", real_load)
    os.utime(token, (past, past))
    stale = jobtree.lease.staleTokens(root.handle.rootDir, time.time(), {})
    assert [(name, c["claim"]) for name, c, _age in stale] == [(token.name, claim_id)]


# -- (b) takeover latency --------------------------------------------------------------------


@pytest.mark.parametrize("lease", [1.0, 2.0])
def test_takeover_latency(tmp_path, sp, lease):
    """Time from SIGKILL of a worker to another worker starting its job again."""
    q = jobtree.createJobQueue(tmp_path / "q", leaseSeconds=lease)
    started, release, rec = tmp_path / "started", tmp_path / "release", tmp_path / "runs.jsonl"
    with q.createJob(
        BlockProc, startedFile=str(started), releaseFile=str(release), recordFile=str(rec)
    ) as root:
        pass
    victim = sp.worker(q.location, "--deadline", 60, name="victim")
    victim.wait_for_file(started)
    heir = sp.worker(q.location, "--deadline", 60, name="heir")
    # The heir is polling once its clock probe file exists (beside the victim's).
    wait_for(lambda: len(os.listdir(Path(q.location) / "clock")) >= 2, what="the heir to poll")
    killed = time.time()
    victim.kill()
    release.touch()
    assert heir.wait(30) == 0, heir.stderr
    runs = read_records(rec)
    assert [(r["attempt"], r["pid"]) for r in runs] == [(1, victim.pid), (2, heir.pid)]
    latency = runs[1]["t"] - killed
    assert root.handle.state == JobState.DONE
    print(
        f"\ntakeover latency with leaseSeconds={lease}: {latency:.2f} s from SIGKILL to the job "
        f"starting in another worker (lease + {GRACE} s grace, renewals every {lease / 4} s, "
        "scans at most once a second)"
    )
    # The victim renewed its lease at most lease/4 before the kill, so the takeover comes between
    # lease + grace - lease/4 and lease + grace + one scan interval (1 s); some slack on top.
    assert lease <= latency <= lease + GRACE + 1.0 + 2.0


# -- (c) retries -----------------------------------------------------------------------------


def test_retry_fails_twice_then_succeeds(tmp_path):
    q = jobtree.createJobQueue(tmp_path / "q")
    counter = tmp_path / "runs.jsonl"
    with q.createJob(
        FlakyProc,
        counterFile=str(counter),
        failTimes=2,
        jobOptions={"maxAttempts": 3, "retryDelay": 0.1},
    ) as root:
        pass
    h = root.handle
    assert drain(q) == 3
    assert h.state == JobState.DONE
    assert h.attempts == 3
    records = [attempt_record(h.location, n) for n in (1, 2, 3)]
    assert [r["outcome"] for r in records] == ["failed", "failed", "done"]
    assert [r["attempt"] for r in records] == [1, 2, 3]
    assert records[0]["error"] == "RuntimeError: failure 1"
    assert records[1]["error"] == "RuntimeError: failure 2"
    assert records[2]["error"] is None
    assert "RuntimeError: failure 2" in records[1]["traceback"]
    assert len({r["claim"] for r in records}) == 3
    for r in records:
        assert r["startTime"] <= r["endTime"]
        assert r["host"]
        assert r["pid"] == os.getpid()
    for n in (1, 2, 3):
        assert (Path(h.location) / f"stdout.{n}.log").read_text() == f"run {n}\n"
        assert f"stderr of run {n}\n" in (Path(h.location) / f"stderr.{n}.log").read_text()
    assert "RuntimeError: failure 1" in (Path(h.location) / "stderr.1.log").read_text()
    assert not (Path(h.location) / "attempt.4.json").exists()
    assert h.stdout == "run 3\n"
    assert h.error is None
    assert q.idleReason() == IdleReason.ALL_DONE


def test_retries_exhausted_job_fails(tmp_path):
    q = jobtree.createJobQueue(tmp_path / "q", maxAttempts=2, retryDelay=0.0)
    with q.createJob(FailProc, message="always") as root:
        pass
    h = root.handle
    assert drain(q) == 2
    assert h.state == JobState.FAILED
    assert h.attempts == 2
    assert [attempt_record(h.location, n)["outcome"] for n in (1, 2)] == ["failed", "failed"]
    assert h.error == "RuntimeError: always"
    assert "Traceback" in h.traceback
    assert q.idleReason() == IdleReason.BLOCKED
    assert q.runNextAvailableJob() is False


def test_retry_later_is_not_a_failure(tmp_path):
    q = jobtree.createJobQueue(tmp_path / "q", retryDelay=0.1)  # maxAttempts 1: no failure allowed
    counter = tmp_path / "runs.jsonl"
    with q.createJob(FlakyProc, counterFile=str(counter), failTimes=2, mode="retry") as root:
        pass
    h = root.handle
    assert drain(q) == 3
    assert h.state == JobState.DONE
    assert h.attempts == 3
    records = [attempt_record(h.location, n) for n in (1, 2, 3)]
    assert [r["outcome"] for r in records] == ["retry", "retry", "done"]
    assert records[0]["error"] == "asked to retry later: not yet (1)"


def test_idle_reason_delayed_while_waiting_out_the_delay(tmp_path):
    q = jobtree.createJobQueue(tmp_path / "q")
    counter = tmp_path / "runs.jsonl"
    with q.createJob(
        FlakyProc,
        counterFile=str(counter),
        failTimes=1,
        jobOptions={"maxAttempts": 2, "retryDelay": 2.0},
    ) as root:
        pass
    h = root.handle
    assert q.runNextAvailableJob() is True
    failed_at = time.monotonic()
    assert q.idleReason() == IdleReason.DELAYED
    assert q.runNextAvailableJob() is False
    assert h.state == JobState.READY
    wait_for(q.runNextAvailableJob, timeout=5.0, what="the retry to run")
    assert time.monotonic() - failed_at >= 0.9  # (whole server seconds: see the next test)
    assert h.state == JobState.DONE
    assert h.attempts == 2


def test_retry_waits_out_its_whole_delay(tmp_path):
    q = jobtree.createJobQueue(tmp_path / "q")
    with q.createJob(
        FlakyProc,
        counterFile=str(tmp_path / "runs.jsonl"),
        failTimes=1,
        jobOptions={"maxAttempts": 2, "retryDelay": 1.0},
    ) as root:
        pass
    # Fail in the middle of a second, where truncation to whole seconds matters most.
    wait_for(lambda: 0.3 < time.time() % 1 < 0.6, timeout=2.0, what="mid-second")
    assert q.runNextAvailableJob() is True
    wait_for(q.runNextAvailableJob, timeout=5.0, interval=0.005, what="the retry")
    first, second = (attempt_record(root.handle.location, n) for n in (1, 2))
    gap = second["startTime"] - first["endTime"]
    assert gap >= 0.95, f"retried {gap:.2f} s after the failure; retryDelay is 1.0 s"


def test_idle_reason_delayed_for_a_sub_job(tmp_path):
    q = jobtree.createJobQueue(tmp_path / "q")
    with q.createJob(NoopProc) as root:
        root.createJob(
            FlakyProc,
            counterFile=str(tmp_path / "runs.jsonl"),
            failTimes=1,
            jobOptions={"maxAttempts": 2, "retryDelay": 30.0},
        )
    assert q.runNextAvailableJob() is True
    assert q.runNextAvailableJob() is False
    assert q.idleReason() == IdleReason.DELAYED


def test_retry_by_hand_reruns_a_failed_subtree(tmp_path):
    q = jobtree.createJobQueue(tmp_path / "q")
    ok, rec = tmp_path / "ok", str(tmp_path / "runs.jsonl")
    with q.createJob(NoopProc, label="root") as root:
        root.createJob(FailUnlessFileProc, okFile=str(ok), recordFile=rec)  # root.0000
        mid = root.createJob(NoopProc, label="mid")  # root.0001
        mid.createJob(FailUnlessFileProc, okFile=str(ok), recordFile=rec)  # root.0001.0000
        mid.createJob(RecordProc, recordFile=rec)  # root.0001.0001
    h = root.handle
    c0, m = h.listSubJobs()
    g0, g1 = m.listSubJobs()
    drain(q)
    assert [j.state for j in (h, c0, m, g0, g1)] == [
        JobState.BLOCKED,
        JobState.FAILED,
        JobState.BLOCKED,
        JobState.FAILED,
        JobState.DONE,
    ]
    assert q.idleReason() == IdleReason.BLOCKED
    ok.touch()
    assert q.retry(g1) == 0  # done: nothing to retry
    assert q.retry(m, recursive=True) == 1
    assert g0.state == JobState.READY
    drain(q)
    assert [j.state for j in (h, c0, m, g0, g1)] == [
        JobState.BLOCKED,
        JobState.FAILED,
        JobState.DONE,
        JobState.DONE,
        JobState.DONE,
    ]
    assert g0.attempts == 2
    assert q.retry(h, recursive=True) == 1
    drain(q)
    assert h.stateCounts()[JobState.DONE] == 5
    assert q.idleReason() == IdleReason.ALL_DONE
    runs = Counter(r["path"] for r in read_records(rec))
    assert runs == {"root.0000": 2, "root.0001.0000": 2, "root.0001.0001": 1}


# -- (d) timeouts ----------------------------------------------------------------------------


def test_timeout_kills_the_job_and_its_grandchildren(tmp_path):
    q = jobtree.createJobQueue(tmp_path / "q")
    sh_pid, gc_pid = tmp_path / "sh.pid", tmp_path / "grandchild.pid"
    cmd = ["sh", "-c", f'echo $$ > "{sh_pid}"; sleep 100 & echo $! > "{gc_pid}"; sleep 100']
    with q.createJob(
        ExecCmdProc, cmd=cmd, resultFile=str(tmp_path / "r.json"), jobOptions={"timeout": 1}
    ) as root:
        pass
    h = root.handle
    t0 = time.monotonic()
    assert q.runNextAvailableJob() is True
    elapsed = time.monotonic() - t0
    assert h.state == JobState.FAILED
    assert h.error == "ran longer than its timeout of 1.0 s; it and its processes were killed"
    assert elapsed < 3.0, f"the timed-out job took {elapsed:.1f} s to stop"
    assert "jobtree: ran longer than its timeout" in h.stderr
    for f in (sh_pid, gc_pid):
        pid = read_pid(f)
        wait_for(lambda pid=pid: not pid_alive(pid), timeout=2.0, what=f"{f.name} {pid} to die")
    assert attempt_record(h.location, 1)["outcome"] == "failed"
    print(f"\ntimeout 1 s: failed after {elapsed:.2f} s: {h.error}")


def test_hang_timeout_kills_a_silent_command(tmp_path):
    q = jobtree.createJobQueue(tmp_path / "q")
    pid_file = tmp_path / "sleep.pid"
    cmd = ["sh", "-c", f'echo started; echo $$ > "{pid_file}"; exec sleep 100']
    with q.createJob(
        ExecCmdProc, cmd=cmd, resultFile=str(tmp_path / "r.json"), jobOptions={"hangTimeout": 1}
    ) as root:
        pass
    h = root.handle
    t0 = time.monotonic()
    assert q.runNextAvailableJob() is True
    elapsed = time.monotonic() - t0
    assert h.state == JobState.FAILED
    assert h.error == (
        "showed no progress or output for its hangTimeout of 1.0 s; it and its processes were killed"
    )
    assert elapsed < 3.0
    assert h.stdout == "started\n"
    wait_for(lambda: not pid_alive(read_pid(pid_file)), timeout=2.0, what="the sleep to die")
    print(f"\nhangTimeout 1 s: failed after {elapsed:.2f} s: {h.error}")


def test_hang_timeout_spares_a_job_that_keeps_talking(tmp_path):
    q = jobtree.createJobQueue(tmp_path / "q")
    cmd = ["sh", "-c", "for i in 1 2 3 4 5 6 7 8; do echo $i; sleep 0.25; done"]
    with q.createJob(
        ExecCmdProc, cmd=cmd, resultFile=str(tmp_path / "r.json"), jobOptions={"hangTimeout": 1}
    ) as root:
        pass
    assert q.runNextAvailableJob() is True
    assert root.handle.state == JobState.DONE


def test_hang_timeout_stops_a_python_job_blocked_in_sleep(tmp_path):
    q = jobtree.createJobQueue(tmp_path / "q")
    with q.createJob(PythonSleepProc, seconds=6.0, jobOptions={"hangTimeout": 1}) as root:
        pass
    t0 = time.monotonic()
    assert q.runNextAvailableJob() is True
    elapsed = time.monotonic() - t0
    assert root.handle.state == JobState.FAILED
    assert elapsed < 3.0, f"hangTimeout 1 s stopped the job only after {elapsed:.1f} s"


# -- (e) cancel, pause, resume, priority -----------------------------------------------------


def test_cancel_a_running_job(tmp_path, sp):
    q = jobtree.createJobQueue(tmp_path / "q")
    started, child_pid, rec = tmp_path / "started", tmp_path / "child.pid", tmp_path / "r.jsonl"
    with q.createJob(NoopProc, label="root") as root:
        mid = root.createJob(NoopProc, label="mid")
        mid.createJob(
            BlockProc,
            startedFile=str(started),
            releaseFile=str(tmp_path / "never"),
            childPidFile=str(child_pid),
        )
        root.createJob(RecordProc, recordFile=str(rec), name="other branch")
    h = root.handle
    m, other = h.listSubJobs()
    (job,) = m.listSubJobs()
    w = sp.worker(q.location, "--until", "idle", "--deadline", 60)
    w.wait_for_file(child_pid)
    child = read_pid(child_pid)
    assert job.state == JobState.RUNNING
    t0 = time.monotonic()
    assert q.cancel(job) == 1
    wait_for(lambda: not pid_alive(child), timeout=3.0, what="the job's process to die")
    stopped_after = time.monotonic() - t0
    assert w.wait(30) == 0, w.stderr
    assert stopped_after < 2.0, f"the cancelled job's process lived {stopped_after:.2f} s"
    assert job.state == JobState.CANCELLED
    assert m.state == JobState.BLOCKED
    assert h.state == JobState.BLOCKED
    assert other.state == JobState.DONE  # the worker went on with the other branch
    assert "idle blocked" in w.stdout
    assert attempt_record(job.location, 1)["outcome"] == "cancelled"
    assert "no longer this worker's (cancelled)" in w.stderr, w.stderr
    assert q.idleReason() == IdleReason.BLOCKED
    print(f"\ncancel: the running job's process was killed {stopped_after:.2f} s after cancel()")


def two_branches(q: jobtree.JobQueue, rec: str) -> jobtree.JobHandle:
    """root over branch a (a0, a1) and branch b (b0), each job recording its run in *rec*."""
    with q.createJob(RecordProc, recordFile=rec, name="root") as root:
        a = root.createJob(RecordProc, recordFile=rec, name="a")
        a.createJob(RecordProc, recordFile=rec, name="a0")
        a.createJob(RecordProc, recordFile=rec, name="a1")
        b = root.createJob(RecordProc, recordFile=rec, name="b")
        b.createJob(RecordProc, recordFile=rec, name="b0")
    return root.handle


def test_cancel_a_waiting_subtree(tmp_path):
    q = jobtree.createJobQueue(tmp_path / "q")
    rec = str(tmp_path / "runs.jsonl")
    h = two_branches(q, rec)
    ah, _bh = h.listSubJobs()
    assert q.cancel(ah) == 3
    assert [j.state for j in (ah, *ah.listSubJobs())] == [JobState.CANCELLED] * 3
    assert h.state == JobState.BLOCKED
    drain(q)
    assert [r["name"] for r in read_records(rec)] == ["b0", "b"]
    assert q.idleReason() == IdleReason.BLOCKED
    assert q.cancel(ah) == 0  # already cancelled
    assert q.retry(ah) == 3
    drain(q)
    assert [r["name"] for r in read_records(rec)] == ["b0", "b", "a0", "a1", "a", "root"]
    assert q.idleReason() == IdleReason.ALL_DONE


def test_pause_and_resume_a_subtree(tmp_path):
    q = jobtree.createJobQueue(tmp_path / "q")
    rec = str(tmp_path / "runs.jsonl")
    h = two_branches(q, rec)
    ah, _bh = h.listSubJobs()
    assert q.pause(ah) == 2
    assert [j.state for j in ah.listSubJobs()] == [JobState.PAUSED] * 2
    drain(q)
    assert [r["name"] for r in read_records(rec)] == ["b0", "b"]  # the other branch ran
    assert q.runNextAvailableJob() is False
    assert q.resume(ah) == 2
    drain(q)
    assert [r["name"] for r in read_records(rec)] == ["b0", "b", "a0", "a1", "a", "root"]
    assert q.idleReason() == IdleReason.ALL_DONE


def test_idle_reason_paused_for_a_paused_root(tmp_path):
    q = jobtree.createJobQueue(tmp_path / "q")
    with q.createJob(NoopProc) as root:
        pass
    assert q.pause(root.handle) == 1
    assert root.handle.state == JobState.PAUSED
    assert q.runNextAvailableJob() is False
    assert q.idleReason() == IdleReason.PAUSED
    assert q.resume(root.handle) == 1
    assert q.runNextAvailableJob() is True
    assert q.idleReason() == IdleReason.ALL_DONE


def test_idle_reason_paused_for_a_paused_subtree(tmp_path):
    q = jobtree.createJobQueue(tmp_path / "q")
    with q.createJob(NoopProc) as root:
        a = root.createJob(NoopProc)
        a.createJob(NoopProc)
        root.createJob(NoopProc)
    assert q.pause(root.handle.listSubJobs()[0]) == 1
    drain(q)
    assert q.idleReason() == IdleReason.PAUSED


def test_set_priority_on_a_subtree_changes_the_order(tmp_path):
    q = jobtree.createJobQueue(tmp_path / "q")
    rec = str(tmp_path / "runs.jsonl")
    with q.createJob(RecordProc, recordFile=rec, name="root") as root:
        for name in "ab":
            c = root.createJob(RecordProc, recordFile=rec, name=name)
            for i in range(3):
                c.createJob(RecordProc, recordFile=rec, name=f"{name}{i}")
    h = root.handle
    _ah, bh = h.listSubJobs()
    assert q.setPriority(bh, 5) == 4
    assert bh.jobOptions["priority"] == 5
    assert all(j.jobOptions["priority"] == 5 for j in bh.listSubJobs())
    drain(q)
    names = [r["name"] for r in read_records(rec)]
    assert names == ["b0", "b1", "b2", "b", "a0", "a1", "a2", "a", "root"]


# -- (f) check() -----------------------------------------------------------------------------

OLD = time.time() - 7200  # older than every "abandoned after" limit of check()


def make_old(path: Path) -> None:
    os.utime(path, (OLD, OLD), follow_symlinks=False)


def test_check_finds_and_repairs_every_problem(tmp_path):
    q = jobtree.createJobQueue(tmp_path / "q", leaseSeconds=2.0)
    rec = str(tmp_path / "runs.jsonl")
    with q.createJob(RecordProc, recordFile=rec, name="root") as root:
        for i in range(6):
            c = root.createJob(RecordProc, recordFile=rec, name=f"c{i}")
            if i == 3:
                c.createJob(RecordProc, recordFile=rec, name="c3.0")
    h = root.handle
    rd = Path(h.rootDir)
    idx = rd / "_index"
    qd = Path(q.location)
    expected: list[tuple[str, Path]] = []

    # A claim whose worker died long ago.
    stale = idx / "running" / "root.0000@0123456789ab"
    os.rename(idx / "ready" / "root.0000@p0", stale)
    claim = {"claim": "0123456789ab", "attempt": 1, "host": "gone", "pid": 1, "leaseSeconds": 2.0}
    stale.write_text(json.dumps(claim))
    make_old(stale)
    expected.append(("stale claim", stale))
    # A worker died between its commit and the cascade: done, but the parent still waits for it.
    os.rename(idx / "ready" / "root.0001@p0", idx / "done" / "root.0001")
    expected.append(("unreleased dependant", rd))
    # A token lost by hand.
    os.unlink(idx / "ready" / "root.0002@p0")
    expected.append(("job without token", rd / "0002"))
    # A worker died after emptying _pending but before making the waiting job ready.
    os.rename(idx / "ready" / "root.0003.0000@p0", idx / "done" / "root.0003.0000")
    os.unlink(rd / "0003" / "_pending" / "0000")
    os.rmdir(rd / "0003" / "_pending")
    make_old(idx / "waiting" / "root.0003")
    expected.append(("stuck waiting job", rd / "0003"))
    # A takeover interrupted between its two renames.
    takeover = idx / "running" / ".root.0004@abcdefabcdef.takeover.a1b2c3"
    os.rename(idx / "ready" / "root.0004@p0", takeover)
    make_old(takeover)
    expected.append(("interrupted takeover", takeover))
    # A token for a job directory that does not exist.
    ghost = idx / "ready" / "root.0009@p0"
    ghost.touch()
    expected.append(("token without job", ghost))
    # An atomic write that never finished.
    temp = idx / "ready" / ".root.0005@p0.4242.deadbeef.tmp"
    temp.touch()
    make_old(temp)
    expected.append(("orphaned temporary file", temp))
    # An index directory gone.
    os.rmdir(idx / "cancelled")
    expected.append(("missing index directory", idx / "cancelled"))
    # A submitter that died before activating its root.
    half = q.createJob(NoopProc, label="never activated")
    staged = Path(half.location)
    make_old(staged)
    expected.append(("half-submitted root", staged))
    # A deletion that died after moving a root into trash/.
    trashed = qd / "trash" / "20200101-000000-000000-abcdef.0a0b0c0d"
    (trashed / "0000").mkdir(parents=True)
    (trashed / "job.json").write_text("{}")
    expected.append(("interrupted deletion", trashed))
    # The clock probe of a process that died.
    probe = qd / "clock" / "deadhost.4242.abcdef"
    probe.write_text("0\n")
    make_old(probe)
    expected.append(("stale probe file", probe))

    def kinds(problems):
        return sorted((p.kind, Path(p.path)) for p in problems)

    found = q.check()
    assert all(not p.repaired for p in found)
    missing = set(expected) - set(kinds(found))
    assert not missing, f"check() missed {sorted(missing)}; it found {found}"
    for p in found:
        assert str(p.path) in str(p)
        assert p.message

    repaired = q.check(repair=True)
    missing = set(expected) - set(kinds(repaired))
    assert not missing, f"check(repair=True) missed {sorted(missing)}; it found {repaired}"
    assert all(p.repaired for p in repaired), [p for p in repaired if not p.repaired]
    assert q.check(repair=True) == []
    assert q.check() == []

    drain(q)
    assert q.idleReason() == IdleReason.ALL_DONE
    assert h.state == JobState.DONE
    assert h.stateCounts()[JobState.DONE] == 8
    assert os.listdir(qd / "staging") == []
    assert os.listdir(qd / "trash") == []
    assert not probe.exists()
    ran = Counter(r["name"] for r in read_records(rec))
    # root.0001 and root.0003.0000 were marked done by hand above: they never ran.
    assert ran == {"c0": 1, "c2": 1, "c3": 1, "c4": 1, "c5": 1, "root": 1}
    assert json.loads((idx / "done" / "root.0000").read_text())["history"][0]["outcome"] == "lost"
    print("\ncheck() found:\n  " + "\n  ".join(str(p) for p in found))


def test_check_leaves_a_takeover_in_progress_alone(tmp_path):
    q = jobtree.createJobQueue(tmp_path / "q")
    with q.createJob(NoopProc) as root:
        root.createJob(NoopProc)
    idx = Path(root.handle.rootDir) / "_index"
    # A worker is between the two renames of a takeover (lease.takeOver) right now.
    os.rename(
        idx / "ready" / "root.0000@p0", idx / "running" / ".root.0000@0a0b0c0d0e0f.takeover.123abc"
    )
    found = q.check(repair=True)
    assert [p for p in found if p.kind == "job without token"] == []
    assert index_tokens(root.handle.rootDir)["ready"] == []


def test_check_finds_a_temporary_file_in_a_job_directory(tmp_path):
    q = jobtree.createJobQueue(tmp_path / "q")
    with q.createJob(NoopProc) as root:
        pass
    temp = Path(root.handle.location) / ".job.json.4242.deadbeef.tmp"
    temp.write_text("{")
    make_old(temp)
    found = q.check(repair=True)
    assert [(p.kind, p.path) for p in found] == [("orphaned temporary file", str(temp))]
    assert not temp.exists()


def test_check_repair_while_workers_drain(tmp_path, sp):
    q = jobtree.createJobQueue(tmp_path / "q")
    rec = str(tmp_path / "runs.jsonl")
    expected = set()
    for _ in range(2):
        with q.createJob(RecordProc, recordFile=rec) as root:
            for _ in range(10):
                child = root.createJob(RecordProc, recordFile=rec)
                for _ in range(15):
                    child.createJob(RecordProc, recordFile=rec)
        expected |= {(root.handle.rootId, p) for p in _paths(root.handle)}
    barrier = tmp_path / "barrier"
    workers = [sp.worker(q.location, "--barrier", barrier, "--deadline", 60) for _ in range(2)]
    barrier.touch()
    rounds, seen = 0, []
    deadline = time.monotonic() + 60
    while any(w.poll() is None for w in workers) and time.monotonic() < deadline:
        seen += q.check(repair=True)
        rounds += 1
    for w in workers:
        assert w.wait(10) == 0, w.stderr
        assert "Traceback" not in w.stderr, w.stderr
    ran = Counter((r["rootId"], r["path"]) for r in read_records(rec))
    assert set(ran) == expected
    assert max(ran.values()) == 1, [k for k, n in ran.items() if n > 1]
    assert q.idleReason() == IdleReason.ALL_DONE
    assert q.check() == []
    print(
        f"\n{rounds} check(repair=True) rounds while 2 workers ran {len(ran)} jobs; found: {seen}"
    )


def _paths(h: jobtree.JobHandle) -> list[str]:
    return [h.path, *(p for c in h.listSubJobs() for p in _paths(c))]


def test_attempt_records_tell_every_attempt(tmp_path):
    """JobHandle.attemptRecords(): one entry per attempt, from its record file, the running
    claim, or the token's history for an attempt whose worker died."""
    q = jobtree.createJobQueue(tmp_path / "q", maxAttempts=2, retryDelay=0)
    with q.createJob(FailProc) as root:
        pass
    h = root.handle
    assert h.attemptRecords() == []
    assert q.runNextAvailableJob()
    assert q.runNextAvailableJob()
    records = h.attemptRecords()
    assert [r["attempt"] for r in records] == [1, 2]
    assert [r["outcome"] for r in records] == ["failed", "failed"]
    assert all(r["host"] for r in records)
    # Without its record file an attempt is told by the token's history.
    (Path(h.location) / "attempt.1.json").unlink()
    first = h.attemptRecords()[0]
    assert first["outcome"] == "failed"
    assert first["host"] == records[0]["host"]
