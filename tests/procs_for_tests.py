"""JobProc subclasses used by the tests.

Worker subprocesses import this module as ``procs_for_tests`` (the tests put ``tests/`` on
``PYTHONPATH``), so every job type here is spelled ``procs_for_tests:<Class>`` on disk.
"""

from __future__ import annotations

import json
import logging
import os
import sys
import time
from pathlib import Path
from typing import Any

from jobtree import JobProc

LOG = logging.getLogger("procs_for_tests")


def job_path(job_dir: str | os.PathLike[str]) -> str:
    """The dotted path ("root.0002.0000") of a job directory inside ``QUEUE/roots/<rootid>/``."""
    parts = Path(job_dir).parts
    # Job directories below the root are digits, so the last "roots" component is the queue's.
    i = len(parts) - 1 - parts[::-1].index("roots")
    return ".".join(["root", *parts[i + 2 :]])


def root_id(job_dir: str | os.PathLike[str]) -> str:
    parts = Path(job_dir).parts
    i = len(parts) - 1 - parts[::-1].index("roots")
    return parts[i + 1]


def append_json(file: str | os.PathLike[str], record: dict[str, Any]) -> None:
    """Append one JSON line with a single O_APPEND write, so that processes never interleave."""
    fd = os.open(file, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, (json.dumps(record) + "\n").encode())
    finally:
        os.close(fd)


class _TestProc(JobProc):
    """Accepts and keeps arbitrary extra params so that tests can attach any data to a job."""

    def __init__(self, label: str | None = None, **extra: Any) -> None:
        super().__init__(label=label)
        self.extra = extra


class NoopProc(_TestProc):
    def run(self) -> None:
        pass


class RecordProc(_TestProc):
    """Appends ``{path, rootId, name, pid, cwd, runningDir, start, end}`` to ``recordFile``."""

    def __init__(self, recordFile: str, name: str | None = None, **extra: Any) -> None:
        super().__init__(**extra)
        self.recordFile = recordFile
        self.name = name

    def run(self) -> None:
        start = time.time()
        cwd = os.getcwd()
        running_dir = str(self.runningDir)
        end = time.time()
        append_json(
            self.recordFile,
            {
                "path": job_path(running_dir),
                "rootId": root_id(running_dir),
                "name": self.name,
                "pid": os.getpid(),
                "cwd": cwd,
                "runningDir": running_dir,
                "start": start,
                "end": end,
            },
        )


class FailProc(_TestProc):
    def __init__(self, message: str = "boom", **extra: Any) -> None:
        super().__init__(**extra)
        self.message = message

    def run(self) -> None:
        raise RuntimeError(self.message)


class BadParamProc(_TestProc):
    """Its constructor refuses a negative ``value``."""

    def __init__(self, value: int, **extra: Any) -> None:
        if value < 0:
            raise ValueError(f"value must be >= 0, got {value}")
        super().__init__(**extra)
        self.value = value

    def run(self) -> None:
        pass


class PrintLogProc(_TestProc):
    """Writes ``marker`` through print() to stdout and stderr and through logging."""

    def __init__(self, marker: str, **extra: Any) -> None:
        super().__init__(**extra)
        self.marker = marker

    def run(self) -> None:
        print(f"{self.marker} on stdout")
        print(f"{self.marker} on stderr", file=sys.stderr)
        LOG.warning("%s logged", self.marker)


class ExecCmdProc(_TestProc):
    """Runs ``cmd`` through execCmd and writes the exit code and the callback lines to
    ``resultFile`` as JSON: ``{"exitCode": n, "stdout": [[lineNr, line], ...], "stderr": [...]}``.
    With ``printAround`` it also print()s "before" and "after" around the command."""

    def __init__(
        self, cmd: str | list[str], resultFile: str, printAround: bool = False, **extra: Any
    ) -> None:
        super().__init__(**extra)
        self.cmd = cmd
        self.resultFile = resultFile
        self.printAround = printAround
        self.outLines: list[list[Any]] = []
        self.errLines: list[list[Any]] = []

    def stdoutCallback(self, lineNr: int, line: str) -> None:
        self.outLines.append([lineNr, line])

    def stderrCallback(self, lineNr: int, line: str) -> None:
        self.errLines.append([lineNr, line])

    def run(self) -> None:
        if self.printAround:
            print("before")
        code = self.execCmd(self.cmd)
        if self.printAround:
            print("after")
        Path(self.resultFile).write_text(
            json.dumps({"exitCode": code, "stdout": self.outLines, "stderr": self.errLines})
        )


class StatusProc(_TestProc):
    """Calls setProgress / setStatusLine / setError with the given values, in that order."""

    def __init__(
        self,
        progress: int | None = None,
        statusLine: str | None = None,
        error: str | None = None,
        **extra: Any,
    ) -> None:
        super().__init__(**extra)
        self.progress = progress
        self.statusLine = statusLine
        self.error = error

    def run(self) -> None:
        if self.progress is not None:
            self.setProgress(self.progress)
        if self.statusLine is not None:
            self.setStatusLine(self.statusLine)
        if self.error is not None:
            self.setError(self.error)


class BlockingProc(_TestProc):
    """Sets progress and status line, prints "working in <pid>", creates ``startedFile``
    (content: its pid), then waits
    until ``releaseFile`` exists (giving up after ``timeout`` seconds)."""

    def __init__(
        self,
        startedFile: str,
        releaseFile: str,
        progress: int = 40,
        statusLine: str = "halfway",
        timeout: float = 60.0,
        **extra: Any,
    ) -> None:
        super().__init__(**extra)
        self.startedFile = startedFile
        self.releaseFile = releaseFile
        self.progress = progress
        self.statusLine = statusLine
        self.timeout = timeout

    def run(self) -> None:
        self.setProgress(self.progress)
        self.setStatusLine(self.statusLine)
        print(f"working in {os.getpid()}")
        tmp = f"{self.startedFile}.tmp"
        Path(tmp).write_text(str(os.getpid()))
        os.replace(tmp, self.startedFile)
        deadline = time.monotonic() + self.timeout
        while not os.path.exists(self.releaseFile):
            if time.monotonic() > deadline:
                raise TimeoutError(f"{self.releaseFile} did not appear in {self.timeout} s")
            time.sleep(0.01)


class PostCreateProc(_TestProc):
    """Appends ``{jobDir, isdir, pid}`` to ``recordFile`` from postCreate()."""

    def __init__(self, recordFile: str, **extra: Any) -> None:
        super().__init__(**extra)
        self.recordFile = recordFile

    def postCreate(self, jobDir: str) -> None:
        super().postCreate(jobDir)
        append_json(
            self.recordFile,
            {"jobDir": str(jobDir), "isdir": os.path.isdir(jobDir), "pid": os.getpid()},
        )

    def run(self) -> None:
        pass


class NotAProc:
    """Not a JobProc subclass."""


class ResultProc(_TestProc):
    """Saves *value* as its result (twice when *replace* is given: the second one wins)."""

    def __init__(self, value: Any = None, replace: Any = None, label: str | None = None) -> None:
        super().__init__(label=label)
        self.value = value
        self.replace = replace

    def run(self) -> None:
        self.setResult(self.value)
        if self.replace is not None:
            self.setResult(self.replace)


class NotJsonResultProc(_TestProc):
    def run(self) -> None:
        self.setResult({"when": object()})


class EnvCwdProc(_TestProc):
    """Runs a command with execCmd(env=..., cwd=...) that prints what it sees."""

    def __init__(self, env: dict[str, Any], cwd: str | None, label: str | None = None) -> None:
        super().__init__(label=label)
        self.env = env
        self.cwd = cwd

    def run(self) -> None:
        code = self.execCmd(
            ["sh", "-c", 'echo "A=${A-unset} HOME=${HOME-unset} PWD=$PWD"; pwd -P'],
            env=self.env,
            cwd=self.cwd,
        )
        if code != 0:
            self.setError(f"exit {code}")
