"""Filesystem primitives that are atomic on local disks and on network filesystems.

jobtree never locks. Everything here is built from operations that have exactly one winner on
NFS, SMB and sshfs: rename of a file only one process can move, mkdir, O_CREAT|O_EXCL and rmdir
of an empty directory (see docs/format.md and FACTS.md).
"""

from __future__ import annotations

import errno
import json
import os
import secrets
import shutil
import stat
import sys
from collections.abc import Iterator
from typing import Any

from . import _layout as L

# Errors that mean "the thing is gone / someone else won the race". sshfs reports a lost
# O_EXCL or link race as EPERM instead of EEXIST (FACTS.md), and a rename over a non-empty
# directory as EPERM instead of ENOTEMPTY.
_GONE = (errno.ENOENT, errno.ESTALE)

NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)
"""Added to every open of a file in a queue: a symbolic link planted where jobtree expects its
own file makes the open fail (ELOOP) instead of reading or writing whatever it points at."""


def isGone(exc: OSError) -> bool:
    """True when *exc* says the file vanished (moved or deleted by another process)."""
    return exc.errno in _GONE


def dumpJson(data: Any) -> bytes:
    """JSON as jobtree writes it: UTF-8, no NaN (not JSON), a trailing newline for ``cat``."""
    return (json.dumps(data, ensure_ascii=False, allow_nan=False) + "\n").encode("utf-8")


def tempName(target: str) -> str:
    """A temporary name beside *target* that every listing skips."""
    head, tail = os.path.split(target)
    return os.path.join(head, f"{L.TEMP_PREFIX}{tail}.{os.getpid()}.{secrets.token_hex(4)}.tmp")


def writeAtomic(target: str, data: bytes, *, fsync: bool = False) -> None:
    """Replace *target* with *data* so that readers see the old or the new content, never a mix."""
    tmp = tempName(target)
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | NOFOLLOW, 0o666)
    try:
        try:
            _writeAll(fd, data)
            if fsync:
                os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, target)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


def writeNew(target: str, data: bytes) -> None:
    """Write a file that nobody else can see or write yet (inside staging, or attempt files)."""
    fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | NOFOLLOW, 0o666)
    try:
        _writeAll(fd, data)
    finally:
        os.close(fd)


def createEmpty(target: str) -> bool:
    """Create an empty file with O_EXCL; False when it already existed (someone else won)."""
    try:
        fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL | NOFOLLOW, 0o666)
    except FileExistsError:
        return False
    except PermissionError as exc:
        # sshfs: a racing O_EXCL loser sees EPERM. Tell a lost race from a real permission
        # problem by looking: if the file is there, someone else created it.
        if os.path.lexists(target):
            return False
        raise exc
    os.close(fd)
    return True


def rewriteInPlace(target: str, data: bytes) -> bool:
    """Overwrite an existing file without creating it; False when it is gone.

    Used for a running job's token: it must never be re-created by a worker whose claim was
    taken away, so it is opened without O_CREAT.
    """
    try:
        fd = os.open(target, os.O_WRONLY | NOFOLLOW)
    except OSError as exc:
        if isGone(exc):
            return False
        raise
    try:
        os.pwrite(fd, padTo(data, os.fstat(fd).st_size), 0)
    finally:
        os.close(fd)
    return True


def padTo(data: bytes, size: int) -> bytes:
    """*data* (JSON ending in a newline) padded with spaces to at least *size* bytes.

    Rewriting a small file in place without truncating it is several times cheaper than
    ftruncate() on ext4, and JSON ignores trailing whitespace. Tokens only ever grow a little."""
    if len(data) >= size:
        return data
    return data[:-1] + b" " * (size - len(data)) + data[-1:]


def _writeAll(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        n = os.write(fd, view)
        view = view[n:]


def move(source: str, target: str) -> bool:
    """Rename *source* to *target*; False when *source* is gone (another process moved it first).

    This is the claim primitive: of several processes renaming the same file, exactly one
    succeeds and the others get ENOENT, on local disks and network filesystems alike.
    """
    try:
        os.rename(source, target)
    except OSError as exc:
        if isGone(exc):
            return False
        raise
    return True


def unlinkIfExists(target: str) -> bool:
    try:
        os.unlink(target)
    except OSError as exc:
        if isGone(exc):
            return False
        raise
    return True


def rmdirIfEmpty(target: str) -> bool:
    """Remove an empty directory. True only for the one process whose rmdir removed it."""
    try:
        os.rmdir(target)
    except OSError as exc:
        if isGone(exc) or exc.errno in (errno.ENOTEMPTY, errno.EEXIST):
            return False
        raise
    return True


def listNames(directory: str) -> list[str]:
    """Names in *directory* without temporary files; [] when the directory is gone."""
    try:
        names = os.listdir(directory)
    except OSError as exc:
        if isGone(exc) or exc.errno == errno.ENOTDIR:
            return []
        raise
    return [n for n in names if not n.startswith(L.TEMP_PREFIX)]


def readBytes(path: str) -> bytes | None:
    """The content of *path*, or None when it is gone."""
    try:
        fd = os.open(path, os.O_RDONLY | NOFOLLOW)
    except OSError as exc:
        if isGone(exc):
            return None
        raise
    with os.fdopen(fd, "rb") as f:
        return f.read()


def readJson(path: str) -> Any:
    """Parsed JSON of *path*; None when the file is gone. Raises ValueError when corrupt."""
    data = readBytes(path)
    if data is None:
        return None
    if not data.strip():
        raise ValueError(f"{path} is empty")
    return json.loads(data)


def removeTree(path: str) -> None:
    """Delete a directory tree without following symbolic links (a planted link to elsewhere is
    unlinked, never descended into). A path that is itself a link is just unlinked."""
    try:
        st = os.lstat(path)
    except OSError as exc:
        if isGone(exc):
            return
        raise
    if not stat.S_ISDIR(st.st_mode):
        unlinkIfExists(path)
        return

    def onError(func: Any, failed: str, excinfo: Any) -> None:
        exc = excinfo[1] if isinstance(excinfo, tuple) else excinfo
        if isinstance(exc, OSError) and isGone(exc):
            return
        raise exc

    if sys.version_info >= (3, 12):
        shutil.rmtree(path, onexc=onError)
    else:
        shutil.rmtree(path, onerror=onError)


def walkDirs(top: str) -> Iterator[str]:
    """Directories below *top* (not following links), parents before children."""
    stack = [top]
    while stack:
        d = stack.pop()
        yield d
        try:
            entries = sorted(os.scandir(d), key=lambda e: e.name, reverse=True)
        except OSError as exc:
            if isGone(exc) or isinstance(exc, PermissionError):
                continue  # an unreadable subtree is skipped, not fatal
            raise
        stack.extend(e.path for e in entries if e.is_dir(follow_symlinks=False))
