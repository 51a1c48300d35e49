"""Job addresses on the command line.

A job is addressed by

- its root's short id, the last 6 hex digits of the root id (``3fa9c1``; any unique ending of
  at least 3 digits works), or the full root id (``20261122-203012-250000-3fa9c1``),
- optionally followed by the path of a sub-job: ``3fa9c1:0002.0000``, ``3fa9c1/0002/0000``,
  ``3fa9c1:2.0`` (numbers are padded) or ``3fa9c1:root.0002.0000``;
- or by its directory: ``/mnt/farm/queue/roots/<rootid>/0002/0000`` (the queue is found from
  the path, so no --queue is needed).
"""

from __future__ import annotations

import os
import re

import click
from click.shell_completion import CompletionItem

from .. import _fs
from .. import _layout as L
from ..errors import JobNotFound
from ..handle import JobHandle
from ..queue import JobQueue
from ._app import App, CliError, Exit, app, openQueue

SHORT_ID_LENGTH = 6
MIN_ID_LENGTH = 3
_ID_RE = re.compile(rf"^[0-9a-fA-F]{{{MIN_ID_LENGTH},}}$")


def shortId(rootId: str) -> str:
    return rootId[-SHORT_ID_LENGTH:]


def address(rootId: str, path: str) -> str:
    """The short address of a job: ``3fa9c1`` for a root, ``3fa9c1:0002.0000`` below it."""
    sid = shortId(rootId)
    if path == L.ROOT_PATH:
        return sid
    return f"{sid}:{path[len(L.ROOT_PATH) + 1 :]}"


def handleAddress(h: JobHandle) -> str:
    return address(h.rootId, h.path)


def queueOf(h: JobHandle) -> JobQueue:
    """The queue a handle belongs to."""
    return h._queue


def findQueueDir(path: str) -> str | None:
    """The queue directory that contains *path*, or None."""
    p = os.path.abspath(path)
    while True:
        if os.path.isfile(os.path.join(p, L.QUEUE_FILE)):
            return p
        parent = os.path.dirname(p)
        if parent == p:
            return None
        p = parent


def _parseSubPath(text: str, whole: str) -> list[str]:
    parts = [p for p in re.split(r"[./]", text) if p]
    if parts and parts[0] == L.ROOT_PATH:
        parts = parts[1:]
    out = []
    for p in parts:
        if not p.isdigit():
            raise CliError(
                f"bad job address {whole!r}: {p!r} is not a sub-job number "
                "(write ID:0002.0000 or ID/0002/0000)",
                Exit.USAGE,
            )
        out.append(p if len(p) >= L.CHILD_DIGITS else p.zfill(L.CHILD_DIGITS))
    return out


def matchRoots(q: JobQueue, ident: str) -> list[str]:
    """Root ids of *q* that *ident* (a full root id or an ending of one) names."""
    ids = q._rootIds()
    if L.ROOT_ID_RE.match(ident):
        return [ident] if ident in ids else []
    ident = ident.lower()
    return [r for r in ids if r.endswith(ident)]


def resolveJob(text: str, queuePath: str | None = None, theApp: App | None = None) -> JobHandle:
    """The JobHandle an address names; CliError (exit 4) naming the address when none does."""
    theApp = theApp or app()
    if os.path.isdir(text) and (os.sep in text or text.startswith(".")):
        return _byDirectory(text)
    ident, sep, rest = _splitAddress(text)
    if not (L.ROOT_ID_RE.match(ident) or _ID_RE.match(ident)):
        if os.sep in text or os.path.exists(text):
            raise CliError(f"{text} is not a job directory of any jobtree queue", Exit.NO_JOB)
        raise CliError(
            f"bad job address {text!r}: expected a short id like 3fa9c1, a root id, ID:0002.0000 "
            "or a job directory",
            Exit.USAGE,
        )
    q = theApp.queue(queuePath)
    matches = matchRoots(q, ident)
    if not matches:
        raise CliError(
            f"no job {text!r} in queue {q.location}: no root id ends in {ident!r}", Exit.NO_JOB
        )
    if len(matches) > 1:
        shown = ", ".join(matches[:5]) + (" ..." if len(matches) > 5 else "")
        raise CliError(
            f"job id {ident!r} is ambiguous in queue {q.location}: {len(matches)} roots match "
            f"({shown}); give more digits or the full root id",
            Exit.NO_JOB,
        )
    parts = _parseSubPath(rest, text) if sep else []
    assert q.location is not None
    location = os.path.join(q.location, L.ROOTS_DIR, matches[0], *parts)
    try:
        return q.jobHandle(location)
    except JobNotFound:
        raise CliError(
            f"no job {text!r} in queue {q.location}: root {matches[0]} has no sub-job "
            f"{'.'.join([L.ROOT_PATH, *parts])}",
            Exit.NO_JOB,
        ) from None


def _splitAddress(text: str) -> tuple[str, str, str]:
    for sep in (":", "/"):
        if sep in text:
            return text.partition(sep)
    return text, "", ""


def _byDirectory(path: str) -> JobHandle:
    qdir = findQueueDir(path)
    if qdir is None:
        raise CliError(f"{path} is not inside a jobtree queue", Exit.NO_JOB)
    q = openQueue(qdir, f"job directory {path}")
    try:
        return q.jobHandle(path)
    except JobNotFound as exc:
        raise CliError(str(exc), Exit.NO_JOB) from None


def resolveJobs(texts: tuple[str, ...] | list[str], queuePath: str | None) -> list[JobHandle]:
    seen: dict[str, JobHandle] = {}
    for t in texts:
        h = resolveJob(t, queuePath)
        seen.setdefault(h.location, h)
    return list(seen.values())


class JobAddress(click.ParamType):  # type: ignore[type-arg,unused-ignore]
    """A job address; completes the short ids of the queue's roots in the shell."""

    name = "JOB"

    def shell_complete(
        self, ctx: click.Context, param: click.Parameter, incomplete: str
    ) -> list[CompletionItem]:
        try:
            q = app(ctx).queue(ctx.params.get("queuePath"))
            items = []
            for rid in q._rootIds():
                sid = shortId(rid)
                if sid.startswith(incomplete) or rid.startswith(incomplete):
                    label = _fs.readJson(os.path.join(q._roots, rid, L.JOB_FILE)) or {}
                    items.append(CompletionItem(sid, help=str(label.get("label") or "")))
            return items
        except Exception:
            return []
