#!/usr/bin/env python3
"""The monitor on a big queue: first screen, memory, change latency, event-loop latency.

Builds one queue of R roots x P no-op sub-jobs (default 100 x 1,000 = 100,100 jobs; ~10-30 s),
then, in this process with Qt's offscreen platform (or the real display with --display):

1. first screen: from ``MainWindow([queue])`` until a screenful of root rows (30) is in the
   model and painted; then the time until all roots are loaded, and the RSS (VmRSS, and the peak
   ru_maxrss) after loading and after expanding three roots (3,000 rows);
2. change latency on a local disk: 20 times, one ready job of an expanded root is paused (then
   resumed) through the jobtree API; the time until the view's row shows the new state;
3. event-loop latency while worker processes drain the queue: a QTimer fires every 10 ms and
   records how late it is; workers (``--workers``, each looping ``runNextAvailableJob()``) run for
   ``--drain-seconds``; the jobs/s they reached is printed next to the worst lateness.

Targets (issue 5): first screen <= 1 s; memory <= 500 MB; a state change shown within 300 ms;
the GUI thread never blocked more than 100 ms while workers drain ~1,000 jobs/s.
The scratch tree is deleted only at the very end (``--keep``: never).
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import resource
import statistics
import sys
import time

BENCH_DIR = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, BENCH_DIR)

import benchutil as bu  # noqa: E402

FIRST_SCREEN_S = 1.0
MEMORY_MB = 500
LATENCY_MS = 300
BLOCK_MS = 100


def rss_mb() -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def build(location: str, roots: int, perRoot: int) -> float:
    from benchprocs import NoOp

    import jobtree

    t0 = time.monotonic()
    q = jobtree.createJobQueue(location)
    for r in range(roots):
        with q.createJob(NoOp, label=f"shot {r:03d}") as root:
            for i in range(perRoot):
                root.createJob(NoOp, label=f"frame {i:04d}")
        if r % 10 == 9:
            print(f"  built {r + 1} of {roots} roots ({time.monotonic() - t0:.1f} s)", flush=True)
    return time.monotonic() - t0


def drainWorker(location: str, stopAt: float, out: mp.Queue) -> None:  # type: ignore[type-arg]
    sys.path.insert(0, BENCH_DIR)
    import jobtree

    q = jobtree.JobQueue(location)
    n = 0
    while time.time() < stopAt:
        if q.runNextAvailableJob():
            n += 1
        else:
            time.sleep(0.001)
    out.put(n)


def spin(app: object, seconds: float) -> None:
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        app.processEvents()  # type: ignore[attr-defined]
        time.sleep(0.001)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--roots", type=int, default=100)
    parser.add_argument("--per-root", type=int, default=1000)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--drain-seconds", type=float, default=15.0)
    parser.add_argument("--changes", type=int, default=20)
    parser.add_argument(
        "--display", action="store_true", help="use the real display, not offscreen"
    )
    parser.add_argument("--queue", help="use this existing queue instead of building one")
    bu.common_args(parser)
    args = parser.parse_args()
    if not args.display:
        os.environ["QT_QPA_PLATFORM"] = "offscreen"
    os.environ.setdefault(
        "JOBTREE_GUI_SETTINGS", os.path.join(BENCH_DIR, ".bench-gui-settings.ini")
    )

    report = bu.Report("bench_gui: the monitor on a big queue")
    scratch = bu.Scratch("gui", args.dir, args.keep)
    try:
        if args.queue:
            location = os.path.abspath(args.queue)
        else:
            location = scratch.sub("q")
            n = args.roots * args.per_root
            print(f"building {args.roots} roots x {args.per_root} jobs = {n + args.roots:,} jobs")
            took = build(location, args.roots, args.per_root)
            print(f"built in {took:.1f} s ({(n + args.roots) / took:,.0f} jobs/s)")
        os.sync()
        return run(args, report, location)
    finally:
        scratch.cleanup()


def run(args: argparse.Namespace, report: bu.Report, location: str) -> int:
    import jobtree

    t0 = time.perf_counter()
    from jobtree.gui._qtcheck import bindingProblem
    from jobtree.gui.model import COL_STATE
    from jobtree.gui.views.mainwindow import MainWindow
    from PySide6.QtCore import QTimer
    from PySide6.QtWidgets import QApplication

    app = QApplication.instance() or QApplication(["bench_gui"])
    app.setStyle("Fusion")
    problem = bindingProblem()
    if problem:
        print(f"ERROR: {problem}")
        return 2
    print(f"Qt import and QApplication: {time.perf_counter() - t0:.3f} s, RSS {rss_mb():.0f} MB")

    # -- 1. first screen -------------------------------------------------------------------------
    rss0 = rss_mb()
    t1 = time.perf_counter()
    w = MainWindow([location])
    w.resize(1400, 900)
    w.show()
    qidx = w.model.queueIndex(0)
    while w.model.rowCount(qidx) < min(30, args.roots):
        app.processEvents()
        if time.perf_counter() - t1 > 30:
            break
    w.tree.viewport().repaint()  # painted, not only in the model
    first = time.perf_counter() - t1
    total = args.roots * (args.per_root + 1)
    while sum(w.totals()) < total and time.perf_counter() - t1 < 60:
        app.processEvents()
        time.sleep(0.001)
    allRoots = time.perf_counter() - t1
    spin(app, 0.5)
    print(
        f"first screen ({min(30, args.roots)} root rows painted): {first:.3f} s; all "
        f"{w.model.rowCount(qidx)} roots ({sum(w.totals()):,} jobs) counted: {allRoots:.3f} s"
    )
    print(f"watching: {w.modes.get(0, '?')}")
    for r in range(3):
        w.tree.expand(w.model.index(r, 0, qidx))
    spin(app, 1.5)
    mem = rss_mb()
    print(
        f"RSS after loading and expanding 3 roots: {mem:.0f} MB (window adds {mem - rss0:.0f} MB); "
        f"peak {peak_mb():.0f} MB"
    )
    report.target("first screen <= 1 s", first <= FIRST_SCREEN_S, f"{first:.3f} s")
    report.target(
        f"memory <= {MEMORY_MB} MB", peak_mb() <= MEMORY_MB, f"peak RSS {peak_mb():.0f} MB"
    )

    # -- 2. change latency -------------------------------------------------------------------------
    q = jobtree.JobQueue(location)
    roots = sorted(q.listJobs(), key=lambda h: h.rootId)
    # a root far from where workers start, with ready jobs (a reused --queue may be part-drained)
    root = next(
        h for h in reversed(roots) if h.stateCounts()[jobtree.JobState.READY] > 2 * args.changes
    )
    w.tree.expand(w.model.findIndex(0, root.rootId))
    spin(app, 0.5)
    subs = [h for h in root.listSubJobs() if h.state is jobtree.JobState.READY]
    lat: list[float] = []
    for i in range(args.changes):
        h = subs[i]
        idx = w.model.findIndex(0, root.rootId, h.path).siblingAtColumn(COL_STATE)
        for action, want in ((q.pause, "paused"), (q.resume, "ready")):
            spin(app, 0.05)
            ts = time.perf_counter()
            action(h)
            while idx.data() != want:
                app.processEvents()
                time.sleep(0.0005)
                if time.perf_counter() - ts > 5:
                    break
            w.tree.viewport().repaint()
            lat.append((time.perf_counter() - ts) * 1000)
    print(
        f"change latency over {len(lat)} changes: median {statistics.median(lat):.0f} ms, "
        f"p90 {bu.percentile(lat, 90):.0f} ms, max {max(lat):.0f} ms"
    )
    report.target(
        f"state change shown within {LATENCY_MS} ms",
        max(lat) <= LATENCY_MS,
        f"max {max(lat):.0f} ms",
    )

    # -- 3. event-loop latency while workers drain -----------------------------------------------
    late: list[float] = []
    last = [time.perf_counter()]

    def onTick() -> None:
        now = time.perf_counter()
        late.append(max(0.0, (now - last[0]) * 1000 - 10))
        last[0] = now

    timer = QTimer()
    timer.setInterval(10)
    timer.timeout.connect(onTick)
    # the view shows the roots being drained; the log panel follows a job
    for r in range(min(6, len(roots))):
        w.tree.expand(w.model.findIndex(0, roots[r].rootId))
    w.tree.setCurrentIndex(w.model.findIndex(0, roots[0].rootId, "root.0005"))
    spin(app, 0.5)
    doneBefore = w.totals()[3]
    ctx = mp.get_context("spawn")
    out = ctx.Queue()
    stopAt = time.time() + args.drain_seconds + 2.0  # +2 s: the workers' start-up
    procs = [
        ctx.Process(target=drainWorker, args=(location, stopAt, out)) for _ in range(args.workers)
    ]
    for p in procs:
        p.start()
    spin(app, 2.0)  # workers importing jobtree
    late.clear()
    last[0] = time.perf_counter()
    timer.start()
    tStart = time.perf_counter()
    doneStart = w.totals()[3]
    while time.time() < stopAt:
        app.processEvents()
        time.sleep(0.001)
    timer.stop()
    elapsed = time.perf_counter() - tStart
    ran = sum(out.get(timeout=30) for _ in procs)
    for p in procs:
        p.join(30)
    spin(app, 1.0)
    shownDone = w.totals()[3]
    rate = (shownDone - doneStart) / elapsed if elapsed else 0.0
    worst = max(late) if late else float("nan")
    print(
        f"drain: {args.workers} workers ran {ran:,} jobs; the view counted {shownDone - doneBefore:,} "
        f"done; ~{rate:,.0f} jobs/s while measured ({elapsed:.1f} s)"
    )
    print(
        f"event loop: {len(late):,} ticks of 10 ms; lateness median {statistics.median(late):.1f} ms, "
        f"p99 {bu.percentile(late, 99):.1f} ms, max {worst:.1f} ms; monitor scans: "
        f"{w.monitors[0].scans}, last scan {w.monitors[0].lastScan * 1000:.0f} ms"
    )
    print(f"RSS at the end: {rss_mb():.0f} MB, peak {peak_mb():.0f} MB")
    report.target(
        f"GUI thread never blocked > {BLOCK_MS} ms while draining",
        worst <= BLOCK_MS,
        f"max lateness {worst:.1f} ms at ~{rate:,.0f} jobs/s",
    )
    w.close()
    # Reference: the same workers on the same queue with no monitor open (the machine's own pace).
    stopAt = time.time() + args.drain_seconds / 2 + 2.0
    procs = [
        ctx.Process(target=drainWorker, args=(location, stopAt, out)) for _ in range(args.workers)
    ]
    for p in procs:
        p.start()
    alone = sum(out.get(timeout=60) for _ in procs) / (args.drain_seconds / 2 + 1.0)
    for p in procs:
        p.join(30)
    print(f"reference: the same workers with no monitor open: ~{alone:,.0f} jobs/s")
    report.target(
        "workers drained >= 1,000 jobs/s meanwhile",
        rate >= 1000,
        f"{rate:,.0f} jobs/s with the monitor, {alone:,.0f} jobs/s without "
        f"({rate / alone if alone else 0:.0%})",
    )
    return report.finish(args.strict)


if __name__ == "__main__":
    sys.exit(main())
