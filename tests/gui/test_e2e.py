"""End to end: worker processes drain a queue while the window watches; the view ends equal to
the disk."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from conftest import build_queue, wait_until
from jobtree.gui.model import COL_STATE
from jobtree.gui.scan import STATES

import jobtree


def test_workers_drain_while_watched(
    qtbot: Any, make_window: Any, workers: Any, tmp_path: Path
) -> None:
    q = build_queue(tmp_path / "q", roots=4, frames=30, steps=1, fail=False)
    with q.createJob("guiprocs:Group", label="with failure") as root:
        root.createJob("guiprocs:Frame", label="ok")
        root.createJob("guiprocs:Boom", label="bad")
    w = make_window([q.location])
    wait_until(qtbot, lambda: w.model.rowCount(w.model.queueIndex(0)) == 5, 10, "roots")
    for r in range(5):
        w.tree.expand(w.model.index(r, 0, w.model.queueIndex(0)))
    workers.start(q.location, n=3, deadline=60)
    assert workers.wait(60) == [0, 0, 0]
    total = 4 * 31 + 3
    done = 4 * 31 + 1
    wait_until(
        qtbot,
        lambda: w.totals()[STATES.index("done")] == done and sum(w.totals()) == total,
        10,
        "final counts in the view",
    )
    # every row the view shows says what the disk says
    disk = jobtree.JobQueue(q.location)
    shown = 0
    for h in disk.listJobs():
        for job in [h, *h.listSubJobs()]:
            idx = w.model.findIndex(0, h.rootId, job.path)
            assert idx.isValid(), job
            want = job.state.value
            assert idx.siblingAtColumn(COL_STATE).data() == want, (job, want)
            shown += 1
        counts = w.model.snapshot(0, h.rootId).rollup("root")
        assert {s: n for s, n in zip(STATES, counts.counts, strict=True) if n} == {
            s.value: n for s, n in h.stateCounts().items() if n
        }
    assert shown == total
