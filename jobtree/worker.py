"""The worker daemon: ``jobtree worker QUEUE`` (or ``python -m jobtree.worker QUEUE``).

A supervisor process starts N worker processes and keeps them running: it restarts a worker that
dies (backing off when one dies right after starting, again and again), replaces a worker after
``recycle`` jobs, and wakes idle workers when the queue changes (jobtree._wake). Each worker
process loops: stop requested? -> claim and run one job -> when there was none, wait for a ring.

Signals (to the supervisor; see docs/workers.md): the first SIGTERM or SIGINT lets every worker
finish its running job and take no new one; the second stops the running jobs at once (their
processes are killed and the jobs go back to ready, for any worker to take up); a third kills the
worker processes. The supervisor relays a stop with FINISH_SIGNAL and STOP_NOW_SIGNAL; a worker
treats SIGTERM/SIGINT sent to it directly the same way as its supervisor does, and takes the
stronger of the two, so a signal that reaches every process at once (systemd's default
KillMode=control-group) counts once, not twice. A worker stopped by a signal of its own (not
relayed) is replaced by a fresh one.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import random
import select
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from types import FrameType
from typing import Any

from . import _run, _wake, registry
from .errors import JobTreeError, QueueReadOnly
from .host import WorkerInfo
from .proc import WorkerShutdown
from .queue import JobQueue
from .security import SignatureError
from .state import IdleReason, JobState

log = logging.getLogger("jobtree.worker")

EXIT_OK = 0
"""Stopped on request, burst drained, or --max-jobs reached."""
EXIT_ERROR = 1
"""A worker crashed (its supervisor restarts it), or the daemon stopped because a worker could not
work at all (see EXIT_FATAL)."""
EXIT_USAGE = 2
"""Refused to start: bad arguments, not a queue, running as root without permission."""
EXIT_FATAL = 3
"""(worker process) the queue cannot be worked on from here (read-only, no key for signed jobs):
restarting would not help, so the supervisor stops the daemon."""
EXIT_RECYCLE = 4
"""(worker process) ran its ``recycle`` jobs; the supervisor starts a fresh one at once."""
EXIT_REPLACE = 5
"""(worker process) stopped by a SIGTERM or SIGINT sent to it, not by its supervisor: someone
took this one worker out (to move its job, say); the supervisor starts a fresh one at once."""

FINISH_SIGNAL = signal.SIGRTMIN + 1
"""Supervisor to worker: finish the running job, take no new one. Real-time signals, because
SIGUSR2 is jobtree.lease's (the monitor interrupts a job with it) and nothing else uses these;
they are queued, never merged, and kill silently a worker that has not started yet."""
STOP_NOW_SIGNAL = signal.SIGRTMIN + 2
"""Supervisor to worker: stop the running job now and give it back."""
ALLOW_ROOT_ENV = "JOBTREE_ALLOW_ROOT"
RECHECK_ENV = "JOBTREE_RECHECK"
RECHECK_SECONDS = 2.0
"""An idle worker looks for work at least this often (+-20%), rung or not: a retry delay or
notBefore passing and a dead worker's lease expiring make jobs runnable without any file event."""
MIN_UPTIME = 10.0
"""A worker that dies sooner than this after starting counts as dying immediately."""
BACKOFF_FIRST = 0.5
BACKOFF_MAX = 60.0
KILL_AFTER = 30.0
"""Seconds after a stop-now request before workers that are still there are SIGKILLed."""
TERMINAL = frozenset({IdleReason.ALL_DONE, IdleReason.BLOCKED, IdleReason.EMPTY, IdleReason.PAUSED})
"""Idle reasons on which a --burst worker exits: nothing can become runnable without a person."""

_INFO_ENV = "_JOBTREE_WORKER_INFO"
_SYS_PATH_ENV = "_JOBTREE_SYS_PATH"


def refuseRoot(allowRoot: bool = False) -> str | None:
    """The refusal message when this process runs as root and was not told that is fine."""
    if os.geteuid() != 0 or allowRoot or os.environ.get(ALLOW_ROOT_ENV) == "1":
        return None
    return (
        "jobtree worker: refusing to run as root. A worker runs whatever the jobs in its queue "
        "say, so anyone who can write to the queue could run commands as root on this host. Run "
        "workers as an unprivileged user (User= in a systemd unit; see docs/workers.md), or pass "
        f"--allow-root (allowRoot=True) or set {ALLOW_ROOT_ENV}=1 if you really mean it."
    )


def _levelOf(logLevel: str | int) -> int:
    if isinstance(logLevel, int):
        return logLevel
    if str(logLevel).isdigit():
        return int(logLevel)
    level = logging.getLevelName(str(logLevel).upper())
    if not isinstance(level, int):
        raise ValueError(f"unknown log level {logLevel!r} (DEBUG, INFO, WARNING, ERROR)")
    return level


def _setupLogging(level: int, tag: str) -> None:
    root = logging.getLogger()
    if not root.handlers:
        handler = logging.StreamHandler()
        handler.setFormatter(
            logging.Formatter(f"%(asctime)s {tag}[%(process)d] %(levelname)s: %(message)s")
        )
        root.addHandler(handler)
    logging.getLogger("jobtree").setLevel(level)


def _describeExit(code: int) -> str:
    if code < 0:
        try:
            return f"was killed by {signal.Signals(-code).name}"
        except ValueError:
            return f"was killed by signal {-code}"
    return f"exited with status {code}"


# -- the daemon ------------------------------------------------------------------------------------


def runDaemon(
    queue: str | os.PathLike[str],
    *,
    workers: int | None = None,
    burst: bool = False,
    maxJobs: int | None = None,
    name: str | None = None,
    recycle: int | None = None,
    pools: Sequence[str] | None = None,
    tags: Sequence[str] | None = None,
    pinCpus: bool = False,
    poll: float | None = None,
    allowRoot: bool = False,
    logLevel: str | int = "INFO",
) -> int:
    """Run the worker daemon on *queue* until it is stopped; returns the exit code.

    *workers* processes (default: the CPU count) run jobs; *burst*: exit once nothing is runnable
    and nothing running could make more runnable; *maxJobs*: exit after this many jobs in total;
    *name*: the workers' name in the registry (default: the host name); *recycle*: replace a worker
    process after this many jobs; *pools*/*tags*: what the workers offer (default $JOBTREE_POOL,
    $JOBTREE_TAGS); *pinCpus*: pin worker i to the i-th CPU; *poll*: poll the queue every *poll*
    seconds instead of watching it (default: watch on local disks, poll network filesystems);
    *allowRoot*: run even as root (also $JOBTREE_ALLOW_ROOT=1).

    Must be called from the main thread (it handles SIGTERM and SIGINT; see docs/workers.md).
    Exit codes: 0 stopped or finished, 1 a worker could not work (see the log), 2 refused to start.
    """
    for what, value in (("workers", workers), ("maxJobs", maxJobs), ("recycle", recycle)):
        if value is not None and (not isinstance(value, int) or value < 1):
            raise ValueError(f"runDaemon: {what} must be a positive int, not {value!r}")
    if poll is not None and not poll > 0:
        raise ValueError(f"runDaemon: poll must be a positive number of seconds, not {poll!r}")
    level = _levelOf(logLevel)
    message = refuseRoot(allowRoot)
    if message is not None:
        print(message, file=sys.stderr)
        return EXIT_USAGE
    _setupLogging(level, "jobtree-worker")
    location = os.path.abspath(os.fspath(queue))
    try:
        q = JobQueue(location)
    except (JobTreeError, OSError) as exc:
        print(f"jobtree worker: {exc}", file=sys.stderr)
        return EXIT_USAGE
    try:
        registry.ensureDir(location, bool(q.settings.get("shared")))
        registry.forgetLost(location)
    except OSError as exc:  # a read-only queue: the workers will say so precisely
        log.debug("cannot prepare the worker registry of %s: %s", location, exc)
    supervisor = Supervisor(
        location,
        workers=workers or os.cpu_count() or 1,
        burst=burst,
        maxJobs=maxJobs,
        name=name,
        recycle=recycle,
        info=WorkerInfo.detect(_split(pools), _split(tags)),
        pinCpus=pinCpus,
        poll=poll,
        allowRoot=allowRoot,
        logLevel=str(level),
    )
    return supervisor.run()


@dataclass
class _Slot:
    index: int
    proc: subprocess.Popen[bytes] | None = None
    bell: int | None = None
    """Our end of the worker's stdin pipe: a byte wakes it, closing it tells it we are gone."""
    started: float = 0.0
    failures: int = 0
    restartAt: float | None = 0.0
    """When to (re)start this slot's worker; None once the slot is finished for good."""


class Supervisor:
    """Starts and watches the worker processes of one daemon (see the module docstring).

    Workers are ``python -m jobtree.worker QUEUE --child N`` subprocesses rather than
    multiprocessing children: a fresh interpreter per worker inherits none of the supervisor's
    threads (the watcher's) or locks, and, unlike the spawn and forkserver contexts, does not
    re-import the caller's ``__main__`` (a script calling runDaemon without a main guard would
    start workers recursively). Each worker gets its own session, so a terminal's Ctrl-C or
    hang-up reaches only the supervisor, which relays it; its stdin is a pipe from the
    supervisor that rings it awake and reads EOF when the supervisor is gone (the worker then
    exits after its job). ``ps`` shows each process for what it is.
    """

    def __init__(
        self,
        queueDir: str,
        *,
        workers: int,
        burst: bool,
        maxJobs: int | None,
        name: str | None,
        recycle: int | None,
        info: WorkerInfo,
        pinCpus: bool,
        poll: float | None,
        allowRoot: bool,
        logLevel: str,
    ) -> None:
        self.queueDir = queueDir
        self.burst = burst
        self.maxJobs = maxJobs
        self.name = name or info.host
        self.recycle = recycle
        self.info = info
        self.poll = poll
        self.allowRoot = allowRoot
        self.logLevel = logLevel
        self.slots = [_Slot(i) for i in range(workers)]
        self.cpus: list[int] | None = sorted(os.sched_getaffinity(0)) if pinCpus else None
        self.stopLevel = 0
        self.fatal = False
        self.killAt: float | None = None
        self.tickets: str | None = None
        self.watcher: _wake.Watcher | None = None
        self._signals = 0
        self._lock = threading.Lock()  # slots' bells: the watcher's thread rings them

    # -- main loop ---------------------------------------------------------------------------------

    def run(self) -> int:
        sigR, sigW = os.pipe()
        os.set_blocking(sigR, False)
        os.set_blocking(sigW, False)
        saved = {s: signal.getsignal(s) for s in (signal.SIGTERM, signal.SIGINT, signal.SIGCHLD)}
        oldWakeup = signal.set_wakeup_fd(sigW, warn_on_full_buffer=False)
        try:
            signal.signal(signal.SIGTERM, self._onSignal)
            signal.signal(signal.SIGINT, self._onSignal)
            signal.signal(signal.SIGCHLD, _noop)  # wakes the select below via the wakeup fd
            if self.maxJobs is not None:
                self.tickets = tempfile.mkdtemp(prefix="jobtree-worker-tickets-")
            if self.cpus is not None and len(self.slots) > len(self.cpus):
                log.warning(
                    "%d workers pinned to %d CPUs: some CPUs run two workers",
                    len(self.slots),
                    len(self.cpus),
                )
            self.watcher = _wake.startWatcher(self.queueDir, self._ring, self.poll)
            log.info(
                "%d worker(s) on %s as %s (pools %s, tags %s)%s; %s",
                len(self.slots),
                self.queueDir,
                self.name,
                ",".join(self.info.pools) or "-",
                ",".join(self.info.tags) or "-",
                " in burst mode" if self.burst else "",
                self.watcher.describe(),
            )
            while any(s.proc is not None or s.restartAt is not None for s in self.slots):
                self._startDue()
                select.select([sigR], [], [], self._timeout())
                _wake.drain([sigR])
                self._handleSignals()
                self._reap()
                self._checkWatcher()
                self._escalate()
        finally:
            self._killAll()  # only when run() itself fails: normally nobody is left here
            if self.watcher is not None:
                self.watcher.stop()
            if self.tickets is not None:
                shutil.rmtree(self.tickets, ignore_errors=True)
            signal.set_wakeup_fd(oldWakeup)
            for s, handler in saved.items():
                signal.signal(s, handler)
            os.close(sigR)
            os.close(sigW)
        if self.fatal:
            log.error("stopped: a worker could not work on %s (see above)", self.queueDir)
            return EXIT_ERROR
        log.info("all workers stopped")
        return EXIT_OK

    def _timeout(self) -> float:
        now = time.monotonic()
        due = [s.restartAt for s in self.slots if s.proc is None and s.restartAt is not None]
        if self.killAt is not None:
            due.append(self.killAt)
        return max(0.0, min([1.0, *(t - now for t in due)]))

    def _onSignal(self, signum: int, frame: FrameType | None) -> None:
        self._signals += 1  # acted on by the main loop, which the wakeup fd wakes

    def _handleSignals(self) -> None:
        while self.stopLevel < self._signals:
            self._requestStop(self.stopLevel + 1)

    def _requestStop(self, level: int) -> None:
        if level <= self.stopLevel:
            return
        self.stopLevel = level
        for s in self.slots:
            if s.proc is None:
                s.restartAt = None  # nothing new starts once a stop was requested
        live = [s.proc for s in self.slots if s.proc is not None]
        if level == 1:
            log.info(
                "stop requested: workers finish their running jobs and take no new ones "
                "(send SIGTERM or SIGINT again to stop the jobs now)"
            )
            self._signalAll(live, FINISH_SIGNAL)
            self._ring()
        elif level == 2:
            log.warning(
                "stop now requested: killing the running jobs' processes and giving the jobs back"
            )
            self._signalAll(live, STOP_NOW_SIGNAL)
            self.killAt = time.monotonic() + KILL_AFTER
        else:
            log.warning("third stop request: killing the worker processes")
            self._signalAll(live, signal.SIGKILL)

    def _signalAll(self, procs: list[subprocess.Popen[bytes]], sig: int) -> None:
        for p in procs:
            if p.poll() is None:
                try:
                    os.kill(p.pid, sig)
                except ProcessLookupError:
                    pass

    def _escalate(self) -> None:
        if self.killAt is not None and time.monotonic() > self.killAt:
            live = [s.proc for s in self.slots if s.proc is not None]
            if live:
                log.warning(
                    "%d worker(s) still running %.0f s after stop now: killing them",
                    len(live),
                    KILL_AFTER,
                )
                self._signalAll(live, signal.SIGKILL)
            self.killAt = None

    def _killAll(self) -> None:
        live = [s.proc for s in self.slots if s.proc is not None]
        if not live:
            return
        self._signalAll(live, signal.SIGKILL)
        for p in live:
            p.wait()
        for s in self.slots:
            self._closeBell(s)
            s.proc = None

    # -- the workers -----------------------------------------------------------------------------

    def _command(self, slot: _Slot) -> list[str]:
        cmd = [sys.executable, "-m", "jobtree.worker", self.queueDir, "--child", str(slot.index)]
        cmd += ["--name", self.name, "--log-level", self.logLevel]
        if self.burst:
            cmd.append("--burst")
        if self.recycle is not None:
            cmd += ["--recycle", str(self.recycle)]
        if self.tickets is not None and self.maxJobs is not None:
            cmd += ["--tickets", self.tickets, "--max-jobs", str(self.maxJobs)]
        if self.cpus is not None:
            cmd += ["--cpu", str(self.cpus[slot.index % len(self.cpus)])]
        if self.allowRoot:
            cmd.append("--allow-root")
        return cmd

    def _startDue(self) -> None:
        now = time.monotonic()
        for s in self.slots:
            if s.proc is None and s.restartAt is not None and s.restartAt <= now:
                self._start(s)

    def _start(self, slot: _Slot) -> None:
        env = dict(os.environ)
        env[_INFO_ENV] = json.dumps(self.info.asDict())
        env[_SYS_PATH_ENV] = json.dumps([p for p in sys.path if p])
        r, w = os.pipe()
        try:
            proc = subprocess.Popen(self._command(slot), stdin=r, env=env, start_new_session=True)
        except OSError as exc:
            os.close(w)
            slot.failures += 1
            slot.restartAt = time.monotonic() + self._backoff(slot.failures)
            log.error("cannot start worker %d: %s", slot.index, exc)
            return
        finally:
            os.close(r)
        os.set_blocking(w, False)
        with self._lock:
            slot.proc, slot.bell = proc, w
        slot.started = time.monotonic()
        slot.restartAt = None
        log.debug("worker %d started: pid %d", slot.index, proc.pid)

    @staticmethod
    def _backoff(failures: int) -> float:
        """Seconds to wait before restarting a worker that died immediately *failures* times in
        a row: 0.5, 1, 2, 4, ... up to a minute."""
        return float(min(BACKOFF_MAX, BACKOFF_FIRST * 2 ** max(0, failures - 1)))

    def _closeBell(self, slot: _Slot) -> None:
        with self._lock:
            if slot.bell is not None:
                os.close(slot.bell)
                slot.bell = None

    def _reap(self) -> None:
        for s in self.slots:
            proc = s.proc
            code = proc.poll() if proc is not None else None
            if proc is None or code is None:
                continue
            self._closeBell(s)
            s.proc = None
            uptime = time.monotonic() - s.started
            if code != EXIT_OK:
                # Whatever it was doing, it cannot say so any more: forget its record and give
                # back a --max-jobs ticket it held for a job that never finished.
                registry.removeRecord(self.queueDir, self.name, proc.pid)
                _Tickets.reclaim(self.tickets, proc.pid)
            if code == EXIT_OK:
                s.restartAt = None
            elif code == EXIT_RECYCLE and not self.stopLevel:
                log.info(
                    "worker %d (pid %d) recycled after %s jobs", s.index, proc.pid, self.recycle
                )
                s.failures, s.restartAt = 0, time.monotonic()
            elif code == EXIT_REPLACE and not self.stopLevel:
                log.info(
                    "worker %d (pid %d) was stopped by a signal sent to it; starting a fresh one",
                    s.index,
                    proc.pid,
                )
                s.failures, s.restartAt = 0, time.monotonic()
            elif code in (EXIT_FATAL, EXIT_USAGE):
                s.restartAt = None
                self.fatal = True
                self._requestStop(1)
            elif self.stopLevel:
                s.restartAt = None
                # A worker still starting when the stop came dies of the relay: nothing lost.
                if code not in (EXIT_RECYCLE, EXIT_REPLACE, -FINISH_SIGNAL, -STOP_NOW_SIGNAL):
                    log.warning("worker %d (pid %d) %s", s.index, proc.pid, _describeExit(code))
            else:
                s.failures = s.failures + 1 if uptime < MIN_UPTIME else 0
                delay = self._backoff(s.failures) if s.failures else 0.0
                s.restartAt = time.monotonic() + delay
                log.warning(
                    "worker %d (pid %d) %s after %.1f s; restarting it%s",
                    s.index,
                    proc.pid,
                    _describeExit(code),
                    uptime,
                    f" in {delay:.1f} s" if delay else "",
                )

    def _ring(self) -> None:
        """Wake every idle worker (called from the watcher's thread)."""
        with self._lock:
            _wake.ring([s.bell for s in self.slots if s.bell is not None])

    def _checkWatcher(self) -> None:
        w = self.watcher
        if w is None or w.healthy():
            return
        log.warning(
            "the %s watcher of %s stopped working; polling every %.1f s instead",
            w.kind,
            self.queueDir,
            _wake.DEFAULT_POLL,
        )
        w.stop()
        self.watcher = _wake.PollWatcher(self.queueDir, self._ring, _wake.DEFAULT_POLL)
        self.watcher.start()
        self._ring()


def _noop(signum: int, frame: FrameType | None) -> None:
    pass


# -- --max-jobs across processes -------------------------------------------------------------------


class _Tickets:
    """--max-jobs for all workers of a daemon, without locks: a job may only be claimed while
    holding a ticket, one of ``total`` files ``t<i>`` created with O_EXCL in a private directory
    (exactly one creator wins each). A ticket used for a job is marked ``u<i>`` and kept; one
    whose attempt found no job is released (unlinked). Each ticket holds its holder's pid, so the
    supervisor can release the ticket of a worker that died mid-job."""

    def __init__(self, directory: str, total: int) -> None:
        self.directory = directory
        self.total = total

    def _names(self) -> set[str]:
        return set(os.listdir(self.directory))

    def acquire(self) -> int | None:
        names = self._names()
        for i in range(self.total):
            if f"t{i}" in names:
                continue
            try:
                fd = os.open(
                    os.path.join(self.directory, f"t{i}"), os.O_WRONLY | os.O_CREAT | os.O_EXCL
                )
            except FileExistsError:
                continue
            try:
                os.write(fd, str(os.getpid()).encode())
            finally:
                os.close(fd)
            return i
        return None

    def use(self, i: int) -> None:
        os.close(os.open(os.path.join(self.directory, f"u{i}"), os.O_WRONLY | os.O_CREAT))

    def release(self, i: int) -> None:
        try:
            os.unlink(os.path.join(self.directory, f"t{i}"))
        except FileNotFoundError:
            pass

    def exhausted(self) -> bool:
        return sum(n.startswith("u") for n in self._names()) >= self.total

    @staticmethod
    def reclaim(directory: str | None, pid: int) -> None:
        if directory is None:
            return
        names = set(os.listdir(directory))
        for n in names:
            if n.startswith("t") and f"u{n[1:]}" not in names:
                path = os.path.join(directory, n)
                try:
                    with open(path) as f:
                        holder = f.read().strip()
                    if holder == str(pid):
                        os.unlink(path)
                except OSError:
                    pass


# -- one worker process ----------------------------------------------------------------------------


def _recheckSeconds() -> float:
    text = os.environ.get(RECHECK_ENV)
    if text:
        try:
            value = float(text)
            if value > 0:
                return value
        except ValueError:
            pass
        log.warning("ignoring %s=%r: not a positive number of seconds", RECHECK_ENV, text)
    return RECHECK_SECONDS


class StopRequests:
    """The stop requests a worker process received: 0 none, 1 finish the running job and stop,
    2 stop the running job now. Relays from the supervisor set the level; SIGTERM and SIGINT
    sent to the worker itself count (the first finishes, the second stops now)."""

    SIGNALS = (signal.SIGTERM, signal.SIGINT, FINISH_SIGNAL, STOP_NOW_SIGNAL)

    def __init__(self) -> None:
        self.level = 0
        self.relayed = False
        """The supervisor asked (rather than someone signalling this worker directly)."""
        self._received = 0

    def note(self, signum: int) -> int:
        if signum == FINISH_SIGNAL:
            level, self.relayed = 1, True
        elif signum == STOP_NOW_SIGNAL:
            level, self.relayed = 2, True
        else:
            self._received += 1
            level = self._received
        self.level = max(self.level, level)
        return self.level

    def record(self, signum: int, frame: FrameType | None) -> None:
        """A signal handler that only records (before and after the worker loop runs)."""
        self.note(signum)


class _WorkerQueue(JobQueue):
    """The worker's JobQueue: takes no new job once a stop was requested, and tells its worker
    which job it claimed before the job runs (for the registry and for giving it back)."""

    def __init__(self, location: str, owner: Worker, info: WorkerInfo) -> None:
        super().__init__(location, logging.getLogger("jobtree"), worker=info)
        self._owner = owner

    def _claimNext(self) -> _run.Claimed | None:
        if self._owner.stopLevel:
            return None
        claimed = super()._claimNext()
        if claimed is not None and not self._owner._claimed(claimed):
            return None
        return claimed


class Worker:
    """One worker: the loop of a worker process (rq's ``work()`` with huey's ``step()``).

    ``step()`` claims and runs one job and is deterministic (no waiting, no threads of its own);
    ``work()`` installs the signal handlers, registers the worker and loops over ``step()``,
    waiting on its doorbell when there is nothing to do.
    """

    def __init__(
        self,
        queue: str,
        *,
        info: WorkerInfo | None = None,
        name: str | None = None,
        burst: bool = False,
        recycle: int | None = None,
        tickets: _Tickets | None = None,
        bellFd: int | None = None,
        register: bool = True,
        extra: dict[str, Any] | None = None,
        stops: StopRequests | None = None,
    ) -> None:
        self.info = info if info is not None else WorkerInfo.detect()
        self.queue = _WorkerQueue(queue, self, self.info)
        self.queueDir = str(self.queue.location)
        self.burst = burst
        self.recycle = recycle
        self.tickets = tickets
        self.bellFd = bellFd
        self.registration = (
            registry.Registration(self.queueDir, self.info, name, extra) if register else None
        )
        self.stops = stops if stops is not None else StopRequests()
        self.jobsRun = 0
        self._current: _run.Claimed | None = None
        self._raised = False
        self._waitingForTicket = False
        self.recheck = _recheckSeconds()

    # -- signals -----------------------------------------------------------------------------------

    @property
    def stopLevel(self) -> int:
        """0 running, 1 finish the running job and stop, 2 stop the running job now."""
        return self.stops.level

    def _onSignal(self, signum: int, frame: FrameType | None) -> None:
        self.stops.note(signum)
        c = self._current
        # Raise only while the job's token is still ours in running/: then an interruption
        # anywhere leaves the job claimed by us and work() gives it back. Once the job was
        # committed (its token moved to done/ or failed/, its dependants being released), it is
        # left to finish those few steps; the loop then stops before the next job.
        if (
            self.stopLevel >= 2
            and c is not None
            and not self._raised
            and os.path.lexists(c.running)
        ):
            self._raised = True
            raise WorkerShutdown(f"worker {os.getpid()} told to stop now (signal {signum})")

    def _claimed(self, c: _run.Claimed) -> bool:
        """Called with each claim before its job runs; False gives the job straight back."""
        if self.stopLevel:  # the stop request came while we were claiming
            _run.unclaim(c)
            return False
        if self.registration is not None:
            self.registration.jobStarted(c.jobDir)
        self._current = c  # from here on a stop-now signal raises WorkerShutdown
        return True

    # -- the loop ----------------------------------------------------------------------------------

    def step(self) -> bool:
        """Claim one runnable job and run it; False when none could be claimed."""
        self._waitingForTicket = False
        ticket = None
        if self.tickets is not None:
            ticket = self.tickets.acquire()
            if ticket is None:
                self._waitingForTicket = True
                return False
        ran = False
        try:
            ran = self.queue.runNextAvailableJob()
        finally:
            if ticket is not None and self.tickets is not None:
                if ran:
                    self.tickets.use(ticket)
                else:
                    self.tickets.release(ticket)
        c, self._current = self._current, None
        if ran:
            self.jobsRun += 1
            if c is not None and self.registration is not None:
                attempt = c.info.get("attempt")
                outcome = (
                    registry.attemptOutcome(c.jobDir, attempt) if isinstance(attempt, int) else None
                )
                self.registration.jobEnded(outcome)
        return ran

    def work(self) -> int:
        """Run jobs until told to stop (or, in burst mode, until nothing can run); returns the
        process's exit code."""
        saved = {s: signal.getsignal(s) for s in StopRequests.SIGNALS}
        for s in StopRequests.SIGNALS:
            signal.signal(s, self._onSignal)
        doorbell = _wake.Doorbell(self.bellFd)
        try:
            if self.registration is not None:
                self.registration.start()
            return self._loop(doorbell)
        except WorkerShutdown:
            c, self._current = self._current, None
            if c is not None and os.path.lexists(c.running):
                # Interrupted between claiming and running it, or between running and
                # committing it: still ours, so give it back for another worker.
                _run.unclaim(c)
            log.info("stopped now; the running job (if any) was given back")
            return self._stoppedCode()
        except (QueueReadOnly, SignatureError) as exc:
            log.error("%s", exc)
            return EXIT_FATAL
        finally:
            if self.registration is not None:
                self.registration.close()
            doorbell.close()
            for s, handler in saved.items():
                signal.signal(s, handler)

    def _loop(self, doorbell: _wake.Doorbell) -> int:
        while True:
            if self.stopLevel:
                log.info("stopping: %d job(s) run", self.jobsRun)
                return self._stoppedCode()
            if self.recycle is not None and self.jobsRun >= self.recycle:
                return EXIT_RECYCLE
            if not doorbell.wait(0):  # the supervisor died while we ran a job
                log.warning("the supervisor is gone; stopping")
                return EXIT_OK
            if self.step():
                continue
            if self._waitingForTicket:
                if self.tickets is not None and self.tickets.exhausted():
                    log.info("stopping: the daemon ran its --max-jobs %d jobs", self.tickets.total)
                    return EXIT_OK
                doorbell.wait(0.2)  # another worker holds the last tickets for a moment
                continue
            if self.burst and not self.stopLevel:
                reason = self.queue.idleReason()
                if reason in TERMINAL:
                    log.info("burst: nothing left to run (%s); %d job(s) run", reason, self.jobsRun)
                    return EXIT_OK
                if reason is IdleReason.UNSUITABLE or (
                    reason is None and not self._runningAnywhere()
                ):
                    # Runnable jobs that this worker cannot claim, and nothing running that
                    # could change that: they need another worker (requirements this host does
                    # not meet, a limit without slots). Unless one was just submitted: look once
                    # more.
                    if self.step():
                        continue
                    log.info(
                        "burst: the jobs left need other workers (see whyWaiting); %d job(s) run",
                        self.jobsRun,
                    )
                    return EXIT_OK
            if not doorbell.wait(self.recheck * random.uniform(0.8, 1.2)):
                log.warning("the supervisor is gone; stopping")
                return EXIT_OK

    def _stoppedCode(self) -> int:
        return EXIT_OK if self.stops.relayed or self.bellFd is None else EXIT_REPLACE

    def _runningAnywhere(self) -> bool:
        return any(h.stateCounts()[JobState.RUNNING] for h in self.queue.listJobs())


def _child(args: argparse.Namespace) -> int:
    """A worker process started by the supervisor (``--child N``)."""
    # Stop requests that come before the worker loop runs (or after it ended) are recorded, not
    # lost and not fatal: the loop starts by looking at them.
    stops = StopRequests()
    for s in StopRequests.SIGNALS:
        signal.signal(s, stops.record)
    _setupLogging(_levelOf(args.log_level), f"jobtree-worker-{args.child}")
    message = refuseRoot(args.allow_root)
    if message is not None:
        print(message, file=sys.stderr)
        return EXIT_USAGE
    try:  # what the supervisor could import, so can we (multiprocessing's spawn does the same)
        parentPath = json.loads(os.environ.pop(_SYS_PATH_ENV, "[]"))
        sys.path[:0] = [p for p in parentPath if isinstance(p, str) and p not in sys.path]
    except ValueError:
        pass
    info = None
    try:
        d = json.loads(os.environ.pop(_INFO_ENV, "null"))
        if isinstance(d, dict):
            info = WorkerInfo(**{**d, "pools": tuple(d["pools"]), "tags": tuple(d["tags"])})
    except (ValueError, TypeError, KeyError):
        info = None
    if args.cpu is not None:
        try:
            os.sched_setaffinity(0, {args.cpu})
        except OSError as exc:
            log.warning("cannot pin to CPU %d: %s", args.cpu, exc)
    tickets = _Tickets(args.tickets, args.max_jobs) if args.tickets else None
    try:
        worker = Worker(
            args.queue,
            info=info,
            name=args.name,
            burst=args.burst,
            recycle=args.recycle,
            tickets=tickets,
            bellFd=0,
            extra={"supervisor": os.getppid(), "slot": args.child},
            stops=stops,
        )
    except (JobTreeError, OSError) as exc:
        log.error("%s", exc)
        return EXIT_FATAL
    try:
        return worker.work()
    except Exception:
        log.exception("worker crashed")
        return EXIT_ERROR


# -- command line ----------------------------------------------------------------------------------


def _positiveInt(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1: {text!r}")
    return value


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number of seconds: {text!r}") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be more than 0: {text!r}")
    return value


def _split(values: Sequence[str] | None) -> list[str] | None:
    """["a,b", "c"] -> ["a", "b", "c"]; None stays None (then the environment decides)."""
    if values is None:
        return None
    return [p.strip() for v in values for p in v.split(",") if p.strip()]


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m jobtree.worker QUEUE [options]``: the same as ``jobtree worker``."""
    parser = argparse.ArgumentParser(
        prog="python -m jobtree.worker",
        description="Run jobs from a jobtree queue with a supervisor and N worker processes.",
    )
    parser.add_argument("queue", help="the queue directory")
    parser.add_argument(
        "-w", "--workers", type=_positiveInt, help="worker processes (default: CPUs)"
    )
    parser.add_argument("--burst", action="store_true", help="exit when nothing is left to run")
    parser.add_argument("--max-jobs", type=_positiveInt, help="exit after this many jobs in total")
    parser.add_argument("--name", help="the workers' name in the registry (default: host name)")
    parser.add_argument("--recycle", type=_positiveInt, help="replace a worker after N jobs")
    parser.add_argument(
        "--pool", action="append", help="pool(s) the workers belong to (default: $JOBTREE_POOL)"
    )
    parser.add_argument("--tag", action="append", help="tag(s) the workers offer ($JOBTREE_TAGS)")
    parser.add_argument("--pin-cpus", action="store_true", help="pin worker i to CPU i")
    parser.add_argument(
        "--poll",
        type=_seconds,
        nargs="?",
        const=_wake.DEFAULT_POLL,
        help="poll the queue every SECONDS (default 1) instead of watching it",
    )
    parser.add_argument("--allow-root", action="store_true", help="run even as root")
    parser.add_argument("--log-level", default="INFO", help="DEBUG, INFO, WARNING or ERROR")
    parser.add_argument("--child", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--cpu", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--tickets", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child is not None:
        return _child(args)
    try:
        return runDaemon(
            args.queue,
            workers=args.workers,
            burst=args.burst,
            maxJobs=args.max_jobs,
            name=args.name,
            recycle=args.recycle,
            pools=_split(args.pool),
            tags=_split(args.tag),
            pinCpus=args.pin_cpus,
            poll=args.poll,
            allowRoot=args.allow_root,
            logLevel=args.log_level,
        )
    except ValueError as exc:
        parser.error(str(exc))


if __name__ == "__main__":
    sys.exit(main())
