"""JobProc.execCmd: argv and shell commands, both pipes streamed to the logs and the callbacks."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
from procs_for_tests import ExecCmdProc

from jobtree import JobState

N_LINES = 50_000

# Writes "out N" and "err N" alternately; stdout is block-buffered and stderr line-buffered, so
# both pipes fill up at once and a reader that drains one pipe after the other would deadlock.
BOTH_PIPES = f"""
import sys
for i in range(1, {N_LINES} + 1):
    sys.stdout.write(f"out {{i}}\\n")
    sys.stderr.write(f"err {{i}}\\n")
"""


def run_cmd(queue, tmp_path, cmd, **params):
    """Submit an ExecCmdProc for ``cmd``, run it in this process, return (handle, result)."""
    result_file = tmp_path / "result.json"
    root = queue.createJob(ExecCmdProc, cmd=cmd, resultFile=str(result_file), **params)
    root.activate()
    assert queue.runNextAvailableJob() is True
    handle = root.handle
    assert handle.state == JobState.DONE, handle.stderr
    return handle, json.loads(result_file.read_text())


def log_bytes(handle, name):
    path = Path(handle.location) / name
    return path.read_bytes() if path.exists() else b""


def test_argv_list(queue, tmp_path):
    cmd = [sys.executable, "-c", "import sys; print('hello'); print('oops', file=sys.stderr)"]
    handle, result = run_cmd(queue, tmp_path, cmd)
    assert result == {"exitCode": 0, "stdout": [[1, "hello"]], "stderr": [[1, "oops"]]}
    assert log_bytes(handle, "stdout.1.log") == b"hello\n"
    assert log_bytes(handle, "stderr.1.log") == b"oops\n"
    assert handle.stdout == "hello\n"
    assert handle.stderr == "oops\n"


def test_argv_list_is_not_a_shell(queue, tmp_path):
    cmd = [sys.executable, "-c", "import sys; print(sys.argv[1:])", "$HOME; echo", "*"]
    _, result = run_cmd(queue, tmp_path, cmd)
    assert result["exitCode"] == 0
    assert result["stdout"] == [[1, "['$HOME; echo', '*']"]]


def test_shell_string(queue, tmp_path):
    handle, result = run_cmd(
        queue, tmp_path, "echo hello; echo oops >&2; for i in 1 2; do echo n$i; done; exit 3"
    )
    assert result == {
        "exitCode": 3,
        "stdout": [[1, "hello"], [2, "n1"], [3, "n2"]],
        "stderr": [[1, "oops"]],
    }
    assert log_bytes(handle, "stdout.1.log") == b"hello\nn1\nn2\n"
    assert log_bytes(handle, "stderr.1.log") == b"oops\n"


@pytest.mark.parametrize("code", [0, 1, 7, 255])
def test_exit_code_returned(queue, tmp_path, code):
    _, result = run_cmd(queue, tmp_path, [sys.executable, "-c", f"import sys; sys.exit({code})"])
    assert result["exitCode"] == code
    assert result["stdout"] == []
    assert result["stderr"] == []


def test_many_lines_on_both_pipes(queue, tmp_path, spawn_worker):
    # Run in a worker subprocess, so that a deadlock is a killed process group, not a hung suite.
    result_file = tmp_path / "result.json"
    root = queue.createJob(
        ExecCmdProc, cmd=[sys.executable, "-c", BOTH_PIPES], resultFile=str(result_file)
    )
    root.activate()
    worker = spawn_worker(queue.location, "--once")
    assert worker.wait(60) == 0, worker.stderr
    handle = root.handle
    assert handle.state == JobState.DONE, handle.stderr
    result = json.loads(result_file.read_text())
    assert result["exitCode"] == 0
    expected_out = [[i, f"out {i}"] for i in range(1, N_LINES + 1)]
    expected_err = [[i, f"err {i}"] for i in range(1, N_LINES + 1)]
    assert result["stdout"] == expected_out
    assert result["stderr"] == expected_err
    out = log_bytes(handle, "stdout.1.log").decode().splitlines()
    err = log_bytes(handle, "stderr.1.log").decode().splitlines()
    assert out == [f"out {i}" for i in range(1, N_LINES + 1)]
    assert err == [f"err {i}" for i in range(1, N_LINES + 1)]


def test_non_utf8_output(queue, tmp_path):
    script = (
        "import sys; sys.stdout.buffer.write(b'caf\\xe9\\n\\xff\\xfeok\\n');"
        " sys.stderr.buffer.write(b'\\x80err\\n')"
    )
    handle, result = run_cmd(queue, tmp_path, [sys.executable, "-c", script])
    assert result["exitCode"] == 0
    assert result["stdout"] == [[1, "caf\ufffd"], [2, "\ufffd\ufffdok"]]
    assert result["stderr"] == [[1, "\ufffderr"]]
    assert log_bytes(handle, "stdout.1.log") == b"caf\xe9\n\xff\xfeok\n"
    assert log_bytes(handle, "stderr.1.log") == b"\x80err\n"
    assert "caf" in handle.stdout  # reading the log as text does not crash either


def test_last_line_without_newline(queue, tmp_path):
    script = (
        "import sys; sys.stdout.write('first\\nlast without newline'); sys.stderr.write('only err')"
    )
    handle, result = run_cmd(queue, tmp_path, [sys.executable, "-c", script])
    assert result["stdout"] == [[1, "first"], [2, "last without newline"]]
    assert result["stderr"] == [[1, "only err"]]
    assert log_bytes(handle, "stdout.1.log") == b"first\nlast without newline"
    assert log_bytes(handle, "stderr.1.log") == b"only err"


def test_output_order_with_print(queue, tmp_path):
    handle, result = run_cmd(queue, tmp_path, "echo middle", printAround=True)
    assert result["stdout"] == [[1, "middle"]]
    assert log_bytes(handle, "stdout.1.log") == b"before\nmiddle\nafter\n"


def test_missing_executable(queue, tmp_path):
    result_file = tmp_path / "result.json"
    root = queue.createJob(
        ExecCmdProc, cmd=[str(tmp_path / "no-such-program")], resultFile=str(result_file)
    )
    root.activate()
    assert queue.runNextAvailableJob() is True
    # Either execCmd raises (the job fails) or it reports a non-zero exit code.
    if root.handle.state == JobState.FAILED:
        assert "no-such-program" in root.handle.stderr
    else:
        assert json.loads(result_file.read_text())["exitCode"] != 0
