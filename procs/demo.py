"""The demo farm's own renderer and encoder, written with numpy and Pillow.

``demo-render`` draws frames of a small looping animation (a shaded, checkered planet with a moon
going round it) and ``animated-image`` assembles frames into an animated GIF, WebP or PNG. They
let ``jobtree demo`` show a whole render farm on a machine without Blender or ffmpeg.
"""

from __future__ import annotations

import io
import math
import os
import time
from typing import Any, Final

import numpy as np
import numpy.typing as npt
from PIL import Image, ImageDraw, ImageFont

from jobtree._fs import writeAtomic
from jobtree.frames import formatFrames, parseFrames
from jobtree.proc import JobProc

from ._tool import FramePattern

FloatArray = npt.NDArray[np.float32]

IMAGE_FORMATS: Final = {
    ".png": "PNG",
    ".jpg": "JPEG",
    ".jpeg": "JPEG",
    ".webp": "WEBP",
    ".bmp": "BMP",
    ".tif": "TIFF",
    ".tiff": "TIFF",
}
"""Frame formats demo-render writes, by the output's extension."""

ANIMATION_FORMATS: Final = {".gif": "GIF", ".webp": "WEBP", ".png": "PNG"}
"""Animated formats animated-image writes, by the output's extension (.png: APNG)."""

SUPERSAMPLING: Final = 3
"""Samples per pixel along each axis: anti-aliasing, and what makes a frame take ~0.1-0.3 s."""

MAX_SIZE: Final = 4096


# -- helpers --------------------------------------------------------------------------------------


def _shortList(items: list[str], limit: int = 5) -> str:
    more = f" and {len(items) - limit} more" if len(items) > limit else ""
    return ", ".join(items[:limit]) + more


def _frameList(frame: Any, frames: Any, where: str) -> list[int]:
    if (frame is None) == (frames is None):
        raise ValueError(f"{where}: give exactly one of 'frame' (an int) or 'frames' (a range)")
    if frame is not None:
        if isinstance(frame, bool) or not isinstance(frame, int):
            raise TypeError(f"{where}: frame must be an int, not {frame!r}")
        return [frame]
    return parseFrames(frames)


def _checkPattern(output: Any, formats: dict[str, str], what: str) -> str:
    if not isinstance(output, str) or not output:
        raise TypeError(f"{what} must be a file path (str), not {output!r}")
    ext = os.path.splitext(output)[1].lower()
    if ext not in formats:
        raise ValueError(
            f"{what} {output!r}: unknown extension {ext or '(none)'}; use one of "
            f"{', '.join(sorted(formats))}"
        )
    return output


def _saveAtomic(image: Image.Image, path: str, fmt: str, **options: Any) -> None:
    """Encode in memory and write with jobtree's atomic write (hidden temporary name, then
    rename), so that a reader (the encode job, a viewer) never sees half an image."""
    data = io.BytesIO()
    image.save(data, format=fmt, **options)
    writeAtomic(path, data.getvalue())


# -- the picture -----------------------------------------------------------------------------------


def _normalize(v: FloatArray) -> FloatArray:
    out: FloatArray = v / np.linalg.norm(v)
    return out


_LIGHT = _normalize(np.array([-0.5, 0.6, 0.65], dtype=np.float32))
_HALF = _normalize(_LIGHT + np.array([0.0, 0.0, 1.0], dtype=np.float32))


def _sphere(
    x: FloatArray,
    y: FloatArray,
    cx: float,
    cy: float,
    r: float,
    spin: float,
    tilt: float,
    colors: tuple[tuple[float, float, float], tuple[float, float, float]],
    bands: int,
) -> tuple[FloatArray, FloatArray]:
    """(depth, rgb) of a striped sphere; depth is -inf outside it. Orthographic, y up."""
    dx = (x - cx) / r
    dy = (cy - y) / r
    d2 = dx * dx + dy * dy
    inside = d2 < 1.0
    nz = np.sqrt(np.clip(1.0 - d2, 0.0, None))
    # The texture turns with the sphere: rotate the normal back by the tilt, then by the spin.
    ct, st = math.cos(tilt), math.sin(tilt)
    ty = dy * ct - nz * st
    tz = dy * st + nz * ct
    cs, ss = math.cos(spin), math.sin(spin)
    ux = dx * cs - tz * ss
    uz = dx * ss + tz * cs
    lon = np.arctan2(ux, uz)
    lat = np.arcsin(np.clip(ty, -1.0, 1.0))
    stripe = (np.floor(lat / math.pi * bands) + np.floor(lon / math.pi * 4)) % 2
    a = np.array(colors[0], dtype=np.float32)
    b = np.array(colors[1], dtype=np.float32)
    base = a + (b - a) * stripe[..., None]
    diffuse = np.clip(dx * _LIGHT[0] + dy * _LIGHT[1] + nz * _LIGHT[2], 0.0, 1.0)
    spec = np.clip(dx * _HALF[0] + dy * _HALF[1] + nz * _HALF[2], 0.0, 1.0) ** 64
    rim = (1.0 - nz) ** 3 * 0.35
    rgb = base * (0.18 + 0.82 * diffuse[..., None]) + (spec * 0.55 + rim)[..., None]
    depth = np.where(inside, nz * r, -np.inf).astype(np.float32)
    return depth, rgb.astype(np.float32)


def renderFrame(
    frame: int, width: int = 320, height: int = 180, frameCount: int = 48
) -> Image.Image:
    """One frame of the demo animation. Deterministic; it loops every *frameCount* frames."""
    s = SUPERSAMPLING
    phase = ((frame - 1) % frameCount) / frameCount
    turn = 2.0 * math.pi * phase
    ys, xs = np.mgrid[0 : height * s, 0 : width * s].astype(np.float32)
    xs = (xs + 0.5) / s
    ys = (ys + 0.5) / s
    unit = min(width, height)

    # Sky: a vertical gradient whose colours drift slowly with the loop.
    t = (ys / height)[..., None]
    top = np.array([0.05, 0.07 + 0.04 * math.sin(turn), 0.20], dtype=np.float32)
    bottom = np.array([0.55, 0.30 + 0.05 * math.cos(turn), 0.35], dtype=np.float32)
    image = top + (bottom - top) * t

    # A soft shadow on the "floor" under the planet.
    cx, cy = width * 0.5, height * 0.47
    shadow = np.exp(
        -(((xs - cx) / (unit * 0.42)) ** 2) - ((ys - height * 0.93) / (unit * 0.05)) ** 2
    )
    image = image * (1.0 - 0.5 * shadow[..., None])

    planetDepth, planet = _sphere(
        xs,
        ys,
        cx,
        cy,
        unit * 0.32,
        spin=turn,
        tilt=0.35,
        colors=((0.95, 0.55, 0.20), (0.25, 0.45, 0.85)),
        bands=6,
    )
    # The moon goes once round the planet per loop: in front of it, then behind it.
    orbit = unit * 0.58
    mz = math.cos(turn)
    moonDepth, moon = _sphere(
        xs,
        ys,
        cx + orbit * math.sin(turn),
        cy - unit * 0.10 * mz,
        unit * (0.075 + 0.015 * mz),
        spin=-2.0 * turn,
        tilt=0.0,
        colors=((0.85, 0.85, 0.80), (0.55, 0.55, 0.60)),
        bands=2,
    )
    moonDepth = np.where(np.isfinite(moonDepth), moonDepth + orbit * mz, -np.inf)
    planetFront = planetDepth >= moonDepth
    image = np.where((np.isfinite(planetDepth) & planetFront)[..., None], planet, image)
    image = np.where((np.isfinite(moonDepth) & ~planetFront)[..., None], moon, image)

    pixels = image.reshape(height, s, width, s, 3).mean(axis=(1, 3))
    rgb = (np.clip(pixels, 0.0, 1.0) ** (1 / 2.2) * 255.0 + 0.5).astype(np.uint8)
    img = Image.fromarray(rgb, "RGB")
    draw = ImageDraw.Draw(img)
    font = ImageFont.load_default(size=max(10, height // 14))
    draw.text(
        (6, height - 6),
        f"jobtree demo  frame {frame}",
        fill=(235, 235, 235),
        font=font,
        anchor="ls",
    )
    return img


# -- the procedures --------------------------------------------------------------------------------


class DemoRender(JobProc):
    """Render frames of the demo animation to image files (``demo-render``).

    Parameters: ``frame`` (one frame) or ``frames`` (a range such as ``"1-12"``), ``output`` (a
    pattern whose last ``#`` run becomes the zero-padded frame number; the extension chooses the
    format), ``width`` and ``height`` (pixels), ``frameCount`` (the loop's length in frames).
    Result: ``{"frames": [...], "outputs": [absolute paths]}``.
    """

    def __init__(
        self,
        *,
        output: str,
        frame: int | None = None,
        frames: str | int | list[int] | None = None,
        width: int = 320,
        height: int = 180,
        frameCount: int = 48,
        label: str | None = None,
    ) -> None:
        super().__init__(label=label)
        where = "demo-render"
        self.frames = _frameList(frame, frames, where)
        self.output = _checkPattern(output, IMAGE_FORMATS, f"{where}: output")
        FramePattern(output)  # ValueError if it has no '#'
        for name, value in (("width", width), ("height", height), ("frameCount", frameCount)):
            if isinstance(value, bool) or not isinstance(value, int):
                raise TypeError(f"{where}: {name} must be an int, not {value!r}")
        if not (8 <= width <= MAX_SIZE and 8 <= height <= MAX_SIZE):
            raise ValueError(
                f"{where}: {width}x{height} is not a size it renders; use 8 to {MAX_SIZE} pixels"
            )
        if frameCount < 1:
            raise ValueError(f"{where}: frameCount must be at least 1, not {frameCount}")
        self.width, self.height, self.frameCount = width, height, frameCount
        if self.label is None:
            self.label = (
                f"frame {self.frames[0]}"
                if len(self.frames) == 1
                else f"frames {formatFrames(self.frames)}"
            )

    def run(self) -> None:
        pattern = FramePattern(os.path.abspath(self.output))
        fmt = IMAGE_FORMATS[os.path.splitext(pattern.pattern)[1].lower()]
        folder = pattern.directory
        try:
            os.makedirs(folder, exist_ok=True)
        except OSError as exc:
            self.setError(
                f"demo-render cannot create the output directory {folder}: "
                f"{exc.strerror or exc}; fix the job's 'output' parameter or the permissions"
            )
            return
        print(
            f"jobtree demo renderer: {len(self.frames)} frame(s) {formatFrames(self.frames)} at "
            f"{self.width}x{self.height}, {SUPERSAMPLING}x{SUPERSAMPLING} samples per pixel",
            flush=True,
        )
        outputs: list[str] = []
        total = len(self.frames)
        for i, frame in enumerate(self.frames):
            self.setStatusLine(f"rendering frame {frame} ({i + 1} of {total})")
            started = time.monotonic()
            image = renderFrame(frame, self.width, self.height, self.frameCount)
            path = pattern.path(frame)
            try:
                _saveAtomic(image, path, fmt)
            except OSError as exc:
                self.setError(
                    f"demo-render could not write frame {frame} to {path}: {exc.strerror or exc}"
                )
                return
            outputs.append(path)
            print(
                f"Fra:{frame} | Time {time.monotonic() - started:.2f} s | Saved: '{path}'",
                flush=True,
            )
            self.setProgress(100.0 * (i + 1) / total)
        self.setStatusLine(f"rendered {total} frame(s)")
        self.setResult({"frames": self.frames, "outputs": outputs})


class AnimatedImage(JobProc):
    """Assemble an image sequence into an animated GIF, WebP or PNG (``animated-image``).

    Parameters: ``input`` (a ``#`` pattern as written by demo-render or Blender), ``frames``
    (default: every frame found), ``output`` (``.gif``, ``.webp`` or ``.png``), ``frameRate``
    (frames per second). Result: ``{"output": absolute path, "frames": n}``.
    """

    def __init__(
        self,
        *,
        input: str,
        output: str,
        frames: str | int | list[int] | None = None,
        frameRate: float = 24,
        label: str | None = None,
    ) -> None:
        super().__init__(label=label)
        where = "animated-image"
        if not isinstance(input, str) or not input:
            raise TypeError(f"{where}: input must be a frame pattern (str), not {input!r}")
        FramePattern(input)  # ValueError if it has no '#' (or %04d)
        self.input = input
        self.output = _checkPattern(output, ANIMATION_FORMATS, f"{where}: output")
        self.frames = parseFrames(frames) if frames is not None else None
        if (
            isinstance(frameRate, bool)
            or not isinstance(frameRate, (int, float))
            or not 0 < frameRate <= 100
        ):
            raise ValueError(
                f"{where}: frameRate must be a number of frames per second above 0 and at most "
                f"100, not {frameRate!r}"
            )
        self.frameRate = float(frameRate)

    def run(self) -> None:
        pattern = FramePattern(os.path.abspath(self.input))
        output = os.path.abspath(self.output)
        frames = self.frames if self.frames is not None else pattern.find()
        if not frames:
            self.setError(
                f"animated-image found no frames for {pattern.pattern}; render them first"
            )
            return
        paths = [pattern.path(f) for f in frames]
        missing = [p for p in paths if not os.path.isfile(p)]
        if missing:
            self.setError(
                f"animated-image is missing {len(missing)} of {len(paths)} input frames: "
                f"{_shortList(missing)}; render them first (or fix 'input'/'frames')"
            )
            return
        fmt = ANIMATION_FORMATS[os.path.splitext(output)[1].lower()]
        images: list[Image.Image] = []
        for i, path in enumerate(paths):
            self.setStatusLine(f"reading {os.path.basename(path)} ({i + 1} of {len(paths)})")
            try:
                with Image.open(path) as im:
                    images.append(im.convert("RGB"))
            except (OSError, ValueError) as exc:
                self.setError(f"animated-image cannot read frame {frames[i]} ({path}): {exc}")
                return
            self.setProgress(90.0 * (i + 1) / len(paths))
        sizes = {im.size for im in images}
        if len(sizes) > 1:
            self.setError(
                f"animated-image: the frames of {pattern.pattern} differ in size "
                f"({', '.join(f'{w}x{h}' for w, h in sorted(sizes))}); render them alike"
            )
            return
        self.setStatusLine(f"writing {os.path.basename(output)}")
        options: dict[str, Any] = {
            "save_all": True,
            "append_images": images[1:],
            "loop": 0,  # forever
            "duration": round(1000.0 / self.frameRate),  # ms per frame (GIF: 10 ms steps)
        }
        if fmt == "WEBP":
            options.update(quality=85, method=4)
        try:
            os.makedirs(os.path.dirname(output), exist_ok=True)
            _saveAtomic(images[0], output, fmt, **options)
        except OSError as exc:
            self.setError(
                f"animated-image could not write {output}: {exc.strerror or exc}; fix the job's "
                "'output' parameter or the directory's permissions"
            )
            return
        print(f"wrote {output}: {len(images)} frames at {self.frameRate:g} fps", flush=True)
        self.setProgress(100)
        self.setStatusLine(f"wrote {len(images)} frames")
        self.setResult({"output": output, "frames": len(images)})
