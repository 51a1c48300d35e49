"""The pure reader: incremental rescans keyed on index markers, running tokens, mounts, filters."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from conftest import build_queue
from jobtree.gui import scan
from jobtree.gui.scan import JobFilter, QueueScanner

import jobtree
from jobtree._wake import isNetworkFs, mountInfo


def test_unchanged_root_costs_no_listing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    q = build_queue(tmp_path / "q", roots=3, frames=5)
    sc = QueueScanner(q.location, settle=0.0)
    first = sc.scan(None)
    assert len(first.updated) == 3
    listed: list[str] = []
    real = scan.RootIndex
    monkeypatch.setattr(scan, "RootIndex", lambda d: listed.append(d) or real(d))
    time.sleep(0.02)
    again = sc.scan(None)
    assert again.updated == []
    assert listed == []
    assert q.runNextAvailableJob()
    changed = sc.scan(None)
    assert [s.rootId for s in changed.updated] == [q.listJobs()[0].rootId]
    assert len(listed) == 1
    snap = changed.updated[0]
    assert snap.changed >= {"root.0000", "root"}  # the job and its parent's rollup
    assert snap.rollup("root").count("done") == 1


def test_new_and_removed_roots(tmp_path: Path) -> None:
    q = build_queue(tmp_path / "q", roots=2, frames=1)
    sc = QueueScanner(q.location, settle=0.0)
    sc.scan(None)
    q.deleteJobs(q.listJobs()[0])
    r = sc.scan(None)
    assert len(r.removed) == 1
    assert len(r.rootIds) == 1
    build = jobtree.JobQueue(q.location)
    with build.createJob("guiprocs:Group", label="x") as root:
        root.createJob("guiprocs:Frame")
    r = sc.scan(None)
    assert len(r.rootIds) == 2
    assert [s.spec.label for s in r.updated] == ["x"]


def test_running_progress_is_read_from_the_token(tmp_path: Path) -> None:
    q = build_queue(tmp_path / "q", roots=1, frames=1)
    sc = QueueScanner(q.location, settle=0.0)
    sc.scan(None)
    snap = sc.roots[q.listJobs()[0].rootId]
    # Claim by hand like a worker, then rewrite the claim with progress.
    from jobtree import _fs
    from jobtree._index import indexDir

    ready = indexDir(snap.rootDir, "ready")
    name = next(n for n in _fs.listNames(ready) if n.startswith("root.0000"))
    running = Path(indexDir(snap.rootDir, "running")) / "root.0000@abcdef012345"
    Path(ready, name).rename(running)
    running.write_text(
        '{"claim": "abcdef012345", "attempt": 1, "host": "node07", "progress": 40, "statusLine": "frame 4"}'
    )
    r = sc.scan(None)
    info = r.updated[0].running["root.0000"]
    assert (info.progress, info.statusLine, info.host) == (40, "frame 4", "node07")
    running.write_text(
        '{"claim": "abcdef012345", "attempt": 1, "host": "node07", "progress": 70, "statusLine": "frame 7"}'
    )
    r = sc.scan(None)
    assert r.updated[0].running["root.0000"].progress == 70
    assert "root.0000" in r.updated[0].changed


def test_mount_detection(tmp_path: Path) -> None:
    info = tmp_path / "mountinfo"
    info.write_text(
        "22 1 0:21 / / rw - ext4 /dev/vda rw\n"
        "30 22 0:40 / /mnt/farm rw - nfs4 server:/farm rw\n"
        "31 22 0:41 / /mnt/my\\040share rw - fuse.sshfs host:/x rw\n"
    )
    assert mountInfo("/mnt/farm/queue", str(info)) == ("/mnt/farm", "nfs4")
    assert mountInfo("/mnt/my share/q", str(info)) == ("/mnt/my share", "fuse.sshfs")
    assert mountInfo("/home/x", str(info)) == ("/", "ext4")
    assert isNetworkFs("nfs4")
    assert isNetworkFs("fuse.sshfs")
    assert isNetworkFs("cifs")
    assert not isNetworkFs("ext4")
    assert not isNetworkFs("xfs")
    assert not isNetworkFs("overlay")


def test_filter_parse() -> None:
    f = JobFilter.parse("Frame host:node07 shot:010 state:failed", ["running"])
    assert f.states == {"running", "failed"}
    assert f.words == ("frame",)
    assert f.hosts == ("node07",)
    assert f.meta == (("shot", "010"),)
    assert f.matches("frame 12", "x:Y", "node07", {"shot": "010"}, "root.0001")
    assert not f.matches("frame 12", "x:Y", "node08", {"shot": "010"}, "root.0001")
    assert JobFilter.parse("  ").isEmpty()
