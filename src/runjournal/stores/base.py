"""The store protocol: an append-only journal plus the projections derived from it.

A store is written by exactly one writer per process, from the writer's own
thread, through the blocking :meth:`Store.append`. That keeps the writer free of
any event loop (see ``runjournal.writer``). Everything a user reads goes through
the ``async`` query methods, which never block the caller's event loop.
"""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from typing import Any, Protocol

import msgspec

from runjournal._forks import Participant
from runjournal.events import Event
from runjournal.filtering import RunPage
from runjournal.model import (
    ArtifactRef,
    Experiment,
    MetricArrays,
    MetricBucket,
    MetricPoint,
    ParamFilter,
    Run,
    RunView,
)
from runjournal.projection import RunRow
from runjournal.rollups import Aggregate

__all__ = [
    "CHUNK_SIZE",
    "AppendResult",
    "Content",
    "JournalEntry",
    "NewEntry",
    "PurgeResult",
    "Queries",
    "RawEntry",
    "Store",
    "recorded_at",
]


CHUNK_SIZE = 4 * 1024 * 1024
"""Artifact content is stored in chunks of this many bytes (the last one may be shorter)."""


class Content:
    """Artifact content on its way into a store, in chunks.

    Iterating it yields ``(digest, data)``: each chunk's raw SHA-256 (32 bytes) and
    its bytes, at most :data:`CHUNK_SIZE` long, in order. :attr:`sha256` and
    :attr:`size_bytes` describe the whole content. A *streamed* content learns them
    only once it has been iterated to the end (a file read once, as it is stored),
    and can be iterated only once; content from bytes can be iterated again, so a
    failed write can be retried.
    """

    __slots__ = ("_data", "sha256", "size_bytes")

    def __init__(self, data: bytes | None, sha256: str | None, size_bytes: int | None) -> None:
        self._data = data
        self.sha256 = sha256
        self.size_bytes = size_bytes

    @classmethod
    def of_bytes(cls, data: bytes, sha256: str | None = None) -> Content:
        """The content of ``data`` (its SHA-256 computed here unless given)."""
        digest = hashlib.sha256(data).hexdigest() if sha256 is None else sha256
        return cls(data, digest, len(data))

    @property
    def replayable(self) -> bool:
        """True if the chunks can be read again (a retry after a failed write)."""
        return self._data is not None

    def __iter__(self) -> Iterator[tuple[bytes, bytes]]:
        data = self._data
        assert data is not None and self.sha256 is not None
        if len(data) <= CHUNK_SIZE:
            if data:
                yield bytes.fromhex(self.sha256), data
            return
        with memoryview(data) as view:
            for start in range(0, len(data), CHUNK_SIZE):
                piece = bytes(view[start : start + CHUNK_SIZE])
                yield hashlib.sha256(piece).digest(), piece


# The entries (like the events, see runjournal.events) hold plain values only, and come by the
# hundred thousand in an import or an export: gc=False keeps the cyclic collector off them.
class NewEntry(msgspec.Struct, frozen=True, gc=False):
    """An event on its way into the journal, identified by ``(source, seq)``."""

    source: str
    seq: int
    event: Event
    recorded_at: float
    body: bytes | None = None
    """The event already encoded at ``EVENT_VERSION`` (an import's bytes), which a store
    may keep instead of encoding ``event`` again; it must decode to ``event``."""


class JournalEntry(msgspec.Struct, frozen=True, gc=False):
    """One committed journal entry at its store-local ``position`` (1, 2, 3, ...)."""

    position: int
    source: str
    seq: int
    recorded_at: float
    event: Event


class RawEntry(msgspec.Struct, frozen=True, gc=False):
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
    """Artifact contents dropped, because no remaining entry refers to them (their chunks too)."""
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
    async def list_runs(self, experiment_id: str, view: RunView = RunView.ACTIVE) -> list[Run]:
        """The runs of an experiment in ``view`` (hidden ones left out by default), oldest first."""

    async def get_params(self, run_id: str) -> dict[str, Any]: ...
    async def get_metrics(self, run_id: str, key: str) -> list[MetricPoint]: ...
    async def get_metric_arrays(self, run_id: str, key: str) -> MetricArrays:
        """The series as three new columns (``'q'``, ``'d'``, ``'d'``), in get_metrics order."""

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
    async def get_artifact_data(self, sha256: str) -> bytes:
        """The whole content with this SHA-256 (for small ones); raises ``ArtifactNotFound``."""

    def open_artifact(self, sha256: str) -> AsyncIterator[bytes]:
        """The content with this SHA-256, chunk by chunk; raises ``ArtifactNotFound``."""

    async def artifact_name(self, sha256: str) -> str | None:
        """The name of the first live artifact with this content, or None."""

    async def get_span_id(self, run_id: str) -> str | None: ...
    async def filter_runs(
        self,
        experiment_id: str | None,
        filters: Sequence[ParamFilter],
        view: RunView = RunView.ACTIVE,
    ) -> list[Run]:
        """Runs (of one experiment, or of all) in ``view`` whose params match every filter."""

    async def search_runs(
        self,
        experiment_id: str | None,
        filters: Sequence[ParamFilter],
        order_by: str = "created_at",
        desc: bool = False,
        limit: int = 100,
        after: str | None = None,
        view: RunView = RunView.ACTIVE,
    ) -> RunPage:
        """One page of the runs that :meth:`filter_runs` finds, sorted, and how many there are.

        ``order_by`` is ``created_at``, ``name``, ``status``, ``param:KEY`` or
        ``metric:KEY`` (by the last value in step order); ``desc`` reverses it. Runs
        without the key (no such param, no name, no finite last value) come last
        either way; ties go by run id, in the same direction. Param values order
        as :data:`runjournal.filtering.SortKey` says. ``after`` is the ``next`` of
        the previous page: an opaque cursor, valid for the same order only
        (``ValueError`` otherwise). Only the page's runs are decoded.
        """


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

    def limit_waits(self, deadline: float | None) -> None:
        """Give up waiting for another process's lock at this ``time.monotonic()`` moment.

        Draining sets it, so that closing never waits past its own timeout.
        """

    # -- writing: called from the writer thread, may block --------------------------------
    def append(self, entries: Sequence[NewEntry], contents: Sequence[Content] = ()) -> AppendResult:
        """Atomically store artifact contents, append entries and apply their projections.

        Entries whose ``(source, seq)`` is already in the journal are skipped as
        duplicates. Entries that contradict the state are left out of the
        journal and listed in ``rejected``. Raises a ``StoreError`` (and changes
        nothing) if the storage fails. Each content's chunks are stored once
        (identical chunks are shared); ``contents`` must know their SHA-256.
        """

    def append_artifact(
        self, content: Content, entry: Callable[[str, int], NewEntry]
    ) -> AppendResult:
        """Store a streamed content and the entry that names it, in one transaction.

        The chunks are read from ``content`` as they are stored; once it is
        exhausted, ``entry(sha256, size_bytes)`` gives the journal entry. If that
        entry is rejected (or anything fails), nothing of the content is kept:
        an artifact becomes visible only together with its entry.
        """

    def content(self, sha256: str) -> Content | None:
        """Blocking: the stored content with this SHA-256, read chunk by chunk when iterated.

        None if it is not stored. For export and import, from a worker thread.
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
