"""The Blender add-on (procs/addons/jobtree_submit.py) inside real Blender, installed with
`jobtree blender-addon --install` into a temporary Blender user config (BLENDER_USER_CONFIG,
BLENDER_USER_SCRIPTS), so the user's own Blender settings are never touched."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from blender_scene import make_scene
from click.testing import CliRunner, Result
from testutil import require_tool, run_all

import jobtree
from jobtree.cli import Exit, cli
from jobtree.cli._cmd_blender import blenderEnvironment
from jobtree.frames import parseFrames

RESULT = "TEST-RESULT "

# Run in Blender after the install, with the user preferences the install saved (no
# --factory-startup). argv after "--": a JSON list of operator calls, each a dict of
# "prefs" (preferences to set first) and "args" (operator properties).
SUBMIT_SCRIPT = r"""
import json, sys
import addon_utils, bpy

def out(**kw):
    print("TEST-RESULT " + json.dumps(kw), flush=True)

calls = json.loads(sys.argv[sys.argv.index("--") + 1])
prefs = bpy.context.preferences.addons["jobtree_submit"].preferences
out(enabled=addon_utils.check("jobtree_submit"), jobtreePath=prefs.jobtreePath,
    menu=[getattr(f, "__module__", None) for f in getattr(
        bpy.types.TOPBAR_MT_render.draw, "_draw_funcs", [])])
bpy.ops.jobtree.check()  # the preferences' button: an ERROR report would end the script
for call in calls:
    for key, value in call.get("prefs", {}).items():
        setattr(prefs, key, value)
    try:
        result = bpy.ops.render.jobtree_submit("EXEC_DEFAULT", **call["args"])
        out(result=sorted(result), queuePref=prefs.queuePath)
    except RuntimeError as exc:  # an ERROR report of an operator called from Python
        out(error=str(exc), queuePref=prefs.queuePath)
"""


def invoke(*args: str, env: dict[str, str], code: int = 0) -> Result:
    result = CliRunner().invoke(cli, list(args), env=env, prog_name="jobtree")
    assert result.exit_code == code, f"exit {result.exit_code}\n{result.output}"
    return result


@pytest.fixture(scope="module")
def blenderEnv(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """A Blender user config with the add-on installed by `jobtree blender-addon --install`
    (twice: the second run replaces an add-on the loaded preferences already enabled)."""
    require_tool("blender", "blender")
    home = tmp_path_factory.mktemp("blender-home")
    env = {
        "BLENDER_USER_CONFIG": str(home / "config"),
        "BLENDER_USER_SCRIPTS": str(home / "scripts"),
    }
    first = invoke("blender-addon", "--install", env=env)
    assert f"preferences saved in {home / 'config'}" in first.output
    assert (home / "config" / "userpref.blend").is_file()
    assert (home / "scripts" / "addons" / "jobtree_submit.py").is_file()
    second = invoke("blender-addon", "--install", env=env)
    assert "Blender imports jobtree" in second.output
    return env


def runSubmissions(
    env: dict[str, str], scene: Path, calls: list[dict[str, Any]]
) -> tuple[list[dict[str, Any]], str]:
    """Open *scene* in Blender with the installed add-on, make the operator calls; the records
    the script printed, and Blender's output (where operator reports go in background mode)."""
    proc = subprocess.run(
        [
            require_tool("blender", "blender"),
            "-b",
            str(scene),
            "--python-exit-code",
            "1",
            "--python-expr",
            SUBMIT_SCRIPT,
            "--",
            json.dumps(calls),
        ],
        # As the installer runs it: not with this Python's home first on PATH (see
        # blenderEnvironment), which `python -m pytest` under pyenv has.
        env={**blenderEnvironment(), **env},
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    records = [
        json.loads(x[len(RESULT) :]) for x in proc.stdout.splitlines() if x.startswith(RESULT)
    ]
    assert len(records) == 1 + len(calls), proc.stdout + proc.stderr
    return records, proc.stdout


def frameParams(job: jobtree.JobHandle) -> list[int]:
    return parseFrames(job.params["frames"])


def test_install_and_submit_from_blender(blenderEnv: dict[str, str], tmp_path: Path) -> None:
    require_tool("ffmpeg", "ffmpeg")
    scene = make_scene(tmp_path / "shot.blend", frames=8)
    (tmp_path / "farm").mkdir()
    (tmp_path / "other").mkdir()
    q = jobtree.createJobQueue(tmp_path / "farm" / "queue")
    other = jobtree.createJobQueue(tmp_path / "other" / "queue")
    assert q.location is not None
    assert other.location is not None

    (info, byPrefs, explicit), output = runSubmissions(
        blenderEnv,
        scene,
        [
            # The queue from the preferences, the frames from the scene, the default chunk.
            {
                "prefs": {"queuePath": other.location},
                "args": {"encode": False, "notify": "ann@example.com"},
            },
            # Everything given; the queue becomes the preferences' queue.
            {
                "args": {
                    "queue": q.location,
                    "frame_start": 1,
                    "frame_end": 6,
                    "chunk": 3,
                    "encode": True,
                }
            },
        ],
    )
    # The saved preferences enabled the add-on with jobtree's location; the menu has its entry.
    assert info["enabled"] == [True, True]  # enabled in the preferences, and loaded
    assert info["jobtreePath"]
    assert "jobtree_submit" in info["menu"]
    assert f"Info: jobtree {jobtree.__version__} from " in output
    assert byPrefs == {"result": ["FINISHED"], "queuePref": other.location}
    assert explicit == {"result": ["FINISHED"], "queuePref": q.location}

    # Submitted through the preferences' queue: frames 1-8 of the scene in one chunk of 10.
    [root] = other.listJobs()
    [job] = root.listSubJobs()
    assert job.jobType == "blender"
    assert frameParams(job) == list(range(1, 9))
    assert root.jobType == "command"  # no encode: a root that only holds the render jobs
    hooks = json.loads(Path(root.location, "hooks.json").read_text())
    assert [(h["when"], h["params"]["to"]) for h in hooks] == [
        ("done", "ann@example.com"),
        ("failed", "ann@example.com"),
    ]
    assert f"submitted {root.rootId[-6:]}: 2 jobs to {other.location}" in output

    # Submitted with explicit values: 2 blender jobs of 3 frames under the encode root.
    [root] = q.listJobs()
    jobs = root.listSubJobs()
    assert [j.jobType for j in jobs] == ["blender", "blender"]
    assert [frameParams(j) for j in jobs] == [[1, 2, 3], [4, 5, 6]]
    assert root.jobType == "ffmpeg"
    assert f"submitted {root.rootId[-6:]}: 3 jobs to {q.location}" in output
    # The copy of the .blend next to the queue is what the jobs render.
    [copy] = (tmp_path / "farm" / "scenes").glob("shot-*.blend")
    assert {j.params["scene"] for j in jobs} == {str(copy)}
    [outputDir] = (tmp_path / "farm" / "renders").iterdir()
    assert outputDir.name == copy.stem

    ran = run_all(q)
    images = sorted(p.name for p in outputDir.glob("*.png"))
    assert images == [f"{copy.stem}_{n:04d}.png" for n in range(1, 7)], images
    assert ran == 3
    assert root.state is jobtree.JobState.DONE, root.error
    assert root.result["frames"] == 6
    assert root.result["output"] == str(outputDir / f"{copy.stem}.mp4")
    assert Path(root.result["output"]).is_file()


def test_bad_queue_reports_error_and_writes_nothing(
    blenderEnv: dict[str, str], tmp_path: Path
) -> None:
    scene = make_scene(tmp_path / "shot.blend", frames=4)
    (tmp_path / "notaqueue").mkdir()
    q = jobtree.createJobQueue(tmp_path / "queue")
    before = sorted(p.name for p in tmp_path.iterdir())
    (_, notQueue, missing, noJobtree), _ = runSubmissions(
        blenderEnv,
        scene,
        [
            {"prefs": {"queuePath": ""}, "args": {"queue": str(tmp_path / "notaqueue")}},
            {"args": {"queue": str(tmp_path / "missing")}},
            {"prefs": {"jobtreePath": str(tmp_path / "nowhere")}, "args": {"queue": q.location}},
        ],
    )
    assert f"{tmp_path / 'notaqueue'} is not a jobtree queue" in notQueue["error"]
    assert "jobtree init" in notQueue["error"]
    assert f"queue {tmp_path / 'missing'} does not exist" in missing["error"]
    assert f"jobtree location {tmp_path / 'nowhere'} does not exist" in noJobtree["error"]
    assert "jobtree blender-addon --install" in noJobtree["error"]
    # Nothing written: no copy, no output directory, no job; the preferences keep their queue.
    assert sorted(p.name for p in tmp_path.iterdir()) == before
    assert list((tmp_path / "notaqueue").iterdir()) == []
    assert q.listJobs() == []
    assert {r["queuePref"] for r in (notQueue, missing, noJobtree)} == {""}


def test_print_and_install_errors(tmp_path: Path) -> None:
    env = {
        "BLENDER_USER_CONFIG": str(tmp_path / "config"),
        "BLENDER_USER_SCRIPTS": str(tmp_path / "scripts"),
        "JOBTREE_BLENDER": "",
    }
    printed = invoke("blender-addon", env=env).output
    addon = Path(printed.split("add-on file:", 1)[1].split()[0])
    assert addon.name == "jobtree_submit.py"
    assert addon.is_file()
    assert "jobtree location:" in printed
    assert "--install" in printed

    missing = invoke(
        "blender-addon",
        "--install",
        "--blender",
        str(tmp_path / "nope"),
        env=env,
        code=Exit.UNAVAILABLE,
    )
    assert f"Blender not found: {tmp_path / 'nope'}" in missing.output
    # A Blender that fails: its output is in the message.
    fake = tmp_path / "blender"
    fake.write_text("#!/bin/sh\necho 'Blender 9.9 (fake)'\necho 'something broke' >&2\nexit 3\n")
    fake.chmod(0o755)
    failed = invoke("blender-addon", "--install", "--blender", str(fake), env=env, code=Exit.FAILED)
    assert "Blender exited with code 3" in failed.output
    assert "something broke" in failed.output
    assert not (tmp_path / "config").exists()


def test_blender_runs_without_this_pythons_home_on_path(monkeypatch: pytest.MonkeyPatch) -> None:
    """Blender takes the first python3.X on PATH as its home: the installer's Blender must not
    find this Python there (pyenv exec and activated virtualenvs put it first)."""
    own = os.path.dirname(sys.executable)
    monkeypatch.setenv("PATH", os.pathsep.join([own, "/usr/bin", own + os.sep, "/bin"]))
    assert blenderEnvironment()["PATH"].split(os.pathsep) == ["/usr/bin", "/bin"]
