"""The worker that the multi-host tests run on each host, and the job procedures they submit.

python multihost_worker.py QUEUE --records DIR [--barrier FILE] [--deadline SECONDS]
                           [--clock-offset SECONDS] [--poll SECONDS] [--blocked-grace SECONDS]
    wait until FILE exists, then run jobs of QUEUE until it is ALL_DONE; print "ran N" and exit 0,
    or exit 4 on deadline, 5 if the queue is BLOCKED (for --blocked-grace seconds; default: at
    once). jobtree's log (INFO and up) goes to stderr, each line naming the host.

Jobs of type ``multihost_worker:RecordJob`` append one JSON line per run to
``DIR/<hostname>.<pid>.jsonl`` (one file per worker process, so that no two writers share a file
across sshfs mounts): ``{"path", "rootId", "host", "pid", "start", "end", "clockOffset"}``.
``start``/``end`` are this host's ``time.time()``, which is shifted when the host runs under
faketime; ``clockOffset`` is the shift the worker was told about (``--clock-offset``), so
``start - clockOffset`` is on the machine's real clock.

The module is imported by the test process too (to submit jobs): everything that runs on import
is harmless there.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import socket
import sys
import time
from pathlib import Path
from typing import Any

from procs_for_tests import append_json

from jobtree import IdleReason, JobProc, JobQueue

RECORD_DIR_ENV = "MULTIHOST_RECORD_DIR"
CLOCK_OFFSET_ENV = "MULTIHOST_CLOCK_OFFSET"


def job_path(job_dir: str | os.PathLike[str]) -> tuple[str, str]:
    """(rootId, dotted path) of a job directory inside ``QUEUE/roots/<rootid>/``."""
    parts = Path(job_dir).parts
    i = len(parts) - 1 - parts[::-1].index("roots")
    return parts[i + 1], ".".join(["root", *parts[i + 2 :]])


class RecordJob(JobProc):
    """Sleeps ``seconds`` (updating its progress every ``tick`` seconds, which also renews the
    running token), then appends its record to the worker's record file (see the module doc).
    Extra params are accepted and ignored (tests attach data to jobs with them)."""

    def __init__(
        self, seconds: float = 0.0, tick: float = 0.25, label: str | None = None, **extra: Any
    ) -> None:
        super().__init__(label=label)
        self.seconds = seconds
        self.tick = tick
        self.extra = extra

    def run(self) -> None:
        start = time.time()
        if self.seconds > 0:
            t0 = time.monotonic()
            while (elapsed := time.monotonic() - t0) < self.seconds:
                self.setProgress(min(99, int(100 * elapsed / self.seconds)))
                time.sleep(min(self.tick, self.seconds - elapsed))
        end = time.time()
        record_dir = os.environ.get(RECORD_DIR_ENV)
        if not record_dir:
            return  # run outside a multi-host worker (e.g. locally): nothing to record
        root_id, path = job_path(str(self.runningDir))
        append_json(
            os.path.join(record_dir, f"{socket.gethostname()}.{os.getpid()}.jsonl"),
            {
                "path": path,
                "rootId": root_id,
                "host": socket.gethostname(),
                "pid": os.getpid(),
                "start": start,
                "end": end,
                "clockOffset": float(os.environ.get(CLOCK_OFFSET_ENV, "0")),
            },
        )


def read_records(record_dir: str | os.PathLike[str]) -> list[dict[str, Any]]:
    """Every record of every worker, read on the file server's side."""
    records: list[dict[str, Any]] = []
    for f in sorted(Path(record_dir).glob("*.jsonl")):
        records.extend(json.loads(line) for line in f.read_text().splitlines() if line)
    return records


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("queue")
    parser.add_argument("--records", required=True, help="directory for the job records")
    parser.add_argument("--barrier", help="wait until this file exists before starting")
    parser.add_argument("--deadline", type=float, default=100.0)
    parser.add_argument("--clock-offset", type=float, default=0.0)
    parser.add_argument("--poll", type=float, default=0.05, help="seconds between idle polls")
    parser.add_argument(
        "--blocked-grace",
        type=float,
        default=0.0,
        help="exit 5 only when the queue stays BLOCKED this long (default 0: at once)",
    )
    args = parser.parse_args()
    deadline = time.monotonic() + args.deadline
    host = socket.gethostname()
    logging.basicConfig(
        level=logging.INFO,
        stream=sys.stderr,
        format=f"%(asctime)s {host}[%(process)d] %(levelname)s %(name)s: %(message)s",
    )
    log = logging.getLogger("multihost_worker")
    os.environ[RECORD_DIR_ENV] = args.records
    os.environ[CLOCK_OFFSET_ENV] = str(args.clock_offset)
    os.makedirs(args.records, exist_ok=True)

    if args.barrier:
        while not os.path.exists(args.barrier):
            if time.monotonic() > deadline:
                log.error("barrier %s never appeared", args.barrier)
                return 4
            time.sleep(0.02)

    q = JobQueue(args.queue)
    log.info("working on %s (time.time() %.3f)", args.queue, time.time())
    ran = 0
    blocked_since: float | None = None
    while True:
        while q.runNextAvailableJob():
            ran += 1
            if time.monotonic() > deadline:
                break
        reason = q.idleReason()
        if reason == IdleReason.ALL_DONE:
            break
        if reason == IdleReason.BLOCKED:
            # BLOCKED must mean blocked (a failed job holds the rest). jobtree once also said
            # BLOCKED in the moment between another worker's commit of a job's last child and
            # the cascade making the parent ready; the tests run with no grace to catch that.
            now = time.monotonic()
            if blocked_since is None:
                blocked_since = now
                log.info("idleReason() is BLOCKED after %d jobs; checking again", ran)
            if now - blocked_since >= args.blocked_grace:
                log.error("queue blocked after %d jobs", ran)
                print(f"ran {ran}", flush=True)
                return 5
        elif blocked_since is not None:
            log.info(
                "idleReason() is %s again after %.3f s of BLOCKED",
                reason,
                time.monotonic() - blocked_since,
            )
            blocked_since = None
        if time.monotonic() > deadline:
            log.error("deadline passed after %d jobs, idleReason %s", ran, reason)
            print(f"ran {ran}", flush=True)
            return 4
        time.sleep(args.poll)  # RUNNING elsewhere (or a job just became ready): poll again
    log.info("all done; ran %d", ran)
    print(f"ran {ran}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
