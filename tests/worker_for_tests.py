"""A worker process for the tests.

python worker_for_tests.py QUEUE --once
    run runNextAvailableJob() once; print its result; exit 0.
python worker_for_tests.py QUEUE [--barrier FILE] [--deadline SECONDS]
    wait until FILE exists, then run jobs until the queue is ALL_DONE; print "ran N";
    exit 0, or 4 on deadline, 5 if the queue is BLOCKED.
"""

from __future__ import annotations

import argparse
import os
import sys
import time

from jobtree import IdleReason, JobQueue


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("queue")
    parser.add_argument("--once", action="store_true")
    parser.add_argument("--barrier")
    parser.add_argument("--deadline", type=float, default=100.0)
    args = parser.parse_args()
    deadline = time.monotonic() + args.deadline

    if args.barrier:
        while not os.path.exists(args.barrier):
            if time.monotonic() > deadline:
                print("barrier never appeared", file=sys.stderr)
                return 4
            time.sleep(0.005)

    q = JobQueue(args.queue)
    if args.once:
        print(q.runNextAvailableJob())
        return 0

    ran = 0
    blocked_since = None
    while True:
        while q.runNextAvailableJob():
            ran += 1
        reason = q.idleReason()
        if reason == IdleReason.ALL_DONE:
            break
        now = time.monotonic()
        if reason == IdleReason.BLOCKED:
            # BLOCKED means a failed job keeps the rest from running. Report every sighting; give
            # up only when it lasts, so that a spurious BLOCKED is reported but not fatal.
            print(f"idleReason() was BLOCKED after {ran} jobs", file=sys.stderr)
            if blocked_since is None:
                blocked_since = now
            elif now - blocked_since > 2.0:
                print(f"queue blocked for 2 s after {ran} jobs", file=sys.stderr)
                return 5
        else:
            blocked_since = None
        if now > deadline:
            print(f"deadline passed after {ran} jobs, idleReason {reason}", file=sys.stderr)
            return 4
        # RUNNING elsewhere (or a job just became ready): poll again shortly.
        time.sleep(0.005)
    print(f"ran {ran}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
