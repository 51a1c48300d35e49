"""submitAnimation: the tree it builds, and whole animations with the demo renderer run in this
process and by the worker daemon, with the e-mail hooks delivering to a real SMTP server."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from jobtree.procs import submitAnimation
from PIL import Image
from smtp_util import SmtpServer, text_of
from testutil import run_all, run_daemon

import jobtree
from jobtree import JobState


@pytest.fixture
def smtp() -> Iterator[SmtpServer]:
    server = SmtpServer().start()
    yield server
    server.stop()


def tree(root: jobtree.JobHandle) -> list[tuple[str, str | None, dict]]:
    return [(j.jobType, j.label, j.params) for j in [root, *root.listSubJobs()]]


# -- the tree --------------------------------------------------------------------------------------


def test_a_blender_animation_is_an_encode_over_one_job_per_chunk(queue, tmp_path):
    scene = tmp_path / "shot010.blend"
    scene.write_bytes(b"")  # no Blender needed to build the tree
    out = tmp_path / "out"
    root = submitAnimation(
        queue,
        str(scene),
        "1-10",
        chunk=3,
        output=str(out / "shot010_####.png"),
        priority=5,
        jobOptions={"maxAttempts": 2},
        renderParams={"engine": "CYCLES"},
        encodeParams={"quality": 18},
    )
    pattern = str(out / "shot010_####.png")
    common = {"scene": str(scene), "output": pattern, "format": "PNG", "engine": "CYCLES"}
    assert tree(root) == [
        (
            "ffmpeg",
            "shot010",
            {
                "input": pattern,
                "output": str(out / "shot010.mp4"),
                "frames": "1-10",
                "frameRate": 24,
                "quality": 18,
            },
        ),
        ("blender", "frames 1-3", {**common, "frames": "1-3"}),
        ("blender", "frames 4-6", {**common, "frames": "4-6"}),
        ("blender", "frames 7-9", {**common, "frames": "7-9"}),
        ("blender", "frame 10", {**common, "frames": "10"}),
    ]
    jobs = [root, *root.listSubJobs()]
    assert {(j.jobOptions["priority"], j.jobOptions["maxAttempts"]) for j in jobs} == {(5, 2)}
    assert root.state == JobState.WAITING
    assert {c.state for c in root.listSubJobs()} == {JobState.READY}
    assert not os.path.exists(os.path.join(root.location, "hooks.json")), "no notify, no hooks"


def test_a_directory_output_names_frames_after_the_scene(queue, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    root = submitAnimation(
        queue, "shots/shot020.blend", "1-20x5", chunk=2, output="out/", movie="shot020.webm"
    )
    assert root.label == "shot020"
    assert root.params == {
        "input": str(tmp_path / "out" / "shot020_####.png"),
        "output": str(tmp_path / "shot020.webm"),
        "frames": "1-16x5",
        "frameRate": 24,
        "codec": "libvpx-vp9",
    }
    chunks = root.listSubJobs()
    assert [c.label for c in chunks] == ["frames 1,6", "frames 11,16"]
    assert chunks[0].params["scene"] == str(tmp_path / "shots" / "shot020.blend")
    assert chunks[0].params["frames"] == "1,6"

    root = submitAnimation(
        queue, "shot030.blend", [4, 5, 6], output="out/f_####.exr", encode=False, label="lighting"
    )
    assert (root.jobType, root.label, root.params) == ("command", "lighting", {})
    (chunk,) = root.listSubJobs()
    assert (chunk.label, chunk.params["format"]) == ("frames 4-6", "OPEN_EXR")


def test_notify_adds_done_and_failed_hooks_reporting_on_the_root(queue, tmp_path):
    root = submitAnimation(
        queue,
        None,
        "1-2",
        output=str(tmp_path / "out") + "/",
        renderer="demo",
        movie=str(tmp_path / "demo.gif"),
        notify={
            "to": ["ana@example.com", "bo@example.com"],
            "host": "mail.example.com",
            "port": 2525,
        },
    )
    import json

    hooks = json.loads(Path(root.location, "hooks.json").read_text())
    assert [(h["when"], h["jobType"], h["label"]) for h in hooks] == [
        ("done", "email", "e-mail: demo animation done"),
        ("failed", "email", "e-mail: demo animation failed"),
    ]
    for h in hooks:
        assert h["params"] == {
            "to": ["ana@example.com", "bo@example.com"],
            "host": "mail.example.com",
            "port": 2525,
            "about": root.location,
        }
        assert h["jobOptions"] == {"maxAttempts": 3, "retryDelay": 60.0}


@pytest.mark.parametrize(
    ("args", "kwargs", "error", "message"),
    [
        (
            ("s.blend", "1-10"),
            {"chunk": 0, "output": "/o/"},
            ValueError,
            "chunk must be a number of frames per job",
        ),
        (("s.blend", []), {"output": "/o/"}, ValueError, "give a non-empty list of ints"),
        (("s.blend", "10-1"), {"output": "/o/"}, ValueError, "the end is before the start"),
        (("s.blend", "1-10"), {}, ValueError, "output is required for renderer 'blender'"),
        (
            ("s.blend", "1-10"),
            {"output": "/o/s.png"},
            ValueError,
            "neither a frame pattern nor a directory",
        ),
        (("s.blend", "1-10"), {"output": "/o/s_####"}, ValueError, "has no file extension"),
        (
            ("s.blend", "1-10"),
            {"output": "/o/", "renderer": "maya"},
            ValueError,
            "unknown renderer 'maya'",
        ),
        (
            ("s.blend", "1-10"),
            {"output": "/o/", "movie": "/o/s.avi"},
            ValueError,
            "unknown extension .avi",
        ),
        (
            ("s.blend", "1-10"),
            {"output": "/o/", "movie": "/o/s.mp4", "encode": False},
            ValueError,
            "encode=False",
        ),
        (
            ("s.blend", "1-10"),
            {"output": "/o/", "notify": {"host": "m"}},
            ValueError,
            "notify needs 'to'",
        ),
        (
            ("s.blend", "1-10"),
            {"output": "/o/", "notify": 42},
            TypeError,
            "notify must be an address",
        ),
        (
            ("s.blend", "1-10"),
            {"output": "/o/", "renderParams": {"frames": "1"}},
            ValueError,
            "renderParams must not set frames",
        ),
        ((None, "1-10"), {"output": "/o/"}, TypeError, "scene must be the path of a .blend file"),
        (
            ("s.blend", "1-10"),
            {"output": "/o/", "notify": "not an address"},
            jobtree.JobTreeError,
            "is not an e-mail address",
        ),
        (
            ("s.blend", "1-10"),
            {"output": "/o/", "renderParams": {"threads": -1}},
            jobtree.SubmissionError,
            "threads must be an int from 0 to 1024",
        ),
    ],
)
def test_bad_arguments_are_refused_and_nothing_is_submitted(queue, args, kwargs, error, message):
    with pytest.raises(error) as info:
        submitAnimation(queue, *args, **kwargs)
    assert message in str(info.value)
    assert queue.listJobs() == []
    assert os.listdir(os.path.join(queue.location, "staging")) == []


def test_the_queue_may_be_given_as_a_path(queue, tmp_path):
    root = submitAnimation(
        str(queue.location), None, 1, output=str(tmp_path) + "/", renderer="demo", encode=False
    )
    assert root.label == "demo animation"
    assert [c.label for c in root.listSubJobs()] == ["frame 1"]


# -- whole animations ------------------------------------------------------------------------------


def check_animation(root: jobtree.JobHandle, out: Path, movie: Path, frames: int) -> None:
    """Every frame on disk, the movie with every frame, progress 100 on every job, and every
    chunk finished before the encode started."""
    assert root.state == JobState.DONE, f"{root.error}\n{root.stderr}"
    assert sorted(p.name for p in out.glob("frame_*.png")) == [
        f"frame_{f:04d}.png" for f in range(1, frames + 1)
    ]
    with Image.open(movie) as im:
        assert im.format == "GIF"
        assert im.n_frames == frames
        assert im.size == (320, 180)
    assert root.result == {"output": str(movie), "frames": frames}
    chunks = root.listSubJobs()
    for job in [root, *chunks]:
        assert job.state == JobState.DONE
        assert job.progress == 100
    start = root.startTime
    assert start is not None
    for c in chunks:
        assert c.endTime is not None
        assert c.endTime <= start, f"{c.label} ended after the encode started"
        assert "Fra:" in c.stdout
        assert c.result["outputs"] == [str(out / f"frame_{f:04d}.png") for f in c.result["frames"]]


def test_a_demo_animation_runs_and_encodes_a_gif(queue, tmp_path):
    out, movie = tmp_path / "out", tmp_path / "out" / "demo.gif"
    root = submitAnimation(
        queue, None, "1-6", chunk=2, output=str(out) + "/", renderer="demo", movie=str(movie)
    )
    assert run_all(queue) == 4
    check_animation(root, out, movie, 6)


def test_two_worker_processes_render_the_chunks_then_encode_then_mail(queue, tmp_path, smtp):
    out, movie = tmp_path / "out", tmp_path / "out" / "demo.gif"
    root = submitAnimation(
        queue,
        None,
        "1-12",
        chunk=2,
        output=str(out) + "/",
        renderer="demo",
        movie=str(movie),
        notify={"to": "ana@example.com", "host": "127.0.0.1", "port": smtp.port},
    )
    run_daemon(queue, "--workers", "2")
    check_animation(root, out, movie, 12)
    pids = {c.pid for c in root.listSubJobs()}
    assert os.getpid() not in pids
    assert len(pids) == 2, "both worker processes should have rendered chunks"

    # The done hook ran as a root of its own, run by the same workers.
    (mail,) = smtp.wait_for(1)
    assert mail["to"] == ["ana@example.com"]
    assert mail["message"]["Subject"] == "[jobtree] demo animation: done"
    body = text_of(mail["message"])
    assert f"Directory:  {root.location}" in body
    assert "Jobs:       7 in all: 7 done" in body
    assert f"Output:     {movie}" in body
    hooks = [r for r in queue.listJobs() if r.rootId != root.rootId]
    assert [(h.jobType, h.label, h.state) for h in hooks] == [
        ("email", "e-mail: demo animation done", JobState.DONE)
    ]


def test_a_failed_render_sends_the_failed_mail(queue, tmp_path, smtp):
    blocker = tmp_path / "blocker"
    blocker.write_text("a file where the frames' directory should be")
    root = submitAnimation(
        queue,
        None,
        "1-4",
        chunk=2,
        output=str(blocker / "frames") + "/",
        renderer="demo",
        movie=str(tmp_path / "demo.gif"),
        notify={"to": "ana@example.com", "host": "127.0.0.1", "port": smtp.port},
    )
    run_all(queue)
    assert root.state == JobState.BLOCKED
    (mail,) = smtp.wait_for(1)
    subject = mail["message"]["Subject"]
    assert subject.startswith("[jobtree] demo animation: failed (")
    body = text_of(mail["message"])
    assert "Failed jobs (" in body
    assert f"demo-render cannot create the output directory {blocker / 'frames'}" in body
    assert f"jobtree retry {root.location}" in body
    hooks = [r for r in queue.listJobs() if r.rootId != root.rootId]
    assert [(h.label, h.state) for h in hooks] == [("e-mail: demo animation failed", JobState.DONE)]
