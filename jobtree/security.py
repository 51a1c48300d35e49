"""What a queue accepts: allowed procedures, signed jobs, group-shared directories.

Write access to a queue means running code on its workers (a command job runs anything), so a
queue can narrow what its workers will run. Reading a queue never imports procedure code.
"""

from __future__ import annotations

import fnmatch
import hashlib
import hmac
import json
import os
import stat
from collections.abc import Mapping
from typing import Any

from .errors import JobTreeError, SubmissionError

KEY_ENV = "JOBTREE_KEY_FILE"
SIGNATURE_FIELD = "signature"


class SignatureError(JobTreeError, PermissionError):
    """A job of a queue that requires signed jobs is unsigned, altered, or no key is available."""


class Policy:
    """The security settings of one queue, as seen by one process (with its key, if any)."""

    def __init__(self, location: str, settings: Mapping[str, Any], keyFile: str | None) -> None:
        self.location = location
        self.allowed: list[str] | None = settings.get("allowedProcs")
        self.signed = bool(settings.get("signedJobs", False))
        self.shared = bool(settings.get("shared", False))
        self.keyFile = keyFile if keyFile is not None else os.environ.get(KEY_ENV)
        self._key: bytes | None = None

    def checkType(self, jobType: str, where: str) -> None:
        if self.allowed is not None and not any(
            fnmatch.fnmatchcase(jobType, p) for p in self.allowed
        ):
            raise SubmissionError(
                f"{where}: job type {jobType!r} is not allowed in queue {self.location} "
                f"(allowedProcs: {', '.join(self.allowed) or 'none'})"
            )

    def key(self) -> bytes:
        if self._key is None:
            if not self.keyFile:
                raise SignatureError(
                    f"queue {self.location} requires signed jobs, but no key file was given; pass "
                    f"keyFile= to JobQueue or set {KEY_ENV}"
                )
            try:
                st = os.stat(self.keyFile)
                with open(self.keyFile, "rb") as f:
                    key = f.read().strip()
            except OSError as exc:
                raise SignatureError(f"cannot read the key file {self.keyFile}: {exc}") from exc
            if st.st_mode & stat.S_IROTH:
                raise SignatureError(
                    f"key file {self.keyFile} is readable by everyone; `chmod o-r` it (only "
                    "submitters and workers may read it)"
                )
            if len(key) < 16:
                raise SignatureError(
                    f"key file {self.keyFile} holds under 16 bytes; use a longer key"
                )
            self._key = key
        return self._key

    def signature(self, rootId: str, path: str, spec: Mapping[str, Any]) -> str:
        """HMAC-SHA256 over what decides the code a job runs: its place, type and parameters."""
        payload = json.dumps(
            {"root": rootId, "path": path, "jobType": spec["jobType"], "params": spec["params"]},
            sort_keys=True,
            separators=(",", ":"),
            ensure_ascii=True,
        ).encode()
        return hmac.new(self.key(), payload, hashlib.sha256).hexdigest()

    def verify(self, rootId: str, path: str, spec: Mapping[str, Any], where: str) -> None:
        if self.allowed is not None:
            jobType = str(spec.get("jobType"))
            if not any(fnmatch.fnmatchcase(jobType, p) for p in self.allowed):
                raise SignatureError(
                    f"{where}: job type {jobType!r} is not in allowedProcs; refused"
                )
        if not self.signed:
            return
        given = spec.get(SIGNATURE_FIELD)
        if not isinstance(given, str):
            raise SignatureError(
                f"{where}: the job is not signed; this queue runs only signed jobs"
            )
        if not hmac.compare_digest(given, self.signature(rootId, path, spec)):
            raise SignatureError(
                f"{where}: the job's signature does not match: it was altered or signed with another key; refused"
            )


def makeDir(path: str, shared: bool) -> None:
    """mkdir; in a shared queue group-writable with the setgid bit (whatever the umask)."""
    os.mkdir(path)
    if shared:
        os.chmod(path, 0o2775)
