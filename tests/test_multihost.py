"""Several hosts on a real network filesystem (issue 3).

Network namespaces are the hosts, an sshd in a server namespace serves the queue, every host mounts
it with sshfs (caches off, see multihost.py) and runs multihost_worker.py. Root only; skipped
without the Debian packages listed in multihost.py (a failure under JOBTREE_REQUIRE_ALL=1).
"""

from __future__ import annotations

import json
import os
import sys
import time
from collections import Counter
from pathlib import Path

import multihost
from multihost import MultiHost, cluster_fixture
from multihost_worker import RecordJob, read_records
from testutil import wait_for

import jobtree
from jobtree import JobState

cluster = cluster_fixture(n_hosts=2)

WORKER = str(Path(__file__).resolve().parent / "multihost_worker.py")
N_CHILDREN = 4
N_GRANDCHILDREN = 50


def start_worker(
    host,
    *,
    barrier: str = "go",
    deadline: float = 50.0,
    faketime: str | None = None,
    clock_offset: float = 0.0,
):
    """multihost_worker.py on *host*, on the queue ``q`` of the export, waiting for the file
    *barrier* of the export. *clock_offset* tells the worker how far *faketime* shifts it."""
    return host.run(
        [
            sys.executable, WORKER, "{mnt}/q",
            "--records", "{mnt}/records",
            "--barrier", f"{{mnt}}/{barrier}",
            "--deadline", str(deadline),
            "--clock-offset", str(clock_offset),
        ],
        faketime=faketime,
        name=f"worker-{host.name}",
    )  # fmt: skip


def wait_all(workers, timeout: float):
    deadline = time.monotonic() + timeout
    codes = {}
    for w in workers:
        codes[w.host.name] = w.wait(max(1.0, deadline - time.monotonic()))
    for w in workers:
        assert codes[w.host.name] == 0, (
            f"worker on {w.host.name} exited {codes[w.host.name]}:\n{w.stderr[-3000:]}"
        )
    return codes


def submit_tree(q, n_children: int, n_grandchildren: int, **params) -> tuple[set[str], dict]:
    """One root, *n_children* children with *n_grandchildren* leaves each. Returns the paths and
    {parent path: [child paths]}."""
    children: dict[str, list[str]] = {"root": []}
    with q.createJob(RecordJob, label="root", **params) as root:
        for i in range(n_children):
            child = root.createJob(RecordJob, label=f"c{i}", **params)
            cpath = f"root.{i:04d}"
            children["root"].append(cpath)
            children[cpath] = []
            for j in range(n_grandchildren):
                child.createJob(RecordJob, label=f"c{i}.{j}", **params)
                children[cpath].append(f"{cpath}.{j:04d}")
    paths = {"root"} | {p for kids in children.values() for p in kids}
    return paths, children


def attempt_records(job: jobtree.JobHandle) -> dict[int, dict]:
    """{n: attempt.<n>.json} of a job."""
    found = {}
    for f in Path(job.location).glob("attempt.*.json"):
        found[int(f.name.split(".")[1])] = json.loads(f.read_text())
    return found


def all_jobs(q) -> list[jobtree.JobHandle]:
    out = []
    stack = list(q.listJobs())
    while stack:
        h = stack.pop()
        out.append(h)
        stack.extend(h.listSubJobs())
    return out


def test_two_hosts_drain_one_tree(cluster: MultiHost) -> None:
    q = jobtree.createJobQueue(cluster.export / "q")
    (cluster.export / "records").mkdir()
    paths, children = submit_tree(q, N_CHILDREN, N_GRANDCHILDREN)
    assert len(paths) == 1 + N_CHILDREN + N_CHILDREN * N_GRANDCHILDREN

    workers = [start_worker(h) for h in cluster.hosts]
    (cluster.export / "go").touch()
    wait_all(workers, timeout=55)

    records = read_records(cluster.export / "records")
    ran = Counter(r["path"] for r in records)
    assert {p: n for p, n in ran.items() if n > 1} == {}, "jobs ran more than once"
    assert set(ran) == paths, f"missing: {sorted(paths - set(ran))[:10]}"
    hosts = Counter(r["host"] for r in records)
    assert set(hosts) == {h.name for h in cluster.hosts}, f"jobs per host: {hosts}"
    by_path = {r["path"]: r for r in records}
    for parent, kids in children.items():
        last_child_end = max(by_path[k]["end"] for k in kids)
        assert by_path[parent]["start"] >= last_child_end, f"{parent} started before a child ended"

    # What the queue says agrees with what the jobs recorded.
    (root,) = q.listJobs()
    assert root.stateCounts().get(JobState.DONE) == len(paths)
    for job in all_jobs(q):
        assert job.state is JobState.DONE
        assert job.attempts == 1
        attempts = attempt_records(job)
        assert list(attempts) == [1], f"{job.path}: attempts {sorted(attempts)}"
        assert attempts[1]["host"] == by_path[job.path]["host"]
        assert attempts[1]["outcome"] == "done"
    for w in workers:
        assert "WARNING" not in w.stderr, f"{w.host.name}:\n{w.stderr[-3000:]}"


def test_harness_hosts_clocks_and_links(cluster: MultiHost) -> None:
    """The harness itself: own hostnames, a shared export, a shifted clock, a cut link."""
    multihost.require(faketime=True)
    h1, h2 = cluster.hosts
    (cluster.export / "from-server").write_text("hello")
    probe = (
        "import os, socket, sys, time; mnt = sys.argv[1]; "
        "open(os.path.join(mnt, socket.gethostname()), 'w').write(repr(time.time())); "
        "time.sleep(0.1); "  # under faketime only with the harness's fix (libfaketime bug)
        "print(open(os.path.join(mnt, 'from-server')).read())"
    )
    p1 = h1.run([sys.executable, "-c", probe, "{mnt}"])
    p2 = h2.run([sys.executable, "-c", probe, "{mnt}"], faketime="+1h")
    real = time.time()
    assert p1.wait(20) == 0, p1.stderr
    assert p2.wait(20) == 0, p2.stderr
    assert p1.stdout.strip() == p2.stdout.strip() == "hello"
    t1 = float((cluster.export / "host1").read_text())
    t2 = float((cluster.export / "host2").read_text())
    assert abs(t1 - real) < 10
    assert abs(t2 - real - 3600) < 10, "host2's clock is not an hour ahead"

    h1.cut_link()
    assert not h1.reachable(timeout=1.0)
    assert h2.reachable()
    h1.restore_link()
    assert h1.reachable()


def test_harness_cleans_up_after_itself(tmp_path: Path) -> None:
    """Even with a host cut off while its command hangs in sshfs I/O, close() stops every
    process, and leaves no namespace and no mount behind."""
    c = MultiHost(tmp_path / "c", n_hosts=2)
    c.start()
    try:
        loop = "import os, sys\nwhile True:\n    open(sys.argv[1], 'w').write('x'); os.listdir(sys.argv[2])"
        busy = [h.run([sys.executable, "-c", loop, "{mnt}/f-" + h.name, "{mnt}"]) for h in c.hosts]
        wait_for(
            lambda: all((c.export / f"f-{h.name}").exists() for h in c.hosts),
            20,
            "the commands",
            interval=0.05,
        )
        c.hosts[0].cut_link()
        time.sleep(0.5)
        assert all(p.returncode is None for p in busy)
        assert c.processes_left()
    finally:
        c.close()
    assert [ns for ns in multihost.list_namespaces() if ns.startswith(c.prefix)] == []
    assert c.processes_left() == []
    assert c.mounts_left() == []
    assert all(p.returncode is not None for p in busy)
    c.close()  # a second close does nothing


# -- leases (issue 3) ---------------------------------------------------------------------------
#
# Written against the lease API as specified: queue setting leaseSeconds; a job whose worker is
# gone is taken over by another worker once its lease expired by the file server's clock;
# JobHandle.attempts counts runs; attempt.<n>.json in the job directory names the host.


LEASE = 3.0


def running_on(q, host_name: str) -> list[jobtree.JobHandle]:
    return [j for j in all_jobs(q) if j.state is JobState.RUNNING and j.host == host_name]


def final_attempt(job: jobtree.JobHandle) -> dict:
    attempts = attempt_records(job)
    assert attempts, f"{job.path}: no attempt file"
    return attempts[max(attempts)]


def warnings_about(text: str, q, job: jobtree.JobHandle) -> list[str]:
    """WARNING lines of a worker's stderr that name *job* (by its directory inside the queue,
    which is the same on every host, or by its dotted path)."""
    rel = os.path.relpath(job.location, q.location)
    return [
        line
        for line in text.splitlines()
        if "WARNING" in line and (rel in line or f" {job.path}" in line)
    ]


def test_cut_link_jobs_taken_over_late_commits_rejected(cluster: MultiHost) -> None:
    """Host A's link is cut while it runs a job: host B takes the job over once the lease has
    expired and finishes the tree; when A's link comes back, A's late commit is rejected."""
    host_a, host_b = cluster.hosts
    q = jobtree.createJobQueue(cluster.export / "q", leaseSeconds=LEASE)
    (cluster.export / "records").mkdir()
    with q.createJob(RecordJob, label="root") as root:
        for i in range(8):
            root.createJob(RecordJob, label=f"leaf{i}", seconds=1.0)
    paths = {"root"} | {f"root.{i:04d}" for i in range(8)}

    worker_a = start_worker(host_a)
    worker_b = start_worker(host_b)
    (cluster.export / "go").touch()

    wait_for(lambda: running_on(q, host_a.name), 20, "a job running on host A", interval=0.05)
    time.sleep(0.3)  # well inside the job's 1 s
    host_a.cut_link()
    cut_at = time.time()
    # What A holds now it holds until its link comes back (read on the server's side).
    (victim,) = running_on(q, host_a.name)

    # B takes A's job over after the lease and finishes everything while A is cut off.
    (root_h,) = q.listJobs()
    wait_for(
        lambda: root_h.state is JobState.DONE,
        40,
        "the root to finish without host A",
        interval=0.05,
    )
    assert worker_a.returncode is None, "host A's worker ended while its link was cut"
    taken = [j for j in all_jobs(q) if j.attempts > 1]
    assert victim in taken, f"{victim.path} was not taken over; attempts: {victim.attempts}"
    takeover_start = final_attempt(victim)["startTime"]
    latency = takeover_start - cut_at
    print(f"takeover of {victim.path} started {latency:.2f} s after the cut (lease {LEASE} s)")
    # A renews every LEASE/4; its last renewal may precede the cut by that, and mtimes are whole
    # seconds: anything much earlier than the lease is a premature takeover.
    assert latency >= LEASE - LEASE / 4 - 1.0, f"taken over only {latency:.2f} s after the cut"

    # A's link comes back: its stalled job resumes, its commit must be rejected.
    host_a.restore_link()
    restored_at = time.time()
    wait_all([worker_a, worker_b], timeout=30)
    print(f"host A's worker ended {time.time() - restored_at:.2f} s after the link came back")

    # Nothing lost: every job is done once, its final attempt is the one that was committed.
    for job in all_jobs(q):
        assert job.state is JobState.DONE, f"{job.path}: {job.state}"
        last = final_attempt(job)
        assert last["outcome"] == "done", f"{job.path}: {last}"
        assert job.host == last["host"], f"{job.path}: token says {job.host}, attempt {last}"
    for job in taken:
        last = final_attempt(job)
        assert last["host"] == host_b.name, f"{job.path}: final attempt is host A's: {last}"
        assert job.host == host_b.name, f"{job.path}: its token names {job.host}"
        assert job.attempts == last["attempt"] == 2, f"{job.path}: {job.attempts} attempts"
        assert warnings_about(worker_a.stderr, q, job), (
            f"host A did not warn that {job.path} was taken from it:\n{worker_a.stderr[-3000:]}"
        )
    records = read_records(cluster.export / "records")
    assert {r["path"] for r in records} == paths
    assert {r["path"] for r in records if r["host"] == host_b.name} >= {j.path for j in taken}
    # The root ran after all its children's committed runs ended.
    committed = {
        r["path"]: r
        for r in records
        if r["host"] == final_attempt(q.jobHandle(job_dir(q, r["path"])))["host"]
    }
    assert committed["root"]["start"] >= max(committed[p]["end"] for p in paths - {"root"})


def job_dir(q, path: str) -> str:
    (root,) = q.listJobs()
    return os.path.join(root.location, *path.split(".")[1:])


def test_clock_an_hour_ahead_causes_no_takeover(cluster: MultiHost) -> None:
    """Host B's clock is an hour ahead. A runs a job of 8 s (and B perhaps the root, of 5 s)
    that renew their 3 s leases; B, idle beside A's long job, must not take it over."""
    multihost.require(faketime=True)
    host_a, host_b = cluster.hosts
    q = jobtree.createJobQueue(cluster.export / "q", leaseSeconds=LEASE)
    (cluster.export / "records").mkdir()
    with q.createJob(RecordJob, label="root", seconds=5.0) as root:
        root.createJob(RecordJob, label="long", seconds=8.0)  # root.0000: claimed first
        root.createJob(RecordJob, label="short", seconds=1.0)

    started = time.time()
    worker_a = start_worker(host_a)
    worker_b = start_worker(host_b, barrier="go-b", faketime="+1h", clock_offset=3600)
    (cluster.export / "go").touch()
    # B starts once A runs the long job; it runs the short one and then sits idle for ~6 s,
    # judging A's lease with its skewed clock.
    wait_for(lambda: running_on(q, host_a.name), 20, "a job running on host A", interval=0.05)
    (cluster.export / "go-b").touch()
    wait_all([worker_a, worker_b], timeout=45)

    for job in all_jobs(q):
        assert job.state is JobState.DONE, f"{job.path}: {job.state}"
        assert job.attempts == 1, f"{job.path} ran {job.attempts} times"
        assert list(attempt_records(job)) == [1], f"{job.path}: {sorted(attempt_records(job))}"
    for w in (worker_a, worker_b):
        warnings = [line for line in w.stderr.splitlines() if "WARNING" in line]
        assert warnings == [], f"{w.host.name} warned:\n" + "\n".join(warnings)

    records = read_records(cluster.export / "records")
    assert sorted(r["path"] for r in records) == ["root", "root.0000", "root.0001"], records
    by_host = {h.name: [r for r in records if r["host"] == h.name] for h in cluster.hosts}
    assert by_host[host_b.name], "host B ran no job"
    for r in by_host[host_b.name]:  # B's clock really was an hour ahead
        assert started - 5 < r["start"] - 3600 < time.time() + 5, r
    # On the real clock: B was idle for a good while during one of A's jobs.
    real = [
        (r["start"] - r["clockOffset"], r["end"] - r["clockOffset"], r["host"]) for r in records
    ]
    b_busy = [(s, e) for s, e, h in real if h == host_b.name]
    idle_watch = 0.0
    for s, e, h in real:
        if h == host_a.name:
            overlap = sum(max(0.0, min(e, be) - max(s, bs)) for bs, be in b_busy)
            idle_watch = max(idle_watch, (e - s) - overlap)
    assert idle_watch > LEASE + 1, f"B watched A's jobs idle for only {idle_watch:.1f} s"
