"""End to end with the real programs: Blender renders 12 frames in chunks of 3 on two worker
processes of the daemon, ffmpeg encodes them in the root job, ffprobe confirms the movie."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

from blender_scene import make_scene
from jobtree.procs import submitAnimation
from testutil import require_tool, run_daemon

import jobtree

FRAMES = 12
CHUNK = 3


def test_blender_animation_renders_on_two_workers_and_encodes(tmp_path: Path) -> None:
    require_tool("blender", "blender")
    require_tool("ffmpeg", "ffmpeg")
    ffprobe = require_tool("ffprobe", "ffmpeg")
    scene = make_scene(tmp_path / "tiny.blend", frames=FRAMES)
    q = jobtree.createJobQueue(tmp_path / "q")
    out = tmp_path / "out"
    movie = out / "tiny.mp4"

    root = submitAnimation(
        q,
        str(scene),
        f"1-{FRAMES}",
        chunk=CHUNK,
        output=str(out / "tiny_####.png"),
        movie=str(movie),
    )
    assert root.jobType == "ffmpeg"
    chunks = root.listSubJobs()
    assert [c.label for c in chunks] == ["frames 1-3", "frames 4-6", "frames 7-9", "frames 10-12"]
    assert {c.jobType for c in chunks} == {"blender"}

    run_daemon(q, "--workers", "2", timeout=240)

    assert root.state == jobtree.JobState.DONE, f"{root.error}\n{root.stderr}"
    images = sorted(out.glob("tiny_*.png"))
    assert [p.name for p in images] == [f"tiny_{f:04d}.png" for f in range(1, FRAMES + 1)]
    assert all(p.stat().st_size > 0 for p in images)

    probe = subprocess.run(
        [
            ffprobe,
            "-v",
            "error",
            "-count_frames",
            "-select_streams",
            "v:0",
            "-show_entries",
            "stream=nb_read_frames,codec_name",
            "-of",
            "json",
            str(movie),
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    stream = json.loads(probe.stdout)["streams"][0]
    assert int(stream["nb_read_frames"]) == FRAMES
    assert stream["codec_name"] == "h264"
    assert root.result["output"] == str(movie)

    for job in [root, *chunks]:
        assert job.state == jobtree.JobState.DONE
        assert job.progress == 100, job
        assert job.attemptRecords()[-1]["progress"] == 100, job
    hosts_pids = set()
    for c in chunks:
        # Blender's own output is in the frame job's log.
        assert "Blender" in c.stdout
        assert "Saved: '" in c.stdout, c.stdout[-2000:]
        assert c.endTime is not None
        assert root.startTime is not None
        assert c.endTime <= root.startTime, "the encode started before a frame job was done"
        hosts_pids.add(c.pid)
        assert len(c.result["outputs"]) == CHUNK
    assert len(hosts_pids) == 2, "both worker processes should have rendered chunks"
