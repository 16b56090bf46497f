"""The read side: every query of the store, as SQL over the projection tables and the journal.

Each query runs on an anyio worker thread through the read connection
(``Connections.read``), so it never blocks the caller's event loop. Decoding
long answers (a metric series, matching params) happens on that same thread,
after the read lock is released.
"""

from __future__ import annotations

import gc
import json
from collections.abc import AsyncIterator, Sequence
from typing import Any

import anyio.to_thread
import msgspec

from runjournal.errors import ArtifactNotFound, ExperimentNotFound, RunNotFound
from runjournal.events import EventCodec
from runjournal.filtering import RunPage, SortKey, check_page, encode_cursor, validate_filters
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
from runjournal.rollups import FOLDED, LEVELS, Aggregate, Piece
from runjournal.stores._overlay import (
    EXPERIMENT_COLUMNS,
    RUN_COLUMNS,
    decode_params,
    experiment_row,
)
from runjournal.stores._search import SelectionSql, select_runs
from runjournal.stores._series import decode_series, decode_window, downsample_stored
from runjournal.stores.base import JournalEntry, RawEntry
from runjournal.stores.sqlite.connection import Connections
from runjournal.stores.sqlite.filters import BOOL, STR, condition

__all__ = ["SqliteQueries"]


class SqliteQueries:
    """The query methods of the SQLite store (``Queries``, plus reading the journal)."""

    def __init__(self, connections: Connections, codec: EventCodec) -> None:
        self._connections = connections
        self._codec = codec

    async def _fetchone(self, sql: str, args: Sequence[Any] = ()) -> Any:
        rows = await self._connections.read(sql, args)
        return rows[0] if rows else None

    async def _require_run(self, run_id: str) -> None:
        if await self._fetchone("SELECT 1 FROM runs WHERE id = ?", (run_id,)) is None:
            raise RunNotFound(run_id)

    async def _require_experiment(self, experiment_id: str) -> None:
        found = await self._fetchone("SELECT 1 FROM experiments WHERE id = ?", (experiment_id,))
        if found is None:
            raise ExperimentNotFound(experiment_id)

    async def get_experiment(self, experiment_id: str) -> Experiment:
        row = await self._fetchone(
            f"SELECT {EXPERIMENT_COLUMNS} FROM experiments WHERE id = ?", (experiment_id,)
        )
        if row is None:
            raise ExperimentNotFound(experiment_id)
        return experiment_row(row)

    async def list_experiments(self) -> list[Experiment]:
        rows = await self._connections.read(
            f"SELECT {EXPERIMENT_COLUMNS} FROM experiments ORDER BY created_at, id"
        )
        return [experiment_row(r) for r in rows]

    async def find_experiment(self, name: str) -> Experiment | None:
        row = await self._fetchone(
            f"SELECT {EXPERIMENT_COLUMNS} FROM experiments WHERE name = ? "
            "ORDER BY created_at, id LIMIT 1",
            (name,),
        )
        return None if row is None else experiment_row(row)

    async def is_deleted(self, entity_id: str) -> bool:
        found = await self._fetchone("SELECT 1 FROM tombstones WHERE id = ?", (entity_id,))
        return found is not None

    async def get_run(self, run_id: str) -> Run:
        row = await self._fetchone(
            f"SELECT {RUN_COLUMNS}, params FROM runs WHERE id = ?", (run_id,)
        )
        if row is None:
            raise RunNotFound(run_id)
        return _public_run(row)

    async def list_runs(self, experiment_id: str, view: RunView = RunView.ACTIVE) -> list[Run]:
        await self._require_experiment(experiment_id)
        return await self._connections.read_then(
            f"SELECT {RUN_COLUMNS}, params FROM runs WHERE experiment_id = ?{_VIEWS[view]} "
            "ORDER BY created_at, id",
            (experiment_id,),
            _public_runs,
        )

    async def get_params(self, run_id: str) -> dict[str, Any]:
        row = await self._fetchone("SELECT params FROM runs WHERE id = ?", (run_id,))
        if row is None:
            raise RunNotFound(run_id)
        return decode_params(row[0])

    async def get_metrics(self, run_id: str, key: str) -> list[MetricPoint]:
        await self._require_run(run_id)
        return await self._connections.read_then(_SERIES_SQL, (run_id, key), self._decode_points)

    async def get_metric_arrays(self, run_id: str, key: str) -> MetricArrays:
        """The series as three new columns (``'q'``, ``'d'``, ``'d'``), in get_metrics order."""
        await self._require_run(run_id)
        return await self._connections.read_then(_SERIES_SQL, (run_id, key), self._decode_arrays)

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
        return self._series_points(run_id, key, low, high)

    def _require_run_blocking(self, run_id: str) -> None:
        if not self._connections.read_blocking("SELECT 1 FROM runs WHERE id = ?", (run_id,)):
            raise RunNotFound(run_id)

    def _series_points(self, run_id: str, key: str, low: int, high: int) -> list[MetricPoint]:
        return to_points(self._window_blocking(run_id, key, low, high))

    def _window_blocking(self, run_id: str, key: str, low: int, high: int) -> MetricArrays:
        """The points with step in ``[low, high]``; only the entries that meet it are read."""
        rows = self._connections.read_blocking(_WINDOW_SQL, (run_id, key, low, high))
        return decode_window(self._codec, rows, low, high)

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
        wholes = self._connections.read_blocking(_WHOLES_SQL, (run_id, key))
        return downsample_stored(_SeriesSource(self, run_id, key), wholes, points, start, end)

    async def metric_summaries(
        self, run_ids: Sequence[str], keys: Sequence[str] | None = None
    ) -> dict[str, dict[str, MetricBucket]]:
        """Per live run of ``run_ids``, its whole-series summary per key (of ``keys``, or all)."""
        ids = json.dumps(list(run_ids))
        read = self._connections.read
        live = await read("SELECT id FROM runs WHERE id IN (SELECT value FROM json_each(?))", [ids])
        out: dict[str, dict[str, MetricBucket]] = {r[0]: {} for r in live}
        if not out:
            return {}
        sql = (
            f"SELECT run_id, key, {_AGGREGATE_COLUMNS} FROM rollups WHERE level = 0 "
            "AND run_id IN (SELECT value FROM json_each(?))"
        )
        args = [ids]
        if keys is not None:
            sql += " AND key IN (SELECT value FROM json_each(?))"
            args.append(json.dumps(list(keys)))
        for row in await read(sql + " ORDER BY run_id, key", args):
            out[row[0]][row[1]] = _aggregate(row[2:]).to_bucket()
        return {run_id: out[run_id] for run_id in run_ids if run_id in out}

    async def metric_rollups(self, run_id: str, key: str) -> list[tuple[int, int, Aggregate]]:
        """Every stored rollup bucket of the series as ``(level, bucket, aggregate)``, sorted."""
        await self._require_run(run_id)
        rows = await self._connections.read(
            f"SELECT level, bucket, {_AGGREGATE_COLUMNS} FROM rollups "
            f"WHERE level IN ({_ALL_LEVELS}) AND run_id = ? AND key = ? "
            "ORDER BY level, bucket",
            (run_id, key),
        )
        return [(r[0], r[1], _aggregate(r[2:])) for r in rows]

    async def list_metric_keys(self, run_id: str) -> list[str]:
        await self._require_run(run_id)
        rows = await self._connections.read(
            "SELECT DISTINCT key FROM metrics WHERE run_id = ? ORDER BY key", (run_id,)
        )
        return [r[0] for r in rows]

    async def list_artifacts(self, run_id: str) -> list[ArtifactRef]:
        await self._require_run(run_id)
        rows = await self._connections.read(
            "SELECT run_id, name, sha256, size_bytes, created_at FROM artifacts "
            "WHERE run_id = ? ORDER BY position",
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
            "SELECT name FROM artifacts WHERE sha256 = ? ORDER BY created_at, position LIMIT 1",
            (sha256,),
        )
        return None if row is None else str(row[0])

    def chunk_ids_blocking(self, sha256: str) -> list[int]:
        """The chunk ids of a content, in order; raises ``ArtifactNotFound``."""
        rows = self._connections.read_blocking(
            "SELECT c.size_bytes, m.chunk FROM contents c "
            "LEFT JOIN content_chunks m ON m.sha256 = c.sha256 "
            "WHERE c.sha256 = ? ORDER BY m.idx",
            (sha256,),
        )
        if not rows:
            raise ArtifactNotFound(sha256)
        return [int(chunk) for _, chunk in rows if chunk is not None]

    def chunk_blocking(self, chunk: int) -> tuple[bytes, bytes]:
        """One chunk's digest and bytes; raises ``ArtifactNotFound`` if it is gone (purged)."""
        rows = self._connections.read_blocking(
            "SELECT digest, data FROM chunks WHERE id = ?", (chunk,)
        )
        if not rows:
            raise ArtifactNotFound(f"chunk {chunk}")
        return bytes(rows[0][0]), bytes(rows[0][1])

    async def get_span_id(self, run_id: str) -> str | None:
        await self._require_run(run_id)
        row = await self._fetchone("SELECT span_id FROM span_ids WHERE run_id = ?", (run_id,))
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
            f"SELECT {RUN_COLUMNS}, params FROM runs WHERE {where} ORDER BY created_at, id", args
        )
        return _public_runs(rows)

    def _selection_blocking(self, checked: list[ParamFilter]) -> tuple[str, list[Any]] | None:
        """SQL that selects the ids of the runs matching every filter (``"1"``: no filters)."""
        return select_runs(checked, condition, self._connections.read_blocking, _SELECTION)

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
        total = int(read(f"SELECT count(*) FROM runs WHERE {where}", args)[0][0])
        join, m, r, v, join_args = _sort_columns(order)
        direction = "DESC" if desc else "ASC"
        # The sort runs over narrow rows (id and key); only the page's runs are then read
        # whole, by id, and decoded.
        keyed = f"SELECT runs.id AS id, {m} AS m, {r} AS r, {v} AS v FROM runs {join} WHERE {where}"
        page_args = [*join_args, *args]
        cut = ""
        after = "<" if desc else ">"
        if m == "0" and r == "0":
            # Every run has the key: in this form, a search by created_at walks
            # runs_by_creation from the cursor and stops at the page's end.
            ordering = f"ORDER BY v {direction}, id {direction}"
            if cursor is not None:
                (_, _, cv), cursor_id = cursor
                cut = f" WHERE (v, id) {after} (?, ?)"
                page_args += [cv, cursor_id]
        else:
            ordering = f"ORDER BY m, r {direction}, v {direction}, id {direction}"
            if cursor is not None:
                (cm, cr, cv), cursor_id = cursor
                cut = f" WHERE m > ? OR (m = ? AND (r, v, id) {after} (?, ?, ?))"
                page_args += [cm, cm, cr, cv, cursor_id]
        sql = (
            f"SELECT {_RUN_COLUMNS_OF_R}, r.params, k.m, k.r, k.v "
            f"FROM (SELECT * FROM ({keyed}){cut} {ordering} LIMIT ?) k "
            f"JOIN runs r ON r.id = k.id "
            f"ORDER BY k.m, k.r {direction}, k.v {direction}, k.id {direction}"
        )
        rows = read(sql, [*page_args, limit + 1])
        more = len(rows) > limit
        rows = rows[:limit]
        runs = _public_runs(rows)
        last = rows[-1] if rows else None
        following = (
            encode_cursor(order, desc, (last[-3], last[-2], last[-1]), last[0])
            if more and last is not None
            else None
        )
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

    def read_journal_raw_blocking(self, after: int = 0, limit: int | None = None) -> list[RawEntry]:
        """:meth:`read_journal_raw` on the calling thread (an export reads every page on one)."""
        rows = self._connections.read_blocking(
            _JOURNAL_PAGE, (after, -1 if limit is None else limit)
        )
        return [RawEntry(p, s, q, t, v, b) for p, s, q, t, v, b in rows]

    async def _read_journal(self, after: int, limit: int | None) -> list[Any]:
        return await self._connections.read(_JOURNAL_PAGE, (after, -1 if limit is None else limit))

    async def head(self) -> int:
        """The position of the newest entry (0 for an empty journal)."""
        row = await self._fetchone("SELECT coalesce(max(position), 0) FROM journal")
        return int(row[0])


_SERIES_SQL = (
    "SELECT j.version, j.body FROM metrics m JOIN journal j ON j.position = m.position "
    "WHERE m.run_id = ? AND m.key = ? ORDER BY m.position"
)
_WINDOW_SQL = (
    "SELECT j.version, j.body FROM metrics m JOIN journal j ON j.position = m.position "
    "WHERE m.run_id = ? AND m.key = ? AND m.last_step >= ? AND m.first_step <= ? "
    "ORDER BY m.position"
)
_JOURNAL_PAGE = (
    "SELECT position, source, seq, recorded_at, version, body FROM journal "
    "WHERE position > ? ORDER BY position LIMIT ?"
)
_AGGREGATE_COLUMNS = (
    "first_step, last_step, min_value, max_value, first_value, last_value, count, nonfinite"
)
_ALL_LEVELS = ", ".join(map(str, LEVELS))
# Naming every level lets SQLite seek by the key (level, run_id, key, bucket) instead of scanning.
_WHOLES_SQL = (
    f"SELECT level, {_AGGREGATE_COLUMNS} FROM rollups "
    f"WHERE level IN (0, {FOLDED}) AND run_id = ? AND key = ? AND bucket = 0"
)
_NAN = float("nan")
_STEP_MAX = 2**63 - 1


def _aggregate(row: Sequence[Any]) -> Aggregate:
    """A rollup row selected as ``_AGGREGATE_COLUMNS``; a NULL first or last value is NaN."""
    first_step, last_step, lo, hi, first, last, count, nonfinite = row
    return Aggregate(
        first_step,
        last_step,
        lo,
        hi,
        _NAN if first is None else float(first),
        _NAN if last is None else float(last),
        count,
        nonfinite,
    )


def _bounds(start: int | None, end: int | None) -> tuple[int, int]:
    return (0 if start is None else max(start, 0)), (
        _STEP_MAX if end is None else min(end, _STEP_MAX)
    )


class _SeriesSource:
    """A ``rollups.Source`` over one series, read on the calling (worker) thread."""

    def __init__(self, queries: SqliteQueries, run_id: str, key: str) -> None:
        self._queries = queries
        self._run_id = run_id
        self._key = key

    def buckets(self, level: int, low: int, high: int) -> list[Piece]:
        rows: list[Piece] = self._queries._connections.read_blocking(
            f"SELECT {_AGGREGATE_COLUMNS} FROM rollups "
            "WHERE level = ? AND run_id = ? AND key = ? AND bucket BETWEEN ? AND ? ORDER BY bucket",
            (level, self._run_id, self._key, low, high),
        )
        return rows

    def points(self, low: int, high: int) -> tuple[list[int], list[float]]:
        window = self._queries._window_blocking(self._run_id, self._key, low, high)
        return window.step.tolist(), window.value.tolist()


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


_STATUS = {status.value: status for status in RunStatus}
_RUN_COLUMNS_OF_R = ", ".join(f"r.{column.strip()}" for column in RUN_COLUMNS.split(","))
_decode_tags = msgspec.msgpack.Decoder(dict[str, str]).decode


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
    if not args:  # no filters
        return f"experiment_id = ? AND {where}", [experiment_id]
    # The unary + keeps SQLite from walking all of the experiment's runs through
    # runs_by_experiment: it looks up the selected ones, then checks their experiment.
    return f"{where} AND +experiment_id = ?", [*args, experiment_id]


_VIEWS = {RunView.ACTIVE: " AND hidden = 0", RunView.HIDDEN: " AND hidden = 1", RunView.ALL: ""}
"""The ``WHERE`` clause that a :class:`RunView` adds to a query of ``runs``."""


def _sort_columns(order: str) -> tuple[str, str, str, str, list[Any]]:
    """``(join, missing, rank, value, join args)``: the SQL of ``filtering.SortKey`` for an order."""
    if order in ("created_at", "status"):
        return "", "0", "0", order, []
    if order == "name":
        return "", "name IS NULL", "0", "coalesce(name, 0)", []
    if order.startswith("metric:"):
        # The whole-series rollup (level 0, bucket 0) holds the last value; NaN is NULL
        # there, and 9e999 is +inf.
        join = (
            "LEFT JOIN rollups u ON u.level = 0 AND u.run_id = runs.id AND u.key = ? "
            "AND u.bucket = 0"
        )
        finite = "coalesce(abs(u.last_value) < 9e999, 0)"
        value = f"CASE WHEN {finite} THEN u.last_value ELSE 0 END"
        return join, f"NOT {finite}", "0", value, [order[len("metric:") :]]
    join = "LEFT JOIN params p ON p.key = ? AND p.run_id = runs.id"
    rank = (
        f"CASE WHEN p.kind IS NULL OR p.num IS NOT NULL THEN 0 WHEN p.kind = {STR} THEN 1 "
        f"WHEN p.kind = {BOOL} THEN 2 ELSE 3 END"
    )
    value = (  # msgpack's true is the byte C3
        f"CASE WHEN p.num IS NOT NULL THEN p.num WHEN p.kind = {STR} THEN p.text "
        f"WHEN p.kind = {BOOL} THEN p.value = X'C3' ELSE 0 END"
    )
    return join, "p.kind IS NULL", rank, value, [order[len("param:") :]]


def _ids(run_ids: set[str]) -> tuple[str, str]:
    return "SELECT value FROM json_each(?)", _json_list(run_ids)


_SELECTION = SelectionSql(params="params", mark="?", ids=_ids, true="1")


def _json_list(items: set[str]) -> str:
    """``items`` as one JSON array: a parameter for ``IN (SELECT value FROM json_each(?))``."""
    return json.dumps(sorted(items))
