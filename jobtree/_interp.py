"""Running programs that embed a Python of their own (Blender, Maya's mayapy, Houdini...)."""

from __future__ import annotations

import os
import sys


def pathWithoutThisPython(path: str | None = None) -> str:
    """*path* (default ``$PATH``) without this Python's own bin directories.

    Blender built against the system's Python takes the first ``python3.X`` on PATH as its
    Python home. ``pyenv exec`` (which runs the ``jobtree`` script of a pyenv Python) and an
    activated virtualenv put this Python's bin directory first, and Blender would then load this
    Python's standard library into its own interpreter: a patch release apart, extension modules
    fail ("_ssl...so: undefined symbol"). Blender started from a desktop or a plain shell does
    not see those directories; a worker should not show them to it either."""
    own = {
        os.path.realpath(d)
        for d in (
            os.path.dirname(sys.executable),
            os.path.join(sys.prefix, "bin"),
            os.path.join(sys.base_prefix, "bin"),
        )
    }
    entries = (os.environ.get("PATH", "") if path is None else path).split(os.pathsep)
    return os.pathsep.join(e for e in entries if e and os.path.realpath(e) not in own)
