"""Several hosts on a real network filesystem, on one machine: a test harness.

Every "host" is a network namespace of its own, linked by a veth pair to a "server" namespace in
which an ``sshd`` serves a directory of this machine (the *export*) over SFTP. A command "run on
host i" mounts the export with ``sshfs`` inside that host's namespace, with a hostname of its own,
runs, and unmounts, all in one process tree. A host's link can be cut and restored mid-run, and a
host can run with its clock shifted by ``faketime``. All traffic stays inside the namespaces the
harness creates (private addresses 10.231.<i>.0/24, used only there); everything it starts is
stopped at the end, even when a test fails.

Usage::

    with MultiHost(tmp_path, n_hosts=2) as cluster:
        createJobQueue(cluster.export / "q")               # the file server's local view
        p = cluster.hosts[0].run(["python", "worker.py", "{mnt}/q"])   # {mnt}: the host's mount
        cluster.hosts[0].cut_link(); ...; cluster.hosts[0].restore_link()
        assert p.wait(60) == 0

or as a pytest fixture: ``cluster = cluster_fixture(n_hosts=2)`` in a test module.

Requirements
------------
Root (namespaces, mounts), Linux with FUSE (``/dev/fuse``) and these Debian 12 packages::

    apt-get install -y iproute2 openssh-server openssh-client sshfs fuse3 faketime util-linux

- ``iproute2``: ``ip netns``, veth pairs, ``ip netns pids``;
- ``openssh-server``: ``/usr/sbin/sshd`` (it is started by the harness only, with its own config,
  keys and port inside the server namespace; the system's sshd service is neither needed nor used);
- ``openssh-client``: ``ssh`` (which sshfs runs) and ``ssh-keygen`` (throwaway keys per test);
- ``sshfs`` (pulls in ``fuse3``: ``fusermount3``);
- ``faketime``: ``faketime`` and libfaketime, only for tests that shift a host's clock;
- ``util-linux``: ``unshare``, ``mountpoint`` (essential, always installed).

Missing prerequisites skip the test, or fail it when ``JOBTREE_REQUIRE_ALL=1`` (as in CI).

sshfs mount options (``SSHFS_OPTIONS``) and why
-----------------------------------------------
- ``dir_cache=no``: sshfs's own cache of names and attributes (20 s by default) hides other
  hosts' renames, creates and deletes: a worker would keep claiming tokens that are long gone and
  miss new ones. Off, every lookup and listing asks the server.
- ``attr_timeout=0,entry_timeout=0``: the kernel's FUSE caches of attributes (mtime, size) and
  of name lookups (1 s by default); a lease judged from an mtime must see the current one.
- ``negative_timeout=0``: the kernel must not remember "this name does not exist", or a file
  another host just created stays invisible.
- (defaults kept: no ``kernel_cache``/``auto_cache``, so file contents are re-read on every open;
  no ``reconnect`` and no ``ServerAliveInterval``, so a cut link stalls the host's I/O instead of
  killing its mount; the TCP connection survives the cut and the stalled calls go through when the
  link is restored, which is exactly the "late commit" a network partition produces.)

Things to know about this setup (measured on Debian 12)
-------------------------------------------------------
- A cut link is modelled by setting both ends of the host's veth pair down. TCP keeps
  retransmitting with exponential backoff, so after an 8 s cut the stalled I/O resumed only ~5 s
  after the link came back. The harness sets ``net.ipv4.tcp_rto_max_ms=1000`` (Linux >= 6.15)
  inside its namespaces, so I/O resumes within about a second of ``restore_link()``, and
  ``tcp_retries2=120`` so that the connection survives cuts of a minute or more (with a 1 s
  maximum RTO the default 15 retries would give up after ~15 s, and the host's mount would die
  instead of stalling).
- Hosts share this machine's filesystem apart from their mount: a host command must only use
  paths under its mount point (``{mnt}``), or it bypasses the network filesystem. The test
  process itself plays the file server's local user (submitting, inspecting) through
  :attr:`MultiHost.export`. Hosts see whole-second mtimes (SFTP v3 carries seconds); the local
  view has nanoseconds.
- sshd runs with ``UsePAM no``: root's password field must not start with ``!`` (a locked
  account); ``*`` (no password, the Debian default for root in images) is fine.
- sshfs stamps mtimes of written files with the *server's* clock, but ``utime(path, None)``
  ("touch") through sshfs sends the *client's* current time (unlike NFS's SET_TO_SERVER_TIME).
  That is why ``faketime`` shifts the clock of the whole host command (sshfs and ssh included),
  not just of Python: a skewed host is skewed everywhere.
- libfaketime 0.9.10 (Debian 12) and Python 3.11 do not get along: with the monotonic clock faked,
  ``threading`` timeouts hang (sem_clockwait is not intercepted); with it not faked
  (``FAKETIME_DONT_FAKE_MONOTONIC=1``, used here: only the wall clock is shifted) ``time.sleep``
  fails with EINVAL (libfaketime issue 426: clock_nanosleep with TIMER_ABSTIME). For commands
  run with ``faketime=``, the harness puts a ``sitecustomize.py`` first on PYTHONPATH that
  replaces ``time.sleep`` with a select()-based sleep (:data:`FAKETIME_SITECUSTOMIZE`).
  Threads under libfaketime also switch slowly (the GIL's timed waits go through it): fine for
  a worker, too slow for CPU-bound threaded code.
"""

from __future__ import annotations

import contextlib
import os
import re
import secrets
import shlex
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import psutil
import pytest
from testutil import Proc, command_lines

TESTS_DIR = Path(__file__).resolve().parent
REPO_DIR = TESTS_DIR.parent

SSHFS_OPTIONS = "dir_cache=no,attr_timeout=0,entry_timeout=0,negative_timeout=0"
"""Mount options of every host's sshfs mount; see the module docstring for why."""

SSH_PORT = 2201
SUBNET = "10.231"
"""Host i (1-based) is 10.231.i.2 and reaches the server at 10.231.i.1, all inside namespaces."""

NS_PREFIX = "jtmh"
_NS_RE = re.compile(rf"^{NS_PREFIX}(\d+)x[0-9a-f]+-")

FAKETIME_ENV = {
    # Fake only the wall clock: a faked monotonic clock hangs Python's threading timeouts.
    "FAKETIME_DONT_FAKE_MONOTONIC": "1",
}

FAKETIME_SITECUSTOMIZE = """\
# Written by tests/multihost.py; on PYTHONPATH only for commands run under faketime.
# libfaketime 0.9.10 (Debian 12) with FAKETIME_DONT_FAKE_MONOTONIC=1 breaks Python >= 3.11's
# time.sleep (clock_nanosleep, TIMER_ABSTIME, monotonic clock: EINVAL; libfaketime issue 426).
# select() timeouts pass through libfaketime untouched, so sleep with select().
import select as _select
import time as _time


def _sleep(seconds):
    if seconds < 0:
        raise ValueError("sleep length must be non-negative")
    deadline = _time.monotonic() + seconds
    while True:
        left = deadline - _time.monotonic()
        if left <= 0:
            return
        _select.select([], [], [], left)


_time.sleep = _sleep
"""

_SBIN = "/usr/local/sbin:/usr/sbin:/sbin"

TCP_SYSCTLS = {"tcp_rto_max_ms": 1000, "tcp_retries2": 120}
"""Set inside every namespace of the harness (never on the machine itself). tcp_rto_max_ms
exists from Linux 6.15 on; without it the retransmission timer backs off up to 120 s and a
restored link can take that long to carry the stalled traffic."""


# -- prerequisites ----------------------------------------------------------------------------


def _unavailable(reason: str) -> None:
    """Skip, or fail when JOBTREE_REQUIRE_ALL=1 (CI runs every test)."""
    if os.environ.get("JOBTREE_REQUIRE_ALL") == "1":
        pytest.fail(f"multi-host test cannot run: {reason} (JOBTREE_REQUIRE_ALL=1)")
    pytest.skip(f"multi-host test cannot run: {reason}")


def _which(name: str) -> str | None:
    return shutil.which(name, path=os.environ.get("PATH", "") + ":" + _SBIN)


REQUIRED_TOOLS = {
    "ip": "iproute2",
    "unshare": "util-linux",
    "mountpoint": "util-linux",
    "sshd": "openssh-server",
    "ssh": "openssh-client",
    "ssh-keygen": "openssh-client",
    "sshfs": "sshfs",
    "fusermount3": "fuse3",
}


def missing_prerequisites(faketime: bool = False) -> list[str]:
    """What this machine lacks for the harness (empty when it can run)."""
    problems = []
    if sys.platform != "linux":
        return ["not Linux"]
    if os.geteuid() != 0:
        problems.append("not root (network namespaces and mounts need root)")
    tools = dict(REQUIRED_TOOLS)
    if faketime:
        tools["faketime"] = "faketime"
    missing = sorted({pkg for tool, pkg in tools.items() if _which(tool) is None})
    if missing:
        problems.append(f"missing Debian packages: {' '.join(missing)}")
    if not os.path.exists("/dev/fuse"):
        problems.append("no /dev/fuse (FUSE unavailable)")
    return problems


def require(faketime: bool = False) -> None:
    """Skip (or fail under JOBTREE_REQUIRE_ALL=1) unless the harness can run here."""
    problems = missing_prerequisites(faketime)
    if problems:
        _unavailable("; ".join(problems))


# -- small helpers ----------------------------------------------------------------------------


def _run(
    cmd: Sequence[str], check: bool = True, timeout: float = 30.0
) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        list(cmd), capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL
    )
    if check and result.returncode != 0:
        raise RuntimeError(
            f"command failed ({result.returncode}): {shlex.join(cmd)}\n{result.stderr.strip()}"
        )
    return result


def list_namespaces() -> list[str]:
    out = _run(["ip", "netns", "list"], check=False).stdout
    return [line.split()[0] for line in out.splitlines() if line.strip()]


def namespace_pids(ns: str) -> list[int]:
    out = _run(["ip", "netns", "pids", ns], check=False).stdout
    return [int(p) for p in out.split() if p.isdigit()]


def _kill_namespace_processes(ns: str, timeout: float = 10.0) -> list[int]:
    """SIGKILL every process in network namespace *ns*; return those still there afterwards."""
    deadline = time.monotonic() + timeout
    while True:
        pids = [p for p in namespace_pids(ns) if p != os.getpid()]
        if not pids or time.monotonic() > deadline:
            return pids
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        time.sleep(0.05)


def cleanup_stale_namespaces() -> None:
    """Delete namespaces that an earlier, crashed test run of this harness left behind
    (their creating process is gone). Namespaces of live runs are left alone."""
    for ns in list_namespaces():
        m = _NS_RE.match(ns)
        if m and not psutil.pid_exists(int(m.group(1))):
            _kill_namespace_processes(ns)
            _run(["ip", "netns", "del", ns], check=False)


# -- processes on hosts -----------------------------------------------------------------------


class HostProcess(Proc):
    """A command running on a host, in its own session; output in files under ``logs/``."""

    def __init__(self, host: Host, name: str, argv: list[str], env: dict[str, str]) -> None:
        self.host = host
        super().__init__(host.cluster.logs, name, argv, env)

    def describe(self) -> str:
        return f"{self.name} on {self.host.name} (pid {self.pid})"

    @property
    def returncode(self) -> int | None:
        return self.poll()

    def __repr__(self) -> str:
        return f"<HostProcess {self.name} on {self.host.name} pid {self.pid}>"


# The script a host runs: own hostname, mount, the command, unmount. Positional parameters:
# $1 hostname, $2 sshfs source, $3 mount point, $4 sshfs options, $5 ssh config, $6 faketime spec
# ("" for none), then the command. sshfs runs in the foreground as a background job of this
# shell, so it stays in the command's session and dies with it.
_HOST_SCRIPT = r"""
set -u
name=$1 src=$2 mnt=$3 opts=$4 cfg=$5 fake=$6
shift 6
hostname "$name"
mkdir -p "$mnt"
ft=()
if [ -n "$fake" ]; then ft=(faketime -f "$fake"); fi
"${ft[@]}" sshfs -f -F "$cfg" -o "$opts" "$src" "$mnt" &
sshfs_pid=$!
for _ in $(seq 200); do
    mountpoint -q "$mnt" && break
    if ! kill -0 "$sshfs_pid" 2>/dev/null; then
        echo "multihost: sshfs exited before mounting $src on $mnt" >&2; exit 97
    fi
    sleep 0.05
done
if ! mountpoint -q "$mnt"; then
    echo "multihost: $src not mounted on $mnt after 10 s" >&2; kill "$sshfs_pid"; exit 97
fi
"${ft[@]}" "$@"
rc=$?
fusermount3 -u "$mnt" 2>/dev/null || umount -l "$mnt"
wait "$sshfs_pid"
exit $rc
"""


class Host:
    """One host: a network namespace with a link to the server and its own hostname."""

    def __init__(self, cluster: MultiHost, index: int) -> None:
        self.cluster = cluster
        self.index = index  # 1-based
        self.name = f"host{index}"
        self.ns = f"{cluster.prefix}-{self.name}"
        self.address = f"{SUBNET}.{index}.2"
        self.server_address = f"{SUBNET}.{index}.1"
        self.server_link = f"h{index}"  # the server namespace's end of the veth pair
        self.link = "veth0"  # this host's end
        self.mountpoint = cluster.base / "mnt" / self.name
        self._count = 0
        self.link_up = True

    def __repr__(self) -> str:
        return f"<Host {self.name} {self.address}>"

    def exec(
        self, argv: Sequence[str], timeout: float = 30.0, check: bool = True
    ) -> subprocess.CompletedProcess[str]:
        """Run a short command in this host's network namespace (no mount, no hostname)."""
        return _run(["ip", "netns", "exec", self.ns, *argv], check=check, timeout=timeout)

    def reachable(self, timeout: float = 2.0) -> bool:
        """Whether a TCP connection from this host to the server's sshd succeeds (no ping here)."""
        script = f"exec 3<>/dev/tcp/{self.server_address}/{SSH_PORT}"
        try:
            r = self.exec(
                ["timeout", str(timeout), "bash", "-c", script], check=False, timeout=timeout + 5
            )
        except subprocess.TimeoutExpired:
            return False
        return r.returncode == 0

    def run(
        self,
        argv: Sequence[str | os.PathLike[str]],
        *,
        env: dict[str, str] | None = None,
        faketime: str | None = None,
        name: str | None = None,
    ) -> HostProcess:
        """Start *argv* on this host with the export mounted at :attr:`mountpoint`.

        ``{mnt}`` in an argument is replaced by the mount point. *env* is added to the
        environment (which already has tests/ and the repository on PYTHONPATH). *faketime*
        (e.g. ``"+1h"``) shifts this host's wall clock, for sshfs and the command alike.
        """
        if faketime is not None and _which("faketime") is None:
            _unavailable("faketime is not installed (Debian package faketime)")
        self._count += 1
        name = name or f"{self.name}.{self._count}"
        args = [str(a).replace("{mnt}", str(self.mountpoint)) for a in argv]
        full_env = self.cluster.base_env()
        if faketime is not None:
            full_env.update(FAKETIME_ENV)
            site = str(self.cluster.faketime_site)
            full_env["PYTHONPATH"] = os.pathsep.join([site, full_env["PYTHONPATH"]])
        if env:
            full_env.update(env)
        cmd = [
            "ip", "netns", "exec", self.ns,
            "unshare", "--mount", "--uts", "--propagation", "private",
            "bash", "-c", _HOST_SCRIPT, "multihost-" + self.name,
            self.name,
            f"root@{self.server_address}:{self.cluster.export}",
            str(self.mountpoint),
            SSHFS_OPTIONS,
            str(self.cluster.ssh_config),
            faketime or "",
            *args,
        ]  # fmt: skip
        proc = HostProcess(self, name, cmd, full_env)
        self.cluster._processes.append(proc)
        return proc

    def cut_link(self) -> None:
        """Cut this host off the network: both ends of its veth pair go down. Its sshfs
        stalls (the connection is not closed); see :meth:`restore_link`."""
        _run(["ip", "-n", self.cluster.server_ns, "link", "set", self.server_link, "down"])
        _run(["ip", "-n", self.ns, "link", "set", self.link, "down"])
        self.link_up = False

    def restore_link(self, wait: float = 10.0) -> None:
        """Bring the link back up and wait until the server is reachable again."""
        _run(["ip", "-n", self.cluster.server_ns, "link", "set", self.server_link, "up"])
        _run(["ip", "-n", self.ns, "link", "set", self.link, "up"])
        self.link_up = True
        deadline = time.monotonic() + wait
        while not self.reachable(timeout=1.0):
            if time.monotonic() > deadline:
                raise AssertionError(
                    f"{self.name}: server unreachable {wait} s after restore_link()"
                )
            time.sleep(0.1)


# -- the cluster --------------------------------------------------------------------------------


class MultiHost:
    """A server namespace running sshd plus *n_hosts* host namespaces; a context manager.

    :attr:`export` is the directory (on this machine's disk) that every host mounts; put the queue
    inside it. :attr:`hosts` are the hosts, ``hosts[0]`` is ``host1``. Logs (sshd, every host
    command) are in :attr:`logs`.
    """

    _counter = 0

    def __init__(
        self, base: str | os.PathLike[str], n_hosts: int = 2, *, faketime: bool = False
    ) -> None:
        if not 1 <= n_hosts <= 250:
            raise ValueError("n_hosts must be between 1 and 250")
        require(faketime=faketime)
        MultiHost._counter += 1
        self.base = Path(base).resolve()
        self.prefix = f"{NS_PREFIX}{os.getpid()}x{MultiHost._counter:x}{secrets.token_hex(2)}"
        self.server_ns = f"{self.prefix}-srv"
        self.export = self.base / "export"
        self.logs = self.base / "logs"
        self.sshdir = self.base / "ssh"
        self.ssh_config = self.sshdir / "ssh_config"
        self.sshd_log = self.logs / "sshd.log"
        self.faketime_site = self.base / "faketime-site"
        self.hosts = [Host(self, i) for i in range(1, n_hosts + 1)]
        self._namespaces: list[str] = []
        self._processes: list[HostProcess] = []
        self._sshd: subprocess.Popen[bytes] | None = None
        self._started = False

    # context manager

    def __enter__(self) -> MultiHost:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def base_env(self) -> dict[str, str]:
        env = dict(os.environ)
        paths = [str(TESTS_DIR), str(REPO_DIR)]
        if env.get("PYTHONPATH"):
            paths.append(env["PYTHONPATH"])
        env["PYTHONPATH"] = os.pathsep.join(paths)
        env["PYTHONUNBUFFERED"] = "1"
        env["PATH"] = env.get("PATH", "/usr/bin:/bin") + ":" + _SBIN
        for key in ("LD_PRELOAD", "FAKETIME", *FAKETIME_ENV):
            env.pop(key, None)
        return env

    def start(self) -> None:
        cleanup_stale_namespaces()
        for d in (self.export, self.logs, self.sshdir, self.base / "mnt", self.faketime_site):
            d.mkdir(parents=True, exist_ok=True)
        (self.faketime_site / "sitecustomize.py").write_text(FAKETIME_SITECUSTOMIZE)
        self._started = True
        try:
            self._make_network()
            self._make_keys()
            self._start_sshd()
            for h in self.hosts:
                deadline = time.monotonic() + 10
                while not h.reachable(timeout=1.0):
                    if self._sshd is not None and self._sshd.poll() is not None:
                        raise RuntimeError(
                            f"sshd exited ({self._sshd.returncode}):\n{self._sshd_text()}"
                        )
                    if time.monotonic() > deadline:
                        raise RuntimeError(
                            f"{h.name} cannot reach sshd at {h.server_address}:{SSH_PORT}:\n{self._sshd_text()}"
                        )
                    time.sleep(0.05)
        except BaseException:
            self.close()
            raise

    def _add_ns(self, ns: str) -> None:
        _run(["ip", "netns", "add", ns])
        self._namespaces.append(ns)
        _run(["ip", "-n", ns, "link", "set", "lo", "up"])
        # TCP tuning of this namespace only (see "Things to know" above): retransmit at least
        # every second, so a restored link carries the stalled sshfs traffic at once, and give
        # up on a silent peer only after minutes, so a cut link stalls instead of breaking.
        script = ""
        for key, value in TCP_SYSCTLS.items():
            f = f"/proc/sys/net/ipv4/{key}"
            script += f"if [ -w {f} ]; then echo {value} > {f}; fi\n"
        _run(["ip", "netns", "exec", ns, "bash", "-c", script])

    def _make_network(self) -> None:
        try:
            self._add_ns(self.server_ns)
        except RuntimeError as exc:
            _unavailable(f"cannot create a network namespace ({exc})")
        for h in self.hosts:
            self._add_ns(h.ns)
            # Created directly inside the namespaces: nothing ever appears in the root namespace.
            _run(["ip", "-n", self.server_ns, "link", "add", h.server_link, "type", "veth",
                  "peer", "name", h.link, "netns", h.ns])  # fmt: skip
            _run(
                [
                    "ip",
                    "-n",
                    self.server_ns,
                    "addr",
                    "add",
                    f"{h.server_address}/24",
                    "dev",
                    h.server_link,
                ]
            )
            _run(["ip", "-n", h.ns, "addr", "add", f"{h.address}/24", "dev", h.link])
            _run(["ip", "-n", self.server_ns, "link", "set", h.server_link, "up"])
            _run(["ip", "-n", h.ns, "link", "set", h.link, "up"])

    def _make_keys(self) -> None:
        d = self.sshdir
        for key, comment in (
            ("host_key", "jobtree-test-host"),
            ("client_key", "jobtree-test-client"),
        ):
            _run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", comment, "-f", str(d / key)])
        (d / "authorized_keys").write_text((d / "client_key.pub").read_text())
        host_pub = (d / "host_key.pub").read_text().split()
        known = "".join(
            f"[{h.server_address}]:{SSH_PORT} {host_pub[0]} {host_pub[1]}\n" for h in self.hosts
        )
        (d / "known_hosts").write_text(known)
        listen = "".join(f"ListenAddress {h.server_address}:{SSH_PORT}\n" for h in self.hosts)
        (d / "sshd_config").write_text(
            f"""# sshd of the jobtree multi-host tests: only inside namespace {self.server_ns}
{listen}HostKey {d / "host_key"}
PidFile none
AuthorizedKeysFile {d / "authorized_keys"}
AuthenticationMethods publickey
PubkeyAuthentication yes
PasswordAuthentication no
KbdInteractiveAuthentication no
PermitRootLogin prohibit-password
AllowUsers root
StrictModes no
UsePAM no
UseDNS no
PrintMotd no
PermitTTY no
AllowTcpForwarding no
X11Forwarding no
ClientAliveInterval 0
MaxStartups 100
MaxSessions 100
LogLevel INFO
Subsystem sftp internal-sftp
"""
        )
        self.ssh_config.write_text(
            f"""# ssh client settings of the jobtree multi-host tests (passed to sshfs with -F)
Host *
    Port {SSH_PORT}
    User root
    IdentityFile {d / "client_key"}
    IdentitiesOnly yes
    UserKnownHostsFile {d / "known_hosts"}
    GlobalKnownHostsFile /dev/null
    StrictHostKeyChecking yes
    BatchMode yes
    ConnectTimeout 10
    ServerAliveInterval 0
    LogLevel ERROR
"""
        )
        for f in ("host_key", "client_key"):
            os.chmod(d / f, 0o600)

    def _start_sshd(self) -> None:
        sshd = _which("sshd")
        assert sshd is not None
        os.makedirs("/run/sshd", mode=0o755, exist_ok=True)  # its privilege separation directory
        with self.sshd_log.open("wb") as log:
            self._sshd = subprocess.Popen(
                [
                    "ip",
                    "netns",
                    "exec",
                    self.server_ns,
                    sshd,
                    "-D",
                    "-e",
                    "-f",
                    str(self.sshdir / "sshd_config"),
                ],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=log,
                start_new_session=True,
            )

    def _sshd_text(self) -> str:
        try:
            return self.sshd_log.read_text(errors="replace")[-3000:]
        except OSError:
            return ""

    def close(self) -> None:
        """Stop everything this cluster started, unmount, delete the namespaces; verify."""
        if not self._started:
            return
        self._started = False
        problems = []
        for p in self._processes:
            p.kill()
        # Whatever else runs in a host namespace (an sshfs, a grandchild): kill it too.
        for h in self.hosts:
            if h.ns in self._namespaces:
                left = _kill_namespace_processes(h.ns)
                if left:
                    problems.append(f"processes {left} survive in {h.ns}")
        if self._sshd is not None:
            if self._sshd.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self._sshd.pid, signal.SIGKILL)
            self._sshd.wait()
        if self.server_ns in self._namespaces:
            left = _kill_namespace_processes(self.server_ns)
            if left:
                problems.append(f"processes {left} survive in {self.server_ns}")
        for ns in reversed(self._namespaces):
            r = _run(["ip", "netns", "del", ns], check=False)
            if r.returncode != 0:
                problems.append(f"ip netns del {ns}: {r.stderr.strip()}")
        self._namespaces.clear()
        leftovers = [ns for ns in list_namespaces() if ns.startswith(self.prefix + "-")]
        if leftovers:
            problems.append(f"namespaces left: {leftovers}")
        mounts = self.mounts_left()
        if mounts:
            problems.append(f"mounts left: {mounts}")
        deadline = time.monotonic() + 5
        while (left := self.processes_left()) and time.monotonic() < deadline:
            time.sleep(0.05)  # killed processes may take a moment to vanish from /proc
        if left:
            problems.append(f"processes left: {left}")
        if problems:
            raise RuntimeError("multihost cleanup: " + "; ".join(problems))

    def report(self, lines: int = 40) -> str:
        """What happened, for a failed test: every host command's exit code and the end of its
        stderr, the end of sshd's log, and every index token of every queue in the export
        (name, size, mtime, content of small files)."""
        out = []
        for p in self._processes:
            tail = p.stderr.splitlines()[-lines:]
            out.append(f"== {p.name} on {p.host.name}: exit {p.returncode}; stderr (end):")
            out.extend(tail)
        sshd = self._sshd_text().splitlines()[-lines // 2 :]
        out.append("== sshd log (end):")
        out.extend(sshd)
        out.append(f"== index tokens under {self.export} (server time now {time.time():.3f}):")
        for index in sorted(self.export.rglob("_index")):
            for f in sorted(index.glob("*/*")):
                try:
                    st = f.lstat()
                    content = (
                        f.read_bytes()[:300].decode(errors="replace").strip()
                        if st.st_size < 4096
                        else "..."
                    )
                except OSError as exc:
                    out.append(f"{f.relative_to(self.export)}: {exc}")
                    continue
                out.append(f"{f.relative_to(self.export)} mtime {st.st_mtime:.3f} {content}")
        return "\n".join(out)

    def processes_left(self) -> list[int]:
        """Pids of processes (other than this one) whose command line names :attr:`base` or
        that run in one of this cluster's namespaces."""
        mine = str(self.base)
        found = [pid for pid, argv in command_lines().items() if any(mine in a for a in argv)]
        for ns in list_namespaces():
            if ns.startswith(self.prefix + "-"):
                found.extend(namespace_pids(ns))
        return sorted(set(found))

    def mounts_left(self) -> list[str]:
        """Mount points under :attr:`base` visible in this process's mount namespace."""
        found = []
        with open("/proc/self/mountinfo") as f:
            for line in f:
                mnt = line.split()[4]
                if mnt.startswith(str(self.base)):
                    found.append(mnt)
        return found


def cluster_fixture(n_hosts: int = 2, *, faketime: bool = False) -> Any:
    """A pytest fixture that yields a started :class:`MultiHost` in ``tmp_path / "cluster"``.

    ``cluster = cluster_fixture(n_hosts=2)`` at module level makes a fixture named ``cluster``.
    When the test failed, :meth:`MultiHost.report` is printed at teardown (pytest shows it under
    "Captured stdout teardown").
    """

    @pytest.fixture
    def _cluster(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[MultiHost]:
        failed_before = request.session.testsfailed
        with MultiHost(tmp_path / "cluster", n_hosts, faketime=faketime) as c:
            yield c
            if request.session.testsfailed != failed_before:
                print(c.report())

    return _cluster
