"""runjournal: local-first, async-first, event-sourced experiment tracking."""

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
from runjournal.model import (
    ArtifactRef,
    Experiment,
    FilterOp,
    MetricPoint,
    ParamFilter,
    Run,
    RunStatus,
)
from runjournal.tracker import Tracker
from runjournal.writer import DroppedEventsWarning, WriterStats

__all__ = [
    "ArtifactNotFound",
    "ArtifactRef",
    "CorruptLogFile",
    "DrainTimeout",
    "DroppedEventsWarning",
    "Experiment",
    "ExperimentNotFound",
    "FilterOp",
    "InvalidStateError",
    "MetricPoint",
    "NotARunJournalDatabase",
    "NotFoundError",
    "ParamFilter",
    "RejectedWrites",
    "Run",
    "RunJournalError",
    "RunNotFound",
    "RunStatus",
    "StoreError",
    "StoreFull",
    "StoreLocked",
    "StoreReadOnly",
    "Tracker",
    "WriterStats",
]
