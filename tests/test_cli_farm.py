"""`jobtree limit` and `jobtree schedule add|ls|rm` on real queues: --json parsed back, exit codes,
a job holding a limit in a worker subprocess, and scheduled roots run by JobQueue itself."""

from __future__ import annotations

import datetime
import json
import shlex
import socket
import sys
import time

import pytest
from cli_util import COMMAND_TYPE, jobtree, jobtree_json, run_one
from procs_for_tests import BlockingProc, NoopProc
from testutil import read_records

import jobtree as jt
from jobtree.cli import Exit

RECORD_TYPE = "procs_for_tests:RecordProc"


pytestmark = pytest.mark.usefixtures("cli_env")


def _iso(t: float) -> str:
    return datetime.datetime.fromtimestamp(t, datetime.timezone.utc).isoformat()


def test_help_lists_the_farm_commands():
    commands = jobtree("--help").stdout
    assert "limit" in commands
    assert "schedule" in commands
    for sub in ("add", "ls", "rm"):
        assert sub in jobtree("schedule", "--help").stdout
        jobtree("schedule", sub, "--help")


# -- limits --------------------------------------------------------------------------------------


def test_limit_set_list_show(q):
    assert jobtree_json("limit") == {"queue": str(q), "limits": []}
    assert "no limits" in jobtree("limit").stdout

    data = jobtree_json("limit", "blender-licence", 4)
    assert data == {
        "queue": str(q),
        "name": "blender-licence",
        "slots": 4,
        "inUse": 0,
        "holders": [],
        "previous": None,
    }
    assert jt.JobQueue(q).limits() == {"blender-licence": 4}
    out = jobtree("limit", "blender-licence", 2).stdout
    assert "limit blender-licence: 2 slots (was 4), 0 in use" in out
    jobtree("limit", "nuke", 0)

    listed = jobtree_json("limit")["limits"]
    assert [(r["name"], r["slots"], r["inUse"]) for r in listed] == [
        ("blender-licence", 2, 0),
        ("nuke", 0, 0),
    ]
    lines = jobtree("limit").stdout.splitlines()
    assert lines[0].split() == ["NAME", "SLOTS", "IN", "USE", "HELD", "BY"]
    assert lines[1].split() == ["blender-licence", "2", "0", "-"]

    one = jobtree_json("limit", "nuke")
    assert (one["name"], one["slots"], one["inUse"]) == ("nuke", 0, 0)
    assert "previous" not in one  # only when setting
    assert jobtree("limit", "nuke").stdout.strip() == "limit nuke: 0 slots, 0 in use"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["blender-license"], "no limit 'blender-license' in"),
        (["blender-licence", "four"], "limit 'blender-licence': SLOTS must be a whole number"),
        (["blender-licence", "-1"], "limit 'blender-licence': slots must be an int >= 0"),
        (["bad/name", "2"], "limit name 'bad/name'"),
        (["--jsonn"], "no such option: --jsonn"),
    ],
)
def test_limit_bad_input_exits_2(q, args, message):
    jobtree("limit", "blender-licence", 1)
    result = jobtree("limit", *args, code=Exit.USAGE)
    assert message in result.stderr
    assert "Traceback" not in result.output
    assert jt.JobQueue(q).limits() == {"blender-licence": 1}


def test_limit_unknown_suggests_the_close_name(q):
    jobtree("limit", "blender-licence", 1)
    err = jobtree("limit", "blender-license", code=Exit.USAGE).stderr
    assert "did you mean 'blender-licence'?" in err
    assert "jobtree limit blender-license SLOTS" in err


def test_limit_without_a_queue(tmp_path):
    jobtree("limit", code=Exit.NO_QUEUE)
    jobtree("limit", "-q", tmp_path / "nothing", "x", "1", code=Exit.NO_QUEUE)


def test_limit_shows_the_job_holding_it(q, tmp_path, spawn_worker):
    jobtree("limit", "licence", 1)
    started, release = tmp_path / "started", tmp_path / "release"
    queue = jt.JobQueue(q)
    with queue.createJob(
        BlockingProc,
        label="holds the licence",
        startedFile=str(started),
        releaseFile=str(release),
        jobOptions={"limits": ["licence"]},
    ) as root:
        pass
    with queue.createJob(NoopProc, label="wants it too", jobOptions={"limits": ["licence"]}):
        pass
    worker = spawn_worker(q, "--once")
    try:
        worker.wait_for_file(started)
        data = jobtree_json("limit")
        (rec,) = data["limits"]
        assert (rec["name"], rec["slots"], rec["inUse"]) == ("licence", 1, 1)
        (holder,) = rec["holders"]
        assert holder["rootId"] == root.rootId
        assert holder["id"] == root.rootId[-6:]
        assert holder["path"] == "root"
        assert holder["location"] == root.location
        assert holder["label"] == "holds the licence"
        assert holder["host"] == socket.gethostname()
        assert holder["pid"] == worker.pid
        assert holder["token"].startswith(f"roots/{root.rootId}/_index/running/root@")
        assert jobtree_json("limit", "licence")["holders"] == [holder]

        table = jobtree("limit").stdout.splitlines()
        assert table[1].split() == ["licence", "1", "1", root.rootId[-6:]]
        shown = jobtree("limit", "licence").stdout
        assert "limit licence: 1 slot, 1 in use" in shown
        assert f"{root.rootId[-6:]} holds the licence" in shown
        assert f"pid {worker.pid}" in shown
        # The other job waits for the slot: nothing else may start.
        assert run_one(q) is False

        # More slots free the other job at once (limits are re-read at most once a second).
        assert jobtree_json("limit", "licence", 2)["inUse"] == 1
    finally:
        release.touch()
    assert worker.wait(30) == 0, worker.stderr
    assert jobtree_json("limit", "licence") == {
        "queue": str(q),
        "name": "licence",
        "slots": 2,
        "inUse": 0,
        "holders": [],
    }


# -- schedules -----------------------------------------------------------------------------------


def test_schedule_add_runs_ls_rm(q, tmp_path):
    log = tmp_path / "log"
    data = jobtree_json(
        "schedule",
        "add",
        "report",
        RECORD_TYPE,
        "--interval",
        "1h",
        "--param",
        f"recordFile={log}",
        "--param",
        'tags=["a", 1]',
        "--label",
        "hourly report",
        "-o",
        "priority=5",
        "-m",
        "shot=010",
    )
    s = data["schedule"]
    assert data["queue"] == str(q)
    assert s["name"] == "report"
    assert s["jobType"] == RECORD_TYPE
    assert s["interval"] == 3600
    assert s["cron"] is None
    assert s["repeats"] is None
    assert s["params"] == {"recordFile": str(log), "tags": ["a", 1]}
    assert s["label"] == "hourly report"
    assert s["jobOptions"] == {"priority": 5, "metadata": {"shot": "010"}}
    assert s["created"] == 0
    assert s["lastSlot"] is None
    assert s["next"] == pytest.approx(s["start"])
    assert s["next"] <= time.time()
    assert s["finished"] is False

    queue = jt.JobQueue(q)
    assert queue.runNextAvailableJob()  # the worker's look creates the due slot, then runs it
    assert len(read_records(log)) == 1
    (h,) = queue.listJobs()
    assert h.label == "hourly report"
    assert h.jobOptions["priority"] == 5
    assert h.jobOptions["metadata"]["schedule"] == "report"
    assert h.jobOptions["metadata"]["shot"] == "010"
    assert not queue.runNextAvailableJob()  # the next slot is an hour away

    (listed,) = jobtree_json("schedule", "ls")["schedules"]
    assert listed["created"] == 1
    assert listed["lastSlot"] == int(s["start"])
    assert listed["next"] == pytest.approx(s["start"] + 3600)
    lines = jobtree("schedule", "ls").stdout.splitlines()
    assert lines[0].split() == ["NAME", "WHEN", "RUNS", "LAST", "NEXT", "JOB"]
    assert lines[1].split()[:4] == ["report", "every", "1h00m", "forever"]
    assert "in 1h00m (" in lines[1] or "in 59m" in lines[1]
    assert lines[1].endswith("hourly report")

    assert jobtree_json("schedule", "rm", "report") == {"queue": str(q), "removed": ["report"]}
    assert jobtree_json("schedule", "ls")["schedules"] == []
    assert "no schedules" in jobtree("schedule", "ls").stdout
    assert len(queue.listJobs()) == 1  # the roots it made stay


def test_schedule_quick_form_runs_the_command(q, tmp_path):
    work = tmp_path / "work"
    work.mkdir()
    code = "import pathlib; pathlib.Path('out.txt').write_text('hello')"
    out = jobtree(
        "schedule", "add", "hello", "-i", "60", "--cwd", work, "--", sys.executable, "-c", code
    ).stdout
    assert out.startswith("scheduled hello: ")
    assert "every 1m00s, forever; next due" in out
    (s,) = jobtree_json("schedule", "ls")["schedules"]
    assert s["jobType"] == COMMAND_TYPE
    assert s["params"] == {"commands": [[sys.executable, "-c", code]], "cwd": str(work)}
    assert s["label"].startswith(shlex.quote(sys.executable))

    assert run_one(q)
    assert (work / "out.txt").read_text() == "hello"
    (h,) = jt.JobQueue(q).listJobs()
    assert h.jobOptions["metadata"]["schedule"] == "hello"


def test_schedule_catch_up_repeats_and_start(q, tmp_path):
    start = time.time() - 10.5  # the farm was down for ten slots
    jobtree(
        "schedule",
        "add",
        "late",
        RECORD_TYPE,
        "-i",
        "1",
        "--catch-up",
        "--repeats",
        "3",
        "--start",
        _iso(start),
        "--param",
        f"recordFile={tmp_path / 'log'}",
    )
    future = time.time() + 7200
    jobtree(
        "schedule",
        "add",
        "later",
        RECORD_TYPE,
        "--cron",
        "*/5 * * * *",
        "--start",
        str(future),
        "--param",
        f"recordFile={tmp_path / 'log2'}",
    )
    queue = jt.JobQueue(q)
    queue.runNextAvailableJob()
    byName = {s["name"]: s for s in jobtree_json("schedule", "ls")["schedules"]}
    late, later = byName["late"], byName["later"]
    assert late["start"] == pytest.approx(start, abs=1e-3)
    assert late["catchUp"] is True
    assert late["created"] == 3
    assert late["finished"] is True
    assert late["next"] is None
    assert later["created"] == 0
    assert later["finished"] is False
    assert future <= later["next"] <= future + 300
    assert len(queue.listJobs()) == 3

    table = jobtree("schedule", "ls").stdout
    assert "every 1s, catch up" in table
    assert "3 of 3" in table
    assert "finished" in table
    assert "cron */5 * * * *" in table

    # Replaced, it keeps the slots it made: one more repeat makes one more root.
    again = jobtree_json(
        "schedule",
        "add",
        "late",
        "-i",
        "1",
        "--catch-up",
        "-n",
        "4",
        "--start",
        _iso(start),
        "--replace",
        "--",
        "true",
    )["schedule"]
    assert again["created"] == 3
    assert again["finished"] is False
    assert again["next"] <= time.time()
    jt.JobQueue(q).runNextAvailableJob()
    assert {s["name"]: s["created"] for s in jobtree_json("schedule", "ls")["schedules"]} == {
        "late": 4,
        "later": 0,
    }


def test_schedule_exists_replace_and_rm(q, tmp_path):
    args = ["schedule", "add", "tick", "-i", "5m", "--", "true"]
    jobtree(*args)
    err = jobtree(*args, code=Exit.REFUSED).stderr
    assert "schedule 'tick' exists" in err
    assert "--replace" in err
    s = jobtree_json("schedule", "add", "tick", "--cron", "0 3 * * *", "--replace", "--", "true")
    assert s["schedule"]["cron"] == "0 3 * * *"
    assert s["schedule"]["interval"] is None
    assert len(jobtree_json("schedule", "ls")["schedules"]) == 1

    err = jobtree("schedule", "rm", "tock", code=Exit.USAGE).stderr
    assert "no schedule 'tock'" in err
    assert "did you mean 'tick'?" in err
    err = jobtree("schedule", "rm", "tick", "nope", code=Exit.USAGE).stderr
    assert "no schedule 'nope'" in err
    assert "nothing removed" in err
    assert len(jobtree_json("schedule", "ls")["schedules"]) == 1
    assert jobtree("schedule", "rm", "tick").stdout.strip() == "removed schedule tick"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["-i", "5", "--cron", "* * * * *", "--", "true"], "give --interval or --cron, not both"),
        (["--", "true"], "give --interval or --cron"),
        (["-i", "5"], "nothing to schedule"),
        (["-i", "5", "--"], "the command after -- is empty"),
        (["-i", "5", COMMAND_TYPE, "--", "true"], "either JOBTYPE or a command"),
        (["--cron", "every day", "--", "true"], "'every day' is not a valid cron expression"),
        (["-i", "0", "--", "true"], "interval must be a positive number"),
        (["-i", "5", "nope.mod:Nope"], "job type 'nope.mod:Nope'"),
        (["-i", "5", COMMAND_TYPE, "--param", "commands=3"], "rejected its parameters"),
        (["-i", "5", RECORD_TYPE, "--param", "recordFile=x", "--param", "name=y"], "'name'"),
        (["-i", "5", "--param", "a=1", "--", "true"], "--param only works with JOBTYPE"),
        (["-i", "5", "--cwd", ".", COMMAND_TYPE], "--cwd only works with a command"),
        (["-i", "5", "-o", "bogus=1", "--", "true"], "unknown job option 'bogus'"),
        (["-i", "5", "-o", 'limits=["licence"]', "--", "true"], "limit 'licence' is not defined"),
    ],
)
def test_schedule_bad_input_exits_2_naming_it(q, args, message):
    result = jobtree("schedule", "add", "nightly", *args, code=Exit.USAGE)
    assert "schedule 'nightly'" in result.stderr
    assert message in result.stderr
    assert "Traceback" not in result.output
    assert jt.JobQueue(q).listSchedules() == []


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["bad/name", "-i", "5", "--", "true"], "schedule 'bad/name'"),
        (["x", "-i", "5", "--start", "yesterday", "--", "true"], "not an ISO-8601 time"),
        (["x", "-i", "5", "--repeats", "0", "--", "true"], "--repeats"),
        (["x", "-i", "5x", "--", "true"], "is not a duration"),
    ],
)
def test_schedule_bad_options_exit_2(q, args, message):
    result = jobtree("schedule", "add", *args, code=Exit.USAGE)
    assert message in result.stderr
    assert jt.JobQueue(q).listSchedules() == []


def test_schedule_json_is_plain_json(q):
    jobtree("schedule", "add", "tick", "-i", "90", "--", "echo", "hi")
    text = jobtree("schedule", "ls", "--json").stdout
    data = json.loads(text)
    assert set(data) == {"queue", "schedules"}
    assert {"name", "jobType", "params", "interval", "created", "lastSlot", "next"} <= set(
        data["schedules"][0]
    )
