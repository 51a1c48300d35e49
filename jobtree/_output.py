"""A running job's output: the per-attempt log files and the stream objects that print() uses."""

from __future__ import annotations

import io
import os
import threading

from . import _layout as L


class LogFile:
    """``stdout.<n>.log`` or ``stderr.<n>.log`` of one attempt, created on the first byte.

    Writes go straight to the file descriptor (no user-space buffer) so that a viewer tailing the
    log sees output as it happens. Thread-safe: execCmd, print() and logging handlers may write
    from different threads.
    """

    def __init__(self, jobDir: str, stream: str, attempt: int) -> None:
        self.path = os.path.join(jobDir, L.logFile(stream, attempt))
        self._fd: int | None = None
        self._lock = threading.Lock()

    def write(self, data: bytes) -> None:
        if not data:
            return
        with self._lock:
            if self._fd is None:
                self._fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o666)
            view = memoryview(data)
            while view:
                n = os.write(self._fd, view)
                view = view[n:]

    def close(self) -> None:
        with self._lock:
            if self._fd is not None:
                os.close(self._fd)
                self._fd = None


class LogStream(io.TextIOBase):
    """A text stream (what ``sys.stdout`` is replaced with while a job runs) writing to a LogFile."""

    def __init__(self, log: LogFile) -> None:
        super().__init__()
        self._log = log

    @property
    def encoding(self) -> str:  # type: ignore[override]
        return "utf-8"

    def writable(self) -> bool:
        return True

    def isatty(self) -> bool:
        return False

    def write(self, s: str) -> int:
        if not isinstance(s, str):
            raise TypeError(f"write() argument must be str, not {type(s).__name__}")
        self._log.write(s.encode("utf-8", "backslashreplace"))
        return len(s)

    def flush(self) -> None:
        pass
