"""JobProc subclasses for the worker-daemon tests (tests/test_worker.py).

Daemon processes import this module as ``worker_procs`` (tests/ is on their PYTHONPATH), so every
job type here is spelled ``worker_procs:<Class>`` on disk. Records are JSON lines appended with one
O_APPEND write each (procs_for_tests.append_json), so processes never interleave.
"""

from __future__ import annotations

import os
import shlex
import time
from typing import Any

from procs_for_tests import _TestProc, append_json, job_path


class SleepRecordProc(_TestProc):
    """Appends a ``start`` record, sleeps ``seconds`` in small steps, appends an ``end`` record.
    A run that was stopped in between has no end record."""

    def __init__(self, recordFile: str, seconds: float = 0.0, **extra: Any) -> None:
        super().__init__(**extra)
        self.recordFile = recordFile
        self.seconds = seconds

    def _record(self, event: str) -> None:
        append_json(
            self.recordFile,
            {
                "event": event,
                "path": job_path(str(self.runningDir)),
                "label": self.label,
                "pid": os.getpid(),
                "time": time.time(),
            },
        )

    def run(self) -> None:
        self._record("start")
        deadline = time.monotonic() + self.seconds
        while time.monotonic() < deadline:
            time.sleep(0.02)
        self._record("end")


class ExecSleepProc(_TestProc):
    """Runs ``sleep`` through execCmd after writing the shell's pid (the sleep's, after exec) to
    ``pidFile``: the job's own child process, which a stop-now must kill."""

    def __init__(self, pidFile: str, seconds: float = 60.0, **extra: Any) -> None:
        super().__init__(**extra)
        self.pidFile = pidFile
        self.seconds = seconds

    def run(self) -> None:
        pid, tmp = shlex.quote(self.pidFile), shlex.quote(f"{self.pidFile}.tmp")
        self.execCmd(f"echo $$ > {tmp} && mv {tmp} {pid} && exec sleep {self.seconds}")
