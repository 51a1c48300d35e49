"""The ffmpeg procedure against the real ffmpeg and ffprobe: frames in, a checked movie out."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any, ClassVar

import pytest
from jobtree.procs._tool import FramePattern
from jobtree.procs.ffmpeg import FFmpeg
from testutil import require_tool, run_all

import jobtree


@pytest.fixture(scope="module")
def tools() -> tuple[str, str]:
    return require_tool("ffmpeg", "ffmpeg"), require_tool("ffprobe", "ffmpeg")


def output_of(*argv: str) -> str:
    return subprocess.run(argv, check=True, capture_output=True, text=True).stdout


@pytest.fixture(scope="module")
def sequence(tools: tuple[str, str], tmp_path_factory: pytest.TempPathFactory) -> Path:
    """12 distinct 64x48 PNG frames, frame_0001.png ... frame_0012.png (made once)."""
    d = tmp_path_factory.mktemp("frames")
    testsrc = "testsrc=size=64x48:rate=24"
    output_of(
        tools[0],
        "-loglevel",
        "error",
        "-f",
        "lavfi",
        "-i",
        testsrc,
        "-frames:v",
        "12",
        str(d / "frame_%04d.png"),
    )
    return d


def copy_of(sequence: Path, tmp_path: Path, without: tuple[int, ...] = ()) -> Path:
    d = tmp_path / "frames"
    shutil.copytree(sequence, d)
    for f in without:
        (d / f"frame_{f:04d}.png").unlink()
    return d


def probe(
    ffprobe: str, movie: Path, entries: str = "nb_read_frames,r_frame_rate,codec_name"
) -> dict[str, Any]:
    out = output_of(
        ffprobe,
        "-v",
        "error",
        "-select_streams",
        "v:0",
        "-count_frames",
        "-show_entries",
        f"stream={entries}",
        "-of",
        "json",
        str(movie),
    )
    stream: dict[str, Any] = json.loads(out)["streams"][0]
    return stream


def frame_md5s(ffmpeg: str, path: Path) -> list[str]:
    """The MD5 of every decoded frame (as rgb24) of a movie or an image."""
    out = output_of(
        ffmpeg, "-loglevel", "error", "-i", str(path), "-pix_fmt", "rgb24", "-f", "framemd5", "-"
    )
    return [line.rsplit(",", 1)[1].strip() for line in out.splitlines() if not line.startswith("#")]


def encode(
    queue: jobtree.JobQueue, jobType: object = "ffmpeg", **params: object
) -> jobtree.JobHandle:
    with queue.createJob(jobType, **params) as root:
        pass
    run_all(queue)
    return root.handle


class RecordingFFmpeg(FFmpeg):
    """FFmpeg that remembers every progress value and status line it reports."""

    progress: ClassVar[list[float]] = []
    statuses: ClassVar[list[str]] = []

    def setProgress(self, percent: float) -> None:
        RecordingFFmpeg.progress.append(percent)
        super().setProgress(percent)

    def setStatusLine(self, text: str) -> None:
        RecordingFFmpeg.statuses.append(text)
        super().setStatusLine(text)


def test_twelve_frames_become_an_mp4_that_ffprobe_confirms(
    queue: jobtree.JobQueue, sequence: Path, tools: tuple[str, str], tmp_path: Path
) -> None:
    movie = tmp_path / "out" / "shot.mp4"  # the directory is created
    RecordingFFmpeg.progress.clear()
    RecordingFFmpeg.statuses.clear()
    h = encode(queue, RecordingFFmpeg, input=str(sequence / "frame_####.png"), output=str(movie))
    assert h.state == jobtree.JobState.DONE, h.error
    assert h.result == {"output": str(movie), "frames": 12, "duration": 0.5}
    stream = probe(tools[1], movie)
    assert (stream["nb_read_frames"], stream["r_frame_rate"], stream["codec_name"]) == (
        "12",
        "24/1",
        "h264",
    )
    assert sorted(p.name for p in movie.parent.iterdir()) == ["shot.mp4"]  # no temp file left
    # Contiguous frames: image2 from the first frame, ffmpeg's -progress read for progress.
    assert "-f image2 -pattern_type sequence -framerate 24 -start_number 1" in h.stdout
    assert "-c:v libx264 -crf 18 -pix_fmt yuv420p" in h.stdout
    assert "progress=end" in h.stdout
    progress = RecordingFFmpeg.progress
    assert progress == sorted(progress)
    assert progress[-1] == 100
    assert 99 in progress  # frame=12 of 12, before ffprobe's check
    assert "encoding frame 12/12" in " ".join(RecordingFFmpeg.statuses)
    assert "checking shot.mp4 with ffprobe" in RecordingFFmpeg.statuses
    assert h.statusLine == f"wrote {movie} (12 frames, 0.5 s)"


def test_every_second_frame_is_encoded_exactly_and_in_order(
    queue: jobtree.JobQueue, sequence: Path, tools: tuple[str, str], tmp_path: Path
) -> None:
    # A lossless codec, so each movie frame can be compared with its source image.
    movie = tmp_path / "odd.mkv"
    h = encode(
        queue,
        input=str(sequence / "frame_%04d.png"),  # printf form
        output=str(movie),
        frames="1-11x2",
        frameRate=12,
        codec="png",
        pixelFormat="rgb24",
    )
    assert h.state == jobtree.JobState.DONE, h.error
    assert h.result == {"output": str(movie), "frames": 6, "duration": 0.5}
    assert probe(tools[1], movie)["r_frame_rate"] == "12/1"
    sources = [frame_md5s(tools[0], sequence / f"frame_{f:04d}.png")[0] for f in range(1, 12, 2)]
    assert frame_md5s(tools[0], movie) == sources
    listed = Path(h.location, "ffmpeg-frames.txt").read_text()
    assert listed.count("file '") == 6
    assert "frame_0011.png" in listed
    assert "frame_0002.png" not in listed


def test_a_missing_frame_fails_the_job_naming_it(
    queue: jobtree.JobQueue, sequence: Path, tmp_path: Path
) -> None:
    frames = copy_of(sequence, tmp_path, without=(7, 9))
    movie = tmp_path / "movie.mp4"
    explicit = encode(queue, input=str(frames / "frame_####.png"), output=str(movie), frames="1-12")
    found = encode(queue, input=str(frames / "frame_####.png"), output=str(movie))  # gap found
    for h in (explicit, found):
        assert h.state == jobtree.JobState.FAILED
        assert "2 of 12 input frames are missing" in (h.error or "")
        assert "frames 7,9" in (h.error or "")
        assert str(frames / "frame_0007.png") in (h.error or "")
        assert "jobtree: running" not in h.stdout  # ffmpeg never started
    assert not movie.exists()


def test_without_frames_all_frames_found_at_their_step_are_encoded(
    queue: jobtree.JobQueue, sequence: Path, tmp_path: Path
) -> None:
    frames = copy_of(sequence, tmp_path, without=(2, 4, 6, 8, 10, 12))
    h = encode(queue, input=str(frames / "frame_####.png"), output=str(tmp_path / "m.mp4"))
    assert h.state == jobtree.JobState.DONE, h.error
    assert h.result["frames"] == 6
    assert "-f concat" in h.stdout


def test_an_unknown_codec_fails_with_ffmpegs_message_and_leaves_no_file(
    queue: jobtree.JobQueue, sequence: Path, tmp_path: Path
) -> None:
    out = tmp_path / "out"
    out.mkdir()
    h = encode(
        queue, input=str(sequence / "frame_####.png"), output=str(out / "m.mp4"), codec="libnope"
    )
    assert h.state == jobtree.JobState.FAILED
    assert h.error == "ffmpeg exited with status 1; its errors:\nUnknown encoder 'libnope'"
    assert list(out.iterdir()) == []


def test_a_movie_with_the_wrong_frame_count_is_not_kept(
    queue: jobtree.JobQueue, sequence: Path, tmp_path: Path
) -> None:
    movie = tmp_path / "short.mp4"
    movie.write_bytes(b"the previous movie")
    h = encode(
        queue,
        input=str(sequence / "frame_####.png"),
        output=str(movie),
        extraArgs=["-frames:v", "5"],  # after jobtree's own -frames:v 12: ffmpeg stops at 5
    )
    assert h.state == jobtree.JobState.FAILED
    assert f"ffmpeg wrote 5 frames to {movie} but 12 were expected" in (h.error or "")
    assert "the movie was not kept" in (h.error or "")
    assert movie.read_bytes() == b"the previous movie"
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".")) == []


def test_ffprobe_is_required_and_found_by_parameter(
    queue: jobtree.JobQueue, sequence: Path, tmp_path: Path
) -> None:
    movie = tmp_path / "out" / "m.mp4"
    h = encode(
        queue, input=str(sequence / "frame_####.png"), output=str(movie), ffprobe="no-ffprobe-here"
    )
    assert h.state == jobtree.JobState.FAILED
    assert "ffprobe 'no-ffprobe-here' (from the job's 'ffprobe' parameter) was not found" in (
        h.error or ""
    )
    assert not movie.exists()
    # ffprobe failing on the movie: the movie is not kept either.
    h = encode(queue, input=str(sequence / "frame_####.png"), output=str(movie), ffprobe="false")
    assert h.state == jobtree.JobState.FAILED
    assert f"ffmpeg wrote {movie} but ffprobe could not read it" in (h.error or "")
    assert h.progress == 99  # ffmpeg's progress was read; the check failed
    assert list(movie.parent.iterdir()) == []


def test_user_filters_merge_with_the_procedures_and_odd_sizes_are_padded(
    queue: jobtree.JobQueue, sequence: Path, tools: tuple[str, str], tmp_path: Path
) -> None:
    movie = tmp_path / "odd-size.mp4"
    h = encode(
        queue,
        input=str(sequence / "frame_####.png"),
        output=str(movie),
        frames="2-12x2",
        quality=30,
        extraArgs=["-vf", "crop=63:47:0:0", "-preset", "ultrafast"],
    )
    assert h.state == jobtree.JobState.DONE, h.error
    assert "-vf 'settb=1/24,setpts=N,crop=63:47:0:0,pad=ceil(iw/2)*2:ceil(ih/2)*2'" in h.stdout
    assert "-crf 30" in h.stdout
    size = probe(tools[1], movie, "width,height")
    assert (size["width"], size["height"]) == (64, 48)


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"input": "/f/frame.png"}, "has no '#'"),
        ({"output": "/f/movie"}, "has no extension"),
        ({"frames": "5-1"}, "the end is before the start"),
        ({"frameRate": 0}, "frameRate must be above 0"),
        ({"frameRate": "fast"}, "not a number"),
        ({"quality": -1}, "quality must be an int >= 0"),
        ({"codec": "ffv1", "quality": 3}, "has no quality scale jobtree knows"),
        ({"extraArgs": "-an"}, "extraArgs must be a list of str"),
    ],
)
def test_bad_parameters_are_refused_at_submission(
    queue: jobtree.JobQueue, params: dict[str, object], message: str
) -> None:
    full: dict[str, object] = {"input": "/f/frame_####.png", "output": "/f/movie.mp4", **params}
    with pytest.raises(jobtree.SubmissionError, match=message):
        queue.createJob("ffmpeg", **full)


def test_ntsc_rates_are_exact(queue: jobtree.JobQueue) -> None:
    assert FFmpeg(input="f_#.png", output="m.mp4", frameRate=29.97).rate.denominator == 1001
    assert str(FFmpeg(input="f_#.png", output="m.mp4", frameRate="24000/1001").rate) == "24000/1001"
    assert FFmpeg(input="f_#.png", output="m.mp4", frameRate=12.5).rate == 12.5


def test_a_corrupt_frame_fails_the_job_with_ffmpegs_decode_errors(
    queue: jobtree.JobQueue, sequence: Path, tmp_path: Path
) -> None:
    # ffmpeg skips a frame it cannot decode and repeats the previous one in its slot, exiting
    # 0 with the right frame count: only its error lines tell.
    frames = copy_of(sequence, tmp_path)
    png = (frames / "frame_0005.png").read_bytes()
    (frames / "frame_0005.png").write_bytes(png[:300])
    movie = tmp_path / "m.mp4"
    h = encode(queue, input=str(frames / "frame_####.png"), output=str(movie))
    assert h.state == jobtree.JobState.FAILED
    error = h.error or ""
    assert error.startswith(f"ffmpeg reported errors encoding {movie} (it exited with status 0")
    assert "Invalid data found when processing input" in error
    assert "[png] " in error  # the decoder's own line, without its address and level
    assert not movie.exists()


def test_frame_patterns_read_like_blender_and_printf(tmp_path: Path) -> None:
    p = FramePattern("/out/#v2/shot_####.png")  # '#' in a directory is not the frame number
    assert (p.path(7), p.path(12345), p.path(-3)) == (
        "/out/#v2/shot_0007.png",
        "/out/#v2/shot_12345.png",
        "/out/#v2/shot_-003.png",
    )
    assert FramePattern("a_##_b_###.exr").path(5) == "a_##_b_005.exr"  # the last run
    assert FramePattern("100%%_%04d.png").path(5) == "100%_0005.png"
    assert FramePattern("f%d.png").path(5) == "f5.png"
    for name in ("f_0007.png", "f_07.png", "f_-003.png", "f_12345.png", "f_x.png", "g_0001.png"):
        (tmp_path / name).write_bytes(b"x")
    assert FramePattern(str(tmp_path / "f_####.png")).find() == [-3, 7, 12345]
    assert FramePattern("f_%02d.png").find(str(tmp_path)) == [7, 12345]
    with pytest.raises(ValueError, match="has no '#'"):
        FramePattern("/out/#v2/shot.png")
