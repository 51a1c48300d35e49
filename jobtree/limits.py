"""Named limits: at most K running jobs hold a limit at once, across every host.

A limit is ``QUEUE/limits/<name>.json`` (``{"slots": K}``) and a directory ``QUEUE/limits/<name>/``
of slot entries ``<i>.g<generation>``: symbolic links to the running token of the job that took
the slot. A symlink is created with its content in one atomic step, and creating an existing
name fails, so every (slot, generation) has exactly one creator. The holder of slot *i* is its
entry with the highest generation, and it holds the slot while its running token exists: when
the job commits, is taken over or is cancelled, the token moves and the slot is free again, so a
dead worker never keeps a licence. A new generation is only ever created after its predecessor
was seen free, and entries are never removed from the top, so two live holders of one slot are
impossible. (A worker whose job was taken over stops its processes within a fraction of a
second; that is the only time K+1 processes may briefly hold a limit.)
"""

from __future__ import annotations

import errno
import os
import re

from . import _fs
from .errors import InvalidSetting

LIMITS_DIR = "limits"
_ENTRY = re.compile(r"^(\d+)\.g(\d+)$")


def limitsDir(queueDir: str) -> str:
    return os.path.join(queueDir, LIMITS_DIR)


def setLimit(queueDir: str, name: str, slots: int) -> None:
    if not re.fullmatch(r"[A-Za-z0-9_.+-]+", name) or name.startswith("."):
        raise InvalidSetting(f"limit name {name!r}: use letters, digits, '_', '.', '+' and '-'")
    if isinstance(slots, bool) or not isinstance(slots, int) or slots < 0:
        raise InvalidSetting(f"limit {name!r}: slots must be an int >= 0, not {slots!r}")
    os.makedirs(os.path.join(limitsDir(queueDir), name), exist_ok=True)
    _fs.writeAtomic(
        os.path.join(limitsDir(queueDir), f"{name}.json"), _fs.dumpJson({"slots": slots})
    )


def getLimits(queueDir: str) -> dict[str, int]:
    out: dict[str, int] = {}
    for n in _fs.listNames(limitsDir(queueDir)):
        if n.endswith(".json"):
            try:
                data = _fs.readJson(os.path.join(limitsDir(queueDir), n))
            except ValueError:
                continue
            if isinstance(data, dict) and isinstance(data.get("slots"), int):
                out[n[:-5]] = data["slots"]
    return out


def _entries(d: str) -> dict[int, list[int]]:
    slots: dict[int, list[int]] = {}
    for n in _fs.listNames(d):
        m = _ENTRY.match(n)
        if m:
            slots.setdefault(int(m.group(1)), []).append(int(m.group(2)))
    return slots


def _live(queueDir: str, entry: str) -> bool:
    try:
        target = os.readlink(entry)
    except OSError as exc:
        if _fs.isGone(exc) or exc.errno == errno.EINVAL:
            return False
        raise
    return os.path.lexists(os.path.join(queueDir, target))


def holders(queueDir: str, name: str) -> list[str]:
    """The running tokens (queue-relative) that hold the limit now."""
    d = os.path.join(limitsDir(queueDir), name)
    out = []
    for i, gens in _entries(d).items():
        entry = os.path.join(d, f"{i}.g{max(gens)}")
        if _live(queueDir, entry):
            out.append(os.readlink(entry))
    return out


def acquire(queueDir: str, name: str, slots: int, token: str) -> str | None:
    """Take a free slot of the limit for the running token *token* (a path inside the queue).
    Returns the slot entry, or None when every slot is held."""
    d = os.path.join(limitsDir(queueDir), name)
    target = os.path.relpath(token, queueDir)
    current = _entries(d)
    # After a limit was lowered, holders of slots at or above the new count still run: every
    # live holder counts, so no new job starts until the limit is kept again.
    live = sum(
        1 for i, gens in current.items() if _live(queueDir, os.path.join(d, f"{i}.g{max(gens)}"))
    )
    if live >= slots:
        return None
    for i in range(slots):
        gens = current.get(i)
        gen = 0
        if gens:
            top = max(gens)
            if _live(queueDir, os.path.join(d, f"{i}.g{top}")):
                continue
            gen = top + 1
        entry = os.path.join(d, f"{i}.g{gen}")
        try:
            os.symlink(target, entry)
        except FileExistsError:
            continue  # another worker took this generation of the slot first
        except PermissionError:
            if os.path.lexists(entry):  # sshfs reports a lost create race as EPERM
                continue
            raise
        except FileNotFoundError:
            os.makedirs(d, exist_ok=True)
            continue
        # A slow worker may re-create a generation that was tidied away after a newer one
        # was made: only the highest generation holds the slot.
        if any(g > gen for g in _entries(d).get(i, ())):
            _fs.unlinkIfExists(entry)
            continue
        # Older generations of this slot are dead for good: tidy them away.
        for g in gens or ():
            _fs.unlinkIfExists(os.path.join(d, f"{i}.g{g}"))
        return entry
    return None
