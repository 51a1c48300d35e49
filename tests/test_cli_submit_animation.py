"""`jobtree submit QUEUE --animation SCENE ...`: the tree submitAnimation builds, read back through
the API; dry runs; usage errors; an animation rendered to the end with the demo renderer; and the
quick form's job type, the `command` procedure."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from cli_util import jobtree, jobtree_json, run_jobs
from PIL import Image

import jobtree as jt
from jobtree.automation import HOOKS_FILE
from jobtree.cli import Exit


@pytest.fixture(autouse=True)
def _cli_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """No user config or queue from the machine running the tests; the current directory and
    temporary files in tmp_path."""
    monkeypatch.setenv("JOBTREE_CONFIG", str(tmp_path / "config.toml"))
    monkeypatch.setenv("TMPDIR", str(tmp_path / "tmp"))
    (tmp_path / "tmp").mkdir()
    for var in ("JOBTREE_QUEUE", "NO_COLOR", "FORCE_COLOR"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.chdir(tmp_path)


@pytest.fixture
def q(tmp_path: Path) -> Path:
    path = tmp_path / "q"
    jobtree("init", path)
    return path


@pytest.fixture
def scene(tmp_path: Path) -> Path:
    path = tmp_path / "shot010.blend"
    path.write_bytes(b"BLENDER-v304")  # only its path matters until a worker renders it
    return path


def the_root(queue: Path) -> jt.JobHandle:
    roots = jt.JobQueue(queue).listJobs()
    assert len(roots) == 1, roots
    return roots[0]


def test_animation_builds_render_chunks_under_the_encode(q, scene, tmp_path):
    data = jobtree_json(
        "submit", q, "--animation", "shot010.blend", "--frames", "1-25", "--chunk", "10",
        "--output", "out/shot010_####.png",
    )  # fmt: skip
    root = the_root(q)
    pattern = str(tmp_path / "out" / "shot010_####.png")
    movie = str(tmp_path / "out" / "shot010.mp4")
    assert data == {
        "queue": str(q),
        "dryRun": False,
        "roots": [
            {
                "id": root.rootId[-6:],
                "rootId": root.rootId,
                "location": root.location,
                "label": "shot010",
                "jobType": "ffmpeg",
                "jobs": 4,
                "frames": "1-25",
                "chunks": 3,
                "renderer": "blender",
                "output": pattern,
                "movie": movie,
                "notify": [],
            }
        ],
    }
    assert root.jobType == "ffmpeg"
    assert root.params["input"] == pattern
    assert root.params["output"] == movie
    assert root.params["frames"] == "1-25"
    chunks = root.listSubJobs()
    assert [c.label for c in chunks] == ["frames 1-10", "frames 11-20", "frames 21-25"]
    assert [c.params["frames"] for c in chunks] == ["1-10", "11-20", "21-25"]
    for c in chunks:
        assert c.jobType == "blender"
        assert c.params["scene"] == str(scene)  # relative paths are made absolute here
        assert c.params["output"] == pattern
    # The human form says what was built.
    out = jobtree(
        "submit", q, "-a", str(scene), "-f", "1-5", "--output", str(tmp_path / "o") + "/",
        "--label", "shot010 v2",
    ).stdout  # fmt: skip
    lines = out.splitlines()
    assert lines[0].startswith("submitted ")
    assert lines[0].endswith(f' "shot010 v2" (2 jobs) to {q}')
    assert lines[1:] == [
        f"  frames 1-5: 1 blender job of up to 5 frames -> {tmp_path}/o/shot010_####.png",
        f"  then ffmpeg -> {tmp_path}/o/shot010.mp4",
    ]


def test_animation_movie_kinds_and_no_encode(q, scene, tmp_path):
    gif = jobtree_json(
        "submit", q, "--animation", scene, "-f", "1-4", "-c", "2", "--output", "out/",
        "--movie", "anim.gif",
    )["roots"][0]  # fmt: skip
    assert gif["jobType"] == "animated-image"
    assert gif["movie"] == str(tmp_path / "anim.gif")
    assert gif["output"] == str(tmp_path / "out" / "shot010_####.png")
    frames = jobtree_json(
        "submit", q, "--animation", scene, "-f", "1-4", "-c", "2", "--output", "out/f_####.exr",
        "--no-encode",
    )["roots"][0]  # fmt: skip
    assert frames["jobType"] == "command"
    assert frames["movie"] is None
    h = jt.JobQueue(q).jobHandle(frames["location"])
    assert h.params == {}
    assert [c.params["format"] for c in h.listSubJobs()] == ["OPEN_EXR", "OPEN_EXR"]
    out = jobtree("submit", q, "-a", scene, "-f", "1", "--output", "out/", "--no-encode").stdout
    assert out.splitlines()[1:] == [
        f"  frames 1: 1 blender job of up to 1 frame -> {tmp_path}/out/shot010_####.png",
        "  then nothing (--no-encode)",
    ]
    # The demo renderer needs no scene file and no --output.
    demo = jobtree_json("submit", q, "-a", "anything", "--renderer", "demo", "-f", "1-3")
    assert demo["roots"][0]["renderer"] == "demo-render"
    assert demo["roots"][0]["output"] == str(tmp_path / "jobtree-demo" / "frame_####.png")


def test_animation_notify_through_an_smtp_server_and_job_options(q, scene):
    data = jobtree_json(
        "submit", q, "-a", scene, "-f", "1-6", "-c", "3", "--output", "out/",
        "--notify", "ann@example.com", "--notify", "bo@example.com",
        "--smtp", "mail.example.com:2525", "--label", "shot010 final", "--priority", "7",
        "-o", "maxAttempts=3", "-m", "shot=010",
    )["roots"][0]  # fmt: skip
    assert data["notify"] == ["ann@example.com", "bo@example.com"]
    root = the_root(q)
    hooks = json.loads(Path(root.rootDir, HOOKS_FILE).read_text())
    assert sorted(h["when"] for h in hooks) == ["done", "failed"]
    for hook in hooks:
        assert hook["jobType"] == "email"
        assert hook["params"]["to"] == ["ann@example.com", "bo@example.com"]
        assert hook["params"]["host"] == "mail.example.com"
        assert hook["params"]["port"] == 2525
        assert hook["params"]["about"] == root.location
    for job in [root, *root.listSubJobs()]:
        assert job.label in ("shot010 final", "frames 1-3", "frames 4-6")
        assert job.jobOptions["priority"] == 7
        assert job.jobOptions["maxAttempts"] == 3
        assert job.jobOptions["metadata"] == {"shot": "010"}
    # One address, the default mail server: the hook's 'to' is the address itself.
    out = jobtree(
        "submit", q, "-a", scene, "-f", "1", "--output", "out/", "--notify", "ann@example.com"
    ).stdout  # fmt: skip
    assert out.splitlines()[-1] == "  then e-mail ann@example.com when it is done or has failed"
    newest = max(jt.JobQueue(q).listJobs(), key=lambda h: h.submitTime or 0)
    hooks = json.loads(Path(newest.rootDir, HOOKS_FILE).read_text())
    assert {h["params"]["to"] for h in hooks} == {"ann@example.com"}
    assert all("host" not in h["params"] for h in hooks)


def test_animation_dry_run_checks_everything_and_submits_nothing(q, scene, tmp_path):
    data = jobtree_json(
        "submit", q, "-a", scene, "-f", "1-240", "--output", "out/", "--dry-run",
        "--notify", "ann@example.com",
    )  # fmt: skip
    assert data["dryRun"] is True
    root = data["roots"][0]
    assert (root["id"], root["rootId"], root["location"]) == (None, None, None)
    assert (root["jobs"], root["chunks"], root["jobType"]) == (25, 24, "ffmpeg")
    out = jobtree("submit", q, "-a", scene, "-f", "1-240", "--output", "out/", "--dry-run")
    lines = out.stdout.splitlines()
    assert lines[0] == f'would submit "shot010" (25 jobs) to {q}'
    assert (
        lines[1]
        == f"  frames 1-240: 24 blender jobs of up to 10 frames -> {tmp_path}/out/shot010_####.png"
    )
    assert jt.JobQueue(q).listJobs() == []
    assert os.listdir(tmp_path / "tmp") == []  # the throwaway queue is gone
    # What the procedures refuse is refused in a dry run too, and nothing is left behind.
    bad = jobtree(
        "submit", q, "-a", scene, "-f", "1-3", "--output", "out/", "--movie", "m.avi", "--dry-run",
        code=Exit.USAGE,
    )  # fmt: skip
    assert f"Error: --animation {scene}: movie " in bad.stderr
    assert "unknown extension .avi" in bad.stderr
    assert os.listdir(tmp_path / "tmp") == []
    # A queue that allows only some procedures: the dry run applies the queue's settings.
    strict = tmp_path / "strict"
    jobtree("init", strict, "-s", 'allowedProcs=["command"]')
    denied = jobtree(
        "submit", strict, "-a", scene, "-f", "1-3", "--output", "out/", "--dry-run", code=None
    )
    assert denied.exit_code == Exit.USAGE, denied.stderr
    assert "ffmpeg" in denied.stderr or "blender" in denied.stderr


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["-a", "s.blend", "-f", "1-3", "--output", "o/", "--", "echo", "hi"],
         "give either --animation or a command after --, not both (the command was: echo hi)"),
        (["f.json", "-a", "s.blend", "-f", "1-3", "--output", "o/"],
         "--animation takes no FILE (got f.json)"),
        (["-a", "s.blend", "--output", "o/"], "--animation needs --frames: jobtree submit"),
        (["-a", "s.blend", "-f", "1-3"], "--animation needs --output, the frames to write"),
        (["-a", "s.blend", "-f", "1-3", "--output", "o/", "--movie", "m.mp4", "--no-encode"],
         "give --movie or --no-encode, not both"),
        (["-a", "s.blend", "-f", "1-3", "--output", "o/", "--smtp", "mail"],
         "--smtp only works with --notify ADDR"),
        (["-a", "s.blend", "-f", "1-3", "--output", "o/", "--notify", "a@b", "--smtp", "m:x"],
         "--smtp 'm:x': give HOST or HOST:PORT"),
        (["-a", "s.blend", "-f", "1-x", "--output", "o/"], "--frames: bad frame range '1-x'"),
        (["-a", "s.blend", "-f", "1-3", "--output", "o/", "--cwd", "."],
         "--cwd only works with a command after --"),
        (["-a", "s.blend", "-f", "1-3", "--output", "o/x.png"],
         "is neither a frame pattern nor a directory"),
        (["--movie", "m.mp4", "--", "echo"], "--movie only works with --animation SCENE"),
        (["--renderer", "demo", "--notify", "a@b", "--", "echo"],
         "--renderer, --notify only work with --animation SCENE"),
        (["-a", "s.blend", "-f", "1-3", "--output", "o/", "--renderer", "maya"],
         "Invalid value for '--renderer'"),
    ],
)  # fmt: skip
def test_animation_usage_errors(q, args, message):
    result = jobtree("submit", q, *args, code=Exit.USAGE)
    assert message in result.stderr
    assert jt.JobQueue(q).listJobs() == []


def test_animation_with_the_demo_renderer_runs_to_an_animated_gif(q, tmp_path):
    data = jobtree_json(
        "submit", q, "--animation", "demo", "--renderer", "demo", "-f", "1-4", "-c", "2",
        "--output", "frames/", "--movie", "loop.gif",
    )["roots"][0]  # fmt: skip
    assert run_jobs(q) == 3
    root = the_root(q)
    assert root.state is jt.JobState.DONE, root.error
    assert sorted(p.name for p in (tmp_path / "frames").iterdir()) == [
        f"frame_{f:04d}.png" for f in range(1, 5)
    ]
    with Image.open(data["movie"]) as gif:
        assert gif.n_frames == 4


def test_quick_form_runs_the_command_procedure(q, tmp_path):
    data = jobtree_json("submit", q, "--", "sh", "-c", "echo hello")["roots"][0]
    assert data["jobType"] == "command"
    h = jt.JobQueue(q).jobHandle(data["location"])
    assert h.params == {"cwd": str(tmp_path), "commands": [["sh", "-c", "echo hello"]]}
    chunked = jobtree_json("submit", q, "-f", "1-2", "--", "echo", "{frame}")["roots"][0]
    root = jt.JobQueue(q).jobHandle(chunked["location"])
    assert root.jobType == "command"
    assert "commands" not in root.params  # the root only holds its chunks
    assert [c.jobType for c in root.listSubJobs()] == ["command", "command"]
    assert run_jobs(q) == 4
    assert h.state is jt.JobState.DONE
    assert h.stdout == "hello\n"


def test_submit_help_shows_the_animation_form():
    text = jobtree("submit", "--help").stdout
    assert "jobtree submit QUEUE --animation shot010.blend --frames 1-240 --chunk 10" in text
    for option in ("--animation SCENE", "--output PATTERN", "--movie PATH", "--no-encode",
                   "--renderer [blender|demo]", "--notify ADDR", "--smtp HOST[:PORT]"):  # fmt: skip
        assert option in text
