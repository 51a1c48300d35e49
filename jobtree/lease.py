"""Leases: a running job's worker renews its token; any worker takes over a job whose lease expired.

Staleness is judged by the file server's clock, the one clock every host shares: a worker learns
"server now" from the mtime the server stamps on a probe file it writes, and compares it with the
mtime the server stamped on the running token at its last renewal. Host clocks never enter the
decision, so a host whose clock is hours off causes no false takeover. GRACE allows for 1-second
mtimes and attribute caches (see docs/resilience.md for the mount options this assumes).
"""

from __future__ import annotations

import atexit
import ctypes
import logging
import os
import secrets
import signal
import socket
import threading
import time
from typing import Any

from . import _fs
from . import _layout as L
from ._index import indexDir, jobDirOf, jobOptionsOf, jobPriority, loadToken, parseToken

log = logging.getLogger("jobtree")

GRACE = 2.0
"""Seconds added to every lease before a takeover: 1-second mtimes plus attribute caching."""
MAX_LOST = 10
"""A job whose worker was lost this many times fails (its worker is probably crashing on it)."""
CLOCK_TTL = 1.0
"""Seconds a measured server-clock offset is reused before measuring again."""


_clocks: dict[str, ServerClock] = {}
_clocksLock = threading.Lock()


def serverClock(queueDir: str) -> ServerClock:
    """The one ServerClock (and probe file) of this process for a queue."""
    with _clocksLock:
        clock = _clocks.get(queueDir)
        if clock is None or clock.pid != os.getpid():  # a forked child needs a probe of its own
            clock = _clocks[queueDir] = ServerClock(queueDir)
        return clock


@atexit.register
def _removeProbes() -> None:
    for clock in list(_clocks.values()):
        if clock.pid == os.getpid():
            clock.close()


class ServerClock:
    """The file server's time, read from the mtime it stamps on this process's probe file."""

    def __init__(self, queueDir: str) -> None:
        self.pid = os.getpid()
        self.dir = os.path.join(queueDir, L.CLOCK_DIR)
        self.path = os.path.join(
            self.dir, f"{socket.gethostname()}.{os.getpid()}.{secrets.token_hex(3)}"
        )
        self._offset = 0.0
        self._measured = -1e9
        self._lock = threading.Lock()

    def now(self) -> float:
        """Seconds since the epoch by the file server's clock (falls back to this host's clock
        when the probe cannot be written, e.g. on a read-only queue)."""
        with self._lock:
            mono = time.monotonic()
            if mono - self._measured > CLOCK_TTL:
                self._measure()
                self._measured = mono
            return time.time() + self._offset

    def _measure(self) -> None:
        before = time.time()
        try:
            try:
                fd = os.open(self.path, os.O_WRONLY | os.O_CREAT, 0o666)
            except FileNotFoundError:
                os.makedirs(self.dir, exist_ok=True)
                fd = os.open(self.path, os.O_WRONLY | os.O_CREAT, 0o666)
            try:
                os.pwrite(fd, f"{before:.3f}\n".encode(), 0)  # a write: the server stamps mtime
            finally:
                os.close(fd)
            stamped = os.stat(self.path).st_mtime
        except OSError as exc:
            log.debug("server clock probe %s failed: %s; using this host's clock", self.path, exc)
            self._offset = 0.0
            return
        after = time.time()
        # The stamp lies between before and after by the server's clock; 1-second mtimes
        # truncate, so the true server time is up to 1 s later than the stamp.
        self._offset = stamped + 0.5 * (1 if stamped == int(stamped) else 0) - (before + after) / 2

    def close(self) -> None:
        try:
            _fs.unlinkIfExists(self.path)
        except OSError:
            pass  # a read-only queue never got a probe file; nothing to tidy


class Interrupted(BaseException):
    """What the monitor raises asynchronously in the job's thread; its Watch says why. Never
    seen outside jobtree: the worker step catches it and reads ``Watch.reason``."""


INTERRUPT_SIGNAL = signal.SIGUSR2
"""Sent to the worker's main thread to stop a job blocked in a long system call."""


_signalled = threading.Event()
"""Set by the monitor just before it sends INTERRUPT_SIGNAL: any other SIGUSR2 is not ours."""


def _onInterruptSignal(signum: int, frame: Any) -> None:
    if _signalled.is_set():
        _signalled.clear()
        raise Interrupted()
    # A SIGUSR2 from someone else must not end the job: ignore it.


class _Interrupt:
    """Raise an exception in the thread that runs the job.

    In the main thread a signal does it: its handler runs even when the job is blocked in a long
    system call (sleep, read, wait), which the call then gives up. In another thread only an
    asynchronous exception is possible, and it lands at the next bytecode the job executes."""

    def __init__(self) -> None:
        self.threadId = threading.get_ident()
        self.useSignal = threading.current_thread() is threading.main_thread()
        self._saved: Any = None
        if self.useSignal:
            self._saved = signal.signal(INTERRUPT_SIGNAL, _onInterruptSignal)

    def raiseIn(self, exc: type[BaseException]) -> None:
        if self.useSignal:
            _signalled.set()
            signal.pthread_kill(self.threadId, INTERRUPT_SIGNAL)
        else:
            ctypes.pythonapi.PyThreadState_SetAsyncExc(
                ctypes.c_ulong(self.threadId), ctypes.py_object(exc)
            )

    def restore(self) -> None:
        if self.useSignal:
            signal.signal(
                INTERRUPT_SIGNAL, self._saved if self._saved is not None else signal.SIG_DFL
            )
            self.useSignal = False


class Watch:
    """One running attempt under a Monitor's eye."""

    def __init__(self, ctx: Any, options: dict[str, Any]) -> None:
        self.ctx = ctx
        self.lease = float(options.get("leaseSeconds", 60.0))
        self.timeout = float(options.get("timeout", 0.0) or 0.0)
        self.hang = float(options.get("hangTimeout", 0.0) or 0.0)
        self.tick = max(0.05, min(0.25, self.lease / 8))
        self.beat = self.lease / 4
        self.start = time.monotonic()
        self.lastBeat = self.start
        self.interrupt = _Interrupt()
        self.done = False
        self.raised = False
        """An Interrupted was scheduled in the job's thread."""
        self.delivered = False
        """...and it was raised there (and caught)."""
        self.reason: str | None = None
        """Why the attempt was stopped: 'lost', 'timeout' or 'hang'; None if it was not."""


class Monitor(threading.Thread):
    """Watches the running attempt from beside it: renews its lease, notices when its claim was
    taken away (takeover, cancel, delete) and enforces its timeout and hang timeout. On any of
    those it kills the job's process groups and interrupts run() (with Interrupted).

    One long-lived thread per JobQueue serves every job that queue runs, one after another."""

    def __init__(self) -> None:
        super().__init__(name="jobtree-monitor", daemon=True)
        self._cond = threading.Condition()
        self._watch: Watch | None = None

    def watch(self, ctx: Any, options: dict[str, Any]) -> Watch:
        w = Watch(ctx, options)
        with self._cond:
            self._watch = w
            self._cond.notify()
        if not self.is_alive():
            self.start()
        return w

    def quiesce(self, w: Watch) -> None:
        """Stop watching *w*. Afterwards no Interrupted is pending in this (the job's) thread;
        the caller decides from ``w.reason``.

        A scheduled asynchronous exception cannot be withdrawn safely (clearing it with
        PyThreadState_SetAsyncExc(id, NULL) leaves CPython's eval breaker set, which slows every
        later bytecode), so one that was scheduled but has not landed yet is let land here."""
        while True:
            try:
                with self._cond:
                    w.done = True
                    if self._watch is w:
                        self._watch = None
                if w.raised and not w.delivered:
                    for _ in range(50_000_000):  # the exception lands at the next bytecode
                        pass
                    log.error("jobtree: an interrupt for %s never arrived", w.ctx.jobDir)
                w.interrupt.restore()
                return
            except Interrupted:
                w.delivered = True

    def run(self) -> None:
        while True:
            with self._cond:
                while self._watch is None:
                    self._cond.wait()
                w = self._watch
                self._cond.wait(w.tick)
                if w.done or self._watch is not w:
                    continue
            try:
                self._check(w)
            except Exception:  # the monitor must outlive any one job's trouble
                log.exception("jobtree monitor: checking %s failed", w.ctx.jobDir)

    def _check(self, w: Watch) -> None:
        from .proc import stopProcesses

        now = time.monotonic()
        try:
            if now - w.lastBeat >= w.beat or w.ctx.flushDue():
                w.lastBeat = now
                alive = w.ctx.renew()
            else:
                alive = os.path.exists(w.ctx.tokenFile)
        except OSError as exc:
            log.warning("job %s: renewing its lease failed: %s", w.ctx.jobDir, exc)
            alive = True  # a full disk or a flaky mount is not proof the job was taken
        if not alive:
            reason = "lost"
        elif w.timeout and now - w.start > w.timeout:
            reason = "timeout"
        elif w.hang and now - w.ctx.lastActivity > w.hang:
            reason = "hang"
        else:
            return
        with self._cond:
            if w.done:
                return
            w.reason = reason
            w.ctx.lost = reason == "lost"
            self._watch = None
        stopProcesses(w.ctx)
        with self._cond:
            if not w.done:
                w.raised = True
                w.interrupt.raiseIn(Interrupted)


def staleTokens(
    rootDir: str, serverNow: float, unconfirmed: dict[str, float] | None = None
) -> list[tuple[str, dict[str, Any], float]]:
    """Running tokens of a root whose lease expired: (token name, claim, age in seconds).

    A claim is a rename, which keeps the token's old mtime, followed by writing the claim into
    it. A token whose content does not carry its name's claim id yet is in that window (or its
    worker died in it): its mtime says nothing. Such a token counts as stale only after this
    process has seen it unconfirmed for a whole lease (*unconfirmed* remembers first sightings
    by the server's clock); without that memory it is never reported stale.
    """
    stale = []
    runningDir = indexDir(rootDir, L.RUNNING)
    names = _fs.listNames(runningDir)
    if unconfirmed is not None:
        present = {f"{rootDir}/{n}" for n in names}
        for key in [k for k in unconfirmed if k.startswith(rootDir + "/") and k not in present]:
            del unconfirmed[key]
    for name in names:
        st = _statToken(os.path.join(runningDir, name))
        if st is None or serverNow - st.st_mtime <= GRACE:
            continue  # gone, or renewed lately: most tokens end here without being read
        claim = loadToken(rootDir, L.RUNNING, name)
        # Stat again after reading: a claim written between the first stat and the read shows
        # its claim id in the content, and only this stat shows the mtime that write stamped.
        # Judged from the first stat, a job claimed a moment ago looked a whole wait old.
        st = _statToken(os.path.join(runningDir, name))
        if st is None:
            continue
        age = serverNow - st.st_mtime
        if age <= GRACE:
            continue
        lease = claim.get("leaseSeconds")
        if not isinstance(lease, (int, float)):
            lease = _jobLease(rootDir, L.tokenPath(name))
        if claim.get("claim") != name.rpartition("@")[2]:
            # Not written yet. Where the server updates ctime on rename (local disks, NFS), the
            # ctime is the claim's time; where it does not (sshfs reports ctime = mtime), only
            # a worker that watched the token for a whole lease can tell.
            if st.st_ctime > st.st_mtime + 0.5:
                age = serverNow - st.st_ctime
            elif unconfirmed is not None:
                age = serverNow - unconfirmed.setdefault(f"{rootDir}/{name}", serverNow)
            else:
                continue
        if age > lease + GRACE:
            stale.append((name, claim, age))
    return stale


def _statToken(path: str) -> os.stat_result | None:
    try:
        return os.stat(path)
    except OSError as exc:
        if _fs.isGone(exc):
            return None
        raise


def _jobLease(rootDir: str, path: str) -> float:
    lease = jobOptionsOf(rootDir, path).get("leaseSeconds")
    return float(lease) if isinstance(lease, (int, float)) else 60.0


def takeOver(rootDir: str, name: str, serverNow: float, reason: str) -> str | None:
    """Take an expired claim away from its worker and make the job runnable again (or failed
    after MAX_LOST lost attempts). Returns the new state, or None when another process won."""
    path = L.tokenPath(name)
    runningDir = indexDir(rootDir, L.RUNNING)
    # Move the token to a private name first (one winner), so its content can be updated before
    # any worker can claim it. check() finishes a takeover that crashed at this point.
    private = os.path.join(runningDir, f"{L.TEMP_PREFIX}{name}.takeover.{secrets.token_hex(3)}")
    if not _fs.move(os.path.join(runningDir, name), private):
        return None
    return finishTakeOver(rootDir, path, private, serverNow, reason)


def finishTakeOver(
    rootDir: str, path: str, private: str, serverNow: float, reason: str
) -> str | None:
    data = _fs.readBytes(private)
    if data is None:
        return None  # another process finished this takeover
    claim = parseToken(data)
    lost = int(claim.get("lost", 0) or 0) + 1
    claim["lost"] = lost
    claim.setdefault("history", []).append(
        {
            "attempt": claim.get("attempt"),
            "claim": claim.get("claim"),
            "host": claim.get("host"),
            "outcome": "lost",
            "reason": reason,
            "takenOverBy": f"{socket.gethostname()}:{os.getpid()}",
            "time": serverNow,
        }
    )
    priority = jobPriority(jobOptionsOf(rootDir, path))
    if lost >= MAX_LOST:
        claim["error"] = (
            f"its worker was lost {lost} times (last: {reason}); the job may crash its worker"
        )
        target = os.path.join(indexDir(rootDir, L.FAILED), path)
        state = L.FAILED
    else:
        target = os.path.join(indexDir(rootDir, L.READY), L.readyName(path, priority))
        state = L.READY
    if not _fs.rewriteInPlace(private, _fs.dumpJson(claim)) or not _fs.move(private, target):
        return None
    log.warning(
        "job %s: took over attempt %s from %s (%s); now %s",
        jobDirOf(rootDir, path),
        claim.get("attempt"),
        claim.get("host"),
        reason,
        state,
    )
    return state
