"""The main window on real queues: watching, actions, panels, layout. Saves the docs' screenshots."""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

import pytest
from conftest import build_queue, save_shot, wait_until
from jobtree.gui.actions import BY_NAME, Target, collapse
from jobtree.gui.model import COL_STATE

import jobtree


def firstScreen(qtbot: Any, w: Any, roots: int) -> None:
    wait_until(qtbot, lambda: w.model.rowCount(w.model.queueIndex(0)) >= roots, 10, "roots")


def rootRow(w: Any, row: int) -> Any:
    return w.model.index(row, 0, w.model.queueIndex(0))


def stateOf(w: Any, rootId: str, path: str = "root") -> str | None:
    idx = w.model.findIndex(0, rootId, path)
    return idx.siblingAtColumn(COL_STATE).data() if idx.isValid() else None


def select(w: Any, *indexes: Any) -> None:
    sm = w.tree.selectionModel()
    sm.clearSelection()
    for idx in indexes:
        sm.select(idx, sm.SelectionFlag.Select | sm.SelectionFlag.Rows)
    sm.setCurrentIndex(indexes[-1], sm.SelectionFlag.NoUpdate)


@pytest.mark.parametrize("mode", ["inotify", "polling"])
def test_state_change_shows(qtbot: Any, make_window: Any, tmp_path: Path, mode: str) -> None:
    q = build_queue(tmp_path / "q", roots=2, frames=3)
    kw = {"useInotify": False, "poll": 0.2} if mode == "polling" else {}
    w = make_window([q.location], **kw)
    firstScreen(qtbot, w, 2)
    wait_until(qtbot, lambda: mode in w.modes.get(0, ""), 10, f"{mode} mode")
    rid = q.listJobs()[0].rootId
    w.tree.expand(rootRow(w, 0))
    wait_until(qtbot, lambda: stateOf(w, rid, "root.0000") == "ready", 5, "children")
    t0 = time.monotonic()
    assert q.runNextAvailableJob()
    wait_until(qtbot, lambda: stateOf(w, rid, "root.0000") == "done", 5, "done shown")
    assert time.monotonic() - t0 < (1.0 if mode == "inotify" else 2.0)
    # a new root appears, a deleted one goes
    build = jobtree.JobQueue(q.location)
    with build.createJob("guiprocs:Group", label="new one") as root:
        root.createJob("guiprocs:Frame", label="f")
    wait_until(qtbot, lambda: w.model.rowCount(w.model.queueIndex(0)) == 3, 5, "new root")
    build.deleteJobs(build.listJobs()[1])
    wait_until(qtbot, lambda: w.model.rowCount(w.model.queueIndex(0)) == 2, 5, "root removed")


def test_every_action(qtbot: Any, make_window: Any, tmp_path: Path) -> None:
    q = build_queue(tmp_path / "q", roots=3, frames=3, fail=True)
    while q.runNextAvailableJob():
        pass  # every root: 2 frames done, the last failed, the root blocked
    w = make_window([q.location])
    firstScreen(qtbot, w, 3)
    asked: list[str] = []
    w.confirm = lambda title, text: asked.append(text) or True
    w.askPriority = lambda: 7
    roots = {h.label: h for h in q.listJobs()}

    def run(name: str, *indexes: Any) -> str:
        select(w, *indexes)
        w.lastMessage = ""
        assert w.runCommand(BY_NAME[name])
        wait_until(qtbot, lambda: w.lastMessage or w.lastError, 10, name)
        assert not w.lastError, w.lastError
        return w.lastMessage

    # retry one root (its failed frame goes back to ready)
    assert "1 job(s) put back" in run("retry", rootRow(w, 0))
    h0 = roots["shot 010"]
    assert h0.stateCounts()[jobtree.JobState.READY] == 1
    # pause and resume the same root
    run("pause", rootRow(w, 0))
    assert h0.stateCounts()[jobtree.JobState.PAUSED] == 1
    wait_until(qtbot, lambda: "paused" in str(rootRow(w, 0).siblingAtColumn(3).data()), 5, "paused")
    run("resume", rootRow(w, 0))
    assert h0.stateCounts()[jobtree.JobState.READY] == 1
    # set priority on a selection of two roots
    run("priority", rootRow(w, 0), rootRow(w, 1))
    assert h0.jobOptions["priority"] == 7
    assert roots["shot 020"].jobOptions["priority"] == 7
    assert roots["shot 030"].jobOptions.get("priority", 0) == 0
    # cancel a root (asks first)
    asked.clear()
    assert "cancelled" in run("cancel", rootRow(w, 0))
    assert asked
    assert "Cancel" in asked[0]
    assert h0.state == jobtree.JobState.CANCELLED
    # delete one sub-job, then a whole root
    w.tree.expand(rootRow(w, 1))
    rid1 = roots["shot 020"].rootId
    wait_until(qtbot, lambda: w.model.findIndex(0, rid1, "root.0001").isValid(), 5, "children")
    run("delete", w.model.findIndex(0, rid1, "root.0001"))
    assert len(roots["shot 020"].listSubJobs()) == 2
    run("delete", rootRow(w, 2))
    assert {h.label for h in q.listJobs()} == {"shot 010", "shot 020"}
    wait_until(qtbot, lambda: w.model.rowCount(w.model.queueIndex(0)) == 2, 5, "row gone")
    # declining a confirmation changes nothing
    w.confirm = lambda title, text: False
    select(w, rootRow(w, 0))
    assert not w.runCommand(BY_NAME["delete"])
    assert len(q.listJobs()) == 2


def test_collapse_targets() -> None:
    t = lambda p: Target("q", "r", p, "/x", p)  # noqa: E731
    kept = collapse([t("root.0001.0002"), t("root.0001"), t("root.0002"), t("root.0001")])
    assert [k.path for k in kept] == ["root.0001", "root.0002"]
    assert [k.path for k in collapse([t("root"), t("root.0003")])] == ["root"]


def test_big_log_and_search(qtbot: Any, make_window: Any, tmp_path: Path) -> None:
    q = build_queue(tmp_path / "q", roots=1, frames=1, steps=2)
    while q.runNextAvailableJob():
        pass
    job = q.listJobs()[0].listSubJobs()[0]
    log = Path(job.location) / "stdout.1.log"
    with log.open("ab") as f:
        f.write(b"NEEDLE at the very start\n")
        line = b"frame 0042 tile 17 of 64: 12345 samples/s, memory 2.3 GB, denoise pass 3\n"
        f.write(line * (60 * 1024 * 1024 // len(line)))  # 60 MB
        f.write(b"last line of the log\n")
    w = make_window([q.location])
    firstScreen(qtbot, w, 1)
    w.tree.expand(rootRow(w, 0))
    wait_until(qtbot, lambda: w.model.findIndex(0, job.rootId, job.path).isValid(), 5, "rows")
    t0 = time.monotonic()
    w.tree.setCurrentIndex(w.model.findIndex(0, job.rootId, job.path))
    wait_until(qtbot, lambda: "last line of the log" in w.log.text.toPlainText(), 5, "log tail")
    opened = time.monotonic() - t0
    assert opened < 2.0
    text = w.log.text.toPlainText()
    assert len(text) <= 600 * 1024
    assert "NEEDLE" not in text
    assert "60.0 MB" in w.log.info.text()
    w.log.search.setText("needle")
    w.log.find()
    wait_until(qtbot, lambda: "NEEDLE" in w.log.text.toPlainText(), 10, "search hit")
    assert w.log.text.textCursor().selectedText() == "NEEDLE"
    assert w.log.earlier.isEnabled() is False  # the hit's page starts at byte 0


def test_layout_remembered(qtbot: Any, make_window: Any, tmp_path: Path) -> None:
    q = build_queue(tmp_path / "q", roots=1, frames=1)
    w = make_window([q.location])
    w.resize(1111, 777)
    w.tree.header().resizeSection(0, 321)
    w.logDock.hide()
    w.close()
    w2 = make_window([q.location], resize=False)
    assert w2.settings.value("queues") in ([q.location], q.location)
    assert w2.tree.header().sectionSize(0) == 321
    assert w2.logDock.isHidden()
    # (the offscreen platform's 800x600 screen clamps a restored geometry: only check it is kept)
    assert w2.settings.value("window/geometry") is not None


def test_details_and_why_waiting(qtbot: Any, make_window: Any, tmp_path: Path) -> None:
    q = build_queue(tmp_path / "q", roots=1, frames=2, fail=True)
    while q.runNextAvailableJob():
        pass
    w = make_window([q.location])
    firstScreen(qtbot, w, 1)
    h = q.listJobs()[0]
    w.tree.expand(rootRow(w, 0))
    wait_until(qtbot, lambda: w.model.findIndex(0, h.rootId, "root.0001").isValid(), 5, "rows")
    w.tree.setCurrentIndex(w.model.findIndex(0, h.rootId, "root.0001"))
    wait_until(qtbot, lambda: w.details.details is not None, 5, "details")
    html = w.details.browser.toPlainText()
    assert "licence server unreachable" in html
    assert "Attempts" in html
    assert "failed" in html
    w.tree.setCurrentIndex(rootRow(w, 0))
    wait_until(qtbot, lambda: w.details.details and w.details.details.path == "root", 5, "root")
    d = w.details.details
    assert d.state == "blocked"
    assert d.whyWaiting
    assert "Why it waits" in w.details.browser.toPlainText()
    assert "shot" in w.details.browser.toPlainText()  # metadata shown


def test_screenshots_tree_log_workers(
    qtbot: Any, make_window: Any, workers: Any, tmp_path: Path
) -> None:
    """A queue being rendered by real workers: the docs' screenshots come from here."""
    q = build_queue(tmp_path / "farm", roots=4, frames=12, steps=20, step=0.25)
    # one finished root with a failure, for colour
    jobtree.JobQueue(q.location)
    from conftest import add_roots

    bad = add_roots(q, 1, 3, fail=True, label="comp")
    w = make_window([q.location])
    firstScreen(qtbot, w, 5)
    workers.startDaemon(q.location, "node07", deadline=60)
    workers.startDaemon(q.location, "node08", deadline=60)
    # a worker whose host died: a record nobody renews
    from jobtree import registry

    rec = Path(registry.recordPath(q.location, "node03", 4242))
    rec.parent.mkdir(exist_ok=True)
    rec.write_text(
        '{"name": "node03", "host": "node03", "pid": 4242, "os": "linux", "cores": 16, '
        '"ramGB": 64.0, "gpu": "RTX 4000", "pools": ["render"], "tags": ["gpu"], '
        '"currentJob": null, "jobsDone": 118, "jobsFailed": 2, '
        f'"startTime": {time.time() - 7200}, "heartbeat": {time.time() - 95}}}'
    )
    old = time.time() - 95
    os.utime(rec, (old, old))
    wait_until(qtbot, lambda: w.totals()[2] >= 2, 20, "two running jobs")
    rid = q.listJobs()[0].rootId
    w.tree.expand(rootRow(w, 0))
    w.tree.expand(rootRow(w, 4))
    wait_until(qtbot, lambda: w.model.findIndex(0, rid, "root.0001").isValid(), 5, "rows")
    snap = lambda: w.model.snapshot(0, rid)  # noqa: E731
    wait_until(
        qtbot,
        lambda: any(r.progress >= 20 for r in snap().running.values()),
        20,
        "a running job with progress",
    )
    running = sorted(snap().running)[0]
    w.tree.setCurrentIndex(w.model.findIndex(0, rid, running))
    wait_until(qtbot, lambda: "rendering tile" in w.log.text.toPlainText(), 10, "log")
    n0 = len(w.log.text.toPlainText())
    wait_until(qtbot, lambda: len(w.log.text.toPlainText()) > n0, 5, "live tail grows")
    wait_until(qtbot, lambda: w.details.details is not None, 5, "details")
    w.workers.refresh()
    if registry is not None:
        wait_until(qtbot, lambda: w.workers.live >= 2, 10, "workers counted")
    w._updateSummary()
    qtbot.wait(300)
    save_shot(w, "main-window.png")
    save_shot(w.logDock, "log-panel.png")
    w.workersDock.show()
    w.workersDock.raise_()
    if registry is not None:
        wait_until(qtbot, lambda: len(w.workers.workers) >= 3, 10, "workers listed")
        lost = [x for x in w.workers.workers if x.get("lost")]
        assert [x["name"] for x in lost] == ["node03"]
        assert w.workers.table.item(len(w.workers.workers) - 1, 1).text() == "lost"
    qtbot.wait(200)
    save_shot(w.workersDock, "workers-panel.png")
    assert bad


def test_details_show_the_jobs_result(qtbot: Any, make_window: Any, tmp_path: Path) -> None:
    from procs_for_tests import ResultProc

    q = jobtree.createJobQueue(tmp_path / "q")
    with q.createJob(ResultProc, label="encode", value={"output": "/out/shot010.mp4"}):
        pass
    while q.runNextAvailableJob():
        pass
    w = make_window([q.location])
    firstScreen(qtbot, w, 1)
    w.tree.setCurrentIndex(rootRow(w, 0))
    wait_until(qtbot, lambda: w.details.details is not None, 5, "details")
    assert w.details.details.result == {"output": "/out/shot010.mp4"}
    text = w.details.browser.toPlainText()
    assert "Result" in text
    assert "/out/shot010.mp4" in text
