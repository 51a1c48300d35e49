"""jobtree demo: submit a small tree of jobs and drain it with two worker processes.

    python examples/demo.py            # a new queue in a temporary directory
    python examples/demo.py QUEUE      # a queue at QUEUE (created unless it already is one)

The tree is a pretend render: a root "encode movie" over 3 chunks of 2 frames each, every frame a
sub-job of its chunk. A second root, a "preview" submitted afterwards with a higher priority, shows
that priority beats submission order. Two worker processes loop on runNextAvailableJob() until
nothing is left; then the demo prints which job ran when and in which process, read back from the
queue through JobHandle, checks that every parent started after its children ended, and says
where the queue is. The procedures are in examples/demo_procs.py.
"""

from __future__ import annotations

import multiprocessing
import os
import queue
import sys
import tempfile
import time
from typing import Any

EXAMPLES_DIR = os.path.dirname(os.path.abspath(__file__))
if EXAMPLES_DIR not in sys.path:
    sys.path.insert(0, EXAMPLES_DIR)

from demo_procs import CollectChunk, EncodeMovie, Preview, RenderFrame  # noqa: E402

import jobtree  # noqa: E402

FRAMES_PER_CHUNK = 2
CHUNKS = 3
WORKERS = 2
DEADLINE_SECONDS = 120.0


def worker(name: str, location: str, barrier: Any, results: Any) -> None:
    """One worker process: run jobs until the queue says nothing more can become runnable."""
    # The jobs name their procedures "demo_procs:Class"; make sure this process can import them
    # however it was started (spawn, forkserver or fork).
    if EXAMPLES_DIR not in sys.path:
        sys.path.insert(0, EXAMPLES_DIR)
    q = jobtree.JobQueue(location)
    barrier.wait()  # both workers start together, so they really share the work
    ran = 0
    deadline = time.monotonic() + DEADLINE_SECONDS
    reason: jobtree.IdleReason | None = None
    while time.monotonic() < deadline:
        if q.runNextAvailableJob():
            ran += 1
            continue
        reason = q.idleReason()
        if reason is None:
            continue  # a job became runnable since we looked: try again at once
        if reason is jobtree.IdleReason.RUNNING:
            # Another worker is running a job; when it finishes, its parent may become ready.
            time.sleep(0.01)
            continue
        break  # empty, all done, or blocked by a failed job: nothing more will become runnable
    results.put((name, os.getpid(), ran, str(reason)))


def openOrCreateQueue(location: str) -> jobtree.JobQueue:
    try:
        return jobtree.JobQueue(location)
    except jobtree.QueueNotFound:
        return jobtree.createJobQueue(location)


def submit(q: jobtree.JobQueue, outDir: str) -> list[jobtree.JobHandle]:
    """Submit the movie tree, then a high-priority preview; return the two roots' handles."""
    chunks = [
        [first, first + FRAMES_PER_CHUNK - 1]
        for first in range(1, CHUNKS * FRAMES_PER_CHUNK + 1, FRAMES_PER_CHUNK)
    ]
    with q.createJob(
        EncodeMovie, label="encode movie", chunks=chunks, outDir=outDir, movie="movie.txt"
    ) as movie:
        for first, last in chunks:
            chunk = movie.createJob(
                CollectChunk, label=f"frames {first}-{last}", first=first, last=last, outDir=outDir
            )
            for frame in range(first, last + 1):
                chunk.createJob(
                    RenderFrame, label=f"render frame {frame}", frame=frame, outDir=outDir
                )
    # Leaving the with-block activated the whole tree at once; now a second root that is
    # submitted later but has a higher priority than the movie's default of 0.
    preview = q.createJob(Preview, label="preview frame 3", jobOptions={"priority": 5}, frame=3)
    preview.activate()
    return [movie.handle, preview.handle]


def walk(job: jobtree.JobHandle) -> list[jobtree.JobHandle]:
    jobs = [job]
    for sub in job.listSubJobs():
        jobs.extend(walk(sub))
    return jobs


def report(roots: list[jobtree.JobHandle], workerNames: dict[int, str]) -> bool:
    """Print what ran in which order and process; return True if everything checks out."""
    jobs = [job for root in roots for job in walk(root)]
    started = sorted((j for j in jobs if j.startTime is not None), key=lambda j: j.startTime or 0)
    t0 = started[0].startTime if started else 0.0
    print("\nwhat ran, in order of start (read back from the queue):\n")
    header = f"  {'#':>2}  {'start s':>7}  {'end s':>7}  {'worker':<16}  {'state':<7}  {'path':<22}"
    print(header + "  label")
    for i, j in enumerate(started, 1):
        start = (j.startTime or 0.0) - (t0 or 0.0)
        end = (j.endTime or 0.0) - (t0 or 0.0) if j.endTime is not None else float("nan")
        who = workerNames.get(j.pid or -1, f"pid {j.pid}")
        print(
            f"  {i:>2}  {start:7.3f}  {end:7.3f}  {who:<16}  {j.state.value:<7}  "
            f"{j.rootId[-6:] + ':' + j.path:<22}  {j.label}"
        )

    problems = []
    for j in jobs:
        if j.state is jobtree.JobState.FAILED:
            problems.append(f"{j.path} ({j.label}) failed: {j.error}")
        elif j.state is not jobtree.JobState.DONE:
            problems.append(f"{j.path} ({j.label}) is {j.state.value}")
        elif j.attempts != 1:
            problems.append(f"{j.path} ({j.label}) ran {j.attempts} times")
        if j.startTime is None:
            continue  # never ran (reported above)
        for sub in j.listSubJobs():
            if sub.endTime is None or j.startTime < sub.endTime:
                problems.append(f"{j.path} started before its sub-job {sub.path} ended")
    print()
    if problems:
        print("PROBLEMS:")
        for p in problems:
            print("  " + p)
        return False
    print(
        f"checks: all {len(jobs)} jobs done, each ran once, every parent started after all "
        "of its sub-jobs ended"
    )
    return True


def main(argv: list[str]) -> int:
    if len(argv) > 2:
        print(__doc__)
        return 2
    if len(argv) == 2:
        location = os.path.abspath(argv[1])
        outDir = location.rstrip("/") + "-output"
        cleanup = f"{location} {outDir}"
    else:
        base = tempfile.mkdtemp(prefix="jobtree-demo-")
        location = os.path.join(base, "queue")
        outDir = os.path.join(base, "output")
        cleanup = base
    os.makedirs(outDir, exist_ok=True)

    q = openOrCreateQueue(location)
    roots = submit(q, outDir)
    total = sum(len(walk(root)) for root in roots)
    print(f"queue {q.location}: submitted {total} jobs in {len(roots)} roots")
    for root in roots:
        counts = ", ".join(f"{n} {state}" for state, n in root.stateCounts().items() if n)
        print(
            f"  root {root.rootId[-6:]} {root.label!r}, priority {root.jobOptions['priority']}:"
            f" {counts}"
        )

    ctx = multiprocessing.get_context("spawn")
    barrier = ctx.Barrier(WORKERS)
    results = ctx.Queue()
    procs = [
        ctx.Process(target=worker, args=(f"worker {i}", q.location, barrier, results))
        for i in range(1, WORKERS + 1)
    ]
    print(f"starting {WORKERS} worker processes")
    for p in procs:
        p.start()
    workerNames: dict[int, str] = {}
    deadline = time.monotonic() + DEADLINE_SECONDS + 30
    while len(workerNames) < len(procs):
        try:
            name, pid, ran, reason = results.get(timeout=0.5)
        except queue.Empty:
            crashed = [p for p in procs if p.exitcode not in (None, 0)]
            if crashed or time.monotonic() > deadline:
                print(f"a worker process died or hung (exit codes {[p.exitcode for p in procs]})")
                for p in procs:
                    p.kill()
                return 1
            continue
        workerNames[pid] = f"{name} ({pid})"
        print(f"  {name} (pid {pid}) ran {ran} jobs, then stopped: {reason}")
    for p in procs:
        p.join()
    ok = all(p.exitcode == 0 for p in procs)

    ok = report(roots, workerNames) and ok

    movie = roots[0]
    frame1 = movie.listSubJobs()[0].listSubJobs()[0]
    for job, stream in ((frame1, "stdout"), (movie, "stderr")):
        text = getattr(job, stream).strip()
        if text:
            print(f"\nwhat {job.label!r} wrote to its {stream} log:")
            print("  " + text.replace("\n", "\n  "))
    moviePath = os.path.join(outDir, "movie.txt")
    if os.path.exists(moviePath):
        print(f"\nthe 'movie' {moviePath}:")
        with open(moviePath) as f:
            print("  " + f.read().strip().replace("\n", "\n  "))

    print(f"\nthe queue is at {q.location}")
    print(f"  look at it:   ls {movie.location}")
    listRoots = f"jobtree.JobQueue('{q.location}').listJobs()"
    print(
        '  or in Python: python -c "import jobtree; '
        f'print([(r.label, str(r.state)) for r in {listRoots}])"'
    )
    print(f"  delete it:    rm -rf {cleanup}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv))
