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
    if (opt.type is int and isinstance(value, bool)) or not isinstance(value, opt.type):
        raise InvalidSetting(
            f"{where}: {kind} {name!r} must be {opt.type.__name__}, not {type(value).__name__} ({value!r})"
        )
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
