"""`jobtree demo` end to end: the real executable makes a queue, submits an animation, runs the
worker daemon and prints where the movie is; with jobtree's own renderer, and with Blender and
ffmpeg (required in CI)."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from cli_util import executable, run_exe
from PIL import Image
from testutil import command_lines, require_tool, subprocess_env, wait_for

import jobtree
from jobtree.cli import Exit

FRAMES = 6


@pytest.fixture(autouse=True)
def _demo_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Temporary directories of the demo inside tmp_path; no user config; the machine's own
    $JOBTREE_ALLOW_ROOT does not count (the demo decides)."""
    monkeypatch.setenv("TMPDIR", str(tmp_path))
    monkeypatch.setenv("JOBTREE_CONFIG", str(tmp_path / "config.toml"))
    for var in ("JOBTREE_QUEUE", "JOBTREE_ALLOW_ROOT", "JOBTREE_BLENDER", "JOBTREE_FFMPEG"):
        monkeypatch.delenv(var, raising=False)


def demo(*args: object, env: dict[str, str] | None = None, timeout: float = 90):
    return run_exe("demo", *args, env=env, timeout=timeout)


def lines_of(text: str) -> list[str]:
    return [line.strip() for line in text.splitlines()]


def the_root(queue: Path) -> jobtree.JobHandle:
    roots = jobtree.JobQueue(queue).listJobs()
    assert len(roots) == 1, roots
    return roots[0]


def check_done(root: jobtree.JobHandle, chunks: int) -> None:
    jobs = [root, *root.listSubJobs()]
    assert len(jobs) == 1 + chunks
    for job in jobs:
        assert job.state is jobtree.JobState.DONE, (job, job.error)
        assert job.progress == 100


def test_demo_python_renderer_in_a_given_queue(tmp_path: Path) -> None:
    queue = tmp_path / "farm"
    started = time.monotonic()
    done = demo(queue, "--renderer", "python", "--frames", FRAMES, "--chunk", 2)
    seconds = time.monotonic() - started
    assert done.returncode == 0, done.stdout + done.stderr
    out = lines_of(done.stdout)
    work = tmp_path / "farm-demo"
    movie = work / ("demo.mp4" if shutil.which("ffmpeg") else "demo.gif")
    assert out[0].startswith(f"jobtree demo: {FRAMES} frames rendered by jobtree's own renderer")
    assert f"queue  {queue}" in out
    assert any(
        re.fullmatch(r"done in [\d.]+s: 6 frames rendered and encoded by 2 workers", x) for x in out
    )
    assert f"movie   {movie}" in out
    assert f"frames  {work / 'frames' / 'frame_0001.png'} ... frame_0006.png" in out
    assert f"queue   {queue}" in out
    assert f"Watch the queue in the monitor:  jobtree gui {queue}" in out
    assert f"or in the terminal:              jobtree tree -q {queue}" in out
    # Not a terminal: one line per job start and end, the encode last.
    events = [x.split()[1:4] for x in out if re.match(r"[\d.]+s\s+(running|done)\s", x)]
    assert events.count(["done", "frames", "1-2"]) == 1
    assert sum(1 for e in events if e[:2] == ["done", "frames"]) == 3
    assert events[-2:] == [["running", "encode", movie.name], ["done", "encode", movie.name]]
    assert movie.stat().st_size > 0
    frames = sorted((work / "frames").glob("frame_*.png"))
    assert [p.name for p in frames] == [f"frame_{f:04d}.png" for f in range(1, FRAMES + 1)]
    with Image.open(frames[0]) as first:
        assert first.size == (320, 180)
    check_done(the_root(queue), 3)
    assert seconds < 60
    # The queue is the demo's own, so its workers ran even as root; a second run in the same
    # (now existing) queue as root is refused before it submits anything.
    again = demo(queue, "--renderer", "python", "--frames", 2)
    if os.geteuid() == 0:
        assert again.returncode == Exit.REFUSED, again.stderr
        assert "refusing to run as root" in again.stderr
        assert "JOBTREE_ALLOW_ROOT=1" in again.stderr
        assert len(jobtree.JobQueue(queue).listJobs()) == 1
    else:
        assert again.returncode == 0, again.stderr
        assert len(jobtree.JobQueue(queue).listJobs()) == 2


def test_piped_output_lists_every_job_that_ran_in_order_however_short() -> None:
    """Piped, the demo prints a start and an end line for every job, in the order they
    happened, even for jobs that started and ended between two looks at the tree."""
    import io

    from rich.console import Console

    from jobtree.cli._cmd_demo import JobView, Reporter, TreeView

    out = io.StringIO()
    reporter = Reporter(None, Console(file=out, width=200), quiet=False)  # type: ignore[arg-type]
    t0 = time.time()

    def job(label: str, state: str, start: float | None = None, end: float | None = None):
        return JobView(label, label, state, 0.0, "", start, end, None)

    reporter.update(TreeView(job("encode", "waiting"), [job("a", "ready"), job("b", "ready")]))
    reporter.update(
        TreeView(job("encode", "waiting"), [job("a", "running", t0 + 1), job("b", "ready")])
    )
    # Both frames and the encode ended before the next look; b even started after a ended.
    reporter.update(
        TreeView(
            job("encode", "done", t0 + 5, t0 + 6),
            [job("a", "done", t0 + 1, t0 + 2), job("b", "done", t0 + 3, t0 + 4)],
        )
    )
    reporter.update(  # nothing new: nothing printed twice
        TreeView(
            job("encode", "done", t0 + 5, t0 + 6),
            [job("a", "done", t0 + 1, t0 + 2), job("b", "done", t0 + 3, t0 + 4)],
        )
    )
    events = [line.split()[1:3] for line in out.getvalue().splitlines()]
    assert events == [
        ["running", "a"],
        ["done", "a"],
        ["running", "b"],
        ["done", "b"],
        ["running", "encode"],
        ["done", "encode"],
    ]
    assert out.getvalue().splitlines()[-1].split()[0] == "6.0s"  # when it happened, not printed


def test_demo_without_queue_makes_a_temporary_one_and_a_gif_without_ffmpeg(tmp_path: Path) -> None:
    done = demo(
        "--renderer", "auto", "--frames", 4, "--workers", 1, "--json",
        env={"JOBTREE_FFMPEG": str(tmp_path / "no-ffmpeg")},
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    data = json.loads(done.stdout)
    base = Path(data["queue"]).parent
    assert base.parent == tmp_path
    assert base.name.startswith("jobtree-demo-")
    assert data["state"] == "done"
    assert data["renderer"] == "python"  # auto: no ffmpeg, so not Blender
    assert data["movie"] == str(base / "demo.gif")
    assert data["frames"] == [str(base / "frames" / f"frame_{f:04d}.png") for f in range(1, 5)]
    assert data["failed"] == []
    assert data["workerExit"] == 0
    with Image.open(data["movie"]) as gif:
        assert gif.format == "GIF"
        assert gif.n_frames == 4
    check_done(the_root(Path(data["queue"])), 2)  # 4 frames, 1 worker: chunks of 2 by default


def test_demo_fails_with_the_failing_jobs_error(tmp_path: Path) -> None:
    queue = tmp_path / "q"
    # A directory where frame 3 should go: demo-render cannot write it.
    (tmp_path / "q-demo" / "frames" / "frame_0003.png").mkdir(parents=True)
    done = demo(queue, "--renderer", "python", "--frames", 4, "--chunk", 1, "--workers", 1)
    assert done.returncode == Exit.FAILED, done.stdout + done.stderr
    root = the_root(queue)
    failed = [c for c in root.listSubJobs() if c.state is jobtree.JobState.FAILED]
    assert [c.label for c in failed] == ["frame 3"]
    assert "frame_0003.png" in failed[0].error
    assert f"{failed[0].label} ({root.rootId[-6:]}:0002) failed:" in done.stderr
    assert failed[0].error.splitlines()[0] in done.stderr
    assert f"its output: jobtree logs -q {queue} {root.rootId[-6:]}:0002" in done.stderr
    assert "Error: the demo animation did not finish: frame 3 failed" in done.stderr
    assert "done in" not in done.stdout
    # The daemon was stopped: nothing runs any more, and nothing was left half-claimed.
    assert root.stateCounts()[jobtree.JobState.RUNNING] == 0


def test_demo_refuses_what_it_cannot_use(tmp_path: Path) -> None:
    busy = tmp_path / "busy"
    busy.mkdir()
    (busy / "notes.txt").write_text("mine")
    done = demo(busy, "--renderer", "python")
    assert done.returncode == Exit.REFUSED
    assert f"{busy} is a directory with files in it and not a jobtree queue" in done.stderr
    assert sorted(os.listdir(busy)) == ["notes.txt"]
    done = demo(busy / "notes.txt", "--renderer", "python")
    assert done.returncode == Exit.REFUSED
    assert "exists and is not a directory" in done.stderr
    done = demo(
        tmp_path / "q", "--renderer", "blender", env={"JOBTREE_BLENDER": str(tmp_path / "none")}
    )
    assert done.returncode == Exit.UNAVAILABLE
    assert "Blender is not installed here" in done.stderr
    assert "--renderer python" in done.stderr
    assert not (tmp_path / "q").exists()
    assert re.search(r"^  demo +Run a small render farm", run_exe("--help").stdout, re.M)


def _queue_processes(queue: Path) -> list[int]:
    """Pids of processes whose command line names the queue (the daemon and its workers)."""
    return [
        pid
        for pid, argv in command_lines().items()
        if str(queue) in argv and "jobtree.worker" in argv
    ]


def test_demo_ctrl_c_stops_the_workers_and_gives_the_jobs_back(tmp_path: Path) -> None:
    queue = tmp_path / "q"
    proc = subprocess.Popen(
        [*executable(), "demo", str(queue), "--renderer", "python", "--frames", "400", "-c", "1"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=subprocess_env(),
    )
    try:

        def running() -> bool:
            if proc.poll() is not None:
                raise AssertionError(f"demo exited {proc.returncode}: {proc.communicate()}")
            try:
                roots = jobtree.JobQueue(queue).listJobs()
            except (jobtree.QueueNotFound, FileNotFoundError):
                return False
            return bool(roots) and roots[0].stateCounts()[jobtree.JobState.DONE] >= 2

        wait_for(running, timeout=30, what="the demo's first frames")
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == Exit.INTERRUPTED, out + err
    assert "interrupted: the workers stopped and gave their jobs back" in err
    assert f"jobtree worker {queue}" in err
    assert _queue_processes(queue) == []
    counts = the_root(queue).stateCounts()
    assert counts[jobtree.JobState.RUNNING] == 0
    assert counts[jobtree.JobState.FAILED] == 0
    assert 2 <= counts[jobtree.JobState.DONE] < 401


def test_demo_with_blender_and_ffmpeg(tmp_path: Path) -> None:
    require_tool("blender", "blender")
    require_tool("ffmpeg", "ffmpeg")
    ffprobe = require_tool("ffprobe", "ffmpeg")
    queue = tmp_path / "q"
    done = demo(queue, "--renderer", "blender", "--frames", FRAMES, "--chunk", 3, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
    out = lines_of(done.stdout)
    work = tmp_path / "q-demo"
    movie = work / "demo.mp4"
    assert out[0].startswith(f"jobtree demo: {FRAMES} frames rendered by Blender (Cycles, CPU)")
    assert "building the scene with Blender's Python ..." in out
    assert f"movie   {movie}" in out
    assert f"scene   {work / 'demo.blend'}" in out
    assert f"Watch the queue in the monitor:  jobtree gui {queue}" in out
    probe = subprocess.run(
        [ffprobe, "-v", "error", "-count_frames", "-select_streams", "v:0", "-show_entries",
         "stream=nb_read_frames,width,height", "-of", "json", str(movie)],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    stream = json.loads(probe.stdout)["streams"][0]
    assert (int(stream["nb_read_frames"]), stream["width"], stream["height"]) == (FRAMES, 320, 180)
    root = the_root(queue)
    check_done(root, 2)
    assert {c.jobType for c in root.listSubJobs()} == {"blender"}
    assert all("Saved: '" in c.stdout for c in root.listSubJobs())


def test_demo_says_how_to_get_the_monitor_when_pyside6_is_missing(tmp_path: Path) -> None:
    # A fresh `pip install -e .` has no PySide6: the suggestion to run `jobtree gui` must say
    # how to get it. A sitecustomize that hides PySide6 stands in for that machine.
    hide = tmp_path / "hide"
    hide.mkdir()
    (hide / "sitecustomize.py").write_text(
        "import sys\n"
        "class _Hide:\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        "        if name == 'PySide6' or name.startswith('PySide6.'):\n"
        "            raise ModuleNotFoundError(name)\n"
        "sys.meta_path.insert(0, _Hide())\n"
    )
    env = dict(os.environ, PYTHONPATH=str(hide))
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "jobtree.cli",
            "demo",
            str(tmp_path / "q"),
            "--renderer",
            "python",
            "--frames",
            "2",
            "--workers",
            "1",
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "pip install 'jobtree-farm[gui]'" in done.stdout
