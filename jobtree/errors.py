"""The error hierarchy. Every error also subclasses the matching builtin, so callers can catch either.

Every message names the queue, job or path it is about and, where it can, says what to do.
"""

from __future__ import annotations


class JobTreeError(Exception):
    """Base class of every error jobtree raises on purpose."""


class QueueNotFound(JobTreeError, LookupError):
    """The location is not a jobtree queue."""


class QueueVersionError(JobTreeError, RuntimeError):
    """The queue was written by a newer jobtree whose format this version cannot read."""


class QueueExists(JobTreeError, FileExistsError):
    """createJobQueue was pointed at a directory that is already a queue or is not empty."""


class InvalidSetting(JobTreeError, ValueError):
    """An unknown queue setting or job option, or a value of the wrong type."""


class CorruptJob(JobTreeError, ValueError):
    """A job file on disk cannot be read (truncated, empty, not JSON, wrong shape)."""


class ProcNotFound(JobTreeError, LookupError):
    """A job type cannot be resolved to a JobProc class."""


class SubmissionError(JobTreeError, ValueError):
    """A job could not be submitted (its procedure rejected the parameters, ...)."""


class DependencyCycleError(JobTreeError, ValueError):
    """The jobs of a root depend on each other in a cycle."""


class JobRunningError(JobTreeError, RuntimeError):
    """The operation is refused because a job is running."""


class JobNotFound(JobTreeError, LookupError):
    """A job location does not exist in the queue (deleted, or never activated)."""


class QueueReadOnly(JobTreeError, PermissionError):
    """This process cannot write to the queue (read-only mount or missing permissions)."""
