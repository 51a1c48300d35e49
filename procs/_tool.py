"""ToolProc: the base of every procedure that runs an external program and reads its output.

One owner for what all of them need: finding the executable on the worker host, running it
with execCmd (output streamed into the job's logs), turning its lines into progress and status,
remembering its last lines and its error lines for the failure message, checking the exit
status and the files it should have written.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import socket
from collections import deque
from collections.abc import Iterable, Mapping, Sequence
from typing import ClassVar

from jobtree.proc import JobProc

TAIL_LINES = 15
"""Lines of output kept for a failure message when the tool printed no recognised error."""
MAX_ERROR_LINES = 10
MESSAGE_MAX = 2000


class ToolError(Exception):
    """The tool failed; the message says how. :meth:`ToolProc.run` fails the job with it."""


class ToolProc(JobProc):
    """Base class of procedures that run one external program.

    Subclasses set :attr:`TOOL` (the program's name for messages), :attr:`EXECUTABLE` (the
    default command) and optionally :attr:`ERROR_RE` (lines that are the tool's own error
    messages), implement :meth:`work` and override :meth:`onLine` to read progress.

    The executable is, in order: the job's ``executable`` parameter, the environment variable
    ``JOBTREE_<TOOL>`` on the worker host (e.g. ``JOBTREE_BLENDER=/opt/blender-4.2/blender``),
    then :attr:`EXECUTABLE` looked up on the worker's PATH.
    """

    TOOL: ClassVar[str] = "tool"
    EXECUTABLE: ClassVar[str] = ""
    ERROR_RE: ClassVar[re.Pattern[str] | None] = None

    def __init__(
        self,
        *,
        executable: str | None = None,
        env: Mapping[str, str | None] | None = None,
        cwd: str | None = None,
        label: str | None = None,
    ) -> None:
        super().__init__(label=label)
        if executable is not None and (not isinstance(executable, str) or not executable):
            raise TypeError(f"executable must be a command name or path (str), not {executable!r}")
        if env is not None and not (
            isinstance(env, Mapping)
            and all(
                isinstance(k, str) and (v is None or isinstance(v, str)) for k, v in env.items()
            )
        ):
            raise TypeError(f"env must map names to str (or None to unset), not {env!r}")
        if cwd is not None and not isinstance(cwd, str):
            raise TypeError(f"cwd must be a directory path (str), not {cwd!r}")
        self.executable = executable
        self.env = dict(env) if env else None
        self.cwd = cwd
        self._tail: deque[str] = deque(maxlen=TAIL_LINES)
        self.errorLines: list[str] = []

    # -- to override -------------------------------------------------------------------------

    def work(self) -> None:
        """Do the job's work; raise :class:`ToolError` to fail it with a message."""
        raise NotImplementedError

    def onLine(self, stream: str, line: str) -> None:
        """Called for each line the tool writes (*stream* is ``"stdout"`` or ``"stderr"``)."""

    # -- the machinery -------------------------------------------------------------------------

    def run(self) -> None:
        try:
            self.work()
        except ToolError as exc:
            self.setError(str(exc))

    @classmethod
    def envVar(cls) -> str:
        """``JOBTREE_BLENDER`` for TOOL ``Blender``: the worker-side override of the executable."""
        return "JOBTREE_" + re.sub(r"[^A-Z0-9]", "_", cls.TOOL.upper())

    def resolveExecutable(self) -> str:
        """The executable this host runs, as a path; ToolError saying how to fix it if none."""
        name = self.executable or os.environ.get(self.envVar()) or self.EXECUTABLE
        env = self.env or {}
        found = shutil.which(name, path=env.get("PATH") or os.environ.get("PATH"))
        if found is None:
            how = (
                "the job's 'executable' parameter"
                if self.executable
                else f"${self.envVar()}"
                if os.environ.get(self.envVar())
                else "the PATH"
            )
            raise ToolError(
                f"{self.TOOL} executable {name!r} (from {how}) was not found or is not "
                f"executable on host {socket.gethostname()}; install {self.TOOL} there, or set "
                f"the job's 'executable' parameter or ${self.envVar()} on the worker to its path"
            )
        return found

    def runTool(self, args: Sequence[str], *, okCodes: Iterable[int] = (0,)) -> int:
        """Run the tool (resolved executable + *args*) in :attr:`cwd` with :attr:`env`.

        Its output goes to the job's logs and through :meth:`onLine`. Returns the exit status;
        raises ToolError if it cannot start or exits with a status not in *okCodes*."""
        return self.runArgv([self.resolveExecutable(), *args], okCodes=okCodes)

    def runArgv(
        self,
        cmd: Sequence[str] | str,
        *,
        okCodes: Iterable[int] = (0,),
        what: str | None = None,
        announce: bool = True,
    ) -> int:
        """Run *cmd* as given: a full argv, or a string for ``/bin/sh -c``; otherwise as
        :meth:`runTool`. *what* names it in failure messages (default :attr:`TOOL`); with
        *announce* False, no "jobtree: running ..." line goes before its output in the log."""
        what = what or self.TOOL
        shown = cmd if isinstance(cmd, str) else shlex.join(cmd)
        self._tail.clear()
        self.errorLines = []
        if self.cwd is not None and not os.path.isdir(self.cwd):
            raise ToolError(
                f"working directory {self.cwd} does not exist on host {socket.gethostname()}; "
                "create it or fix the job's 'cwd' parameter"
            )
        if announce:
            print(f"jobtree: running {shown}", flush=True)
        try:
            code = self.execCmd(cmd, env=self.env, cwd=self.cwd)
        except OSError as exc:
            program = "/bin/sh" if isinstance(cmd, str) else cmd[0]
            raise ToolError(
                f"cannot start {what} ({program}) on host {socket.gethostname()}: "
                f"{exc.strerror or exc}"
            ) from None
        if code not in set(okCodes):
            how = f"was killed by signal {-code}" if code < 0 else f"exited with status {code}"
            raise ToolError(self.failure(f"{what} {how}"))
        return code

    def failure(self, what: str) -> str:
        """*what*, followed by the tool's error lines (or its last lines if it printed none)."""
        lines = self.errorLines or list(self._tail)
        if not lines:
            return f"{what} (it printed nothing)"
        label = "its errors" if self.errorLines else "its last output"
        text = f"{what}; {label}:\n" + "\n".join(lines)
        return text if len(text) <= MESSAGE_MAX else text[: MESSAGE_MAX - 1] + "…"

    def requireFiles(self, paths: Iterable[str], what: str = "output file") -> None:
        """ToolError listing every path in *paths* that is missing or empty."""
        base = self.cwd or self.runningDir or os.getcwd()
        missing = [p for p in paths if not _nonEmpty(os.path.join(base, p))]
        if missing:
            shown = ", ".join(missing[:5]) + (
                f" and {len(missing) - 5} more" if len(missing) > 5 else ""
            )
            raise ToolError(
                self.failure(
                    f"{self.TOOL} finished but did not write {len(missing)} {what}"
                    f"{'s' if len(missing) != 1 else ''}: {shown}"
                )
            )

    def runFor(
        self,
        what: str | None,
        args: Sequence[str],
        *,
        expected: str | None = None,
        okCodes: Iterable[int] = (0,),
    ) -> str | None:
        """One run of a render split into runs (a frame, a range of frames): :meth:`runTool`
        with *args*, then require the image *expected* if given. A failure's message starts
        with ``"<what>: "`` (``"frame 7: "``) unless *what* is None. Returns *expected* as an
        absolute path (relative ones are from :attr:`cwd`), or None."""
        try:
            self.runTool(args, okCodes=okCodes)
            if expected is not None:
                self.requireFiles([expected], "image")
        except ToolError as exc:
            if what is None:
                raise
            raise ToolError(f"{what}: {exc}") from None
        if expected is None:
            return None
        return os.path.abspath(os.path.join(self.cwd or os.getcwd(), expected))

    def reportRendered(self, what: str, frames: list[int] | None, outputs: list[str]) -> None:
        """The end of a render job: progress 100, status ``rendered <what>`` and the result
        ``{"frames": [...], "outputs": [absolute image paths]}``."""
        self.setProgress(100)
        self.setStatusLine(f"rendered {what}")
        self.setResult({"frames": frames or [], "outputs": outputs})

    def stdoutCallback(self, lineNr: int, line: str) -> None:
        self._line("stdout", line)

    def stderrCallback(self, lineNr: int, line: str) -> None:
        self._line("stderr", line)

    def _line(self, stream: str, line: str) -> None:
        if line.strip():
            self._tail.append(line)
        if (
            self.ERROR_RE is not None
            and len(self.errorLines) < MAX_ERROR_LINES
            and self.ERROR_RE.search(line)
        ):
            self.errorLines.append(line.strip())
        self.onLine(stream, line)


def _nonEmpty(path: str) -> bool:
    try:
        return os.stat(path).st_size > 0
    except OSError:
        return False


# -- frame file patterns (shared by the render and encode procedures) ----------------------------

_HASH_RUN = re.compile(r"#+")
_PRINTF = re.compile(r"%%|%(0?)([1-9][0-9]?)?d")


class FramePattern:
    """The files of an image sequence: ``/out/shot_####.png`` or ``/out/shot_%04d.png``.

    As Blender names its output, the last run of ``#`` in the file name (not the directory)
    is the frame number, zero-padded to the run's length. Without ``#``, a printf ``%04d``
    (or ``%d``, no padding) in the file name is the frame number and ``%%`` a literal ``%``.
    Raises ValueError naming the pattern when it has neither.
    """

    def __init__(self, pattern: str) -> None:
        if not isinstance(pattern, str) or not pattern:
            raise TypeError(f"a frame pattern must be a file path (str), not {pattern!r}")
        self.pattern = pattern
        self.directory, name = os.path.split(pattern)
        runs = list(_HASH_RUN.finditer(name))
        if runs:
            run = runs[-1]
            self.prefix, self.width, self.suffix = (
                name[: run.start()],
                len(run.group()),
                name[run.end() :],
            )
            return
        parts: list[str] = []
        found: tuple[str, int] | None = None
        pos = 0
        for m in _PRINTF.finditer(name):
            parts.append(name[pos : m.start()])
            pos = m.end()
            if m.group() == "%%":
                parts.append("%")
            elif found is None:
                found = ("".join(parts), int(m.group(2) or 0) if m.group(1) else 0)
                parts = []
            else:
                raise ValueError(
                    f"frame pattern {pattern!r} has two frame numbers (%d) in its file name"
                )
        if found is None:
            raise ValueError(
                f"frame pattern {pattern!r} has no '#' (or printf %04d) in its file name for the "
                "frame number; write e.g. /farm/out/frame_####.png"
            )
        parts.append(name[pos:])
        self.prefix, self.width, self.suffix = found[0], found[1], "".join(parts)

    def __repr__(self) -> str:
        return f"FramePattern({self.pattern!r})"

    def name(self, frame: int) -> str:
        """The file name (without directory) of *frame*."""
        return f"{self.prefix}{frame:0{max(self.width, 1)}d}{self.suffix}"

    def path(self, frame: int) -> str:
        """The path of *frame*'s file: ``shot_####.png``, 7 -> ``shot_0007.png``."""
        return os.path.join(self.directory, self.name(frame))

    def find(self, base: str | None = None) -> list[int]:
        """The frames whose files exist (relative paths from *base*, default the working
        directory), in ascending order. Only names this pattern would write count: with
        ``####``, ``shot_0007.png`` is frame 7 but ``shot_07.png`` is not."""
        directory = os.path.join(base or os.getcwd(), self.directory or ".")
        regex = re.compile(re.escape(self.prefix) + "(-?[0-9]+)" + re.escape(self.suffix))
        frames = []
        try:
            names = os.listdir(directory)
        except FileNotFoundError:
            return []
        for entry in names:
            m = regex.fullmatch(entry)
            if m and self.name(int(m.group(1))) == entry:
                frames.append(int(m.group(1)))
        return sorted(frames)


# -- parameter checks (for the constructors: they run at submission) -----------------------------


def expectedPattern(
    name: str, path: str | None, frames: list[int] | None, fix: str
) -> FramePattern | None:
    """The FramePattern of the image-path parameter *name* when its file name has ``#`` (one
    image per frame), else None. A ``#`` without *frames* is a ValueError ending in *fix*."""
    if path is None or "#" not in os.path.basename(path):
        return None
    if frames is None:
        raise ValueError(
            f"{name} {path!r} has '#' for a frame number but no frames were given; {fix}"
        )
    return FramePattern(path)


def optionalStr(name: str, value: object) -> str | None:
    """*value* if it is a non-empty str or None; TypeError naming the parameter otherwise."""
    if value is None or (isinstance(value, str) and value):
        return value
    raise TypeError(f"{name} must be a non-empty str (or None), not {value!r}")


def optionalInt(name: str, value: object, minimum: int | None = None) -> int | None:
    """*value* if it is an int (not a bool) of at least *minimum*, or None."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be an int (or None), not {value!r}")
    if minimum is not None and value < minimum:
        raise ValueError(f"{name} must be at least {minimum}, not {value}")
    return value


def strList(name: str, value: object) -> list[str]:
    """*value* as a list of str (None is the empty list); TypeError naming the parameter."""
    if value is None:
        return []
    if isinstance(value, (list, tuple)) and all(isinstance(v, str) for v in value):
        return list(value)
    raise TypeError(f"{name} must be a list of str, not {value!r}")
