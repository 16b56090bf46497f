"""The store protocol: an append-only journal plus the projections derived from it.

A store is written by exactly one writer per process, from the writer's own
thread, through the blocking :meth:`Store.append`. That keeps the writer free of
any event loop (see ``runjournal.writer``). Everything a user reads goes through
the ``async`` query methods, which never block the caller's event loop.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, Protocol

import msgspec

from runjournal._forks import Participant
from runjournal.events import BlobStored, Event
from runjournal.model import ArtifactRef, Experiment, MetricBucket, MetricPoint, ParamFilter, Run
from runjournal.projection import RunRow
from runjournal.rollups import Aggregate

__all__ = [
    "AppendResult",
    "JournalEntry",
    "NewEntry",
    "PurgeResult",
    "Queries",
    "RawEntry",
    "Store",
    "recorded_at",
]


class NewEntry(msgspec.Struct, frozen=True):
    """An event on its way into the journal, identified by ``(source, seq)``."""

    source: str
    seq: int
    event: Event
    recorded_at: float


class JournalEntry(msgspec.Struct, frozen=True):
    """One committed journal entry at its store-local ``position`` (1, 2, 3, ...)."""

    position: int
    source: str
    seq: int
    recorded_at: float
    event: Event


class RawEntry(msgspec.Struct, frozen=True):
    """A committed journal entry as stored: its body undecoded, at its event ``version``."""

    position: int
    source: str
    seq: int
    recorded_at: float
    version: int
    body: bytes


class AppendResult(msgspec.Struct, frozen=True):
    """What :meth:`Store.append` did with a batch."""

    appended: int
    duplicates: int
    rejected: list[tuple[int, str]]
    """``(index into the batch, reason)`` for each entry left out."""
    last_position: int


class PurgeResult(msgspec.Struct, frozen=True):
    """What :meth:`Store.purge` erased."""

    runs: list[str]
    """The deleted runs whose entries were erased (those of deleted experiments included)."""
    experiments: list[str]
    """The deleted experiments whose entries were erased."""
    entries: int
    """Journal entries erased."""
    blobs: int
    """Artifact contents dropped, because no remaining entry refers to them."""
    position: int | None
    """Where the ``ids.purged`` entry that keeps the tombstones went (None: nothing erased)."""
    size_before: int | None
    """Bytes the storage took before (database file and its WAL); None in memory."""
    size_after: int | None
    """Bytes it takes after compacting; None in memory."""
    compacted: bool
    """False if compacting could not run (another process held the database); purge again."""


def recorded_at(event: Event) -> float:
    """The time an event was accepted by its tracker."""
    at = getattr(event, "at", None)
    return float(at) if at is not None else float(getattr(event, "timestamp"))  # noqa: B009


class Queries(Protocol):
    """The read API that every store, and every view of a past state, answers."""

    async def get_experiment(self, experiment_id: str) -> Experiment: ...
    async def list_experiments(self) -> list[Experiment]: ...
    async def find_experiment(self, name: str) -> Experiment | None:
        """The oldest live experiment called ``name``, or None."""

    async def is_deleted(self, entity_id: str) -> bool:
        """True if an experiment or run with this id was deleted (its tombstone is kept)."""

    async def get_run(self, run_id: str) -> Run: ...
    async def list_runs(self, experiment_id: str) -> list[Run]: ...
    async def get_params(self, run_id: str) -> dict[str, Any]: ...
    async def get_metrics(self, run_id: str, key: str) -> list[MetricPoint]: ...
    async def get_metrics_between(
        self, run_id: str, key: str, start: int | None, end: int | None
    ) -> list[MetricPoint]:
        """The points with step in ``[start, end]`` (None: unbounded), in get_metrics order."""

    async def get_metrics_downsampled(
        self, run_id: str, key: str, points: int, start: int | None, end: int | None
    ) -> list[MetricBucket]:
        """At most ``points`` buckets over the steps in ``[start, end]`` (``runjournal.rollups``)."""

    async def metric_summaries(
        self, run_ids: Sequence[str], keys: Sequence[str] | None = None
    ) -> dict[str, dict[str, MetricBucket]]:
        """Per live run of ``run_ids``, its whole-series summary per key (of ``keys``, or all).

        One read for a page of runs: the run table's metric columns. Unknown ids are left out.
        """

    async def list_metric_keys(self, run_id: str) -> list[str]: ...
    async def list_artifacts(self, run_id: str) -> list[ArtifactRef]: ...
    async def get_artifact_data(self, sha256: str) -> bytes: ...
    async def get_span_id(self, run_id: str) -> str | None: ...
    async def filter_runs(
        self, experiment_id: str | None, filters: Sequence[ParamFilter]
    ) -> list[Run]:
        """Runs (of one experiment, or of all) whose params match every filter."""


class Store(Queries, Participant, Protocol):
    """What every store does. One contract test suite runs against each implementation.

    A store is also a fork participant (``runjournal._forks``): it registers itself
    there before its first use, and its fork hooks hold its own threads out of the
    storage while the process forks, then drop in a forked child what the parent's
    threads held (locks, connections).
    """

    @property
    def read_only(self) -> bool:
        """True for a store opened read-only: every write raises ``StoreReadOnly``."""

    @property
    def spec(self) -> str:
        """Where this store lives, for people and export metadata (a path, or ``:memory:``)."""

    def reopener(self) -> Callable[[], Store]:
        """A picklable callable that opens this same storage again, in another process.

        Raises ``TypeError`` for a store that lives in this process only.
        """

    async def open(self) -> None:
        """Create or check the storage. Idempotent."""

    async def close(self) -> None:
        """Release connections. Idempotent."""

    def close_blocking(self) -> None:
        """Blocking, loop-free :meth:`close`, for the exit hooks. Idempotent."""

    @property
    def max_blob_bytes(self) -> int | None:
        """The largest artifact, in bytes, that this store can hold (None: no limit).

        ``Tracker.log_artifact`` refuses anything larger at the call, so that such
        an artifact never reaches the writer.
        """

    def limit_waits(self, deadline: float | None) -> None:
        """Give up waiting for another process's lock at this ``time.monotonic()`` moment.

        Draining sets it, so that closing never waits past its own timeout.
        """

    # -- writing: called from the writer thread, may block --------------------------------
    def append(self, entries: Sequence[NewEntry], blobs: Sequence[BlobStored] = ()) -> AppendResult:
        """Atomically store blobs, append entries and apply their projections.

        Entries whose ``(source, seq)`` is already in the journal are skipped as
        duplicates. Entries that contradict the state are left out of the
        journal and listed in ``rejected``. Raises a ``StoreError`` (and changes
        nothing) if the storage fails.
        """

    def lookup_run(self, run_id: str) -> RunRow | None:
        """Blocking lookup of a live run, for callers that cannot await."""

    def rebuild_blocking(self) -> None:
        """Blocking :meth:`rebuild`."""

    async def read_journal(self, after: int = 0, limit: int | None = None) -> list[JournalEntry]:
        """Committed entries with ``position > after``, in order."""

    async def read_journal_raw(self, after: int = 0, limit: int | None = None) -> list[RawEntry]:
        """:meth:`read_journal` with each body as stored, undecoded, with its event version.

        Exports copy these bytes as they are; a store that keeps decoded events
        encodes them at the current version.
        """

    async def head(self) -> int:
        """The position of the newest entry (0 for an empty journal)."""

    async def metric_rollups(self, run_id: str, key: str) -> list[tuple[int, int, Aggregate]]:
        """Every stored rollup bucket of the series as ``(level, bucket, aggregate)``, sorted.

        For ``journal.verify``, which compares them with a fold of the journal.
        """

    async def blobs(self, sha256s: Sequence[str]) -> dict[str, bytes]:
        """The stored content of the given digests (missing ones are left out)."""

    async def rebuild(self) -> None:
        """Drop every projection and fold the journal again."""

    def purge_blocking(self) -> PurgeResult:
        """Blocking :meth:`purge`."""

    async def purge(self) -> PurgeResult:
        """Erase every journal entry about a deleted run or experiment, for good.

        In one transaction: the entries go, one ``ids.purged`` entry keeps their
        ids as tombstones, the projections are folded again, and the artifact
        contents that only erased entries referred to are dropped. Then the
        storage is compacted. Positions of the remaining entries do not change.
        """
