"""Every name jobtree uses on disk, defined once.

The format itself is specified in docs/format.md; this module is its single owner in code.
"""

from __future__ import annotations

import math
import re
from typing import Final

FORMAT_NAME: Final = "jobtree-queue"
FORMAT_VERSION: Final = 1

QUEUE_FILE: Final = "jobtree-queue.json"
ROOTS_DIR: Final = "roots"
STAGING_DIR: Final = "staging"
TRASH_DIR: Final = "trash"

JOB_FILE: Final = "job.json"
DEPS_FILE: Final = "deps.json"
PENDING_DIR: Final = "_pending"
INDEX_DIR: Final = "_index"

WAITING: Final = "waiting"
READY: Final = "ready"
RUNNING: Final = "running"
DONE: Final = "done"
FAILED: Final = "failed"
CANCELLED: Final = "cancelled"
PAUSED: Final = "paused"
INDEX_STATES: Final = (WAITING, READY, RUNNING, DONE, FAILED, CANCELLED, PAUSED)
FINAL_STATES: Final = (DONE, FAILED, CANCELLED)

CLOCK_DIR: Final = "clock"
"""Per-process probe files whose server-stamped mtime tells the file server's time."""
WORKERS_DIR: Final = "workers"
"""The worker registry: one record per worker process (written by worker daemons)."""
PAUSE_MARKER: Final = "_paused"
"""An empty file in a job directory: its subtree is paused."""

ROOT_PATH: Final = "root"
"""The path of a root job; sub-job paths are ``root.0002.0000``."""

DEP_PREFIX: Final = "dep-"
"""Prefix of a ``_pending`` entry that stands for a dependency (``dep-root.0001``)."""

TEMP_PREFIX: Final = "."
"""Names starting with this are atomic writes in progress; every listing skips them."""

CHILD_DIGITS: Final = 4
CHILD_NAME_RE: Final = re.compile(r"^[0-9]{4,}$")
ROOT_ID_RE: Final = re.compile(r"^[0-9]{8}-[0-9]{6}-[0-9]{6}-[0-9a-f]{6}$")


def childName(index: int) -> str:
    """The directory name of the sub-job with this creation index."""
    return f"{index:0{CHILD_DIGITS}d}"


def attemptFile(attempt: int) -> str:
    return f"attempt.{attempt}.json"


def resultFile(attempt: int) -> str:
    """``result.1.json``: what the attempt saved with JobProc.setResult()."""
    return f"result.{attempt}.json"


def logFile(stream: str, attempt: int) -> str:
    """``stdout.1.log`` or ``stderr.1.log``."""
    return f"{stream}.{attempt}.log"


def readyName(path: str, priority: int, notBefore: float | None = None) -> str:
    """``root.0001@p5``, or ``root.0001@p5@t1795897812`` for a job that may not start before that
    time (seconds since the epoch, by the file server's clock)."""
    if notBefore:
        # Rounded up: a job must never start before its time.
        return f"{path}@p{priority}@t{math.ceil(notBefore)}"
    return f"{path}@p{priority}"


def parseReadyName(name: str) -> tuple[str, int, int]:
    """(path, priority, notBefore or 0) of a ready/paused token name; ValueError if malformed."""
    path, *fields = name.split("@")
    priority, notBefore = 0, 0
    for f in fields:
        if f.startswith("p"):
            priority = int(f[1:])
        elif f.startswith("t"):
            notBefore = int(f[1:])
        else:
            raise ValueError(f"malformed token name {name!r}")
    return path, priority, notBefore


def runningName(path: str, claim: str) -> str:
    return f"{path}@{claim}"


def tokenPath(name: str) -> str:
    """The job path in a token name (``root.0001@p5`` -> ``root.0001``)."""
    return name.partition("@")[0]


def pathParts(path: str) -> list[str]:
    """Directory names below the root for a job path (``root.0001.0002`` -> [0001, 0002])."""
    parts = path.split(".")
    return parts[1:]
