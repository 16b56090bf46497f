"""The read side: every query of the store, as SQL over the projection tables and the journal.

Each query runs on an anyio worker thread through a pooled read connection
(``Connections.reading``), so it never blocks the caller's event loop; decoding
long answers happens on that same thread. The SQL mirrors the SQLite store's
(``runjournal.stores.sqlite.queries``), with ``= ANY(%s)`` for a list of ids.
"""

from __future__ import annotations

import gc
import operator
from collections.abc import AsyncIterator, Callable, Sequence
from decimal import Decimal
from typing import Any, NamedTuple

import anyio.to_thread
import msgspec

from runjournal.errors import ArtifactNotFound, ExperimentNotFound, RunNotFound
from runjournal.events import EventCodec
from runjournal.filtering import (
    RunPage,
    SortKey,
    check_page,
    encode_cursor,
    metric_sort_key,
    run_sort_key,
    validate_filters,
)
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
from runjournal.projection import to_points
from runjournal.rollups import FOLDED, Aggregate, Piece
from runjournal.stores._overlay import (
    EXPERIMENT_COLUMNS,
    RUN_COLUMNS,
    decode_params,
    experiment_row,
)
from runjournal.stores._search import BOOL, STR, SelectionSql, select_runs
from runjournal.stores._series import decode_series, decode_window, downsample_stored
from runjournal.stores.base import JournalEntry, RawEntry
from runjournal.stores.postgres.connection import Connections
from runjournal.stores.postgres.filters import condition

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
        return await self._connections.read_then(
            _SERIES_SQL.format(s=self._s), (run_id, key), self._decode_points
        )

    async def get_metric_arrays(self, run_id: str, key: str) -> MetricArrays:
        """The series as three new columns (``'q'``, ``'d'``, ``'d'``), in get_metrics order."""
        await self._require_run(run_id)
        return await self._connections.read_then(
            _SERIES_SQL.format(s=self._s), (run_id, key), self._decode_arrays
        )

    def _decode_points(self, rows: list[tuple[int, bytes]]) -> list[MetricPoint]:
        return to_points(self._decode_arrays(rows))

    def _decode_arrays(self, rows: list[tuple[int, bytes]]) -> MetricArrays:
        """The columns of the series' entries (in journal order), put in get_metrics order."""
        return decode_series(self._codec, rows)

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
        return to_points(self._window_blocking(run_id, key, low, high))

    def _window_blocking(self, run_id: str, key: str, low: int, high: int) -> MetricArrays:
        """The points with step in ``[low, high]``; only the entries that meet it are read."""
        rows = self._connections.read_blocking(
            _WINDOW_SQL.format(s=self._s), (run_id, key, low, high)
        )
        return decode_window(self._codec, rows, low, high)

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
        wholes = self._connections.read_blocking(
            f"SELECT level, {_AGGREGATE_COLUMNS} FROM {self._s}.rollups WHERE run_id = %s "
            f"AND key = %s AND level IN (0, {FOLDED}) AND bucket = 0",
            (run_id, key),
        )
        return downsample_stored(_SeriesSource(self, run_id, key), wholes, points, start, end)

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
        checked = validate_filters(filters)
        if experiment_id is not None:
            await self._require_experiment(experiment_id)
        return await anyio.to_thread.run_sync(self._filter_blocking, experiment_id, checked, view)

    def _filter_blocking(
        self, experiment_id: str | None, checked: list[ParamFilter], view: RunView
    ) -> list[Run]:
        selection = self._selection_blocking(checked)
        if selection is None:
            return []
        where, args = _scope(experiment_id, selection, view)
        rows = self._connections.read_blocking(
            f"SELECT {RUN_COLUMNS}, params FROM {self._s}.runs WHERE {where} "
            "ORDER BY created_at, id",
            args,
        )
        return _public_runs(rows)

    def _selection_blocking(self, checked: list[ParamFilter]) -> tuple[str, list[Any]] | None:
        """SQL over ``runs`` that selects the runs matching every filter (``true``: no filters)."""
        selection = SelectionSql(f"{self._s}.params", "%s", _ids, "true")
        return select_runs(checked, condition, self._connections.read_blocking, selection)

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
        """A page of the matching runs in a search order, sorted and cut in SQL."""
        checked = validate_filters(filters)
        order, cursor = check_page(order_by, desc, limit, after)
        if experiment_id is not None:
            await self._require_experiment(experiment_id)
        return await anyio.to_thread.run_sync(
            self._search_blocking, experiment_id, checked, order, desc, limit, cursor, view
        )

    def _search_blocking(
        self,
        experiment_id: str | None,
        checked: list[ParamFilter],
        order: str,
        desc: bool,
        limit: int,
        cursor: tuple[SortKey, str] | None,
        view: RunView,
    ) -> RunPage:
        selection = self._selection_blocking(checked)
        if selection is None:
            return RunPage([], None, 0)
        where, args = _scope(experiment_id, selection, view)
        read = self._connections.read_blocking
        s = self._s
        total = int(read(f"SELECT count(*) FROM {s}.runs WHERE {where}", args)[0][0])
        sort = _sort_sql(order, s)
        direction = "DESC" if desc else "ASC"
        values = ", ".join(f"v{i}" for i in range(len(sort.values)))
        # The sort runs over narrow rows (id and key); only the page's runs are then read
        # whole, by id, and decoded.
        keyed = (
            f"SELECT runs.id AS id, ({sort.missing})::int AS m, "
            + "".join(f"{value} AS v{i}, " for i, value in enumerate(sort.values))
            + f"{sort.last} AS last FROM {s}.runs {sort.join} WHERE {where}"
        )
        page_args = [*sort.join_args, *args]
        cut = ""
        if cursor is not None:
            key, cursor_id = cursor
            marks = ", ".join(["%s"] * len(sort.values))
            cut = (
                f" WHERE m > %s OR (m = %s AND ({values}, id) {'<' if desc else '>'} ({marks}, %s))"
            )
            page_args += [key[0], key[0], *sort.cursor_args(key), cursor_id]
        ordering = ", ".join(f"v{i} {direction}" for i in range(len(sort.values)))
        again = ", ".join(f"k.v{i} {direction}" for i in range(len(sort.values)))
        sql = (
            f"SELECT {_RUN_COLUMNS_OF_R}, r.params, k.last "
            f"FROM (SELECT * FROM ({keyed}) keyed{cut} "
            f"ORDER BY m, {ordering}, id {direction} LIMIT %s) k "
            f"JOIN {s}.runs r ON r.id = k.id "
            f"ORDER BY k.m, {again}, k.id {direction}"
        )
        rows = read(sql, [*page_args, limit + 1])
        more = len(rows) > limit
        rows = rows[:limit]
        runs = _public_runs(rows)
        following = None
        if more and runs:
            last = runs[-1]
            if order.startswith("metric:"):
                position = metric_sort_key(rows[-1][-1])
            else:
                position = run_sort_key(last, order)
            following = encode_cursor(order, desc, position, last.id)
        return RunPage(runs, following, total)

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


_SERIES_SQL = (
    "SELECT j.version, j.body FROM {s}.metrics m JOIN {s}.journal j ON j.position = m.position "
    "WHERE m.run_id = %s AND m.key = %s ORDER BY m.position"
)
_WINDOW_SQL = (
    "SELECT j.version, j.body FROM {s}.metrics m JOIN {s}.journal j ON j.position = m.position "
    "WHERE m.run_id = %s AND m.key = %s AND m.last_step >= %s AND m.first_step <= %s "
    "ORDER BY m.position"
)
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
        window = self._queries._window_blocking(self._run_id, self._key, low, high)
        return window.step.tolist(), window.value.tolist()


_VIEWS = {RunView.ACTIVE: " AND NOT hidden", RunView.HIDDEN: " AND hidden", RunView.ALL: ""}
"""The ``WHERE`` clause that a :class:`RunView` adds to a query of ``runs``."""

_STATUS = {status.value: status for status in RunStatus}
_RUN_COLUMNS_OF_R = ", ".join(f"r.{column.strip()}" for column in RUN_COLUMNS.split(","))
_decode_tags = msgspec.msgpack.Decoder(dict[str, str]).decode


def _public_run(row: Sequence[Any]) -> Run:
    """A ``runs`` row selected as ``RUN_COLUMNS, params`` (and maybe more)."""
    # Straight to a Run: through a RunRow, its tags would be decoded, then copied.
    return Run(
        row[0],
        row[1],
        row[2],
        _STATUS[row[3]],
        row[4],
        row[5],
        row[6],
        decode_params(row[10]),
        _decode_tags(row[7]),
        row[8],
        bool(row[9]),
    )


def _public_runs(rows: list[Any]) -> list[Run]:
    """``runs`` rows selected as ``RUN_COLUMNS, params`` (and maybe more), decoded."""
    # Thousands of small dicts at once: the cyclic collector, which would run many times
    # over them meanwhile, finds nothing to collect in freshly decoded data.
    enabled = gc.isenabled()
    gc.disable()
    try:
        return [_public_run(row) for row in rows]
    finally:
        if enabled:
            gc.enable()


def _scope(
    experiment_id: str | None, selection: tuple[str, list[Any]], view: RunView
) -> tuple[str, list[Any]]:
    """The WHERE clause over ``runs`` of a selection, within one experiment or all, in ``view``."""
    where, args = selection
    where += _VIEWS[view]
    if experiment_id is None:
        return where, args
    return f"{where} AND experiment_id = %s", [*args, experiment_id]


class _Sort(NamedTuple):
    """The SQL of ``filtering.SortKey`` for one search order.

    ``missing`` is true for a run without the key; ``values`` order the others (each
    in the search's direction), with no NULLs, so that a row comparison can resume
    after a cursor; ``cursor_args`` turns a cursor's key into the same values.
    ``last`` is the metric's last value (for the next cursor), else NULL.
    """

    join: str
    join_args: list[Any]
    missing: str
    values: list[str]
    cursor_args: Callable[[SortKey], list[Any]]
    last: str = "NULL::float8"


def _first(key: SortKey) -> list[Any]:
    return [key[2]]


def _name_arg(key: SortKey) -> list[Any]:
    return [key[2] if isinstance(key[2], str) else ""]


def _metric_arg(key: SortKey) -> list[Any]:
    return [float(key[2])]


def _param_args(key: SortKey) -> list[Any]:
    _, rank, value = key
    if isinstance(value, str):
        return [rank, Decimal(0), value.encode()]
    return [rank, Decimal(value), b""]


def _sort_sql(order: str, s: str) -> _Sort:
    if order == "created_at":
        return _Sort("", [], "false", ["created_at"], _first)
    if order == "status":
        return _Sort("", [], "false", ['status COLLATE "C"'], _first)
    if order == "name":
        # Text in the C collation orders as code points do (UTF-8 bytes).
        return _Sort("", [], "name IS NULL", ["coalesce(name, '') COLLATE \"C\""], _name_arg)
    if order.startswith("metric:"):
        # The whole-series rollup (level 0, bucket 0) holds the last value; NaN sorts
        # above Infinity in PostgreSQL, so this range leaves out NaN, ±Infinity and NULL.
        join = (
            f"LEFT JOIN {s}.rollups u ON u.run_id = runs.id AND u.key = %s "
            "AND u.level = 0 AND u.bucket = 0"
        )
        finite = "coalesce(u.last_value > '-Infinity' AND u.last_value < 'Infinity', false)"
        value = f"CASE WHEN {finite} THEN u.last_value ELSE 0 END"
        return _Sort(
            join, [order[len("metric:") :]], f"NOT {finite}", [value], _metric_arg, "u.last_value"
        )
    join = f"LEFT JOIN {s}.params p ON p.key = %s AND p.run_id = runs.id"
    rank = (
        f"CASE WHEN p.kind IS NULL OR p.num IS NOT NULL THEN 0 WHEN p.kind = {STR} THEN 1 "
        f"WHEN p.kind = {BOOL} THEN 2 ELSE 3 END"
    )
    num = (  # msgpack's true is the byte C3
        f"coalesce(p.num, CASE WHEN p.kind = {BOOL} AND p.value = '\\xc3'::bytea THEN 1 ELSE 0 END)"
    )
    utf8 = "coalesce(p.utf8, ''::bytea)"
    return _Sort(join, [order[len("param:") :]], "p.kind IS NULL", [rank, num, utf8], _param_args)


def _ids(run_ids: set[str]) -> tuple[str, list[str]]:
    return "SELECT unnest(%s::text[])", sorted(run_ids)
