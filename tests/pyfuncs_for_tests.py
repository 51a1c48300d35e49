"""Functions the ``python`` procedure calls in the tests (``pyfuncs_for_tests:<name>``).

Workers import this module by name: the tests put ``tests/`` on their PYTHONPATH.
"""

from __future__ import annotations

import os
from typing import Any

NOT_CALLABLE = 42


def add(a: int, b: int = 0) -> int:
    return a + b


def describe(*args: Any, **kwargs: Any) -> dict[str, Any]:
    """Echo what it was called with, and where it ran."""
    print(f"describe called with {args} {kwargs}")
    return {"args": list(args), "kwargs": kwargs, "cwd": os.getcwd(), "pid": os.getpid()}


def with_job(n: int, job: Any) -> dict[str, Any]:
    """Report progress and a status line through the running job it was given."""
    job.setProgress(50)
    job.setStatusLine(f"half of {n}")
    return {"type": type(job).__name__, "runningDir": job.runningDir}


def sets_its_own_result(job: Any) -> None:
    job.setResult({"set": "by the function"})


def returns_set() -> set[int]:
    return {1, 2}


def returns_nan() -> float:
    return float("nan")


def boom(what: str) -> None:
    raise RuntimeError(f"boom: {what}")


class Nested:
    @staticmethod
    def twice(x: int) -> int:
        return 2 * x
