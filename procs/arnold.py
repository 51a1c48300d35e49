"""The ``arnold`` procedure: render Arnold scene files (.ass) with ``kick``, one run per frame.

An animation exported for Arnold is one .ass file per frame (``shot010.####.ass``), so with
``frames`` the procedure runs kick once per frame on that frame's file. Progress comes from
kick's ``NN% done`` lines, failures from its ``ERROR |`` lines, and a frame whose image is
missing afterwards fails the job.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from typing import ClassVar

from jobtree.frames import parseFrames

from ._tool import FramePattern, ToolError, ToolProc, optionalInt, optionalStr, strList

_PERCENT = re.compile(r"\|\s*(\d+)% done")


class Arnold(ToolProc):
    """Render *scene* (an .ass file, or a pattern ``shot.####.ass`` with *frames*) with kick;
    see docs/procs/arnold.md for every parameter."""

    TOOL: ClassVar[str] = "Arnold"
    EXECUTABLE: ClassVar[str] = "kick"
    ERROR_RE: ClassVar[re.Pattern[str] | None] = re.compile(r"\b(?:ERROR|FATAL)\s*\|")

    def __init__(
        self,
        *,
        scene: str,
        frames: str | int | list[int] | None = None,
        output: str | None = None,
        camera: str | None = None,
        resolution: list[int] | None = None,
        samples: int | None = None,
        threads: int | None = None,
        verbosity: int = 2,
        extraArgs: list[str] | None = None,
        executable: str | None = None,
        env: Mapping[str, str | None] | None = None,
        cwd: str | None = None,
        label: str | None = None,
    ) -> None:
        super().__init__(executable=executable, env=env, cwd=cwd, label=label)
        if not isinstance(scene, str) or not scene:
            raise TypeError(f"scene must be the path of an .ass file (str), not {scene!r}")
        self.scene = scene
        self.frames = None if frames is None else parseFrames(frames)
        self.output = optionalStr("output", output)
        self.scenePattern: FramePattern | None = None
        self.outputPattern: FramePattern | None = None
        if self.frames is not None:
            try:
                self.scenePattern = FramePattern(scene)
            except ValueError:
                raise ValueError(
                    f"with frames, scene must name one .ass file per frame with '#' for the "
                    f"frame number (e.g. /farm/ass/shot010.####.ass), not {scene!r}"
                ) from None
            if self.output is not None and len(self.frames) > 1:
                try:
                    self.outputPattern = FramePattern(self.output)
                except ValueError:
                    raise ValueError(
                        f"output {self.output!r} has no '#' for the frame number: every frame "
                        "would overwrite the last; write e.g. /farm/out/shot010.####.exr"
                    ) from None
            elif self.output is not None and "#" in os.path.basename(self.output):
                self.outputPattern = FramePattern(self.output)
        elif "#" in os.path.basename(scene):
            raise ValueError(
                f"scene {scene!r} has '#' for a frame number but no frames were given; "
                "give frames (e.g. '1-10'), or the path of one .ass file"
            )
        self.camera = optionalStr("camera", camera)
        if resolution is not None and not (
            isinstance(resolution, (list, tuple))
            and len(resolution) == 2
            and all(isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in resolution)
        ):
            raise TypeError(f"resolution must be [width, height] in pixels, not {resolution!r}")
        self.resolution = list(resolution) if resolution is not None else None
        self.samples = optionalInt("samples", samples)
        self.threads = optionalInt("threads", threads)
        level = optionalInt("verbosity", verbosity, minimum=0)
        if level is None or level > 6:
            raise ValueError(f"verbosity must be 0..6 (kick -v), not {verbosity!r}")
        self.verbosity = level
        self.extraArgs = strList("extraArgs", extraArgs)
        self._index = 0
        self._count = 1
        self._frame: int | None = None

    def work(self) -> None:
        base = self.cwd or os.getcwd()
        runs: list[int | None] = list(self.frames) if self.frames is not None else [None]
        self._count = len(runs)
        outputs: list[str] = []
        for i, frame in enumerate(runs):
            self._index, self._frame = i, frame
            pattern = self.scenePattern
            scene = self.scene if pattern is None or frame is None else pattern.path(frame)
            if not os.path.isfile(os.path.join(base, scene)):
                raise ToolError(
                    f"scene file {scene} does not exist"
                    + (f" (frame {frame} of {self.scene})" if frame is not None else "")
                    + "; export it first or fix 'scene'"
                    + (" / 'frames'" if frame is not None else "")
                )
            output = self._outputFor(frame)
            self._show(0)
            what = None if frame is None else f"frame {frame}"
            path = self.runFor(what, self._args(scene, output), expected=output)
            if path is not None:
                outputs.append(path)
        done = f"{len(runs)} frames" if self.frames is not None else os.path.basename(self.scene)
        self.reportRendered(done, self.frames, outputs)

    def _args(self, scene: str, output: str | None) -> list[str]:
        args = ["-i", scene]
        if output is not None:
            args += ["-o", output]
        if self.camera is not None:
            args += ["-c", self.camera]
        if self.resolution is not None:
            args += ["-r", str(self.resolution[0]), str(self.resolution[1])]
        if self.samples is not None:
            args += ["-as", str(self.samples)]
        if self.threads is not None:
            args += ["-t", str(self.threads)]
        # No render window, no progressive refinement: batch rendering on a farm node.
        args += ["-dw", "-dp", "-v", str(self.verbosity)]
        return args + self.extraArgs

    def _outputFor(self, frame: int | None) -> str | None:
        if self.output is None:
            return None
        if frame is not None and self.outputPattern is not None:
            return self.outputPattern.path(frame)
        return self.output

    def onLine(self, stream: str, line: str) -> None:
        m = _PERCENT.search(line)
        if m:
            self._show(int(m.group(1)))

    def _show(self, percent: int) -> None:
        # 99 at most until every image is on disk.
        self.setProgress(min(99.0, 100.0 * (self._index + percent / 100) / self._count))
        if self._frame is None:
            self.setStatusLine(f"rendering {os.path.basename(self.scene)}: {percent}%")
        else:
            self.setStatusLine(f"frame {self._frame} ({self._index + 1}/{self._count}): {percent}%")
