"""JobQueue, submission, ordering, deletion, dependencies, idle reasons, JobHandle, disk format."""

from __future__ import annotations

import json
import logging
import os
import re
import socket
from pathlib import Path

import pytest
from procs_for_tests import (
    BadParamProc,
    BlockingProc,
    FailProc,
    NoopProc,
    PostCreateProc,
    PrintLogProc,
    RecordProc,
    StatusProc,
)
from testutil import read_records, run_all, wait_for

import jobtree
from jobtree import (
    CorruptJob,
    DependencyCycleError,
    IdleReason,
    InvalidSetting,
    Job,
    JobHandle,
    JobProc,
    JobQueue,
    JobRoot,
    JobRunningError,
    JobState,
    JobTreeError,
    ProcNotFound,
    QueueNotFound,
    QueueVersionError,
    SubmissionError,
    createJobQueue,
)

INDEX_DIRS = ("waiting", "ready", "running", "done", "failed")
ROOT_ID_RE = re.compile(r"^\d{8}-\d{6}-\d{6}-[0-9a-f]{6}$")
CLAIM_RE = re.compile(r"^[0-9a-f]{12}$")


def listing(path: str | os.PathLike[str]) -> list[str]:
    """Sorted names in a directory, without temporary dot-files; [] if it does not exist."""
    try:
        return sorted(n for n in os.listdir(path) if not n.startswith("."))
    except FileNotFoundError:
        return []


def roots_dir(q: JobQueue) -> Path:
    return Path(q.location) / "roots"


def tokens(root_dir: str | os.PathLike[str]) -> dict[str, list[str]]:
    index = Path(root_dir) / "_index"
    return {d: listing(index / d) for d in INDEX_DIRS}


def nonzero(counts: dict[JobState, int]) -> dict[JobState, int]:
    return {k: v for k, v in counts.items() if v}


def labels(handles: list[JobHandle]) -> list[str | None]:
    return [h.label for h in handles]


def record_order(record_file: Path) -> list[str]:
    return [r["name"] for r in read_records(record_file)]


def assert_nothing_published(q: JobQueue) -> None:
    assert q.listJobs() == []
    assert listing(roots_dir(q)) == []
    assert q.runNextAvailableJob() is False
    assert q.idleReason() == IdleReason.EMPTY
    # A fresh reader sees the same.
    assert JobQueue(q.location).listJobs() == []


# --------------------------------------------------------------------------------------------
# The public names


def test_public_api_and_error_hierarchy():
    for name in jobtree.__all__:
        assert hasattr(jobtree, name), name
    assert issubclass(QueueNotFound, JobTreeError)
    assert issubclass(QueueNotFound, LookupError)
    assert issubclass(QueueVersionError, JobTreeError)
    assert issubclass(CorruptJob, JobTreeError)
    assert issubclass(CorruptJob, ValueError)
    assert issubclass(JobRunningError, JobTreeError)
    assert issubclass(JobRunningError, RuntimeError)
    assert issubclass(DependencyCycleError, JobTreeError)
    assert issubclass(DependencyCycleError, ValueError)
    assert issubclass(InvalidSetting, JobTreeError)
    assert issubclass(InvalidSetting, ValueError)
    assert issubclass(ProcNotFound, JobTreeError)
    assert issubclass(ProcNotFound, LookupError)
    assert issubclass(SubmissionError, JobTreeError)
    assert issubclass(SubmissionError, ValueError)
    assert issubclass(JobRoot, Job)
    assert {s.value for s in JobState} >= {
        "waiting",
        "ready",
        "running",
        "done",
        "failed",
        "blocked",
    }
    assert JobState.DONE == "done"
    assert IdleReason.EMPTY == "empty"
    assert IdleReason.ALL_DONE == "all done"
    assert IdleReason.RUNNING == "running elsewhere"
    assert IdleReason.BLOCKED == "blocked"


# --------------------------------------------------------------------------------------------
# createJobQueue / JobQueue


def test_create_queue_parent_missing(tmp_path):
    parent = tmp_path / "missing"
    with pytest.raises(FileNotFoundError, match=re.escape(str(parent))):
        createJobQueue(parent / "q")
    assert not parent.exists()


def test_create_queue_refuses_non_empty_non_queue_dir(tmp_path):
    d = tmp_path / "stuff"
    d.mkdir()
    (d / "precious.txt").write_text("keep me")
    with pytest.raises(FileExistsError) as info:
        createJobQueue(d)
    assert isinstance(info.value, JobTreeError)
    assert str(d) in str(info.value)
    assert listing(d) == ["precious.txt"]
    assert (d / "precious.txt").read_text() == "keep me"
    with pytest.raises(QueueNotFound):
        JobQueue(d)


def test_create_queue_refuses_existing_queue(tmp_path):
    q = createJobQueue(tmp_path / "q")
    q.createJob(NoopProc).activate()
    with pytest.raises(FileExistsError):
        createJobQueue(tmp_path / "q")
    assert len(JobQueue(tmp_path / "q").listJobs()) == 1


def test_create_queue_in_existing_empty_dir(tmp_path):
    d = tmp_path / "empty"
    d.mkdir()
    q = createJobQueue(d)
    assert (d / "jobtree-queue.json").is_file()
    assert q.listJobs() == []


def test_create_queue_unknown_setting(tmp_path):
    with pytest.raises(InvalidSetting, match="colour") as info:
        createJobQueue(tmp_path / "q", colour="red")
    assert isinstance(info.value, ValueError)
    assert not (tmp_path / "q" / "jobtree-queue.json").exists()


def test_settings_stored(tmp_path):
    q = createJobQueue(tmp_path / "q", priority=5)
    assert q.settings["priority"] == 5
    q.settings["priority"] = 99  # a copy: changing it changes nothing
    assert q.settings["priority"] == 5
    assert JobQueue(tmp_path / "q").settings["priority"] == 5
    marker = json.loads((tmp_path / "q" / "jobtree-queue.json").read_text())
    assert marker["settings"]["priority"] == 5


def test_default_settings(queue):
    # Unset settings fall back to the built-in default (docs/format.md, job.json).
    assert queue.settings.get("priority", 0) == 0
    with queue.createJob(NoopProc) as root:
        pass
    assert root.handle.jobOptions["priority"] == 0


def test_queue_not_found(tmp_path):
    with pytest.raises(QueueNotFound, match=re.escape(str(tmp_path))) as info:
        JobQueue(tmp_path)
    assert isinstance(info.value, LookupError)
    with pytest.raises(LookupError):
        JobQueue(tmp_path / "does-not-exist")


def test_newer_format_version_refused(tmp_path):
    createJobQueue(tmp_path / "q")
    marker_file = tmp_path / "q" / "jobtree-queue.json"
    marker = json.loads(marker_file.read_text())
    marker["version"] = 7
    marker_file.write_text(json.dumps(marker))
    with pytest.raises(QueueVersionError, match="7") as info:
        JobQueue(tmp_path / "q")
    assert isinstance(info.value, JobTreeError)


def test_empty_queue_none():
    q = JobQueue(None)
    assert q.listJobs() == []
    assert q.runNextAvailableJob() is False
    with pytest.raises(JobTreeError):
        q.createJob(NoopProc)
    with pytest.raises(JobTreeError):
        q.createJobRoot(NoopProc)


def test_location_is_absolute(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    q = createJobQueue("q")
    assert os.path.isabs(q.location)
    assert isinstance(q.location, str)
    assert os.path.samefile(q.location, tmp_path / "q")
    q2 = JobQueue("q")
    assert os.path.isabs(q2.location)
    assert os.path.samefile(q2.location, tmp_path / "q")
    # Still right after the cwd changes.
    monkeypatch.chdir("/")
    root = q2.createJob(NoopProc)
    root.activate()
    assert os.path.samefile(Path(root.location).parent.parent, tmp_path / "q")


# --------------------------------------------------------------------------------------------
# Submission


def test_create_job_and_create_job_root_are_the_same(queue, tmp_path):
    rec = tmp_path / "rec"
    a = queue.createJobRoot(RecordProc, recordFile=str(rec), name="a")
    b = queue.createJob(RecordProc, recordFile=str(rec), name="b")
    assert isinstance(a, JobRoot)
    assert isinstance(b, JobRoot)
    a.activate()
    b.activate()
    assert len(queue.listJobs()) == 2
    assert run_all(queue) == 2
    assert sorted(record_order(rec)) == ["a", "b"]


def test_with_block_activates(queue, tmp_path):
    rec = tmp_path / "rec"
    with queue.createJob(RecordProc, label="r", recordFile=str(rec), name="r") as root:
        staging_location = root.location
        root.createJob(RecordProc, label="c", recordFile=str(rec), name="c")
        assert queue.listJobs() == []
        assert queue.runNextAvailableJob() is False
    assert root.location != staging_location
    assert Path(root.location).parent == roots_dir(queue)
    assert os.path.isdir(root.location)
    assert not os.path.exists(staging_location)
    assert queue.listJobs() == [root.handle]
    assert labels(root.handle.listSubJobs()) == ["c"]
    assert run_all(queue) == 2
    assert record_order(rec) == ["c", "r"]


def test_exception_inside_with_block_discards_everything(queue, tmp_path):
    rec = tmp_path / "rec"
    with (  # noqa: PT012
        pytest.raises(KeyError, match="oops"),
        queue.createJob(RecordProc, recordFile=str(rec), name="r") as root,
    ):
        root.createJob(RecordProc, recordFile=str(rec), name="c")
        raise KeyError("oops")
    assert_nothing_published(queue)
    # Whatever is left in staging/ holds no runnable job.
    assert not read_records(rec)


def test_never_activated_root_never_runs(queue, tmp_path):
    rec = tmp_path / "rec"
    root = queue.createJobRoot(RecordProc, recordFile=str(rec), name="r")
    root.createJob(RecordProc, recordFile=str(rec), name="c")
    assert_nothing_published(queue)
    assert run_all(queue) == 0
    assert not rec.exists()


@pytest.mark.parametrize("bad", [object(), b"bytes", {1, 2}, {"nested": object()}])
def test_root_param_json_cannot_hold(queue, bad):
    with pytest.raises(TypeError, match="weird"):
        queue.createJob(NoopProc, fine=1, weird=bad)
    assert_nothing_published(queue)


def test_sub_job_param_json_cannot_hold(queue):
    with pytest.raises(TypeError, match="weird"), queue.createJob(NoopProc) as root:
        root.createJob(NoopProc, weird=object())
    assert_nothing_published(queue)


def test_job_type_as_class_and_string(queue, tmp_path):
    rec = tmp_path / "rec"
    a = queue.createJob(RecordProc, recordFile=str(rec), name="class")
    a.activate()
    b = queue.createJob("procs_for_tests:RecordProc", recordFile=str(rec), name="string")
    b.activate()
    assert a.handle.jobType == "procs_for_tests:RecordProc"
    assert b.handle.jobType == "procs_for_tests:RecordProc"
    assert run_all(queue) == 2
    assert record_order(rec) == ["class", "string"]


@pytest.mark.parametrize(
    "job_type",
    [
        "procs_for_tests:NoSuchProc",
        "no_such_module_for_jobtree_tests:Proc",
        "no-such-entry-point-for-jobtree-tests",
    ],
)
def test_unknown_job_type(queue, job_type):
    with pytest.raises(ProcNotFound) as info:
        queue.createJob(job_type)
    assert isinstance(info.value, LookupError)
    assert_nothing_published(queue)


def test_unknown_job_type_for_sub_job(queue):
    with pytest.raises(ProcNotFound), queue.createJob(NoopProc) as root:
        root.createJob("procs_for_tests:NoSuchProc")
    assert_nothing_published(queue)


def test_constructor_raising_is_submission_error(queue):
    with pytest.raises(SubmissionError) as info:
        queue.createJob(BadParamProc, value=-1)
    assert isinstance(info.value, ValueError)
    cause = info.value.__cause__
    assert isinstance(cause, ValueError)
    assert "value must be >= 0, got -1" in str(cause)
    assert_nothing_published(queue)
    # The same class with a good value submits and runs.
    queue.createJob(BadParamProc, value=1).activate()
    assert run_all(queue) == 1


def test_post_create_called_once_with_job_dir(queue, tmp_path):
    rec = tmp_path / "rec"
    root = queue.createJob(PostCreateProc, recordFile=str(rec))
    records = read_records(rec)
    assert len(records) == 1
    assert records[0]["isdir"] is True
    assert records[0]["pid"] == os.getpid()
    assert os.path.samefile(records[0]["jobDir"], root.location)
    child = root.createJob(PostCreateProc, recordFile=str(rec))
    records = read_records(rec)
    assert len(records) == 2
    assert os.path.samefile(records[1]["jobDir"], child.location)
    root.activate()
    assert run_all(queue) == 2
    assert len(read_records(rec)) == 2  # running does not call postCreate again


def test_unknown_job_option(queue):
    with pytest.raises(InvalidSetting, match="colour"):
        queue.createJob(NoopProc, jobOptions={"colour": "red"})
    assert_nothing_published(queue)
    with pytest.raises(InvalidSetting, match="colour"), queue.createJob(NoopProc) as root:
        root.createJob(NoopProc, jobOptions={"colour": "red"})
    assert_nothing_published(queue)


def test_priority_defaults_and_inheritance(tmp_path):
    q = createJobQueue(tmp_path / "q", priority=7)
    with q.createJob(NoopProc) as r1:
        c1 = r1.createJob(NoopProc)
    with q.createJob(NoopProc, jobOptions={"priority": 3}) as r2:
        c2 = r2.createJob(NoopProc)
        c3 = r2.createJob(NoopProc, jobOptions={"priority": -2})
    assert r1.handle.jobOptions["priority"] == 7
    assert q.jobHandle(c1.location).jobOptions["priority"] == 7
    assert r2.handle.jobOptions["priority"] == 3
    assert q.jobHandle(c2.location).jobOptions["priority"] == 3
    assert q.jobHandle(c3.location).jobOptions["priority"] == -2


# --------------------------------------------------------------------------------------------
# Order


def test_priority_order_then_submission_order(queue, tmp_path):
    rec = tmp_path / "rec"
    for name, prio in [("a", 0), ("b", 5), ("c", 5), ("d", -1), ("e", 0)]:
        queue.createJob(
            RecordProc, label=name, recordFile=str(rec), name=name, jobOptions={"priority": prio}
        ).activate()
    assert labels(queue.listJobs()) == ["b", "c", "a", "e", "d"]
    assert run_all(queue) == 5
    assert record_order(rec) == ["b", "c", "a", "e", "d"]


def test_priority_inside_one_root(queue, tmp_path):
    rec = tmp_path / "rec"
    with queue.createJob(RecordProc, recordFile=str(rec), name="r") as root:
        root.createJob(RecordProc, recordFile=str(rec), name="low")
        root.createJob(RecordProc, recordFile=str(rec), name="high", jobOptions={"priority": 9})
    run_all(queue)
    assert record_order(rec) == ["high", "low", "r"]


def test_depth_first_post_order_in_one_process(queue, tmp_path):
    rec = tmp_path / "rec"

    def make(parent, name):
        return parent.createJob(RecordProc, label=name, recordFile=str(rec), name=name)

    with queue.createJob(RecordProc, label="R", recordFile=str(rec), name="R") as root:
        c0 = make(root, "c0")
        c1 = make(root, "c1")
        make(root, "c2")
        make(c0, "c00")
        make(c0, "c01")
        make(c1, "c10")
    assert run_all(queue) == 7
    records = read_records(rec)
    assert [r["name"] for r in records] == ["c00", "c01", "c0", "c10", "c1", "c2", "R"]
    assert [r["path"] for r in records] == [
        "root.0000.0000",
        "root.0000.0001",
        "root.0000",
        "root.0001.0000",
        "root.0001",
        "root.0002",
        "root",
    ]
    assert {r["pid"] for r in records} == {os.getpid()}
    # every child ended before its parent started
    by_name = {r["name"]: r for r in records}
    for parent, kids in {"R": ["c0", "c1", "c2"], "c0": ["c00", "c01"], "c1": ["c10"]}.items():
        for kid in kids:
            assert by_name[kid]["end"] <= by_name[parent]["start"]


def test_list_jobs_in_processing_order(queue):
    for name, prio in [("x", 1), ("y", 2), ("z", 1)]:
        with queue.createJob(NoopProc, label=name, jobOptions={"priority": prio}):
            pass
    jobs = queue.listJobs()
    assert labels(jobs) == ["y", "x", "z"]
    assert all(isinstance(h, JobHandle) for h in jobs)
    assert all(h.parent is None for h in jobs)


# --------------------------------------------------------------------------------------------
# Deletion


def test_delete_root(queue, tmp_path):
    rec = tmp_path / "rec"
    with queue.createJob(RecordProc, label="r1", recordFile=str(rec), name="r1") as r1:
        r1.createJob(RecordProc, recordFile=str(rec), name="r1c")
    with queue.createJob(RecordProc, label="r2", recordFile=str(rec), name="r2") as r2:
        r2.createJob(RecordProc, recordFile=str(rec), name="r2c")
    r1_dir = r1.location
    queue.deleteJobs(r1.handle)
    assert labels(queue.listJobs()) == ["r2"]
    assert not os.path.exists(r1_dir)
    assert listing(roots_dir(queue)) == [os.path.basename(r2.location)]
    assert run_all(queue) == 2
    assert record_order(rec) == ["r2c", "r2"]
    queue.deleteJobs([r2.handle])  # an iterable works too
    assert queue.listJobs() == []
    assert queue.idleReason() == IdleReason.EMPTY
    assert listing(Path(queue.location) / "trash") == []


def test_delete_subtree(queue, tmp_path):
    rec = tmp_path / "rec"
    with queue.createJob(RecordProc, label="R", recordFile=str(rec), name="R") as root:
        a = root.createJob(RecordProc, label="a", recordFile=str(rec), name="a")
        a.createJob(RecordProc, label="a0", recordFile=str(rec), name="a0")
        root.createJob(RecordProc, label="b", recordFile=str(rec), name="b")
    a_dir = a.location
    queue.deleteJobs(queue.jobHandle(a.location))
    assert not os.path.exists(a_dir)
    assert labels(root.handle.listSubJobs()) == ["b"]
    assert nonzero(root.handle.stateCounts()) == {JobState.WAITING: 1, JobState.READY: 1}
    all_tokens = [t for ts in tokens(root.location).values() for t in ts]
    assert not any(t.startswith("root.0000") for t in all_tokens)
    assert run_all(queue) == 2
    assert record_order(rec) == ["b", "R"]
    assert queue.idleReason() == IdleReason.ALL_DONE


def test_delete_failed_subtree_lets_parent_run(queue, tmp_path):
    rec = tmp_path / "rec"
    with queue.createJob(RecordProc, recordFile=str(rec), name="R") as root:
        root.createJob(RecordProc, recordFile=str(rec), name="ok")
        bad = root.createJob(FailProc)
    assert run_all(queue) == 2
    assert root.handle.state == JobState.BLOCKED
    assert queue.idleReason() == IdleReason.BLOCKED
    queue.deleteJobs(queue.jobHandle(bad.location))
    assert root.handle.state == JobState.READY
    assert queue.idleReason() is None
    assert run_all(queue) == 1
    assert record_order(rec) == ["ok", "R"]
    assert root.handle.state == JobState.DONE
    assert queue.idleReason() == IdleReason.ALL_DONE


def test_delete_running_job_refused_unless_forced(queue, tmp_path, spawn_worker):
    started, release = tmp_path / "started", tmp_path / "release"
    with queue.createJob(NoopProc, label="R") as root:
        child = root.createJob(BlockingProc, startedFile=str(started), releaseFile=str(release))
    worker = spawn_worker(queue.location, "--once")
    worker.wait_for_file(started)
    handle = queue.jobHandle(child.location)
    assert handle.state == JobState.RUNNING
    with pytest.raises(JobRunningError, match=re.escape(handle.path)):
        queue.deleteJobs(handle)
    with pytest.raises(JobRunningError):
        queue.deleteJobs(root.handle)
    with pytest.raises(JobRunningError):
        queue.deleteJobs([root.handle, handle])
    assert queue.listJobs() == [root.handle]
    assert handle.state == JobState.RUNNING
    assert os.path.isdir(child.location)

    queue.deleteJobs(root.handle, force=True)
    assert queue.listJobs() == []
    assert not os.path.exists(root.location)
    release.touch()
    assert worker.wait(30) == 0, worker.stderr
    assert "Traceback" not in worker.stderr
    assert queue.listJobs() == []
    assert listing(roots_dir(queue)) == []
    assert queue.idleReason() == IdleReason.EMPTY


# --------------------------------------------------------------------------------------------
# Dependencies


def test_dependency_across_branches(queue, tmp_path):
    rec = tmp_path / "rec"

    def make(parent, name):
        return parent.createJob(RecordProc, label=name, recordFile=str(rec), name=name)

    with queue.createJob(RecordProc, label="R", recordFile=str(rec), name="R") as root:
        a = make(root, "a")
        a0 = make(a, "a0")
        b = make(root, "b")
        a0.addDependency(b)  # against the natural order: a0 would run first
    deps = json.loads((Path(root.location) / "deps.json").read_text())
    assert deps == {"root.0000.0000": ["root.0001"]}
    a0h = queue.jobHandle(a0.location)
    bh = queue.jobHandle(b.location)
    assert a0h.state == JobState.WAITING
    assert bh.state == JobState.READY
    assert queue.runNextAvailableJob() is True
    assert record_order(rec) == ["b"]
    assert a0h.state == JobState.READY
    assert run_all(queue) == 3
    assert record_order(rec) == ["b", "a0", "a", "R"]


def test_dependency_on_failed_job_blocks(queue):
    with queue.createJob(NoopProc) as root:
        a = root.createJob(FailProc)
        b = root.createJob(NoopProc)
        b.addDependency(a)
    assert run_all(queue) == 1
    assert queue.jobHandle(a.location).state == JobState.FAILED
    assert queue.jobHandle(b.location).state == JobState.BLOCKED
    assert queue.idleReason() == IdleReason.BLOCKED


def test_dependency_cycle_rejected_at_activation(queue):
    root = queue.createJob(NoopProc)
    a = root.createJob(NoopProc)
    b = root.createJob(NoopProc)
    a.addDependency(b)
    b.addDependency(a)
    with pytest.raises(DependencyCycleError) as info:
        root.activate()
    assert isinstance(info.value, ValueError)
    assert_nothing_published(queue)


def test_dependency_cycle_through_parent_rejected(queue):
    with pytest.raises(DependencyCycleError), queue.createJob(NoopProc) as root:  # noqa: PT012
        a = root.createJob(NoopProc)
        a0 = a.createJob(NoopProc)
        a0.addDependency(root)  # root waits for a, a for a0, a0 for root
    assert_nothing_published(queue)


def test_dependency_across_roots_refused(queue):
    r1 = queue.createJob(NoopProc)
    r2 = queue.createJob(NoopProc)
    with pytest.raises((JobTreeError, ValueError)):
        r1.createJob(NoopProc).addDependency(r2.createJob(NoopProc))


# --------------------------------------------------------------------------------------------
# Idle reasons and failures


def test_idle_reason_empty_ready_all_done(queue):
    assert queue.idleReason() == IdleReason.EMPTY
    assert queue.runNextAvailableJob() is False
    with queue.createJob(NoopProc) as root:
        root.createJob(NoopProc)
    assert queue.idleReason() is None
    assert queue.runNextAvailableJob() is True
    assert queue.idleReason() is None  # the root became ready
    assert queue.runNextAvailableJob() is True
    assert queue.idleReason() == IdleReason.ALL_DONE
    assert queue.runNextAvailableJob() is False


def test_idle_reason_running_elsewhere(queue, tmp_path, spawn_worker):
    started, release = tmp_path / "started", tmp_path / "release"
    with queue.createJob(NoopProc, label="R") as root:
        child = root.createJob(
            BlockingProc,
            label="blocker",
            startedFile=str(started),
            releaseFile=str(release),
            progress=40,
            statusLine="frame 4 of 10",
        )
    worker = spawn_worker(queue.location, "--once")
    worker.wait_for_file(started)
    h = queue.jobHandle(child.location)
    assert queue.idleReason() == IdleReason.RUNNING
    assert queue.runNextAvailableJob() is False
    assert h.state == JobState.RUNNING
    assert h.isRunning()
    assert not h.isWaiting()
    assert not h.isFinished()
    assert h.pid == worker.pid
    assert h.host == socket.gethostname()
    assert h.attempts == 1
    assert h.startTime is not None
    assert h.endTime is None
    assert root.handle.state == JobState.WAITING
    # The log is readable while the job runs.
    wait_for(lambda: f"working in {worker.pid}" in h.stdout, 10, "the running job's output")
    wait_for(lambda: h.progress == 40, 10, "progress 40 of the running job")
    # The claim token in running/
    running = tokens(root.location)["running"]
    assert len(running) == 1
    path, claim = running[0].split("@")
    assert path == "root.0000"
    assert CLAIM_RE.match(claim)
    content = json.loads((Path(root.location) / "_index" / "running" / running[0]).read_text())
    assert content["claim"] == claim
    assert content["pid"] == worker.pid
    assert content["attempt"] == 1
    # A running job cannot be marked failed.
    with pytest.raises(JobTreeError):
        h.setError("no")
    assert h.state == JobState.RUNNING

    release.touch()
    assert worker.wait(30) == 0, worker.stderr
    assert worker.stdout.strip() == "True"
    assert h.state == JobState.DONE
    assert h.progress == 100
    assert h.pid == worker.pid
    assert queue.idleReason() is None
    assert queue.runNextAvailableJob() is True
    assert queue.idleReason() == IdleReason.ALL_DONE


def test_status_line_visible_while_running(queue, tmp_path, spawn_worker):
    # BlockingProc calls setProgress(), then setStatusLine() at once, then blocks: the status
    # line must reach the running token, even though it came right after the progress.
    started, release = tmp_path / "started", tmp_path / "release"
    root = queue.createJob(
        BlockingProc,
        startedFile=str(started),
        releaseFile=str(release),
        progress=40,
        statusLine="frame 4 of 10",
    )
    root.activate()
    worker = spawn_worker(queue.location, "--once")
    worker.wait_for_file(started)
    h = root.handle
    try:
        wait_for(lambda: h.progress == 40, 10, "progress 40 of the running job")
        wait_for(lambda: h.statusLine == "frame 4 of 10", 5, "the status line of a running job")
    finally:
        release.touch()
        assert worker.wait(30) == 0, worker.stderr
    assert h.statusLine == "frame 4 of 10"
    assert h.progress == 100


def test_idle_reason_not_blocked_without_failures(queue):
    # The window between a worker's commit of the last child (running/ -> done/) and its cascade
    # (waiting/ -> ready/ of the parent), made on disk by hand: no job failed, so whatever
    # idleReason() says, it must not be BLOCKED ("failed jobs block the rest").
    with queue.createJob(NoopProc) as root:
        root.createJob(NoopProc)
    index = Path(root.location) / "_index"
    os.rename(index / "ready" / "root.0000@p0", index / "done" / "root.0000")
    assert queue.idleReason() != IdleReason.BLOCKED
    assert root.handle.state != JobState.BLOCKED
    assert not root.handle.hasError(recursive=True)


def test_failed_sub_job_blocks_ancestors(queue):
    with queue.createJob(NoopProc, label="R") as root:
        a = root.createJob(NoopProc, label="a")
        a0 = a.createJob(FailProc, label="a0", message="kaputt")
        b = root.createJob(NoopProc, label="b")
    assert queue.runNextAvailableJob() is True  # a0 runs and fails
    assert queue.runNextAvailableJob() is True  # b
    assert queue.runNextAvailableJob() is False
    assert queue.idleReason() == IdleReason.BLOCKED
    R = root.handle
    ah, a0h, bh = (queue.jobHandle(j.location) for j in (a, a0, b))
    assert a0h.state == JobState.FAILED
    assert ah.state == JobState.BLOCKED
    assert R.state == JobState.BLOCKED
    assert bh.state == JobState.DONE
    assert a0h.hasError()
    assert not ah.hasError()
    assert ah.hasError(recursive=True)
    assert not R.hasError()
    assert R.hasError(recursive=True)
    assert not bh.hasError(recursive=True)
    assert a0h.isFinished()
    assert R.isWaiting()
    assert nonzero(R.stateCounts()) == {
        JobState.FAILED: 1,
        JobState.BLOCKED: 2,
        JobState.DONE: 1,
    }
    assert nonzero(ah.stateCounts()) == {JobState.FAILED: 1, JobState.BLOCKED: 1}


def test_set_error_on_waiting_job(queue):
    with queue.createJob(NoopProc) as root:
        c = root.createJob(NoopProc)
        d = root.createJob(NoopProc)
    ch = queue.jobHandle(c.location)
    ch.setError("cancelled by test")
    assert ch.state == JobState.FAILED
    assert ch.hasError()
    assert root.handle.state == JobState.BLOCKED
    assert root.handle.hasError(recursive=True)
    assert run_all(queue) == 1  # only d
    assert queue.jobHandle(d.location).state == JobState.DONE
    assert queue.idleReason() == IdleReason.BLOCKED
    # The parent, waiting, can be marked failed too.
    root.handle.setError()
    assert root.handle.state == JobState.FAILED


def test_proc_set_error_fails_job(queue):
    root = queue.createJob(StatusProc, progress=30, statusLine="step 3", error="bad frame")
    root.activate()
    assert queue.runNextAvailableJob() is True
    h = root.handle
    assert h.state == JobState.FAILED
    assert h.hasError()
    assert h.statusLine == "step 3"
    attempt = json.loads((Path(root.location) / "attempt.1.json").read_text())
    assert attempt["outcome"] == "failed"
    assert "bad frame" in attempt["error"]
    assert queue.idleReason() == IdleReason.BLOCKED


def test_exception_in_run_fails_job_with_traceback(queue, capfd):
    root = queue.createJob(FailProc, message="kaboom 123")
    root.activate()
    assert queue.runNextAvailableJob() is True
    h = root.handle
    assert h.state == JobState.FAILED
    assert h.isFinished()
    assert h.hasError()
    assert h.endTime is not None
    assert h.progress < 100
    assert "Traceback" in h.stderr
    assert "RuntimeError: kaboom 123" in h.stderr
    log = (Path(root.location) / "stderr.1.log").read_text()
    assert "Traceback" in log
    assert "RuntimeError: kaboom 123" in log
    attempt = json.loads((Path(root.location) / "attempt.1.json").read_text())
    assert attempt["outcome"] == "failed"
    assert "kaboom 123" in attempt["error"]
    assert "Traceback" in attempt["traceback"]
    assert "RuntimeError: kaboom 123" in attempt["traceback"]
    assert queue.runNextAvailableJob() is False
    capfd.readouterr()


# --------------------------------------------------------------------------------------------
# JobHandle


def test_job_handle_fields(queue):
    with queue.createJob(
        NoopProc, label="my root", jobOptions={"priority": 2}, scene="shot010", first=1
    ) as root:
        kids = [
            root.createJob(StatusProc, label=f"c{i}", progress=50, statusLine=f"line {i}")
            for i in range(12)
        ]
        kids[0].createJob(NoopProc, label="grandchild")
    R = root.handle
    assert isinstance(R, JobHandle)
    assert R.label == "my root"
    assert R.jobType == "procs_for_tests:NoopProc"
    assert R.params == {"scene": "shot010", "first": 1}
    assert R.jobOptions["priority"] == 2
    assert R.path == "root"
    assert R.rootId == os.path.basename(root.location)
    assert ROOT_ID_RE.match(R.rootId)
    assert R.parent is None
    assert os.path.samefile(R.location, root.location)
    subs = R.listSubJobs()
    assert labels(subs) == [f"c{i}" for i in range(12)]
    assert [s.path for s in subs] == [f"root.{i:04d}" for i in range(12)]
    assert all(s.parent == R for s in subs)
    assert subs[0] == queue.jobHandle(kids[0].location)
    assert subs[0] != subs[1]
    gc = subs[0].listSubJobs()
    assert labels(gc) == ["grandchild"]
    assert gc[0].path == "root.0000.0000"
    assert gc[0].parent == subs[0]
    assert gc[0].parent.parent == R
    assert gc[0].rootId == R.rootId
    assert subs[1].jobType == "procs_for_tests:StatusProc"
    assert subs[1].params == {"progress": 50, "statusLine": "line 1"}
    assert subs[1].jobOptions["priority"] == 2  # inherited

    # before running
    assert R.state == JobState.WAITING
    assert subs[0].state == JobState.WAITING
    assert subs[1].state == JobState.READY
    assert subs[1].isWaiting()
    assert not subs[1].isRunning()
    assert not subs[1].isFinished()
    assert subs[1].progress == 0
    assert subs[1].startTime is None
    assert subs[1].endTime is None
    assert subs[1].attempts == 0
    assert isinstance(subs[1].submitTime, float)
    assert nonzero(R.stateCounts()) == {JobState.WAITING: 2, JobState.READY: 12}
    assert not R.hasError(recursive=True)

    assert run_all(queue) == 14
    for h in [R, *subs, *gc]:
        assert h.state == JobState.DONE
        assert h.isFinished()
        assert not h.isWaiting()
        assert not h.isRunning()
        assert h.progress == 100
        assert isinstance(h.submitTime, float)
        assert h.startTime <= h.endTime
        assert h.host == socket.gethostname()
        assert h.pid == os.getpid()
        assert h.attempts == 1
        assert not h.hasError(recursive=True)
    assert subs[5].statusLine == "line 5"
    assert nonzero(R.stateCounts()) == {JobState.DONE: 14}
    assert set(R.stateCounts()) <= set(JobState)
    assert nonzero(subs[0].stateCounts()) == {JobState.DONE: 2}


def test_times_ordered(queue):
    # Each job submitted and run at once: the times of one job must not go backwards.
    for _ in range(20):
        root = queue.createJob(NoopProc)
        root.activate()
        assert queue.runNextAvailableJob() is True
        h = root.handle
        assert h.submitTime <= h.startTime <= h.endTime, (h.submitTime, h.startTime, h.endTime)


def test_job_handle_reads_disk_every_time(queue):
    root = queue.createJob(NoopProc)
    root.activate()
    h1 = root.handle
    h2 = JobQueue(queue.location).jobHandle(root.location)
    assert h1 == h2
    assert h1.state == JobState.READY
    queue.runNextAvailableJob()
    assert h1.state == JobState.DONE
    assert h2.state == JobState.DONE


def test_stdout_stderr_of_handle(queue):
    root = queue.createJob(PrintLogProc, marker="m1")
    root.activate()
    assert root.handle.stdout == ""
    assert root.handle.stderr == ""
    queue.runNextAvailableJob()
    assert "m1 on stdout" in root.handle.stdout
    assert "m1 on stderr" in root.handle.stderr
    assert isinstance(root.handle.stdout, str)


# --------------------------------------------------------------------------------------------
# Running in this process: cwd, output capture


def test_cwd_is_job_dir_during_run_and_restored(queue, tmp_path, monkeypatch):
    rec = tmp_path / "rec"
    here = tmp_path / "here"
    here.mkdir()
    monkeypatch.chdir(here)
    with queue.createJob(RecordProc, recordFile=str(rec)) as root:
        root.createJob(FailProc)
    assert queue.runNextAvailableJob() is True  # the failing child
    assert os.getcwd() == str(here)
    queue.deleteJobs(queue.jobHandle(root.handle.listSubJobs()[0].location))
    assert queue.runNextAvailableJob() is True
    assert os.getcwd() == str(here)
    (r,) = read_records(rec)
    assert os.path.samefile(r["cwd"], root.location)
    assert os.path.samefile(r["runningDir"], root.location)


def test_print_and_logging_go_to_job_logs(queue, capfd, caplog):
    caplog.set_level(logging.WARNING)
    root = queue.createJob(PrintLogProc, marker="unique-marker-42")
    root.activate()
    assert queue.runNextAvailableJob() is True
    captured = capfd.readouterr()
    assert "unique-marker-42" not in captured.out
    assert "unique-marker-42" not in captured.err
    out_log = (Path(root.location) / "stdout.1.log").read_text()
    err_log = (Path(root.location) / "stderr.1.log").read_text()
    assert "unique-marker-42 on stdout" in out_log
    assert "unique-marker-42 on stderr" not in out_log
    assert "unique-marker-42 on stderr" in err_log
    assert "unique-marker-42 logged" in out_log + err_log
    assert root.handle.state == JobState.DONE
    # After the job, print goes to the real stdout again.
    print("after the job")
    assert "after the job" in capfd.readouterr().out
    assert "after the job" not in (Path(root.location) / "stdout.1.log").read_text()


def test_print_and_logging_in_worker_process(queue, spawn_worker):
    # A worker process without pytest's logging setup: nothing leaks to the worker's own output.
    root = queue.createJob(PrintLogProc, marker="m-sub")
    root.activate()
    worker = spawn_worker(queue.location, "--once")
    assert worker.wait(30) == 0, worker.stderr
    assert worker.stdout == "True\n"
    assert worker.stderr == ""
    h = root.handle
    assert h.state == JobState.DONE
    assert h.pid == worker.pid
    assert "m-sub on stdout" in h.stdout
    assert "m-sub on stderr" in h.stderr
    assert "m-sub logged" in h.stdout + h.stderr


def test_logs_created_on_first_byte_only(queue):
    root = queue.createJob(NoopProc)
    root.activate()
    queue.runNextAvailableJob()
    assert not (Path(root.location) / "stdout.1.log").exists()
    assert not (Path(root.location) / "stderr.1.log").exists()
    assert (Path(root.location) / "attempt.1.json").exists()


# --------------------------------------------------------------------------------------------
# The on-disk format (docs/format.md)


def test_queue_marker_file(tmp_path):
    createJobQueue(tmp_path / "q", priority=4)
    marker = json.loads((tmp_path / "q" / "jobtree-queue.json").read_text())
    assert set(marker) >= {"format", "version", "created", "settings"}
    assert marker["format"] == "jobtree-queue"
    assert marker["version"] == 1
    assert re.match(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$", marker["created"])
    assert marker["settings"]["priority"] == 4
    assert [n for n in os.listdir(tmp_path / "q") if n.startswith(".")] == []


def test_disk_layout_after_activation(queue):
    with queue.createJob(NoopProc, label="R", alpha=1) as root:
        a = root.createJob(NoopProc, label="a")
        a.createJob(NoopProc, label="a0", jobOptions={"priority": -3})
        root.createJob(NoopProc, label="b")
    rd = Path(root.location)
    assert listing(roots_dir(queue)) == [rd.name]
    assert ROOT_ID_RE.match(rd.name)
    assert listing(Path(queue.location) / "staging") == []
    assert not (rd / "deps.json").exists()
    assert (rd / "0000" / "0000" / "job.json").is_file()
    assert tokens(rd) == {
        "waiting": ["root", "root.0000"],
        "ready": ["root.0000.0000@p-3", "root.0001@p0"],
        "running": [],
        "done": [],
        "failed": [],
    }
    assert (rd / "_index" / "ready" / "root.0001@p0").read_bytes() == b""
    assert listing(rd / "_pending") == ["0000", "0001"]
    assert listing(rd / "0000" / "_pending") == ["0000"]


def test_job_json(queue):
    with queue.createJob(NoopProc, label="R", alpha=1) as root:
        a = root.createJob(NoopProc, label="a")
        a.createJob(NoopProc, label="a0", jobOptions={"priority": -3})
        root.createJob(NoopProc, label="b")
    rd = Path(root.location)
    job = json.loads((rd / "job.json").read_text())
    assert set(job) >= {"jobType", "label", "params", "jobOptions", "submitTime", "submitHost"}
    assert job["jobType"] == "procs_for_tests:NoopProc"
    assert job["label"] == "R"
    assert job["params"] == {"alpha": 1}
    assert job["jobOptions"]["priority"] == 0
    assert job["submitHost"] == socket.gethostname()
    assert isinstance(job["submitTime"], float)
    a0 = json.loads((rd / "0000" / "0000" / "job.json").read_text())
    assert a0["jobOptions"]["priority"] == -3
    assert a0["label"] == "a0"
    assert a0["params"] == {}
    # Sub-jobs are the numbered directories in creation order (docs/format.md); job.json does
    # not count them, so adding a sub-job never rewrites its parent's file.
    children = {
        rel: sorted(p.name for p in (rd / rel).iterdir() if p.is_dir() and p.name.isdigit())
        for rel in (".", "0000", "0000/0000", "0001")
    }
    assert children == {".": ["0000", "0001"], "0000": ["0000"], "0000/0000": [], "0001": []}
    assert "children" not in job


def test_disk_layout_after_run(queue):
    with queue.createJob(StatusProc, statusLine="root line") as root:
        root.createJob(NoopProc)
        root.createJob(FailProc)
    run_all(queue)
    rd = Path(root.location)
    assert tokens(rd) == {
        "waiting": ["root"],
        "ready": [],
        "running": [],
        "done": ["root.0000"],
        "failed": ["root.0001"],
    }
    assert listing(rd / "_pending") == ["0001"]
    # Remove the failure: the root runs and everything is done.
    queue.deleteJobs(queue.jobHandle(str(rd / "0001")))
    run_all(queue)
    assert tokens(rd) == {
        "waiting": [],
        "ready": [],
        "running": [],
        "done": ["root", "root.0000"],
        "failed": [],
    }
    assert not (rd / "_pending").exists()
    for job_dir in (rd, rd / "0000"):
        attempt = json.loads((job_dir / "attempt.1.json").read_text())
        assert set(attempt) >= {
            "attempt",
            "claim",
            "host",
            "pid",
            "startTime",
            "endTime",
            "outcome",
            "progress",
            "statusLine",
            "error",
            "traceback",
        }
        assert attempt["attempt"] == 1
        assert CLAIM_RE.match(attempt["claim"])
        assert attempt["host"] == socket.gethostname()
        assert attempt["pid"] == os.getpid()
        assert attempt["startTime"] <= attempt["endTime"]
        assert attempt["outcome"] == "done"
        assert attempt["progress"] == 100
        assert attempt["error"] is None
        assert attempt["traceback"] is None
        path = "root" if job_dir == rd else "root.0000"
        claim = json.loads((rd / "_index" / "done" / path).read_text())
        assert claim["claim"] == attempt["claim"]
        assert claim["pid"] == os.getpid()
        assert claim["attempt"] == 1
        assert not (job_dir / "attempt.2.json").exists()
    assert json.loads((rd / "attempt.1.json").read_text())["statusLine"] == "root line"
    for dirpath, dirnames, filenames in os.walk(queue.location):
        assert not [n for n in dirnames + filenames if n.startswith(".")], dirpath


def test_failed_attempt_file(queue):
    root = queue.createJob(FailProc, message="disk full")
    root.activate()
    queue.runNextAvailableJob()
    rd = Path(root.location)
    assert tokens(rd)["failed"] == ["root"]
    attempt = json.loads((rd / "attempt.1.json").read_text())
    assert attempt["outcome"] == "failed"
    assert "disk full" in attempt["error"]
    assert "RuntimeError" in attempt["traceback"]
    claim = json.loads((rd / "_index" / "failed" / "root").read_text())
    assert claim["claim"] == attempt["claim"]


def test_deps_json_written_at_activation(queue):
    with queue.createJob(NoopProc) as root:
        a = root.createJob(NoopProc)
        b = root.createJob(NoopProc)
        c = root.createJob(NoopProc)
        c.addDependency(a)
        c.addDependency(b)
    deps = json.loads((Path(root.location) / "deps.json").read_text())
    assert {k: sorted(v) for k, v in deps.items()} == {"root.0002": ["root.0000", "root.0001"]}
    assert tokens(root.location)["waiting"] == ["root", "root.0002"]
    assert "dep-root.0000" in listing(Path(c.location) / "_pending")


@pytest.mark.parametrize("priority", ["high", 1.5, None, [1]])
def test_bad_priority_value(tmp_path, priority):
    with pytest.raises((InvalidSetting, TypeError)):
        createJobQueue(tmp_path / "q", priority=priority)
    q = createJobQueue(tmp_path / "q2")
    with pytest.raises((InvalidSetting, TypeError)):
        q.createJob(NoopProc, jobOptions={"priority": priority})
    assert_nothing_published(q)


def test_label_defaults_to_none_and_handle_equality(queue):
    with queue.createJob(NoopProc) as root:
        root.createJob(NoopProc)
    h = root.handle
    assert h.label is None
    assert h.listSubJobs()[0].label is None
    assert h == queue.jobHandle(root.location)
    assert h != h.listSubJobs()[0]
    assert h != "not a handle"
    assert h != root.location


def test_proc_is_a_job_proc():
    p = NoopProc(label="x")
    assert isinstance(p, JobProc)
    assert p.label == "x"
