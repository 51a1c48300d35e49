"""One step of a worker: claim a ready job, run it in this process, commit, release dependants.

See docs/format.md, "Claiming a job" and "Finishing a job".
"""

from __future__ import annotations

import json
import logging
import os
import secrets
import socket
import time
import traceback
from typing import Any

from . import _fs, _procs
from . import _layout as L
from ._index import indexDir, jobDirOf, readSpec, release
from .proc import JobLost, JobProc, _Capture, _RunContext, stopProcesses
from .state import checkTransition

HOST = socket.gethostname()


def claim(rootDir: str, readyName: str, path: str) -> tuple[str, dict[str, Any]] | None:
    """Try to claim one ready job. Returns (running token file, claim) or None if another
    worker won it (or the root was deleted meanwhile): losing a race is never an error."""
    claimId = secrets.token_hex(6)
    running = os.path.join(indexDir(rootDir, L.RUNNING), L.runningName(path, claimId))
    if not _fs.move(os.path.join(indexDir(rootDir, L.READY), readyName), running):
        return None
    # The token is ours now. It holds the previous claim (if the job ran before): continue
    # its attempt count, then write our claim into the same inode (a claim creates no inode).
    try:
        fd = os.open(running, os.O_RDWR)
    except OSError as exc:
        if _fs.isGone(exc):  # deleted (deleteJobs with force) right after our rename
            return None
        raise
    try:
        old = os.pread(fd, 1 << 16, 0)
        try:
            previous = json.loads(old) if old.strip() else {}
        except ValueError:
            previous = {}
        attempt = previous.get("attempt", 0) if isinstance(previous, dict) else 0
        info = {
            "claim": claimId,
            "attempt": (attempt if isinstance(attempt, int) else 0) + 1,
            "host": HOST,
            "pid": os.getpid(),
            "startTime": time.time(),
        }
        os.ftruncate(fd, 0)
        os.pwrite(fd, _fs.dumpJson(info), 0)
    finally:
        os.close(fd)
    return running, info


def unclaim(rootDir: str, running: str, path: str) -> None:
    """Give a claimed job back (the worker is being interrupted): it becomes ready again."""
    checkTransition(L.RUNNING, L.READY)
    try:
        priority = int(readSpec(jobDirOf(rootDir, path))["jobOptions"]["priority"])  # type: ignore[index]
    except Exception:
        priority = 0
    _fs.move(running, os.path.join(indexDir(rootDir, L.READY), L.readyName(path, priority)))


def run(
    rootDir: str, path: str, running: str, info: dict[str, Any], logger: logging.Logger
) -> list[str]:
    """Run a claimed job to the end and commit it. Returns the paths this made ready."""
    jobDir = jobDirOf(rootDir, path)
    ctx = _RunContext(jobDir, info["attempt"], running, info)
    outcome, error, tb = L.DONE, None, None
    proc: JobProc | None = None
    try:
        spec = readSpec(jobDir)
        params = spec.get("params", {})
        if not isinstance(params, dict):
            raise TypeError(f"job file {jobDir}/{L.JOB_FILE}: params is not a JSON object")
        cls = _procs.resolve(str(spec["jobType"]))
        with _Capture(ctx):
            try:
                proc = cls(**params)
                proc._ctx = ctx
                proc.run()
            except JobLost:
                raise
            except (Exception, SystemExit) as exc:
                outcome = L.FAILED
                error = _describe(exc)
                tb = traceback.format_exc()
                ctx.stderr.write(tb.encode("utf-8", "backslashreplace"))
        if ctx.errorSet and outcome == L.DONE:
            outcome = L.FAILED
            error = ctx.error or "the job called setError()"
    except JobLost:
        logger.warning(
            "job %s: it no longer belongs to this worker; its result is discarded", jobDir
        )
        return []
    except KeyboardInterrupt:
        stopProcesses(ctx)
        unclaim(rootDir, running, path)
        raise
    except Exception as exc:
        # The job could not even start (corrupt job file, procedure not importable, ...).
        outcome, error, tb = L.FAILED, _describe(exc), traceback.format_exc()
        try:
            ctx.stderr.write(f"jobtree: {error}\n".encode("utf-8", "backslashreplace"))
        except OSError:
            pass
    finally:
        if proc is not None:
            proc._ctx = None
        stopProcesses(ctx)
        ctx.close()

    record = dict(
        info,
        endTime=time.time(),
        outcome=outcome,
        progress=ctx.progress if outcome == L.FAILED else 100,
        statusLine=ctx.statusLine,
        error=error,
        traceback=tb,
    )
    if outcome == L.FAILED:
        logger.warning("job %s failed: %s", jobDir, error)
    try:
        _fs.writeNew(os.path.join(jobDir, L.attemptFile(info["attempt"])), _fs.dumpJson(record))
    except OSError as exc:
        if not _fs.isGone(exc):
            raise
    # The commit: one rename. If the token is no longer where we put it, the job was taken away
    # from us (deleted, or later: taken over) and nothing else may be written.
    checkTransition(L.RUNNING, outcome)
    if not _fs.move(running, os.path.join(indexDir(rootDir, outcome), path)):
        logger.warning("job %s: claim was taken away before the commit; result discarded", jobDir)
        return []
    if outcome == L.DONE:
        return release(rootDir, [path])
    return []


def _describe(exc: BaseException) -> str:
    if isinstance(exc, SystemExit):
        return f"run() called sys.exit({exc.code!r})"
    text = str(exc)
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__
