"""Reading one job for the details and log panels: pure Python, no Qt. Called off the GUI thread.

Logs can be hundreds of MB: nothing here reads a whole log. The log panel shows a tail, pages
backwards on request, follows a running job by reading only what was appended, and searches the
part it has not loaded in chunks.
"""

from __future__ import annotations

import codecs
import os
import time
from dataclasses import dataclass, field
from typing import Any

from jobtree import CorruptJob, JobQueue
from jobtree import _layout as L

PAGE = 512 * 1024
"""Bytes of log loaded at once (the tail first, then page by page backwards)."""
SEARCH_CHUNK = 4 << 20


@dataclass
class Attempt:
    n: int
    host: str | None = None
    pid: int | None = None
    startTime: float | None = None
    endTime: float | None = None
    outcome: str = ""
    progress: float | None = None
    statusLine: str = ""
    error: str | None = None
    traceback: str | None = None
    stdoutSize: int | None = None
    stderrSize: int | None = None


@dataclass
class JobDetails:
    location: str
    rootId: str
    path: str
    state: str
    label: str | None
    jobType: str
    params: dict[str, Any]
    options: dict[str, Any]
    submitTime: float | None
    submitHost: str | None
    startTime: float | None
    endTime: float | None
    progress: float
    statusLine: str
    host: str | None
    attempts: list[Attempt] = field(default_factory=list)
    error: str | None = None
    traceback: str | None = None
    whyWaiting: str | None = None
    claim: dict[str, Any] = field(default_factory=dict)
    paused: bool = False
    result: Any = None
    """What the job saved with setResult (e.g. the movie an encode wrote), or None."""


def _num(v: Any) -> float | None:
    return float(v) if isinstance(v, (int, float)) and not isinstance(v, bool) else None


def _size(path: str) -> int | None:
    try:
        return os.stat(path).st_size
    except OSError:
        return None


def readJobDetails(queueLocation: str, jobDir: str) -> JobDetails:
    """Everything the details panel shows about one job (JobNotFound if it is gone)."""
    q = JobQueue(queueLocation)
    h = q.jobHandle(jobDir)
    spec = h._spec()
    state, _name = h._token()
    shown = h.state.value
    claim = h._claim()
    record = h._record()[1]
    attempts: list[Attempt] = []
    for data in h.attemptRecords():
        i = int(data["attempt"])
        a = Attempt(i)
        a.host = data.get("host")
        a.pid = data.get("pid")
        a.startTime = _num(data.get("startTime"))
        a.endTime = _num(data.get("endTime"))
        a.outcome = "" if data.get("outcome") == L.READY else str(data.get("outcome") or "")
        a.progress = _num(data.get("progress"))
        a.statusLine = str(data.get("statusLine") or "")
        a.error = data.get("error")
        a.traceback = data.get("traceback")
        a.stdoutSize = _size(os.path.join(jobDir, L.logFile("stdout", i)))
        a.stderrSize = _size(os.path.join(jobDir, L.logFile("stderr", i)))
        attempts.append(a)
    why: str | None = None
    if shown in ("waiting", "ready", "paused", "blocked"):
        try:
            why = q.whyWaiting(h)
        except Exception as exc:  # a job deleted while it is read: say so, do not fail the panel
            why = f"(whyWaiting failed: {exc})"
    try:
        result = h.result
    except CorruptJob as exc:
        result = {"error": str(exc)}
    opts = spec.get("jobOptions")
    params = spec.get("params")
    label = spec.get("label")
    t = spec.get("submitTime")
    return JobDetails(
        location=jobDir,
        rootId=h.rootId,
        path=h.path,
        state=shown,
        label=label if isinstance(label, str) else None,
        jobType=str(spec.get("jobType", "?")),
        params=dict(params) if isinstance(params, dict) else {},
        options=dict(opts) if isinstance(opts, dict) else {},
        submitTime=_num(t),
        submitHost=spec.get("submitHost") if isinstance(spec.get("submitHost"), str) else None,
        startTime=_num(record.get("startTime")),
        endTime=_num(record.get("endTime")) if state in (L.DONE, L.FAILED) else None,
        progress=100.0 if state == L.DONE else (_num(record.get("progress")) or 0.0),
        statusLine=str(record.get("statusLine") or ""),
        host=record.get("host") if isinstance(record.get("host"), str) else None,
        attempts=attempts,
        error=record.get("error") if isinstance(record.get("error"), str) else None,
        traceback=record.get("traceback") if isinstance(record.get("traceback"), str) else None,
        whyWaiting=why,
        claim=claim,
        paused=os.path.lexists(os.path.join(jobDir, L.PAUSE_MARKER)),
        result=result,
    )


# -- logs ------------------------------------------------------------------------------------------


def logPath(jobDir: str, stream: str, attempt: int) -> str:
    return os.path.join(jobDir, L.logFile(stream, attempt))


@dataclass
class LogChunk:
    """Bytes [start, end) of a log file of *size* bytes, decoded."""

    path: str
    start: int
    end: int
    size: int
    text: str
    tail: bytes = b""
    """undecoded bytes at the end (an incomplete UTF-8 sequence): prepended to the next read"""


def _decode(data: bytes, final: bool) -> tuple[str, bytes]:
    dec = codecs.getincrementaldecoder("utf-8")("replace")
    text = dec.decode(data, final)
    rest = dec.getstate()[0]
    return text, rest


def _fromLineStart(start: int, data: bytes) -> tuple[int, bytes]:
    """*data* read from byte *start* of a log, without the partial line it begins with (unless
    it starts the file, or that line is all there is)."""
    if start > 0:
        nl = data.find(b"\n")
        if 0 <= nl < len(data) - 1:
            return start + nl + 1, data[nl + 1 :]
    return start, data


def readTail(path: str, maxBytes: int = PAGE) -> LogChunk:
    """The last *maxBytes* of a log, starting at a line boundary ("" when it does not exist)."""
    try:
        with open(path, "rb") as f:
            size = os.fstat(f.fileno()).st_size
            start = max(0, size - maxBytes)
            f.seek(start)
            data = f.read(size - start)
    except FileNotFoundError:
        return LogChunk(path, 0, 0, 0, "")
    start, data = _fromLineStart(start, data)
    text, rest = _decode(data, False)
    return LogChunk(path, start, start + len(data), start + len(data), text, rest)


def readFrom(path: str, offset: int, carry: bytes = b"", maxBytes: int = 4 * PAGE) -> LogChunk:
    """What was appended since *offset* (at most *maxBytes*; call again for more)."""
    try:
        with open(path, "rb") as f:
            size = os.fstat(f.fileno()).st_size
            if size <= offset:
                return LogChunk(path, offset, offset, size, "", carry)
            f.seek(offset)
            data = f.read(min(maxBytes, size - offset))
    except FileNotFoundError:
        return LogChunk(path, offset, offset, 0, "", carry)
    text, rest = _decode(carry + data, False)
    return LogChunk(path, offset, offset + len(data), size, text, rest)


def readPage(path: str, end: int, maxBytes: int = PAGE) -> LogChunk:
    """The page before byte *end*, starting at a line boundary."""
    start = max(0, end - maxBytes)
    try:
        with open(path, "rb") as f:
            size = os.fstat(f.fileno()).st_size
            f.seek(start)
            data = f.read(end - start)
    except FileNotFoundError:
        return LogChunk(path, 0, 0, 0, "")
    start, data = _fromLineStart(start, data)
    text, _ = _decode(data, True)
    return LogChunk(path, start, start + len(data), size, text)


def searchBackward(path: str, needle: str, before: int, deadline: float = 30.0) -> int:
    """Offset of the last case-insensitive occurrence of *needle* before byte *before*, or -1.
    Reads the file backwards in chunks (a 300 MB log costs a few hundred ms, not its size in
    memory)."""
    pat = needle.lower().encode("utf-8")
    if not pat:
        return -1
    stop = time.monotonic() + deadline
    end = before
    try:
        with open(path, "rb") as f:
            while end > 0 and time.monotonic() < stop:
                start = max(0, end - SEARCH_CHUNK)
                f.seek(start)
                data = f.read(end - start + len(pat) - 1).lower()
                i = data.rfind(pat)
                if i >= 0 and start + i < before:
                    return start + i
                end = start
    except FileNotFoundError:
        return -1
    return -1


def pageAround(path: str, offset: int, maxBytes: int = PAGE) -> LogChunk:
    """A page of the log that contains byte *offset* (near its end, lines after it shown)."""
    end = offset + maxBytes // 4
    try:
        size = os.stat(path).st_size
    except OSError:
        size = 0
    end = min(size, end)
    chunk = readPage(path, end, maxBytes)
    # finish the last line
    try:
        with open(path, "rb") as f:
            f.seek(chunk.end)
            more = f.read(64 * 1024)
    except OSError:
        more = b""
    nl = more.find(b"\n")
    if nl >= 0:
        more = more[: nl + 1]
        chunk.text += more.decode("utf-8", "replace")
        chunk.end += len(more)
    return chunk
