"""JobProc.setResult / JobHandle.result, execCmd's env and cwd, and frame ranges."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st
from procs_for_tests import EnvCwdProc, NotJsonResultProc, ResultProc
from testutil import run_all

import jobtree
from jobtree.frames import chunked, formatFrames, frameRuns, parseFrames


def test_result_is_saved_per_attempt_and_read_from_the_handle(queue: jobtree.JobQueue) -> None:
    with queue.createJob(ResultProc, value={"frames": [1, 2], "ok": True}) as root:
        pass
    h = root.handle
    assert h.result is None  # not run yet
    run_all(queue)
    assert h.state == jobtree.JobState.DONE
    assert h.result == {"frames": [1, 2], "ok": True}
    assert Path(h.location, "result.1.json").is_file()


def test_a_later_result_replaces_the_earlier_one(queue: jobtree.JobQueue) -> None:
    with queue.createJob(ResultProc, value=1, replace=[2, 3]) as root:
        pass
    run_all(queue)
    assert root.handle.result == [2, 3]


def test_a_job_without_result_reads_none(queue: jobtree.JobQueue) -> None:
    with queue.createJob(ResultProc) as root:  # value None: saves null
        pass
    run_all(queue)
    assert root.handle.result is None


def test_a_result_that_is_not_json_fails_the_job_naming_it(queue: jobtree.JobQueue) -> None:
    with queue.createJob(NotJsonResultProc) as root:
        pass
    run_all(queue)
    h = root.handle
    assert h.state == jobtree.JobState.FAILED
    assert "cannot be stored as JSON" in (h.error or "")
    assert h.location in (h.error or "")
    assert h.result is None


def test_a_corrupt_result_file_is_a_clear_error(queue: jobtree.JobQueue) -> None:
    with queue.createJob(ResultProc, value=5) as root:
        pass
    run_all(queue)
    h = root.handle
    Path(h.location, "result.1.json").write_text("{not json")
    with pytest.raises(jobtree.CorruptJob, match=r"result\.1\.json"):
        _ = h.result


def test_execcmd_env_adds_and_removes_variables_and_cwd_moves(
    queue: jobtree.JobQueue, tmp_path: Path
) -> None:
    with queue.createJob(EnvCwdProc, env={"A": "set", "HOME": None}, cwd=str(tmp_path)) as root:
        pass
    run_all(queue)
    h = root.handle
    assert h.state == jobtree.JobState.DONE, h.error
    assert h.stdout.splitlines() == [f"A=set HOME=unset PWD={tmp_path}", str(tmp_path)]
    assert "A" not in os.environ or os.environ["A"] != "set"


def test_execcmd_pwd_is_the_job_directory_by_default(queue: jobtree.JobQueue) -> None:
    # Programs like Blender resolve relative paths against $PWD, not the real working directory.
    with queue.createJob(EnvCwdProc, env={}, cwd=None) as root:
        pass
    run_all(queue)
    h = root.handle
    assert h.stdout.splitlines() == [
        f"A=unset HOME={os.environ.get('HOME', 'unset')} PWD={h.location}",
        h.location,
    ]


def test_frames_forms() -> None:
    assert parseFrames("1-5") == [1, 2, 3, 4, 5]
    assert parseFrames(7) == [7]
    assert parseFrames(range(1, 4)) == [1, 2, 3]
    assert parseFrames([3, 1, 3]) == [3, 1]
    assert chunked([1, 2, 3, 4, 5], 2) == [[1, 2], [3, 4], [5]]
    for bad in ("", "a-b", "5-1", [], [1.5], True):
        with pytest.raises(ValueError, match="bad frame"):
            parseFrames(bad)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="at least 1"):
        chunked([1], 0)


@given(st.lists(st.integers(-50, 500), min_size=1, max_size=60, unique=True))
def test_formatted_frames_read_back_the_same(frames: list[int]) -> None:
    assert parseFrames(formatFrames(frames)) == frames
    runs = frameRuns(frames)
    assert [f for first, last, step in runs for f in range(first, last + 1, step)] == frames
    assert len(runs) == formatFrames(frames).count(",") + 1


def test_frame_runs() -> None:
    assert frameRuns([1, 2, 3, 5, 7, 9, 12]) == [(1, 3, 1), (5, 9, 2), (12, 12, 1)]
    assert frameRuns([4, 8]) == [(4, 4, 1), (8, 8, 1)]
    assert formatFrames([1, 2, 3, 5, 7, 9, 12]) == "1-3,5-9x2,12"
    assert frameRuns([]) == []


def test_jobtree_show_prints_the_result(queue: jobtree.JobQueue) -> None:
    from cli_util import jobtree as cli
    from cli_util import jobtree_json

    with queue.createJob(ResultProc, value={"movie": "/out/shot.mp4"}) as root:
        pass
    run_all(queue)
    where = root.handle.location
    assert jobtree_json("show", where)["result"] == {"movie": "/out/shot.mp4"}
    assert 'result     {"movie": "/out/shot.mp4"}' in cli("show", where).stdout
