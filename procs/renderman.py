"""The ``renderman`` procedure: render RIB files with Pixar's ``prman``.

``prman -Progress`` prints one ``R90000  45%`` line per progress step, which becomes the job's
progress; prman's messages carry a code and a severity (``R56001 {SEVERE} ...``), and the
``ERROR`` and ``SEVERE`` ones become the failure message. With ``frames``, ``rib`` names one
RIB file per frame and prman runs once per frame.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from typing import ClassVar

from jobtree.frames import parseFrames

from ._tool import (
    FramePattern,
    ToolError,
    ToolProc,
    expectedPattern,
    optionalInt,
    optionalStr,
    strList,
)

_PERCENT = re.compile(r"^\s*R90000\s+(\d+)%")


class RenderMan(ToolProc):
    """Render *rib* (a RIB file, a list of them rendered in one run, or a pattern
    ``shot.####.rib`` with *frames*) with prman; see docs/procs/renderman.md."""

    TOOL: ClassVar[str] = "RenderMan"
    EXECUTABLE: ClassVar[str] = "prman"
    ERROR_RE: ClassVar[re.Pattern[str] | None] = re.compile(
        r"\b[A-Z]\d{5}\s+[{(\[]?(?:ERROR|SEVERE)\b"
    )

    def __init__(
        self,
        *,
        rib: str | list[str],
        frames: str | int | list[int] | None = None,
        threads: int | None = None,
        expectedOutput: str | None = None,
        extraArgs: list[str] | None = None,
        executable: str | None = None,
        env: Mapping[str, str | None] | None = None,
        cwd: str | None = None,
        label: str | None = None,
    ) -> None:
        super().__init__(executable=executable, env=env, cwd=cwd, label=label)
        if isinstance(rib, str) and rib:
            self.ribs = [rib]
        elif isinstance(rib, list) and rib and all(isinstance(r, str) and r for r in rib):
            self.ribs = list(rib)
        else:
            raise TypeError(
                f"rib must be a RIB file's path or a non-empty list of them, not {rib!r}"
            )
        self.frames = None if frames is None else parseFrames(frames)
        self.ribPattern: FramePattern | None = None
        if self.frames is not None:
            if len(self.ribs) != 1:
                raise ValueError("with frames, rib must be one pattern (shot.####.rib), not a list")
            try:
                self.ribPattern = FramePattern(self.ribs[0])
            except ValueError:
                raise ValueError(
                    f"with frames, rib must name one RIB file per frame with '#' for the frame "
                    f"number (e.g. /farm/rib/shot010.####.rib), not {self.ribs[0]!r}"
                ) from None
        self.threads = optionalInt("threads", threads)
        self.expectedOutput = optionalStr("expectedOutput", expectedOutput)
        self.outputPattern = expectedPattern(
            "expectedOutput",
            self.expectedOutput,
            self.frames,
            "give frames or the path of the one image",
        )
        self.extraArgs = strList("extraArgs", extraArgs)
        self._index = 0
        self._count = 1
        self._frame: int | None = None
        self._percent = 0
        self._image = 1
        self._best = 0.0

    def work(self) -> None:
        base = self.cwd or os.getcwd()
        runs: list[int | None] = list(self.frames) if self.frames is not None else [None]
        self._count = len(runs)
        outputs: list[str] = []
        for i, frame in enumerate(runs):
            self._index, self._frame = i, frame
            pattern = self.ribPattern
            ribs = self.ribs if pattern is None or frame is None else [pattern.path(frame)]
            missing = [r for r in ribs if not os.path.isfile(os.path.join(base, r))]
            if missing:
                raise ToolError(
                    f"RIB file{'s' if len(missing) > 1 else ''} {', '.join(missing)} "
                    f"{'do' if len(missing) > 1 else 'does'} not exist"
                    + (f" (frame {frame} of {self.ribs[0]})" if frame is not None else "")
                    + "; export the RIB first or fix 'rib'"
                )
            self._image = 1
            self._show(0)
            args = ["-Progress"]
            if self.threads is not None:
                args.append(f"-t:{self.threads}")
            what = None if frame is None else f"frame {frame}"
            path = self.runFor(
                what, [*args, *self.extraArgs, *ribs], expected=self._expected(frame)
            )
            if path is not None:
                outputs.append(path)
        done = f"{len(runs)} frames" if self.frames is not None else ", ".join(self.ribs)
        self.reportRendered(done, self.frames, outputs)

    def _expected(self, frame: int | None) -> str | None:
        if self.outputPattern is not None and frame is not None:
            return self.outputPattern.path(frame)
        last = frame is None or (self.frames is not None and frame == self.frames[-1])
        if self.expectedOutput is not None and last:
            return self.expectedOutput  # one image: checked once, after the last run
        return None

    def onLine(self, stream: str, line: str) -> None:
        m = _PERCENT.search(line)
        if m:
            percent = int(m.group(1))
            if percent < self._percent:  # a RIB stream with several images: the next began
                self._image += 1
            self._show(percent)

    def _show(self, percent: int) -> None:
        self._percent = percent
        # Never backwards (one run may render several images), 99 at most until checked.
        value = min(99.0, 100.0 * (self._index + percent / 100) / self._count)
        self._best = max(self._best, value)
        self.setProgress(self._best)
        image = f" (image {self._image})" if self._image > 1 else ""
        if self._frame is None:
            self.setStatusLine(f"rendering {os.path.basename(self.ribs[-1])}{image}: {percent}%")
        else:
            self.setStatusLine(
                f"frame {self._frame} ({self._index + 1}/{self._count}){image}: {percent}%"
            )
