"""The in-memory store: the same contract as SQLite, in plain dicts, for tests and throwaway runs."""

from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import Any

import msgspec

from runjournal import _forks
from runjournal.errors import ArtifactNotFound, ExperimentNotFound, RunNotFound
from runjournal.events import EVENT_VERSION, BlobStored, Event, EventCodec
from runjournal.filtering import matches, validate_filters
from runjournal.model import ArtifactRef, Experiment, MetricPoint, ParamFilter, Run
from runjournal.projection import (
    AddArtifact,
    AddMetrics,
    Change,
    DeleteExperiment,
    DeleteRun,
    ExperimentRow,
    PutExperiment,
    PutRun,
    Rejected,
    RunRow,
    SetParams,
    SetSpanId,
    evolve,
)
from runjournal.stores.base import AppendResult, JournalEntry, NewEntry, RawEntry

__all__ = ["InMemoryStorage", "Projection"]


def _step(point: MetricPoint) -> int:
    return point.step


class Projection:
    """Every projection of a journal, held in dicts; also the engine of time travel."""

    def __init__(self) -> None:
        self.experiments: dict[str, ExperimentRow] = {}
        self.runs: dict[str, RunRow] = {}
        self.params: dict[str, dict[str, Any]] = {}
        self.metrics: dict[str, dict[str, list[MetricPoint]]] = {}
        self.artifacts: dict[str, list[ArtifactRef]] = {}
        self.span_ids: dict[str, str] = {}
        self.deleted: set[str] = set()

    # View
    def experiment(self, experiment_id: str) -> ExperimentRow | None:
        return self.experiments.get(experiment_id)

    def run(self, run_id: str) -> RunRow | None:
        return self.runs.get(run_id)

    def is_deleted(self, entity_id: str) -> bool:
        return entity_id in self.deleted

    def fold(self, event: Event) -> None:
        """Apply one event; raises :class:`Rejected` and changes nothing if it does not apply."""
        for change in evolve(self, event):
            self._apply(change)

    def _apply(self, change: Change) -> None:
        match change:
            case AddMetrics(run_id=run_id, key=key, points=points):
                self.metrics.setdefault(run_id, {}).setdefault(key, []).extend(points)
            case SetParams(run_id=run_id, params=params):
                self.params.setdefault(run_id, {}).update(params)
            case PutRun(row=row):
                self.runs[row.id] = row
            case PutExperiment(row=exp):
                self.experiments[exp.id] = exp
            case SetSpanId(run_id=run_id, span_id=span_id):
                self.span_ids[run_id] = span_id
            case AddArtifact(ref=ref):
                self.artifacts.setdefault(ref.run_id, []).append(ref)
            case DeleteRun(run_id=run_id):
                self._drop_run(run_id)
            case DeleteExperiment(experiment_id=exp_id):
                for run_id in [r.id for r in self.runs.values() if r.experiment_id == exp_id]:
                    self._drop_run(run_id)
                del self.experiments[exp_id]
                self.deleted.add(exp_id)

    def _drop_run(self, run_id: str) -> None:
        del self.runs[run_id]
        for table in (self.params, self.metrics, self.artifacts, self.span_ids):
            table.pop(run_id, None)
        self.deleted.add(run_id)

    # Queries, shared by the in-memory store and time-travel views.
    def get_experiment(self, experiment_id: str) -> Experiment:
        row = self.experiments.get(experiment_id)
        if row is None:
            raise ExperimentNotFound(experiment_id)
        return row.to_public()

    def list_experiments(self) -> list[Experiment]:
        rows = sorted(self.experiments.values(), key=lambda e: (e.created_at, e.id))
        return [row.to_public() for row in rows]

    def require_run(self, run_id: str) -> RunRow:
        row = self.runs.get(run_id)
        if row is None:
            raise RunNotFound(run_id)
        return row

    def get_run(self, run_id: str) -> Run:
        return self._public_run(self.require_run(run_id))

    def _public_run(self, row: RunRow) -> Run:
        return row.to_public(_copy(self.params.get(row.id, {})))

    def list_runs(self, experiment_id: str) -> list[Run]:
        if experiment_id not in self.experiments:
            raise ExperimentNotFound(experiment_id)
        rows = [r for r in self.runs.values() if r.experiment_id == experiment_id]
        rows.sort(key=lambda r: (r.created_at, r.id))
        return [self._public_run(r) for r in rows]

    def get_params(self, run_id: str) -> dict[str, Any]:
        self.require_run(run_id)
        return _copy(self.params.get(run_id, {}))

    def get_metrics(self, run_id: str, key: str) -> list[MetricPoint]:
        self.require_run(run_id)
        points = list(self.metrics.get(run_id, {}).get(key, ()))
        points.sort(key=_step)
        return points

    def list_metric_keys(self, run_id: str) -> list[str]:
        self.require_run(run_id)
        return sorted(self.metrics.get(run_id, {}))

    def list_artifacts(self, run_id: str) -> list[ArtifactRef]:
        self.require_run(run_id)
        return list(self.artifacts.get(run_id, ()))

    def get_span_id(self, run_id: str) -> str | None:
        self.require_run(run_id)
        return self.span_ids.get(run_id)

    def filter_runs(self, experiment_id: str | None, filters: Sequence[ParamFilter]) -> list[Run]:
        checked = validate_filters(filters)
        if experiment_id is not None and experiment_id not in self.experiments:
            raise ExperimentNotFound(experiment_id)
        rows = [
            r
            for r in self.runs.values()
            if (experiment_id is None or r.experiment_id == experiment_id)
            and all(matches(self.params.get(r.id, {}), f) for f in checked)
        ]
        rows.sort(key=lambda r: (r.created_at, r.id))
        return [self._public_run(r) for r in rows]


_codec = EventCodec()
_deep_copy_encoder = msgspec.msgpack.Encoder()
_deep_copy_decoder = msgspec.msgpack.Decoder(dict[str, Any])


def _copy(params: dict[str, Any]) -> dict[str, Any]:
    # A deep copy through msgpack: callers must never alias stored state.
    return _deep_copy_decoder.decode(_deep_copy_encoder.encode(params))


class InMemoryStorage:
    """A store that lives in this process only. Thread-safe; nothing survives the process."""

    def __init__(self) -> None:
        self._lock = threading.RLock()
        self._journal: list[JournalEntry] = []
        self._ids: set[tuple[str, int]] = set()
        self._blobs: dict[str, bytes] = {}
        self._state = Projection()
        self._fork_held = False
        _forks.register(self, _forks.Stage.QUIESCE)

    @property
    def spec(self) -> str:
        return ":memory:"

    @property
    def shareable(self) -> bool:
        return False

    async def open(self) -> None:
        return None

    async def close(self) -> None:
        return None

    def release(self) -> None:
        return None

    def limit_waits(self, deadline: float | None) -> None:
        return None

    def before_fork(self) -> None:
        """Let an append in flight finish, so that a child never copies half of one."""
        self._fork_held = self._lock.acquire(timeout=_forks.WAIT_LIMIT)

    def after_fork_in_parent(self) -> None:
        if self._fork_held:
            self._fork_held = False
            self._lock.release()

    def after_fork_in_child(self) -> None:
        """A forked child gets a fresh lock: a parent thread may have held this one."""
        self._fork_held = False
        self._lock = threading.RLock()

    def append(self, entries: Sequence[NewEntry], blobs: Sequence[BlobStored] = ()) -> AppendResult:
        appended = duplicates = 0
        rejected: list[tuple[int, str]] = []
        with self._lock:
            for blob in blobs:
                self._blobs.setdefault(blob.sha256, blob.data)
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
                self._journal.append(
                    JournalEntry(
                        len(self._journal) + 1,
                        entry.source,
                        entry.seq,
                        entry.recorded_at,
                        entry.event,
                    )
                )
                appended += 1
            return AppendResult(appended, duplicates, rejected, len(self._journal))

    def lookup_run(self, run_id: str) -> RunRow | None:
        with self._lock:
            return self._state.run(run_id)

    def rebuild_sync(self) -> None:
        with self._lock:
            state = Projection()
            for entry in self._journal:
                state.fold(entry.event)
            self._state = state

    async def rebuild(self) -> None:
        self.rebuild_sync()

    async def get_experiment(self, experiment_id: str) -> Experiment:
        with self._lock:
            return self._state.get_experiment(experiment_id)

    async def list_experiments(self) -> list[Experiment]:
        with self._lock:
            return self._state.list_experiments()

    async def get_run(self, run_id: str) -> Run:
        with self._lock:
            return self._state.get_run(run_id)

    async def list_runs(self, experiment_id: str) -> list[Run]:
        with self._lock:
            return self._state.list_runs(experiment_id)

    async def get_params(self, run_id: str) -> dict[str, Any]:
        with self._lock:
            return self._state.get_params(run_id)

    async def get_metrics(self, run_id: str, key: str) -> list[MetricPoint]:
        with self._lock:
            return self._state.get_metrics(run_id, key)

    async def list_metric_keys(self, run_id: str) -> list[str]:
        with self._lock:
            return self._state.list_metric_keys(run_id)

    async def list_artifacts(self, run_id: str) -> list[ArtifactRef]:
        with self._lock:
            return self._state.list_artifacts(run_id)

    async def get_artifact_data(self, sha256: str) -> bytes:
        with self._lock:
            data = self._blobs.get(sha256)
        if data is None:
            raise ArtifactNotFound(sha256)
        return data

    async def get_span_id(self, run_id: str) -> str | None:
        with self._lock:
            return self._state.get_span_id(run_id)

    async def filter_runs(
        self, experiment_id: str | None, filters: Sequence[ParamFilter]
    ) -> list[Run]:
        with self._lock:
            return self._state.filter_runs(experiment_id, filters)

    async def read_journal(self, after: int = 0, limit: int | None = None) -> list[JournalEntry]:
        with self._lock:
            end = None if limit is None else after + limit
            return self._journal[max(after, 0) : end]

    async def read_journal_raw(self, after: int = 0, limit: int | None = None) -> list[RawEntry]:
        """:meth:`read_journal` with each event encoded as SQLite would store it."""
        encode = _codec.encode
        return [
            RawEntry(e.position, e.source, e.seq, e.recorded_at, EVENT_VERSION, encode(e.event))
            for e in await self.read_journal(after, limit)
        ]

    async def head(self) -> int:
        with self._lock:
            return len(self._journal)

    async def blobs(self, sha256s: Sequence[str]) -> dict[str, bytes]:
        with self._lock:
            return {s: self._blobs[s] for s in sha256s if s in self._blobs}
