"""JobProc subclasses for the resilience, chaos, bad-input and security tests.

Worker subprocesses import this module as ``resil_procs`` (tests/ is on their PYTHONPATH), so every
job type here is spelled ``resil_procs:<Class>`` on disk. Records are JSON lines appended with one
O_APPEND write each (procs_for_tests.append_json), so processes never interleave.
"""

from __future__ import annotations

import os
import random
import sys
import time
from pathlib import Path
from typing import Any

from procs_for_tests import _TestProc, append_json, job_path, root_id

from jobtree import JobQueue, RetryLater


def queue_of(job_dir: str | os.PathLike[str]) -> str:
    """The queue directory of a job directory (the parent of its last ``roots`` component)."""
    parts = Path(job_dir).parts
    i = len(parts) - 1 - parts[::-1].index("roots")
    return str(Path(*parts[:i]))


def my_attempt(job_dir: str) -> int:
    """This run's attempt number, read through the public API (the running token's claim)."""
    return JobQueue(queue_of(job_dir)).jobHandle(job_dir).attempts


def write_atomic(path: str | os.PathLike[str], text: str) -> None:
    tmp = f"{path}.{os.getpid()}.tmp"
    Path(tmp).write_text(text)
    os.replace(tmp, path)


class ChaosProc(_TestProc):
    """Appends a ``start`` record, sleeps ``sleep`` seconds (or a random time in
    [minSleep, maxSleep]), appends an ``end`` record. A run killed in between has no end record."""

    def __init__(
        self, recordFile: str, minSleep: float = 0.002, maxSleep: float = 0.02, **extra: Any
    ) -> None:
        super().__init__(**extra)
        self.recordFile = recordFile
        self.minSleep = minSleep
        self.maxSleep = maxSleep

    def run(self) -> None:
        job_dir = str(self.runningDir)
        key = {
            "rootId": root_id(job_dir),
            "path": job_path(job_dir),
            "pid": os.getpid(),
            "attempt": my_attempt(job_dir),
        }
        start = time.time()
        append_json(self.recordFile, {"ev": "start", **key, "start": start})
        time.sleep(random.uniform(self.minSleep, self.maxSleep))
        append_json(self.recordFile, {"ev": "end", **key, "start": start, "end": time.time()})


class ChildSleepProc(_TestProc):
    """Attempt 1 starts ``sleep 60`` through execCmd and writes the child's pid to ``pidFile``
    (then waits for it: the job hangs). Later attempts append a record and finish at once."""

    def __init__(self, pidFile: str, recordFile: str, **extra: Any) -> None:
        super().__init__(**extra)
        self.pidFile = pidFile
        self.recordFile = recordFile

    def run(self) -> None:
        job_dir = str(self.runningDir)
        attempt = my_attempt(job_dir)
        append_json(
            self.recordFile,
            {"path": job_path(job_dir), "pid": os.getpid(), "attempt": attempt, "t": time.time()},
        )
        if attempt == 1:
            # $$ is the shell's pid, and exec keeps it: the pid file names the sleep itself.
            self.execCmd(
                [
                    "sh",
                    "-c",
                    f'echo $$ > "{self.pidFile}.tmp"; mv "{self.pidFile}.tmp" "{self.pidFile}"; exec sleep 60',
                ]
            )
        print(f"attempt {attempt} finished")


class BlockProc(_TestProc):
    """Appends a start record (with pid and attempt), writes ``startedFile``, then waits for
    ``releaseFile`` (giving up after ``timeout`` s). With ``childPidFile`` it waits in an execCmd
    ``sleep 60`` instead, whose pid it writes there (killed when ``releaseFile`` appears is not
    needed: such jobs are always stopped by jobtree)."""

    def __init__(
        self,
        startedFile: str,
        releaseFile: str,
        recordFile: str | None = None,
        childPidFile: str | None = None,
        timeout: float = 60.0,
        **extra: Any,
    ) -> None:
        super().__init__(**extra)
        self.startedFile = startedFile
        self.releaseFile = releaseFile
        self.recordFile = recordFile
        self.childPidFile = childPidFile
        self.timeout = timeout

    def run(self) -> None:
        job_dir = str(self.runningDir)
        if self.recordFile:
            append_json(
                self.recordFile,
                {
                    "ev": "start",
                    "path": job_path(job_dir),
                    "pid": os.getpid(),
                    "attempt": my_attempt(job_dir),
                    "t": time.time(),
                },
            )
        print(f"working in {os.getpid()}")
        if self.childPidFile:
            pf = self.childPidFile
            write_atomic(self.startedFile, str(os.getpid()))
            self.execCmd(["sh", "-c", f'echo $$ > "{pf}.tmp"; mv "{pf}.tmp" "{pf}"; exec sleep 60'])
            return
        write_atomic(self.startedFile, str(os.getpid()))
        deadline = time.monotonic() + self.timeout
        while not os.path.exists(self.releaseFile):
            if time.monotonic() > deadline:
                raise TimeoutError(f"{self.releaseFile} did not appear in {self.timeout} s")
            time.sleep(0.01)


class FlakyProc(_TestProc):
    """Counts its runs in ``counterFile`` (one line each), prints "run <n>" to stdout and fails
    (``mode="raise"``) or asks for a retry (``mode="retry"``) while n <= ``failTimes``."""

    def __init__(
        self,
        counterFile: str,
        failTimes: int,
        mode: str = "raise",
        retryDelay: float | None = None,
        **extra: Any,
    ) -> None:
        super().__init__(**extra)
        self.counterFile = counterFile
        self.failTimes = failTimes
        self.mode = mode
        self.retryDelay = retryDelay

    def run(self) -> None:
        append_json(self.counterFile, {"pid": os.getpid(), "t": time.time()})
        n = len(Path(self.counterFile).read_text().splitlines())
        print(f"run {n}")
        print(f"stderr of run {n}", file=sys.stderr)
        if n <= self.failTimes:
            if self.mode == "retry":
                raise RetryLater(f"not yet ({n})", delay=self.retryDelay)
            raise RuntimeError(f"failure {n}")


class FailUnlessFileProc(_TestProc):
    """Fails until ``okFile`` exists; appends a record of every run to ``recordFile``."""

    def __init__(self, okFile: str, recordFile: str, **extra: Any) -> None:
        super().__init__(**extra)
        self.okFile = okFile
        self.recordFile = recordFile

    def run(self) -> None:
        append_json(self.recordFile, {"path": job_path(str(self.runningDir)), "t": time.time()})
        if not os.path.exists(self.okFile):
            raise RuntimeError(f"{self.okFile} is missing")


class PythonSleepProc(_TestProc):
    """Prints one line, then blocks in one long time.sleep() call (a hang inside C code)."""

    def __init__(self, seconds: float, **extra: Any) -> None:
        super().__init__(**extra)
        self.seconds = seconds

    def run(self) -> None:
        print("started")
        time.sleep(self.seconds)


class CtorRaiseProc(_TestProc):
    """Its constructor raises when RESIL_CTOR_RAISE is set (so only in a worker that sets it)."""

    def __init__(self, **extra: Any) -> None:
        if os.environ.get("RESIL_CTOR_RAISE"):
            raise RuntimeError(f"constructor refuses to run in pid {os.getpid()}")
        super().__init__(**extra)

    def run(self) -> None:
        pass


class PrintBytesProc(_TestProc):
    """print()s ``total`` bytes as numbered lines of ``lineLen`` bytes (newline included)."""

    def __init__(self, total: int, lineLen: int = 1000, **extra: Any) -> None:
        super().__init__(**extra)
        self.total = total
        self.lineLen = lineLen

    def run(self) -> None:
        n = self.total // self.lineLen
        for i in range(n):
            head = f"line {i:08d} "
            sys.stdout.write(head + "x" * (self.lineLen - len(head) - 1) + "\n")
