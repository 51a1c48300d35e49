"""The ``python`` procedure: call ``module:function`` with JSON arguments, save its result;
clear failures for what cannot be imported or returned; run here and by a real worker process."""

from __future__ import annotations

import os
import socket
import sys
from pathlib import Path
from typing import Any

import pytest
from jobtree.procs.python import Python
from testutil import run_all, run_daemon

import jobtree
from jobtree import JobState


def run_one(queue: jobtree.JobQueue, function: str, **params: Any) -> jobtree.JobHandle:
    """Submit one ``python`` job (by its short name), run it here, return its handle."""
    with queue.createJob("python", function=function, **params) as root:
        pass
    run_all(queue)
    return root.handle


def test_the_return_value_is_the_job_result(queue: jobtree.JobQueue) -> None:
    h = run_one(queue, "pyfuncs_for_tests:add", args=[2], kwargs={"b": 3})
    assert h.state == JobState.DONE, h.error
    assert h.jobType == "python"
    assert h.label == "pyfuncs_for_tests:add"
    assert h.result == 5


def test_json_arguments_arrive_as_given_and_it_runs_in_the_job_directory(
    queue: jobtree.JobQueue,
) -> None:
    args = [1, "two", [3.5, None], {"k": True}]
    h = run_one(queue, "pyfuncs_for_tests:describe", args=args, kwargs={"x": {"y": [1]}})
    assert h.state == JobState.DONE, h.error
    result = h.result
    assert result["args"] == args
    assert result["kwargs"] == {"x": {"y": [1]}}
    assert result["cwd"] == h.location
    assert "describe called with" in h.stdout  # print() goes to the job's log


def test_a_dotted_qualname_is_followed(queue: jobtree.JobQueue) -> None:
    assert run_one(queue, "pyfuncs_for_tests:Nested.twice", args=[21]).result == 42


def test_a_job_parameter_gets_the_running_proc(queue: jobtree.JobQueue) -> None:
    h = run_one(queue, "pyfuncs_for_tests:with_job", args=[8])
    assert h.state == JobState.DONE, h.error
    assert h.result == {"type": "Python", "runningDir": h.location}
    assert h.statusLine == "half of 8"


def test_job_in_kwargs_of_a_function_that_takes_the_job_is_refused(
    queue: jobtree.JobQueue,
) -> None:
    h = run_one(queue, "pyfuncs_for_tests:with_job", args=[8], kwargs={"job": 1})
    assert h.state == JobState.FAILED
    assert "kwargs must not give 'job'" in (h.error or "")


def test_returning_none_keeps_a_result_the_function_set_itself(queue: jobtree.JobQueue) -> None:
    h = run_one(queue, "pyfuncs_for_tests:sets_its_own_result")
    assert h.state == JobState.DONE, h.error
    assert h.result == {"set": "by the function"}


@pytest.mark.parametrize(("name", "typeName"), [("returns_set", "set"), ("returns_nan", "float")])
def test_a_result_that_is_not_json_fails_naming_the_function_and_type(
    queue: jobtree.JobQueue, name: str, typeName: str
) -> None:
    h = run_one(queue, f"pyfuncs_for_tests:{name}")
    assert h.state == JobState.FAILED
    assert (h.error or "").startswith(
        f"function pyfuncs_for_tests:{name} returned a {typeName} that cannot be saved"
    )
    assert h.result is None


def test_an_exception_fails_the_job_with_its_traceback(queue: jobtree.JobQueue) -> None:
    h = run_one(queue, "pyfuncs_for_tests:boom", kwargs={"what": "kaput"})
    assert h.state == JobState.FAILED
    assert "RuntimeError: boom: kaput" in (h.error or "")
    assert "Traceback (most recent call last)" in h.stderr
    assert 'raise RuntimeError(f"boom: {what}")' in h.stderr
    assert "pyfuncs_for_tests.py" in (h.traceback or "")


@pytest.mark.parametrize(
    ("function", "message"),
    [
        ("jt_no_such_module:f", "module 'jt_no_such_module' was not found on host"),
        ("pyfuncs_for_tests.sub:f", "module 'pyfuncs_for_tests.sub' was not found on host"),
        ("pyfuncs_for_tests:nope", "'pyfuncs_for_tests' has no attribute 'nope' on host"),
        ("pyfuncs_for_tests:Nested.nope", "'pyfuncs_for_tests.Nested' has no attribute 'nope'"),
        ("pyfuncs_for_tests:NOT_CALLABLE", "'NOT_CALLABLE' is not callable (it is of type int)"),
    ],
)
def test_what_cannot_be_loaded_fails_naming_the_function(
    queue: jobtree.JobQueue, function: str, message: str
) -> None:
    h = run_one(queue, function)
    assert h.state == JobState.FAILED
    error = h.error or ""
    assert error.startswith(f"function {function}: ")
    assert message in error
    if "not found" in message:
        assert socket.gethostname() in error


def test_a_module_that_fails_to_import_fails_with_its_traceback(
    queue: jobtree.JobQueue, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "jt_broken_module.py").write_text("import jt_missing_dependency\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    h = run_one(queue, "jt_broken_module:f")
    assert h.state == JobState.FAILED
    error = h.error or ""
    assert "function jt_broken_module:f: importing module 'jt_broken_module' failed" in error
    assert "No module named 'jt_missing_dependency'" in error
    assert "jt_broken_module.py" in h.stderr


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"function": "no_colon"}, "function must be 'package.module:function'"),
        ({"function": "pkg.mod:"}, "not 'pkg.mod:'"),
        ({"function": "1pkg:f"}, "function must be"),
        ({"function": "pkg:f g"}, "function must be"),
        ({"function": "pkg:f:g"}, "function must be"),
        ({"function": 42}, "not 42"),
        ({"function": "m:f", "args": "abc"}, "args must be a list"),
        ({"function": "m:f", "kwargs": [1]}, "kwargs must map argument names"),
        ({}, "function"),  # missing entirely: Python's own TypeError names it
    ],
)
def test_bad_parameters_are_refused_at_submission_without_importing(
    queue: jobtree.JobQueue, params: dict[str, Any], message: str
) -> None:
    with pytest.raises(jobtree.SubmissionError, match="rejected its parameters") as info:
        queue.createJob("python", **params)
    assert message in str(info.value)


def test_submission_does_not_import_the_module() -> None:
    Python(function="jt_not_importable_here.mod:Some.func")
    assert "jt_not_importable_here" not in sys.modules


def test_a_real_worker_runs_python_jobs(queue: jobtree.JobQueue) -> None:
    with queue.createJob("python", function="pyfuncs_for_tests:describe", args=["w"]) as ok:
        pass
    with queue.createJob("python", function="pyfuncs_for_tests:boom", args=["in worker"]) as bad:
        pass
    run_daemon(queue, "--workers", "1", "--poll", "0.1", timeout=60)
    h = ok.handle
    assert h.state == JobState.DONE, h.error
    assert h.result["args"] == ["w"]
    assert h.result["pid"] != os.getpid()  # ran in a worker process
    assert bad.handle.state == JobState.FAILED
    assert "RuntimeError: boom: in worker" in (bad.handle.error or "")
    assert "Traceback" in bad.handle.stderr
