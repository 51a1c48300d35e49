"""The ``python`` procedure: call ``package.module:function`` with JSON arguments in the worker
and save what it returns as the job's result (read it with :attr:`jobtree.JobHandle.result`)."""

from __future__ import annotations

import importlib
import inspect
import json
import socket
from collections.abc import Mapping, Sequence
from typing import Any

from jobtree.proc import JobProc

LABEL_MAX = 60


class Python(JobProc):
    """Call *function* (``"package.module:function"``; the part after the colon may be dotted,
    as in ``"pkg.mod:Class.method"``) with ``*args`` and ``**kwargs`` in the worker process.

    The module is imported when the job runs, not at submission. If the function has a
    parameter named ``job``, the running procedure is passed there (for ``job.setProgress``).
    A return value other than None is saved with :meth:`~jobtree.JobProc.setResult` and must
    be JSON. An exception in the function fails the job with its traceback.
    """

    def __init__(
        self,
        *,
        function: str,
        args: Sequence[Any] | None = None,
        kwargs: Mapping[str, Any] | None = None,
        label: str | None = None,
    ) -> None:
        super().__init__(label=label)
        self.moduleName, self.qualname = _splitFunction(function)
        self.function = function
        if args is None:
            args = []
        if isinstance(args, (str, bytes)) or not isinstance(args, Sequence):
            raise TypeError(f"args must be a list of the function's arguments, not {args!r}")
        if kwargs is None:
            kwargs = {}
        if not isinstance(kwargs, Mapping) or not all(isinstance(k, str) for k in kwargs):
            raise TypeError(
                f"kwargs must map argument names (str) to values (an object), not {kwargs!r}"
            )
        self.args = list(args)
        self.kwargs = dict(kwargs)
        if self.label is None:
            self.label = function if len(function) <= LABEL_MAX else function[: LABEL_MAX - 1] + "…"

    def run(self) -> None:
        func = self._load()
        if func is None:
            return
        kwargs = self.kwargs
        if _takesJob(func):
            if "job" in kwargs:
                self.setError(
                    f"function {self.function} takes the running job as its 'job' parameter, so "
                    "kwargs must not give 'job'; rename that argument"
                )
                return
            kwargs = {**kwargs, "job": self}
        value = func(*self.args, **kwargs)
        if value is None:  # nothing to save; a result the function set itself is kept
            return
        try:
            json.dumps(value, allow_nan=False)
        except (TypeError, ValueError) as exc:
            self.setError(
                f"function {self.function} returned a {type(value).__name__} that cannot be saved "
                f"as the job's result ({exc}); return only JSON values: str, int, float, bool, "
                "None, lists and dicts with string keys"
            )
            return
        self.setResult(value)

    def _load(self) -> Any:
        """The function, or None after setError() saying why it cannot be had on this host."""
        host = socket.gethostname()
        try:
            obj: Any = importlib.import_module(self.moduleName)
        except Exception as exc:
            if isinstance(exc, ModuleNotFoundError) and _isPrefix(exc.name, self.moduleName):
                self.setError(
                    f"function {self.function}: module {self.moduleName!r} was not found on host "
                    f"{host} ({exc}); install it there or add its directory to the workers' "
                    "PYTHONPATH"
                )
                return None
            # The module is there but failed to import: fail with its traceback, naming it.
            raise ImportError(
                f"function {self.function}: importing module {self.moduleName!r} failed: "
                f"{type(exc).__name__}: {exc}"
            ) from exc
        for i, part in enumerate(self.qualname.split(".")):
            try:
                obj = getattr(obj, part)
            except AttributeError:
                where = ".".join([self.moduleName, *self.qualname.split(".")[:i]])
                self.setError(
                    f"function {self.function}: {where!r} has no attribute {part!r} on host "
                    f"{host}; check the name after the ':' and that the workers run the same "
                    "version of the code"
                )
                return None
        if not callable(obj):
            self.setError(
                f"function {self.function}: {self.qualname!r} is not callable (it is of type "
                f"{type(obj).__name__}); give 'package.module:function'"
            )
            return None
        return obj


def _splitFunction(function: Any) -> tuple[str, str]:
    """("pkg.mod", "func") for "pkg.mod:func"; ValueError with the expected form otherwise."""
    if isinstance(function, str):
        moduleName, colon, qualname = function.partition(":")
        parts = [*moduleName.split("."), *qualname.split(".")]
        if colon and all(p.isidentifier() for p in parts):
            return moduleName, qualname
    raise ValueError(
        f"function must be 'package.module:function' (the part after ':' may be dotted, as in "
        f"'pkg.mod:Class.method'), not {function!r}"
    )


def _isPrefix(name: str | None, moduleName: str) -> bool:
    """*name* is *moduleName* or one of its parent packages."""
    return name is not None and (moduleName == name or moduleName.startswith(name + "."))


def _takesJob(func: Any) -> bool:
    try:
        param = inspect.signature(func).parameters.get("job")
    except (TypeError, ValueError):  # some builtins have no signature
        return False
    return param is not None and param.kind in (
        inspect.Parameter.POSITIONAL_OR_KEYWORD,
        inspect.Parameter.KEYWORD_ONLY,
    )
