"""Turning a job type into its string form and back into a JobProc class.

Only workers (and submitters, who instantiate the procedure once to validate its parameters)
import procedure code. Reading a queue never does.
"""

from __future__ import annotations

import importlib
from importlib.metadata import entry_points
from typing import TYPE_CHECKING, Any

from .errors import ProcNotFound

if TYPE_CHECKING:
    from .proc import JobProc

ENTRY_POINT_GROUP = "jobtree.procs"

_cache: dict[str, type[JobProc]] = {}


def jobTypeName(jobType: Any) -> str:
    """The string stored on disk for *jobType* (a JobProc subclass or a string)."""
    from .proc import JobProc

    if isinstance(jobType, str):
        if not jobType.strip():
            raise ProcNotFound("the job type is an empty string; give 'package.module:Class'")
        return jobType
    if isinstance(jobType, type) and issubclass(jobType, JobProc):
        module = jobType.__module__
        if module == "__main__":
            raise ProcNotFound(
                f"job type {jobType.__qualname__} is defined in __main__, which workers cannot "
                "import; move it into a module on the workers' Python path"
            )
        if "<locals>" in jobType.__qualname__:
            raise ProcNotFound(
                f"job type {jobType.__qualname__} is defined inside a function; workers can only "
                "import classes defined at module level"
            )
        return f"{module}:{jobType.__qualname__}"
    raise ProcNotFound(
        f"job type must be a JobProc subclass or a 'package.module:Class' string, not {jobType!r}"
    )


def resolve(name: str) -> type[JobProc]:
    """The JobProc class for a stored job type name. Raises ProcNotFound with the reason."""
    cls = _cache.get(name)
    if cls is None:
        cls = _load(name)
        _cache[name] = cls
    return cls


def _load(name: str) -> type[JobProc]:
    from .proc import JobProc

    if ":" in name:
        moduleName, _, qualname = name.partition(":")
        try:
            obj: Any = importlib.import_module(moduleName)
        except Exception as exc:
            raise ProcNotFound(
                f"job type {name!r}: cannot import module {moduleName!r} ({type(exc).__name__}: "
                f"{exc}); is it installed on this host and on the Python path?"
            ) from exc
        for part in qualname.split("."):
            try:
                obj = getattr(obj, part)
            except AttributeError:
                raise ProcNotFound(
                    f"job type {name!r}: module {moduleName!r} has no attribute {qualname!r}"
                ) from None
    else:
        matches = entry_points(group=ENTRY_POINT_GROUP, name=name)
        if not matches:
            raise ProcNotFound(
                f"job type {name!r} is not a registered procedure (entry-point group "
                f"{ENTRY_POINT_GROUP!r}) and not of the form 'package.module:Class'"
            )
        try:
            obj = next(iter(matches)).load()
        except Exception as exc:
            raise ProcNotFound(f"job type {name!r}: loading its entry point failed: {exc}") from exc
    if not (isinstance(obj, type) and issubclass(obj, JobProc)):
        raise ProcNotFound(f"job type {name!r} is {obj!r}, not a JobProc subclass")
    return obj
