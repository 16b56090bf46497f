"""runjournal: local-first, async-first, event-sourced experiment tracking.

The shortest paths: ``async with tracker.run(...) as run`` (:class:`Tracker`),
``with SyncTracker.open(...)`` for synchronous code, and ``rj.init / rj.log /
rj.finish`` for one run per process.
"""

from runjournal._active import finish, init, log, log_artifact
from runjournal.context import ContextCaptureWarning
from runjournal.errors import (
    ArtifactNotFound,
    CorruptLogFile,
    DrainTimeout,
    ExperimentNotFound,
    InvalidStateError,
    NotARunJournalDatabase,
    NotFoundError,
    RejectedWrites,
    RunJournalError,
    RunNotFound,
    StoreError,
    StoreFull,
    StoreLocked,
    StoreReadOnly,
)
from runjournal.filtering import RunPage
from runjournal.model import (
    ArtifactRef,
    Experiment,
    FilterOp,
    MetricArrays,
    MetricPoint,
    ParamFilter,
    Run,
    RunStatus,
    RunView,
)
from runjournal.run import RunHandle
from runjournal.sync import SyncRun, SyncTracker
from runjournal.tracker import Tracker
from runjournal.writer import DroppedEventsWarning, WriterStats

__all__ = [
    "ArtifactNotFound",
    "ArtifactRef",
    "ContextCaptureWarning",
    "CorruptLogFile",
    "DrainTimeout",
    "DroppedEventsWarning",
    "Experiment",
    "ExperimentNotFound",
    "FilterOp",
    "InvalidStateError",
    "MetricArrays",
    "MetricPoint",
    "NotARunJournalDatabase",
    "NotFoundError",
    "ParamFilter",
    "RejectedWrites",
    "Run",
    "RunHandle",
    "RunJournalError",
    "RunNotFound",
    "RunPage",
    "RunStatus",
    "RunView",
    "StoreError",
    "StoreFull",
    "StoreLocked",
    "StoreReadOnly",
    "SyncRun",
    "SyncTracker",
    "Tracker",
    "WriterStats",
    "finish",
    "init",
    "log",
    "log_artifact",
]
