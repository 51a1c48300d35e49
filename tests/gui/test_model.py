"""The tree model over real queues: Qt's model tester after full and partial updates."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from conftest import add_roots, build_queue
from jobtree.gui.model import (
    COL_LABEL,
    COL_PROGRESS,
    COL_STATE,
    COL_STATUS,
    JobTreeModel,
    ProgressRole,
)
from jobtree.gui.scan import JobFilter, QueueScanner

import jobtree


class Harness:
    """A model fed synchronously by a scanner (no threads): each step is deterministic."""

    def __init__(self, location: str) -> None:
        self.model = JobTreeModel()
        self.qi = self.model.addQueue(location)
        self.scanner = QueueScanner(location)

    def scan(self, force: bool = False) -> None:
        for result in self.scanner.scanIncrementally() if force else [self.scanner.scan(None)]:
            self.model.applyScan(self.qi, result)

    def fillExtras(self) -> None:
        for (_qi, rid), paths in self.model.staleExtras(self.model.iterNodes()).items():
            self.model.applyExtras(self.qi, rid, self.scanner.extras(rid, paths))

    def rootIndex(self, row: int) -> Any:
        return self.model.index(row, 0, self.model.queueIndex(self.qi))

    def expand(self, index: Any) -> None:
        if self.model.canFetchMore(index):
            self.model.fetchMore(index)
        self.fillExtras()

    def rows(self, parent: Any) -> list[str]:
        m = self.model
        return [m.index(r, COL_LABEL, parent).data() for r in range(m.rowCount(parent))]


@pytest.fixture
def harness(tmp_path: Path) -> Harness:
    build_queue(tmp_path / "q", roots=3, frames=4)
    h = Harness(str(tmp_path / "q"))
    h.scan(force=True)
    h.fillExtras()
    return h


def test_full_load(harness: Harness, qtmodeltester: Any) -> None:
    m = harness.model
    assert m.rowCount() == 1
    assert harness.rows(m.queueIndex(0)) == ["shot 010", "shot 020", "shot 030"]
    root = harness.rootIndex(0)
    # Children are not materialized until asked for, but the view knows there are some.
    assert m.hasChildren(root)
    assert m.rowCount(root) == 0
    assert m.canFetchMore(root)
    qtmodeltester.check(m)  # (it fetches everything)
    harness.expand(root)
    assert harness.rows(root) == ["frame 001", "frame 002", "frame 003", "frame 004"]
    assert m.index(0, COL_STATE, root).data() == "ready"
    assert m.index(0, COL_STATE, m.queueIndex(0)).data() == "waiting"
    assert m.index(0, COL_PROGRESS, m.queueIndex(0)).data() == "0/5"
    assert "4 ready" in m.index(0, COL_STATUS, m.queueIndex(0)).data()
    qtmodeltester.check(m)


def test_partial_updates(harness: Harness, qtmodeltester: Any, qtbot: Any, tmp_path: Path) -> None:
    m = harness.model
    q = jobtree.JobQueue(str(tmp_path / "q"))
    root0 = harness.rootIndex(0)
    harness.expand(root0)
    first = m.index(0, 0, root0)
    changed: list[Any] = []
    inserted: list[Any] = []
    removed: list[Any] = []
    resets: list[Any] = []
    m.dataChanged.connect(lambda a, b, *r: changed.append((a.row(), m.node(a).path)))
    m.rowsInserted.connect(lambda p, a, b: inserted.append((a, b)))
    m.rowsRemoved.connect(lambda p, a, b: removed.append((a, b)))
    m.modelReset.connect(lambda: resets.append(1))

    # A state change: one job runs (in this process) -> dataChanged for its row, no structure.
    assert q.runNextAvailableJob()
    harness.scan()
    assert m.index(0, COL_STATE, root0).data() == "done"
    assert m.index(0, COL_PROGRESS, root0).data(ProgressRole) == 100
    assert (0, "root.0000") in changed
    assert not inserted
    assert not removed
    qtmodeltester.check(m)

    # A new root appears -> one row inserted under the queue.
    add_roots(q, 1, 2, label="late")
    harness.scan()
    assert harness.rows(m.queueIndex(0))[-1] == "late 010"
    assert (3, 3) in inserted
    qtmodeltester.check(m)

    # A subtree is deleted -> its row goes, the others keep their identity.
    h = q.listJobs()[0].listSubJobs()[1]
    q.deleteJobs(h)
    harness.scan()
    assert harness.rows(root0) == ["frame 001", "frame 003", "frame 004"]
    assert m.index(0, 0, root0) == first
    qtmodeltester.check(m)

    # A root is deleted -> its row and its materialized children go.
    q.deleteJobs(q.listJobs()[1])
    harness.scan()
    assert harness.rows(m.queueIndex(0)) == ["shot 010", "shot 030", "late 010"]
    qtmodeltester.check(m)

    # A failure shows, and blocks its parent.
    q2 = jobtree.JobQueue(str(tmp_path / "q"))
    add_roots(q2, 1, 2, fail=True, label="bad")
    while q2.runNextAvailableJob():
        pass
    harness.scan()
    bad = harness.rootIndex(3)
    harness.expand(bad)
    assert bad.siblingAtColumn(COL_STATE).data() == "blocked"
    assert m.index(0, COL_STATE, bad).data() == "done"
    assert m.index(1, COL_STATE, bad).data() == "failed"
    assert "licence server" in m.index(1, COL_STATUS, bad).data()
    assert not resets, "a model reset was used for an update"
    qtmodeltester.check(m)


def test_filter_rows(harness: Harness, qtmodeltester: Any, tmp_path: Path) -> None:
    m = harness.model
    q = jobtree.JobQueue(str(tmp_path / "q"))
    assert q.runNextAvailableJob()  # shot 010 / frame 001 done
    harness.scan()
    harness.expand(harness.rootIndex(0))
    sc = harness.scanner
    flt = JobFilter.parse("", ["done"])
    m.applyVisible(0, {rid: sc.matching(rid, flt) for rid in sc.roots})
    assert harness.rows(m.queueIndex(0)) == ["shot 010"]
    assert harness.rows(harness.rootIndex(0)) == ["frame 001"]
    qtmodeltester.check(m)
    flt = JobFilter.parse("artist:bo")
    m.applyVisible(0, {rid: sc.matching(rid, flt) for rid in sc.roots})
    assert harness.rows(m.queueIndex(0)) == ["shot 020"]
    qtmodeltester.check(m)
    flt = JobFilter.parse("frame 003")
    m.applyVisible(0, {rid: sc.matching(rid, flt) for rid in sc.roots})
    assert harness.rows(m.queueIndex(0)) == ["shot 010", "shot 020", "shot 030"]
    m.clearFilter(0)
    harness.expand(harness.rootIndex(0))
    assert len(harness.rows(harness.rootIndex(0))) == 4
    qtmodeltester.check(m)
