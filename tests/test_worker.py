"""The worker daemon (jobtree.worker), with real daemon processes: ``python -m jobtree.worker``.

Every daemon runs in its own session; on a failure or a hang its whole process tree (supervisor,
workers, the jobs' processes) is killed. Waits have deadlines and poll files, never bare sleeps.
"""

from __future__ import annotations

import os
import platform
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from testutil import Proc, descendants, pid_alive, read_records, subprocess_env, wait_for

import jobtree
from jobtree import JobState, registry, worker
from jobtree._wake import InotifyWatcher, PollWatcher, isNetworkFs, mountInfo

SLEEP = "worker_procs:SleepRecordProc"
EXEC_SLEEP = "worker_procs:ExecSleepProc"
RECORD = "procs_for_tests:RecordProc"
FAIL = "procs_for_tests:FailProc"


# -- helpers ---------------------------------------------------------------------------------------


class Daemon(Proc):
    """``python -m jobtree.worker QUEUE ARGS`` in its own session, output in files."""

    def __init__(self, tmp_path: Path, queue: str, args: list[str], env: dict[str, str]) -> None:
        n = len(list(tmp_path.glob("daemon*.stderr")))
        argv = [sys.executable, "-m", "jobtree.worker", queue, *args]
        super().__init__(tmp_path, f"daemon{n}", argv, env)

    def signal(self, sig: int = signal.SIGTERM) -> None:
        os.kill(self.pid, sig)

    def kill(self) -> None:
        """SIGKILL the whole tree (workers have sessions of their own, so killpg is not enough)."""
        if self.proc.poll() is None:
            for pid in [*descendants(self.pid), self.pid]:
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
        self.proc.wait()

    def check(self) -> None:
        if self.proc.poll() is not None:
            raise AssertionError(f"daemon exited {self.proc.returncode}:\n{self.stderr}")


def worker_env(**extra: str) -> dict[str, str]:
    env = subprocess_env()
    env[worker.ALLOW_ROOT_ENV] = "1"  # CI runs as root; the refusal has tests of its own
    env.update(extra)
    return env


@pytest.fixture
def daemon(tmp_path: Path) -> Iterator[Any]:
    """``daemon(queue, *args, env=None)`` starts a daemon; leftovers are killed at teardown."""
    started: list[Daemon] = []

    def start(queue: jobtree.JobQueue, *args: str, env: dict[str, str] | None = None) -> Daemon:
        d = Daemon(tmp_path, str(queue.location), list(args), env or worker_env())
        started.append(d)
        return d

    yield start
    for d in started:
        d.kill()


def submit(q: jobtree.JobQueue, jobType: str, n: int, **params: Any) -> jobtree.JobHandle:
    """A root with n-1 children, all of *jobType*: n jobs."""
    with q.createJob(jobType, label="root", **params) as root:
        for i in range(n - 1):
            root.createJob(jobType, label=f"child {i}", **params)
    return root.handle


def workers_of(q: jobtree.JobQueue, n: int, d: Daemon, timeout: float = 20.0) -> list[dict]:
    """Wait until *n* live workers are registered."""

    def ready() -> list[dict]:
        d.check()
        ws = [w for w in registry.listWorkers(str(q.location)) if not w["lost"]]
        return ws if len(ws) == n else []

    return wait_for(ready, timeout, f"{n} registered workers")


def replacement(q: jobtree.JobQueue, d: Daemon, gone: dict) -> dict:
    """Wait until the one worker of *d* is no longer *gone* but a new one, and return it."""

    def replaced() -> list[dict]:
        ws = workers_of(q, 1, d)
        return ws if ws[0]["pid"] != gone["pid"] else []

    [fresh] = wait_for(replaced, 20, "the supervisor to start a new worker")
    return fresh


def events(path: Path, event: str) -> list[dict]:
    return [r for r in read_records(path) if r["event"] == event]


# -- running ---------------------------------------------------------------------------------------


def test_burst_drains_the_queue_and_exits_0(queue, daemon, tmp_path):
    records = tmp_path / "records"
    root = submit(queue, RECORD, 20, recordFile=str(records))
    d = daemon(queue, "--workers", "2", "--burst")
    assert d.wait(30) == 0, d.stderr
    assert root.stateCounts()[JobState.DONE] == 20
    assert len(read_records(records)) == 20
    assert "nothing left to run (all done)" in d.stderr
    assert registry.listWorkers(str(queue.location)) == []  # records removed on clean exit


def test_burst_leaves_jobs_that_need_other_workers(queue, daemon, tmp_path):
    records = tmp_path / "records"
    mine = queue.createJob(RECORD, recordFile=str(records))
    mine.activate()
    theirs = queue.createJob(RECORD, jobOptions={"requires": {"pools": ["gpu"]}}, recordFile="x")
    theirs.activate()
    d = daemon(queue, "--workers", "2", "--burst", "--pool", "cpu")
    assert d.wait(30) == 0, d.stderr
    assert mine.handle.state is JobState.DONE
    assert theirs.handle.state is JobState.READY
    assert "the jobs left need other workers" in d.stderr


def test_max_jobs_counts_all_workers_together(queue, daemon, tmp_path):
    records = tmp_path / "records"
    submit(queue, RECORD, 10, recordFile=str(records))
    d = daemon(queue, "--workers", "2", "--max-jobs", "3")  # not burst: max-jobs alone ends it
    assert d.wait(30) == 0, d.stderr
    assert len(read_records(records)) == 3


def test_recycle_replaces_a_worker_after_n_jobs(queue, daemon, tmp_path):
    records = tmp_path / "records"
    submit(queue, RECORD, 10, recordFile=str(records))
    d = daemon(queue, "--workers", "1", "--recycle", "3", "--burst")
    assert d.wait(30) == 0, d.stderr
    pids = [r["pid"] for r in read_records(records)]
    assert len(pids) == 10
    assert len(set(pids)) >= 4, pids  # 3 + 3 + 3 + 1
    assert "recycled after 3 jobs" in d.stderr


# -- stopping --------------------------------------------------------------------------------------


@pytest.mark.parametrize("whom", ["supervisor", "every process"])
def test_first_sigterm_finishes_the_running_job_and_starts_no_new_one(
    queue, daemon, tmp_path, whom
):
    """ "every process": systemd's default KillMode=control-group signals supervisor and workers
    at once; each worker must count that as one request, not two."""
    records = tmp_path / "records"
    root = submit(queue, SLEEP, 3, recordFile=str(records), seconds=2.0)
    d = daemon(queue, "--workers", "1")
    wait_for(lambda: d.check() or events(records, "start"), 20, "the first job to start")
    for pid in [d.pid, *(descendants(d.pid) if whom == "every process" else [])]:
        os.kill(pid, signal.SIGTERM)
    assert d.wait(20) == 0, d.stderr
    assert len(events(records, "start")) == 1, "a new job was started after SIGTERM"
    [started] = events(records, "start")
    assert [e["path"] for e in events(records, "end")] == [started["path"]]
    states = {h.path: h.state for h in [root, *root.listSubJobs()]}
    assert states[started["path"]] is JobState.DONE
    assert sorted(s.value for s in states.values()) == ["done", "ready", "waiting"]
    assert "finish their running jobs" in d.stderr


def test_second_sigterm_stops_the_job_now_and_gives_it_back(queue, daemon, tmp_path):
    pid_file = tmp_path / "sleep.pid"
    root = submit(queue, EXEC_SLEEP, 1, pidFile=str(pid_file), seconds=60)
    d = daemon(queue, "--workers", "1")
    wait_for(lambda: d.check() or pid_file.exists(), 20, "the job's process to start")
    sleep_pid = int(pid_file.read_text())
    assert pid_alive(sleep_pid)
    d.signal(signal.SIGTERM)
    time.sleep(0.2)  # a person pressing Ctrl-C twice
    d.signal(signal.SIGTERM)
    assert d.wait(20) == 0, d.stderr
    assert not pid_alive(sleep_pid), "the job's process survived a stop-now"
    assert root.state is JobState.READY, (
        root.state
    )  # not running, not failed: any worker may take it
    assert not root.hasError()
    assert "stop now requested" in d.stderr


def test_a_killed_worker_is_restarted_and_its_job_taken_over(tmp_path, daemon):
    q = jobtree.createJobQueue(tmp_path / "q", leaseSeconds=2)
    records = tmp_path / "records"
    root = submit(q, SLEEP, 1, recordFile=str(records), seconds=1.0)
    d = daemon(q, "--workers", "1", env=worker_env(JOBTREE_RECHECK="0.5"))
    wait_for(lambda: d.check() or events(records, "start"), 20, "the job to start")
    [busy] = wait_for(
        lambda: [w for w in workers_of(q, 1, d) if w["currentJob"]], 20, "a worker running the job"
    )
    assert busy["currentJob"] == root.location
    os.kill(busy["pid"], signal.SIGKILL)
    fresh = replacement(q, d, busy)
    wait_for(lambda: d.check() or root.state is JobState.DONE, 30, "the job to be taken over")
    starts = events(records, "start")
    assert [s["pid"] for s in starts] == [busy["pid"], fresh["pid"]]
    assert [e["pid"] for e in events(records, "end")] == [fresh["pid"]]
    d.signal(signal.SIGTERM)
    assert d.wait(20) == 0, d.stderr
    assert "was killed by SIGKILL" in d.stderr


def test_sigterm_to_one_worker_replaces_just_that_worker(queue, daemon, tmp_path):
    records = tmp_path / "records"
    root = submit(queue, SLEEP, 2, recordFile=str(records), seconds=1.0)
    d = daemon(queue, "--workers", "1")
    wait_for(lambda: d.check() or events(records, "start"), 20, "the first job to start")
    [busy] = workers_of(queue, 1, d)
    os.kill(busy["pid"], signal.SIGTERM)
    fresh = replacement(queue, d, busy)
    wait_for(lambda: d.check() or root.state is JobState.DONE, 20, "both jobs to run")
    assert [e["pid"] for e in events(records, "end")] == [busy["pid"], fresh["pid"]]
    d.signal(signal.SIGTERM)
    assert d.wait(20) == 0, d.stderr
    assert "stopped by a signal sent to it; starting a fresh one" in d.stderr


# -- registry --------------------------------------------------------------------------------------


def test_registry_lists_workers_and_marks_stale_records_lost(queue, daemon):
    d = daemon(queue, "--workers", "2", "--name", "farm/node 1", "--pool", "render,comp")
    d2 = daemon(queue, "--workers", "1", "--tag", "gpu", "--pin-cpus")
    ws = workers_of(queue, 3, d)
    d2.check()
    for w in ws:
        assert set(w) >= {
            "name",
            "host",
            "pid",
            "os",
            "cores",
            "ramGB",
            "gpu",
            "pools",
            "tags",
            "currentJob",
            "jobsDone",
            "jobsFailed",
            "startTime",
            "heartbeat",
            "lost",
        }
        assert w["currentJob"] is None
        assert w["jobsDone"] == w["jobsFailed"] == 0
        assert w["os"] == platform.system().lower()
        assert w["lost"] is False
    named = [w for w in ws if w["name"] == "farm/node 1"]
    assert len(named) == 2
    assert all(w["pools"] == ["render", "comp"] for w in named)
    [tagged] = [w for w in ws if w["tags"] == ["gpu"]]
    assert len(os.sched_getaffinity(tagged["pid"])) == 1  # --pin-cpus
    folder = Path(queue.location, registry.WORKERS_DIR)
    assert sorted(p.name for p in folder.iterdir()) == sorted(
        [f"farm_node_1.{w['pid']}.json" for w in named]
        + [f"{registry.safeName(tagged['name'])}.{tagged['pid']}.json"]
    )

    stale = folder / f"farm_node_1.{named[0]['pid']}.json"
    old = time.time() - 120
    os.utime(stale, (old, old))
    lost = {w["pid"]: w["lost"] for w in registry.listWorkers(queue.location)}
    assert lost == {named[0]["pid"]: True, named[1]["pid"]: False, tagged["pid"]: False}

    for dd in (d, d2):
        dd.signal(signal.SIGTERM)
    assert d.wait(20) == 0, d.stderr
    assert d2.wait(20) == 0, d2.stderr
    assert registry.listWorkers(queue.location) == []


@pytest.mark.parametrize("how", ["inotify", "poll"])
def test_an_idle_daemon_wakes_up_for_a_new_job(queue, daemon, tmp_path, how):
    """Idle workers look on their own only every 30 s here: a start within a second or so
    proves the wake-up (its 100 ms target is measured by benchmarks/bench_worker.py)."""
    args = ["--workers", "2"] + (["--poll", "0.2"] if how == "poll" else [])
    d = daemon(queue, *args, env=worker_env(JOBTREE_RECHECK="30"))
    workers_of(queue, 2, d)
    time.sleep(0.5)  # both idle, waiting
    records = tmp_path / "records"
    t0 = time.time()
    submit(queue, SLEEP, 1, recordFile=str(records))
    wait_for(lambda: d.check() or events(records, "end"), 10, "the new job to run")
    [start] = events(records, "start")
    assert start["time"] - t0 < 1.5, f"started {start['time'] - t0:.2f} s after its submission"
    submit(queue, FAIL, 1)

    def counted() -> bool:
        ws = registry.listWorkers(queue.location)
        return sum(w["jobsDone"] for w in ws) == 1 and sum(w["jobsFailed"] for w in ws) == 1

    wait_for(counted, 10, "the registry to count one done and one failed job")
    d.signal(signal.SIGINT)
    assert d.wait(20) == 0, d.stderr
    assert ("watching with inotify" if how == "inotify" else "polling every 0.2 s") in d.stderr


# -- refusing root -----------------------------------------------------------------------------------


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root (CI runs as root)")
def test_refuses_to_run_as_root_without_permission(queue):
    env = subprocess_env()
    env.pop(worker.ALLOW_ROOT_ENV, None)
    done = subprocess.run(
        [sys.executable, "-m", "jobtree.worker", str(queue.location), "--burst"],
        env=env,
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert done.returncode == 2
    assert "refusing to run as root" in done.stderr
    assert "--allow-root" in done.stderr


def test_root_refusal_message_and_exit_code(queue, monkeypatch, capsys):
    monkeypatch.setattr(os, "geteuid", lambda: 0)
    monkeypatch.delenv(worker.ALLOW_ROOT_ENV, raising=False)
    assert worker.runDaemon(queue.location, workers=1, burst=True) == 2
    assert "refusing to run as root" in capsys.readouterr().err
    monkeypatch.setenv(worker.ALLOW_ROOT_ENV, "1")
    assert worker.refuseRoot() is None
    monkeypatch.delenv(worker.ALLOW_ROOT_ENV)
    assert worker.refuseRoot(allowRoot=True) is None


def test_run_daemon_with_allow_root(queue, tmp_path):
    records = tmp_path / "records"
    root = submit(queue, RECORD, 3, recordFile=str(records))
    env = subprocess_env()
    env.pop(worker.ALLOW_ROOT_ENV, None)
    code = (
        "import sys; from jobtree.worker import runDaemon; "
        "sys.exit(runDaemon(sys.argv[1], workers=1, burst=True, allowRoot=True))"
    )
    proc = subprocess.Popen(
        [sys.executable, "-c", code, str(queue.location)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        out, _ = proc.communicate(timeout=30)
    except subprocess.TimeoutExpired:
        for pid in [*descendants(proc.pid), proc.pid]:
            os.kill(pid, signal.SIGKILL)
        proc.communicate()
        raise
    assert proc.returncode == 0, out.decode()
    assert root.stateCounts()[JobState.DONE] == 3


# -- pieces ------------------------------------------------------------------------------------------


def test_bad_queue_exits_2(tmp_path):
    done = subprocess.run(
        [sys.executable, "-m", "jobtree.worker", str(tmp_path / "nope"), "--burst"],
        env=worker_env(),
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert done.returncode == 2
    assert "is not a jobtree queue" in done.stderr


def test_restart_backoff_grows_to_a_minute():
    delays = [worker.Supervisor._backoff(n) for n in range(1, 10)]
    assert delays[:4] == [0.5, 1.0, 2.0, 4.0]
    assert delays[-1] == worker.BACKOFF_MAX


def test_network_filesystems_are_polled(tmp_path):
    assert all(isNetworkFs(t) for t in ("nfs", "nfs4", "cifs", "smb3", "fuse.sshfs", "9p"))
    assert not any(isNetworkFs(t) for t in ("ext4", "xfs", "btrfs", "tmpfs", "zfs"))
    point, fstype = mountInfo(str(tmp_path))
    assert point  # Linux: /proc/self/mountinfo names the mount
    assert fstype


def test_inotify_watcher_rings_only_for_what_can_make_a_job_runnable(queue):
    w = InotifyWatcher(queue.location, lambda: None)
    root = os.path.join(queue.location, "roots", "20261122-203012-250000-abcdef")
    index = os.path.join(root, "_index")

    def token(state: str, name: str = "root.0001") -> str:
        return os.path.join(index, state, name)

    assert w.isRelevant("created", root)  # a new root
    assert w.isRelevant("deleted", root)
    assert w.isRelevant("moved", token("waiting"), token("ready", "root@p0"))  # released parent
    assert w.isRelevant("moved", token("failed"), token("ready", "root@p0"))  # retried by hand
    assert w.isRelevant("moved", token("running", "r@abc"), token("done"))  # frees a limit slot
    assert w.isRelevant("created", token("ready", "root.0001@p0"))
    assert w.isRelevant("deleted", token("running", "r@abc"))
    # A worker giving back a job it cannot take (full limit): ringing would loop.
    assert not w.isRelevant("moved", token("running", "r@abc"), token("ready", "root.0001@p0"))
    assert not w.isRelevant("moved", token("ready", "root.0001@p0"), token("running", "r@abc"))
    assert not w.isRelevant("created", token("ready", ".root.0001@p0.123.tmp"))
    assert not w.isRelevant("created", os.path.join(root, "0001", "stdout.1.log"))
    assert not w.isRelevant("created", os.path.join(root, "job.json"))
    assert not w.isRelevant("created", os.path.join(queue.location, "workers", "x.1.json"))


def test_poll_watcher_sees_new_roots_and_state_changes(queue, tmp_path):
    rings = []
    w = PollWatcher(queue.location, lambda: rings.append(1), 1.0)
    w.scan()  # the baseline
    assert w.scan() is False
    submit(queue, RECORD, 2, recordFile=str(tmp_path / "records"))
    assert w.scan() is True
    assert w.scan() is False
    assert queue.runNextAvailableJob()  # a child: ready/ and running/ change
    assert w.scan() is True
    assert rings == []  # scan() only reports; the thread started by start() rings
