"""demo-render and animated-image: the demo farm's renderer and encoder (numpy + Pillow)."""

from __future__ import annotations

from pathlib import Path

import pytest
from jobtree.procs._tool import FramePattern
from jobtree.procs.demo import renderFrame
from PIL import Image
from testutil import run_all

import jobtree
from jobtree import JobState


def submit(queue: jobtree.JobQueue, jobType: str, **params: object) -> jobtree.JobHandle:
    with queue.createJob(jobType, **params) as root:
        pass
    run_all(queue)
    return root.handle


def test_demo_render_writes_each_frame_and_reports_it(queue, tmp_path):
    pattern = tmp_path / "out" / "frame_####.png"
    job = submit(queue, "demo-render", frames="1-3", output=str(pattern), frameCount=12)
    assert job.state == JobState.DONE, job.error
    assert job.label == "frames 1-3"
    outputs = [str(tmp_path / "out" / f"frame_{f:04d}.png") for f in (1, 2, 3)]
    assert job.result == {"frames": [1, 2, 3], "outputs": outputs}
    for path in outputs:
        with Image.open(path) as im:
            assert im.size == (320, 180)
            assert im.format == "PNG"
    assert job.progress == 100
    assert job.statusLine == "rendered 3 frame(s)"
    log = job.stdout
    assert "jobtree demo renderer: 3 frame(s) 1-3 at 320x180" in log
    for f, path in zip((1, 2, 3), outputs, strict=True):
        assert f"Fra:{f} | Time " in log
        assert f"Saved: '{path}'" in log
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == [Path(p).name for p in outputs]


def test_one_frame_a_relative_output_and_another_format(queue):
    job = submit(queue, "demo-render", frame=7, output="render/f_##.jpg", width=64, height=36)
    assert job.state == JobState.DONE, job.error
    assert job.label == "frame 7"
    (path,) = job.result["outputs"]
    assert path == f"{job.location}/render/f_07.jpg", "relative to the job's directory"
    with Image.open(path) as im:
        assert (im.format, im.size) == ("JPEG", (64, 36))


def test_frames_are_deterministic_and_loop():
    a, b = renderFrame(5, 80, 45, frameCount=12), renderFrame(5, 80, 45, frameCount=12)
    assert a.tobytes() == b.tobytes()
    assert renderFrame(6, 80, 45, frameCount=12).tobytes() != a.tobytes()
    # The motion loops every frameCount frames (only the frame number printed in it differs).
    crop = (0, 0, 80, 30)
    assert renderFrame(17, 80, 45, 12).crop(crop).tobytes() == a.crop(crop).tobytes()


def test_an_output_directory_that_cannot_be_made_fails_clearly(queue, tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    job = submit(queue, "demo-render", frames="1-2", output=str(blocker / "f_####.png"))
    assert job.state == JobState.FAILED
    assert job.error.startswith(f"demo-render cannot create the output directory {blocker}: ")


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"frames": "1-3", "output": "/o/f.png"}, "has no '#' (or printf %04d) in its file name"),
        ({"frames": "1-3", "output": "/o/f_####.exr"}, "unknown extension .exr; use one of"),
        ({"frame": 1, "frames": "1-3", "output": "/o/f_#.png"}, "exactly one of 'frame'"),
        ({"output": "/o/f_#.png"}, "exactly one of 'frame'"),
        ({"frames": "3-1", "output": "/o/f_#.png"}, "the end is before the start"),
        ({"frame": 1, "output": "/o/f_#.png", "width": 2}, "2x180 is not a size it renders"),
        ({"frame": 1, "output": "/o/f_#.png", "frameCount": 0}, "frameCount must be at least 1"),
    ],
)
def test_demo_render_refuses_bad_parameters(queue, params, message):
    with pytest.raises(jobtree.SubmissionError) as info:
        queue.createJob("demo-render", **params)
    assert message in str(info.value)


@pytest.fixture
def frames(tmp_path: Path) -> str:
    """Four small demo frames; returns their pattern."""
    pattern = str(tmp_path / "seq" / "f_####.png")
    (tmp_path / "seq").mkdir()
    for f in range(1, 5):
        renderFrame(f, 64, 36, frameCount=4).save(FramePattern(pattern).path(f))
    return pattern


@pytest.mark.parametrize(("ext", "fmt"), [(".gif", "GIF"), (".webp", "WEBP"), (".png", "PNG")])
def test_animated_image_in_each_format(queue, frames, tmp_path, ext, fmt):
    movie = tmp_path / "movie" / f"demo{ext}"
    job = submit(
        queue, "animated-image", input=frames, frames="1-4", output=str(movie), frameRate=10
    )
    assert job.state == JobState.DONE, job.error
    assert job.result == {"output": str(movie), "frames": 4}
    assert job.progress == 100
    with Image.open(movie) as im:
        assert im.format == fmt
        assert im.is_animated
        assert im.n_frames == 4
        assert im.size == (64, 36)
        im.seek(1)
        im.load()
        assert im.info["duration"] == 100, "ms per frame at 10 fps"
    assert [p.name for p in movie.parent.iterdir()] == [movie.name], "no temporary file left"


def test_animated_image_finds_every_frame_when_frames_are_not_given(queue, frames, tmp_path):
    job = submit(queue, "animated-image", input=frames, output=str(tmp_path / "all.gif"))
    assert job.state == JobState.DONE, job.error
    assert job.result["frames"] == 4


def test_animated_image_lists_the_missing_frames(queue, frames, tmp_path):
    movie = tmp_path / "m.gif"
    job = submit(queue, "animated-image", input=frames, frames="1-7", output=str(movie))
    assert job.state == JobState.FAILED
    missing = ", ".join(FramePattern(frames).path(f) for f in (5, 6, 7))
    assert job.error == (
        f"animated-image is missing 3 of 7 input frames: {missing}; render them first "
        "(or fix 'input'/'frames')"
    )
    assert not movie.exists()

    job = submit(queue, "animated-image", input=str(tmp_path / "none_##.png"), output=str(movie))
    assert (
        job.error
        == f"animated-image found no frames for {tmp_path / 'none_##.png'}; render them first"
    )


@pytest.mark.parametrize(
    ("params", "message"),
    [
        (
            {"input": "/s/f_#.png", "output": "/m.mp4"},
            "unknown extension .mp4; use one of .gif, .png, .webp",
        ),
        ({"input": "/s/f.png", "output": "/m.gif"}, "has no '#' (or printf %04d) in its file name"),
        ({"input": "/s/f_#.png", "output": "/m.gif", "frameRate": 0}, "frameRate must be a number"),
    ],
)
def test_animated_image_refuses_bad_parameters(queue, params, message):
    with pytest.raises(jobtree.SubmissionError) as info:
        queue.createJob("animated-image", **params)
    assert message in str(info.value)
