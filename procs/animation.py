"""submitAnimation: the tree that renders an animation in chunks of frames and encodes the movie.

DrQueue's block size, as one call::

    root (ffmpeg | animated-image | command)   encodes the movie once every chunk is done
    ├── frames 1-10   (blender | demo-render)
    ├── frames 11-20
    └── ...

with, when asked, onDone/onFailed hooks that e-mail a report on the root.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterable, Mapping
from typing import Any, Final

from jobtree import JobHandle, JobQueue
from jobtree.frames import chunked, formatFrames, parseFrames

RENDERERS: Final = {"blender": "blender", "demo": "demo-render"}
"""submitAnimation's renderer names and the job types that render a chunk."""

ENCODERS: Final = {
    ".mp4": "ffmpeg",
    ".mov": "ffmpeg",
    ".mkv": "ffmpeg",
    ".webm": "ffmpeg",
    ".gif": "animated-image",
    ".webp": "animated-image",
    ".png": "animated-image",
}
"""The job type that encodes the movie, by the movie's extension."""

CODECS: Final = {".webm": "libvpx-vp9"}
"""ffmpeg codecs other than the ffmpeg procedure's default (libx264), by container."""

BLENDER_FORMATS: Final = {
    ".png": "PNG",
    ".jpg": "JPEG",
    ".jpeg": "JPEG",
    ".exr": "OPEN_EXR",
    ".tif": "TIFF",
    ".tiff": "TIFF",
    ".bmp": "BMP",
    ".tga": "TARGA",
}
"""Blender's -F for the frame pattern's extension, so that the files are named as the pattern says."""

NOTIFY_OPTIONS: Final = {"maxAttempts": 3, "retryDelay": 60.0}
"""Job options of the e-mail hooks: a mail server that is briefly away gets two more tries."""

DEMO_DIRECTORY: Final = "jobtree-demo"
"""Where renderer "demo" writes without an output: this directory in the current one."""


def submitAnimation(
    queue: JobQueue | str | os.PathLike[str],
    scene: str | None,
    frames: str | int | Iterable[int],
    chunk: int = 10,
    output: str | None = None,
    encode: bool = True,
    notify: str | list[str] | Mapping[str, Any] | None = None,
    *,
    renderer: str = "blender",
    movie: str | None = None,
    frameRate: float = 24,
    label: str | None = None,
    priority: int | None = None,
    jobOptions: Mapping[str, Any] | None = None,
    renderParams: Mapping[str, Any] | None = None,
    encodeParams: Mapping[str, Any] | None = None,
) -> JobHandle:
    """Submit an animation: a render job for every *chunk* frames, under a root that encodes them.

    *scene* is the .blend file (renderer ``"blender"``; ignored by ``"demo"``, the demo
    farm's own renderer). *frames* is a range like ``"1-240"`` (see :func:`jobtree.frames.parseFrames`).
    *output* is a frame pattern (``/farm/out/shot010_####.png``) or a directory (a trailing
    ``/``, an existing directory or a name without extension), where the frames are then
    named ``<scene stem>_####.png`` (``frame_####.png`` for the demo). Relative paths are made
    absolute here, on the submitting host.

    The root encodes *movie* (default ``<output directory>/<scene stem>.mp4``; for the demo
    ``.gif`` when ffmpeg is not installed here) with ``ffmpeg`` (.mp4, .mov, .mkv, .webm) or
    ``animated-image`` (.gif, .webp, .png) at *frameRate*; with ``encode=False`` it is a
    ``command`` job that does nothing. Each chunk is a ``blender`` or ``demo-render`` job
    labelled ``frames 1-10`` (``frame 7`` for one frame).

    *notify* (an address, a list of them, or a dict of ``email`` parameters with ``to``) adds
    onDone and onFailed hooks that send an ``email`` job reporting on the root. *priority* and
    *jobOptions* apply to every job of the tree; *renderParams* and *encodeParams* are added to
    the parameters of the render and encode jobs (e.g. ``{"engine": "CYCLES"}``,
    ``{"quality": 18}``).

    Returns the activated root's handle. Raises TypeError or ValueError for bad arguments
    (nothing is submitted then), and what submission raises (e.g. SubmissionError when a
    procedure refuses its parameters).
    """
    q = queue if isinstance(queue, JobQueue) else JobQueue(queue)
    if renderer not in RENDERERS:
        raise ValueError(
            f"unknown renderer {renderer!r}; use one of {', '.join(map(repr, RENDERERS))}"
        )
    if renderer == "blender":
        if not isinstance(scene, str) or not scene:
            raise TypeError(f"scene must be the path of a .blend file (str), not {scene!r}")
        scene = os.path.abspath(scene)
    elif scene is not None and not isinstance(scene, str):
        raise TypeError(f"scene must be a path (str) or None, not {scene!r}")
    frameList = parseFrames(frames)
    if not frameList:
        raise ValueError(f"frames {frames!r} holds no frames to render; give a range like 1-240")
    if isinstance(chunk, bool) or not isinstance(chunk, int) or chunk < 1:
        raise ValueError(
            f"chunk must be a number of frames per job (an int of at least 1), not {chunk!r}"
        )
    if not isinstance(encode, bool):
        raise TypeError(f"encode must be True or False, not {encode!r}")
    for name, value in (("label", label), ("movie", movie)):
        if value is not None and (not isinstance(value, str) or not value):
            raise TypeError(f"{name} must be a non-empty str (or None), not {value!r}")
    stem = os.path.splitext(os.path.basename(scene))[0] if scene else "demo"
    pattern = _framePattern(output, renderer, stem)
    options = _options(jobOptions, priority)
    render = _params("renderParams", renderParams, ("scene", "frames", "frame", "output"))
    encoding = _params("encodeParams", encodeParams, ("input", "output", "frames", "frameRate"))
    mail = _notify(notify)
    rootLabel = label if label is not None else stem if renderer == "blender" else "demo animation"

    if encode:
        movie = (
            os.path.abspath(movie) if movie is not None else _defaultMovie(pattern, renderer, stem)
        )
        ext = os.path.splitext(movie)[1].lower()
        encoder = ENCODERS.get(ext)
        if encoder is None:
            raise ValueError(
                f"movie {movie!r}: unknown extension {ext or '(none)'}; use one of "
                f"{', '.join(ENCODERS)}"
            )
        rootType = encoder
        rootParams: dict[str, Any] = {
            "input": pattern,
            "output": movie,
            "frames": formatFrames(frameList),
            "frameRate": frameRate,
        }
        if encoder == "ffmpeg" and ext in CODECS:
            rootParams["codec"] = CODECS[ext]
        rootParams.update(encoding)
    else:
        if movie is not None:
            raise ValueError("a movie was given with encode=False; drop one of them")
        if encoding:
            raise ValueError("encodeParams were given with encode=False; drop one of them")
        rootType, rootParams = "command", {}

    with q.createJobRoot(rootType, label=rootLabel, jobOptions=options, **rootParams) as root:
        for frameChunk in chunked(frameList, chunk):
            text = formatFrames(frameChunk)
            chunkLabel = f"frames {text}" if len(frameChunk) > 1 else f"frame {text}"
            params: dict[str, Any]
            if renderer == "blender":
                params = {"scene": scene, "frames": text, "output": pattern}
                fmt = BLENDER_FORMATS.get(os.path.splitext(pattern)[1].lower())
                if fmt is not None:
                    params["format"] = fmt
            else:
                span = max(frameList) - min(frameList) + 1
                params = {"frames": text, "output": pattern, "frameCount": span}
            params.update(render)
            root.createJob(RENDERERS[renderer], label=chunkLabel, jobOptions=options, **params)
        if mail is not None:
            # The root's directory once activated: what the e-mail reports on when a hook fires.
            about = root.finalLocation
            for when, add in (("done", root.onDone), ("failed", root.onFailed)):
                add(
                    "email",
                    label=f"e-mail: {rootLabel} {when}",
                    jobOptions=NOTIFY_OPTIONS,
                    about=about,
                    **mail,
                )
    return root.handle


def _framePattern(output: str | None, renderer: str, stem: str) -> str:
    """The absolute frame pattern for *output* (a pattern with # or a directory)."""
    if output is None:
        if renderer != "demo":
            raise ValueError(
                f"output is required for renderer {renderer!r}: a frame pattern like "
                f"/farm/out/{stem}_####.png, or a directory"
            )
        output = DEMO_DIRECTORY + os.sep
    if not isinstance(output, str) or not output:
        raise TypeError(f"output must be a frame pattern or a directory (str), not {output!r}")
    name = os.path.basename(output)
    if "#" in name:
        if not os.path.splitext(name)[1]:
            raise ValueError(
                f"output {output!r} has no file extension; add one (e.g. {output}.png) so that "
                "the encode job finds the frames under the names the renderer gives them"
            )
        return os.path.abspath(output)
    if output.endswith(("/", os.sep)) or os.path.isdir(output) or not os.path.splitext(name)[1]:
        frameName = "frame_####.png" if renderer == "demo" else f"{stem}_####.png"
        return os.path.join(os.path.abspath(output), frameName)
    raise ValueError(
        f"output {output!r} is neither a frame pattern nor a directory: put '#' where the "
        f"frame number goes ({os.path.splitext(output)[0]}_####{os.path.splitext(output)[1]}), "
        "or end a directory with '/'"
    )


def _defaultMovie(pattern: str, renderer: str, stem: str) -> str:
    ext = ".mp4" if renderer != "demo" or shutil.which("ffmpeg") else ".gif"
    return os.path.join(os.path.dirname(pattern), stem + ext)


def _options(jobOptions: Mapping[str, Any] | None, priority: int | None) -> dict[str, Any] | None:
    if jobOptions is not None and not isinstance(jobOptions, Mapping):
        raise TypeError(f"jobOptions must be a dict, not {jobOptions!r}")
    options = dict(jobOptions or {})
    if priority is not None:
        if isinstance(priority, bool) or not isinstance(priority, int):
            raise TypeError(f"priority must be an int, not {priority!r}")
        options["priority"] = priority
    return options or None


def _params(
    name: str, params: Mapping[str, Any] | None, reserved: tuple[str, ...]
) -> dict[str, Any]:
    if params is None:
        return {}
    if not isinstance(params, Mapping):
        raise TypeError(f"{name} must be a dict of job parameters, not {params!r}")
    clash = [k for k in params if k in reserved]
    if clash:
        raise ValueError(
            f"{name} must not set {', '.join(clash)}: submitAnimation sets "
            f"{'it' if len(clash) == 1 else 'them'} from its own arguments"
        )
    return dict(params)


def _notify(notify: str | list[str] | Mapping[str, Any] | None) -> dict[str, Any] | None:
    if notify is None:
        return None
    if isinstance(notify, (str, list)):
        return {"to": notify}
    if isinstance(notify, Mapping):
        if "to" not in notify:
            raise ValueError(
                "notify needs 'to', the address(es) to e-mail: "
                "notify={'to': 'ana@example.com', 'host': 'mail.example.com'}"
            )
        if "about" in notify:
            raise ValueError("notify must not set 'about': the e-mail reports on this animation")
        return dict(notify)
    raise TypeError(
        f"notify must be an address, a list of addresses or a dict of email parameters, "
        f"not {notify!r}"
    )
