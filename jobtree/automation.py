"""What workers do for a queue besides running jobs, with no scheduler process: root hooks,
recurring schedules and retention. Each action happens exactly once, decided by an O_EXCL marker
(or a rename) that only one worker can create, whichever gets there first."""

from __future__ import annotations

import logging
import os
import re
import secrets
import time
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from . import _fs, _options, _procs
from . import _layout as L
from ._index import RootIndex, indexDir
from .errors import InvalidSetting, JobTreeError
from .state import JobState
from .submit import _checkParams

if TYPE_CHECKING:
    from .queue import JobQueue

log = logging.getLogger("jobtree")

HOOKS_FILE = "hooks.json"
HOOK_MARKER = "_hook.{when}"
SCHEDULES_DIR = "schedules"
ARCHIVE_DIR = "archive"
MAX_CATCH_UP = 1000
"""A schedule that was down for longer creates at most this many missed slots at once."""


def jobSpec(
    q: JobQueue,
    jobType: Any,
    label: str | None,
    jobOptions: Mapping[str, Any] | None,
    params: dict[str, Any],
    where: str,
) -> dict[str, Any]:
    """A validated job description for later submission (hooks, schedules): the same checks as
    createJob, without creating anything."""
    name = _procs.jobTypeName(jobType)
    q._policy.checkType(name, where)
    cls = _procs.resolve(name)
    clean = _checkParams(params, where)
    if jobOptions is not None:
        _options.resolveJobOptions(jobOptions, None, q._settings, where)
        for limit in jobOptions.get("limits") or ():
            if limit not in q.limits():
                raise JobTreeError(
                    f"{where}: limit {limit!r} is not defined; define it with setLimit first"
                )
    try:
        cls(**clean)
    except Exception as exc:
        raise JobTreeError(f"{where}: the procedure rejected its parameters: {exc}") from exc
    return {"jobType": name, "label": label, "params": clean, "jobOptions": dict(jobOptions or {})}


def submitSpec(q: JobQueue, spec: Mapping[str, Any], metadata: Mapping[str, Any]) -> str:
    options = dict(spec.get("jobOptions") or {})
    options["metadata"] = {**(options.get("metadata") or {}), **metadata}
    with q.createJobRoot(
        spec["jobType"], label=spec.get("label"), jobOptions=options, **spec["params"]
    ) as root:
        pass
    return root.rootId


# -- hooks ---------------------------------------------------------------------------------------


def fireHooks(q: JobQueue, rootDir: str, when: str) -> None:
    """Submit a root's 'done' or 'failed' hooks, exactly once whichever worker calls this."""
    try:
        hooks = _fs.readJson(os.path.join(rootDir, HOOKS_FILE)) or []
    except ValueError as exc:
        log.error("root %s: its hooks file is corrupt: %s", rootDir, exc)
        return
    mine = [h for h in hooks if isinstance(h, dict) and h.get("when") == when]
    if not mine or not _fs.createEmpty(os.path.join(rootDir, HOOK_MARKER.format(when=when))):
        return
    rootId = os.path.basename(rootDir)
    for hook in mine:
        try:
            newId = submitSpec(q, hook, {"hookFor": rootId, "hookWhen": when})
            log.info("root %s is %s: submitted its hook as root %s", rootId, when, newId)
        except Exception as exc:  # a broken hook must not take the worker down
            log.error("root %s: submitting its %r hook failed: %s", rootId, when, exc)


# -- schedules -------------------------------------------------------------------------------------


def _schedulesDir(q: JobQueue) -> str:
    return os.path.join(q._need(), SCHEDULES_DIR)


def addSchedule(
    q: JobQueue,
    name: str,
    spec: dict[str, Any],
    *,
    interval: float | None,
    cron: str | None,
    repeats: int | None,
    catchUp: bool,
    start: float | None,
    replace: bool,
) -> dict[str, Any]:
    where = f"schedule {name!r}"
    if not re.fullmatch(r"[A-Za-z0-9_.+-]+", name) or name.startswith("."):
        raise InvalidSetting(f"{where}: use letters, digits, '_', '.', '+' and '-' in the name")
    if (interval is None) == (cron is None):
        raise InvalidSetting(f"{where}: give exactly one of interval (seconds) or cron")
    if interval is not None and (
        isinstance(interval, bool) or not isinstance(interval, (int, float)) or interval <= 0
    ):
        raise InvalidSetting(f"{where}: interval must be a positive number of seconds")
    if cron is not None:
        from croniter import croniter

        if not croniter.is_valid(cron):
            raise InvalidSetting(f"{where}: {cron!r} is not a valid cron expression")
    if repeats is not None and (
        isinstance(repeats, bool) or not isinstance(repeats, int) or repeats < 1
    ):
        raise InvalidSetting(f"{where}: repeats must be a positive int or None (forever)")
    d = _schedulesDir(q)
    os.makedirs(os.path.join(d, f"{name}.slots"), exist_ok=True)
    target = os.path.join(d, f"{name}.json")
    if os.path.exists(target) and not replace:
        raise JobTreeError(
            f"{where} exists in {q.location}; unschedule it first or pass replace=True"
        )
    record = dict(
        spec,
        name=name,
        interval=interval,
        cron=cron,
        repeats=repeats,
        catchUp=bool(catchUp),
        start=float(start) if start is not None else q._clock.now(),
    )
    _fs.writeAtomic(target, _fs.dumpJson(record))
    return record


def listSchedules(q: JobQueue) -> list[dict[str, Any]]:
    out = []
    d = _schedulesDir(q)
    for n in sorted(_fs.listNames(d)):
        if n.endswith(".json"):
            try:
                rec = _fs.readJson(os.path.join(d, n))
            except ValueError as exc:
                log.error("schedule file %s is corrupt: %s", os.path.join(d, n), exc)
                continue
            if isinstance(rec, dict):
                slots = [
                    int(s) for s in _fs.listNames(os.path.join(d, f"{n[:-5]}.slots")) if s.isdigit()
                ]
                rec["created"] = len(slots)
                rec["lastSlot"] = max(slots) if slots else None
                out.append(rec)
    return out


def removeSchedule(q: JobQueue, name: str) -> None:
    d = _schedulesDir(q)
    if not _fs.unlinkIfExists(os.path.join(d, f"{name}.json")):
        raise JobTreeError(f"no schedule {name!r} in {q.location}")
    _fs.removeTree(os.path.join(d, f"{name}.slots"))


def _dueSlots(rec: dict[str, Any], last: int | None, now: float) -> list[int]:
    start = float(rec["start"])
    slots: list[int] = []
    if rec.get("interval"):
        step = float(rec["interval"])
        if now < start:
            return []
        latest = start + int((now - start) // step) * step
        first = start if last is None else last + step
        if not rec.get("catchUp"):
            first = max(first, latest)
        t = first
        while t <= now and len(slots) < MAX_CATCH_UP:
            slots.append(int(t))
            t += step
    else:
        from croniter import croniter

        it = croniter(rec["cron"], max(start, (last or 0)) - (1 if last is None else 0))
        cand: list[int] = []
        while len(cand) < MAX_CATCH_UP:
            t = it.get_next(float)
            if t > now:
                break
            cand.append(int(t))
        slots = cand if rec.get("catchUp") else cand[-1:]
    return [s for s in slots if last is None or s > last]


def runSchedules(q: JobQueue, now: float) -> int:
    """Create the roots of every due schedule slot that no worker created yet. Returns how many
    this call created."""
    made = 0
    d = _schedulesDir(q)
    for rec in listSchedules(q):
        name = rec["name"]
        slotDir = os.path.join(d, f"{name}.slots")
        if rec.get("repeats") is not None and rec["created"] >= rec["repeats"]:
            continue
        count = rec["created"]
        for slot in _dueSlots(rec, rec["lastSlot"], now):
            if rec.get("repeats") is not None and count >= rec["repeats"]:
                break
            # Exactly one worker creates each slot's marker, and only it submits the root.
            if not _fs.createEmpty(os.path.join(slotDir, str(slot))):
                continue
            count += 1
            try:
                stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(slot))
                rootId = submitSpec(q, rec, {"schedule": name, "slot": stamp})
                log.info("schedule %s: slot %s submitted as root %s", name, stamp, rootId)
                made += 1
            except Exception as exc:
                log.error("schedule %s: submitting slot %s failed: %s", name, slot, exc)
        if rec.get("repeats") is None:  # forever: keep the newest markers only
            markers = sorted(int(s) for s in _fs.listNames(slotDir) if s.isdigit())
            for old in markers[:-16]:
                _fs.unlinkIfExists(os.path.join(slotDir, str(old)))
    return made


# -- retention -------------------------------------------------------------------------------------


def _finished(rootDir: str) -> tuple[str, float] | None:
    """('done' | 'failed', when) for a root nothing more will happen to; None otherwise."""
    done = os.path.join(indexDir(rootDir, L.DONE), L.ROOT_PATH)
    try:
        return "done", os.stat(done).st_mtime
    except FileNotFoundError:
        pass
    states = RootIndex(rootDir).states()
    if any(
        s in (JobState.READY, JobState.RUNNING, JobState.PAUSED, JobState.WAITING)
        for s in states.values()
    ):
        return None
    if not any(s in (JobState.FAILED, JobState.CANCELLED) for s in states.values()):
        return None
    when = max(os.stat(indexDir(rootDir, s)).st_mtime for s in (L.FAILED, L.CANCELLED, L.DONE))
    return "failed", when


def archive(q: JobQueue, policy: Mapping[str, Any], now: float) -> list[str]:
    """Archive or delete finished roots by age and count (failures kept longer). Returns the ids."""
    doneAge = policy.get("doneAge")
    failedAge = policy.get("failedAge", doneAge * 4 if doneAge is not None else None)
    keepDone = policy.get("keepDone")
    keepFailed = policy.get("keepFailed", keepDone * 4 if keepDone is not None else None)
    action = policy.get("action", "archive")
    byKind: dict[str, list[tuple[float, str]]] = {"done": [], "failed": []}
    for rid in q._rootIds():
        fin = _finished(os.path.join(q._roots, rid))
        if fin is not None:
            byKind[fin[0]].append((fin[1], rid))
    handled = []
    for kind, age, keep in (("done", doneAge, keepDone), ("failed", failedAge, keepFailed)):
        if age is None and keep is None:
            continue
        roots = sorted(byKind[kind], reverse=True)  # newest first
        for i, (when, rid) in enumerate(roots):
            tooMany = keep is not None and i >= keep
            tooOld = age is not None and now - when > age
            if not (tooMany or tooOld):
                continue
            src = os.path.join(q._roots, rid)
            if action == "delete":
                trash = os.path.join(q._trash, f"{rid}.{secrets.token_hex(4)}")
                if _fs.move(src, trash):
                    _fs.removeTree(trash)
                    handled.append(rid)
            else:
                os.makedirs(os.path.join(q._need(), ARCHIVE_DIR), exist_ok=True)
                if _fs.move(src, os.path.join(q._need(), ARCHIVE_DIR, rid)):
                    handled.append(rid)
    if handled:
        log.info(
            "retention: %s %d root(s) in %s",
            "deleted" if action == "delete" else "archived",
            len(handled),
            q.location,
        )
    return handled
