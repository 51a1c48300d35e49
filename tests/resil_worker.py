"""A worker process for the resilience tests (tests/resil_*.py, test_resilience.py, ...).

python resil_worker.py QUEUE [--barrier FILE] [--deadline S] [--until all-done|idle|stop-file]
                             [--stop-file FILE] [--key-file FILE] [--once] [--setuid USER]

Logs jobtree's warnings to stderr as "<pid> WARNING <message>" lines. Loops on
runNextAvailableJob(); when idle it polls every 10 ms and stops:
  all-done (default): when idleReason() is ALL_DONE;
  idle: at the first idle moment that is not RUNNING (prints the reason);
  stop-file: when --stop-file exists (never on its own).
Prints "ran N" (and "idle <reason>") on stdout and exits 0; exits 4 on deadline. An exception from
runNextAvailableJob() is printed as "raised <Type>: <message>" on stdout and exits 3.

--setuid USER drops root privileges (to USER and its primary group, no supplementary groups)
after everything the tests' jobs need is imported: the interpreter may live where USER cannot read
(e.g. pyenv under /root), so the process cannot simply be exec'ed as USER.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import time

from jobtree import IdleReason, JobQueue


def drop_privileges(user: str) -> None:
    import pwd

    import procs_for_tests  # noqa: F401  (imported while the interpreter's files are readable)
    import resil_procs  # noqa: F401

    pw = pwd.getpwnam(user)
    os.setgroups([])
    os.setgid(pw.pw_gid)
    os.setuid(pw.pw_uid)
    assert os.geteuid() == pw.pw_uid
    assert os.getegid() == pw.pw_gid


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("queue")
    parser.add_argument("--barrier")
    parser.add_argument("--deadline", type=float, default=100.0)
    parser.add_argument("--until", choices=["all-done", "idle", "stop-file"], default="all-done")
    parser.add_argument("--stop-file")
    parser.add_argument("--key-file")
    parser.add_argument("--once", action="store_true")
    parser.add_argument("--setuid")
    args = parser.parse_args()
    if args.setuid:
        drop_privileges(args.setuid)
    deadline = time.monotonic() + args.deadline
    logging.basicConfig(
        stream=sys.stderr, level=logging.WARNING, format=f"{os.getpid()} %(levelname)s %(message)s"
    )
    if args.barrier:
        while not os.path.exists(args.barrier):
            if time.monotonic() > deadline:
                print("barrier never appeared", file=sys.stderr)
                return 4
            time.sleep(0.005)

    q = JobQueue(args.queue, keyFile=args.key_file)
    ran = 0
    try:
        if args.once:
            print(f"result {q.runNextAvailableJob()}", flush=True)
            return 0
        while True:
            if q.runNextAvailableJob():
                ran += 1
                continue
            if args.until == "stop-file":
                if os.path.exists(args.stop_file):
                    break
            else:
                reason = q.idleReason()
                if reason == IdleReason.ALL_DONE or (
                    args.until == "idle" and reason not in (None, IdleReason.RUNNING)
                ):
                    print(f"idle {reason}", flush=True)
                    break
            if time.monotonic() > deadline:
                print(f"deadline passed after {ran} jobs", file=sys.stderr)
                return 4
            time.sleep(0.01)
    except Exception as exc:
        print(f"raised {type(exc).__name__}: {exc}", flush=True)
        return 3
    finally:
        q.close()
    print(f"ran {ran}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
