"""Queue settings and job options: which keys exist, their types and defaults, defined once.

A queue setting is the default of the job option of the same name. Later features add rows to
``OPTIONS``; nothing else needs to change for a new key to be accepted, stored and inherited.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from .errors import InvalidSetting


@dataclass(frozen=True)
class Option:
    name: str
    type: type
    default: Any
    doc: str
    inherit: bool = False
    """A job without an explicit value takes its parent's (before the queue setting)."""
    queueSetting: bool = True
    jobOption: bool = True
    minimum: float | None = None


OPTIONS: dict[str, Option] = {
    o.name: o
    for o in (
        Option(
            "priority",
            int,
            0,
            "Higher runs first. A sub-job without its own priority takes its parent's.",
            inherit=True,
        ),
        Option(
            "leaseSeconds",
            float,
            60.0,
            "A running job's worker renews its lease every quarter of this; a job whose lease is "
            "older than this (by the file server's clock) is taken over by another worker.",
            minimum=1.0,
        ),
        Option(
            "maxAttempts",
            int,
            1,
            "How many times a job may fail (raise, setError, time out) before it stays failed. "
            "Attempts lost with a dead worker do not count.",
            minimum=1,
        ),
        Option(
            "retryDelay",
            float,
            10.0,
            "Seconds between a failed attempt and the next one.",
            minimum=0.0,
        ),
        Option(
            "timeout",
            float,
            0.0,
            "Wall seconds an attempt may run before it and every process it started are killed "
            "(0: no limit).",
            minimum=0.0,
        ),
        Option(
            "hangTimeout",
            float,
            0.0,
            "Kill an attempt that showed no progress, status line or output for this many "
            "seconds (0: never).",
            minimum=0.0,
        ),
        Option(
            "logLimit",
            int,
            64 * 1024 * 1024,
            "Bytes kept of each output stream per attempt; beyond it the head and the tail "
            "(half each) are kept and the middle is dropped with a note.",
            minimum=1024,
        ),
        Option(
            "allowedProcs",
            list,
            None,
            "Job types (fnmatch patterns of 'package.module:Class' or short names) this queue "
            "accepts; submitters and workers refuse others. None accepts all.",
            jobOption=False,
        ),
        Option(
            "signedJobs",
            bool,
            False,
            "Every job must carry an HMAC signature made with the queue's key file; workers "
            "refuse unsigned or altered jobs.",
            jobOption=False,
        ),
        Option(
            "shared",
            bool,
            False,
            "Group-shared queue: directories are group-writable with the setgid bit, so every "
            "member of the directory's group can submit and run jobs.",
            jobOption=False,
        ),
    )
}


def _check(name: str, value: Any, where: str, kind: str) -> Any:
    opt = OPTIONS.get(name)
    if opt is None or not (opt.queueSetting if kind == "setting" else opt.jobOption):
        valid = sorted(
            k for k, o in OPTIONS.items() if (o.queueSetting if kind == "setting" else o.jobOption)
        )
        raise InvalidSetting(
            f"{where}: unknown {kind} {name!r}; valid {kind}s are: {', '.join(valid)}"
        )
    if opt.type is float and isinstance(value, int) and not isinstance(value, bool):
        value = float(value)
    if value is None and opt.default is None:
        return value
    if (opt.type in (int, float) and isinstance(value, bool)) or not isinstance(value, opt.type):
        raise InvalidSetting(
            f"{where}: {kind} {name!r} must be {opt.type.__name__}, not {type(value).__name__} ({value!r})"
        )
    number: Any = value  # (mypy narrowed value to object above)
    if opt.minimum is not None and number < opt.minimum:
        raise InvalidSetting(
            f"{where}: {kind} {name!r} must be at least {opt.minimum}, not {value!r}"
        )
    if name == "allowedProcs" and not all(isinstance(p, str) for p in number):
        raise InvalidSetting(f"{where}: allowedProcs must be a list of strings, not {value!r}")
    return value


def checkSettings(settings: Mapping[str, Any], where: str) -> dict[str, Any]:
    """Validated queue settings (only the keys given)."""
    return {k: _check(k, v, where, "setting") for k, v in settings.items()}


def resolveJobOptions(
    given: Mapping[str, Any] | None,
    parent: Mapping[str, Any] | None,
    settings: Mapping[str, Any],
    where: str,
) -> dict[str, Any]:
    """The complete options of a job: given, else the parent's (inheriting keys), else the
    queue setting, else the built-in default."""
    if given is not None and not isinstance(given, Mapping):
        raise InvalidSetting(f"{where}: jobOptions must be a dict, not {type(given).__name__}")
    explicit = {k: _check(k, v, where, "job option") for k, v in (given or {}).items()}
    resolved: dict[str, Any] = {}
    for name, opt in OPTIONS.items():
        if not opt.jobOption:
            continue
        if name in explicit:
            resolved[name] = explicit[name]
        elif opt.inherit and parent is not None and name in parent:
            resolved[name] = parent[name]
        elif name in settings:
            resolved[name] = settings[name]
        else:
            resolved[name] = opt.default
    return resolved
