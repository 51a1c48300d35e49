"""A worker process for the GUI tests: loops runNextAvailableJob() until the queue is finished.

python drain_worker.py QUEUE DEADLINE_SECONDS
"""

from __future__ import annotations

import sys
import time

from jobtree import IdleReason, JobQueue


def main() -> int:
    q = JobQueue(sys.argv[1])
    deadline = time.monotonic() + float(sys.argv[2])
    while time.monotonic() < deadline:
        while q.runNextAvailableJob():
            pass
        reason = q.idleReason()
        if reason in (IdleReason.ALL_DONE, IdleReason.BLOCKED, IdleReason.EMPTY):
            return 0
        time.sleep(0.005)
    return 4


if __name__ == "__main__":
    sys.exit(main())
