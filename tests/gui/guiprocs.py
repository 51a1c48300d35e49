"""Job procedures for the GUI tests (imported by worker subprocesses as ``guiprocs``)."""

from __future__ import annotations

import sys
import time

from jobtree import JobProc


class Frame(JobProc):
    """Renders nothing, slowly: prints a line and moves its progress every step."""

    def __init__(self, label: str | None = None, steps: int = 5, step: float = 0.0, **_: object):
        super().__init__(label=label)
        self.steps = steps
        self.step = step

    def run(self) -> None:
        for i in range(1, self.steps + 1):
            print(f"rendering tile {i} of {self.steps}: samples 128, denoise on")
            self.setProgress(100.0 * i / self.steps)
            self.setStatusLine(f"tile {i} of {self.steps}")
            if self.step:
                time.sleep(self.step)
        print("frame written", file=sys.stderr)


class Group(JobProc):
    """A parent job: runs after its children, does nothing."""

    def __init__(self, label: str | None = None, **_: object):
        super().__init__(label=label)

    def run(self) -> None:
        print("all frames done")


class Boom(JobProc):
    def __init__(self, label: str | None = None, **_: object):
        super().__init__(label=label)

    def run(self) -> None:
        print("about to fail")
        raise RuntimeError("licence server unreachable")
