"""Frame ranges: parsing ``1-240``, ``1-240x2``, ``1,5,10-20``; chunking; compact formatting.

Shared by ``jobtree submit --frames``, :func:`jobtree.procs.submitAnimation` and the render
procedures, so that a range means the same everywhere.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

_RANGE_RE = re.compile(r"^(-?\d+)(?:-(-?\d+)(?:[x:](\d+))?)?$")
MAX_FRAMES = 1_000_000


def parseFrames(text: str | int | Iterable[int]) -> list[int]:
    """The frames of ``1-240``, ``1-240x2`` (every 2nd), ``1,5,10-20`` in order, without repeats.

    An int is one frame; an iterable of ints (a ``range``, a list) is taken as it is. Raises
    ValueError naming the bad part and showing the accepted forms.
    """
    if isinstance(text, bool):
        raise ValueError(f"bad frames {text!r}: give a range like 1-240, or a list of ints")
    if isinstance(text, int):
        return [text]
    if not isinstance(text, str):
        frames = list(text)
        if not frames or not all(isinstance(f, int) and not isinstance(f, bool) for f in frames):
            raise ValueError(f"bad frames {frames!r}: give a non-empty list of ints")
        return list(dict.fromkeys(frames))
    frames = []
    seen: set[int] = set()
    for part in text.replace(" ", "").split(","):
        m = _RANGE_RE.match(part)
        if not m:
            raise ValueError(
                f"bad frame range {part!r} in {text!r}: write 1-240, 1-240x2 or 1,5,10-20"
            )
        first = int(m.group(1))
        last = int(m.group(2)) if m.group(2) is not None else first
        step = int(m.group(3)) if m.group(3) else 1
        if last < first:
            raise ValueError(f"bad frame range {part!r}: the end is before the start")
        if step < 1:
            raise ValueError(f"bad frame range {part!r}: the step must be at least 1")
        if (last - first) // step + len(frames) > MAX_FRAMES:
            raise ValueError(f"frame range {text!r} has more than {MAX_FRAMES} frames")
        for f in range(first, last + 1, step):
            if f not in seen:
                seen.add(f)
                frames.append(f)
    return frames


def chunked(frames: list[int], size: int) -> list[list[int]]:
    """*frames* cut into consecutive chunks of *size* (the last may be shorter)."""
    if size < 1:
        raise ValueError(f"chunk size must be at least 1, not {size}")
    return [frames[i : i + size] for i in range(0, len(frames), size)]


def formatFrames(frames: Iterable[int]) -> str:
    """The shortest text :func:`parseFrames` reads back: ``[1, 2, 3, 5, 7, 9]`` -> ``1-3,5-9x2``."""
    return ",".join(
        str(first) if first == last else f"{first}-{last}" + (f"x{step}" if step != 1 else "")
        for first, last, step in frameRuns(frames)
    )


def frameRuns(frames: Iterable[int]) -> list[tuple[int, int, int]]:
    """*frames* as (first, last, step) runs, the parts of :func:`formatFrames`:
    ``[1, 2, 3, 5, 7, 9, 12]`` -> ``[(1, 3, 1), (5, 9, 2), (12, 12, 1)]``. Two frames make a
    run only with step 1 (``[4, 8]`` is two runs of one frame each)."""
    items = list(frames)
    runs: list[tuple[int, int, int]] = []
    i = 0
    while i < len(items):
        j = i
        step = items[i + 1] - items[i] if i + 1 < len(items) else 1
        if step > 0:
            while j + 1 < len(items) and items[j + 1] - items[j] == step:
                j += 1
        if j - i >= (1 if step == 1 else 2):
            runs.append((items[i], items[j], step))
            i = j + 1
        else:
            runs.append((items[i], items[i], 1))
            i += 1
    return runs
