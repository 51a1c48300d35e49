"""Queue settings and job options: which keys exist, their types and defaults, defined once.

A queue setting is the default of the job option of the same name. Later features add rows to
``OPTIONS``; nothing else needs to change for a new key to be accepted, stored and inherited.
"""

from __future__ import annotations

import datetime
from collections.abc import Callable, Mapping
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
    validate: Callable[[Any, str], Any] | None = None
    """Checks and normalizes a value (raises InvalidSetting); replaces the type check."""


REQUIREMENT_KEYS = {
    "os": str,
    "minRamGB": (int, float),
    "minCores": int,
    "pools": list,
    "tags": list,
    "host": str,
}


def _requires(value: Any, where: str) -> dict[str, Any]:
    if not isinstance(value, Mapping):
        raise InvalidSetting(f"{where}: requires must be a dict, not {type(value).__name__}")
    out: dict[str, Any] = {}
    for key, v in value.items():
        kind = REQUIREMENT_KEYS.get(key)
        if kind is None:
            raise InvalidSetting(
                f"{where}: unknown requirement {key!r}; valid: {', '.join(REQUIREMENT_KEYS)}"
            )
        if isinstance(v, bool) or not isinstance(v, kind):  # type: ignore[arg-type]
            raise InvalidSetting(f"{where}: requirement {key!r} has the wrong type: {v!r}")
        if isinstance(v, list) and not all(isinstance(x, str) for x in v):
            raise InvalidSetting(f"{where}: requirement {key!r} must be a list of strings")
        out[key] = v.lower() if key == "os" else v
    return out


def _names(value: Any, where: str) -> list[str]:
    if not isinstance(value, list) or not all(isinstance(x, str) and x for x in value):
        raise InvalidSetting(f"{where}: limits must be a list of limit names, not {value!r}")
    return list(value)


def _time(value: Any, where: str) -> float:
    """Seconds since the epoch from a number or an ISO-8601 string (naive means UTC)."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    if isinstance(value, str):
        try:
            t = datetime.datetime.fromisoformat(value)
        except ValueError:
            raise InvalidSetting(f"{where}: notBefore {value!r} is not an ISO-8601 time") from None
        if t.tzinfo is None:
            t = t.replace(tzinfo=datetime.timezone.utc)
        return t.timestamp()
    raise InvalidSetting(f"{where}: notBefore must be epoch seconds or an ISO-8601 string")


def _metadata(value: Any, where: str) -> dict[str, Any]:
    if not isinstance(value, Mapping) or not all(
        isinstance(k, str) and isinstance(v, (str, int, float, bool)) for k, v in value.items()
    ):
        raise InvalidSetting(
            f"{where}: metadata must map names to str, int, float or bool: {value!r}"
        )
    return dict(value)


def _retention(value: Any, where: str) -> dict[str, Any]:
    keys = {
        "doneAge": (int, float),
        "failedAge": (int, float),
        "keepDone": int,
        "keepFailed": int,
        "action": str,
    }
    if not isinstance(value, Mapping):
        raise InvalidSetting(f"{where}: retention must be a dict")
    for k, v in value.items():
        if k not in keys or isinstance(v, bool) or not isinstance(v, keys[k]):  # type: ignore[arg-type]
            raise InvalidSetting(
                f"{where}: bad retention entry {k!r}: {v!r}; valid keys: {', '.join(keys)}"
            )
    if value.get("action", "archive") not in ("archive", "delete"):
        raise InvalidSetting(f"{where}: retention action must be 'archive' or 'delete'")
    return dict(value)


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
            "requires",
            dict,
            None,
            "What a worker must offer to run the job: os, minRamGB, minCores, pools (the worker "
            "is in any of them), tags (the worker has all of them), host.",
            validate=_requires,
            queueSetting=False,
        ),
        Option(
            "limits",
            list,
            None,
            "Names of limits the job holds while it runs (define them with JobQueue.setLimit); at "
            "most that many jobs holding a limit run at once across every host.",
            validate=_names,
            queueSetting=False,
        ),
        Option(
            "notBefore",
            float,
            None,
            "Do not start the job before this time (epoch seconds or ISO-8601; by the file "
            "server's clock).",
            validate=_time,
            queueSetting=False,
        ),
        Option(
            "metadata",
            dict,
            None,
            "Free name=value pairs (shot, artist, project) shown and filtered on by the CLI and "
            "GUI. A sub-job without its own takes its parent's.",
            validate=_metadata,
            inherit=True,
            queueSetting=False,
        ),
        Option(
            "retention",
            dict,
            None,
            "Archive or delete finished roots: doneAge, failedAge (seconds), keepDone, keepFailed "
            "(counts), action ('archive' or 'delete'). Failures are kept 4x as long as successes "
            "unless failedAge says otherwise. Workers apply it; so does JobQueue.archive().",
            validate=_retention,
            jobOption=False,
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
    if opt.validate is not None:
        return None if value is None else opt.validate(value, where)
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
