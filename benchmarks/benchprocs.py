"""Job procedures used by the benchmarks.

This module must be importable by every worker process: the benchmark scripts put the
``benchmarks/`` directory on ``sys.path`` (their own directory is already there when they are run
as ``python benchmarks/bench_*.py``, and the worker processes receive the parent's ``sys.path``).
"""

from jobtree import JobProc


class NoOp(JobProc):
    """A job that does nothing: what is measured is jobtree's own overhead."""

    def run(self) -> None:
        pass


# The string form stored in job.json; the benchmarks pass the class itself.
NOOP = f"{NoOp.__module__}:{NoOp.__qualname__}"
