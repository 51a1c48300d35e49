"""Waking idle workers: what changed in a queue, noticed without busy polling.

The supervisor of ``jobtree worker`` runs one *watcher* per queue and rings every idle worker's
*doorbell* when something that could make a job runnable changed:

- on a local disk, an inotify watch of ``QUEUE/roots`` (watchdog, recursive). A job becomes
  runnable only by a rename into an ``_index/ready/`` directory or by a new root appearing in
  ``roots/`` (and a limit's slot frees when a token leaves ``_index/running/``), so only created,
  moved and deleted events are asked for, and InotifyWatcher.isRelevant picks among those. Open,
  close-without-write, modify and attribute events are left out of the kernel's mask: watchdog's
  default mask makes its own rescans overflow the inotify queue and spin at ~96% CPU (shared
  FACTS, "Watching a tree"), and modify events would fire on every log line a running job writes
  and on every lease renewal.
- on a network filesystem, polling. inotify sees only changes made through this host's mount, so
  it is blind to other hosts' workers and submitters (shared FACTS). A full rescan costs seconds
  over sshfs, so the poller only stats cheap change markers: the mtime of ``roots/`` (roots added or
  removed) and of ``_index/ready`` and ``_index/running`` of every unfinished root (whatever
  makes a job runnable, or ends a running one, renames a token into or out of one of those).

Events are hints to look again, never truth (duplicates and reordering happen): a woken worker
simply lists the ready jobs. Workers also look on their own every few seconds, because some jobs
become runnable without any event (a retry delay or ``notBefore`` passing, an expired lease).
"""

from __future__ import annotations

import logging
import os
import select
import threading
from collections.abc import Callable, Iterable
from typing import Any

from . import _fs
from . import _layout as L

log = logging.getLogger("jobtree.worker")

DEBOUNCE = 0.05
"""Seconds between two rings: a burst of events (a worker finishing many small jobs, a big root
arriving) wakes the workers at once and then at most once per DEBOUNCE."""
DEFAULT_POLL = 1.0
"""Seconds between two polls of the change markers on a network filesystem."""

NETWORK_FS = frozenset(
    {
        "nfs",
        "nfs4",
        "cifs",
        "smb3",
        "smbfs",
        "9p",
        "afs",
        "ceph",
        "glusterfs",
        "lustre",
        "gpfs",
        "beegfs",
        "ocfs2",
        "gfs2",
        "davfs",
        "virtiofs",
        "ncpfs",
        "orangefs",
    }
)
"""Filesystem types whose files other hosts change behind this kernel's back."""
LOCAL_FUSE = frozenset({"fuse.portal", "fuse.lxcfs"})


def mountInfo(path: str, mountinfo: str = "/proc/self/mountinfo") -> tuple[str, str]:
    """(mount point, filesystem type) of the mount holding *path*, from *mountinfo*;
    ("", "") when that cannot be read (not Linux)."""
    real = os.path.realpath(path)
    best, fstype = "", ""
    try:
        with open(mountinfo, encoding="utf-8", errors="replace") as f:
            lines = f.readlines()
    except OSError:
        return best, fstype
    for line in lines:
        # "36 35 98:0 /mnt1 /mnt/parent rw,noatime master:1 - ext3 /dev/root rw,errors=continue"
        head, sep, tail = line.partition(" - ")
        fields = head.split()
        if not sep or len(fields) < 5 or not tail.split():
            continue
        point = _unescape(fields[4])
        inside = real == point or real.startswith(point.rstrip("/") + "/")
        # Later lines are mounted over earlier ones: on equal length the later one wins.
        if inside and len(point) >= len(best):
            best, fstype = point, tail.split()[0]
    return best, fstype


def _unescape(field: str) -> str:
    """mountinfo writes space, tab, newline and backslash in paths as octal escapes."""
    for code, char in (("\\040", " "), ("\\011", "\t"), ("\\012", "\n"), ("\\134", "\\")):
        field = field.replace(code, char)
    return field


def isNetworkFs(fstype: str) -> bool:
    """True for filesystems where inotify misses other hosts' changes (the worker's watcher and the
    monitor both ask this). Any FUSE filesystem counts (sshfs, s3fs, rclone, ...) except a few
    known to be local, and so does any NFS variant."""
    return (
        fstype in NETWORK_FS
        or fstype.startswith("nfs")
        or fstype == "fuse"
        or (fstype.startswith("fuse.") and fstype not in LOCAL_FUSE)
    )


class Watcher:
    """Calls *onChange* (from its own thread) when something in the queue may have changed."""

    kind = "none"

    def __init__(self, queueDir: str, onChange: Callable[[], None]) -> None:
        self.queueDir = queueDir
        self.rootsDir = os.path.join(queueDir, L.ROOTS_DIR)
        self._onChange = onChange

    def start(self) -> None:
        raise NotImplementedError

    def stop(self) -> None:
        raise NotImplementedError

    def healthy(self) -> bool:
        """False when the watcher stopped working (its thread died); the supervisor then falls
        back to polling."""
        return True

    def describe(self) -> str:
        return self.kind


class _Debouncer(threading.Thread):
    """Rings at once on the first poke, then at most once per DEBOUNCE while pokes keep coming:
    no added latency for a lone change, bounded wake-ups under a flood."""

    def __init__(self, onChange: Callable[[], None]) -> None:
        super().__init__(name="jobtree-wake", daemon=True)
        self._onChange = onChange
        self._poked = threading.Event()
        self._stopped = threading.Event()

    def poke(self) -> None:
        self._poked.set()

    def stop(self) -> None:
        self._stopped.set()
        self._poked.set()
        if self.is_alive():
            self.join(5.0)

    def run(self) -> None:
        while True:
            self._poked.wait()
            if self._stopped.is_set():
                return
            self._poked.clear()
            try:
                self._onChange()
            except Exception:
                log.exception("jobtree: waking the workers failed")
            # Pokes that arrive meanwhile set _poked again: one more ring after the pause.
            if self._stopped.wait(DEBOUNCE):
                return


class InotifyWatcher(Watcher):
    """watchdog's inotify observer on QUEUE/roots, recursive, with a narrow event filter."""

    kind = "inotify"

    def __init__(self, queueDir: str, onChange: Callable[[], None]) -> None:
        super().__init__(queueDir, onChange)
        self._debouncer = _Debouncer(onChange)
        self._observer: Any = None

    def _place(self, path: str | bytes) -> str | None:
        """Where a path is: "root" for an entry of roots/ itself, the state name for an entry of
        a root's _index/<state>/, None for anything else (job files, logs, attempt records)."""
        p = os.fsdecode(path)
        if not p.startswith(self.rootsDir + os.sep):
            return None
        parts = p[len(self.rootsDir) + 1 :].split(os.sep)
        if len(parts) == 1:
            return "root"
        if len(parts) == 4 and parts[1] == L.INDEX_DIR:
            return parts[2]
        return None

    def isRelevant(self, eventType: str, src: str | bytes, dest: str | bytes = "") -> bool:
        """Can this event have made a job runnable (or ended one, for --burst and limits)?

        Yes for a root arriving or leaving, a token arriving in ready/ from anywhere but
        running/, and a token leaving running/ for anywhere but ready/. A token going from
        running/ back to ready/ is a worker giving back a job it could not take (a full limit,
        requirements it does not meet) or a retry: ringing for it would make idle workers claim
        and give back that job over and over, each give-back ringing again. The worker that gave
        it back looks again at once, and every idle worker within RECHECK_SECONDS."""
        srcAt = self._place(src)
        if eventType == "moved":
            destAt = self._place(dest) if dest else None
            if "root" in (srcAt, destAt):
                return True
            return (destAt == L.READY and srcAt != L.RUNNING) or (
                srcAt == L.RUNNING and destAt != L.READY
            )
        if srcAt == "root":
            return True
        if os.path.basename(os.fsdecode(src)).startswith(L.TEMP_PREFIX):
            return False  # an atomic write in progress; its rename is the event that counts
        return (eventType == "created" and srcAt == L.READY) or (
            eventType == "deleted" and srcAt == L.RUNNING
        )

    def start(self) -> None:
        from watchdog.events import (
            DirCreatedEvent,
            DirDeletedEvent,
            DirMovedEvent,
            FileCreatedEvent,
            FileDeletedEvent,
            FileMovedEvent,
            FileSystemEvent,
            FileSystemEventHandler,
        )
        from watchdog.observers.inotify import InotifyObserver

        watcher = self

        class Handler(FileSystemEventHandler):
            def on_any_event(self, event: FileSystemEvent) -> None:
                dest = getattr(event, "dest_path", "")
                if watcher.isRelevant(event.event_type, event.src_path, dest):
                    watcher._debouncer.poke()

        # Created, moved and deleted only (see the module docstring for why not the rest).
        eventFilter: list[type[FileSystemEvent]] = [
            FileCreatedEvent,
            DirCreatedEvent,
            FileMovedEvent,
            DirMovedEvent,
            FileDeletedEvent,
            DirDeletedEvent,
        ]
        observer = InotifyObserver()
        observer.schedule(Handler(), self.rootsDir, recursive=True, event_filter=eventFilter)
        # start() adds the inotify watches synchronously: running out of watches
        # (fs.inotify.max_user_watches) raises OSError here, and the caller falls back to polling.
        observer.start()
        self._observer = observer
        self._debouncer.start()

    def stop(self) -> None:
        if self._observer is not None:
            self._observer.stop()
            self._observer.join(5.0)
            self._observer = None
        self._debouncer.stop()

    def describe(self) -> str:
        return "watching with inotify"

    def healthy(self) -> bool:
        obs = self._observer
        if obs is None:
            return False
        return bool(obs.is_alive()) and all(e.is_alive() for e in obs.emitters)


class PollWatcher(Watcher):
    """Stats change markers every *interval* seconds (see the module docstring)."""

    kind = "poll"

    def __init__(self, queueDir: str, onChange: Callable[[], None], interval: float) -> None:
        super().__init__(queueDir, onChange)
        self.interval = interval
        self._stopEvent = threading.Event()
        self._thread = threading.Thread(target=self._run, name="jobtree-poll", daemon=True)
        self._rootsSig: tuple[int, int] | None = None
        self._roots: set[str] = set()
        self._done: set[str] = set()
        self._sigs: dict[str, tuple[int, ...]] = {}

    def start(self) -> None:
        self.scan()  # the baseline: what exists now is not a change
        self._thread.start()

    def stop(self) -> None:
        self._stopEvent.set()
        if self._thread.is_alive():
            self._thread.join(5.0)

    def healthy(self) -> bool:
        return self._thread.is_alive()

    def describe(self) -> str:
        return f"polling every {self.interval:g} s"

    def _run(self) -> None:
        while not self._stopEvent.wait(self.interval):
            try:
                changed = self.scan()
            except Exception:  # a flaky mount must not end the polling
                log.exception("jobtree: polling %s failed", self.rootsDir)
                changed = True
            if changed:
                try:
                    self._onChange()
                except Exception:
                    log.exception("jobtree: waking the workers failed")

    def scan(self) -> bool:
        """Stat the markers once; True when any of them changed since the last scan."""
        from .lease import serverClock

        now = serverClock(self.queueDir).now()
        changed = False
        sig = _stamp(self.rootsDir)
        if sig != self._rootsSig or _recent(sig, now):
            self._rootsSig = sig
            roots = {n for n in _fs.listNames(self.rootsDir) if L.ROOT_ID_RE.match(n)}
            if roots != self._roots:
                changed = True
                self._roots = roots
                self._done &= roots
                for gone in set(self._sigs) - roots:
                    del self._sigs[gone]
        for rid in self._roots - self._done:
            rootDir = os.path.join(self.rootsDir, rid)
            index = os.path.join(rootDir, L.INDEX_DIR)
            markers = (_stamp(os.path.join(index, L.READY)), _stamp(os.path.join(index, L.RUNNING)))
            flat = tuple(x for m in markers for x in m)
            if flat != self._sigs.get(rid) or any(_recent(m, now) for m in markers):
                changed = True
                self._sigs[rid] = flat
                if os.path.exists(os.path.join(index, L.DONE, L.ROOT_PATH)):
                    self._done.add(rid)  # finished for good: stop polling it
        return changed


def _stamp(path: str) -> tuple[int, int]:
    """(mtime in ns, inode) of a directory; (0, 0) when it is gone."""
    try:
        st = os.stat(path)
    except OSError:
        return (0, 0)
    return (st.st_mtime_ns, st.st_ino)


def _recent(stamp: tuple[int, int], serverNow: float) -> bool:
    """An mtime in whole seconds (sshfs, some NFS servers) within the last 2 s: a second change in
    the same second would not change it, so treat the marker as changed until it is older."""
    ns = stamp[0]
    return ns != 0 and ns % 1_000_000_000 == 0 and ns / 1e9 >= serverNow - 2.0


def startWatcher(queueDir: str, onChange: Callable[[], None], poll: float | None = None) -> Watcher:
    """The right watcher for the queue's filesystem, started. *poll* forces polling at that
    interval; otherwise network filesystems are polled every DEFAULT_POLL seconds and local ones
    watched with inotify (falling back to polling when inotify is unavailable)."""
    if poll is None:
        point, fstype = mountInfo(queueDir)
        if isNetworkFs(fstype):
            log.info(
                "queue %s is on %s (%s): polling every %.1f s; inotify would miss other hosts' "
                "changes",
                queueDir,
                fstype,
                point,
                DEFAULT_POLL,
            )
            poll = DEFAULT_POLL
        else:
            watcher = InotifyWatcher(queueDir, onChange)
            try:
                watcher.start()
            except (OSError, ImportError) as exc:
                watcher.stop()
                log.warning(
                    "cannot watch %s with inotify (%s); polling every %.1f s instead (raise "
                    "fs.inotify.max_user_watches if the queue is large)",
                    queueDir,
                    exc,
                    DEFAULT_POLL,
                )
                poll = DEFAULT_POLL
            else:
                log.debug("watching %s with inotify", watcher.rootsDir)
                return watcher
    poller = PollWatcher(queueDir, onChange, poll)
    poller.start()
    return poller


class Doorbell:
    """What an idle worker waits on: its supervisor's pipe (a byte per ring, EOF when the
    supervisor is gone) and this process's signals (via signal.set_wakeup_fd)."""

    def __init__(self, bellFd: int | None) -> None:
        import signal

        self.bellFd = bellFd
        self._sigR, self._sigW = os.pipe()
        os.set_blocking(self._sigR, False)
        os.set_blocking(self._sigW, False)
        # Only signals with a Python handler write here; the worker installs those first.
        self._oldWakeup = signal.set_wakeup_fd(self._sigW, warn_on_full_buffer=False)
        if bellFd is not None:
            os.set_blocking(bellFd, False)
        self.hungUp = False
        """The supervisor's end of the pipe is closed: it died."""

    def wait(self, timeout: float) -> bool:
        """Block until rung, a signal arrives or *timeout* passes. False when the supervisor hung
        up (then it returns at once every time)."""
        if self.hungUp:
            return False
        fds = [self._sigR] if self.bellFd is None else [self._sigR, self.bellFd]
        ready, _, _ = select.select(fds, [], [], timeout)
        drain([self._sigR])
        if self.bellFd is not None and self.bellFd in ready and not drain([self.bellFd]):
            self.hungUp = True
        return not self.hungUp

    def close(self) -> None:
        import signal

        signal.set_wakeup_fd(self._oldWakeup)
        for fd in (self._sigR, self._sigW):
            os.close(fd)


def drain(fds: Iterable[int]) -> bool:
    """Read everything pending; False when a pipe reports EOF."""
    for fd in fds:
        while True:
            try:
                chunk = os.read(fd, 4096)
            except BlockingIOError:
                break
            if not chunk:
                return False
            if len(chunk) < 4096:
                break
    return True


def ring(fds: Iterable[int]) -> None:
    """Wake the workers behind these (non-blocking) pipe ends. A full pipe already holds a ring;
    a broken one belongs to a worker that just died (its supervisor reaps it)."""
    for fd in fds:
        try:
            os.write(fd, b"!")
        except (BlockingIOError, BrokenPipeError):
            pass
        except OSError as exc:
            log.debug("ringing fd %d failed: %s", fd, exc)
