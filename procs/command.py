"""The ``command`` procedure: run a program (an argv), a shell string, or several argvs in order.

Its output goes to the job's logs; optional regular expressions turn output lines into progress
and a status line. With nothing to run it is a no-op job that only holds its sub-jobs (the root
of ``jobtree submit --frames ... -- cmd``).
"""

from __future__ import annotations

import math
import os
import re
import shlex
import shutil
import socket
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

from ._tool import ToolError, ToolProc

STATUS_MAX = 200
"""Longest status line (the command line is cut to it)."""
LABEL_MAX = 60


class Command(ToolProc):
    """Run exactly one of *argv* (a list of str, no shell), *shell* (a string run by
    ``/bin/sh -c``) or *commands* (a list of argvs, run one after the other; the job fails at
    the first one that fails). Nothing to run (no parameter, or ``commands=[]``): a no-op.

    *env* adds variables to the worker's environment (None removes one), *cwd* is the working
    directory (default: the job's directory), *okCodes* the exit statuses that count as success.
    *progressRegex* is searched in every output line: its group ``percent``, or groups ``done``
    and ``total``, or its single group gives the progress (of the running command, when there
    are several). *statusRegex*'s group ``status``, else group 1, else the whole match becomes
    the status line. Without a progressRegex, progress is the share of commands done.
    """

    TOOL: ClassVar[str] = "command"

    def __init__(
        self,
        *,
        argv: Sequence[str] | None = None,
        shell: str | None = None,
        commands: Sequence[Sequence[str]] | None = None,
        env: Mapping[str, str | None] | None = None,
        cwd: str | None = None,
        okCodes: Sequence[int] = (0,),
        progressRegex: str | None = None,
        statusRegex: str | None = None,
        label: str | None = None,
    ) -> None:
        super().__init__(env=env, cwd=cwd, label=label)
        given = [
            name
            for name, value in (("argv", argv), ("shell", shell), ("commands", commands))
            if value is not None
        ]
        if len(given) > 1:
            raise ValueError(f"give only one of argv, shell or commands, not {' and '.join(given)}")
        self.commands: list[list[str] | str] = []
        if argv is not None:
            self.commands = [_checkArgv(argv, "argv")]
        elif shell is not None:
            if not isinstance(shell, str) or not shell.strip():
                raise TypeError(f"shell must be a non-empty command string, not {shell!r}")
            self.commands = [shell]
        elif commands is not None:
            if isinstance(commands, str) or not isinstance(commands, Sequence):
                raise TypeError(f"commands must be a list of argv lists, not {commands!r}")
            self.commands = [_checkArgv(c, f"commands[{i}]") for i, c in enumerate(commands)]
        codes: Any = okCodes  # JSON: anything may come; refuse what is not a list of ints
        if (
            isinstance(codes, str)
            or not isinstance(codes, Sequence)
            or not codes
            or not all(isinstance(c, int) and not isinstance(c, bool) for c in codes)
        ):
            raise TypeError(
                f"okCodes must be a non-empty list of exit statuses (int), not {codes!r}"
            )
        self.okCodes = list(okCodes)
        self.progressRegex = _compileProgress(progressRegex)
        self.statusRegex = _compile(statusRegex, "statusRegex")
        if self.label is None and self.commands:
            self.label = _shorten(self._shown(self.commands[0]), LABEL_MAX) + (
                f" (+{len(self.commands) - 1} more)" if len(self.commands) > 1 else ""
            )
        self._index = 0

    def work(self) -> None:
        n = len(self.commands)
        for i, cmd in enumerate(self.commands):
            self._index = i
            shown = self._shown(cmd)
            self.setStatusLine(_shorten(f"{i + 1}/{n}: {shown}" if n > 1 else shown, STATUS_MAX))
            if isinstance(cmd, list):
                self._findProgram(cmd[0])
            what = f"shell command {cmd!r}" if isinstance(cmd, str) else f"command {shown}"
            # The log holds the program's own output only (the status line names the command).
            self.runArgv(cmd, okCodes=self.okCodes, what=what, announce=False)
            self.setProgress(100 * (i + 1) / n)

    def onLine(self, stream: str, line: str) -> None:
        if self.progressRegex is not None:
            m = self.progressRegex.search(line)
            percent = _percent(m) if m else None
            if percent is not None:
                n = len(self.commands)
                self.setProgress((100 * self._index + min(max(percent, 0), 100)) / n)
        if self.statusRegex is not None:
            m = self.statusRegex.search(line)
            if m:
                groups = self.statusRegex.groupindex
                key: str | int = "status" if "status" in groups else 1 if m.re.groups else 0
                status = (m.group(key) or "").strip()
                if status:
                    self.setStatusLine(_shorten(status, STATUS_MAX))

    @staticmethod
    def _shown(cmd: list[str] | str) -> str:
        return cmd if isinstance(cmd, str) else shlex.join(cmd)

    def _findProgram(self, program: str) -> None:
        """ToolError naming the program and the host when it cannot be run here."""
        if "/" in program:  # a path: relative ones are taken from the command's directory
            path = os.path.join(self.cwd or ".", program)
            found = os.path.isfile(path) and os.access(path, os.X_OK)
            where = "at that path"
        else:
            envPath = (self.env or {}).get("PATH") or os.environ.get("PATH")
            found = shutil.which(program, path=envPath) is not None
            where = "on the PATH"
        if not found:
            raise ToolError(
                f"program {program!r} was not found {where} (or is not executable) on host "
                f"{socket.gethostname()}; install it there, or give its full path as the "
                "command's first word"
            )


def _checkArgv(argv: Any, name: str) -> list[str]:
    if isinstance(argv, str):
        raise TypeError(
            f"{name} must be a list of strings (the program and its arguments), not the string "
            f"{argv!r}; to run a shell command line, give it as 'shell'"
        )
    if (
        not isinstance(argv, Sequence)
        or not argv
        or not all(isinstance(a, str) for a in argv)
        or not argv[0]
    ):
        raise TypeError(
            f"{name} must be a non-empty list of strings (the program and its arguments), "
            f"not {argv!r}"
        )
    return list(argv)


def _compile(pattern: Any, name: str) -> re.Pattern[str] | None:
    if pattern is None:
        return None
    if not isinstance(pattern, str) or not pattern:
        raise TypeError(f"{name} must be a regular expression (a non-empty str), not {pattern!r}")
    try:
        return re.compile(pattern)
    except re.error as exc:
        raise ValueError(f"{name} {pattern!r} is not a valid regular expression: {exc}") from None


def _compileProgress(pattern: Any) -> re.Pattern[str] | None:
    rx = _compile(pattern, "progressRegex")
    if rx is None:
        return None
    names = set(rx.groupindex)
    if "percent" in names or {"done", "total"} <= names:
        return rx
    if names & {"done", "total"}:
        raise ValueError(
            f"progressRegex {pattern!r} has a group 'done' or 'total' but not both; name both "
            "(e.g. 'frame (?P<done>\\d+) of (?P<total>\\d+)')"
        )
    if rx.groups != 1:
        raise ValueError(
            f"progressRegex {pattern!r} has {rx.groups} groups; it needs a group named 'percent', "
            "groups named 'done' and 'total', or exactly one group (the percent)"
        )
    return rx


def _percent(m: re.Match[str]) -> float | None:
    """The progress in percent that *m* reports, or None if its groups are not numbers."""
    names = m.re.groupindex
    try:
        if "percent" in names:
            value = float(m.group("percent"))
        elif "done" in names:
            total = float(m.group("total"))
            value = 100 * float(m.group("done")) / total if total > 0 else math.nan
        else:
            value = float(m.group(1))
    except (TypeError, ValueError):  # a group that did not take part, or is not a number
        return None
    return value if math.isfinite(value) else None


def _shorten(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"
