"""What a worker offers: host, OS, cores, memory, GPU, pools and tags (requirements match these)."""

from __future__ import annotations

import os
import platform
import shutil
import socket
import subprocess
from dataclasses import asdict, dataclass, field
from typing import Any

POOL_ENV = "JOBTREE_POOL"
"""Comma-separated pools this host's workers belong to (``--pool`` overrides)."""
TAGS_ENV = "JOBTREE_TAGS"


def _ramGB() -> float:
    try:
        pages = os.sysconf("SC_PHYS_PAGES")
        size = os.sysconf("SC_PAGE_SIZE")
        return round(pages * size / 2**30, 1)
    except (ValueError, OSError, AttributeError):
        return 0.0


def _gpu() -> str | None:
    """The first NVIDIA GPU's name if nvidia-smi answers quickly; None otherwise."""
    exe = shutil.which("nvidia-smi")
    if exe is None:
        return None
    try:
        out = subprocess.run(
            [exe, "--query-gpu=name", "--format=csv,noheader"],
            capture_output=True,
            text=True,
            timeout=3,
            check=False,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    return out.splitlines()[0] if out else None


def _split(value: str | None) -> list[str]:
    return [p.strip() for p in (value or "").split(",") if p.strip()]


@dataclass(frozen=True)
class WorkerInfo:
    """The capabilities a worker advertises; :func:`jobtree.requirements` are matched against it."""

    host: str = field(default_factory=socket.gethostname)
    os: str = field(default_factory=lambda: platform.system().lower())
    cores: int = field(default_factory=lambda: os.cpu_count() or 1)
    ramGB: float = field(default_factory=_ramGB)
    gpu: str | None = None
    pools: tuple[str, ...] = ()
    tags: tuple[str, ...] = ()

    @classmethod
    def detect(
        cls,
        pools: list[str] | tuple[str, ...] | None = None,
        tags: list[str] | tuple[str, ...] | None = None,
        gpu: bool = True,
    ) -> WorkerInfo:
        """This machine; pools and tags from the arguments, else $JOBTREE_POOL / $JOBTREE_TAGS."""
        return cls(
            gpu=_gpu() if gpu else None,
            pools=tuple(pools) if pools is not None else tuple(_split(os.environ.get(POOL_ENV))),
            tags=tuple(tags) if tags is not None else tuple(_split(os.environ.get(TAGS_ENV))),
        )

    def asDict(self) -> dict[str, Any]:
        d = asdict(self)
        d["pools"], d["tags"] = list(self.pools), list(self.tags)
        return d


def unmet(worker: WorkerInfo, requires: dict[str, Any] | None) -> list[str]:
    """The requirements *worker* does not satisfy, as short phrases ([] when it can run the job)."""
    if not requires:
        return []
    out = []
    if "os" in requires and worker.os != requires["os"]:
        out.append(f"os {requires['os']} (this is {worker.os})")
    if "minRamGB" in requires and worker.ramGB < requires["minRamGB"]:
        out.append(f"{requires['minRamGB']} GB RAM (has {worker.ramGB})")
    if "minCores" in requires and worker.cores < requires["minCores"]:
        out.append(f"{requires['minCores']} cores (has {worker.cores})")
    pools = requires.get("pools") or []
    if pools and not set(pools) & set(worker.pools):
        out.append(f"a pool of {', '.join(pools)} (in {', '.join(worker.pools) or 'no pool'})")
    missing = [t for t in requires.get("tags") or [] if t not in worker.tags]
    if missing:
        out.append(f"tags {', '.join(missing)}")
    if "host" in requires and worker.host != requires["host"]:
        out.append(f"host {requires['host']} (this is {worker.host})")
    return out
