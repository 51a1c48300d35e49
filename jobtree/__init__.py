"""jobtree: run trees of jobs through a shared directory, with no server and no database.

The API follows cgkit's ``jobqueue`` module::

    q = jobtree.createJobQueue("/mnt/farm/queue")
    with q.createJob("mypkg.procs:Encode", label="movie") as root:
        root.createJob("mypkg.procs:Render", label="frames 1-10", first=1, last=10)
    while q.runNextAvailableJob():
        pass
"""

from .check import Problem
from .errors import (
    CorruptJob,
    DependencyCycleError,
    InvalidSetting,
    JobNotFound,
    JobRunningError,
    JobTreeError,
    ProcNotFound,
    QueueExists,
    QueueNotFound,
    QueueReadOnly,
    QueueVersionError,
    SubmissionError,
)
from .handle import JobHandle
from .host import WorkerInfo
from .proc import JobLost, JobProc, RetryLater, WorkerShutdown
from .queue import JobQueue, createJobQueue
from .security import SignatureError
from .state import IdleReason, JobState
from .submit import Job, JobRoot

__version__ = "0.1.0"

__all__ = [
    "CorruptJob",
    "DependencyCycleError",
    "IdleReason",
    "InvalidSetting",
    "Job",
    "JobHandle",
    "JobLost",
    "JobNotFound",
    "JobProc",
    "JobQueue",
    "JobRoot",
    "JobRunningError",
    "JobState",
    "JobTreeError",
    "Problem",
    "ProcNotFound",
    "QueueExists",
    "QueueNotFound",
    "QueueReadOnly",
    "QueueVersionError",
    "RetryLater",
    "SignatureError",
    "SubmissionError",
    "WorkerInfo",
    "WorkerShutdown",
    "createJobQueue",
]
