"""Requirements, limits, notBefore, metadata, hooks, schedules, retention and whyWaiting,
with real worker processes where several hosts would race."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from farmprocs import Fail, Interval, records

import jobtree
from jobtree import IdleReason, JobState, WorkerInfo

TESTS = Path(__file__).parent


def workers(
    queue: str, n: int, seconds: float, pools: str | None = None
) -> list[subprocess.Popen[bytes]]:
    env = dict(
        os.environ, PYTHONPATH=os.pathsep.join([str(TESTS), os.environ.get("PYTHONPATH", "")])
    )
    args = [sys.executable, str(TESTS / "farm_worker.py"), queue, str(seconds)] + (
        [pools] if pools else []
    )
    return [
        subprocess.Popen(args, env=env, stderr=subprocess.PIPE, start_new_session=True)
        for _ in range(n)
    ]


def finish(procs: list[subprocess.Popen[bytes]], timeout: float = 90) -> None:
    for p in procs:
        try:
            _, err = p.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(p.pid, 9)
            p.communicate()
            pytest.fail("a worker hung")
        assert p.returncode == 0, err.decode()


def drain(q: jobtree.JobQueue) -> None:
    while q.runNextAvailableJob():
        pass


def test_requirements_match_pools_and_explain(tmp_path):
    q = jobtree.createJobQueue(tmp_path / "q")
    log = str(tmp_path / "log")
    with q.createJob(Interval, log=log, tag="root") as root:
        gpu = root.createJob(
            Interval, log=log, tag="gpu", jobOptions={"requires": {"pools": ["gpu"], "minCores": 1}}
        )
        root.createJob(Interval, log=log, tag="any")
    cpuOnly = jobtree.JobQueue(q.location, worker=WorkerInfo(pools=("cpu",)))
    drain(cpuOnly)
    assert [r["tag"] for r in records(log)] == ["any"]
    handle = q.jobHandle(gpu.location)
    assert handle.state is JobState.READY
    assert jobtree.JobQueue(q.location, worker=WorkerInfo(pools=("gpu",))).runNextAvailableJob()
    assert handle.state is JobState.DONE
    with pytest.raises(jobtree.InvalidSetting, match="unknown requirement 'gpus'"):
        q.createJob(Interval, log=log, jobOptions={"requires": {"gpus": 1}})


def test_requirements_other_keys():
    me = WorkerInfo(host="n1", os="linux", cores=4, ramGB=8.0, pools=("a",), tags=("x", "y"))
    from jobtree.host import unmet

    assert (
        unmet(me, {"os": "linux", "minCores": 4, "minRamGB": 8, "tags": ["x"], "host": "n1"}) == []
    )
    assert (
        len(unmet(me, {"os": "darwin", "minCores": 8, "minRamGB": 16, "tags": ["z"], "host": "n2"}))
        == 5
    )


def test_limit_never_exceeded_under_contention(tmp_path):
    q = jobtree.createJobQueue(tmp_path / "q")
    q.setLimit("licence", 2)
    log = str(tmp_path / "log")
    with q.createJob(Interval, log=str(tmp_path / "rootlog")) as root:
        for _ in range(24):
            root.createJob(Interval, log=log, secs=0.05, jobOptions={"limits": ["licence"]})
        for _ in range(8):
            root.createJob(Interval, log=str(tmp_path / "free"), secs=0.02)
    finish(workers(q.location, 4, 0))
    runs = records(log)
    assert len(runs) == 24
    events = sorted([(r["start"], 1) for r in runs] + [(r["end"], -1) for r in runs])
    level = peak = 0
    for _, step in events:
        level += step
        peak = max(peak, level)
    assert peak == 2, f"{peak} jobs held a 2-slot limit at once"
    assert q.idleReason() is IdleReason.ALL_DONE


def test_undefined_limit_is_refused(tmp_path):
    q = jobtree.createJobQueue(tmp_path / "q")
    with pytest.raises(jobtree.SubmissionError, match="limit 'nope' is not defined"):
        q.createJob(Interval, log="x", jobOptions={"limits": ["nope"]})
    assert q.listJobs() == []


def test_full_limit_is_explained(tmp_path):
    q = jobtree.createJobQueue(tmp_path / "q")
    q.setLimit("licence", 0)
    with q.createJob(
        Interval, log=str(tmp_path / "log"), jobOptions={"limits": ["licence"]}
    ) as root:
        pass
    assert not q.runNextAvailableJob()
    assert "waiting for limit 'licence': 0 of 0 slots in use" in q.whyWaiting(root.handle)
    q.setLimit("licence", 1)
    time.sleep(1.1)  # limits are re-read at most once a second
    assert q.runNextAvailableJob()


def test_not_before_and_metadata(tmp_path):
    q = jobtree.createJobQueue(tmp_path / "q")
    with q.createJob(
        Interval,
        log=str(tmp_path / "log"),
        jobOptions={"notBefore": time.time() + 1.5, "metadata": {"shot": "010"}},
    ) as root:
        child = root.createJob(Interval, log=str(tmp_path / "log"))
    assert q.jobHandle(child.location).jobOptions["metadata"] == {"shot": "010"}
    drain(q)
    assert q.idleReason() is IdleReason.DELAYED
    assert "delayed until" in q.whyWaiting(root.handle)
    deadline = time.monotonic() + 10
    while not q.runNextAvailableJob():
        assert time.monotonic() < deadline
        time.sleep(0.05)
    assert root.handle.state is JobState.DONE
    with pytest.raises(jobtree.InvalidSetting, match="ISO-8601"):
        q.createJob(Interval, log="x", jobOptions={"notBefore": "tomorrow"})


def test_why_waiting(tmp_path):
    q = jobtree.createJobQueue(tmp_path / "q")
    log = str(tmp_path / "log")
    with q.createJob(Interval, log=log, label="movie") as root:
        a = root.createJob(Fail, label="bad frame")
        root.createJob(Interval, log=log)
    assert q.whyWaiting(root.handle) == "waiting for 2 sub-jobs"
    drain(q)
    assert q.whyWaiting(q.jobHandle(a.location)).startswith(
        "failed: RuntimeError: this job fails on purpose"
    )
    assert "blocked: root.0000 (bad frame) failed" in q.whyWaiting(root.handle)
    q.pause(root.handle)
    q.retry(q.jobHandle(a.location))
    assert q.whyWaiting(q.jobHandle(a.location)) == "paused by root (movie); resume it to run"


def test_hooks_fire_exactly_once(tmp_path):
    q = jobtree.createJobQueue(tmp_path / "q")
    hooks = str(tmp_path / "hooks")
    with q.createJob(Interval, log=str(tmp_path / "log"), label="ok") as good:
        for _ in range(20):
            good.createJob(Interval, log=str(tmp_path / "log"))
        good.onDone(Interval, log=hooks, tag="done", label="mail: done")
        good.onFailed(Interval, log=hooks, tag="failed")
    with q.createJob(Interval, log=str(tmp_path / "log"), label="bad") as bad:
        bad.createJob(Fail)
        bad.createJob(Fail)
        bad.onFailed(Interval, log=hooks, tag="failed")
    finish(workers(q.location, 3, 8))
    tags = sorted(r["tag"] for r in records(hooks))
    assert tags == ["done", "failed"]
    hookRoot = next(h for h in q.listJobs() if h.label == "mail: done")
    assert hookRoot.jobOptions["metadata"] == {"hookFor": good.rootId, "hookWhen": "done"}


def test_schedule_three_workers_one_job_per_slot(tmp_path):
    q = jobtree.createJobQueue(tmp_path / "q")
    log = str(tmp_path / "log")
    q.schedule("tick", Interval, interval=1.0, repeats=4, log=log, tag="tick")
    finish(workers(q.location, 3, 6))
    runs = records(log)
    assert len(runs) == 4, runs
    slots = sorted(h.jobOptions["metadata"]["slot"] for h in q.listJobs())
    assert len(slots) == len(set(slots)) == 4
    assert q.listSchedules()[0]["created"] == 4
    q.unschedule("tick")
    assert q.listSchedules() == []


def test_schedule_catch_up(tmp_path):
    q = jobtree.createJobQueue(tmp_path / "q")
    start = time.time() - 10.5  # the farm was down for ten slots
    q.schedule("late", Interval, interval=1.0, catchUp=True, start=start, log=str(tmp_path / "a"))
    q.schedule("skip", Interval, interval=1.0, catchUp=False, start=start, log=str(tmp_path / "b"))
    q.runNextAvailableJob()  # any worker's first look creates the due slots
    byName = {s["name"]: s["created"] for s in q.listSchedules()}
    assert byName["late"] == 11
    assert byName["skip"] == 1


def test_schedule_cron_and_bad_input(tmp_path):
    q = jobtree.createJobQueue(tmp_path / "q")
    q.schedule(
        "minutely",
        Interval,
        cron="* * * * *",
        start=time.time() - 125,
        catchUp=True,
        log=str(tmp_path / "c"),
    )
    q.runNextAvailableJob()
    assert q.listSchedules()[0]["created"] in (2, 3)
    with pytest.raises(jobtree.InvalidSetting, match="not a valid cron"):
        q.schedule("bad", Interval, cron="every day", log="x")
    with pytest.raises(jobtree.InvalidSetting, match="exactly one of interval"):
        q.schedule("both", Interval, cron="* * * * *", interval=5, log="x")


def test_retention_keeps_failures_longer(tmp_path):
    q = jobtree.createJobQueue(tmp_path / "q")
    for i in range(4):
        with q.createJob(Interval, log=str(tmp_path / "log"), label=f"ok{i}"):
            pass
    with q.createJob(Fail, label="broken"):
        pass
    drain(q)
    time.sleep(0.6)
    archived = q.archive(doneAge=0.2)  # failures are kept 4x as long: 0.8 s
    assert len(archived) == 4
    assert [h.label for h in q.listJobs()] == ["broken"]
    assert sorted(q.listArchived()) == sorted(archived)
    broken = q.listJobs()[0].rootId
    assert q.archive(doneAge=0, failedAge=0, action="delete") == [broken]
    assert q.listJobs() == []


def test_retention_setting_applied_by_workers(tmp_path):
    q = jobtree.createJobQueue(tmp_path / "q", retention={"keepDone": 2})
    for i in range(5):
        with q.createJob(Interval, log=str(tmp_path / "log"), label=f"r{i}"):
            pass
    drain(q)
    q2 = jobtree.JobQueue(q.location)  # a fresh worker applies retention on its first look
    q2.runNextAvailableJob()
    assert [h.label for h in q.listJobs()] == ["r3", "r4"]


def test_a_stray_sigusr2_does_not_end_a_job(tmp_path):
    """The monitor interrupts a job in the main thread with SIGUSR2; one sent by anybody else
    must be ignored, not end the attempt early (as done, with its command killed)."""
    import signal

    q = jobtree.createJobQueue(tmp_path / "q", leaseSeconds=30)
    log = str(tmp_path / "log")
    with q.createJob(Interval, log=log, secs=1.5) as root:
        pass
    (worker,) = workers(q.location, 1, 0)
    deadline = time.monotonic() + 20
    while root.handle.state is not JobState.RUNNING:
        assert time.monotonic() < deadline
        time.sleep(0.02)
    time.sleep(0.3)
    os.kill(worker.pid, signal.SIGUSR2)
    finish([worker])
    (run,) = records(log)
    assert run["end"] - run["start"] >= 1.45  # the sleep was not cut short
    assert root.handle.state is JobState.DONE
