"""The procedure of ``jobtree submit QUEUE -- command args``: run commands, one after the other.

Its job type on disk is ``jobtree.cli._procs:Command``. (Standard procedures will live in
jobtree.procs; this one stays small on purpose.)
"""

from __future__ import annotations

import os
import shlex
import socket

from ..proc import JobProc

STATUS_MAX = 200


class Command(JobProc):
    """Run *commands* (a list of argv lists, no shell) in order in *cwd* (default: the job's
    directory). The job fails at the first command that cannot start or exits non-zero.
    Progress is the share of commands done. No commands: the job does nothing (a root that
    just holds its sub-jobs)."""

    def __init__(
        self,
        commands: list[list[str]] | None = None,
        cwd: str | None = None,
        label: str | None = None,
    ) -> None:
        super().__init__(label=label)
        commands = commands or []
        if not isinstance(commands, list) or not all(
            isinstance(c, list) and c and all(isinstance(a, str) for a in c) for c in commands
        ):
            raise TypeError(
                f"commands must be a list of non-empty lists of strings (argv), not {commands!r}"
            )
        if cwd is not None and not isinstance(cwd, str):
            raise TypeError(f"cwd must be a path (str), not {cwd!r}")
        self.commands: list[list[str]] = commands
        self.cwd = cwd

    def run(self) -> None:
        if not self.commands:
            return
        home = os.getcwd()
        if self.cwd:
            try:
                os.chdir(self.cwd)
            except OSError as exc:
                self.setError(
                    f"cannot change to directory {self.cwd} on {socket.gethostname()}: "
                    f"{exc.strerror}"
                )
                return
        try:
            self._runAll()
        finally:
            os.chdir(home)

    def _runAll(self) -> None:
        n = len(self.commands)
        for i, argv in enumerate(self.commands):
            line = shlex.join(argv)
            status = f"{i + 1}/{n}: {line}" if n > 1 else line
            self.setStatusLine(status[:STATUS_MAX])
            try:
                code = self.execCmd(argv)
            except OSError as exc:
                self.setError(
                    f"cannot run {argv[0]!r} on {socket.gethostname()}: {exc.strerror or exc}"
                )
                return
            if code != 0:
                how = f"was killed by signal {-code}" if code < 0 else f"exited with status {code}"
                self.setError(f"command {line} {how}")
                return
            self.setProgress(100 * (i + 1) / n)
