"""The ``command`` procedure: argv, shell string, command sequences, env, cwd, exit codes,
progress and status from output lines; run in this process and by a real worker process."""

from __future__ import annotations

import json
import os
import socket
import sys
from pathlib import Path
from typing import Any

import pytest
from jobtree.procs.command import Command
from testutil import run_all, run_daemon

import jobtree
from jobtree import JobState

PY = sys.executable


def py(code: str) -> list[str]:
    """The argv of a Python one-liner."""
    return [PY, "-c", code]


def run_one(queue: jobtree.JobQueue, **params: Any) -> jobtree.JobHandle:
    """Submit one ``command`` job (by its short name), run it here, return its handle."""
    with queue.createJob("command", **params) as root:
        pass
    run_all(queue)
    return root.handle


def test_argv_runs_without_a_shell(queue: jobtree.JobQueue) -> None:
    h = run_one(queue, argv=[*py("import sys; print(sys.argv[1:])"), "$HOME; echo", "*"])
    assert h.state == JobState.DONE, h.error
    assert h.jobType == "command"
    assert "['$HOME; echo', '*']\n" in h.stdout
    assert h.progress == 100


def test_shell_string_runs_through_sh(queue: jobtree.JobQueue) -> None:
    h = run_one(queue, shell="echo $((2 + 3)) | tr 5 f; echo to-err >&2")
    assert h.state == JobState.DONE, h.error
    assert h.stdout.splitlines()[-1] == "f"
    assert h.stderr == "to-err\n"


def test_commands_run_in_order_and_report_which_one_runs(
    queue: jobtree.JobQueue, tmp_path: Path
) -> None:
    out = tmp_path / "order.txt"
    append = "import sys; open(sys.argv[1], 'a').write(sys.argv[2])"
    h = run_one(queue, commands=[[*py(append), str(out), w] for w in ("a", "b", "c")])
    assert h.state == JobState.DONE, h.error
    assert out.read_text() == "abc"
    assert h.statusLine.startswith("3/3: ")
    assert h.statusLine.endswith(" c")


@pytest.mark.parametrize("params", [{}, {"commands": []}])
def test_nothing_to_run_is_a_no_op_root_over_its_sub_jobs(
    queue: jobtree.JobQueue, tmp_path: Path, params: dict[str, Any]
) -> None:
    mark = tmp_path / "child-ran"
    with queue.createJob("command", cwd=str(tmp_path), **params) as root:
        root.createJob("command", argv=["touch", str(mark)])
    assert run_all(queue) == 2
    assert root.handle.state == JobState.DONE, root.handle.error
    assert mark.exists()


def test_env_adds_and_removes_variables(
    queue: jobtree.JobQueue, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("JT_GONE", "still here")
    code = "import os; print(os.environ.get('JT_NEW'), os.environ.get('JT_GONE', 'unset'))"
    h = run_one(queue, argv=py(code), env={"JT_NEW": "added", "JT_GONE": None})
    assert h.state == JobState.DONE, h.error
    assert h.stdout.splitlines()[-1] == "added unset"
    assert os.environ["JT_GONE"] == "still here"  # the worker's own environment is untouched


def test_cwd_defaults_to_the_job_directory_and_can_be_set(
    queue: jobtree.JobQueue, tmp_path: Path
) -> None:
    here = run_one(queue, argv=py("import os; print(os.getcwd())"))
    assert here.stdout.splitlines()[-1] == here.location
    there = run_one(queue, shell="pwd", cwd=str(tmp_path))
    assert there.stdout.splitlines()[-1] == str(tmp_path)


def test_a_missing_cwd_fails_naming_it(queue: jobtree.JobQueue, tmp_path: Path) -> None:
    h = run_one(queue, argv=["true"], cwd=str(tmp_path / "nowhere"))
    assert h.state == JobState.FAILED
    assert f"working directory {tmp_path / 'nowhere'} does not exist" in (h.error or "")


@pytest.mark.parametrize(("status", "ok"), [(0, True), (3, True), (1, False)])
def test_ok_codes_decide_success(queue: jobtree.JobQueue, status: int, ok: bool) -> None:
    argv = py(f"import sys; print('line one'); print('last words'); sys.exit({status})")
    h = run_one(queue, argv=argv, okCodes=[0, 3])
    if ok:
        assert h.state == JobState.DONE, h.error
        return
    assert h.state == JobState.FAILED
    error = h.error or ""
    assert error.startswith(f"command {' '.join(argv[:2])} ")  # the shlex line, quoted
    assert "exited with status 1; its last output:\nline one\nlast words" in error


def test_a_failing_shell_string_is_named_in_the_error(queue: jobtree.JobQueue) -> None:
    h = run_one(queue, shell="echo before; exit 4")
    assert h.state == JobState.FAILED
    assert (
        h.error
        == "shell command 'echo before; exit 4' exited with status 4; its last output:\nbefore"
    )


def test_a_command_killed_by_a_signal_says_so(queue: jobtree.JobQueue) -> None:
    h = run_one(queue, shell="kill -9 $$")
    assert h.state == JobState.FAILED
    assert "was killed by signal 9" in (h.error or "")


@pytest.mark.parametrize(
    "params",
    [
        {"argv": ["jobtree-no-such-program", "-x"]},
        {"commands": [["true"], ["jobtree-no-such-program"]]},
        {"argv": ["./jobtree-no-such-program"]},
    ],
)
def test_a_missing_program_fails_naming_it_and_the_host(
    queue: jobtree.JobQueue, params: dict[str, Any]
) -> None:
    h = run_one(queue, **params)
    assert h.state == JobState.FAILED
    error = h.error or ""
    assert "jobtree-no-such-program' was not found" in error
    assert f"on host {socket.gethostname()}" in error
    assert "install it there" in error


def test_progress_regex_percent_reaches_the_job(queue: jobtree.JobQueue) -> None:
    # The job fails after its last progress line, so the recorded progress is the regex's.
    code = "print('render 10%'); print('noise 99'); print('render 42.5%'); raise SystemExit(1)"
    h = run_one(queue, argv=py(code), progressRegex=r"(\d+(?:\.\d+)?)%")
    assert h.state == JobState.FAILED
    assert h.progress == 42.5


def test_progress_regex_named_percent_group(queue: jobtree.JobQueue) -> None:
    code = "import sys; print('p=30', file=sys.stderr); raise SystemExit(1)"
    h = run_one(queue, argv=py(code), progressRegex=r"(x)?p=(?P<percent>\d+)")
    assert h.progress == 30


def test_progress_regex_done_of_total(queue: jobtree.JobQueue) -> None:
    code = "print('frame 1 of 4'); print('frame 3 of 4'); raise SystemExit(1)"
    h = run_one(queue, argv=py(code), progressRegex=r"frame (?P<done>\d+) of (?P<total>\d+)")
    assert h.state == JobState.FAILED
    assert h.progress == 75


def test_progress_of_several_commands_is_the_share_done(queue: jobtree.JobQueue) -> None:
    h = run_one(queue, commands=[["true"], ["true"], ["false"], ["true"]])
    assert h.state == JobState.FAILED
    assert h.progress == 50
    assert h.statusLine == "3/4: false"
    assert h.error == "command false exited with status 1 (it printed nothing)"


def test_regex_progress_of_several_commands_is_scaled_to_the_running_one(
    queue: jobtree.JobQueue,
) -> None:
    cmds = [py("print('50%')"), py("print('50%'); raise SystemExit(1)")]
    h = run_one(queue, commands=cmds, progressRegex=r"(\d+)%")
    assert h.progress == 75


@pytest.mark.parametrize(
    ("regex", "expected"),
    [
        (r"Status: (?P<status>.*) \(", "tile 2/4"),
        (r"Status: (.*) \(", "tile 2/4"),
        (r"Status: tile \d+", "Status: tile 2"),
    ],
)
def test_status_regex_sets_the_status_line(
    queue: jobtree.JobQueue, regex: str, expected: str
) -> None:
    code = "print('Status: tile 1/4 (x)'); print('other'); print('Status: tile 2/4 (y)')"
    h = run_one(queue, argv=py(code), statusRegex=regex)
    assert h.state == JobState.DONE, h.error
    assert h.statusLine == expected


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"progressRegex": "(unclosed"}, "progressRegex '(unclosed' is not a valid regular"),
        ({"statusRegex": "[z-a]"}, "statusRegex '[z-a]' is not a valid regular expression"),
        ({"progressRegex": r"(\d+)/(\d+)"}, "has 2 groups; it needs a group named 'percent'"),
        ({"progressRegex": r"no groups"}, "has 0 groups"),
        ({"progressRegex": r"(?P<done>\d+)"}, "has a group 'done' or 'total' but not both"),
        ({"progressRegex": 5}, "progressRegex must be a regular expression"),
        ({"argv": "echo hi"}, "give it as 'shell'"),
        ({"argv": []}, "argv must be a non-empty list of strings"),
        ({"commands": [["true"], []]}, "commands[1] must be a non-empty list"),
        ({"shell": "true", "commands": [["true"]]}, "only one of argv, shell or commands"),
        ({"okCodes": []}, "okCodes must be a non-empty list"),
        ({"okCodes": [0, "1"]}, "okCodes must be a non-empty list"),
        ({"env": {"A": 1}}, "env must map names"),
    ],
)
def test_bad_parameters_are_refused_at_submission(
    queue: jobtree.JobQueue, params: dict[str, Any], message: str
) -> None:
    if not {"argv", "shell", "commands"} & params.keys():
        params = {"argv": ["true"], **params}
    with pytest.raises(jobtree.SubmissionError, match="rejected its parameters") as info:
        queue.createJob("command", **params)
    assert message in str(info.value)
    assert queue.listJobs() == []


def test_default_label_is_the_command_line() -> None:
    assert Command(argv=["echo", "a b"]).label == "echo 'a b'"
    assert Command(commands=[["a"], ["b"], ["c"]]).label == "a (+2 more)"
    assert Command(shell="x" * 100).label == "x" * 59 + "…"
    assert Command().label is None
    assert Command(argv=["echo"], label="mine").label == "mine"


def test_a_real_worker_runs_command_jobs(queue: jobtree.JobQueue, tmp_path: Path) -> None:
    out = tmp_path / "out.json"
    code = (
        "import json, os, sys; json.dump([os.getcwd(), os.environ['JT_X']], open(sys.argv[1], 'w'))"
    )
    with queue.createJob("command", commands=[], label="holder") as root:
        root.createJob("command", argv=[*py(code), str(out)], env={"JT_X": "x"}, cwd=str(tmp_path))
        root.createJob("command", shell="echo 45% done; exit 2", progressRegex=r"(\d+)%")
    run_daemon(queue, "--workers", "1", "--poll", "0.1", timeout=60)
    assert json.loads(out.read_text()) == [str(tmp_path), "x"]
    ok, failing = root.handle.listSubJobs()
    assert ok.state == JobState.DONE
    assert failing.state == JobState.FAILED
    assert failing.progress == 45
    assert (
        failing.error
        == "shell command 'echo 45% done; exit 2' exited with status 2; its last output:\n45% done"
    )
    assert failing.stdout == "45% done\n"  # the program's output, nothing added
