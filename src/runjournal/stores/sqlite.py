"""The SQLite store: an append-only journal plus projection tables in one file.

Writes come from the writer thread through a plain ``sqlite3`` connection: a whole
batch is one ``BEGIN IMMEDIATE ... COMMIT`` with no event-loop hop per statement.
Reads go through ``aiosqlite`` so that queries never block the caller's loop. The
database runs in WAL mode, so readers and the writers of other processes do not
block each other; a busy timeout absorbs the short waits that remain.

Metric points are stored once: a ``metrics.logged`` journal entry carries a batch
of points, and the ``metrics`` projection indexes those entries by (run, key).
"""

from __future__ import annotations

import os
import sqlite3
import threading
import warnings
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any, Literal

import aiosqlite
import anyio.to_thread
import msgspec

from runjournal.errors import (
    ArtifactNotFound,
    ExperimentNotFound,
    NotARunJournalDatabase,
    RunNotFound,
    StoreError,
    StoreFull,
    StoreLocked,
    StoreReadOnly,
)
from runjournal.events import EVENT_VERSION, BlobStored, EventCodec, MetricLogged, MetricsLogged
from runjournal.filtering import matches, validate_filters
from runjournal.ids import new_id
from runjournal.model import ArtifactRef, Experiment, MetricPoint, ParamFilter, Run, RunStatus
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
from runjournal.stores._sqlite_schema import (
    PROJECTION_TABLES,
    PROJECTIONS,
    ensure_schema,
    statements,
)
from runjournal.stores.base import AppendResult, JournalEntry, NewEntry, RawEntry

__all__ = ["Durability", "SqliteBackend", "translate_error"]

Durability = Literal["normal", "full"]

_encode = msgspec.msgpack.Encoder().encode
_decode_any = msgspec.msgpack.Decoder().decode
_decode_params = msgspec.msgpack.Decoder(dict[str, Any]).decode
_decode_tags = msgspec.msgpack.Decoder(dict[str, str]).decode

# Connections inherited through fork() must never be used or closed by the child:
# closing them could release the parent's locks or remove its WAL. Keep them alive.
_ABANDONED: list[object] = []


def translate_error(exc: sqlite3.Error, where: str) -> StoreError:
    """Turn an ``sqlite3`` error into the matching runjournal error (the one boundary)."""
    name = getattr(exc, "sqlite_errorname", "") or ""
    if name.startswith(("SQLITE_BUSY", "SQLITE_LOCKED")):
        return StoreLocked(f"{where}: the database stayed locked by another process ({exc})")
    if name.startswith("SQLITE_FULL"):
        return StoreFull(f"{where}: the disk or the database size limit is full ({exc})")
    if name.startswith("SQLITE_READONLY") or (
        name.startswith("SQLITE_CANTOPEN") and _read_only_location(where)
    ):
        return StoreReadOnly(f"{where}: the database cannot be written ({exc})")
    if name in ("SQLITE_NOTADB", "SQLITE_CORRUPT"):
        return NotARunJournalDatabase(f"{where} is not a usable runjournal database ({exc})")
    return StoreError(f"{where}: {exc}")


def _read_only_location(path: str) -> bool:
    directory = os.path.dirname(os.path.abspath(path)) or "."
    return os.path.exists(directory) and not os.access(directory, os.W_OK)


class _TxnView:
    """The projection state as the open write transaction sees it."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self._conn = conn

    def experiment(self, experiment_id: str) -> ExperimentRow | None:
        row = self._conn.execute(
            "SELECT id, name, description, config, tags, created_at, updated_at "
            "FROM experiments WHERE id = ?",
            (experiment_id,),
        ).fetchone()
        return None if row is None else _experiment_row(row)

    def run(self, run_id: str) -> RunRow | None:
        row = self._conn.execute(
            f"SELECT {_RUN_COLUMNS} FROM runs WHERE id = ?", (run_id,)
        ).fetchone()
        return None if row is None else _run_row(row)

    def is_deleted(self, entity_id: str) -> bool:
        found = self._conn.execute("SELECT 1 FROM tombstones WHERE id = ?", (entity_id,)).fetchone()
        return found is not None


_RUN_COLUMNS = "id, experiment_id, name, status, created_at, start_time, end_time, tags"
_EXPERIMENT_COLUMNS = "id, name, description, config, tags, created_at, updated_at"


def _experiment_row(row: Sequence[Any]) -> ExperimentRow:
    return ExperimentRow(
        id=row[0],
        name=row[1],
        description=row[2],
        config=None if row[3] is None else _decode_params(row[3]),
        tags=_decode_tags(row[4]),
        created_at=row[5],
        updated_at=row[6],
    )


def _run_row(row: Sequence[Any]) -> RunRow:
    return RunRow(
        id=row[0],
        experiment_id=row[1],
        name=row[2],
        status=RunStatus(row[3]),
        created_at=row[4],
        start_time=row[5],
        end_time=row[6],
        tags=_decode_tags(row[7]),
    )


def _public_run(row: Sequence[Any]) -> Run:
    """A ``runs`` row selected as ``_RUN_COLUMNS, params``."""
    return _run_row(row).to_public(_decode_params(row[8]))


class SqliteBackend:
    """A runjournal database in one SQLite file (or ``":memory:"``).

    ``durability="normal"`` (WAL with ``synchronous=NORMAL``) survives any crash of
    the process; ``"full"`` also survives power loss, at the price of an fsync per
    commit. ``pragmas`` are extra ``PRAGMA`` settings applied to every connection.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        durability: Durability = "normal",
        busy_timeout: float = 30.0,
        pragmas: Mapping[str, int | str] | None = None,
    ) -> None:
        if durability not in ("normal", "full"):
            raise ValueError(f"durability must be 'normal' or 'full', got {durability!r}")
        if busy_timeout < 0:
            raise ValueError("busy_timeout must be >= 0")
        self._path = os.fspath(path)
        self._memory = self._path == ":memory:"
        # A named memdb database lets the writer and the reader share one in-memory file.
        self._target = f"file:/runjournal-{new_id()}?vfs=memdb" if self._memory else self._path
        self.durability: Durability = durability
        self.busy_timeout = busy_timeout
        self._pragmas = dict(pragmas or {})
        self._codec = EventCodec()
        self._lock = threading.RLock()
        self._write_conn: sqlite3.Connection | None = None
        self._read_conn: aiosqlite.Connection | None = None
        self._pid = os.getpid()

    def __repr__(self) -> str:
        return f"SqliteBackend({self._path!r}, durability={self.durability!r})"

    @property
    def path(self) -> str:
        return self._path

    @property
    def spec(self) -> str:
        return self._path

    @property
    def shareable(self) -> bool:
        return not self._memory

    # -- connections -------------------------------------------------------------------------
    def _connect(self) -> sqlite3.Connection:
        try:
            conn = sqlite3.connect(
                self._target,
                timeout=self.busy_timeout,
                isolation_level=None,
                check_same_thread=False,
                uri=self._memory,
            )
        except sqlite3.Error as exc:
            raise translate_error(exc, self._path) from exc
        try:
            if not self._memory:
                mode = conn.execute("PRAGMA journal_mode").fetchone()[0]
                if mode != "wal":
                    conn.execute("PRAGMA journal_mode=WAL")
            sync = "FULL" if self.durability == "full" else "NORMAL"
            conn.execute(f"PRAGMA synchronous={sync}")
            for name, value in self._pragmas.items():
                conn.execute(f"PRAGMA {_pragma_name(name)}={_pragma_value(value)}")
            ensure_schema(conn, self._path)
        except sqlite3.Error as exc:
            conn.close()
            raise translate_error(exc, self._path) from exc
        except BaseException:
            conn.close()
            raise
        return conn

    def _check_fork(self) -> None:
        if self._pid != os.getpid():
            # We are a forked child: the parent's connections are not ours to use.
            _ABANDONED.extend(c for c in (self._write_conn, self._read_conn) if c is not None)
            self._write_conn = None
            self._read_conn = None
            self._lock = threading.RLock()
            self._pid = os.getpid()

    def _writer(self) -> sqlite3.Connection:
        self._check_fork()
        if self._write_conn is None:
            self._write_conn = self._connect()
        return self._write_conn

    async def _reader(self) -> aiosqlite.Connection:
        self._check_fork()
        if self._read_conn is None:
            await anyio.to_thread.run_sync(self._open_sync)
            conn = await aiosqlite.connect(
                self._target, timeout=self.busy_timeout, uri=self._memory
            )
            try:
                await conn.execute("PRAGMA query_only=1")
            except BaseException:
                await conn.close()
                raise
            if self._read_conn is None:
                self._read_conn = conn
            else:  # another task opened one meanwhile
                await conn.close()
        return self._read_conn

    def _open_sync(self) -> None:
        with self._lock:
            self._writer()

    async def open(self) -> None:
        await self._reader()

    async def close(self) -> None:
        self._check_fork()
        reader, self._read_conn = self._read_conn, None
        if reader is not None:
            await reader.close()
        self.close_writer()

    def release(self) -> None:
        self._check_fork()
        reader, self._read_conn = self._read_conn, None
        if reader is not None:
            with warnings.catch_warnings():
                # aiosqlite looks for an event loop to hand back a future we do not need.
                warnings.simplefilter("ignore", DeprecationWarning)
                reader.stop()
        self.close_writer()

    def close_writer(self) -> None:
        """Close the blocking connection (the writer thread's)."""
        with self._lock:
            self._check_fork()
            conn, self._write_conn = self._write_conn, None
            if conn is not None:
                conn.close()

    def apply_pragmas(self, pragmas: Mapping[str, int | str]) -> None:
        """Set ``PRAGMA`` values now on the open write connection and on every future one."""
        with self._lock:
            self._pragmas.update(pragmas)
            conn = self._writer()
            for name, value in pragmas.items():
                conn.execute(f"PRAGMA {_pragma_name(name)}={_pragma_value(value)}")

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            conn = self._writer()
            try:
                conn.execute("BEGIN IMMEDIATE")
                try:
                    yield conn
                    conn.execute("COMMIT")
                except BaseException:
                    if conn.in_transaction:
                        conn.execute("ROLLBACK")
                    raise
            except sqlite3.Error as exc:
                raise translate_error(exc, self._path) from exc

    # -- writing -----------------------------------------------------------------------------
    def append(self, entries: Sequence[NewEntry], blobs: Sequence[BlobStored] = ()) -> AppendResult:
        with self._transaction() as conn:
            if blobs:
                conn.executemany(
                    "INSERT OR IGNORE INTO blobs (sha256, data) VALUES (?, ?)",
                    [(b.sha256, b.data) for b in blobs],
                )
            view = _TxnView(conn)
            appended = duplicates = 0
            rejected: list[tuple[int, str]] = []
            encode = self._codec.encode
            for index, entry in enumerate(entries):
                exists = conn.execute(
                    "SELECT 1 FROM journal WHERE source = ? AND seq = ?", (entry.source, entry.seq)
                ).fetchone()
                if exists is not None:
                    duplicates += 1
                    continue
                try:
                    changes = evolve(view, entry.event)
                except Rejected as exc:
                    rejected.append((index, str(exc)))
                    continue
                cursor = conn.execute(
                    "INSERT INTO journal (source, seq, recorded_at, version, body) "
                    "VALUES (?, ?, ?, ?, ?)",
                    (
                        entry.source,
                        entry.seq,
                        entry.recorded_at,
                        EVENT_VERSION,
                        encode(entry.event),
                    ),
                )
                position = cursor.lastrowid
                assert position is not None
                _apply(conn, changes, position)
                appended += 1
            last = conn.execute("SELECT coalesce(max(position), 0) FROM journal").fetchone()[0]
            return AppendResult(appended, duplicates, rejected, int(last))

    def lookup_run(self, run_id: str) -> RunRow | None:
        with self._lock:
            try:
                return _TxnView(self._writer()).run(run_id)
            except sqlite3.Error as exc:
                raise translate_error(exc, self._path) from exc

    def rebuild_sync(self) -> None:
        with self._transaction() as conn:
            for table in PROJECTION_TABLES:
                conn.execute(f"DROP TABLE {table}")
            for statement in statements(PROJECTIONS):
                conn.execute(statement)
            view = _TxnView(conn)
            rows = conn.execute("SELECT position, version, body FROM journal ORDER BY position")
            for position, version, body in rows.fetchall():
                event = self._codec.decode(body, version)
                try:
                    changes = evolve(view, event)
                except Rejected as exc:
                    raise StoreError(
                        f"{self._path}: journal entry {position} no longer applies: {exc}"
                    ) from exc
                _apply(conn, changes, position)

    async def rebuild(self) -> None:
        await anyio.to_thread.run_sync(self.rebuild_sync)

    # -- reading -----------------------------------------------------------------------------
    async def _fetchall(self, sql: str, args: Sequence[Any] = ()) -> list[Any]:
        conn = await self._reader()
        try:
            async with conn.execute(sql, args) as cursor:
                return list(await cursor.fetchall())
        except sqlite3.Error as exc:
            raise translate_error(exc, self._path) from exc

    async def _fetchone(self, sql: str, args: Sequence[Any] = ()) -> Any:
        rows = await self._fetchall(sql, args)
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
            f"SELECT {_EXPERIMENT_COLUMNS} FROM experiments WHERE id = ?", (experiment_id,)
        )
        if row is None:
            raise ExperimentNotFound(experiment_id)
        return _experiment_row(row).to_public()

    async def list_experiments(self) -> list[Experiment]:
        rows = await self._fetchall(
            f"SELECT {_EXPERIMENT_COLUMNS} FROM experiments ORDER BY created_at, id"
        )
        return [_experiment_row(r).to_public() for r in rows]

    async def get_run(self, run_id: str) -> Run:
        row = await self._fetchone(
            f"SELECT {_RUN_COLUMNS}, params FROM runs WHERE id = ?", (run_id,)
        )
        if row is None:
            raise RunNotFound(run_id)
        return _public_run(row)

    async def list_runs(self, experiment_id: str) -> list[Run]:
        await self._require_experiment(experiment_id)
        rows = await self._fetchall(
            f"SELECT {_RUN_COLUMNS}, params FROM runs WHERE experiment_id = ? "
            "ORDER BY created_at, id",
            (experiment_id,),
        )
        return [_public_run(r) for r in rows]

    async def get_params(self, run_id: str) -> dict[str, Any]:
        row = await self._fetchone("SELECT params FROM runs WHERE id = ?", (run_id,))
        if row is None:
            raise RunNotFound(run_id)
        return _decode_params(row[0])

    async def get_metrics(self, run_id: str, key: str) -> list[MetricPoint]:
        await self._require_run(run_id)
        rows = await self._fetchall(
            "SELECT j.version, j.body FROM metrics m JOIN journal j ON j.position = m.position "
            "WHERE m.run_id = ? AND m.key = ? ORDER BY m.position",
            (run_id, key),
        )
        return await anyio.to_thread.run_sync(self._decode_points, rows)

    def _decode_points(self, rows: list[tuple[int, bytes]]) -> list[MetricPoint]:
        points: list[MetricPoint] = []
        for version, body in rows:
            event = self._codec.decode(body, version)
            if isinstance(event, MetricsLogged):
                points.extend(event.points)
            elif isinstance(event, MetricLogged):
                points.append(MetricPoint(event.step, event.value, event.timestamp))
        points.sort(key=_step)
        return points

    async def list_metric_keys(self, run_id: str) -> list[str]:
        await self._require_run(run_id)
        rows = await self._fetchall(
            "SELECT DISTINCT key FROM metrics WHERE run_id = ? ORDER BY key", (run_id,)
        )
        return [r[0] for r in rows]

    async def list_artifacts(self, run_id: str) -> list[ArtifactRef]:
        await self._require_run(run_id)
        rows = await self._fetchall(
            "SELECT run_id, name, sha256, size_bytes, created_at FROM artifacts "
            "WHERE run_id = ? ORDER BY position",
            (run_id,),
        )
        return [ArtifactRef(*r) for r in rows]

    async def get_artifact_data(self, sha256: str) -> bytes:
        row = await self._fetchone("SELECT data FROM blobs WHERE sha256 = ?", (sha256,))
        if row is None:
            raise ArtifactNotFound(sha256)
        return bytes(row[0])

    async def get_span_id(self, run_id: str) -> str | None:
        await self._require_run(run_id)
        row = await self._fetchone("SELECT span_id FROM span_ids WHERE run_id = ?", (run_id,))
        return None if row is None else str(row[0])

    async def filter_runs(
        self, experiment_id: str | None, filters: Sequence[ParamFilter]
    ) -> list[Run]:
        checked = validate_filters(filters)
        if experiment_id is not None:
            await self._require_experiment(experiment_id)
        scope, args = (
            ("r.experiment_id = ?", [experiment_id]) if experiment_id is not None else ("1", [])
        )
        if not checked:
            rows = await self._fetchall(
                f"SELECT {_RUN_COLUMNS}, params FROM runs r WHERE {scope} ORDER BY created_at, id",
                args,
            )
            return [_public_run(r) for r in rows]
        selected: set[str] | None = None
        for flt in checked:
            candidates = await self._fetchall(
                "SELECT p.run_id, p.value FROM params p JOIN runs r ON r.id = p.run_id "
                f"WHERE p.key = ? AND {scope}",
                [flt.key, *args],
            )
            hits = {
                run_id
                for run_id, value in candidates
                if (selected is None or run_id in selected)
                and matches({flt.key: _decode_any(value)}, flt)
            }
            selected = hits
            if not selected:
                return []
        assert selected is not None
        found: list[Any] = []
        ids = sorted(selected)
        for start in range(0, len(ids), 500):
            chunk = ids[start : start + 500]
            marks = ",".join("?" * len(chunk))
            found.extend(
                await self._fetchall(
                    f"SELECT {_RUN_COLUMNS}, params FROM runs WHERE id IN ({marks})", chunk
                )
            )
        found.sort(key=lambda r: (r[4], r[0]))
        return [_public_run(r) for r in found]

    async def read_journal(self, after: int = 0, limit: int | None = None) -> list[JournalEntry]:
        rows = await self._fetchall(
            "SELECT position, source, seq, recorded_at, version, body FROM journal "
            "WHERE position > ? ORDER BY position LIMIT ?",
            (after, -1 if limit is None else limit),
        )
        decode = self._codec.decode
        return [JournalEntry(p, s, q, t, decode(b, v)) for p, s, q, t, v, b in rows]

    async def read_journal_raw(self, after: int = 0, limit: int | None = None) -> list[RawEntry]:
        """Committed entries with ``position > after``, in order, with their stored bodies."""
        rows = await self._fetchall(
            "SELECT position, source, seq, recorded_at, version, body FROM journal "
            "WHERE position > ? ORDER BY position LIMIT ?",
            (after, -1 if limit is None else limit),
        )
        return [RawEntry(p, s, q, t, v, b) for p, s, q, t, v, b in rows]

    async def head(self) -> int:
        row = await self._fetchone("SELECT coalesce(max(position), 0) FROM journal")
        return int(row[0])

    async def blobs(self, sha256s: Sequence[str]) -> dict[str, bytes]:
        out: dict[str, bytes] = {}
        for sha in sha256s:
            row = await self._fetchone("SELECT data FROM blobs WHERE sha256 = ?", (sha,))
            if row is not None:
                out[sha] = bytes(row[0])
        return out


def _step(point: MetricPoint) -> int:
    return point.step


def _pragma_name(name: str) -> str:
    if not name.replace("_", "").isalnum():
        raise ValueError(f"not a PRAGMA name: {name!r}")
    return name


def _pragma_value(value: int | str) -> str:
    if type(value) is int:
        return str(value)
    if isinstance(value, str) and value.replace("_", "").isalnum():
        return value
    raise ValueError(f"not a PRAGMA value: {value!r}")


def _apply(conn: sqlite3.Connection, changes: list[Change], position: int) -> None:
    for change in changes:
        match change:
            case AddMetrics(run_id=run_id, key=key, points=points):
                conn.execute(
                    "INSERT INTO metrics (run_id, key, position, points) VALUES (?, ?, ?, ?)",
                    (run_id, key, position, len(points)),
                )
            case SetParams(run_id=run_id, params=params):
                (blob,) = conn.execute("SELECT params FROM runs WHERE id = ?", (run_id,)).fetchone()
                merged = _decode_params(blob)
                merged.update(params)
                conn.execute("UPDATE runs SET params = ? WHERE id = ?", (_encode(merged), run_id))
                conn.executemany(
                    "INSERT OR REPLACE INTO params (key, run_id, value) VALUES (?, ?, ?)",
                    [(k, run_id, _encode(v)) for k, v in params.items()],
                )
            case PutRun(row=row):
                conn.execute(
                    "INSERT INTO runs (id, experiment_id, name, status, created_at, start_time, "
                    "end_time, tags, params) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) "
                    "ON CONFLICT (id) DO UPDATE SET status = excluded.status, "
                    "start_time = excluded.start_time, end_time = excluded.end_time, "
                    "tags = excluded.tags, name = excluded.name",
                    (
                        row.id,
                        row.experiment_id,
                        row.name,
                        row.status.value,
                        row.created_at,
                        row.start_time,
                        row.end_time,
                        _encode(row.tags),
                        _encode({}),
                    ),
                )
            case PutExperiment(row=exp):
                conn.execute(
                    "INSERT OR REPLACE INTO experiments VALUES (?, ?, ?, ?, ?, ?, ?)",
                    (
                        exp.id,
                        exp.name,
                        exp.description,
                        None if exp.config is None else _encode(exp.config),
                        _encode(exp.tags),
                        exp.created_at,
                        exp.updated_at,
                    ),
                )
            case SetSpanId(run_id=run_id, span_id=span_id):
                conn.execute(
                    "INSERT OR REPLACE INTO span_ids (run_id, span_id) VALUES (?, ?)",
                    (run_id, span_id),
                )
            case AddArtifact(ref=ref):
                conn.execute(
                    "INSERT INTO artifacts VALUES (?, ?, ?, ?, ?, ?)",
                    (ref.run_id, position, ref.name, ref.sha256, ref.size_bytes, ref.created_at),
                )
            case DeleteRun(run_id=run_id):
                _delete_run(conn, run_id)
            case DeleteExperiment(experiment_id=exp_id):
                run_ids = conn.execute("SELECT id FROM runs WHERE experiment_id = ?", (exp_id,))
                for (run_id,) in run_ids.fetchall():
                    _delete_run(conn, run_id)
                conn.execute("DELETE FROM experiments WHERE id = ?", (exp_id,))
                conn.execute("INSERT OR IGNORE INTO tombstones VALUES (?, 'experiment')", (exp_id,))


def _delete_run(conn: sqlite3.Connection, run_id: str) -> None:
    conn.execute("DELETE FROM runs WHERE id = ?", (run_id,))
    conn.execute("DELETE FROM params WHERE run_id = ?", (run_id,))
    for table in ("metrics", "artifacts", "span_ids"):
        conn.execute(f"DELETE FROM {table} WHERE run_id = ?", (run_id,))
    conn.execute("INSERT OR IGNORE INTO tombstones VALUES (?, 'run')", (run_id,))
