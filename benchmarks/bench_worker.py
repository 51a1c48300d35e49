"""Worker daemon benchmark: idle CPU and wake-up latency (targets of issue 4).

    python benchmarks/bench_worker.py [--workers N] [--idle-seconds 10] [--samples 40]
                                      [--history-roots 20] [--history-jobs 50]
                                      [--dir PARENT] [--keep] [--strict]

For each wake-up mode (inotify, the default on a local disk, and ``--poll 1``, what a network
filesystem gets) it starts ``python -m jobtree.worker QUEUE --workers N`` on a queue that already
holds some finished history, waits until every worker is registered and idle, then

- idle CPU: sums utime+stime (/proc/<pid>/stat) of the supervisor and every worker over
  ``--idle-seconds``; target: at most 1% of one CPU for all of them together;
- latency: submits a one-job root ``--samples`` times, at random moments, whose procedure records
  ``time.time()`` as its first statement; latency = that minus the time just before the submission
  started. Target on a local disk (inotify): 95th percentile within 100 ms. Polling is reported
  for information (expect about half the poll interval).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import signal
import subprocess
import sys
import time

from benchutil import BENCH_DIR, REPO_DIR, Report, Scratch, common_args, disk_anchor, percentile

from jobtree import JobProc

IDLE_CPU_TARGET = 1.0  # percent of one CPU, supervisor and all workers together
LATENCY_TARGET = 0.100  # seconds, 95th percentile, local disk


class StartTime(JobProc):
    """Appends {"start": time.time()} to recordFile, first thing."""

    def __init__(self, recordFile: str, label: str | None = None) -> None:
        super().__init__(label)
        self.recordFile = recordFile

    def run(self) -> None:
        start = time.time()
        fd = os.open(self.recordFile, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            os.write(fd, (json.dumps({"start": start, "label": self.label}) + "\n").encode())
        finally:
            os.close(fd)


START_TIME = "bench_worker:StartTime"
NOOP = "benchprocs:NoOp"


def _ppids() -> dict[int, int]:
    out = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as f:
                    out[int(entry)] = int(f.read().rsplit(")", 1)[1].split()[1])
            except (OSError, ValueError, IndexError):
                continue
    return out


def tree(pid: int) -> list[int]:
    """*pid* and every process below it."""
    ppids = _ppids()
    found, frontier = [pid], [pid]
    while frontier:
        parent = frontier.pop()
        kids = [p for p, pp in ppids.items() if pp == parent]
        found += kids
        frontier += kids
    return found


def cpu_ticks(pids: list[int]) -> int:
    total = 0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])  # utime, stime (fields 14 and 15 of stat(5))
    return total


def read_records(path: str) -> list[dict]:
    try:
        with open(path) as f:
            return [json.loads(line) for line in f if line.strip()]
    except FileNotFoundError:
        return []


class Daemon:
    def __init__(self, queue: str, workers: int, poll: float | None, log: str) -> None:
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(
            [BENCH_DIR, REPO_DIR, *filter(None, [env.get("PYTHONPATH")])]
        )
        env["JOBTREE_ALLOW_ROOT"] = "1"  # the benchmark machines run as root
        args = [sys.executable, "-m", "jobtree.worker", queue, "--workers", str(workers)]
        if poll is not None:
            args += ["--poll", str(poll)]
        self.logFile = open(log, "wb")  # noqa: SIM115 (closed in stop())
        self.proc = subprocess.Popen(
            args, env=env, stdout=self.logFile, stderr=subprocess.STDOUT, start_new_session=True
        )

    def wait_registered(self, queue: str, n: int, timeout: float = 60.0) -> None:
        from jobtree.registry import listWorkers

        deadline = time.monotonic() + timeout
        while len([w for w in listWorkers(queue) if not w["lost"]]) < n:
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"the daemon's {n} workers did not register; see its log")
            time.sleep(0.05)

    def stop(self) -> None:
        if self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(60)
            except subprocess.TimeoutExpired:
                for pid in tree(self.proc.pid):
                    try:
                        os.kill(pid, signal.SIGKILL)
                    except ProcessLookupError:
                        pass
                self.proc.wait()
        self.logFile.close()


def make_history(q, roots: int, jobs: int) -> None:
    """Finished roots: what a queue that has run for a while holds (and inotify watches)."""
    for r in range(roots):
        with q.createJob(NOOP, label=f"history {r}") as root:
            for _ in range(jobs - 1):
                root.createJob(NOOP)
    while q.runNextAvailableJob():
        pass


def measure(
    report: Report,
    scratch: Scratch,
    qdir: str,
    mode: str,
    workers: int,
    idle_seconds: float,
    samples: int,
) -> None:
    import jobtree

    q = jobtree.JobQueue(qdir)
    poll = 1.0 if mode == "poll" else None
    d = Daemon(qdir, workers, poll, scratch.sub(f"daemon-{mode}.log"))
    try:
        d.wait_registered(qdir, workers)
        time.sleep(3.0)  # let start-up settle: every worker idle, waiting
        pids = tree(d.proc.pid)
        clk = os.sysconf("SC_CLK_TCK")
        t0, c0 = time.monotonic(), cpu_ticks(pids)
        time.sleep(idle_seconds)
        t1, c1 = time.monotonic(), cpu_ticks(pids)
        cpu = 100.0 * (c1 - c0) / clk / (t1 - t0)
        print(
            f"[{mode}] idle CPU of {len(pids)} processes (supervisor + {workers} workers) over "
            f"{t1 - t0:.1f} s: {cpu:.2f}% of one CPU ({c1 - c0} ticks of 1/{clk} s; resolution "
            f"{100.0 / clk / (t1 - t0):.2f}%)"
        )
        report.target(
            f"idle CPU ({mode})",
            cpu <= IDLE_CPU_TARGET,
            f"{cpu:.2f}% <= {IDLE_CPU_TARGET}% of one CPU",
        )

        records = scratch.sub(f"starts-{mode}.jsonl")
        latencies = []
        for i in range(samples):
            # Idle again, then submit at a random phase of the poll interval (a fixed gap would
            # lock the submissions to the poller's rhythm and bias the figure).
            time.sleep(random.uniform(0.15, 0.15 + (poll or 0.3)))
            before = len(read_records(records))
            t = time.time()
            q.createJob(START_TIME, label=f"sample {i}", recordFile=records).activate()
            deadline = time.monotonic() + 30
            while len(read_records(records)) == before:
                if time.monotonic() > deadline or d.proc.poll() is not None:
                    raise RuntimeError(f"sample {i} did not start within 30 s; see the daemon log")
                time.sleep(0.002)
            latencies.append(read_records(records)[-1]["start"] - t)
        med, p95, worst = (
            percentile(latencies, 50),
            percentile(latencies, 95),
            max(latencies),
        )
        print(
            f"[{mode}] submit-to-start latency over {samples} jobs: median {med * 1000:.1f} ms, "
            f"p95 {p95 * 1000:.1f} ms, max {worst * 1000:.1f} ms"
        )
        if mode == "inotify":
            report.target(
                "wake-up latency (local disk, inotify)",
                p95 <= LATENCY_TARGET,
                f"p95 {p95 * 1000:.1f} ms <= {LATENCY_TARGET * 1000:.0f} ms",
            )
        else:
            print(f"[{mode}] (information: polling every {poll} s; no target on a local disk)")
    finally:
        d.stop()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 2)
    parser.add_argument("--idle-seconds", type=float, default=10.0)
    parser.add_argument("--samples", type=int, default=40)
    parser.add_argument("--history-roots", type=int, default=20)
    parser.add_argument("--history-jobs", type=int, default=50)
    parser.add_argument("--modes", default="inotify,poll", help="comma-separated: inotify,poll")
    common_args(parser)
    args = parser.parse_args()

    import jobtree

    report = Report("bench_worker: the worker daemon idle and waking up")
    scratch = Scratch("worker", args.dir, args.keep)
    try:
        disk_anchor(scratch, "start")
        qdir = scratch.sub("queue")
        q = jobtree.createJobQueue(qdir)
        t = time.monotonic()
        make_history(q, args.history_roots, args.history_jobs)
        print(
            f"history: {args.history_roots} finished roots of {args.history_jobs} jobs "
            f"({time.monotonic() - t:.1f} s to make)"
        )
        for mode in args.modes.split(","):
            measure(report, scratch, qdir, mode, args.workers, args.idle_seconds, args.samples)
        disk_anchor(scratch, "end")
    finally:
        scratch.cleanup()
    return report.finish(args.strict)


if __name__ == "__main__":
    sys.exit(main())
