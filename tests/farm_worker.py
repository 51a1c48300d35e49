"""A worker process for the farm-feature tests: python farm_worker.py QUEUE SECONDS [POOL]

Runs jobs (polling when idle) until SECONDS have passed or, without a deadline (0), until the
queue is all done."""

import sys
import time

import jobtree

queue, seconds = sys.argv[1], float(sys.argv[2])
pools = tuple(sys.argv[3].split(",")) if len(sys.argv) > 3 else ()
q = jobtree.JobQueue(queue, worker=jobtree.WorkerInfo(pools=pools))
end = time.monotonic() + (seconds or 120)
while time.monotonic() < end:
    if not q.runNextAvailableJob():
        if not seconds and q.idleReason() is jobtree.IdleReason.ALL_DONE:
            break
        time.sleep(0.02)
