"""Job trees described in a file (JSON, TOML or YAML), and the frame ranges of the quick form.

A job is an object with ``jobType`` (required), ``label``, ``params``, ``jobOptions``,
``children`` (a list of jobs) and ``dependsOn`` (labels or paths of jobs of the same root). The
file holds one root job, or ``{"roots": [job, ...]}`` for several roots. See docs/cli.md.
"""

from __future__ import annotations

import difflib
import json
import re
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import yaml

from .. import _layout as L
from ..handle import JobHandle
from ..queue import JobQueue
from ..submit import Job

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

KEYS = ("jobType", "label", "params", "jobOptions", "children", "dependsOn")
RESERVED_PARAMS = ("jobType", "label", "jobOptions")
FORMATS = ("json", "toml", "yaml")


class TreeFileError(ValueError):
    """The file cannot be submitted; the message names the file and the job."""


@dataclass
class JobSpec:
    path: str
    jobType: str
    label: str | None = None
    params: dict[str, Any] = field(default_factory=dict)
    jobOptions: dict[str, Any] | None = None
    children: list[JobSpec] = field(default_factory=list)
    dependsOn: list[str] = field(default_factory=list)

    @property
    def where(self) -> str:
        return f"job {self.path}" + (f" ({self.label!r})" if self.label else "")

    def walk(self) -> list[JobSpec]:
        out = [self]
        for c in self.children:
            out.extend(c.walk())
        return out


def formatOf(name: str) -> str | None:
    lower = name.lower()
    if lower.endswith(".json"):
        return "json"
    if lower.endswith(".toml"):
        return "toml"
    if lower.endswith((".yaml", ".yml")):
        return "yaml"
    return None


def parse(text: str, fmt: str, name: str) -> Any:
    try:
        if fmt == "json":
            return json.loads(text)
        if fmt == "toml":
            return tomllib.loads(text)
        return yaml.safe_load(text)
    except json.JSONDecodeError as exc:
        raise TreeFileError(f"{name}: not valid JSON: {exc}") from None
    except tomllib.TOMLDecodeError as exc:
        raise TreeFileError(f"{name}: not valid TOML: {exc}") from None
    except yaml.YAMLError as exc:
        raise TreeFileError(f"{name}: not valid YAML: {exc}") from None


def loadRoots(data: Any, name: str) -> list[JobSpec]:
    """The roots a parsed file describes, validated (types, keys, dependencies, cycles)."""
    if isinstance(data, dict) and "roots" in data and "jobType" not in data:
        extra = sorted(set(data) - {"roots"})
        if extra:
            raise TreeFileError(
                f"{name}: unknown top-level key(s) beside 'roots': {', '.join(extra)}"
            )
        items = data["roots"]
        if not isinstance(items, list) or not items:
            raise TreeFileError(f"{name}: 'roots' must be a non-empty list of jobs")
    elif isinstance(data, dict):
        items = [data]
    else:
        raise TreeFileError(
            f"{name}: the file must describe a job (an object with jobType) or "
            f'{{"roots": [...]}}, not {type(data).__name__}'
        )
    roots = []
    for i, item in enumerate(items):
        rootName = name if len(items) == 1 else f"{name}: roots[{i}]"
        root = _job(item, L.ROOT_PATH, rootName)
        _resolveDeps(root, rootName)
        roots.append(root)
    return roots


def _job(obj: Any, path: str, name: str) -> JobSpec:
    where = f"{name}: job {path}"
    if not isinstance(obj, dict):
        raise TreeFileError(f"{where}: a job must be an object, not {type(obj).__name__}")
    label = obj.get("label")
    if label is not None and not isinstance(label, str):
        raise TreeFileError(f"{where}: 'label' must be a string, not {label!r}")
    if label:
        where += f" ({label!r})"
    unknown = [k for k in obj if k not in KEYS]
    if unknown:
        hints = []
        for k in unknown:
            close = difflib.get_close_matches(str(k), KEYS, n=1)
            hints.append(f"{k!r}" + (f" (did you mean {close[0]!r}?)" if close else ""))
        raise TreeFileError(
            f"{where}: unknown key(s) {', '.join(hints)}; a job has {', '.join(KEYS)}"
        )
    jobType = obj.get("jobType")
    if not isinstance(jobType, str) or not jobType.strip():
        raise TreeFileError(
            f"{where}: 'jobType' is required: 'package.module:Class' or a short name"
        )
    params = obj.get("params", {})
    if params is None:
        params = {}
    if not isinstance(params, dict) or not all(isinstance(k, str) for k in params):
        raise TreeFileError(f"{where}: 'params' must be an object with string keys")
    clash = [k for k in params if k in RESERVED_PARAMS]
    if clash:
        raise TreeFileError(
            f"{where}: 'params' may not contain {', '.join(map(repr, clash))}: give it beside "
            "params, as a key of the job"
        )
    options = obj.get("jobOptions")
    if options is not None and not isinstance(options, dict):
        raise TreeFileError(f"{where}: 'jobOptions' must be an object")
    children = obj.get("children", [])
    if children is None:
        children = []
    if not isinstance(children, list):
        raise TreeFileError(f"{where}: 'children' must be a list of jobs")
    deps = obj.get("dependsOn", [])
    if isinstance(deps, str):
        deps = [deps]
    if deps is None:
        deps = []
    if not isinstance(deps, list) or not all(isinstance(d, str) for d in deps):
        raise TreeFileError(f"{where}: 'dependsOn' must be a list of labels or paths")
    spec = JobSpec(path, jobType, label, dict(params), dict(options) if options else None, [], deps)
    spec.children = [_job(c, f"{path}.{L.childName(i)}", name) for i, c in enumerate(children)]
    return spec


def _normalPath(text: str) -> str | None:
    """``root.0001``, ``0001``, ``1.2``, ``0001/0002`` -> ``root.0001.0002``; None if not a path."""
    parts = [p for p in re.split(r"[./]", text.strip()) if p]
    if parts and parts[0] == L.ROOT_PATH:
        parts = parts[1:]
    if not all(p.isdigit() for p in parts):
        return None
    return ".".join([L.ROOT_PATH, *(p.zfill(L.CHILD_DIGITS) for p in parts)])


def _resolveDeps(root: JobSpec, name: str) -> None:
    jobs = root.walk()
    byPath = {j.path: j for j in jobs}
    byLabel: dict[str, list[JobSpec]] = {}
    for j in jobs:
        if j.label:
            byLabel.setdefault(j.label, []).append(j)
    for j in jobs:
        resolved = []
        for d in j.dependsOn:
            matches = byLabel.get(d, [])
            if len(matches) > 1:
                raise TreeFileError(
                    f"{name}: {j.where}: dependsOn {d!r} is ambiguous: "
                    f"{len(matches)} jobs have that label; use a path such as {matches[0].path}"
                )
            target = matches[0].path if matches else _normalPath(d)
            if target is None or target not in byPath:
                raise TreeFileError(
                    f"{name}: {j.where}: dependsOn {d!r} names no job of this root "
                    "(give a label or a path such as root.0001)"
                )
            if target == j.path:
                raise TreeFileError(f"{name}: {j.where}: a job cannot depend on itself")
            resolved.append(target)
        j.dependsOn = resolved
    _checkCycles(jobs, byPath, name)


def _checkCycles(jobs: list[JobSpec], byPath: dict[str, JobSpec], name: str) -> None:
    """A job waits for its children and its dependencies; those edges must not form a cycle."""
    edges = {j.path: [c.path for c in j.children] + j.dependsOn for j in jobs}
    done: set[str] = set()
    for start in edges:
        if start in done:
            continue
        trail: list[str] = []
        onTrail: set[str] = set()
        stack: list[tuple[str, int]] = [(start, 0)]
        while stack:
            node, i = stack.pop()
            if i == 0:
                trail.append(node)
                onTrail.add(node)
            if i < len(edges[node]):
                stack.append((node, i + 1))
                nxt = edges[node][i]
                if nxt in onTrail:
                    cycle = [*trail[trail.index(nxt) :], nxt]
                    shown = " -> ".join(byPath[p].where for p in cycle)
                    raise TreeFileError(
                        f"{name}: jobs wait for each other in a cycle: {shown}; "
                        "remove one of these dependencies"
                    )
                if nxt not in done:
                    stack.append((nxt, 0))
            else:
                trail.pop()
                onTrail.discard(node)
                done.add(node)


def submit(
    q: JobQueue,
    root: JobSpec,
    *,
    dryRun: bool = False,
    onJob: Callable[[], None] | None = None,
) -> tuple[str, JobHandle | None]:
    """Build the root in staging; activate it (or with *dryRun*, throw it away).
    Returns (root id, handle of the activated root or None)."""
    jobRoot = q.createJob(root.jobType, label=root.label, jobOptions=root.jobOptions, **root.params)
    try:
        made: dict[str, Job] = {L.ROOT_PATH: jobRoot}
        if onJob:
            onJob()

        def build(parent: Job, spec: JobSpec) -> None:
            for c in spec.children:
                made[c.path] = parent.createJob(
                    c.jobType, label=c.label, jobOptions=c.jobOptions, **c.params
                )
                if onJob:
                    onJob()
                build(made[c.path], c)

        build(jobRoot, root)
        for j in root.walk():
            for d in j.dependsOn:
                made[j.path].addDependency(made[d])
    except BaseException:
        jobRoot.discard()
        raise
    if dryRun:
        jobRoot.discard()
        return jobRoot.rootId, None
    return jobRoot.rootId, jobRoot.activate()


# -- frames (the quick form) ---------------------------------------------------------------------

PLACEHOLDER_RE = re.compile(r"\{(first|last|frame)(?::([^{}]*))?\}")


def substitute(argv: list[str], first: int, last: int, frame: int | None) -> list[str]:
    """Replace {first}, {last} and {frame} (with an optional format spec: {frame:04d}) in every
    argument; other braces are left alone."""
    values = {"first": first, "last": last, "frame": frame}

    def repl(m: re.Match[str]) -> str:
        value = values[m.group(1)]
        if value is None:
            return m.group(0)
        try:
            return format(value, m.group(2) or "")
        except ValueError as exc:
            raise ValueError(f"bad placeholder {m.group(0)!r}: {exc}") from None

    return [PLACEHOLDER_RE.sub(repl, a) for a in argv]


def usesPlaceholder(argv: list[str], name: str | None = None) -> bool:
    return any(m.group(1) == name or name is None for a in argv for m in PLACEHOLDER_RE.finditer(a))
