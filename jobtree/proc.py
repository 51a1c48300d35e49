"""JobProc: the base class of every job procedure, and the context a running job talks through."""

from __future__ import annotations

import json
import logging
import os
import selectors
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from . import _fs
from . import _layout as L
from ._output import LogFile, LogStream
from .errors import JobTreeError

log = logging.getLogger("jobtree")

PROGRESS_WRITE_INTERVAL = 0.5
"""Seconds between two writes of progress or status line to the running token."""


MAX_LINE = 1 << 16
"""Longest line handed to a callback; the rest of a longer line is cut (the log keeps it all)."""


class JobLost(BaseException):
    """Raised inside a running job when its claim was taken away (its job was deleted, cancelled,
    or taken over by another worker after its lease expired). A BaseException so that
    ``except Exception`` in user code cannot keep running a job that is no longer this worker's."""


class WorkerShutdown(BaseException):
    """Raise in a worker (e.g. from a signal handler) to stop the running job at once: its
    processes are killed and the job is given back, ready for another worker. A BaseException
    so that ``except Exception`` in user code cannot swallow it (as rq does)."""


class RetryLater(Exception):
    """Raise from :meth:`JobProc.run` to give the job back and have it run again later
    (after *delay* seconds, default the job's ``retryDelay``). It does not count as a failure."""

    def __init__(self, reason: str = "", delay: float | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.delay = delay


class _RunContext:
    """What a JobProc needs while it runs: its directory, its attempt's logs, its token."""

    def __init__(
        self,
        jobDir: str,
        attempt: int,
        tokenFile: str,
        claim: dict[str, Any],
        logLimit: int = 64 << 20,
    ) -> None:
        self.jobDir = jobDir
        self.attempt = attempt
        self.tokenFile = tokenFile
        self.claim = claim
        self.stdout = LogFile(jobDir, "stdout", attempt, logLimit)
        self.stderr = LogFile(jobDir, "stderr", attempt, logLimit)
        self._activity = time.monotonic()
        self.progress: float | None = None
        self.statusLine: str | None = None
        self.error: str | None = None
        self.errorSet = False
        self.lost = False
        self.processes: set[subprocess.Popen[bytes]] = set()
        self._lastWrite = 0.0
        self._dirty = False
        self._lock = threading.Lock()

    @property
    def lastActivity(self) -> float:
        """When the job last showed progress, a status line or output (monotonic clock)."""
        return max(self._activity, self.stdout.lastWrite, self.stderr.lastWrite)

    def update(self, **fields: Any) -> None:
        """Record progress/status; written to the running token at most every 0.5 s (the
        monitor writes a held-back update at its next tick)."""
        with self._lock:
            for k, v in fields.items():
                if getattr(self, k) != v:
                    self._activity = time.monotonic()
                setattr(self, k, v)
            self._dirty = True
            due = time.monotonic() - self._lastWrite >= PROGRESS_WRITE_INTERVAL
            if due and not self._writeToken():
                self.lost = True
                raise JobLost(f"job {self.jobDir} no longer belongs to this worker")

    def flushDue(self) -> bool:
        """A progress or status update is waiting and may be written now."""
        return self._dirty and time.monotonic() - self._lastWrite >= PROGRESS_WRITE_INTERVAL

    def renew(self) -> bool:
        """Renew the lease (rewriting the token makes the file server stamp its mtime) with the
        latest progress. False when the token is gone: the claim was taken away."""
        with self._lock:
            return self._writeToken()

    def _writeToken(self) -> bool:
        data = dict(self.claim, progress=self.progress, statusLine=self.statusLine)
        self._lastWrite = time.monotonic()
        self._dirty = False
        return _fs.rewriteInPlace(self.tokenFile, _fs.dumpJson(data))

    def close(self) -> None:
        self.stdout.close()
        self.stderr.close()


class JobProc:
    """Base class of job procedures.

    Subclass it and override :meth:`run`. The constructor's keyword arguments are the job's
    parameters: ``createJob(MyProc, scene="a.blend")`` stores ``{"scene": "a.blend"}`` as JSON and
    the worker calls ``MyProc(scene="a.blend").run()`` inside the job's directory.
    """

    label: str | None = None
    _ctx: _RunContext | None = None

    def __init__(self, label: str | None = None) -> None:
        self.label = label

    # -- to override ----------------------------------------------------------------------------

    def run(self) -> None:
        """Do the job's work. Raising an exception fails the job (its traceback is kept)."""

    def postCreate(self, jobDir: str) -> None:
        """Called once at submission, after the job's directory was created (put input files there)."""

    def stdoutCallback(self, lineNr: int, line: str) -> None:
        """Called for every line an :meth:`execCmd` command writes to stdout (1-based, no newline)."""

    def stderrCallback(self, lineNr: int, line: str) -> None:
        """Called for every line an :meth:`execCmd` command writes to stderr."""

    # -- to call while running -----------------------------------------------------------------

    @property
    def runningDir(self) -> str | None:
        """The job's directory while it runs (also the working directory); None otherwise."""
        return self._ctx.jobDir if self._ctx is not None else None

    def setProgress(self, percent: float) -> None:
        """Report progress in percent (clamped to 0-100)."""
        value = max(0.0, min(100.0, float(percent)))
        self._context("setProgress").update(progress=int(value) if value.is_integer() else value)

    def setStatusLine(self, text: str) -> None:
        """Report a one-line status (shown beside the progress; newlines are replaced)."""
        line = " ".join(str(text).splitlines())
        self._context("setStatusLine").update(statusLine=line)

    def setError(self, message: str | None = None) -> None:
        """Mark the job as failed when run() returns (without raising)."""
        ctx = self._context("setError")
        ctx.errorSet = True
        ctx.error = message if message is not None else ctx.error

    def setResult(self, value: Any) -> None:
        """Save the job's result: any JSON value, readable afterwards as :attr:`JobHandle.result`.

        Written at once (atomically) as ``result.<attempt>.json`` in the job's directory; a later
        call replaces it. Raises TypeError naming the job if *value* is not JSON.
        """
        ctx = self._context("setResult")
        try:
            data = json.dumps(value, allow_nan=False, ensure_ascii=False, indent=1)
        except (TypeError, ValueError) as exc:
            raise TypeError(
                f"job {ctx.jobDir}: the result cannot be stored as JSON ({type(value).__name__}: "
                f"{exc}); return only str, int, float, bool, None, lists and dicts with string keys"
            ) from None
        _fs.writeAtomic(os.path.join(ctx.jobDir, L.resultFile(ctx.attempt)), data.encode())

    def execCmd(
        self,
        cmd: str | Sequence[str] | Any,
        *,
        env: Mapping[str, str | None] | None = None,
        cwd: str | None = None,
    ) -> int:
        """Run a command and return its exit code.

        A list is an argv (no shell); a string is run by ``/bin/sh -c`` (explicitly a shell
        command). Both pipes are streamed line by line into the job's logs and into
        :meth:`stdoutCallback` / :meth:`stderrCallback`; no output is lost.

        *env* sets variables on top of the worker's environment (a value of None removes one);
        *cwd* is the command's working directory (default: the job's directory; ``$PWD`` names
        it either way). Raises OSError when the command cannot be started (not found, not
        executable, bad *cwd*).
        """
        ctx = self._context("execCmd")
        childEnv = dict(os.environ)
        for k, v in (env or {}).items():
            if v is None:
                childEnv.pop(k, None)
            else:
                childEnv[k] = v
        # $PWD must name the directory the command really starts in: programs such as Blender
        # resolve relative paths against $PWD, and the worker's own $PWD is wherever it started.
        childEnv["PWD"] = os.path.abspath(cwd) if cwd is not None else os.getcwd()
        shell = isinstance(cmd, str)
        if not shell and (isinstance(cmd, bytes) or not all(isinstance(a, str) for a in cmd)):
            raise TypeError(f"execCmd needs a list of str or a shell string, not {cmd!r}")
        args: Any = cmd if shell else list(cmd)
        if not shell and not args:
            raise ValueError("execCmd: empty argv")
        log.debug("job %s: execCmd %r", ctx.jobDir, args)
        proc = subprocess.Popen(
            args,
            shell=shell,
            env=childEnv,
            cwd=cwd,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            start_new_session=True,  # its own process group, so all of it can be stopped at once
            preexec_fn=_dieWithParent,
        )
        ctx.processes.add(proc)
        try:
            assert proc.stdout is not None
            assert proc.stderr is not None
            _pump(
                [
                    (proc.stdout.fileno(), ctx.stdout, self.stdoutCallback),
                    (proc.stderr.fileno(), ctx.stderr, self.stderrCallback),
                ]
            )
            return proc.wait()
        finally:
            for pipe in (proc.stdout, proc.stderr):
                if pipe is not None:
                    pipe.close()
            if proc.poll() is None:
                _killGroup(proc)
            ctx.processes.discard(proc)

    def _context(self, what: str) -> _RunContext:
        ctx = self._ctx
        if ctx is None:
            raise JobTreeError(
                f"{type(self).__name__}.{what}() can only be called while the job runs"
            )
        return ctx


class _LineSplitter:
    """Splits one pipe's bytes into lines for a callback. A line longer than MAX_LINE is handed
    out cut to MAX_LINE and the rest of it is skipped, so a line that never ends cannot eat the
    memory (the log file keeps every byte, up to logLimit)."""

    def __init__(self, callback: Callable[[int, str], None]) -> None:
        self.callback = callback
        self.partial = b""
        self.lineNr = 0
        self.skipping = False

    def _deliver(self, line: bytes) -> None:
        self.lineNr += 1
        self.callback(self.lineNr, _decode(line.removesuffix(b"\r")[:MAX_LINE]))

    def feed(self, chunk: bytes) -> None:
        *lines, rest = (self.partial + chunk).split(b"\n")
        for line in lines:
            if self.skipping:  # the end of a line that was already handed out, cut
                self.skipping = False
                continue
            self._deliver(line)
        if self.skipping:
            rest = b""
        elif len(rest) > MAX_LINE:
            self._deliver(rest)
            self.skipping = True
            rest = b""
        self.partial = rest

    def close(self) -> None:
        if self.partial and not self.skipping:
            self._deliver(self.partial)
        self.partial = b""


def _pump(streams: list[tuple[int, LogFile, Callable[[int, str], None]]]) -> None:
    """Copy every pipe into its log and hand each complete line to its callback, in order."""
    sel = selectors.DefaultSelector()
    state: dict[int, tuple[LogFile, _LineSplitter]] = {}
    for fd, logFile, callback in streams:
        sel.register(fd, selectors.EVENT_READ)
        state[fd] = (logFile, _LineSplitter(callback))
    try:
        while state:
            for key, _ in sel.select():
                logFile, splitter = state[key.fd]
                chunk = os.read(key.fd, 1 << 16)
                if not chunk:
                    sel.unregister(key.fd)
                    del state[key.fd]
                    splitter.close()
                    continue
                logFile.write(chunk)
                splitter.feed(chunk)
    finally:
        sel.close()


def _loadPrctl() -> Callable[..., int] | None:
    if not sys.platform.startswith("linux"):
        return None
    try:
        import ctypes

        fn: Callable[..., int] = ctypes.CDLL(None, use_errno=True).prctl
        return fn
    except (OSError, AttributeError):
        return None


_prctl = _loadPrctl()  # resolved before any fork: the child only makes one call
_PR_SET_PDEATHSIG = 1


def _dieWithParent() -> None:
    """In the child between fork and exec: get SIGKILL when the worker dies (even by SIGKILL),
    so that a job taken over from a dead worker is not still running its command there too."""
    if _prctl is not None:
        _prctl(_PR_SET_PDEATHSIG, 9, 0, 0, 0)


def _decode(line: bytes) -> str:
    return line.decode("utf-8", "replace")


def _killGroup(proc: subprocess.Popen[bytes]) -> None:
    import signal

    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
    proc.wait()


def stopProcesses(ctx: _RunContext) -> None:
    """Kill every process group a job started (used when the job is lost or aborted)."""
    for proc in list(ctx.processes):
        if proc.poll() is None:
            _killGroup(proc)


class _Capture:
    """Send print() and logging to the job's logs while it runs; restore everything afterwards."""

    def __init__(self, ctx: _RunContext) -> None:
        self.ctx = ctx
        self.stdout = LogStream(ctx.stdout)
        self.stderr = LogStream(ctx.stderr)
        self.handler = logging.StreamHandler(self.stderr)
        self.handler.setFormatter(
            logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s")
        )

    def __enter__(self) -> _Capture:
        cwd = os.getcwd()
        os.chdir(self.ctx.jobDir)  # first: if the job directory is gone, nothing is swapped yet
        self.saved = (sys.stdout, sys.stderr, cwd)
        sys.stdout, sys.stderr = self.stdout, self.stderr
        logging.getLogger().addHandler(self.handler)
        return self

    def __exit__(self, *exc: object) -> None:
        logging.getLogger().removeHandler(self.handler)
        sys.stdout, sys.stderr, cwd = self.saved
        try:
            os.chdir(cwd)
        except OSError as e:
            log.warning("could not restore the working directory %s: %s", cwd, e)
