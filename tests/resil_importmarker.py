"""A procedure module that says when it is imported: importing it appends the importing
process's pid to the file named by $RESIL_IMPORT_MARKER (if set). The security tests use it to
show that reading a queue never imports procedure code."""

from __future__ import annotations

import os

from jobtree import JobProc

_marker = os.environ.get("RESIL_IMPORT_MARKER")
if _marker:
    with open(_marker, "a") as _f:
        _f.write(f"{os.getpid()}\n")


class MarkerProc(JobProc):
    def __init__(self, label: str | None = None, value: int = 0) -> None:
        super().__init__(label=label)
        self.value = value

    def run(self) -> None:
        print(f"marker proc {self.value}")
