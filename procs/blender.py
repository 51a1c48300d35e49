"""The ``blender`` procedure: render frames of a .blend file with Blender in background mode.

Blender's command line is order-sensitive: ``-b <file>`` loads the file, and every later option
is applied to what is loaded, in order, until ``-a`` or ``-f`` renders. So the argv is
``-b scene [-S name] [-E engine] [-o output] [-F format] [-t threads] [extraArgs]
[-s A -e B -j K] --python-expr PROBE (-a | -f LIST)``.

Progress and status come from the lines Blender prints while it renders (read from Blender 3.4's
real output, plus the forms of older releases)::

    Fra:1 Mem:9.50M (Peak 10.20M) | Time:00:00.04 | Remaining:00:00.00 | Mem:0.86M, Peak:0.86M | Scene, ViewLayer | Sample 1/4
    Fra:1 ... | Scene, ViewLayer | Rendered 3/20 Tiles, Sample 1/3         (Cycles, large images)
    Fra:10 ... | Scene, RenderLayer | Path Tracing Tile 110/135            (Cycles before 3.0)
    Fra:1 ... | Path Tracing Sample 3/128                                   (Cycles before 3.0)
    Fra:1 Mem:10.23M (Peak 11.34M) | Time:00:03.84 | Rendering 26 / 64 samples   (Eevee)
    Saved: '/farm/out/f_0001.png'                                           (a frame is written)
    skipping existing frame "/farm/out/f_0001.png"                          (no-overwrite renders)
    Append frame 2                                                          (movie output)

The probe, a one-line Python expression run just before the render, prints the effective scene,
frame range, engine and output (``jobtree-blender: {json}``): the range is how ``frames=None``
knows which frames to expect, and the line tells a farm user what the worker really rendered.
"""

from __future__ import annotations

import itertools
import json
import os
import re
import signal
import socket
import sys
from collections import deque
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

from jobtree._interp import pathWithoutThisPython
from jobtree.frames import formatFrames, parseFrames

from ._tool import MESSAGE_MAX, TAIL_LINES, ToolError, ToolProc

PROBE_PREFIX = "jobtree-blender: "
PROBE_EXPR = (
    "import bpy, json; s = bpy.context.scene; r = s.render; "
    f"print({PROBE_PREFIX!r} + json.dumps(dict(scene=s.name, start=s.frame_start, "
    "end=s.frame_end, step=s.frame_step, engine=r.engine, output=bpy.path.abspath(r.filepath), "
    "format=r.image_settings.file_format, movie=bool(r.is_movie_format), "
    "moviePath=r.frame_path(frame=s.frame_start) if r.is_movie_format else None)), flush=True)"
)
"""One line of Python that prints the settings Blender will really render with."""

FRAME_RE = re.compile(r"^Fra:\s*(-?\d+)\b")
SAVED_RE = re.compile(r"^Saved: (?:'(?P<quoted>.*)'|(?P<plain>\S.*?)(?: Time: .*)?)\s*$")
SKIPPED_RE = re.compile(r'^skipping existing frame "(.*)"\s*$')
APPENDED_RE = re.compile(r"^Append frame (-?\d+)\b")
CRASH_REPORT_RE = re.compile(r"^Writing: (.*\.crash\.txt)\s*$")
TILES_RE = re.compile(
    r"(?:Rendered (\d+)/(\d+) Tiles|Path Tracing Tile (\d+)/(\d+))(?:, Sample (\d+)/(\d+))?"
)
SAMPLES_RE = re.compile(r"\bSample (\d+)/(\d+)|\bRendering (\d+) / (\d+) samples")
TRACEBACK_START = "Traceback (most recent call last):"

MAX_CRASH_REPORT = 64 << 10
"""Bytes of Blender's crash report copied into the job's stderr log."""
MAX_REPORTED_LINES = 30
"""Error lines, Python tracebacks included, kept for the failure message."""

ENGINES = ("CYCLES", "BLENDER_EEVEE", "BLENDER_EEVEE_NEXT", "BLENDER_WORKBENCH")
ENGINE_SUGGESTIONS = {"EEVEE": "BLENDER_EEVEE", "WORKBENCH": "BLENDER_WORKBENCH"}
FORMAT_SUGGESTIONS = {
    "EXR": "OPEN_EXR",
    "JPG": "JPEG",
    "TIF": "TIFF",
    "TARGA": "TGA",
    "MP4": "FFMPEG",
    "MOV": "FFMPEG",
    "MKV": "FFMPEG",
}

HINTS: tuple[tuple[re.Pattern[str], str], ...] = (
    (
        re.compile(r"without OpenImageDenoise|No device available to denoise"),
        "This Blender build has no OpenImageDenoise (Debian's has none): turn denoising off "
        "for the final render in the .blend (Render Properties > Sampling > Render > Denoise, "
        "and View Layer Properties > Denoising), or run a Blender build that has it (set "
        "the job's 'executable' or $JOBTREE_BLENDER on the workers).",
    ),
    (
        re.compile(r"Format from '-F / --render-format' not known"),
        "The job's 'format' is not a format this Blender knows (see `blender --help`, "
        "'Format Options').",
    ),
    (
        re.compile(r"^Can't find scene: "),
        "The job's 'sceneName' names no scene of this .blend file (names are case-sensitive).",
    ),
    (
        re.compile(r"engine not found"),
        "The job's 'engine' is not a render engine of this Blender; `blender -b -E help` lists them.",
    ),
    (
        re.compile(r"Cannot render, no camera"),
        "The scene has no active camera: set one in the .blend file.",
    ),
    (
        re.compile(r"cannot save: "),
        "Check that the output directory can be created and written on this host.",
    ),
    (
        re.compile(r"Cannot read file"),
        "Check that the .blend file is complete and readable there, and not saved by a newer "
        "Blender than this one.",
    ),
    (
        re.compile(r"restricted access disallows|automatic scripts are disabled"),
        "The file has Python drivers or scripts, which Blender does not run by default: add "
        "'-y' (--enable-autoexec) to the job's 'extraArgs' if you trust the file.",
    ),
)


class Blender(ToolProc):
    """Render *frames* of the .blend file *scene* with Blender in background mode.

    *frames* takes the forms of :func:`jobtree.frames.parseFrames` (``"1-240"``, ``"1-240x2"``,
    ``"1,5,10-20"``, an int, a list of ints); None renders the file's own range (``-a``).
    *sceneName* (``-S``), *engine* (``-E``, e.g. ``"CYCLES"``), *output* (``-o``, a pattern
    with ``#`` for the frame number), *format* (``-F``, e.g. ``"PNG"``) and *threads* (``-t``,
    0 = every core) override the file's settings; *extraArgs* are more Blender arguments, given
    before the render action (those after a ``--`` go last, to a Python script's ``sys.argv``).

    The result is ``{"frames": [...], "outputs": [absolute paths of the written files]}``.
    """

    TOOL: ClassVar[str] = "Blender"
    EXECUTABLE: ClassVar[str] = "blender"
    ERROR_RE: ClassVar[re.Pattern[str] | None] = re.compile(
        r"^(?:Error: (?!Not freed memory blocks)|Can't find scene: |Error in Driver|"
        r"BPY_driver_exec: restricted access)"
    )

    def __init__(
        self,
        *,
        scene: str,
        frames: str | int | Sequence[int] | None = None,
        sceneName: str | None = None,
        engine: str | None = None,
        output: str | None = None,
        format: str | None = None,
        threads: int | None = None,
        extraArgs: Sequence[str] = (),
        executable: str | None = None,
        env: Mapping[str, str | None] | None = None,
        cwd: str | None = None,
        label: str | None = None,
    ) -> None:
        super().__init__(executable=executable, env=env, cwd=cwd, label=label)
        self.scene = _text("scene", scene, "the path of the .blend file to render")
        self.frames = _frames(frames)
        self.sceneName = _optText("sceneName", sceneName, "the name of a scene in the file")
        self.engine = _engine(engine)
        self.output = _optText("output", output, "an output pattern like /farm/out/f_####.png")
        self.format = _format(format)
        if threads is not None and (
            not isinstance(threads, int) or isinstance(threads, bool) or not 0 <= threads <= 1024
        ):
            raise ValueError(
                f"threads must be an int from 0 to 1024 (0 = every core), not {threads!r}"
            )
        self.threads = threads
        if isinstance(extraArgs, (str, bytes)) or not (
            isinstance(extraArgs, Sequence) and all(isinstance(a, str) for a in extraArgs)
        ):
            raise TypeError(
                f"extraArgs must be a list of str (one Blender argument each), not {extraArgs!r}"
            )
        self.extraArgs = list(extraArgs)
        if self.frames is not None and len(self.frames) > 1 and self.format == "FFMPEG":
            step = _step(self.frames)
            if step is None:
                raise ValueError(
                    f"frames {formatFrames(self.frames)!r} are not an evenly spaced range, "
                    "which a movie (format FFMPEG) cannot be rendered from: Blender would write "
                    "one movie per frame; render images and encode them with the ffmpeg procedure"
                )
        self._reset()

    # -- the command line ----------------------------------------------------------------------

    def commandArgs(self) -> list[str]:
        """Blender's arguments (without the executable), in the order Blender needs them."""
        before, sep, after = _splitAtDoubleDash(self.extraArgs)
        scene = self.scene if not self.scene.startswith("-") else os.path.join(".", self.scene)
        args = ["-b", scene]
        for flag, value in (
            ("-S", self.sceneName),
            ("-E", self.engine),
            ("-o", self.output),
            ("-F", self.format),
            ("-t", None if self.threads is None else str(self.threads)),
        ):
            if value is not None:
                args += [flag, value]
        args += before
        options, action = _renderArgs(self.frames)
        args += [*options, "--python-expr", PROBE_EXPR, *action]
        return args + sep + after

    # -- running ---------------------------------------------------------------------------------

    def _reset(self) -> None:
        self.expected: list[int] | None = self.frames
        self.done: dict[int, None] = {}
        self.outputs: list[str] = []
        self.probe: dict[str, Any] = {}
        self.current: int | None = None
        self.fraction = 0.0
        self.remaining: str | None = None
        self.crashReport: str | None = None
        self.pythonErrors = 0
        self._traceback: dict[str, list[str]] = {}
        self._progress: float | None = None
        self._status: str | None = None
        self._quietTail: deque[str] = deque(maxlen=TAIL_LINES)

    def work(self) -> None:
        self._reset()
        base = self._base()
        scenePath = os.path.join(base, self.scene)
        if not os.path.isfile(scenePath):
            what = "does not exist"
            if os.path.isdir(scenePath):
                what = "is a directory, not a .blend file"
            raise ToolError(
                f"scene file {os.path.normpath(scenePath)} {what} on host {_host()}; fix the "
                "job's 'scene' parameter (a relative path is relative to the job's 'cwd', "
                f"here {base}) or make the file server holding it reachable from this host"
            )
        if "PATH" not in (self.env or {}):
            # Blender takes the first python3.X on PATH as its Python home: not the worker's own.
            self.env = {**(self.env or {}), "PATH": pathWithoutThisPython()}
        code = self.runTool(self.commandArgs(), okCodes=range(-128, 256))
        for lines in self._traceback.values():  # the output ended inside a traceback
            self._addErrorLines(lines)
        self._traceback.clear()
        if self.probe.get("movie") and self.done and isinstance(self.probe.get("moviePath"), str):
            self._addOutput(self.probe["moviePath"])
        where = f"{self.scene} on host {_host()}"
        if code < 0:
            raise ToolError(self._crashed(-code, where))
        if code != 0:
            raise ToolError(
                self._withHint(
                    self.failure(
                        f"Blender exited with status {code} {self._frameText()} of {where}"
                    )
                )
            )
        if self.errorLines:
            what = "a Python error" if self.pythonErrors else "errors"
            raise ToolError(
                self._withHint(
                    self.failure(
                        f"Blender reported {what} while rendering {where} (it exited with "
                        "status 0, but its frames may be wrong or missing)"
                    )
                )
            )
        expected = self.expected
        missing = [f for f in expected if f not in self.done] if expected is not None else []
        if missing or not (self.done or self.outputs):
            total = len(expected) if expected is not None else 0
            which = f"frames {formatFrames(missing)}" if missing else "any frame"
            raise ToolError(
                self.failure(
                    f"Blender exited with status 0 but did not save {which} of {where} "
                    f"({len(self.done)} of {total or '?'} saved; did a script in the file or in "
                    "'extraArgs' end Blender early?)"
                )
            )
        self.requireFiles(self.outputs)
        frames = list(expected) if expected is not None else list(self.done)
        self.setResult({"frames": frames, "outputs": self.outputs})
        self.setProgress(100)
        self.setStatusLine(f"rendered {len(frames)} frame{'s' if len(frames) != 1 else ''}")

    def _base(self) -> str:
        """The directory Blender runs in: relative paths (scene, output) start there."""
        return os.path.abspath(os.path.join(self.runningDir or os.getcwd(), self.cwd or "."))

    def _frameText(self) -> str:
        """How far Blender got: "rendering frame 5 (2 of 3)" or "before rendering a frame"."""
        if self.current is None:
            return "before rendering a frame"
        if self.current in self.done:
            return f"after saving frame {self.current}{self._position()}"
        return f"rendering frame {self.current}{self._position()}"

    def _position(self) -> str:
        if not self.expected:
            return ""
        n = min(len(self.done) + (self.current not in self.done), len(self.expected))
        return f" ({max(n, 1)} of {len(self.expected)})"

    def failure(self, what: str) -> str:
        """As ToolProc's, but each run of ``Fra:`` lines in Blender's last output shows only as
        its last line: the lines around it say more than a screenful of "Updating ..." would."""
        if self.errorLines:
            return super().failure(what)
        lines = list(self._quietTail)
        if not lines:
            return f"{what} (it printed nothing)"
        text = f"{what}; its last output:\n" + "\n".join(lines)
        return text if len(text) <= MESSAGE_MAX else text[: MESSAGE_MAX - 1] + "…"

    def _withHint(self, message: str) -> str:
        for pattern, hint in HINTS:
            if any(pattern.search(line) for line in self.errorLines):
                return f"{message}\n{hint}"
        return message

    def _crashed(self, signum: int, where: str) -> str:
        try:
            name = signal.Signals(signum).name
        except ValueError:
            name = f"signal {signum}"
        what = f"Blender crashed ({name}) {self._frameText()} of {where}"
        if signum == signal.SIGKILL:
            what = (
                f"Blender was killed ({name}) {self._frameText()} of {where}; if "
                "nobody stopped it, the kernel may have killed it for lack of memory (see the "
                "host's kernel log, dmesg)"
            )
        elif signum in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
            what = f"Blender was stopped ({name}) {self._frameText()} of {where}"
        if self.crashReport:
            what += f"; it wrote a crash report to {self.crashReport} on that host"
            text = _readHead(self.crashReport, MAX_CRASH_REPORT)
            if text is not None:
                what += " (copied into the job's stderr log)"
                print(f"jobtree: Blender's crash report {self.crashReport}:", file=sys.stderr)
                print(text, file=sys.stderr, flush=True)
        return self.failure(what)

    # -- reading Blender's output ----------------------------------------------------------------

    def onLine(self, stream: str, line: str) -> None:
        text = line.rstrip()
        if text.strip():
            tail = self._quietTail
            if tail and FRAME_RE.match(text) and FRAME_RE.match(tail[-1]):
                tail[-1] = text  # a run of "Fra:" lines keeps only its last
            else:
                tail.append(text)
        tb = self._traceback.get(stream)
        if tb is not None:
            if text.startswith((" ", "\t")):
                tb.append(text)
                return
            tb.append(text)  # the exception itself ends the traceback
            del self._traceback[stream]
            self._addErrorLines(tb)
            return
        if TRACEBACK_START in text:
            self.pythonErrors += 1
            # Blender's own "Error: Python: Traceback ..." is already an error line.
            self._traceback[stream] = [] if self.errorLines[-1:] == [text.strip()] else [text]
            return
        m = FRAME_RE.match(text)
        if m:
            self._frameLine(int(m.group(1)), text)
            return
        m = SAVED_RE.match(text)
        if m:
            self._frameDone(self.current, m.group("quoted") or m.group("plain"))
            return
        m = SKIPPED_RE.match(text)
        if m:
            self._frameDone(None, m.group(1))
            return
        m = APPENDED_RE.match(text)
        if m:
            self._frameDone(int(m.group(1)), None)
            return
        m = CRASH_REPORT_RE.match(text)
        if m:
            self.crashReport = m.group(1)
            return
        if text.startswith(PROBE_PREFIX):
            self._probeLine(text[len(PROBE_PREFIX) :])

    def _addErrorLines(self, lines: list[str]) -> None:
        room = MAX_REPORTED_LINES - len(self.errorLines)
        if room <= 0:
            return
        if len(lines) > room:  # keep the end: the innermost frame and the exception
            lines = ["  ...", *lines[-(room - 1) :]]
        self.errorLines.extend(lines)

    def _probeLine(self, text: str) -> None:
        try:
            data = json.loads(text)
        except ValueError:
            return
        if not isinstance(data, dict):
            return
        self.probe = data
        start, end, step = data.get("start"), data.get("end"), data.get("step")
        if self.frames is None and isinstance(start, int) and isinstance(end, int):
            step = step if isinstance(step, int) else 1
            self.expected = list(range(start, end + 1, max(step, 1)))
            self._report(None)

    def _frameLine(self, frame: int, text: str) -> None:
        if frame != self.current:
            self.current = frame
            self.fraction = 0.0
        status, fraction, remaining = parseStatus(text)
        if fraction is not None:
            self.fraction = max(self.fraction, fraction)
        self.remaining = remaining  # Blender leaves it out when it has no estimate
        self._report(status)

    def _frameDone(self, frame: int | None, path: str | None) -> None:
        if frame is None:  # no "Fra:" line told which: the next frame not yet done
            expected = self.expected or []
            frame = next((f for f in expected if f not in self.done), None)
        if frame is not None:
            self.done[frame] = None
            self.current = frame
            self.fraction = 1.0
        if path is not None:
            self._addOutput(path)
        self._report("saved" if path is not None else "appended to the movie")

    def _addOutput(self, path: str) -> None:
        full = os.path.normpath(os.path.join(self._base(), path))
        if full not in self.outputs:
            self.outputs.append(full)

    def _report(self, status: str | None) -> None:
        """Progress = (frames finished + fraction of the current one) / frames."""
        expected = self.expected
        if expected:
            finished = sum(1 for f in expected if f in self.done)
            partial = (
                self.fraction if self.current is not None and self.current not in self.done else 0.0
            )
            progress = round(100.0 * (finished + partial) / len(expected), 2)
            if progress != self._progress:
                self._progress = progress
                self.setProgress(progress)
        if status is not None and self.current is not None:
            line = f"frame {self.current}{self._position()}: {status}"
            if self.remaining and status.startswith(("sample", "tile")):
                line += f", {self.remaining} left"
            if line != self._status:
                self._status = line
                self.setStatusLine(line)


def parseStatus(line: str) -> tuple[str, float | None, str | None]:
    """(status text, fraction of the frame done or None, time remaining or None) of a ``Fra:``
    line: ``Fra:1 ... | Scene, ViewLayer | Sample 3/4`` -> ``("sample 3/4", 0.75, None)``."""
    fields = [f.strip() for f in line.split(" | ")]
    rest: list[str] = []
    remaining: str | None = None
    afterEngineMemory = False
    for f in fields:
        if f.startswith(("Fra:", "Time:")):
            continue
        if f.startswith("Remaining:"):
            remaining = f[len("Remaining:") :].strip()
            continue
        if f.startswith("Mem:"):  # the render engine's "Mem:0.86M, Peak:0.86M"
            afterEngineMemory = True
            continue
        if afterEngineMemory:  # "Scene, ViewLayer" follows it
            afterEngineMemory = False
            continue
        rest.append(f)
    text = ": ".join(rest)
    m = TILES_RE.search(text)
    if m:
        done = int(m.group(1) or m.group(3))
        total = int(m.group(2) or m.group(4))
        status = f"tiles {done}/{total}"
        fraction = done / total if total else None
        if m.group(5) is not None:
            sample, samples = int(m.group(5)), int(m.group(6))
            status += f", sample {sample}/{samples}"
            # "Rendered 1/20 Tiles, Sample 3/3" is printed both as tile 1 finishes and as tile 2
            # starts; only count a tile's samples while they are short of the total. All tiles
            # counted but samples short: progressive refine (before 3.0) samples every tile.
            if total and samples and sample < samples:
                fraction = (done + sample / samples) / total if done < total else sample / samples
        return status, _clamp(fraction), remaining
    m = SAMPLES_RE.search(text)
    if m:
        a, b = (m.group(1), m.group(2)) if m.group(1) else (m.group(3), m.group(4))
        sample, samples = int(a), int(b)
        fraction = sample / samples if samples else None
        return f"sample {sample}/{samples}", _clamp(fraction), remaining
    if text == "Finished":
        return "finished", 1.0, remaining
    return text, None, remaining


def _clamp(fraction: float | None) -> float | None:
    return None if fraction is None else max(0.0, min(1.0, fraction))


def _renderArgs(frames: list[int] | None) -> tuple[list[str], list[str]]:
    """(the frame options, the render action): ``-a``, ``-f 7``, ``-s 1 -e 9 -j 2`` + ``-a``
    (an evenly spaced range; ``-j`` also overrides the file's own frame step, which ``-a``
    would otherwise use) or ``-f 1..3,7,10..12``."""
    if frames is None:
        return [], ["-a"]
    if len(frames) == 1:
        return [], ["-f", str(frames[0])]
    step = _step(frames)
    if step is not None:
        return ["-s", str(frames[0]), "-e", str(frames[-1]), "-j", str(step)], ["-a"]
    return [], ["-f", _blenderFrameList(frames)]


def _step(frames: list[int]) -> int | None:
    """The step of an increasing, evenly spaced list of two or more frames, else None."""
    step = frames[1] - frames[0]
    if step >= 1 and all(b - a == step for a, b in itertools.pairwise(frames)):
        return step
    return None


def _blenderFrameList(frames: list[int]) -> str:
    """``-f``'s syntax: runs of three or more consecutive frames as ``a..b``, comma-separated."""
    parts: list[str] = []
    i = 0
    while i < len(frames):
        j = i
        while j + 1 < len(frames) and frames[j + 1] == frames[j] + 1:
            j += 1
        if j - i >= 2:
            parts.append(f"{frames[i]}..{frames[j]}")
        else:
            parts.extend(str(f) for f in frames[i : j + 1])
        i = j + 1
    return ",".join(parts)


def _splitAtDoubleDash(args: list[str]) -> tuple[list[str], list[str], list[str]]:
    """Blender ignores everything after ``--`` (it is for Python scripts' ``sys.argv``), so
    that part must come after the render action, or the render would never run."""
    if "--" in args:
        i = args.index("--")
        return args[:i], ["--"], args[i + 1 :]
    return args, [], []


def _text(name: str, value: Any, what: str) -> str:
    if not isinstance(value, str):
        raise TypeError(f"{name} must be {what} (a str), not {value!r}")
    if not value.strip():
        raise ValueError(f"{name} must be {what}, not an empty string")
    return value


def _optText(name: str, value: Any, what: str) -> str | None:
    return None if value is None else _text(name, value, what)


def _frames(frames: Any) -> list[int] | None:
    if frames is None:
        return None
    try:
        parsed = parseFrames(frames)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"frames: {exc}") from None
    if not parsed:
        raise ValueError(f"frames: {frames!r} names no frame")
    negative = [f for f in parsed if f < 0]
    if negative:
        raise ValueError(
            f"frames: Blender cannot render frame {negative[0]} by number (its command line "
            "reads -N as N frames before the scene's end); use frames from 0 up"
        )
    return parsed


def _engine(engine: Any) -> str | None:
    value = _optText("engine", engine, "a render engine name like 'CYCLES'")
    if value is None:
        return None
    upper = value.strip().upper()
    if upper in ENGINE_SUGGESTIONS:
        raise ValueError(
            f"engine {value!r} is not a Blender engine name; did you mean "
            f"{ENGINE_SUGGESTIONS[upper]!r}? (`blender -b -E help` lists them)"
        )
    return upper if upper in ENGINES else value  # add-on engines keep their own spelling


def _format(fmt: Any) -> str | None:
    value = _optText("format", fmt, "an image format name like 'PNG'")
    if value is None:
        return None
    upper = value.strip().upper()
    if upper in FORMAT_SUGGESTIONS:
        raise ValueError(
            f"format {value!r} is not a Blender format name; did you mean "
            f"{FORMAT_SUGGESTIONS[upper]!r}? (see `blender --help`, 'Format Options')"
        )
    return upper  # Blender knows only upper-case names: "png" would be ignored with an error


def _readHead(path: str, limit: int) -> str | None:
    try:
        with open(path, "rb") as f:
            return f.read(limit).decode("utf-8", "replace")
    except OSError:
        return None


def _host() -> str:
    return socket.gethostname()
