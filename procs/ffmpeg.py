"""The ``ffmpeg`` procedure: encode an image sequence to a movie that ffprobe has checked.

The movie is written under a temporary name next to the output (same extension, so ffmpeg picks
the same muxer), counted frame by frame with ffprobe and only then renamed into place: a reader
of the output path sees the old movie or the complete new one, never half of one.

Contiguous frames are read by ffmpeg's image2 demuxer from the first frame on; any other set of
frames (every 2nd frame, a list) through a concat list written into the job's directory, with
the timestamps rewritten so that every listed image is exactly one frame of the movie.
"""

from __future__ import annotations

import itertools
import json
import math
import os
import re
import secrets
import shutil
import socket
from collections.abc import Mapping
from fractions import Fraction
from typing import Any, ClassVar

from jobtree.frames import formatFrames, parseFrames

from ._tool import FramePattern, ToolError, ToolProc, _nonEmpty, optionalStr, strList

CRF_DEFAULTS: dict[str, int] = {
    "libx264": 18,
    "libx264rgb": 18,
    "libx265": 18,
    "libvpx-vp9": 31,
    "libaom-av1": 30,
    "libsvtav1": 30,
}
"""Codecs whose ``quality`` is a CRF (lower is better), with the CRF used when none is given."""

QSCALE_CODECS: frozenset[str] = frozenset(
    {"mjpeg", "mpeg4", "mpeg2video", "mpeg1video", "prores_ks"}
)
"""Codecs whose ``quality`` is ``-q:v`` (lower is better); without ``quality`` ffmpeg decides."""

_ZERO_BITRATE = frozenset({"libvpx-vp9", "libaom-av1"})  # pure constant quality needs -b:v 0
_EVEN_BOTH = re.compile(r"^(yuvj?420|nv12|nv21|p01[06])")  # chroma halved in both directions
_EVEN_WIDTH = re.compile(r"^(yuvj?422|nv16|yuyv422|uyvy422)")  # chroma halved horizontally
_FAST_START = frozenset({".mp4", ".mov", ".m4v"})
_FILTER_OPTS = frozenset({"-vf", "-filter:v", "-filter:v:0"})
_NOISE = re.compile(r" @ 0x[0-9a-f]+|\[(?:error|fatal|panic)\] ")
CONCAT_LIST = "ffmpeg-frames.txt"
"""The concat list a non-contiguous encode writes into its job directory (kept for inspection)."""


class FFmpeg(ToolProc):
    """Encode the image sequence *input* (``/out/shot_####.png`` or ``shot_%04d.png``) to the
    movie *output*; see docs/procs/ffmpeg.md for every parameter."""

    TOOL: ClassVar[str] = "ffmpeg"
    EXECUTABLE: ClassVar[str] = "ffmpeg"
    ERROR_RE: ClassVar[re.Pattern[str] | None] = re.compile(
        r"\[(?:error|fatal|panic)\]|Unknown encoder|No such file or directory"
        r"|Invalid data found|Conversion failed|Error (?:opening|initializing|while)"
    )

    def __init__(
        self,
        *,
        input: str,
        output: str,
        frames: str | int | list[int] | None = None,
        frameRate: float | str = 24,
        codec: str = "libx264",
        quality: int | None = None,
        pixelFormat: str | None = "yuv420p",
        extraArgs: list[str] | None = None,
        ffprobe: str | None = None,
        executable: str | None = None,
        env: Mapping[str, str | None] | None = None,
        cwd: str | None = None,
        label: str | None = None,
    ) -> None:
        super().__init__(executable=executable, env=env, cwd=cwd, label=label)
        self.input = input
        self.pattern = FramePattern(input)
        if not isinstance(output, str) or not output:
            raise TypeError(f"output must be the movie's path (str), not {output!r}")
        if not os.path.splitext(output)[1]:
            raise ValueError(
                f"output {output!r} has no extension; ffmpeg chooses the container by it "
                "(.mp4, .mov, .mkv, .webm, ...)"
            )
        self.output = output
        self.frames = None if frames is None else parseFrames(frames)
        self.rate = _frameRate(frameRate)
        if not isinstance(codec, str) or not codec:
            raise TypeError(f"codec must be an ffmpeg encoder name (str), not {codec!r}")
        self.codec = codec
        if quality is not None:
            if isinstance(quality, bool) or not isinstance(quality, int) or quality < 0:
                raise ValueError(f"quality must be an int >= 0 (or None), not {quality!r}")
            if codec not in CRF_DEFAULTS and codec not in QSCALE_CODECS:
                raise ValueError(
                    f"codec {codec!r} has no quality scale jobtree knows (CRF: "
                    f"{', '.join(CRF_DEFAULTS)}; -q:v: {', '.join(sorted(QSCALE_CODECS))}); "
                    "leave quality unset and give the codec's own options in extraArgs, "
                    "e.g. ['-b:v', '20M']"
                )
        self.quality = quality
        self.pixelFormat = optionalStr("pixelFormat", pixelFormat)
        self.extraArgs = strList("extraArgs", extraArgs)
        self.ffprobe = optionalStr("ffprobe", ffprobe)
        self._stats: dict[str, str] = {}
        self._total = 0
        self._probeOut: list[str] | None = None

    # -- the work ------------------------------------------------------------------------------

    def work(self) -> None:
        base = self.cwd or os.getcwd()
        frames = self._inputFrames(base)
        ffmpeg = self.resolveExecutable()
        ffprobe = self._resolveFfprobe(ffmpeg)
        output = os.path.abspath(os.path.join(base, self.output))
        outDir, name = os.path.split(output)
        stem, ext = os.path.splitext(name)
        try:
            os.makedirs(outDir, exist_ok=True)
        except OSError as exc:
            raise ToolError(
                f"cannot create the movie's directory {outDir} on host {socket.gethostname()}: "
                f"{exc.strerror or exc}; fix 'output' or the directory's permissions"
            ) from None
        # Hidden, unique, and with the output's extension: ffmpeg picks the muxer by it.
        partial = os.path.join(outDir, f".{stem}.partial-{secrets.token_hex(4)}{ext}")
        self._total = len(frames)
        try:
            self.setStatusLine(f"encoding {len(frames)} frames to {name}")
            self.runTool(self._args(frames, base, partial, ext))
            if self.errorLines:
                # A frame it could not decode is skipped, and its slot filled with a copy of
                # the one before: the count would match, the movie would be wrong.
                raise ToolError(
                    self.failure(
                        f"ffmpeg reported errors encoding {output} (it exited with status 0, "
                        "but frames may be missing or repeated), so the movie was not kept"
                    )
                )
            if not _nonEmpty(partial):
                raise ToolError(self.failure(f"ffmpeg finished but did not write {output}"))
            self.setStatusLine(f"checking {name} with ffprobe")
            counted = self._countFrames(ffprobe, partial, output)
            if counted != len(frames):
                raise ToolError(
                    f"ffmpeg wrote {counted} frames to {output} but {len(frames)} were expected "
                    f"(frames {formatFrames(frames)} of {self.input}); the movie was not kept. "
                    "Check extraArgs for options that drop or add frames"
                )
            os.replace(partial, output)
        finally:
            if os.path.lexists(partial):
                os.unlink(partial)
        duration = float(len(frames) / self.rate)
        self.setProgress(100)
        self.setStatusLine(f"wrote {output} ({len(frames)} frames, {duration:g} s)")
        self.setResult({"output": output, "frames": len(frames), "duration": duration})

    def _inputFrames(self, base: str) -> list[int]:
        """The frames to encode, every one of them on disk (ToolError listing those missing)."""
        if self.frames is not None:
            frames = self.frames
        else:
            found = self.pattern.find(base)
            if not found:
                where = os.path.join(base, self.pattern.directory)
                raise ToolError(
                    f"no frames of {self.input} found in {where} on host "
                    f"{socket.gethostname()}; render them first or fix 'input'"
                )
            # All found, from the first to the last at their common step: a gap is a frame
            # that failed to render, not one to leave out of the movie unnoticed.
            step = 0
            for a, b in itertools.pairwise(found):
                step = math.gcd(step, b - a)
            frames = list(range(found[0], found[-1] + 1, step or 1))
        missing = [f for f in frames if not _nonEmpty(os.path.join(base, self.pattern.path(f)))]
        if missing:
            paths = ", ".join(self.pattern.path(f) for f in missing[:3])
            more = f" and {len(missing) - 3} more" if len(missing) > 3 else ""
            raise ToolError(
                f"{len(missing)} of {len(frames)} input frames are missing or empty on host "
                f"{socket.gethostname()}: frame{'s' if len(missing) > 1 else ''} "
                f"{formatFrames(missing)} ({paths}{more}); "
                "render them again, or set 'frames' to the frames to encode"
            )
        return frames

    def _args(self, frames: list[int], base: str, partial: str, ext: str) -> list[str]:
        rate = _rateText(self.rate)
        args = ["-hide_banner", "-nostdin", "-y", "-loglevel", "level+info"]
        args += ["-nostats", "-progress", "pipe:1"]
        userFilter, extra = _takeFilter(self.extraArgs)
        filters: list[str] = []
        first = frames[0]
        if frames == list(range(first, first + len(frames))):
            args += ["-f", "image2", "-pattern_type", "sequence", "-framerate", rate]
            args += ["-start_number", str(first), "-i", self._printfPattern(base)]
            args += ["-frames:v", str(len(frames))]
        else:
            args += ["-f", "concat", "-safe", "0", "-i", self._writeConcatList(frames, base)]
            # One image, one frame: timestamps 0, 1, 2, ... in units of 1/rate, whatever the
            # list's durations round to (plain -r duplicates a frame now and then).
            tb = 1 / self.rate
            filters.append(f"settb={tb.numerator}/{tb.denominator},setpts=N")
            args += ["-r", rate]
        args += ["-c:v", self.codec]
        quality = self.quality if self.quality is not None else CRF_DEFAULTS.get(self.codec)
        if quality is not None:
            if self.codec in CRF_DEFAULTS:
                args += ["-crf", str(quality)]
                if self.codec in _ZERO_BITRATE:
                    args += ["-b:v", "0"]
            else:
                args += ["-q:v", str(quality)]
        if self.pixelFormat:
            args += ["-pix_fmt", self.pixelFormat]
        if userFilter:
            filters.append(userFilter)
        if self.pixelFormat and _EVEN_BOTH.match(self.pixelFormat):
            filters.append("pad=ceil(iw/2)*2:ceil(ih/2)*2")  # 4:2:0 needs even sizes
        elif self.pixelFormat and _EVEN_WIDTH.match(self.pixelFormat):
            filters.append("pad=ceil(iw/2)*2:ih")
        if filters:
            args += ["-vf", ",".join(filters)]
        if ext.lower() in _FAST_START:
            args += ["-movflags", "+faststart"]
        return [*args, *extra, partial]

    def _printfPattern(self, base: str) -> str:
        """The input for image2: printf-style, with literal ``%`` doubled."""
        p = self.pattern
        number = f"%0{p.width}d" if p.width else "%d"
        name = p.prefix.replace("%", "%%") + number + p.suffix.replace("%", "%%")
        return os.path.join(os.path.abspath(os.path.join(base, p.directory)), name)

    def _writeConcatList(self, frames: list[int], base: str) -> str:
        listFile = os.path.join(self.runningDir or os.getcwd(), CONCAT_LIST)
        lines = ["ffconcat version 1.0"]
        step = 1 / self.rate
        for i, f in enumerate(frames):
            path = os.path.abspath(os.path.join(base, self.pattern.path(f)))
            quoted = path.replace("'", "'\\''")
            # Whole microseconds that add up without drift (the filter sets the exact times).
            us = round((i + 1) * step * 1_000_000) - round(i * step * 1_000_000)
            lines += [f"file '{quoted}'", f"duration {us}us"]
        with open(listFile, "w", encoding="utf-8") as fh:
            fh.write("\n".join(lines) + "\n")
        return listFile

    def _resolveFfprobe(self, ffmpeg: str) -> str:
        """ffprobe: the 'ffprobe' parameter, $JOBTREE_FFPROBE, the one beside ffmpeg, PATH."""
        name = self.ffprobe or os.environ.get("JOBTREE_FFPROBE")
        if not name:
            sibling = os.path.join(os.path.dirname(ffmpeg), "ffprobe")
            if os.path.isfile(sibling) and os.access(sibling, os.X_OK):
                return sibling
            name = "ffprobe"
        found = shutil.which(name, path=(self.env or {}).get("PATH") or os.environ.get("PATH"))
        if found is None:
            how = (
                "the job's 'ffprobe' parameter"
                if self.ffprobe
                else "$JOBTREE_FFPROBE"
                if os.environ.get("JOBTREE_FFPROBE")
                else f"beside {ffmpeg} or on the PATH"
            )
            raise ToolError(
                f"ffprobe {name!r} (from {how}) was not found or is not executable on host "
                f"{socket.gethostname()}; it checks the movie before it is kept: install it "
                "(it comes with ffmpeg), or set the job's 'ffprobe' parameter or "
                "$JOBTREE_FFPROBE on the worker to its path"
            )
        return found

    def _countFrames(self, ffprobe: str, partial: str, output: str) -> int:
        args = ["-v", "error", "-select_streams", "v:0", "-count_frames"]
        args += ["-show_entries", "stream=nb_read_frames", "-of", "json", partial]
        self._probeOut = []
        try:
            self.runArgv([ffprobe, *args], what="ffprobe")
            text = "\n".join(self._probeOut)
        except ToolError as exc:
            raise ToolError(
                f"ffmpeg wrote {output} but ffprobe could not read it, so it was not kept: {exc}"
            ) from None
        finally:
            self._probeOut = None
        try:
            data: Any = json.loads(text)
            return int(data["streams"][0]["nb_read_frames"])
        except (ValueError, KeyError, IndexError, TypeError):
            raise ToolError(
                f"ffmpeg wrote {output} but ffprobe found no video frames in it, so it was not "
                f"kept; ffprobe printed: {text.strip()[:500] or 'nothing'}"
            ) from None

    # -- reading ffmpeg's output ---------------------------------------------------------------

    def onLine(self, stream: str, line: str) -> None:
        if stream == "stderr":
            if self.errorLines and self.errorLines[-1] == line.strip():
                self.errorLines[-1] = _NOISE.sub("", self.errorLines[-1])
            return
        if self._probeOut is not None:
            self._probeOut.append(line)
            return
        key, sep, value = line.partition("=")
        if not sep:
            return
        self._stats[key.strip()] = value.strip()
        if key.strip() == "progress":  # the last key of each -progress block
            self._showProgress()

    def _showProgress(self) -> None:
        try:
            done = int(self._stats.get("frame", "0"))
        except ValueError:
            return
        total = max(self._total, 1)
        # 99 at most: 100 means checked by ffprobe and renamed into place.
        self.setProgress(min(99.0, 100.0 * done / total))
        status = f"encoding frame {done}/{self._total}"
        fps = self._stats.get("fps", "")
        if fps and fps not in ("0", "0.00", "N/A"):
            status += f", {fps} fps"
        speed = self._stats.get("speed", "").strip()
        if speed and speed != "N/A":
            status += f", speed {speed}"
        self.setStatusLine(status)


def _frameRate(value: Any) -> Fraction:
    """frameRate as an exact fraction; 23.976, 29.97, 59.94 are read as the NTSC x/1001 rates."""
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        raise TypeError(
            f"frameRate must be a number or a fraction like '24000/1001', not {value!r}"
        )
    try:
        rate = Fraction(value) if not isinstance(value, float) else Fraction(str(value))
    except (ValueError, ZeroDivisionError):
        raise ValueError(
            f"frameRate {value!r} is not a number or a fraction like '24000/1001'"
        ) from None
    if rate <= 0 or rate > 1000:
        raise ValueError(f"frameRate must be above 0 and at most 1000, not {value!r}")
    if rate.denominator != 1:
        ntsc = rate * Fraction(1001, 1000)
        if abs(ntsc - round(ntsc)) < Fraction(1, 100):
            return Fraction(round(ntsc) * 1000, 1001)
    return rate


def _rateText(rate: Fraction) -> str:
    return str(rate.numerator) if rate.denominator == 1 else f"{rate.numerator}/{rate.denominator}"


def _takeFilter(extraArgs: list[str]) -> tuple[str | None, list[str]]:
    """The video filter chain given in *extraArgs* (``-vf X``), and the other arguments: it is
    merged into the one ``-vf`` this procedure passes (ffmpeg would keep only the last)."""
    chain: str | None = None
    rest: list[str] = []
    i = 0
    while i < len(extraArgs):
        if extraArgs[i] in _FILTER_OPTS and i + 1 < len(extraArgs):
            chain = extraArgs[i + 1] if chain is None else f"{chain},{extraArgs[i + 1]}"
            i += 2
        else:
            rest.append(extraArgs[i])
            i += 1
    return chain, rest
