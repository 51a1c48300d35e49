"""The `jobtree` command line on real queues: every command, its --json output parsed back, exit
codes, addressing, submission files, the quick form, and a few runs of the real executable."""

from __future__ import annotations

import importlib.util
import json
import os
import signal
import socket
import subprocess

import pytest
from cli_util import (
    COMMAND_TYPE,
    cmd_job,
    executable,
    jobtree,
    jobtree_json,
    run_exe,
    run_jobs,
    run_one,
    submit_command,
    write_tree,
)
from testutil import subprocess_env, wait_for

import jobtree as jt
from jobtree.cli import Exit
from jobtree.cli._cmd_queue import parseDuration
from jobtree.cli._treefile import substitute
from jobtree.frames import parseFrames

pytestmark = pytest.mark.usefixtures("cli_env")


def _ids(data: dict) -> list[str]:
    return [r["id"] for r in data["roots"]]


# -- queue, config, errors -----------------------------------------------------------------------


def test_every_command_has_help():
    commands = jobtree("--help").stdout
    for name in [
        "init",
        "submit",
        "ls",
        "tree",
        "show",
        "logs",
        "retry",
        "cancel",
        "pause",
        "resume",
        "rm",
        "priority",
        "workers",
        "stats",
        "top",
        "check",
        "worker",
        "gui",
        "archive",
        "config",
        "limit",
        "schedule",
    ]:
        assert name in commands
        assert "Usage: jobtree " + name in jobtree(name, "--help").stdout


def test_init_settings_and_exit_codes(tmp_path):
    data = jobtree_json("init", tmp_path / "a", "-s", "maxAttempts=3", "-s", "priority=2")
    assert data == {"location": str(tmp_path / "a"), "settings": {"maxAttempts": 3, "priority": 2}}
    assert jt.JobQueue(tmp_path / "a").settings == {"maxAttempts": 3, "priority": 2}
    # An existing queue is refused; a missing parent and bad settings are usage errors.
    assert "already a jobtree queue" in jobtree("init", tmp_path / "a", code=5).stderr
    assert "--parents" in jobtree("init", tmp_path / "x" / "y", code=2).stderr
    jobtree("init", "--parents", tmp_path / "x" / "y")
    err = jobtree("init", tmp_path / "b", "-s", "leaseSeconds=0.5", code=2).stderr
    assert "leaseSeconds" in err
    assert (
        "unknown setting 'bogus'" in jobtree("init", tmp_path / "c", "-s", "bogus=1", code=2).stderr
    )
    assert "KEY=VALUE" in jobtree("init", tmp_path / "c", "-s", "novalue", code=2).stderr


def test_queue_resolution_and_config_file(tmp_path, monkeypatch):
    jobtree("init", tmp_path / "q1")
    jobtree("init", tmp_path / "q2")
    # Nothing configured: exit 3 with what to do.
    err = jobtree("ls", code=3).stderr
    assert "no queue given" in err
    assert "JOBTREE_QUEUE" in err
    assert "not a jobtree queue" in jobtree("ls", "-q", tmp_path, code=3).stderr
    assert "does not exist" in jobtree("ls", "-q", tmp_path / "nope", code=3).stderr
    # The config file, then $JOBTREE_QUEUE, then `jobtree -q`, then the command's -q win.
    (tmp_path / "config.toml").write_text(f'queue = "{tmp_path / "q1"}"\ncolor = false\n')
    data = jobtree_json("config")
    assert data["queue"] == str(tmp_path / "q1")
    assert data["color"] == "never"
    assert data["queueSource"].startswith("config file")
    assert data["queueSettings"] == {}
    assert jobtree_json("ls")["queue"] == str(tmp_path / "q1")
    monkeypatch.setenv("JOBTREE_QUEUE", str(tmp_path / "q2"))
    assert jobtree_json("ls")["queue"] == str(tmp_path / "q2")
    assert jobtree_json("config")["queueSource"] == "$JOBTREE_QUEUE"
    assert jobtree_json("-q", tmp_path / "q1", "ls")["queue"] == str(tmp_path / "q1")
    assert jobtree_json("-q", tmp_path / "q1", "ls", "-q", tmp_path / "q2")["queue"] == str(
        tmp_path / "q2"
    )
    # A bad config file is a clear usage error; unknown keys are warnings.
    (tmp_path / "config.toml").write_text("queue = [\n")
    assert "not valid TOML" in jobtree("ls", code=2).stderr
    (tmp_path / "config.toml").write_text("colour = true\n")
    result = jobtree("ls")
    assert "unknown key 'colour'" in result.stderr


def test_color_option(q):
    submit_command(q, "true")
    plain = jobtree("ls").stdout
    assert "\x1b[" not in plain
    assert "\x1b[" in jobtree("--color", "always", "ls").stdout
    assert "\x1b[" not in jobtree("--color", "always", "--no-color", "ls").stdout


# -- submit: the quick form ----------------------------------------------------------------------


def test_quick_form_frames_chunks_and_placeholders(q, tmp_path):
    data = jobtree_json(
        "submit",
        q,
        "--frames",
        "1-5",
        "--chunk",
        "2",
        "--label",
        "shot",
        "-p",
        "4",
        "--",
        "sh",
        "-c",
        "echo frames {first}-{last}",
    )
    root = data["roots"][0]
    assert root["jobs"] == 4
    assert root["label"] == "shot"
    assert root["jobType"] == COMMAND_TYPE
    tree = jobtree_json("tree", root["id"])["jobs"][0]
    assert [c["label"] for c in tree["children"]] == ["frames 1-2", "frames 3-4", "frame 5"]
    assert {c["priority"] for c in tree["children"]} == {4}
    assert run_jobs(q) == 4
    assert jobtree("logs", f"{root['id']}:0001").stdout == "frames 3-4\n"
    assert jobtree("logs", f"{root['id']}:2").stdout == "frames 5-5\n"
    # {frame} runs the command once per frame of the chunk; a format spec pads.
    sid = submit_command(
        q, "sh", "-c", "echo f{frame:03d}", options=("--frames", "1-5x2", "-c", "3")
    )
    run_jobs(q)
    assert jobtree("logs", f"{sid}:0").stdout == "f001\nf003\nf005\n"
    roots = jobtree_json("ls")["roots"]
    assert [r["summaryState"] for r in roots] == ["done", "done"]
    assert roots[0]["treeProgress"] == 100


def test_quick_form_cwd_failure_and_usage_errors(q, tmp_path):
    work = tmp_path / "work"
    work.mkdir()
    sid = submit_command(q, "sh", "-c", "pwd; exit 3", options=("--cwd", str(work)))
    run_jobs(q)
    assert jobtree("logs", sid).stdout == f"{work}\n"
    shown = jobtree_json("show", sid)
    assert shown["state"] == "failed"
    # The message ends with the command's last output, which tells the user why.
    assert shown["error"] == (
        f"command sh -c 'pwd; exit 3' exited with status 3; its last output:\n{work}"
    )
    sid = submit_command(q, "no-such-program-xyz")
    run_jobs(q)
    assert "program 'no-such-program-xyz' was not found" in jobtree_json("show", sid)["error"]
    assert "{first}" in jobtree("submit", q, "--", "echo", "{first}", code=2).stderr
    assert "empty" in jobtree("submit", q, "--", code=2).stderr
    assert "nothing to submit" in jobtree("submit", q, code=2).stderr
    assert "bad frame range" in jobtree("submit", q, "-f", "5-1", "--", "true", code=2).stderr
    tree = write_tree(tmp_path / "t.json", cmd_job("x"))
    assert "not both" in jobtree("submit", q, tree, "--", "true", code=2).stderr
    assert "--frames" in jobtree("submit", q, tree, "-f", "1-2", code=2).stderr


def test_quick_form_metadata_and_job_options(q):
    sid = submit_command(
        q, "true", options=("-m", "shot=010", "-m", "artist=ann", "-o", "maxAttempts=3")
    )
    shown = jobtree_json("show", sid)
    assert shown["metadata"] == {"shot": "010", "artist": "ann"}
    assert shown["jobOptions"]["maxAttempts"] == 3
    assert (
        "unknown job option 'bogus'"
        in jobtree("submit", q, "-o", "bogus=1", "--", "true", code=2).stderr
    )


# -- submit: files -------------------------------------------------------------------------------

YAML_TREE = f"""
jobType: {COMMAND_TYPE}
label: encode
params: {{commands: [[sh, -c, "echo encode >> order.txt"]]}}
children:
  - jobType: {COMMAND_TYPE}
    label: render B
    dependsOn: [render A]
    params: {{commands: [[sh, -c, "echo B >> order.txt"]]}}
  - jobType: {COMMAND_TYPE}
    label: render A
    params: {{commands: [[sh, -c, "echo A >> order.txt"]]}}
"""

TOML_TREE = f"""
jobType = "{COMMAND_TYPE}"
label = "encode"
params = {{commands = [["sh", "-c", "echo encode >> order.txt"]]}}
[[children]]
jobType = "{COMMAND_TYPE}"
label = "render B"
dependsOn = ["root.0001"]
params = {{commands = [["sh", "-c", "echo B >> order.txt"]]}}
[[children]]
jobType = "{COMMAND_TYPE}"
label = "render A"
params = {{commands = [["sh", "-c", "echo A >> order.txt"]]}}
"""


@pytest.mark.parametrize("fmt", ["json", "toml", "yaml", "stdin"])
def test_submit_file_formats_with_dependencies(q, tmp_path, fmt):
    order = tmp_path / "order.txt"
    if fmt == "json":
        root = cmd_job("encode", "sh", "-c", f"echo encode >> {order}")
        root["children"] = [
            cmd_job("render B", "sh", "-c", f"echo B >> {order}", dependsOn=["1"]),
            cmd_job("render A", "sh", "-c", f"echo A >> {order}"),
        ]
        args = [write_tree(tmp_path / "t.json", root)]
        stdin = None
    else:
        text = (TOML_TREE if fmt == "toml" else YAML_TREE).replace("order.txt", str(order))
        if fmt == "stdin":
            args, stdin = ["-", "--format", "yaml"], text
        else:
            (tmp_path / f"t.{fmt}").write_text(text)
            args, stdin = [tmp_path / f"t.{fmt}"], None
    dry = json.loads(jobtree("submit", q, *args, "--dry-run", "--json", input=stdin).stdout)
    assert dry["dryRun"] is True
    assert dry["roots"][0]["jobs"] == 3
    assert dry["roots"][0]["id"] is None
    assert jobtree_json("ls")["roots"] == []
    assert os.listdir(q / "staging") == []
    data = json.loads(jobtree("submit", q, *args, "--json", input=stdin).stdout)
    sid = data["roots"][0]["id"]
    shown = jobtree_json("show", f"{sid}:0")
    assert shown["dependsOn"] == [f"{sid}:0001"]
    assert shown["label"] == "render B"
    assert jobtree_json("show", f"{sid}:1")["dependants"] == [f"{sid}:0000"]
    assert run_jobs(q) == 3
    assert order.read_text().split() == ["A", "B", "encode"]


def test_submit_several_roots_and_priority(q, tmp_path):
    tree = write_tree(tmp_path / "t.json", {"roots": [cmd_job("one"), cmd_job("two")]})
    data = jobtree_json("submit", q, tree, "--priority", "3")
    assert [r["label"] for r in data["roots"]] == ["one", "two"]
    assert {r["priority"] for r in jobtree_json("ls")["roots"]} == {3}
    out = jobtree("submit", q, tree).stdout
    assert out.count("submitted ") == 2
    assert "(1 job)" in out


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ('{"jobType": "x", "childs": []}', "unknown key(s) 'childs' (did you mean 'children'?)"),
        ('{"label": "a"}', "'jobType' is required"),
        ("[1, 2]", "must describe a job"),
        ('{"jobType": ', "not valid JSON"),
        ('{"jobType": "nosuch.module:X"}', "cannot import module 'nosuch.module'"),
        (f'{{"jobType": "{COMMAND_TYPE}", "dependsOn": ["zz"]}}', "dependsOn 'zz' names no job"),
        (
            f'{{"jobType": "{COMMAND_TYPE}", "label": "a", "children": '
            f'[{{"jobType": "{COMMAND_TYPE}", "dependsOn": ["a"]}}]}}',
            "cycle",
        ),
        (
            f'{{"jobType": "{COMMAND_TYPE}", "params": {{"commands": "x"}}}}',
            "rejected its parameters",
        ),
        (f'{{"jobType": "{COMMAND_TYPE}", "params": {{"label": "x"}}}}', "may not contain 'label'"),
        (
            f'{{"jobType": "{COMMAND_TYPE}", "jobOptions": {{"prio": 1}}}}',
            "unknown job option 'prio'",
        ),
        (f'{{"jobType": "{COMMAND_TYPE}", "children": {{}}}}', "'children' must be a list"),
    ],
)
def test_submit_bad_files_name_file_and_job(q, tmp_path, content, message):
    path = tmp_path / "bad.json"
    path.write_text(content)
    result = jobtree("submit", q, path, code=2)
    assert message in result.stderr
    assert "bad.json" in result.stderr
    assert "Traceback" not in result.output
    assert jobtree_json("ls")["roots"] == []
    assert os.listdir(q / "staging") == []


def test_submit_file_errors(q, tmp_path):
    assert "does not exist" in jobtree("submit", q, tmp_path / "nope.json", code=2).stderr
    (tmp_path / "t.txt").write_text("{}")
    assert "--format" in jobtree("submit", q, tmp_path / "t.txt", code=2).stderr


# -- addressing ----------------------------------------------------------------------------------


def test_job_addresses(q, tmp_path, monkeypatch):
    data = jobtree_json("submit", q, "-f", "1-12", "--", "true")["roots"][0]
    sid, rid = data["id"], data["rootId"]
    assert rid.endswith(sid)
    assert len(sid) == 6
    loc = q / "roots" / rid / "0011"
    for address in (
        f"{sid}:0011",
        f"{sid}:11",
        f"{sid}/0011",
        f"{sid}:root.0011",
        f"{rid}:11",
        sid[-4:] + ":11",
        str(loc),
    ):
        assert jobtree_json("show", address)["location"] == str(loc), address
    # A directory names its queue: no queue needed.
    monkeypatch.delenv("JOBTREE_QUEUE")
    assert jobtree_json("show", str(loc))["id"] == f"{sid}:0011"
    monkeypatch.chdir(loc)
    assert jobtree_json("show", ".")["id"] == f"{sid}:0011"
    monkeypatch.setenv("JOBTREE_QUEUE", str(q))
    # Not found (4) and malformed (2), each naming the address.
    assert "has no sub-job root.0012" in jobtree("show", f"{sid}:12", code=4).stderr
    assert "no root id ends in 'abcdef'" in jobtree("show", "abcdef", code=4).stderr
    assert "bad job address 'not-a-job'" in jobtree("show", "not-a-job", code=2).stderr
    assert "not a sub-job number" in jobtree("show", f"{sid}:x", code=2).stderr
    assert "bad job address 'ab'" in jobtree("show", "ab", code=2).stderr


def test_ambiguous_short_id(q):
    for _ in range(2):
        submit_command(q, "true")
    roots = sorted(os.listdir(q / "roots"))
    for i, rid in enumerate(roots):
        os.rename(q / "roots" / rid, q / "roots" / (rid[:-6] + f"{i}aa111"))
    err = jobtree("show", "111", code=4).stderr
    assert "ambiguous" in err
    assert "2 roots" in err
    assert jobtree_json("show", "0aa111")["id"] == "0aa111"


# -- ls, tree, show ------------------------------------------------------------------------------


def test_ls_and_tree_filters(q, tmp_path):
    a = submit_command(q, "true", options=("-l", "shot010 comp", "-m", "shot=010", "-f", "1-3"))
    b = submit_command(q, "false", options=("-l", "shot020 fx", "-m", "shot=020"))
    run_jobs(q)
    ls = jobtree_json("ls")
    assert _ids(ls) == [a, b]
    ra, rb = ls["roots"]
    assert ra["counts"]["done"] == 4
    assert ra["jobs"] == 4
    assert ra["summaryState"] == "done"
    assert rb["state"] == "failed"
    assert rb["error"].startswith("command false")
    assert rb["host"] == socket.gethostname()
    assert rb["attempt"] == 1
    assert _ids(jobtree_json("ls", "--state", "failed")) == [b]
    assert _ids(jobtree_json("ls", "--label", "SHOT010*")) == [a]
    assert _ids(jobtree_json("ls", "--meta", "shot=02?")) == [b]
    assert _ids(jobtree_json("ls", "--host", socket.gethostname())) == [a, b]
    assert _ids(jobtree_json("ls", "--host", "elsewhere")) == []
    assert "no roots match" in jobtree("ls", "-s", "paused").stdout
    # tree: sub-jobs, depth, filters keep matching jobs and their ancestors.
    tree = jobtree_json("tree")["jobs"]
    assert [t["id"] for t in tree] == [a, b]
    assert [c["id"] for c in tree[0]["children"]] == [f"{a}:0000", f"{a}:0001", f"{a}:0002"]
    assert tree[0]["childCount"] == 3
    assert tree[0]["counts"]["done"] == 4
    shallow = jobtree_json("tree", "--depth", "0")["jobs"][0]
    assert shallow["children"] == []
    assert shallow["childCount"] == 3
    only = jobtree_json("tree", "--label", "frame 2")["jobs"]
    assert [t["id"] for t in only] == [a]
    assert [c["label"] for c in only[0]["children"]] == ["frame 2"]
    assert jobtree_json("tree", f"{a}:1")["jobs"][0]["label"] == "frame 2"
    text = jobtree("tree").stdout
    assert "shot010 comp" in text
    assert f"{a}:0002 frame 3" in text
    assert "✘ failed" in text
    text = jobtree("ls").stdout
    assert "shot020 fx" in text
    assert "100%" in text


def test_show_attempts_why_waiting_and_traceback(q, tmp_path):
    tree = write_tree(
        tmp_path / "t.json",
        cmd_job(
            "parent",
            children=[cmd_job("flaky", "false", jobOptions={"maxAttempts": 2, "retryDelay": 0})],
        ),
    )
    sid = jobtree_json("submit", q, tree)["roots"][0]["id"]
    waiting = jobtree_json("show", sid)
    assert waiting["state"] == "waiting"
    assert "1 sub-job" in waiting["whyWaiting"]
    assert waiting["children"] == [f"{sid}:0000"]
    assert waiting["parent"] is None
    assert "ready" in jobtree_json("show", f"{sid}:0")["whyWaiting"]
    run_jobs(q)
    wait_for(lambda: run_one(q) or jobtree_json("show", f"{sid}:0")["state"] == "failed")
    run_jobs(q)
    child = jobtree_json("show", f"{sid}:0")
    assert child["state"] == "failed"
    assert child["attempt"] == 2
    assert [a["outcome"] for a in child["attempts"]] == ["failed", "failed"]
    assert all(a["error"].startswith("command false") for a in child["attempts"])
    parent = jobtree_json("show", sid)
    assert parent["state"] == "blocked"
    assert parent["whyWaiting"]
    text = jobtree("show", f"{sid}:0").stdout
    assert "attempts" in text
    assert "command false exited with status 1" in text
    # A Python exception keeps its traceback.
    job = {"jobType": "procs_for_tests:FailProc", "params": {"message": "kaboom"}}
    fid = jobtree_json("submit", q, write_tree(tmp_path / "f.json", job))["roots"][0]["id"]
    run_jobs(q)
    shown = jobtree_json("show", fid)
    assert "kaboom" in shown["error"]


# -- logs ----------------------------------------------------------------------------------------


def test_logs(q):
    sid = submit_command(q, "sh", "-c", "echo out; echo err >&2")
    assert "has not run yet" in jobtree("logs", sid).stderr
    assert jobtree_json("logs", sid)["attempt"] == 0
    run_jobs(q)
    assert jobtree("logs", sid).stdout == "out\n"
    assert jobtree("logs", sid, "--stderr").stdout == "err\n"
    assert jobtree("logs", sid, "--attempt", "1", "--stderr").stdout == "err\n"
    data = jobtree_json("logs", sid, "--stderr")
    assert data == {
        "id": sid,
        "location": data["location"],
        "attempt": 1,
        "stream": "stderr",
        "bytes": 4,
        "text": "err\n",
    }
    assert "no attempt 2" in jobtree("logs", sid, "--attempt", "2", code=4).stderr
    assert jobtree("logs", sid, "-f").stdout == "out\n"  # finished: prints and returns
    assert "--follow" in jobtree("logs", sid, "-f", "--json", code=2).stderr
    bad = submit_command(q, "sh", "-c", "echo bye; exit 1")
    run_jobs(q)
    result = jobtree("logs", bad, "-f", code=1)
    assert result.stdout == "bye\n"
    assert "is failed" in result.stderr


def test_logs_follow_a_running_job_real_executable(q):
    sid = submit_command(q, "sh", "-c", "echo first; sleep 0.6; echo second; sleep 0.3; echo third")
    follower = subprocess.Popen(
        [*executable(), "logs", "-f", sid],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**subprocess_env(), "JOBTREE_QUEUE": str(q)},
    )
    try:
        assert follower.stderr is not None
        assert "waiting for it to start" in follower.stderr.readline()
        assert run_one(q)
        out, err = follower.communicate(timeout=20)
    finally:
        if follower.poll() is None:
            follower.kill()
            follower.wait()
    assert follower.returncode == 0, err
    assert out == "first\nsecond\nthird\n"


# -- control commands ----------------------------------------------------------------------------


def test_pause_resume_priority_cancel_retry(q, tmp_path):
    a = submit_command(q, "true", options=("-f", "1-2"))
    b = submit_command(q, "true")
    res = jobtree_json("pause", a)
    assert res == {"action": "pause", "jobs": [res["jobs"][0]], "total": 2}
    assert jobtree_json("show", f"{a}:0")["state"] == "paused"
    assert "paused" in jobtree_json("show", f"{a}:0")["whyWaiting"]
    assert run_jobs(q) == 1  # only b
    assert jobtree_json("resume", a)["total"] == 2
    # priority: negative values are values, not options.
    assert jobtree_json("priority", a, "-5")["total"] == 3
    assert jobtree_json("show", f"{a}:1")["priority"] == -5
    assert "jobs set to priority 7" in jobtree("priority", a, b, "7").stdout
    assert "integer" in jobtree("priority", a, "high", code=2).stderr
    assert "one or more jobs" in jobtree("priority", "7", code=2).stderr
    assert jobtree_json("cancel", a)["total"] == 3
    assert jobtree_json("ls", "--state", "cancelled")["roots"][0]["id"] == a
    assert jobtree_json("retry", a, "--no-recursive")["total"] == 1
    assert jobtree_json("retry", a)["total"] == 2
    assert run_jobs(q) == 3
    assert jobtree("retry", a).stdout == f"{a}: 0 jobs retried\n"


def test_rm_confirmation_and_running_refusal(q, tmp_path):
    release = tmp_path / "release"
    started = tmp_path / "started"
    sid = submit_command(
        q, "sh", "-c", f"touch {started}; while [ ! -e {release} ]; do sleep 0.05; done"
    )
    other = submit_command(q, "true", options=("-f", "1-3"))
    worker = subprocess.Popen(
        [*executable(), "worker", q, "--burst", "-w", "1", "--allow-root", "--poll", "0.2"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        env=subprocess_env(),
        start_new_session=True,
    )
    try:
        wait_for(started.exists, timeout=20, what="the job to start")
        workers = jobtree_json("workers")["workers"]
        assert len(workers) == 1
        assert workers[0]["state"] == "busy"
        assert workers[0]["currentJobId"] == sid
        assert workers[0]["lost"] is False
        assert jobtree_json("show", sid)["state"] == "running"
        top = jobtree_json("top")
        assert [j["id"] for j in top["running"]] == [sid]
        assert top["workers"]["busy"] == 1
        assert sid in jobtree("top", "--once").stdout
        assert "without confirmation" in jobtree("rm", sid, code=5).stderr
        assert "running" in jobtree("rm", sid, "--yes", code=5).stderr
        assert jobtree_json("rm", f"{other}:1", "--yes")["total"] == 1
        assert [c["label"] for c in jobtree_json("tree", other)["jobs"][0]["children"]] == [
            "frame 1",
            "frame 3",
        ]
        assert jobtree_json("rm", other, "--yes")["total"] == 3
        release.touch()
        assert worker.wait(timeout=30) == 0, worker.stderr.read() if worker.stderr else ""
    finally:
        if worker.poll() is None:
            os.killpg(worker.pid, signal.SIGKILL)
            worker.wait()
        if worker.stderr:
            worker.stderr.close()
    assert jobtree_json("show", sid)["state"] == "done"
    assert jobtree_json("rm", sid, "-y")["jobs"][0]["count"] == 1
    assert jobtree_json("ls")["roots"] == []
    assert "no root id" in jobtree("rm", sid, "-y", code=4).stderr


# -- stats, top, check, archive ------------------------------------------------------------------


def test_stats(q):
    submit_command(q, "true", options=("-f", "1-4"))
    submit_command(q, "false")
    run_jobs(q)
    data = jobtree_json("stats", "--since", "10m")
    assert data["jobs"]["done"] == 5
    assert data["jobs"]["failed"] == 1
    assert data["roots"]["done"] == 1
    assert data["roots"]["failed"] == 1
    period = data["period"]
    assert period["seconds"] == 600
    assert period["done"] == 5
    assert period["failed"] == 1
    assert period["perMinute"] == pytest.approx(6 / 10)
    assert period["runTime"]["count"] == 5
    assert period["runTime"]["median"] >= 0
    assert period["attempts"] == {"done": 5, "failed": 1}
    assert sum(b["done"] for b in period["timeline"]) == 5
    text = jobtree("stats").stdout
    assert "5 done, 1 failed" in text
    assert "jobs/min" in text
    assert "not a duration" in jobtree("stats", "--since", "soon", code=2).stderr


def test_top_once(q):
    a = submit_command(q, "true", options=("-l", "big job", "-f", "1-3"))
    run_one(q)
    data = jobtree_json("top")
    assert [r["id"] for r in data["roots"]] == [a]
    assert data["doneRoots"] == 0
    assert data["jobs"]["done"] == 1
    assert data["running"] == []
    out = jobtree("top", "--once").stdout
    assert "big job" in out
    assert "nothing is running" in out


def test_check(q):
    assert jobtree_json("check") == {"queue": str(q), "problems": [], "remaining": 0}
    assert "no problems" in jobtree("check").stdout
    stale = q / "trash" / "leftover"
    stale.mkdir()
    data = jobtree_json("check", code=1)
    assert data["remaining"] == 1
    assert data["problems"][0]["kind"] == "interrupted deletion"
    assert "--repair" in jobtree("check", code=1).stdout
    data = jobtree_json("check", "--repair")
    assert data["remaining"] == 0
    assert data["problems"][0]["repaired"] is True
    assert not stale.exists()


def test_archive(q):
    a = submit_command(q, "true")
    b = submit_command(q, "true")
    run_jobs(q)
    data = jobtree_json("archive", q, "--done-age", "0")
    assert len(data["roots"]) == 2
    assert jobtree_json("ls")["roots"] == []
    archived = jobtree_json("ls", "--archived")["roots"]
    assert sorted(r["id"] for r in archived) == sorted([a, b])
    assert archived[0]["summaryState"] == "done"
    assert "bad" not in jobtree("archive", q, "--action", "delete", "--keep-done", "0").stderr


# -- worker, workers, gui ------------------------------------------------------------------------


def test_worker_burst_and_refusals(q, tmp_path):
    submit_command(q, "true", options=("-f", "1-4"))
    done = run_exe("worker", q, "--burst", "-w", "2", "--allow-root", "--poll", "0.2")
    assert done.returncode == 0, done.stderr
    assert jobtree_json("ls")["roots"][0]["summaryState"] == "done"
    assert jobtree_json("workers")["workers"] == []  # clean exits remove their records
    assert "no workers" in jobtree("workers").stdout
    bad = run_exe("worker", tmp_path / "nope")
    assert bad.returncode == 3
    assert "does not exist" in bad.stderr
    assert "Traceback" not in bad.stderr


def test_gui_command(q, monkeypatch):
    if importlib.util.find_spec("jobtree.gui.app") is None:
        result = jobtree("gui", q, code=Exit.UNAVAILABLE)
        assert "GUI is not available" in result.stderr
        pytest.skip("jobtree.gui.app does not exist yet: only the 'unavailable' path was tested")
    import jobtree.gui.app as guiApp

    calls = []
    monkeypatch.setattr(guiApp, "main", lambda argv: calls.append(argv) or 0)
    jobtree("gui", q)
    jobtree("gui")
    assert calls == [[str(q)], [str(q)]]
    jobtree("gui", q / "nope", code=3)


# -- the real executable -------------------------------------------------------------------------


def test_executable_errors_completion_and_json(q):
    sid = submit_command(q, "true", options=("-l", "complete me"))
    env = {"JOBTREE_QUEUE": str(q)}
    result = run_exe("ls", "--json", env=env)
    assert result.returncode == 0
    assert _ids(json.loads(result.stdout)) == [sid]
    result = run_exe("show", "ffffff", env=env)
    assert result.returncode == 4
    assert "Traceback" not in result.stderr
    assert result.stderr.startswith("Error: no job 'ffffff'")
    result = run_exe("ls", env={"JOBTREE_QUEUE": str(q / "nope")})
    assert result.returncode == 3
    assert "from $JOBTREE_QUEUE" in result.stderr
    result = run_exe("frobnicate")
    assert result.returncode == 2
    assert "No such command" in result.stderr
    script = run_exe(env={"_JOBTREE_COMPLETE": "bash_source"})
    assert script.returncode == 0
    assert "_jobtree_completion" in script.stdout
    completion = run_exe(
        env={
            **env,
            "_JOBTREE_COMPLETE": "bash_complete",
            "COMP_WORDS": "jobtree show ",
            "COMP_CWORD": "2",
        }
    )
    assert f"plain,{sid}" in completion.stdout
    assert (
        "--state"
        in run_exe(
            env={
                "_JOBTREE_COMPLETE": "bash_complete",
                "COMP_WORDS": "jobtree ls --st",
                "COMP_CWORD": "2",
            }
        ).stdout
    )


# -- parsing helpers -----------------------------------------------------------------------------


def test_parsers():
    assert parseFrames("1-5") == [1, 2, 3, 4, 5]
    assert parseFrames("1-9x4, 2, 3-4") == [1, 5, 9, 2, 3, 4]
    assert parseFrames("7") == [7]
    for bad in ("", "a-b", "5-1", "1-3x0"):
        with pytest.raises(ValueError, match="frame range"):
            parseFrames(bad)
    assert substitute(["-s", "{first}", "{last:04d}", "{frame}", "{x} {}"], 1, 9, None) == [
        "-s",
        "1",
        "0009",
        "{frame}",
        "{x} {}",
    ]
    assert substitute(["f{frame:03d}.exr"], 1, 9, 7) == ["f007.exr"]
    assert parseDuration("1h30m") == 5400
    assert parseDuration("90") == 90
    assert parseDuration("2d") == 172800
    assert parseDuration("0.5m") == 30


def test_damaged_queue_and_job(q, tmp_path):
    sid = submit_command(q, "true", options=("-f", "1-2"))
    rid = os.listdir(q / "roots")[0]
    (q / "roots" / rid / "0001" / "job.json").write_text("{bad")
    tree = jobtree_json("tree", sid)["jobs"][0]
    assert [c["jobType"] for c in tree["children"]] == [COMMAND_TYPE, "?"]
    shown = jobtree_json("show", f"{sid}:1")
    assert "is corrupt" in shown["corrupt"]
    assert "is corrupt" in jobtree("show", f"{sid}:1").stdout
    jobtree("ls")
    newer = tmp_path / "newer"
    newer.mkdir()
    (newer / "jobtree-queue.json").write_text('{"format": "jobtree-queue", "version": 99}')
    assert "format version 99" in jobtree("ls", "-q", newer, code=3).stderr
    (newer / "jobtree-queue.json").write_text("{")
    assert "is corrupt" in jobtree("ls", "-q", newer, code=3).stderr
