"""The ``blender`` procedure: its command line, its reading of Blender's output, and real renders
of a tiny scene with Debian's Blender (Cycles on the CPU) through the queue, failures included."""

from __future__ import annotations

import os
import stat
import sys
from pathlib import Path
from typing import Any

import pytest
from blender_scene import make_scene
from jobtree.procs.blender import PROBE_EXPR, PROBE_PREFIX, Blender, parseStatus
from testutil import require, run_all

import jobtree
from jobtree import JobState

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"

# -- Blender's output, recorded ---------------------------------------------------------------
# Blender 3.4.1 (Debian) rendering frame 1 of the tiny scene (`blender -b tiny.blend -o
# /tmp/blx/out/f_#### -s 1 -e 3 -a`), with 30 "Updating ..." lines left out.
FRAME_1 = """\
Fra:1 Mem:8.48M (Peak 10.20M) | Time:00:00.00 | Mem:0.00M, Peak:0.00M | Scene, ViewLayer | Synchronizing object | Cube
Fra:1 Mem:8.48M (Peak 10.20M) | Time:00:00.00 | Mem:0.00M, Peak:0.00M | Scene, ViewLayer | Initializing
Fra:1 Mem:8.38M (Peak 10.20M) | Time:00:00.00 | Mem:0.00M, Peak:0.00M | Scene, ViewLayer | Loading render kernels (may take a few minutes the first time)
Fra:1 Mem:8.89M (Peak 10.20M) | Time:00:00.03 | Mem:0.00M, Peak:0.00M | Scene, ViewLayer | Updating Scene BVH | Building BVH 0%
Fra:1 Mem:9.39M (Peak 10.20M) | Time:00:00.04 | Mem:0.76M, Peak:0.76M | Scene, ViewLayer | Sample 0/4
Fra:1 Mem:9.50M (Peak 10.20M) | Time:00:00.04 | Remaining:00:00.00 | Mem:0.86M, Peak:0.86M | Scene, ViewLayer | Sample 1/4
Fra:1 Mem:9.55M (Peak 10.20M) | Time:00:00.04 | Mem:0.86M, Peak:0.86M | Scene, ViewLayer | Sample 4/4
Fra:1 Mem:9.55M (Peak 10.20M) | Time:00:00.04 | Mem:0.86M, Peak:0.86M | Scene, ViewLayer | Finished
Saved: '/tmp/blx/out/f_0001.png'
 Time: 00:00.18 (Saving: 00:00.13)
"""


def recorded(frames: list[int]) -> list[str]:
    """Blender's output for *frames*: FRAME_1 renumbered for each, framed as Blender frames it."""
    lines = ["Blender 3.4.1", "Read blend: /tmp/blx/tiny.blend"]
    for f in frames:
        lines += FRAME_1.replace("Fra:1 ", f"Fra:{f} ").replace("0001", f"{f:04d}").splitlines()
        lines.append("")
    return [*lines, "", "Blender quit"]


class Recorder(Blender):
    """A Blender procedure fed lines by hand: progress and status are recorded, not written."""

    def __init__(self, **params: Any) -> None:
        super().__init__(**params)
        self.progressLog: list[float] = []
        self.statusLog: list[str] = []

    def setProgress(self, percent: float) -> None:
        self.progressLog.append(percent)

    def setStatusLine(self, text: str) -> None:
        self.statusLog.append(text)

    def feed(self, lines: list[str], stream: str = "stdout") -> None:
        for nr, line in enumerate(lines, 1):
            (self.stdoutCallback if stream == "stdout" else self.stderrCallback)(nr, line)


# -- the command line ----------------------------------------------------------------------------


def test_argv_puts_the_file_first_and_the_render_action_last() -> None:
    b = Blender(
        scene="/farm/shot.blend",
        frames="1-3",
        sceneName="Shot",
        engine="CYCLES",
        output="/farm/out/f_####",
        format="PNG",
        threads=4,
        extraArgs=["-y", "--python", "setup.py"],
    )
    assert b.commandArgs() == [
        "-b", "/farm/shot.blend",
        "-S", "Shot", "-E", "CYCLES", "-o", "/farm/out/f_####", "-F", "PNG", "-t", "4",
        "-y", "--python", "setup.py",
        "-s", "1", "-e", "3", "-j", "1",
        "--python-expr", PROBE_EXPR,
        "-a",
    ]  # fmt: skip


def test_argv_with_only_a_scene_renders_the_files_own_range() -> None:
    assert Blender(scene="shot.blend").commandArgs() == [
        "-b", "shot.blend", "--python-expr", PROBE_EXPR, "-a"
    ]  # fmt: skip


@pytest.mark.parametrize(
    ("frames", "render"),
    [
        (None, ["-a"]),
        (7, ["-f", "7"]),
        ("0", ["-f", "0"]),
        ("1-3", ["-s", "1", "-e", "3", "-j", "1", "-a"]),
        ("1,3", ["-s", "1", "-e", "3", "-j", "2", "-a"]),
        ("1-9x2", ["-s", "1", "-e", "9", "-j", "2", "-a"]),
        ([10, 20, 30], ["-s", "10", "-e", "30", "-j", "10", "-a"]),
        ("1,2,4", ["-f", "1,2,4"]),
        ("1-3,7,10-12", ["-f", "1..3,7,10..12"]),
        ("5,1", ["-f", "5,1"]),
        ([3, 2, 1], ["-f", "3,2,1"]),
    ],
)
def test_frames_become_blender_options(frames: Any, render: list[str]) -> None:
    args = Blender(scene="s.blend", frames=frames).commandArgs()
    assert args[:2] == ["-b", "s.blend"]
    rest = args[2:]
    probe = rest.index("--python-expr")
    assert rest[probe + 1] == PROBE_EXPR
    assert rest[:probe] + rest[probe + 2 :] == render
    assert rest[probe + 2] in ("-a", "-f"), "the probe runs just before the render action"


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({"threads": 0}, ["-t", "0"]),
        ({"sceneName": "Shot 2"}, ["-S", "Shot 2"]),
        ({"engine": "cycles"}, ["-E", "CYCLES"]),  # Blender knows only the upper-case ids
        ({"engine": "octane"}, ["-E", "octane"]),  # an add-on engine keeps its spelling
        ({"format": "png"}, ["-F", "PNG"]),
        ({"format": "OPEN_EXR"}, ["-F", "OPEN_EXR"]),
        ({"output": "//render/f_####"}, ["-o", "//render/f_####"]),
    ],
)
def test_each_option_alone(params: dict[str, Any], expected: list[str]) -> None:
    args = Blender(scene="s.blend", frames=1, **params).commandArgs()
    assert args == ["-b", "s.blend", *expected, "--python-expr", PROBE_EXPR, "-f", "1"]


def test_extra_args_after_a_double_dash_go_after_the_render_action() -> None:
    # Blender stops reading its options at "--": a render action after it would never run.
    args = Blender(
        scene="s.blend", frames=2, extraArgs=["--python", "x.py", "--", "--shot", "010"]
    ).commandArgs()
    assert args == [
        "-b", "s.blend", "--python", "x.py",
        "--python-expr", PROBE_EXPR, "-f", "2",
        "--", "--shot", "010",
    ]  # fmt: skip


def test_a_scene_path_starting_with_a_dash_is_not_read_as_an_option() -> None:
    assert Blender(scene="-x.blend").commandArgs()[:2] == ["-b", "./-x.blend"]


@pytest.mark.parametrize(
    ("params", "error", "words"),
    [
        ({"scene": ""}, ValueError, "scene must be"),
        ({"scene": None}, TypeError, "scene must be"),
        ({"scene": 3}, TypeError, "scene must be"),
        ({"frames": "1-x"}, ValueError, "frames: bad frame range '1-x'"),
        ({"frames": "5-1"}, ValueError, "frames: bad frame range"),
        ({"frames": []}, ValueError, "frames:"),
        ({"frames": "-3"}, ValueError, "frames: Blender cannot render frame -3"),
        ({"frames": True}, ValueError, "frames:"),
        ({"sceneName": ""}, ValueError, "sceneName"),
        ({"output": ""}, ValueError, "output"),
        ({"output": 5}, TypeError, "output"),
        ({"engine": "eevee"}, ValueError, "did you mean 'BLENDER_EEVEE'"),
        ({"engine": ""}, ValueError, "engine"),
        ({"format": "exr"}, ValueError, "did you mean 'OPEN_EXR'"),
        ({"format": "jpg"}, ValueError, "did you mean 'JPEG'"),
        ({"format": "FFMPEG", "frames": "1,2,4"}, ValueError, "not an evenly spaced range"),
        ({"threads": -1}, ValueError, "threads must be an int from 0 to 1024"),
        ({"threads": 1.5}, ValueError, "threads"),
        ({"threads": True}, ValueError, "threads"),
        ({"threads": "4"}, ValueError, "threads"),
        ({"extraArgs": "-y"}, TypeError, "extraArgs must be a list of str"),
        ({"extraArgs": ["-t", 4]}, TypeError, "extraArgs"),
        ({"env": {"A": 1}}, TypeError, "env must map"),
        ({"executable": ""}, TypeError, "executable"),
    ],
)
def test_bad_parameters_are_refused_naming_the_parameter(
    params: dict[str, Any], error: type[Exception], words: str
) -> None:
    params = {"scene": "s.blend", **params}
    with pytest.raises(error, match=words):
        Blender(**params)


def test_bad_parameters_are_refused_at_submission(queue: jobtree.JobQueue) -> None:
    with (
        pytest.raises(jobtree.SubmissionError, match="threads must be an int"),
        queue.createJob("blender", scene="s.blend", threads=-2),
    ):
        pass
    assert queue.listJobs() == []


# -- reading Blender's output ------------------------------------------------------------------


def test_progress_and_status_from_a_recorded_three_frame_render() -> None:
    b = Recorder(scene="tiny.blend", frames="1-3")
    b.feed(recorded([1, 2, 3]))
    assert list(b.done) == [1, 2, 3]
    assert b.outputs == [f"/tmp/blx/out/f_000{f}.png" for f in (1, 2, 3)]
    assert b.progressLog == sorted(b.progressLog), "progress never goes back"
    assert b.progressLog[-1] == 100
    # samples 1/4 of the second frame: (1 + 1/4) / 3
    assert round(100 * 1.25 / 3, 2) in b.progressLog
    assert "frame 1 (1 of 3): Synchronizing object: Cube" in b.statusLog
    assert "frame 1 (1 of 3): Loading render kernels (may take a few minutes the first time)" in (
        b.statusLog
    )
    assert "frame 2 (2 of 3): sample 1/4, 00:00.00 left" in b.statusLog
    assert "frame 3 (3 of 3): sample 4/4" in b.statusLog
    assert b.statusLog[-1] == "frame 3 (3 of 3): saved"
    assert b.errorLines == []


def test_progress_before_the_first_sample_and_after_each_frame() -> None:
    b = Recorder(scene="tiny.blend", frames="1-4")
    lines = recorded([1, 2])
    b.feed(lines[: lines.index("Saved: '/tmp/blx/out/f_0001.png'")])
    assert b.progressLog[-1] == 25  # "Finished": all of frame 1, not yet saved
    b.feed(lines)
    assert b.progressLog[-1] == 50


@pytest.mark.parametrize(
    ("line", "status", "fraction", "remaining"),
    [
        # Blender 3.4 (recorded here): Cycles, small and tiled images; Eevee
        (
            "Fra:1 Mem:9.50M (Peak 10.20M) | Time:00:00.04 | Remaining:00:00.00 | "
            "Mem:0.86M, Peak:0.86M | Scene, ViewLayer | Sample 1/4",
            "sample 1/4",
            0.25,
            "00:00.00",
        ),
        (
            "Fra:1 Mem:9.57M (Peak 10.20M) | Time:00:00.03 | Remaining:00:00.04 | "
            "Mem:0.93M, Peak:0.93M | Scene, ViewLayer | Rendered 1/20 Tiles, Sample 1/3",
            "tiles 1/20, sample 1/3",
            (1 + 1 / 3) / 20,
            "00:00.04",
        ),
        (
            "Fra:1 Mem:9.56M (Peak 10.20M) | Time:00:00.03 | Remaining:00:00.05 | "
            "Mem:0.92M, Peak:0.92M | Scene, ViewLayer | Rendered 1/20 Tiles, Sample 3/3",
            "tiles 1/20, sample 3/3",
            1 / 20,
            "00:00.05",
        ),
        (
            "Fra:1 Mem:10.23M (Peak 11.34M) | Time:00:03.84 | Rendering 26 / 64 samples",
            "sample 26/64",
            26 / 64,
            None,
        ),
        (
            "Fra:1 Mem:10.22M (Peak 11.34M) | Time:00:00.97 | Syncing Cube",
            "Syncing Cube",
            None,
            None,
        ),
        (
            "Fra:1 Mem:9.55M (Peak 10.20M) | Time:00:00.04 | Mem:0.86M, Peak:0.86M | "
            "Scene, ViewLayer | Finished",
            "finished",
            1.0,
            None,
        ),
        # the forms of Blender 2.7x-2.9x
        (
            "Fra:10 Mem:17.52M (0.00M, Peak 33.47M) | Time:00:04.17 | Remaining:00:00.87 | "
            "Mem:1.42M, Peak:1.42M | Scene, RenderLayer | Path Tracing Tile 110/135",
            "tiles 110/135",
            110 / 135,
            "00:00.87",
        ),
        (
            "Fra:1 Mem:30.00M (0.00M, Peak 31.00M) | Time:00:01.00 | Mem:2.00M, Peak:2.00M | "
            "Scene, View Layer | Path Tracing Sample 32/128",
            "sample 32/128",
            0.25,
            None,
        ),
        (
            "Fra:1 Mem:30.00M (0.00M, Peak 31.00M) | Time:00:01.00 | Mem:2.00M, Peak:2.00M | "
            "Scene, View Layer | Path Tracing Tile 4/4, Sample 1024/4096",
            "tiles 4/4, sample 1024/4096",
            0.25,
            None,
        ),
    ],
)
def test_parse_status(
    line: str, status: str, fraction: float | None, remaining: str | None
) -> None:
    got = parseStatus(line)
    assert got[0] == status
    assert got[1] == (pytest.approx(fraction) if fraction is not None else None)
    assert got[2] == remaining


def test_tiles_count_in_the_frames_progress() -> None:
    b = Recorder(scene="t.blend", frames=1)
    head = (
        "Fra:1 Mem:9.56M (Peak 10.20M) | Time:00:00.03 | Mem:0.92M, Peak:0.92M | Scene, ViewLayer"
    )
    b.feed([f"{head} | Rendered {t}/4 Tiles, Sample {s}/2" for t in range(4) for s in (1, 2)])
    assert b.progressLog == sorted(b.progressLog)
    assert b.progressLog[-1] == 87.5  # three tiles done, the fourth at sample 1 of 2
    assert b.statusLog[-1] == "frame 1 (1 of 1): tiles 3/4, sample 2/2"


def test_a_python_traceback_is_kept_whole_as_error_lines() -> None:
    b = Recorder(scene="tiny.blend", frames=1)
    b.feed(
        [  # recorded: `blender -b tiny.blend --python bad.py -f 1`
            "Blender 3.4.1",
            "Read blend: /tmp/blx/tiny.blend",
            "Error: Python: Traceback (most recent call last):",
            '  File "/tmp/blx/bad.py", line 5, in <module>',
            "    f()",
            '  File "/tmp/blx/bad.py", line 4, in f',
            '    raise ValueError("bad thing")',
            "ValueError: bad thing",
            *recorded([1])[2:],
        ]
    )
    assert b.pythonErrors == 1
    assert b.errorLines == [
        "Error: Python: Traceback (most recent call last):",
        '  File "/tmp/blx/bad.py", line 5, in <module>',
        "    f()",
        '  File "/tmp/blx/bad.py", line 4, in f',
        '    raise ValueError("bad thing")',
        "ValueError: bad thing",
    ]
    assert list(b.done) == [1]


def test_a_traceback_on_stderr_without_blenders_error_line_counts_too() -> None:
    b = Recorder(scene="tiny.blend", frames=1)
    b.feed(
        [
            "Traceback (most recent call last):",
            '  File "/farm/handlers.py", line 3, in pre',
            "KeyError: 'rig'",
        ],
        stream="stderr",
    )
    assert b.errorLines[0] == "Traceback (most recent call last):"
    assert b.errorLines[-1] == "KeyError: 'rig'"


def test_blenders_own_errors_are_error_lines_but_its_memory_report_is_not() -> None:
    b = Recorder(scene="tiny.blend", frames=1)
    b.feed(
        [
            "Error: Build without OpenImageDenoiser",
            "Can't find scene: 'Nope' in file: '/tmp/blx/tiny.blend'",
            "Error: Not freed memory blocks: 2, total unfreed memory 0.001 MB",
            "EGL Error (0x3001): EGL_NOT_INITIALIZED: EGL is not initialized",
        ]
    )
    assert b.errorLines == [
        "Error: Build without OpenImageDenoiser",
        "Can't find scene: 'Nope' in file: '/tmp/blx/tiny.blend'",
    ]


def test_skipped_existing_frames_count_as_done_in_order() -> None:
    b = Recorder(scene="tiny.blend", frames="1-3")
    b.feed(  # recorded with render.use_overwrite = False and frames 1-2 already on disk
        [
            'skipping existing frame "/tmp/blx/out2/f_0001.png"',
            'skipping existing frame "/tmp/blx/out2/f_0002.png"',
            *recorded([3])[2:],
        ]
    )
    assert list(b.done) == [1, 2, 3]
    assert b.outputs[:2] == ["/tmp/blx/out2/f_0001.png", "/tmp/blx/out2/f_0002.png"]
    assert b.progressLog[:2] == [33.33, 66.67]


def test_movie_frames_are_appended_frames() -> None:
    b = Recorder(scene="tiny.blend", frames="2-3", format="FFMPEG")
    b.feed(
        [
            'jobtree-blender: {"scene": "Scene", "start": 1, "end": 12, "step": 1, '
            '"movie": true, "moviePath": "/tmp/blx/mv/f_0001-0012.mpg"}',
            "Append frame 2",
            " Time: 00:00.16 (Saving: 00:00.11)",
            "Append frame 3",
        ]
    )
    assert list(b.done) == [2, 3]
    assert b.probe["moviePath"] == "/tmp/blx/mv/f_0001-0012.mpg"
    assert b.progressLog[-1] == 100


def test_the_probe_gives_the_files_range_when_frames_is_none() -> None:
    b = Recorder(scene="tiny.blend")
    b.feed([PROBE_PREFIX + '{"scene": "Scene", "start": 1, "end": 9, "step": 4}'])
    assert b.expected == [1, 5, 9]
    b.feed(recorded([1]))
    assert b.statusLog[-1] == "frame 1 (1 of 3): saved"


# -- real renders ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def scene(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tiny scene with frames 1-3 (made once for this module: Blender takes ~1.5 s)."""
    return make_scene(tmp_path_factory.mktemp("blend") / "tiny.blend", frames=3)


def run_one(queue: jobtree.JobQueue, **params: Any) -> jobtree.JobHandle:
    with queue.createJob("blender", **params) as root:
        pass
    assert run_all(queue) == 1
    return root.handle


def assert_pngs(paths: list[Path]) -> None:
    for p in paths:
        assert p.read_bytes()[:8] == PNG_MAGIC, f"{p} is not a PNG"


def test_renders_three_frames_through_the_queue(
    queue: jobtree.JobQueue, scene: Path, tmp_path: Path
) -> None:
    out = tmp_path / "out"
    h = run_one(
        queue,
        scene=str(scene),
        frames="1-3",
        engine="CYCLES",
        output=str(out / "f_####.png"),  # as submitAnimation writes it: no second ".png"
        format="PNG",
        threads=1,
    )
    assert h.state == JobState.DONE, h.error
    files = [out / f"f_000{f}.png" for f in (1, 2, 3)]
    assert sorted(out.iterdir()) == files
    assert_pngs(files)
    assert h.progress == 100
    assert h.statusLine == "rendered 3 frames"
    assert h.result == {"frames": [1, 2, 3], "outputs": [str(f) for f in files]}
    log = h.stdout
    assert "jobtree: running " in log
    assert " -s 1 -e 3 -j 1 " in log
    for f in (1, 2, 3):
        assert f"Fra:{f} " in log
        assert f"Saved: '{out}/f_000{f}.png'" in log
    assert PROBE_PREFIX + '{"scene": "Scene", "start": 1, "end": 3, "step": 1' in log
    assert "Blender quit" in log


def test_without_frames_the_files_own_range_renders_with_relative_paths(
    queue: jobtree.JobQueue, scene: Path, tmp_path: Path
) -> None:
    work = tmp_path / "shot"
    work.mkdir()
    (work / "tiny.blend").write_bytes(scene.read_bytes())
    h = run_one(queue, scene="tiny.blend", output="frames/f_####", cwd=str(work))
    assert h.state == JobState.DONE, h.error
    files = [work / "frames" / f"f_000{f}.png" for f in (1, 2, 3)]
    assert_pngs(files)
    assert h.result == {"frames": [1, 2, 3], "outputs": [str(f) for f in files]}


@pytest.mark.parametrize(
    ("frames", "rendered", "option"),
    [("1,3", [1, 3], " -s 1 -e 3 -j 2 "), ("3,1", [3, 1], " -f 3,1")],
)
def test_spaced_and_unordered_frames_render_exactly_those(
    queue: jobtree.JobQueue,
    scene: Path,
    tmp_path: Path,
    frames: str,
    rendered: list[int],
    option: str,
) -> None:
    out = tmp_path / "out"
    h = run_one(queue, scene=str(scene), frames=frames, output=str(out / "f_##"))
    assert h.state == JobState.DONE, h.error
    assert option in h.stdout
    assert sorted(p.name for p in out.iterdir()) == [f"f_0{f}.png" for f in sorted(rendered)]
    assert h.result == {"frames": rendered, "outputs": [f"{out}/f_0{f}.png" for f in rendered]}


def test_a_missing_scene_fails_before_blender_starts(
    queue: jobtree.JobQueue, tmp_path: Path
) -> None:
    # No Blender needed: the check comes before the executable is even looked up.
    h = run_one(queue, scene=str(tmp_path / "gone.blend"), executable="/nonexistent/blender")
    assert h.state == JobState.FAILED
    assert h.error is not None
    assert h.error.startswith(f"scene file {tmp_path}/gone.blend does not exist on host ")
    assert "'scene' parameter" in h.error
    assert "jobtree: running" not in h.stdout


def test_denoising_without_openimagedenoise_fails_with_blenders_error_and_what_to_do(
    queue: jobtree.JobQueue, scene: Path, tmp_path: Path
) -> None:
    denoise = (
        "import bpy; s = bpy.context.scene; s.cycles.use_denoising = True; "
        "s.view_layers[0].cycles.use_denoising = True"
    )
    h = run_one(
        queue,
        scene=str(scene),
        frames="1-2",
        output=str(tmp_path / "out" / "f_####"),
        extraArgs=["--python-expr", denoise],
    )
    require(h.state == JobState.FAILED, "this Blender has OpenImageDenoise (Debian's has not)")
    assert h.error is not None
    assert h.error.startswith(
        f"Blender exited with status 1 rendering frame 1 (1 of 2) of {scene} on host "
    )
    assert "\nError: Build without OpenImageDenoiser\n" in h.error
    assert "turn denoising off" in h.error
    assert "Build without OpenImageDenoiser" in h.stderr  # Blender's own stderr line
    assert not (tmp_path / "out").exists()


def test_a_python_error_fails_the_job_though_blender_exits_0_and_saves(
    queue: jobtree.JobQueue, scene: Path, tmp_path: Path
) -> None:
    h = run_one(
        queue,
        scene=str(scene),
        frames=1,
        output=str(tmp_path / "f_####"),
        extraArgs=["--python-expr", "def setup():\n    raise RuntimeError('no rig')\nsetup()"],
    )
    assert h.state == JobState.FAILED
    assert (tmp_path / "f_0001.png").is_file()  # Blender went on and rendered
    assert h.error is not None
    assert h.error.startswith(f"Blender reported a Python error while rendering {scene} on host ")
    assert h.error.endswith(
        "Error: Python: Traceback (most recent call last):\n"
        '  File "<string>", line 3, in <module>\n'
        '  File "<string>", line 2, in setup\n'
        "RuntimeError: no rig"
    )


def test_an_unknown_scene_name_fails_though_blender_renders_another(
    queue: jobtree.JobQueue, scene: Path, tmp_path: Path
) -> None:
    h = run_one(
        queue, scene=str(scene), frames=1, sceneName="Shot", output=str(tmp_path / "f_####")
    )
    assert h.state == JobState.FAILED
    assert h.error is not None
    assert f"Can't find scene: 'Shot' in file: '{scene}'" in h.error
    assert "'sceneName' names no scene" in h.error


def test_blender_exiting_0_without_saving_the_frames_fails(
    queue: jobtree.JobQueue, scene: Path, tmp_path: Path
) -> None:
    # A real Blender that ends early and well: a setup script calls sys.exit(0).
    h = run_one(
        queue,
        scene=str(scene),
        frames="1-3",
        output=str(tmp_path / "f_####"),
        extraArgs=["--python-expr", "import sys; sys.exit(0)"],
    )
    assert h.state == JobState.FAILED
    assert h.error is not None
    assert h.error.startswith(
        f"Blender exited with status 0 but did not save frames 1-3 of {scene} on host "
    )
    assert "(0 of 3 saved;" in h.error
    assert h.error.endswith("its last output:\nBlender 3.4.1\nRead blend: " + str(scene))


def write_fake_blender(path: Path, saved: str, write: bool) -> Path:
    """A stand-in that prints what Blender 3.4 prints for one frame, saving the file or not."""
    lines = [
        "Blender 3.4.1",
        "Read blend: $2",
        "Fra:1 Mem:9.50M (Peak 10.20M) | Time:00:00.04 | Remaining:00:00.00 | "
        "Mem:0.86M, Peak:0.86M | Scene, ViewLayer | Sample 1/4",
        "Fra:1 Mem:9.55M (Peak 10.20M) | Time:00:00.04 | Mem:0.86M, Peak:0.86M | "
        "Scene, ViewLayer | Sample 4/4",
        f"Saved: '{saved}'",
        " Time: 00:00.18 (Saving: 00:00.13)",
        "",
        "Blender quit",
    ]
    script = "#!/bin/sh\n"
    if write:
        script += f"printf 'png' > '{saved}'\n"
    script += "".join(f'echo "{line}"\n' for line in lines)
    path.write_text(script)
    path.chmod(path.stat().st_mode | stat.S_IXUSR)
    return path


def test_a_saved_file_that_is_not_there_fails_the_job(
    queue: jobtree.JobQueue, scene: Path, tmp_path: Path
) -> None:
    saved = tmp_path / "out" / "f_0001.png"
    fake = write_fake_blender(tmp_path / "blender", str(saved), write=False)
    h = run_one(queue, scene=str(scene), frames=1, executable=str(fake))
    assert h.state == JobState.FAILED
    assert h.error is not None
    assert h.error.startswith(f"Blender finished but did not write 1 output file: {saved};")


def test_jobtree_blender_on_the_worker_chooses_the_executable(
    queue: jobtree.JobQueue, scene: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    saved = tmp_path / "f_0001.png"
    fake = write_fake_blender(tmp_path / "blender-4.2", str(saved), write=True)
    monkeypatch.setenv("JOBTREE_BLENDER", str(fake))
    h = run_one(queue, scene=str(scene), frames=1)
    assert h.state == JobState.DONE, h.error
    assert f"jobtree: running {fake} -b {scene} " in h.stdout
    assert h.result == {"frames": [1], "outputs": [str(saved)]}


def test_a_crash_reports_the_signal_the_frame_and_blenders_crash_report(
    queue: jobtree.JobQueue, scene: Path, tmp_path: Path
) -> None:
    crash = (
        "import bpy, os, signal\n"
        "def pre(scene, *args):\n"
        "    if scene.frame_current == 2:\n"
        "        os.kill(os.getpid(), signal.SIGSEGV)\n"
        "bpy.app.handlers.render_pre.append(pre)"
    )
    h = run_one(
        queue,
        scene=str(scene),
        frames="1-3",
        output=str(tmp_path / "out" / "f_####"),
        env={"TMPDIR": str(tmp_path)},  # where Blender writes its crash report
        extraArgs=["--python-expr", crash],
    )
    assert h.state == JobState.FAILED
    report = tmp_path / "tiny.crash.txt"
    assert h.error is not None
    assert h.error.startswith(
        f"Blender crashed (SIGSEGV) after saving frame 1 (1 of 3) of {scene} on host "
    )
    assert f"it wrote a crash report to {report} on that host (copied into" in h.error
    assert f"Saved: '{tmp_path}/out/f_0001.png'" in h.error
    assert h.error.count("\nFra:1 ") == 1  # the run of Fra: lines shows as its last
    assert f"jobtree: Blender's crash report {report}:\n# Blender 3.4.1" in h.stderr
    assert 'File "<string>", line 4 in pre' in h.stderr
    assert round(h.progress, 2) == 33.33


def test_blenders_python_gets_its_own_standard_library_under_pyenv_or_a_venv(
    queue: jobtree.JobQueue, scene: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Blender takes the first python3.X on PATH as its Python home; a worker started by
    # `pyenv exec` or in a virtualenv has its own Python's bin directory first, and Blender then
    # loaded the wrong standard library ("_ssl...so: undefined symbol"). The job must not see it.
    own = os.path.dirname(sys.executable)
    monkeypatch.setenv("PATH", os.pathsep.join([own, os.environ.get("PATH", "")]))
    h = run_one(
        queue,
        scene=str(scene),
        frames=1,
        output=str(tmp_path / "f_####.png"),
        extraArgs=["--python-expr", "import ssl, sys; print('ssl from', ssl.__file__)"],
    )
    assert h.state == JobState.DONE, h.error
    line = next(x for x in h.stdout.splitlines() if x.startswith("ssl from "))
    assert not line.removeprefix("ssl from ").startswith(sys.base_prefix), line
