"""The in-memory store: the same contract as SQLite, in plain dicts, for tests and throwaway runs.

Its projections are one :class:`~runjournal.projection.State`. :class:`StateReader`
is the ``async`` query API over such a State; the store adds its lock, its
journal and its artifact contents, and ``journal.StateView`` (a past moment of
any store) is a read-only reader over a State folded by ``journal.state_at``.
"""

from __future__ import annotations

import bisect
import contextlib
import threading
import time
from collections.abc import AsyncIterator, Callable, Sequence
from typing import Any

from runjournal import _forks
from runjournal.errors import ArtifactNotFound
from runjournal.events import EVENT_VERSION, ArtifactLogged, EventCodec
from runjournal.filtering import RunPage
from runjournal.ids import new_id
from runjournal.model import (
    ArtifactRef,
    Experiment,
    MetricArrays,
    MetricBucket,
    MetricPoint,
    ParamFilter,
    Run,
    RunStatus,
    RunView,
)
from runjournal.projection import PurgePlan, Rejected, RunRow, State
from runjournal.rollups import Aggregate
from runjournal.stores.base import (
    AppendResult,
    Content,
    JournalEntry,
    NewEntry,
    PurgeResult,
    RawEntry,
    Store,
)

__all__ = ["InMemoryStorage", "StateReader"]


class StateReader:
    """The query API, answered from a :class:`~runjournal.projection.State` under a lock.

    ``get_artifact_data`` is left to each holder: it reads contents, which a
    State does not hold.
    """

    def __init__(self, state: State, lock: contextlib.AbstractContextManager[Any] | None) -> None:
        self._state = state
        self._lock: contextlib.AbstractContextManager[Any]
        # None: the state never changes after this reader is made, so reads need no lock.
        self._lock = contextlib.nullcontext() if lock is None else lock

    async def get_experiment(self, experiment_id: str) -> Experiment:
        """The experiment with this id; raises :class:`ExperimentNotFound`."""
        with self._lock:
            return self._state.get_experiment(experiment_id)

    async def list_experiments(self) -> list[Experiment]:
        """Every experiment, oldest first."""
        with self._lock:
            return self._state.list_experiments()

    async def find_experiment(self, name: str) -> Experiment | None:
        """The oldest live experiment called ``name``, or None."""
        with self._lock:
            return self._state.find_experiment(name)

    async def is_deleted(self, entity_id: str) -> bool:
        """True if an experiment or run with this id was deleted."""
        with self._lock:
            return self._state.is_deleted(entity_id)

    async def get_run(self, run_id: str) -> Run:
        """The run with this id; raises :class:`RunNotFound`."""
        with self._lock:
            return self._state.get_run(run_id)

    async def get_run_status(self, run_id: str) -> RunStatus:
        """The run's status; raises :class:`RunNotFound`."""
        with self._lock:
            return self._state.get_run_status(run_id)

    async def list_runs(self, experiment_id: str, view: RunView = RunView.ACTIVE) -> list[Run]:
        """The runs of an experiment in ``view``, by creation time."""
        with self._lock:
            return self._state.list_runs(experiment_id, view)

    async def get_params(self, run_id: str) -> dict[str, Any]:
        """The run's parameters."""
        with self._lock:
            return self._state.get_params(run_id)

    async def get_metrics(self, run_id: str, key: str) -> list[MetricPoint]:
        """The series, ordered by step (equal steps keep their logging order)."""
        with self._lock:
            return self._state.get_metrics(run_id, key)

    async def get_metric_arrays(self, run_id: str, key: str) -> MetricArrays:
        """The series as three new columns, in get_metrics order."""
        with self._lock:
            return self._state.get_metric_arrays(run_id, key)

    async def get_metrics_between(
        self, run_id: str, key: str, start: int | None, end: int | None
    ) -> list[MetricPoint]:
        """The points with step in ``[start, end]``, in get_metrics order."""
        with self._lock:
            return self._state.get_metrics_between(run_id, key, start, end)

    async def get_metrics_downsampled(
        self, run_id: str, key: str, points: int, start: int | None, end: int | None
    ) -> list[MetricBucket]:
        """At most ``points`` buckets over the steps in ``[start, end]``."""
        with self._lock:
            return self._state.get_metrics_downsampled(run_id, key, points, start, end)

    async def metric_summaries(
        self, run_ids: Sequence[str], keys: Sequence[str] | None = None
    ) -> dict[str, dict[str, MetricBucket]]:
        """Each live run's whole-series summary per metric key."""
        with self._lock:
            return self._state.metric_summaries(run_ids, keys)

    async def metric_rollups(self, run_id: str, key: str) -> list[tuple[int, int, Aggregate]]:
        """Every stored rollup bucket of the series, sorted."""
        with self._lock:
            return self._state.metric_rollups(run_id, key)

    async def list_metric_keys(self, run_id: str) -> list[str]:
        """The names of the run's metrics, sorted."""
        with self._lock:
            return self._state.list_metric_keys(run_id)

    async def list_artifacts(self, run_id: str) -> list[ArtifactRef]:
        """The run's artifacts, in logging order."""
        with self._lock:
            return self._state.list_artifacts(run_id)

    async def artifact_name(self, sha256: str) -> str | None:
        """The name of the first live artifact with this content, or None."""
        with self._lock:
            found = [
                ref
                for refs in self._state.artifacts.values()
                for ref in refs
                if ref.sha256 == sha256
            ]
        return min(found, key=lambda ref: ref.created_at).name if found else None

    async def get_span_id(self, run_id: str) -> str | None:
        """The run's span id, or None."""
        with self._lock:
            return self._state.get_span_id(run_id)

    async def filter_runs(
        self,
        experiment_id: str | None,
        filters: Sequence[ParamFilter],
        view: RunView = RunView.ACTIVE,
    ) -> list[Run]:
        """Runs in ``view`` whose params match every filter (of one experiment, or all if None)."""
        with self._lock:
            return self._state.filter_runs(experiment_id, filters, view)

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
        """A page of the matching runs in a search order (see ``Queries.search_runs``)."""
        with self._lock:
            return self._state.search_runs(
                experiment_id, filters, order_by, desc, limit, after, view
            )


_codec = EventCodec()


class InMemoryStorage(StateReader):
    """A store that lives in this process only. Thread-safe; nothing survives the process."""

    def __init__(self) -> None:
        self._rlock = threading.RLock()
        super().__init__(State(), self._rlock)
        self._journal: list[JournalEntry] = []
        self._positions: list[int] = []  # of _journal; a purge leaves gaps
        self._head = 0
        self._ids: set[tuple[str, int]] = set()
        self._contents: dict[str, list[bytes]] = {}  # sha256 -> its chunk digests, in order
        self._chunks: dict[bytes, bytes] = {}  # chunk digest -> bytes, each stored once
        self._fork_held = False
        _forks.register(self, _forks.Stage.QUIESCE)

    @property
    def read_only(self) -> bool:
        """Always False: an in-memory store is its own only writer."""
        return False

    @property
    def spec(self) -> str:
        return ":memory:"

    def reopener(self) -> Callable[[], Store]:
        """Refuses: this store lives in this process only."""
        raise TypeError(f"{self!r} lives in this process only; it cannot be sent elsewhere")

    async def open(self) -> None:
        return None

    async def close(self) -> None:
        return None

    def close_blocking(self) -> None:
        return None

    def limit_waits(self, deadline: float | None) -> None:
        return None

    def before_fork(self) -> None:
        """Let an append in flight finish, so that a child never copies half of one."""
        self._fork_held = self._rlock.acquire(timeout=_forks.WAIT_LIMIT)

    def after_fork_in_parent(self) -> None:
        if self._fork_held:
            self._fork_held = False
            self._rlock.release()

    def after_fork_in_child(self) -> None:
        """A forked child gets a fresh lock: a parent thread may have held this one."""
        self._fork_held = False
        self._rlock = self._lock = threading.RLock()

    def append(self, entries: Sequence[NewEntry], contents: Sequence[Content] = ()) -> AppendResult:
        read = [(c, self._read(c)) for c in contents if c.sha256 not in self._contents]
        with self._lock:
            for content, chunks in read:
                self._keep(content, chunks)
            return self._append(entries)

    def append_artifact(
        self, content: Content, entry: Callable[[str, int], NewEntry]
    ) -> AppendResult:
        chunks = self._read(content)
        assert content.sha256 is not None and content.size_bytes is not None
        new = entry(content.sha256, content.size_bytes)
        with self._lock:
            result = self._append([new])
            if not result.rejected:
                self._keep(content, chunks)
            return result

    @staticmethod
    def _read(content: Content) -> list[tuple[bytes, bytes]]:
        return list(content)

    def _keep(self, content: Content, chunks: list[tuple[bytes, bytes]]) -> None:
        assert content.sha256 is not None
        if content.sha256 in self._contents:
            return
        for digest, data in chunks:
            self._chunks.setdefault(digest, data)
        self._contents[content.sha256] = [digest for digest, _ in chunks]

    def _append(self, entries: Sequence[NewEntry]) -> AppendResult:
        appended = duplicates = 0
        rejected: list[tuple[int, str]] = []
        for index, entry in enumerate(entries):
            ident = (entry.source, entry.seq)
            if ident in self._ids:
                duplicates += 1
                continue
            try:
                self._state.fold(entry.event)
            except Rejected as exc:
                rejected.append((index, str(exc)))
                continue
            self._ids.add(ident)
            self._head += 1
            self._positions.append(self._head)
            self._journal.append(
                JournalEntry(self._head, entry.source, entry.seq, entry.recorded_at, entry.event)
            )
            appended += 1
        return AppendResult(appended, duplicates, rejected, self._head)

    def lookup_run(self, run_id: str) -> RunRow | None:
        with self._lock:
            return self._state.run(run_id)

    def rebuild_blocking(self) -> None:
        with self._lock:
            state = State()
            for entry in self._journal:
                state.fold(entry.event)
            self._state = state

    async def rebuild(self) -> None:
        self.rebuild_blocking()

    def purge_blocking(self) -> PurgeResult:
        with self._lock:
            plan = PurgePlan(frozenset(self._state.deleted))
            kept: list[JournalEntry] = []
            shas: set[str] = set()
            for entry in self._journal:
                event = entry.event
                run_id = getattr(event, "run_id", None)
                if plan.erases(run_id, getattr(event, "experiment_id", None)):
                    self._ids.discard((entry.source, entry.seq))
                    if isinstance(event, ArtifactLogged):
                        shas.add(event.sha256)
                else:
                    kept.append(entry)
            erased = len(self._journal) - len(kept)
            purged = plan.event(time.time())
            position = None
            if purged is not None:
                self._head = position = self._head + 1
                source = f"purge-{new_id()}"
                kept.append(JournalEntry(position, source, 1, purged.at, purged))
                self._ids.add((source, 1))
                self._journal = kept
                self._positions = [e.position for e in kept]
                self.rebuild_blocking()
            still = {e.event.sha256 for e in self._journal if isinstance(e.event, ArtifactLogged)}
            dropped = [sha for sha in shas if sha not in still and sha in self._contents]
            for sha in dropped:
                del self._contents[sha]
            used = {digest for digests in self._contents.values() for digest in digests}
            for digest in [d for d in self._chunks if d not in used]:
                del self._chunks[digest]
        return PurgeResult(
            runs=list(plan.runs),
            experiments=list(plan.experiments),
            entries=erased,
            blobs=len(dropped),
            position=position,
            size_before=None,
            size_after=None,
            compacted=True,
        )

    async def purge(self) -> PurgeResult:
        return self.purge_blocking()

    async def get_artifact_data(self, sha256: str) -> bytes:
        return b"".join([piece async for piece in self.open_artifact(sha256)])

    async def open_artifact(self, sha256: str) -> AsyncIterator[bytes]:
        with self._lock:
            digests = self._contents.get(sha256)
            if digests is None:
                raise ArtifactNotFound(sha256)
            pieces = [self._chunks[d] for d in digests]
        for piece in pieces:
            yield piece

    def content(self, sha256: str) -> Content | None:
        with self._lock:
            digests = self._contents.get(sha256)
            if digests is None:
                return None
            return Content.of_bytes(b"".join(self._chunks[d] for d in digests), sha256)

    async def read_journal(self, after: int = 0, limit: int | None = None) -> list[JournalEntry]:
        with self._lock:
            start = bisect.bisect_right(self._positions, after)
            end = None if limit is None else start + limit
            return self._journal[start:end]

    async def read_journal_raw(self, after: int = 0, limit: int | None = None) -> list[RawEntry]:
        """:meth:`read_journal` with each event encoded as SQLite would store it."""
        encode = _codec.encode
        return [
            RawEntry(e.position, e.source, e.seq, e.recorded_at, EVENT_VERSION, encode(e.event))
            for e in await self.read_journal(after, limit)
        ]

    async def head(self) -> int:
        with self._lock:
            return self._head
