"""Procedures for the farm-feature tests (requirements, limits, schedules, hooks, retention)."""

from __future__ import annotations

import json
import os
import time

import jobtree


class Interval(jobtree.JobProc):
    """Sleeps *secs* and appends one JSON line {path, pid, start, end, meta} to *log*."""

    def __init__(self, log: str, secs: float = 0.0, tag: str = "") -> None:
        super().__init__()
        self.log, self.secs, self.tag = log, secs, tag

    def run(self) -> None:
        start = time.time()
        time.sleep(self.secs)
        line = json.dumps(
            {
                "dir": self.runningDir,
                "pid": os.getpid(),
                "start": start,
                "end": time.time(),
                "tag": self.tag,
            }
        )
        fd = os.open(self.log, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o666)
        try:
            os.write(fd, (line + "\n").encode())
        finally:
            os.close(fd)


class Fail(jobtree.JobProc):
    def run(self) -> None:
        raise RuntimeError("this job fails on purpose")


def records(log: str) -> list[dict]:
    try:
        with open(log) as f:
            return [json.loads(line) for line in f if line.strip()]
    except FileNotFoundError:
        return []
