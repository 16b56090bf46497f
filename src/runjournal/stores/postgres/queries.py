"""The read side: every query of the store, as SQL over the projection tables and the journal.

Each query runs on an anyio worker thread through a pooled read connection
(``Connections.reading``), so it never blocks the caller's event loop; decoding
long answers happens on that same thread. The SQL mirrors the SQLite store's
(``runjournal.stores.sqlite.queries``), with ``= ANY(%s)`` for a list of ids.
"""

from __future__ import annotations

import bisect
import itertools
import operator
from collections.abc import AsyncIterator, Sequence
from typing import Any

import anyio.to_thread

from runjournal.errors import ArtifactNotFound, ExperimentNotFound, RunNotFound
from runjournal.events import EventCodec, MetricLogged, MetricsLogged
from runjournal.filtering import validate_filters
from runjournal.model import (
    ArtifactRef,
    Experiment,
    MetricBucket,
    MetricPoint,
    ParamFilter,
    Run,
    RunView,
)
from runjournal.rollups import Aggregate, Piece, downsample
from runjournal.stores.base import JournalEntry, RawEntry
from runjournal.stores.postgres.connection import Connections
from runjournal.stores.postgres.overlay import (
    EXPERIMENT_COLUMNS,
    RUN_COLUMNS,
    decode_params,
    experiment_row,
    run_row,
)
from runjournal.stores.sqlite.filters import equal_encodings, select_matching

__all__ = ["PostgresQueries"]

_step = operator.attrgetter("step")


class PostgresQueries:
    """The query methods of the PostgreSQL store (``Queries``, plus reading the journal)."""

    def __init__(self, connections: Connections, codec: EventCodec) -> None:
        self._connections = connections
        self._codec = codec
        self._s = connections.settings.schema

    async def _fetchone(self, sql: str, args: Sequence[Any] = ()) -> Any:
        rows = await self._connections.read(sql, args)
        return rows[0] if rows else None

    async def _require_run(self, run_id: str) -> None:
        if await self._fetchone(f"SELECT 1 FROM {self._s}.runs WHERE id = %s", (run_id,)) is None:
            raise RunNotFound(run_id)

    async def _require_experiment(self, experiment_id: str) -> None:
        found = await self._fetchone(
            f"SELECT 1 FROM {self._s}.experiments WHERE id = %s", (experiment_id,)
        )
        if found is None:
            raise ExperimentNotFound(experiment_id)

    async def get_experiment(self, experiment_id: str) -> Experiment:
        row = await self._fetchone(
            f"SELECT {EXPERIMENT_COLUMNS} FROM {self._s}.experiments WHERE id = %s",
            (experiment_id,),
        )
        if row is None:
            raise ExperimentNotFound(experiment_id)
        return experiment_row(row)

    async def list_experiments(self) -> list[Experiment]:
        rows = await self._connections.read(
            f"SELECT {EXPERIMENT_COLUMNS} FROM {self._s}.experiments ORDER BY created_at, id"
        )
        return [experiment_row(r) for r in rows]

    async def find_experiment(self, name: str) -> Experiment | None:
        row = await self._fetchone(
            f"SELECT {EXPERIMENT_COLUMNS} FROM {self._s}.experiments WHERE name = %s "
            "ORDER BY created_at, id LIMIT 1",
            (name,),
        )
        return None if row is None else experiment_row(row)

    async def is_deleted(self, entity_id: str) -> bool:
        found = await self._fetchone(
            f"SELECT 1 FROM {self._s}.tombstones WHERE id = %s", (entity_id,)
        )
        return found is not None

    async def get_run(self, run_id: str) -> Run:
        row = await self._fetchone(
            f"SELECT {RUN_COLUMNS}, params FROM {self._s}.runs WHERE id = %s", (run_id,)
        )
        if row is None:
            raise RunNotFound(run_id)
        return _public_run(row)

    async def list_runs(self, experiment_id: str, view: RunView = RunView.ACTIVE) -> list[Run]:
        await self._require_experiment(experiment_id)
        rows = await self._connections.read(
            f"SELECT {RUN_COLUMNS}, params FROM {self._s}.runs "
            f"WHERE experiment_id = %s{_VIEWS[view]} "
            "ORDER BY created_at, id",
            (experiment_id,),
        )
        return [_public_run(r) for r in rows]

    async def get_params(self, run_id: str) -> dict[str, Any]:
        row = await self._fetchone(f"SELECT params FROM {self._s}.runs WHERE id = %s", (run_id,))
        if row is None:
            raise RunNotFound(run_id)
        return decode_params(row[0])

    async def get_metrics(self, run_id: str, key: str) -> list[MetricPoint]:
        await self._require_run(run_id)
        s = self._s
        return await self._connections.read_then(
            f"SELECT j.version, j.body FROM {s}.metrics m JOIN {s}.journal j "
            "ON j.position = m.position WHERE m.run_id = %s AND m.key = %s ORDER BY m.position",
            (run_id, key),
            self._decode_points,
        )

    def _decode_points(self, rows: list[tuple[int, bytes]]) -> list[MetricPoint]:
        points: list[MetricPoint] = []
        for version, body in rows:
            event = self._codec.decode(body, version)
            if isinstance(event, MetricsLogged):
                points.extend(event.points)
            elif isinstance(event, MetricLogged):
                points.append(MetricPoint(event.step, event.value, event.timestamp))
        steps = list(map(_step, points))
        if not all(map(operator.le, steps, itertools.islice(steps, 1, None))):
            points.sort(key=_step)
        return points

    async def get_metrics_between(
        self, run_id: str, key: str, start: int | None, end: int | None
    ) -> list[MetricPoint]:
        """The points with step in ``[start, end]`` (None: unbounded), in get_metrics order."""
        if start is None and end is None:
            return await self.get_metrics(run_id, key)
        low, high = _bounds(start, end)
        return await anyio.to_thread.run_sync(self._points_between_blocking, run_id, key, low, high)

    def _points_between_blocking(
        self, run_id: str, key: str, low: int, high: int
    ) -> list[MetricPoint]:
        self._require_run_blocking(run_id)
        s = self._s
        rows = self._connections.read_blocking(
            f"SELECT j.version, j.body FROM {s}.metrics m JOIN {s}.journal j "
            "ON j.position = m.position WHERE m.run_id = %s AND m.key = %s "
            "AND m.last_step >= %s AND m.first_step <= %s ORDER BY m.position",
            (run_id, key, low, high),
        )
        return [p for p in self._decode_points(rows) if low <= p.step <= high]

    def _require_run_blocking(self, run_id: str) -> None:
        found = self._connections.read_blocking(
            f"SELECT 1 FROM {self._s}.runs WHERE id = %s", (run_id,)
        )
        if not found:
            raise RunNotFound(run_id)

    async def get_metrics_downsampled(
        self, run_id: str, key: str, points: int, start: int | None, end: int | None
    ) -> list[MetricBucket]:
        """At most ``points`` buckets over the steps in ``[start, end]`` (``runjournal.rollups``)."""
        return await anyio.to_thread.run_sync(
            self._downsampled_blocking, run_id, key, points, start, end
        )

    def _downsampled_blocking(
        self, run_id: str, key: str, points: int, start: int | None, end: int | None
    ) -> list[MetricBucket]:
        self._require_run_blocking(run_id)
        source = _SeriesSource(self, run_id, key)
        whole = source.buckets(0, 0, 0)
        return downsample(source, whole[0] if whole else None, points, start, end)

    async def metric_summaries(
        self, run_ids: Sequence[str], keys: Sequence[str] | None = None
    ) -> dict[str, dict[str, MetricBucket]]:
        """Per live run of ``run_ids``, its whole-series summary per key (of ``keys``, or all)."""
        ids = list(run_ids)
        read = self._connections.read
        live = await read(f"SELECT id FROM {self._s}.runs WHERE id = ANY(%s)", [ids])
        out: dict[str, dict[str, MetricBucket]] = {r[0]: {} for r in live}
        if not out:
            return {}
        sql = (
            f"SELECT run_id, key, {_AGGREGATE_COLUMNS} FROM {self._s}.rollups "
            "WHERE level = 0 AND run_id = ANY(%s)"
        )
        args: list[Any] = [ids]
        if keys is not None:
            sql += " AND key = ANY(%s)"
            args.append(list(keys))
        for row in await read(sql + " ORDER BY run_id, key", args):
            out[row[0]][row[1]] = _aggregate(row[2:]).to_bucket()
        return {run_id: out[run_id] for run_id in run_ids if run_id in out}

    async def metric_rollups(self, run_id: str, key: str) -> list[tuple[int, int, Aggregate]]:
        """Every stored rollup bucket of the series as ``(level, bucket, aggregate)``, sorted."""
        await self._require_run(run_id)
        rows = await self._connections.read(
            f"SELECT level, bucket, {_AGGREGATE_COLUMNS} FROM {self._s}.rollups "
            "WHERE run_id = %s AND key = %s ORDER BY level, bucket",
            (run_id, key),
        )
        return [(int(r[0]), int(r[1]), _aggregate(r[2:])) for r in rows]

    async def list_metric_keys(self, run_id: str) -> list[str]:
        await self._require_run(run_id)
        rows = await self._connections.read(
            f"SELECT DISTINCT key FROM {self._s}.metrics WHERE run_id = %s ORDER BY key",
            (run_id,),
        )
        return [r[0] for r in rows]

    async def list_artifacts(self, run_id: str) -> list[ArtifactRef]:
        await self._require_run(run_id)
        rows = await self._connections.read(
            f"SELECT run_id, name, sha256, size_bytes, created_at FROM {self._s}.artifacts "
            "WHERE run_id = %s ORDER BY position",
            (run_id,),
        )
        return [ArtifactRef(*r) for r in rows]

    async def get_artifact_data(self, sha256: str) -> bytes:
        """The whole content (for small artifacts: it is held in memory at once)."""
        return b"".join([piece async for piece in self.open_artifact(sha256)])

    async def open_artifact(self, sha256: str) -> AsyncIterator[bytes]:
        """The content, one chunk (at most ``CHUNK_SIZE`` bytes) per query."""
        chunks = await anyio.to_thread.run_sync(self.chunk_ids_blocking, sha256)
        for chunk in chunks:
            _, data = await anyio.to_thread.run_sync(self.chunk_blocking, chunk)
            yield data

    async def artifact_name(self, sha256: str) -> str | None:
        """The name of the first live artifact with this content, or None."""
        row = await self._fetchone(
            f"SELECT name FROM {self._s}.artifacts WHERE sha256 = %s "
            "ORDER BY created_at, position LIMIT 1",
            (sha256,),
        )
        return None if row is None else str(row[0])

    def chunk_ids_blocking(self, sha256: str) -> list[int]:
        """The chunk ids of a content, in order; raises ``ArtifactNotFound``."""
        s = self._s
        rows = self._connections.read_blocking(
            f"SELECT c.size_bytes, m.chunk FROM {s}.contents c "
            f"LEFT JOIN {s}.content_chunks m ON m.sha256 = c.sha256 "
            "WHERE c.sha256 = %s ORDER BY m.idx",
            (sha256,),
        )
        if not rows:
            raise ArtifactNotFound(sha256)
        return [int(chunk) for _, chunk in rows if chunk is not None]

    def chunk_blocking(self, chunk: int) -> tuple[bytes, bytes]:
        """One chunk's digest and bytes; raises ``ArtifactNotFound`` if it is gone (purged)."""
        rows = self._connections.read_blocking(
            f"SELECT digest, data FROM {self._s}.chunks WHERE id = %s", (chunk,)
        )
        if not rows:
            raise ArtifactNotFound(f"chunk {chunk}")
        return bytes(rows[0][0]), bytes(rows[0][1])

    async def get_span_id(self, run_id: str) -> str | None:
        await self._require_run(run_id)
        row = await self._fetchone(
            f"SELECT span_id FROM {self._s}.span_ids WHERE run_id = %s", (run_id,)
        )
        return None if row is None else str(row[0])

    async def filter_runs(
        self,
        experiment_id: str | None,
        filters: Sequence[ParamFilter],
        view: RunView = RunView.ACTIVE,
    ) -> list[Run]:
        found = await self._filter_runs(experiment_id, filters)
        return found if view is RunView.ALL else [r for r in found if view.shows(r.hidden)]

    async def _filter_runs(
        self, experiment_id: str | None, filters: Sequence[ParamFilter]
    ) -> list[Run]:
        checked = validate_filters(filters)
        if experiment_id is not None:
            await self._require_experiment(experiment_id)
        s = self._s
        read = self._connections.read
        if not checked:
            scope, args = (
                ("experiment_id = %s", [experiment_id])
                if experiment_id is not None
                else ("true", [])
            )
            rows = await read(
                f"SELECT {RUN_COLUMNS}, params FROM {s}.runs WHERE {scope} ORDER BY created_at, id",
                args,
            )
            return [_public_run(r) for r in rows]
        # SQL answers the EQ filters on scalars by comparing stored bytes; Python decodes
        # only what they narrow the runs to, for the other filters.
        in_sql: list[tuple[ParamFilter, list[bytes]]] = []
        in_python: list[ParamFilter] = []
        for flt in checked:
            codes = equal_encodings(flt)
            if codes is None:
                in_python.append(flt)
            else:
                in_sql.append((flt, codes))
        candidates: set[str] | None = None
        if in_sql:
            parts: list[str] = []
            codes_args: list[Any] = []
            for flt, codes in in_sql:  # no codes (NaN): = ANY('{}') matches nothing
                parts.append(f"SELECT run_id FROM {s}.params WHERE key = %s AND value = ANY(%s)")
                codes_args += [flt.key, codes]
            rows = await read(" INTERSECT ".join(parts), codes_args)
            candidates = {r[0] for r in rows}
        if in_python and candidates != set():
            keys = sorted({f.key for f in in_python})
            if candidates is None:
                if experiment_id is not None:
                    ids = await read(
                        f"SELECT id FROM {s}.runs WHERE experiment_id = %s", (experiment_id,)
                    )
                    candidates = {r[0] for r in ids}
                sql = f"SELECT key, run_id, value FROM {s}.params WHERE key = ANY(%s)"
                sql_args: list[Any] = [keys]
            else:
                sql = (
                    f"SELECT key, run_id, value FROM {s}.params "
                    "WHERE key = ANY(%s) AND run_id = ANY(%s)"
                )
                sql_args = [keys, sorted(candidates)]
            scope_ids = candidates

            def matching(values: list[tuple[str, str, bytes]]) -> set[str]:
                return select_matching(in_python, values, scope_ids)

            candidates = await self._connections.read_then(sql, sql_args, matching)
        if not candidates:
            return []
        found = await read(
            f"SELECT {RUN_COLUMNS}, params FROM {s}.runs WHERE id = ANY(%s)", [sorted(candidates)]
        )
        if experiment_id is not None:
            found = [r for r in found if r[1] == experiment_id]
        found.sort(key=lambda r: (r[4], r[0]))
        return [_public_run(r) for r in found]

    async def read_journal(self, after: int = 0, limit: int | None = None) -> list[JournalEntry]:
        """Committed entries with ``position > after``, in order."""
        rows = await self._read_journal(after, limit)
        decode = self._codec.decode
        return [JournalEntry(p, s, q, t, decode(b, v)) for p, s, q, t, v, b in rows]

    async def read_journal_raw(self, after: int = 0, limit: int | None = None) -> list[RawEntry]:
        """Committed entries with ``position > after``, in order, with their stored bodies."""
        rows = await self._read_journal(after, limit)
        return [RawEntry(p, s, q, t, v, b) for p, s, q, t, v, b in rows]

    async def _read_journal(self, after: int, limit: int | None) -> list[Any]:
        return await self._connections.read(
            f"SELECT position, source, seq, recorded_at, version, body FROM {self._s}.journal "
            "WHERE position > %s ORDER BY position LIMIT %s",
            (after, limit),
        )

    async def head(self) -> int:
        """The position of the newest entry (0 for an empty journal)."""
        row = await self._fetchone(f"SELECT coalesce(max(position), 0) FROM {self._s}.journal")
        return int(row[0])


_AGGREGATE_COLUMNS = (
    "first_step, last_step, min_value, max_value, first_value, last_value, count, nonfinite"
)
_NAN = float("nan")
_STEP_MAX = 2**63 - 1


def _aggregate(row: Sequence[Any]) -> Aggregate:
    """A rollup row selected as ``_AGGREGATE_COLUMNS``."""
    first_step, last_step, lo, hi, first, last, count, nonfinite = row
    return Aggregate(
        int(first_step),
        int(last_step),
        lo,
        hi,
        _NAN if first is None else float(first),
        _NAN if last is None else float(last),
        int(count),
        int(nonfinite),
    )


def _bounds(start: int | None, end: int | None) -> tuple[int, int]:
    return (0 if start is None else max(start, 0)), (
        _STEP_MAX if end is None else min(end, _STEP_MAX)
    )


class _SeriesSource:
    """A ``rollups.Source`` over one series, read on the calling (worker) thread."""

    def __init__(self, queries: PostgresQueries, run_id: str, key: str) -> None:
        self._queries = queries
        self._run_id = run_id
        self._key = key
        self._decoded: dict[int, list[MetricPoint]] = {}

    def buckets(self, level: int, low: int, high: int) -> list[Piece]:
        q = self._queries
        rows = q._connections.read_blocking(
            f"SELECT {_AGGREGATE_COLUMNS} FROM {q._s}.rollups "
            "WHERE run_id = %s AND key = %s AND level = %s AND bucket BETWEEN %s AND %s "
            "ORDER BY bucket",
            (self._run_id, self._key, level, low, high),
        )
        pieces: list[Piece] = rows
        return pieces

    def points(self, low: int, high: int) -> tuple[list[int], list[float]]:
        q = self._queries
        rows = q._connections.read_blocking(
            f"SELECT position FROM {q._s}.metrics WHERE run_id = %s AND key = %s "
            "AND last_step >= %s AND first_step <= %s ORDER BY position",
            (self._run_id, self._key, low, high),
        )
        missing = [int(r[0]) for r in rows if r[0] not in self._decoded]
        if missing:
            found = q._connections.read_blocking(
                f"SELECT position, version, body FROM {q._s}.journal WHERE position = ANY(%s)",
                (missing,),
            )
            for position, version, body in found:
                self._decoded[int(position)] = q._decode_points([(version, body)])
        chosen: list[MetricPoint] = []
        for (position,) in rows:
            entry = self._decoded[int(position)]
            first = bisect.bisect_left(entry, low, key=_step)
            chosen += entry[first : bisect.bisect_right(entry, high, lo=first, key=_step)]
        chosen.sort(key=_step)  # stable: logging order among equal steps
        return [p.step for p in chosen], [p.value for p in chosen]


_VIEWS = {RunView.ACTIVE: " AND NOT hidden", RunView.HIDDEN: " AND hidden", RunView.ALL: ""}
"""The ``WHERE`` clause that a :class:`RunView` adds to a query of ``runs``."""


def _public_run(row: Sequence[Any]) -> Run:
    """A ``runs`` row selected as ``RUN_COLUMNS, params``."""
    return run_row(row).to_public(decode_params(row[10]))
