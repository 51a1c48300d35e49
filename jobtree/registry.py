"""The registry of workers: one small JSON file per worker process in ``QUEUE/workers/``.

Each worker process keeps ``QUEUE/workers/<name>.<pid>.json`` up to date (written atomically): on
start, when a job starts and ends, and every HEARTBEAT_SECONDS. Every write makes the file server
stamp the file's mtime, so a record whose mtime is older than LOST_SECONDS by the *server's* clock
belongs to a worker that stopped heart-beating: its host lost power or its network, or it was
killed together with its supervisor. A worker removes its record when it exits cleanly; a
supervisor removes the record of a worker it saw die. See docs/workers.md for the fields.
"""

from __future__ import annotations

import logging
import os
import re
import threading
import time
from typing import Any

from . import _fs
from . import _layout as L
from .host import WorkerInfo

log = logging.getLogger("jobtree.worker")

WORKERS_DIR = "workers"
"""QUEUE/workers/: the registry directory."""
RECORD_SUFFIX = ".json"
HEARTBEAT_SECONDS = 5.0
"""How often a worker rewrites its record (renewing its mtime)."""
LOST_SECONDS = 30.0
"""A record not rewritten for this long (by the file server's clock) is shown as lost. Six missed
heartbeats: allows for attribute caching and 1-second mtimes on network filesystems."""
FORGET_SECONDS = 7 * 24 * 3600.0
"""Records of lost workers older than this are deleted when a supervisor starts."""

_SAFE = re.compile(r"[^A-Za-z0-9._-]")


def safeName(name: str) -> str:
    """*name* as a file name: no separators or control characters, no leading dot (dot-files are
    atomic writes in progress and every listing skips them)."""
    return _SAFE.sub("_", name).lstrip(".") or "worker"


def registryDir(queueDir: str) -> str:
    return os.path.join(queueDir, WORKERS_DIR)


def recordPath(queueDir: str, name: str, pid: int) -> str:
    """``QUEUE/workers/<name>.<pid>.json``."""
    return os.path.join(registryDir(queueDir), f"{safeName(name)}.{pid}{RECORD_SUFFIX}")


def ensureDir(queueDir: str, shared: bool = False) -> None:
    """Create QUEUE/workers/ (group-writable and setgid in a shared queue)."""
    from .security import makeDir

    try:
        makeDir(registryDir(queueDir), shared)
    except FileExistsError:
        pass


def removeRecord(queueDir: str, name: str, pid: int) -> bool:
    """Delete one worker's record (its worker exited or died); False when it was not there."""
    try:
        return _fs.unlinkIfExists(recordPath(queueDir, name, pid))
    except OSError as exc:
        log.warning("cannot remove the worker record %s: %s", recordPath(queueDir, name, pid), exc)
        return False


def listWorkers(queueLocation: str | os.PathLike[str]) -> list[dict[str, Any]]:
    """Every worker record of a queue, each with ``"lost": True`` when its worker stopped
    heart-beating (its file was not rewritten for LOST_SECONDS by the file server's clock).
    Sorted by host, name and pid. Reading the registry never changes it."""
    from .lease import serverClock

    queueDir = os.path.abspath(os.fspath(queueLocation))
    directory = registryDir(queueDir)
    names = sorted(n for n in _fs.listNames(directory) if n.endswith(RECORD_SUFFIX))
    if not names:
        return []
    now = serverClock(queueDir).now()
    workers = []
    for name in names:
        path = os.path.join(directory, name)
        try:
            mtime = os.stat(path).st_mtime
            data = _fs.readJson(path)
        except (OSError, ValueError, UnicodeDecodeError) as exc:
            # Vanished (its worker exited) or damaged: not a worker anyone can act on.
            log.debug("skipping worker record %s: %s", path, exc)
            continue
        if not isinstance(data, dict):
            continue
        data["lost"] = now - mtime > LOST_SECONDS
        workers.append(data)
    workers.sort(key=lambda w: (str(w.get("host")), str(w.get("name")), _int(w.get("pid"))))
    return workers


def forgetLost(queueDir: str, olderThan: float = FORGET_SECONDS) -> int:
    """Delete records not rewritten for *olderThan* seconds (server clock); returns how many."""
    from .lease import serverClock

    directory = registryDir(queueDir)
    now = serverClock(queueDir).now()
    n = 0
    for name in _fs.listNames(directory):
        path = os.path.join(directory, name)
        try:
            if name.endswith(RECORD_SUFFIX) and now - os.stat(path).st_mtime > olderThan:
                n += _fs.unlinkIfExists(path)
        except OSError:
            continue
    return n


def _int(value: Any) -> int:
    return value if isinstance(value, int) else 0


class Registration:
    """This worker process's record, kept fresh by a heartbeat thread.

    ``start()`` writes it and starts the heartbeat; ``jobStarted``/``jobEnded`` rewrite it;
    ``close()`` stops the heartbeat and removes the record.
    """

    def __init__(
        self,
        queueDir: str,
        info: WorkerInfo,
        name: str | None = None,
        extra: dict[str, Any] | None = None,
    ) -> None:
        self.queueDir = queueDir
        self.name = name or info.host
        self.pid = os.getpid()
        self.path = recordPath(queueDir, self.name, self.pid)
        self.record: dict[str, Any] = {
            "name": self.name,
            **info.asDict(),
            "pid": self.pid,
            "currentJob": None,
            "jobsDone": 0,
            "jobsFailed": 0,
            "startTime": time.time(),
            "heartbeat": time.time(),
            **(extra or {}),
        }
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._beat, name="jobtree-heartbeat", daemon=True)
        self._warned = False

    def start(self) -> None:
        self.write()
        self._thread.start()

    def write(self, **changes: Any) -> None:
        """Apply *changes* and rewrite the record (atomically; the lock keeps a heartbeat from
        writing an older copy over a newer one)."""
        with self._lock:
            self.record.update(changes, heartbeat=time.time())
            data = _fs.dumpJson(self.record)
            try:
                _fs.writeAtomic(self.path, data)
            except FileNotFoundError:  # QUEUE/workers/ was removed (or never made): make it again
                try:
                    os.makedirs(os.path.dirname(self.path), exist_ok=True)
                    _fs.writeAtomic(self.path, data)
                except OSError as exc:
                    self._warn(exc)
            except OSError as exc:  # disk full, flaky mount: the next heartbeat tries again
                self._warn(exc)
            else:
                self._warned = False

    def _warn(self, exc: OSError) -> None:
        if not self._warned:
            log.warning("cannot write the worker record %s: %s", self.path, exc)
            self._warned = True

    def jobStarted(self, jobDir: str) -> None:
        self.write(currentJob=jobDir)

    def jobEnded(self, outcome: str | None) -> None:
        """*outcome*: the attempt's outcome (``done``, ``failed``, ``retry``, ``lost``, ...)."""
        done = int(self.record["jobsDone"]) + (outcome == L.DONE)
        failed = int(self.record["jobsFailed"]) + (outcome == L.FAILED)
        self.write(currentJob=None, jobsDone=done, jobsFailed=failed)

    def _beat(self) -> None:
        while not self._stop.wait(HEARTBEAT_SECONDS):
            self.write()

    def close(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(5.0)
        with self._lock:
            try:
                _fs.unlinkIfExists(self.path)
            except OSError as exc:
                log.warning("cannot remove the worker record %s: %s", self.path, exc)


def attemptOutcome(jobDir: str, attempt: int) -> str | None:
    """The outcome written in ``attempt.<n>.json`` of a job, or None when it cannot be read."""
    try:
        data = _fs.readJson(os.path.join(jobDir, L.attemptFile(attempt)))
    except (OSError, ValueError, UnicodeDecodeError):
        return None
    outcome = data.get("outcome") if isinstance(data, dict) else None
    return outcome if isinstance(outcome, str) else None
