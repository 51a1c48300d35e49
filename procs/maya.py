"""The ``maya`` procedure: render a Maya scene with Maya's command-line renderer ``Render``.

``Render`` renders one range (start, end, step) per run, so frames that are not one evenly
spaced range are rendered in one run per range. Progress comes from what the renderers print
through Maya: the software renderer's ``Percentage of rendering done: 40``, Arnold's
``| 40% done``, Redshift's ``Block 3/12 rendered``; a frame is done at ``Finished Rendering``
or Arnold's ``| render done``. Maya's ``// Error:`` lines become the failure message.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from typing import ClassVar

from jobtree.frames import formatFrames, frameRuns, parseFrames

from ._tool import ToolError, ToolProc, expectedPattern, optionalStr, strList

_PERCENT = (
    re.compile(r"Percentage of rendering done:\s*(\d+(?:\.\d+)?)"),  # Maya software, others
    re.compile(r"\|\s*(\d+(?:\.\d+)?)% done"),  # Arnold (MtoA)
    re.compile(r"\[PROGRESS\]\s*(\d+(?:\.\d+)?) percent"),
)
_BLOCKS = re.compile(r"Block (\d+)/(\d+) rendered")  # Redshift
_FRAME_DONE = re.compile(r"Finished Rendering|\|\s*render done\s*$|\[PROGRESS\] Completed frame")
_FRAME_START = re.compile(r"Initializing at frame (-?\d+)(?:\.0+)?\b|Rendering frame (-?\d+)\b")


class Maya(ToolProc):
    """Render *scene* (.mb/.ma) with Maya's ``Render``; see docs/procs/maya.md."""

    TOOL: ClassVar[str] = "Maya"
    EXECUTABLE: ClassVar[str] = "Render"
    ERROR_RE: ClassVar[re.Pattern[str] | None] = re.compile(
        r"^\s*(?://\s*)?(?:Fatal )?Error\b|\b(?:ERROR|FATAL)\s*\||\[mtoa\] Failed batch render"
        r"|^Usage: Render"
    )

    def __init__(
        self,
        *,
        scene: str,
        frames: str | int | list[int] | None = None,
        renderer: str | None = None,
        camera: str | None = None,
        renderLayer: str | None = None,
        outputDir: str | None = None,
        imageName: str | None = None,
        format: str | None = None,
        project: str | None = None,
        expectedOutput: str | None = None,
        okCodes: list[int] | None = None,
        extraArgs: list[str] | None = None,
        executable: str | None = None,
        env: Mapping[str, str | None] | None = None,
        cwd: str | None = None,
        label: str | None = None,
    ) -> None:
        super().__init__(executable=executable, env=env, cwd=cwd, label=label)
        if not isinstance(scene, str) or not scene:
            raise TypeError(f"scene must be the path of a Maya scene (str), not {scene!r}")
        self.scene = scene
        self.frames = None if frames is None else parseFrames(frames)
        self.renderer = optionalStr("renderer", renderer)
        self.camera = optionalStr("camera", camera)
        self.renderLayer = optionalStr("renderLayer", renderLayer)
        self.outputDir = optionalStr("outputDir", outputDir)
        self.imageName = optionalStr("imageName", imageName)
        self.format = optionalStr("format", format)
        self.project = optionalStr("project", project)
        self.expectedOutput = optionalStr("expectedOutput", expectedOutput)
        self.outputPattern = expectedPattern(
            "expectedOutput",
            self.expectedOutput,
            self.frames,
            "give frames (e.g. '1-10') to check every frame's image",
        )
        if okCodes is None:
            okCodes = [0]
        if not (
            isinstance(okCodes, list)
            and okCodes
            and all(isinstance(c, int) and not isinstance(c, bool) for c in okCodes)
        ):
            raise TypeError(f"okCodes must be a non-empty list of exit codes, not {okCodes!r}")
        self.okCodes = okCodes
        self.extraArgs = strList("extraArgs", extraArgs)
        self._done = 0  # frames finished in this job
        self._percent = 0.0
        self._frame: int | None = None

    def ranges(self) -> list[tuple[int, int, int]]:
        """(start, end, step) of each run of ``Render`` for :attr:`frames`."""
        return [] if self.frames is None else frameRuns(self.frames)

    def work(self) -> None:
        base = self.cwd or os.getcwd()
        if not os.path.isfile(os.path.join(base, self.scene)):
            raise ToolError(f"Maya scene {self.scene} does not exist; fix 'scene'")
        runs: list[tuple[int, int, int] | None] = list(self.ranges()) or [None]
        finished = 0
        for run in runs:
            self._done, self._percent, self._frame = finished, 0.0, None
            self._show()
            frames = None if run is None else range(run[0], run[1] + 1, run[2])
            # One range: its frames are the job's, no need to name them in a failure.
            what = None if frames is None or len(runs) == 1 else f"frames {formatFrames(frames)}"
            self.runFor(what, self._args(run), okCodes=self.okCodes)
            finished += len(frames or ())
        outputs: list[str] = []
        if self.expectedOutput is not None:
            expected = (
                [self.outputPattern.path(f) for f in self.frames or ()]
                if self.outputPattern is not None
                else [self.expectedOutput]
            )
            self.requireFiles(expected, "image")
            outputs = [os.path.abspath(os.path.join(base, p)) for p in expected]
        done = f"frames {formatFrames(self.frames)}" if self.frames else "its frames"
        self.reportRendered(f"{done} of {os.path.basename(self.scene)}", self.frames, outputs)

    def _args(self, run: tuple[int, int, int] | None) -> list[str]:
        args: list[str] = []
        if self.renderer is not None:
            args += ["-r", self.renderer]  # first: it decides which other flags Render knows
        if run is not None:
            args += ["-s", str(run[0]), "-e", str(run[1]), "-b", str(run[2])]
        for flag, value in (
            ("-cam", self.camera),
            ("-rl", self.renderLayer),
            ("-rd", self.outputDir),
            ("-im", self.imageName),
            ("-of", self.format),
            ("-proj", self.project),
        ):
            if value is not None:
                args += [flag, value]
        return [*args, *self.extraArgs, self.scene]

    # -- reading Maya's output -----------------------------------------------------------------

    def onLine(self, stream: str, line: str) -> None:
        m = _FRAME_START.search(line)
        if m:
            self._frame = int(m.group(1) or m.group(2))
            self._percent = 0.0
            self._show()
            return
        if _FRAME_DONE.search(line):
            self._done += 1
            self._percent, self._frame = 0.0, None
            self._show()
            return
        m = _BLOCKS.search(line)
        if m and int(m.group(2)) > 0:
            self._percent = 100.0 * int(m.group(1)) / int(m.group(2))
            self._show()
            return
        for regex in _PERCENT:
            m = regex.search(line)
            if m:
                self._percent = float(m.group(1))
                self._show()
                return

    def _show(self) -> None:
        total = len(self.frames) if self.frames is not None else 0
        done = min(self._done, total) if total else self._done
        frame = self._frame
        if frame is None and self.frames is not None and done < total:
            frame = self.frames[done]  # Render goes through its range in order
        pct = f"{self._percent:.0f}%"
        if total:
            # 99 at most until the images are checked.
            self.setProgress(min(99.0, 100.0 * (done + self._percent / 100) / total))
            where = f"frame {frame} ({min(done + 1, total)}/{total})"
        else:
            where = f"frame {frame}" if frame is not None else f"{done} frames done, rendering"
        self.setStatusLine(f"{where}: {pct}")
