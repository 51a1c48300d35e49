"""The maya, renderman and arnold procedures against fake ``Render``, ``prman`` and ``kick``.

These renderers cannot be installed here, so tests/fakebin holds small stand-ins that take
the same arguments, print the lines the real programs print and write the images they are
asked for (JOBTREE_FAKE_FAIL makes them fail). The tests check the argv each procedure
builds, the progress and status it reads from the output, and how it fails.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, ClassVar

import pytest
from jobtree.procs.arnold import Arnold
from jobtree.procs.maya import Maya
from jobtree.procs.renderman import RenderMan
from testutil import run_all

import jobtree

FAKEBIN = Path(__file__).resolve().parent / "fakebin"


def fake_env(**extra: str) -> dict[str, str]:
    """The procedure's env: the fakes first on the PATH, plus JOBTREE_FAKE_* settings."""
    return {"PATH": f"{FAKEBIN}{os.pathsep}{os.environ.get('PATH', '')}", **extra}


class Recording:
    """Mixed into a procedure: remembers every progress value and status line it reports."""

    progress: ClassVar[list[float]]
    statuses: ClassVar[list[str]]

    def setProgress(self, percent: float) -> None:
        type(self).progress.append(percent)
        super().setProgress(percent)  # type: ignore[misc]

    def setStatusLine(self, text: str) -> None:
        type(self).statuses.append(text)
        super().setStatusLine(text)  # type: ignore[misc]


class RecordingMaya(Recording, Maya):
    progress: ClassVar[list[float]] = []
    statuses: ClassVar[list[str]] = []


class RecordingRenderMan(Recording, RenderMan):
    progress: ClassVar[list[float]] = []
    statuses: ClassVar[list[str]] = []


class RecordingArnold(Recording, Arnold):
    progress: ClassVar[list[float]] = []
    statuses: ClassVar[list[str]] = []


@pytest.fixture(autouse=True)
def _fresh_records() -> None:
    for cls in (RecordingMaya, RecordingRenderMan, RecordingArnold):
        cls.progress.clear()
        cls.statuses.clear()


def run_job(queue: jobtree.JobQueue, jobType: Any, **params: Any) -> jobtree.JobHandle:
    with queue.createJob(jobType, **params) as root:
        pass
    run_all(queue)
    return root.handle


def commands(h: jobtree.JobHandle) -> list[str]:
    """Every command line the job ran (its 'jobtree: running ...' log lines, shell-quoted)."""
    prefix = "jobtree: running "
    return [line[len(prefix) :] for line in h.stdout.splitlines() if line.startswith(prefix)]


def assert_rising_to_100(progress: list[float]) -> None:
    assert progress == sorted(progress)
    assert progress[-1] == 100
    assert any(0 < p < 99 for p in progress)  # read from the renderer's lines on the way


def test_the_fakes_are_committed_executable() -> None:
    for name in ("Render", "prman", "kick"):
        path = FAKEBIN / name
        assert os.access(path, os.X_OK), f"{path} is not executable"
        assert path.read_text().startswith("#!/usr/bin/env python3\n")


# -- arnold ----------------------------------------------------------------------------------------


def ass_files(tmp_path: Path, frames: range) -> Path:
    d = tmp_path / "ass"
    d.mkdir()
    for f in frames:
        (d / f"shot.{f:04d}.ass").write_text(
            f'options {{ name options  frame {f} }}\ndriver_exr {{ name out filename "ass.exr" }}\n'
        )
    return d


def test_arnold_runs_kick_once_per_frame_and_reads_its_progress(
    queue: jobtree.JobQueue, tmp_path: Path
) -> None:
    ass = ass_files(tmp_path, range(1, 4))
    out = tmp_path / "out"
    h = run_job(
        queue,
        RecordingArnold,
        scene=str(ass / "shot.####.ass"),
        frames="1-3",
        output=str(out / "shot.####.exr"),
        camera="shotCam",
        resolution=[64, 48],
        samples=2,
        threads=2,
        extraArgs=["-bs", "32"],
        env=fake_env(),
    )
    assert h.state == jobtree.JobState.DONE, h.error
    images = [str(out / f"shot.{f:04d}.exr") for f in (1, 2, 3)]
    assert h.result == {"frames": [1, 2, 3], "outputs": images}
    assert all(Path(p).is_file() for p in images)
    assert commands(h) == [
        f"{FAKEBIN}/kick -i {ass}/shot.{f:04d}.ass -o {out}/shot.{f:04d}.exr -c shotCam "
        "-r 64 48 -as 2 -t 2 -dw -dp -v 2 -bs 32"
        for f in (1, 2, 3)
    ]
    assert "|    50% done - 9 rays/pixel" in h.stdout  # kick's output is in the job's log
    assert_rising_to_100(RecordingArnold.progress)
    assert 50 in RecordingArnold.progress  # frame 2 (the 2nd of 3) at 50%
    assert "frame 2 (2/3): 50%" in RecordingArnold.statuses
    assert h.statusLine == "rendered 3 frames"


def test_arnold_without_frames_renders_the_one_scene(
    queue: jobtree.JobQueue, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ass = ass_files(tmp_path, range(7, 8))
    # No PATH change: the worker's $JOBTREE_ARNOLD names the executable.
    monkeypatch.setenv("JOBTREE_ARNOLD", str(FAKEBIN / "kick"))
    h = run_job(queue, "arnold", scene="shot.0007.ass", cwd=str(ass), verbosity=1)
    assert h.state == jobtree.JobState.DONE, h.error
    assert h.result == {"frames": [], "outputs": []}
    assert commands(h) == [f"{FAKEBIN}/kick -i shot.0007.ass -dw -dp -v 1"]
    assert (ass / "ass.exr").is_file()  # the .ass's own driver filename


def test_arnold_errors_fail_the_job_naming_the_frame(
    queue: jobtree.JobQueue, tmp_path: Path
) -> None:
    ass = ass_files(tmp_path, range(1, 4))
    out = tmp_path / "out"
    h = run_job(
        queue,
        RecordingArnold,
        scene=str(ass / "shot.####.ass"),
        frames="1-3",
        output=str(out / "shot.####.exr"),
        env=fake_env(JOBTREE_FAKE_FAIL="error", JOBTREE_FAKE_FAIL_ON="shot.0002"),
    )
    assert h.state == jobtree.JobState.FAILED
    error = h.error or ""
    assert error.startswith("frame 2: Arnold exited with status 1; its errors:\n")
    assert 'ERROR   | [ass] line 7: node "fakeShader" is not installed' in error
    assert "[kick] aborting render: scene has errors" in error
    assert len(commands(h)) == 2  # frame 3 was not started
    assert sorted(p.name for p in out.iterdir()) == ["shot.0001.exr"]
    assert h.progress == pytest.approx(100 / 3)  # frame 1 done, frame 2 at 0%


def test_arnold_fails_when_kick_writes_no_image(queue: jobtree.JobQueue, tmp_path: Path) -> None:
    ass = ass_files(tmp_path, range(1, 3))
    out = tmp_path / "out"
    h = run_job(
        queue,
        "arnold",
        scene=str(ass / "shot.####.ass"),
        frames="1-2",
        output=str(out / "shot.####.exr"),
        env=fake_env(JOBTREE_FAKE_FAIL="nooutput"),
    )
    assert h.state == jobtree.JobState.FAILED
    assert (h.error or "").startswith(
        f"frame 1: Arnold finished but did not write 1 image: {out / 'shot.0001.exr'}"
    )


def test_arnold_exit_status_without_error_lines_shows_the_last_output(
    queue: jobtree.JobQueue, tmp_path: Path
) -> None:
    ass = ass_files(tmp_path, range(1, 2))
    h = run_job(
        queue, "arnold", scene=str(ass / "shot.0001.ass"), env=fake_env(JOBTREE_FAKE_FAIL="silent")
    )
    assert h.state == jobtree.JobState.FAILED
    assert h.error == "Arnold exited with status 3 (it printed nothing)"


def test_arnold_missing_scene_and_missing_kick_are_clear(
    queue: jobtree.JobQueue, tmp_path: Path
) -> None:
    ass = ass_files(tmp_path, range(1, 3))
    h = run_job(queue, "arnold", scene=str(ass / "shot.####.ass"), frames="1-3", env=fake_env())
    assert h.state == jobtree.JobState.FAILED
    assert h.error == (
        f"scene file {ass / 'shot.0003.ass'} does not exist (frame 3 of {ass / 'shot.####.ass'})"
        "; export it first or fix 'scene' / 'frames'"
    )
    h = run_job(queue, "arnold", scene=str(ass / "shot.0001.ass"), executable="no-such-kick")
    assert h.state == jobtree.JobState.FAILED
    assert "Arnold executable 'no-such-kick' (from the job's 'executable' parameter)" in (
        h.error or ""
    )


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"scene": "/a/shot.ass", "frames": "1-3"}, "with frames, scene must name one .ass file"),
        ({"frames": None}, "no frames were given"),
        ({"frames": "1-3", "output": "/o/shot.exr"}, "every frame would overwrite the last"),
        ({"resolution": [64]}, "resolution must be"),
        ({"verbosity": 9}, "verbosity must be 0..6"),
        ({"threads": "4"}, "threads must be an int"),
    ],
)
def test_arnold_bad_parameters_are_refused(
    queue: jobtree.JobQueue, params: dict[str, Any], message: str
) -> None:
    with pytest.raises(jobtree.SubmissionError, match=message):
        queue.createJob("arnold", **{"scene": "/a/shot.####.ass", "frames": 1, **params})


# -- renderman -------------------------------------------------------------------------------------


def rib(path: Path, image: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(
        f'Display "{image}" "openexr" "rgba"\n'
        f'Display "+{image}.z" "openexr" "z"\n'
        "WorldBegin\nWorldEnd\n"
    )
    return path


def test_renderman_renders_ribs_in_one_run_with_progress(
    queue: jobtree.JobQueue, tmp_path: Path
) -> None:
    options = tmp_path / "rib" / "options.rib"
    options.parent.mkdir()
    options.write_text('Option "limits" "int threads" [2]\n')
    image = tmp_path / "out" / "beauty.exr"
    world = rib(tmp_path / "rib" / "world.rib", image)
    h = run_job(
        queue,
        RecordingRenderMan,
        rib=[str(options), str(world)],
        threads=4,
        expectedOutput=str(image),
        extraArgs=["-woff", "R56001"],
        env=fake_env(),
    )
    assert h.state == jobtree.JobState.DONE, h.error
    assert h.result == {"frames": [], "outputs": [str(image)]}
    assert commands(h) == [f"{FAKEBIN}/prman -Progress -t:4 -woff R56001 {options} {world}"]
    assert "R90000  40%" in h.stdout
    assert_rising_to_100(RecordingRenderMan.progress)
    assert 40 in RecordingRenderMan.progress
    assert "rendering world.rib: 40%" in RecordingRenderMan.statuses


def test_renderman_with_frames_runs_once_per_frame(queue: jobtree.JobQueue, tmp_path: Path) -> None:
    out = tmp_path / "out"
    for f in (1, 3):
        rib(tmp_path / "rib" / f"shot.{f:04d}.rib", out / f"shot.{f:04d}.exr")
    h = run_job(
        queue,
        RecordingRenderMan,
        rib=str(tmp_path / "rib" / "shot.####.rib"),
        frames=[1, 3],
        expectedOutput=str(out / "shot.####.exr"),
        env=fake_env(),
    )
    assert h.state == jobtree.JobState.DONE, h.error
    assert h.result == {
        "frames": [1, 3],
        "outputs": [str(out / "shot.0001.exr"), str(out / "shot.0003.exr")],
    }
    assert commands(h) == [
        f"{FAKEBIN}/prman -Progress {tmp_path}/rib/shot.000{f}.rib" for f in (1, 3)
    ]
    assert "frame 3 (2/2): 60%" in RecordingRenderMan.statuses
    assert 80 in RecordingRenderMan.progress  # 1/2 + 60% of 1/2


def test_renderman_errors_and_severe_messages_fail_the_job(
    queue: jobtree.JobQueue, tmp_path: Path
) -> None:
    world = rib(tmp_path / "world.rib", tmp_path / "beauty.exr")
    h = run_job(queue, "renderman", rib=str(world), env=fake_env(JOBTREE_FAKE_FAIL="error"))
    assert h.state == jobtree.JobState.FAILED
    assert h.error == (
        "RenderMan exited with status 1; its errors:\n"
        'R50004 {ERROR} PxrFakeSurface: shader "PxrFakeSurface" not found\n'
        f"R56002 {{SEVERE}} {world}: render aborted after 1 error"
    )


def test_renderman_fails_when_the_expected_image_is_missing(
    queue: jobtree.JobQueue, tmp_path: Path
) -> None:
    image = tmp_path / "beauty.exr"
    world = rib(tmp_path / "world.rib", image)
    h = run_job(
        queue,
        "renderman",
        rib=str(world),
        expectedOutput=str(image),
        env=fake_env(JOBTREE_FAKE_FAIL="nooutput"),
    )
    assert h.state == jobtree.JobState.FAILED
    assert (h.error or "").startswith(f"RenderMan finished but did not write 1 image: {image}")
    h = run_job(queue, "renderman", rib=str(tmp_path / "nope.rib"), env=fake_env())
    assert h.state == jobtree.JobState.FAILED
    assert (
        h.error
        == f"RIB file {tmp_path / 'nope.rib'} does not exist; export the RIB first or fix 'rib'"
    )


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"rib": []}, "rib must be a RIB file's path"),
        ({"rib": ["a.rib", "b.rib"], "frames": "1-2"}, "not a list"),
        ({"rib": "a.rib", "frames": "1-2"}, "with frames, rib must name one RIB file per frame"),
        ({"rib": "a.rib", "expectedOutput": "o.####.exr"}, "no frames were given"),
    ],
)
def test_renderman_bad_parameters_are_refused(
    queue: jobtree.JobQueue, params: dict[str, Any], message: str
) -> None:
    with pytest.raises(jobtree.SubmissionError, match=message):
        queue.createJob("renderman", **params)


# -- maya ------------------------------------------------------------------------------------------


@pytest.fixture
def scene(tmp_path: Path) -> Path:
    path = tmp_path / "proj" / "scenes" / "shot010.mb"
    path.parent.mkdir(parents=True)
    path.write_bytes(b"Maya binary scene (fake)")
    return path


def test_maya_renders_a_range_in_one_run_with_arnold_progress(
    queue: jobtree.JobQueue, tmp_path: Path, scene: Path
) -> None:
    out = tmp_path / "out"
    h = run_job(
        queue,
        RecordingMaya,
        scene=str(scene),
        frames="1-3",
        renderer="arnold",
        camera="shotCam",
        renderLayer="beauty",
        outputDir=str(out),
        imageName="shot010",
        format="exr",
        project=str(scene.parent.parent),
        expectedOutput=str(out / "shot010.####.exr"),
        extraArgs=["-x", "64", "-y", "48"],
        env=fake_env(),
    )
    assert h.state == jobtree.JobState.DONE, h.error
    images = [str(out / f"shot010.{f:04d}.exr") for f in (1, 2, 3)]
    assert h.result == {"frames": [1, 2, 3], "outputs": images}
    assert commands(h) == [
        f"{FAKEBIN}/Render -r arnold -s 1 -e 3 -b 1 -cam shotCam -rl beauty -rd {out} -im shot010 "
        f"-of exr -proj {tmp_path}/proj -x 64 -y 48 {scene}"
    ]
    assert_rising_to_100(RecordingMaya.progress)
    assert 50 in RecordingMaya.progress  # frame 2 of 3 at 50%
    assert "frame 2 (2/3): 50%" in RecordingMaya.statuses
    assert h.statusLine == "rendered frames 1-3 of shot010.mb"


def test_maya_renders_uneven_frames_in_one_run_per_range(
    queue: jobtree.JobQueue, tmp_path: Path, scene: Path
) -> None:
    out = tmp_path / "out"
    h = run_job(
        queue,
        RecordingMaya,
        scene=str(scene),
        frames="1-3,7,10-20x5",
        renderer="sw",
        outputDir=str(out),
        imageName="shot010",
        expectedOutput=str(out / "shot010.####.iff"),
        env=fake_env(),
    )
    assert h.state == jobtree.JobState.DONE, h.error
    args = f"-rd {out} -im shot010 {scene}"
    assert commands(h) == [
        f"{FAKEBIN}/Render -r sw -s {s} -e {e} -b {b} {args}"
        for s, e, b in ((1, 3, 1), (7, 7, 1), (10, 20, 5))
    ]
    assert h.result["frames"] == [1, 2, 3, 7, 10, 15, 20]
    assert len(h.result["outputs"]) == 7
    assert "Percentage of rendering done: 60" in h.stdout
    assert_rising_to_100(RecordingMaya.progress)
    assert "frame 15 (6/7): 60%" in RecordingMaya.statuses  # the frame from the run's range


def test_maya_errors_fail_the_job_with_maya_error_lines(
    queue: jobtree.JobQueue, tmp_path: Path, scene: Path
) -> None:
    out = tmp_path / "out"
    params: dict[str, Any] = {
        "scene": str(scene),
        "frames": "1-3",
        "outputDir": str(out),
        "imageName": "shot010",
        "expectedOutput": str(out / "shot010.####.iff"),
        "env": fake_env(JOBTREE_FAKE_FAIL="error", JOBTREE_FAKE_FAIL_ON="2"),
    }
    h = run_job(queue, "maya", **params)
    assert h.state == jobtree.JobState.FAILED
    assert h.error == (
        "Maya exited with status 211; its errors:\n"
        f'// Error: file: {scene} line 42: Cannot find procedure "fakeShadingProc". //\n'
        f"// Error: Scene {scene} failed to render. //"
    )
    # Accepting 211 (Maya's "finished with errors"): the images decide, and two are missing.
    h = run_job(queue, "maya", okCodes=[0, 211], **params)
    assert h.state == jobtree.JobState.FAILED
    assert (h.error or "").startswith(
        f"Maya finished but did not write 2 images: {out / 'shot010.0002.iff'}, "
        f"{out / 'shot010.0003.iff'}; its errors:\n// Error: file:"
    )


def test_maya_error_in_one_of_several_runs_names_its_frames(
    queue: jobtree.JobQueue, scene: Path
) -> None:
    h = run_job(
        queue,
        "maya",
        scene=str(scene),
        frames="1,5-6",
        env=fake_env(JOBTREE_FAKE_FAIL="error", JOBTREE_FAKE_FAIL_ON="5"),
    )
    assert h.state == jobtree.JobState.FAILED
    assert (h.error or "").startswith("frames 5-6: Maya exited with status 211; its errors:\n")


def test_maya_fails_when_images_are_missing(
    queue: jobtree.JobQueue, tmp_path: Path, scene: Path
) -> None:
    out = tmp_path / "out"
    h = run_job(
        queue,
        "maya",
        scene=str(scene),
        frames="1-3",
        outputDir=str(out),
        expectedOutput=str(out / "shot010.####.iff"),
        env=fake_env(JOBTREE_FAKE_FAIL="nooutput"),
    )
    assert h.state == jobtree.JobState.FAILED
    assert (h.error or "").startswith("Maya finished but did not write 3 images:")


def test_maya_without_frames_renders_the_scenes_own_range(
    queue: jobtree.JobQueue, scene: Path
) -> None:
    h = run_job(queue, "maya", scene=str(scene), env=fake_env())
    assert h.state == jobtree.JobState.DONE, h.error
    assert commands(h) == [f"{FAKEBIN}/Render {scene}"]
    assert Path(h.location, "images", "shot010.0001.iff").is_file()  # Render ran in the job dir
    assert h.result == {"frames": [], "outputs": []}


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"scene": ""}, "scene must be the path of a Maya scene"),
        ({"expectedOutput": "/o/shot.####.exr"}, "no frames were given"),
        ({"frames": "3-1"}, "the end is before the start"),
        ({"okCodes": []}, "okCodes must be a non-empty list"),
        ({"camera": 3}, "camera must be a non-empty str"),
    ],
)
def test_maya_bad_parameters_are_refused(
    queue: jobtree.JobQueue, params: dict[str, Any], message: str
) -> None:
    with pytest.raises(jobtree.SubmissionError, match=message):
        queue.createJob("maya", **{"scene": "/p/shot.mb", **params})


def test_renderman_progress_never_goes_back_over_several_images_in_one_run(
    queue: jobtree.JobQueue, tmp_path: Path
) -> None:
    multi = tmp_path / "multi.rib"
    multi.write_text(
        "".join(
            f'FrameBegin {f}\nDisplay "{tmp_path}/f{f}.exr" "openexr" "rgba"\n'
            "WorldBegin\nWorldEnd\nFrameEnd\n"
            for f in (1, 2)
        )
    )
    h = run_job(queue, RecordingRenderMan, rib=str(multi), env=fake_env())
    assert h.state == jobtree.JobState.DONE, h.error
    assert (tmp_path / "f1.exr").is_file()
    assert (tmp_path / "f2.exr").is_file()
    assert_rising_to_100(RecordingRenderMan.progress)
    assert "rendering multi.rib (image 2): 40%" in RecordingRenderMan.statuses
