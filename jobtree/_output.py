"""A running job's output: the per-attempt log files and the stream objects that print() uses."""

from __future__ import annotations

import errno
import io
import os
import threading
import time
from collections import deque

from . import _fs
from . import _layout as L


class LogFile:
    """``stdout.<n>.log`` or ``stderr.<n>.log`` of one attempt, created on the first byte.

    Writes go straight to the file descriptor (no user-space buffer) so that a viewer tailing the
    log sees output as it happens. Thread-safe: execCmd, print() and logging handlers may write
    from different threads.

    A stream is capped at *limit* bytes: the first half is written as it comes, the last half is
    kept in memory and appended on close after a line saying how much was dropped. A full disk
    or a vanished job directory never fails the job: the log notes what was lost where it can.
    """

    def __init__(self, jobDir: str, stream: str, attempt: int, limit: int = 64 << 20) -> None:
        self.path = os.path.join(jobDir, L.logFile(stream, attempt))
        self._fd: int | None = None
        self._lock = threading.Lock()
        self._head = max(limit // 2, 1)
        self._tailLimit = max(limit - self._head, 1)
        self._written = 0
        self._tail: deque[bytes] = deque()
        self._tailSize = 0
        self._dropped = 0
        self.failed: OSError | None = None
        self.lastWrite = time.monotonic()

    def write(self, data: bytes) -> None:
        if not data:
            return
        with self._lock:
            self.lastWrite = time.monotonic()
            room = self._head - self._written
            if room > 0:
                self._emit(data[:room])
                self._written += min(room, len(data))
                data = data[room:]
            if data:
                self._tail.append(bytes(data))
                self._tailSize += len(data)
                while self._tailSize - len(self._tail[0]) >= self._tailLimit:
                    self._dropped += len(self._tail[0])
                    self._tailSize -= len(self._tail.popleft())

    def _emit(self, data: bytes) -> None:
        if self.failed is not None:
            return
        try:
            if self._fd is None:
                self._fd = os.open(
                    self.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND | _fs.NOFOLLOW, 0o666
                )
            view = memoryview(data)
            while view:
                n = os.write(self._fd, view)
                view = view[n:]
        except OSError as exc:
            # Disk full, quota, or the job directory was deleted: keep the job running, keep
            # what was written, and say so in the log if there is any room left to say it.
            self.failed = exc
            if self._fd is not None and exc.errno in (errno.ENOSPC, errno.EDQUOT):
                try:
                    os.write(self._fd, f"\n[jobtree: output lost from here: {exc}]\n".encode())
                except OSError:
                    pass

    def close(self) -> None:
        with self._lock:
            if self._tail:
                tail = b"".join(self._tail)
                excess = max(0, len(tail) - self._tailLimit)
                dropped = self._dropped + excess
                note = f"\n[jobtree: {dropped} bytes of output dropped here (logLimit)]\n"
                self._emit(note.encode() + tail[excess:])
                self._tail.clear()
            if self._fd is not None:
                try:
                    os.close(self._fd)
                except OSError:
                    pass
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
