"""One step of a worker: claim a ready job, run it in this process, commit, release dependants.

See docs/format.md ("Claiming a job", "Finishing a job") and docs/resilience.md.
"""

from __future__ import annotations

import errno
import logging
import os
import secrets
import socket
import time
import traceback
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from . import _fs, _procs
from . import _layout as L
from ._index import indexDir, jobDirOf, jobPriority, parseToken, pausedBy, readSpec, release
from .automation import fireHooks
from .errors import JobTreeError, QueueReadOnly
from .host import unmet
from .lease import Interrupted, Watch
from .limits import acquire
from .proc import (
    JobLost,
    JobProc,
    RetryLater,
    WorkerShutdown,
    _Capture,
    _RunContext,
    stopProcesses,
)
from .state import checkTransition

if TYPE_CHECKING:
    from .queue import JobQueue

HOST = socket.gethostname()


@dataclass
class Claimed:
    rootDir: str
    path: str
    running: str
    info: dict[str, Any]
    spec: dict[str, Any] | None = None
    specError: Exception | None = None
    options: dict[str, Any] = field(default_factory=dict)

    @property
    def jobDir(self) -> str:
        return jobDirOf(self.rootDir, self.path)


def claim(q: JobQueue, rootDir: str, readyName: str, path: str) -> Claimed | None:
    """Try to claim one ready job. Returns None if another worker won it (or the root was
    deleted meanwhile): losing a race is never an error."""
    claimId = secrets.token_hex(6)
    running = os.path.join(indexDir(rootDir, L.RUNNING), L.runningName(path, claimId))
    try:
        if not _fs.move(os.path.join(indexDir(rootDir, L.READY), readyName), running):
            return None
    except OSError as exc:
        if exc.errno in (errno.EROFS, errno.EACCES, errno.EPERM):
            raise QueueReadOnly(
                f"cannot claim jobs in {rootDir}: {exc.strerror}; a worker needs write access to "
                "the whole queue (is it mounted read-only, or owned by another group?)"
            ) from exc
        raise
    # The token is ours now. It holds the previous claim if the job ran before: continue its
    # counts, then write our claim into the same inode (a claim creates no inode).
    try:
        fd = os.open(running, os.O_RDWR | _fs.NOFOLLOW)
    except OSError as exc:
        if _fs.isGone(exc):  # deleted (deleteJobs with force, cancel) right after our rename
            return None
        if exc.errno == errno.ELOOP:  # a symlink planted as a token: never write through it
            checkTransition(L.RUNNING, L.FAILED)
            _fs.move(running, os.path.join(indexDir(rootDir, L.FAILED), path))
            return None
        raise
    try:
        old = os.pread(fd, 1 << 20, 0)
        previous = parseToken(old)
        claimed = Claimed(rootDir, path, running, {})
        try:
            for i in range(1, len(L.pathParts(path)) + 1):
                part = os.path.join(rootDir, *L.pathParts(path)[:i])
                if os.path.islink(part):
                    raise JobTreeError(
                        f"job directory {part} is a symbolic link (planted?); jobtree never "
                        "follows one: delete it and resubmit the job"
                    )
            claimed.spec = readSpec(claimed.jobDir)
            opts = claimed.spec.get("jobOptions")
            claimed.options = dict(opts) if isinstance(opts, dict) else {}
        except Exception as exc:
            claimed.specError = exc
        holder = pausedBy(rootDir, path)
        if holder is not None:
            # Paused after the listing: hand the token to paused/ untouched and claim another.
            checkTransition(L.RUNNING, L.PAUSED)
            _fs.move(running, os.path.join(indexDir(rootDir, L.PAUSED), readyName))
            return None
        # Requirements and limits are checked after winning the token, whose job file is read
        # here anyway; a job this worker cannot take goes back untouched (same name, content).
        giveBack = os.path.join(indexDir(rootDir, L.READY), readyName)
        if unmet(q._worker, claimed.options.get("requires")):
            q._cannotRun.add((rootDir, path))
            _fs.move(running, giveBack)
            return None
        limits = list(claimed.options.get("limits") or ())
        for name in limits:
            if acquire(q._need(), name, q._limitSlots(name), running) is None:
                # Slots taken so far free themselves: they point at a token that moves now.
                _fs.move(running, giveBack)
                q._limited[(rootDir, path)] = limits
                return None
        attempt = previous.get("attempt", 0)
        info: dict[str, Any] = {
            k: previous[k] for k in ("failures", "lost", "history", "retryBase") if k in previous
        }
        info.update(
            claim=claimId,
            attempt=(attempt if isinstance(attempt, int) else 0) + 1,
            host=HOST,
            pid=os.getpid(),
            startTime=time.time(),
            leaseSeconds=float(claimed.options.get("leaseSeconds", 60.0)),
        )
        claimed.info = info
        try:
            os.pwrite(fd, _fs.padTo(_fs.dumpJson(info), len(old)), 0)
        except OSError as exc:
            # Disk full (or quota): give the job back untouched rather than leave a claim
            # nobody wrote, and say which job and why.
            if old:
                os.pwrite(fd, old, 0)
            _fs.move(running, os.path.join(indexDir(rootDir, L.READY), readyName))
            raise JobTreeError(
                f"cannot claim job {claimed.jobDir}: writing its claim failed ({exc.strerror}); "
                "is the queue's disk full?"
            ) from exc
    finally:
        os.close(fd)
    # Our claim id is unique, so if the name is still there the token is still ours. If it is
    # not, we stalled between rename and write for longer than a lease and the job was taken
    # over (or it was cancelled/deleted): do not run it.
    if not os.path.lexists(running):
        return None
    return claimed


def _readyTarget(c: Claimed, notBefore: float | None = None) -> str:
    return os.path.join(
        indexDir(c.rootDir, L.READY), L.readyName(c.path, jobPriority(c.options), notBefore)
    )


def unclaim(c: Claimed) -> None:
    """Give a claimed job back untouched (the worker is being interrupted): ready again."""
    checkTransition(L.RUNNING, L.READY)
    _fs.move(c.running, _readyTarget(c))


def run(q: JobQueue, c: Claimed, logger: logging.Logger) -> list[str]:
    """Run a claimed job to the end and commit it. Returns the paths this made ready."""
    jobDir = c.jobDir
    logLimit = c.options.get("logLimit", 64 << 20)
    ctx = _RunContext(jobDir, c.info["attempt"], c.running, c.info, int(logLimit))
    outcome, error, tb = L.DONE, None, None
    retryDelay: float | None = None
    proc: JobProc | None = None
    watch: Watch | None = None
    monitor = q._monitor
    where = f"job {jobDir}"
    try:
        if c.spec is None:
            raise c.specError or RuntimeError("no job file")
        q._policy.verify(os.path.basename(c.rootDir), c.path, c.spec, where)
        params = c.spec.get("params", {})
        if not isinstance(params, dict):
            raise TypeError(f"job file {jobDir}/{L.JOB_FILE}: params is not a JSON object")
        cls = _procs.resolve(str(c.spec["jobType"]))
        watch = monitor.watch(ctx, c.options)
        # Until monitor.quiesce() returns, the monitor may raise Interrupted in this thread at
        # any bytecode; what happened is then read from watch.reason.
        try:
            with _Capture(ctx):
                try:
                    proc = cls(**params)
                    proc._ctx = ctx
                    proc.run()
                except (JobLost, Interrupted):
                    raise
                except RetryLater as exc:
                    outcome, error = (
                        "retry",
                        f"asked to retry later: {exc.reason or 'no reason given'}",
                    )
                    retryDelay = exc.delay
                except (Exception, SystemExit) as exc:
                    outcome, error = L.FAILED, _describe(exc)
                    tb = traceback.format_exc()
                    ctx.stderr.write(tb.encode("utf-8", "backslashreplace"))
        except Interrupted:
            watch.delivered = True
        except JobLost:
            ctx.lost = True  # noticed by setProgress/setStatusLine: the token was gone
        finally:
            monitor.quiesce(watch)
        if ctx.errorSet and outcome == L.DONE:
            outcome, error = L.FAILED, ctx.error or "the job called setError()"
        if watch.reason in ("timeout", "hang"):
            limit = c.options.get("timeout" if watch.reason == "timeout" else "hangTimeout")
            what = (
                "ran longer than its timeout"
                if watch.reason == "timeout"
                else "showed no progress or output for its hangTimeout"
            )
            outcome, error, tb = (
                L.FAILED,
                f"{what} of {limit} s; it and its processes were killed",
                None,
            )
            ctx.stderr.write(f"\njobtree: {error}\n".encode())
    except (KeyboardInterrupt, WorkerShutdown):
        stopProcesses(ctx)
        if watch is not None:
            monitor.quiesce(watch)
        ctx.close()
        unclaim(c)
        raise
    except Exception as exc:
        # The job could not even start (corrupt job file, procedure not importable, refused by
        # the queue's security settings, ...): fail it with a message that names it.
        outcome, error, tb = L.FAILED, _describe(exc), traceback.format_exc()
        ctx.stderr.write(f"jobtree: {where}: {error}\n".encode("utf-8", "backslashreplace"))
    finally:
        if proc is not None:
            proc._ctx = None
        stopProcesses(ctx)
        ctx.close()
    if ctx.lost or (watch is not None and watch.reason == "lost"):
        _abandon(q, c, ctx, logger)
        return []
    return _commit(q, c, ctx, outcome, error, tb, retryDelay, logger)


def _commit(
    q: JobQueue,
    c: Claimed,
    ctx: _RunContext,
    outcome: str,
    error: str | None,
    tb: str | None,
    retryDelay: float | None,
    logger: logging.Logger,
) -> list[str]:
    now = q._clock.now()  # the file server's clock: retry delays are judged by it
    info = c.info
    failures = int(info.get("failures", 0) or 0) + (outcome == L.FAILED)
    maxAttempts = int(c.options.get("maxAttempts", 1) or 1)
    retry = outcome == "retry" or (outcome == L.FAILED and failures < maxAttempts)
    record = dict(
        info,
        endTime=time.time(),
        outcome="retry" if outcome == "retry" else outcome,
        progress=100 if outcome == L.DONE else ctx.progress,
        statusLine=ctx.statusLine,
        error=error,
        traceback=tb,
    )
    record.pop("history", None)
    if outcome == L.FAILED:
        more = f"; retry {failures + 1} of {maxAttempts} later" if retry else ""
        logger.warning("job %s failed: %s%s", c.jobDir, error, more)
    try:
        _fs.writeNew(os.path.join(c.jobDir, L.attemptFile(info["attempt"])), _fs.dumpJson(record))
    except OSError as exc:
        logger.warning("job %s: could not write its attempt record: %s", c.jobDir, exc)
    summary = {
        "attempt": info["attempt"],
        "claim": info["claim"],
        "host": info["host"],
        "outcome": record["outcome"],
    }
    final = dict(info, failures=failures, history=[*info.get("history", []), summary])
    if error is not None and not retry:
        final["error"] = error  # also here: the attempt record may not have been writable
    if retry:
        delay = retryDelay if retryDelay is not None else c.options.get("retryDelay", 10.0)
        target = _readyTarget(c, now + float(delay) if delay else None)
        newState = L.READY
    else:
        newState = outcome
        target = os.path.join(indexDir(c.rootDir, outcome), c.path)
    # The token's content first (we still own it; False means it was taken away meanwhile).
    # A first attempt that succeeded needs no update: the claim already says all of it.
    firstTry = newState == L.DONE and not info.get("history") and failures == 0
    if not firstTry and not _fs.rewriteInPlace(c.running, _fs.dumpJson(final)):
        _abandon(q, c, ctx, logger)
        return []
    # ...then the commit: one rename. If the token is no longer where we put it, the job was
    # taken away from us (deleted, cancelled or taken over) and nothing else may be written.
    checkTransition(L.RUNNING, newState)
    if not _fs.move(c.running, target):
        _abandon(q, c, ctx, logger)
        return []
    if newState == L.DONE:
        made = release(c.rootDir, [c.path])
        if c.path == L.ROOT_PATH:
            fireHooks(q, c.rootDir, "done")
        return made
    if newState == L.FAILED:
        fireHooks(q, c.rootDir, "failed")
    return []


def _abandon(q: JobQueue, c: Claimed, ctx: _RunContext, logger: logging.Logger) -> None:
    """Our claim was taken away: change nothing the new owner owns. Only our own attempt record
    says what happened to this attempt."""
    stopProcesses(ctx)
    how = (
        "cancelled"
        if os.path.lexists(os.path.join(indexDir(c.rootDir, L.CANCELLED), c.path))
        else "lost"
    )
    logger.warning(
        "job %s: attempt %s is no longer this worker's (%s); its result is discarded",
        c.jobDir,
        c.info.get("attempt"),
        "cancelled" if how == "cancelled" else "taken over or deleted",
    )
    record = dict(c.info, endTime=time.time(), outcome=how, progress=ctx.progress)
    record.pop("history", None)
    try:
        _fs.writeNew(os.path.join(c.jobDir, L.attemptFile(c.info["attempt"])), _fs.dumpJson(record))
    except OSError:
        pass


def _describe(exc: BaseException) -> str:
    if isinstance(exc, SystemExit):
        return f"run() called sys.exit({exc.code!r})"
    text = str(exc)
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__
