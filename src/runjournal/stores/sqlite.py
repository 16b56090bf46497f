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

import itertools
import json
import operator
import os
import sqlite3
import threading
import time
import warnings
import weakref
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any, Literal

import aiosqlite
import anyio.to_thread

from runjournal import _forks
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
from runjournal.filtering import validate_filters
from runjournal.ids import new_id
from runjournal.model import ArtifactRef, Experiment, MetricPoint, ParamFilter, Run
from runjournal.projection import (
    Rejected,
    RunRow,
    evolve,
)
from runjournal.stores._sqlite_filters import equal_encodings, select_matching
from runjournal.stores._sqlite_overlay import (
    EXPERIMENT_COLUMNS,
    RUN_COLUMNS,
    Overlay,
    decode_params,
    experiment_row,
    run_row,
)
from runjournal.stores._sqlite_schema import (
    PROJECTION_TABLES,
    PROJECTIONS,
    ensure_schema,
    refuse_foreign,
    statements,
)
from runjournal.stores.base import AppendResult, JournalEntry, NewEntry, RawEntry

__all__ = ["Durability", "SqliteBackend", "translate_error"]

Durability = Literal["normal", "full"]


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


def _public_run(row: Sequence[Any]) -> Run:
    """A ``runs`` row selected as ``RUN_COLUMNS, params``."""
    return run_row(row).to_public(decode_params(row[8]))


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
        self._wait_limit: float | None = None
        self._fork_held = False
        self._fork_resumes: list[threading.Event] = []
        self._write_conn: sqlite3.Connection | None = None
        self._read_conn: aiosqlite.Connection | None = None
        # Every reader connection made, the one in use and any being opened or closed:
        # a fork must hold all of their threads still.
        self._read_conns: weakref.WeakSet[aiosqlite.Connection] = weakref.WeakSet()
        self._connected_threads: weakref.WeakSet[threading.Thread] = weakref.WeakSet()
        self._pid = os.getpid()
        _forks.register(self, _forks.Stage.QUIESCE)  # before this store ever touches SQLite

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
                    refuse_foreign(conn, self._path)  # before the switch rewrites the header
                    conn.execute("PRAGMA journal_mode=WAL")
            sync = "FULL" if self.durability == "full" else "NORMAL"
            conn.execute(f"PRAGMA synchronous={sync}")
            for name, value in self._pragmas.items():
                conn.execute(f"PRAGMA {_pragma_name(name)}={_pragma_value(value)}")
            ensure_schema(conn, self._path)
            # From here on, _begin waits for the write lock itself, in short steps, so that
            # a drain deadline can cut the wait short (SQLite's own wait cannot be cut).
            conn.execute(f"PRAGMA busy_timeout={_LOCK_STEP_MS}")
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
            _ABANDONED.extend(c for c in (self._write_conn, *self._read_conns) if c is not None)
            self._write_conn = None
            self._read_conn = None
            self._read_conns = weakref.WeakSet()
            self._connected_threads = weakref.WeakSet()
            self._lock = threading.RLock()
            self._pid = os.getpid()

    def before_fork(self) -> None:
        """Keep this store's threads out of SQLite while the process forks.

        SQLite keeps each process's lock bookkeeping and mutexes in memory, so a child
        forked while one of our threads is inside SQLite (a write transaction, a read
        on the reader's thread) inherits a lock that nobody will release, and hangs.
        Let what is in flight finish (for a few seconds at most) and hold the rest off.
        """
        self._fork_held = self._lock.acquire(timeout=_forks.WAIT_LIMIT)
        connected = set(self._connected_threads)  # under the lock: none can join meanwhile
        self._fork_resumes = [
            _park_reader_thread(reader, connected) for reader in list(self._read_conns)
        ]

    def after_fork_in_parent(self) -> None:
        resumes, self._fork_resumes = self._fork_resumes, []
        for resume in resumes:
            resume.set()
        if self._fork_held:
            self._fork_held = False
            self._lock.release()

    def after_fork_in_child(self) -> None:
        """Drop the parent's connections and lock in a forked child, before any thread runs.

        A parent thread may have held the lock at the moment of the fork; in the
        child that thread does not exist, so the lock would never be released.
        """
        self._fork_held = False
        self._fork_resumes = []
        self._check_fork()

    def _writer(self) -> sqlite3.Connection:
        self._check_fork()
        if self._write_conn is None:
            self._write_conn = self._connect()
        return self._write_conn

    async def _reader(self) -> aiosqlite.Connection:
        self._check_fork()
        if self._read_conn is None:
            await anyio.to_thread.run_sync(self._open_sync)
            pending = aiosqlite.Connection(self._connect_reader, iter_chunk_size=64)
            self._read_conns.add(pending)
            # The reader only reads: it must never keep the interpreter from exiting, even
            # when a store is left unclosed. aiosqlite starts the thread on first await.
            thread = getattr(pending, "_thread", None)
            if isinstance(thread, threading.Thread) and not thread.is_alive():
                thread.daemon = True
            conn = await pending
            if self._read_conn is None:
                self._read_conn = conn
            else:  # another task opened one meanwhile
                await conn.close()
        return self._read_conn

    def _connect_reader(self) -> sqlite3.Connection:
        """The reader's connection, opened on aiosqlite's thread.

        Under the store lock: a fork waits until the connection is open (a child forked
        while a parent thread is inside ``sqlite3.connect`` inherits SQLite's mutexes
        held, and hangs at its own first connect), and an opening waits for a fork.
        """
        with self._lock:
            conn = sqlite3.connect(self._target, timeout=self.busy_timeout, uri=self._memory)
            try:
                conn.execute("PRAGMA query_only=1")
            except BaseException:
                conn.close()
                raise
            self._connected_threads.add(threading.current_thread())
            return conn

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
        self._wait_limit = None  # a drain's deadline ends with it; a reopened store waits anew
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

    def limit_waits(self, deadline: float | None) -> None:
        self._wait_limit = deadline

    def _begin(self, conn: sqlite3.Connection) -> None:
        """``BEGIN IMMEDIATE``, waiting up to ``busy_timeout`` (or the wait limit) for the lock."""
        deadline = time.monotonic() + self.busy_timeout
        pause = 0.001
        while True:
            try:
                conn.execute("BEGIN IMMEDIATE")
                return
            except sqlite3.OperationalError as exc:
                if not (getattr(exc, "sqlite_errorname", "") or "").startswith("SQLITE_BUSY"):
                    raise
                limit = deadline if self._wait_limit is None else min(deadline, self._wait_limit)
                now = time.monotonic()
                if now >= limit:
                    raise
                time.sleep(min(pause, limit - now))
                pause = min(pause * 2, 0.02)

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            conn = self._writer()
            try:
                self._begin(conn)
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
            seen = _journaled(conn, entries)
            overlay = Overlay(conn)
            # Positions are ours to assign: BEGIN IMMEDIATE holds the write lock, and the
            # journal only ever grows, so the next position is max + 1.
            position = conn.execute("SELECT coalesce(max(position), 0) FROM journal").fetchone()[0]
            rows: list[tuple[int, str, int, float, int, bytes]] = []
            duplicates = 0
            rejected: list[tuple[int, str]] = []
            encode = self._codec.encode
            for index, entry in enumerate(entries):
                if (entry.source, entry.seq) in seen:
                    duplicates += 1
                    continue
                try:
                    changes = evolve(overlay, entry.event)
                except Rejected as exc:
                    rejected.append((index, str(exc)))
                    continue
                position += 1
                overlay.apply(changes, position)
                seen.add((entry.source, entry.seq))
                rows.append(
                    (
                        position,
                        entry.source,
                        entry.seq,
                        entry.recorded_at,
                        EVENT_VERSION,
                        encode(entry.event),
                    )
                )
            conn.executemany(
                "INSERT INTO journal (position, source, seq, recorded_at, version, body) "
                "VALUES (?, ?, ?, ?, ?, ?)",
                rows,
            )
            overlay.write()
            return AppendResult(len(rows), duplicates, rejected, int(position))

    def lookup_run(self, run_id: str) -> RunRow | None:
        with self._lock:
            try:
                return Overlay(self._writer()).run(run_id)
            except sqlite3.Error as exc:
                raise translate_error(exc, self._path) from exc

    def rebuild_sync(self) -> None:
        with self._transaction() as conn:
            for table in PROJECTION_TABLES:
                conn.execute(f"DROP TABLE {table}")
            for statement in statements(PROJECTIONS):
                conn.execute(statement)
            overlay = Overlay(conn)
            rows = conn.execute("SELECT position, version, body FROM journal ORDER BY position")
            decode = self._codec.decode
            while chunk := rows.fetchmany(10_000):
                for position, version, body in chunk:
                    try:
                        changes = evolve(overlay, decode(body, version))
                    except Rejected as exc:
                        raise StoreError(
                            f"{self._path}: journal entry {position} no longer applies: {exc}"
                        ) from exc
                    overlay.apply(changes, position)
            overlay.write()

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
            f"SELECT {EXPERIMENT_COLUMNS} FROM experiments WHERE id = ?", (experiment_id,)
        )
        if row is None:
            raise ExperimentNotFound(experiment_id)
        return experiment_row(row)

    async def list_experiments(self) -> list[Experiment]:
        rows = await self._fetchall(
            f"SELECT {EXPERIMENT_COLUMNS} FROM experiments ORDER BY created_at, id"
        )
        return [experiment_row(r) for r in rows]

    async def get_run(self, run_id: str) -> Run:
        row = await self._fetchone(
            f"SELECT {RUN_COLUMNS}, params FROM runs WHERE id = ?", (run_id,)
        )
        if row is None:
            raise RunNotFound(run_id)
        return _public_run(row)

    async def list_runs(self, experiment_id: str) -> list[Run]:
        await self._require_experiment(experiment_id)
        rows = await self._fetchall(
            f"SELECT {RUN_COLUMNS}, params FROM runs WHERE experiment_id = ? "
            "ORDER BY created_at, id",
            (experiment_id,),
        )
        return [_public_run(r) for r in rows]

    async def get_params(self, run_id: str) -> dict[str, Any]:
        row = await self._fetchone("SELECT params FROM runs WHERE id = ?", (run_id,))
        if row is None:
            raise RunNotFound(run_id)
        return decode_params(row[0])

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
        steps = list(map(_step, points))
        # Most series are logged in step order: checking is three times cheaper than sorting.
        if not all(map(operator.le, steps, itertools.islice(steps, 1, None))):
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
                f"SELECT {RUN_COLUMNS}, params FROM runs r WHERE {scope} ORDER BY created_at, id",
                args,
            )
            return [_public_run(r) for r in rows]
        # SQL answers the EQ filters on scalars by comparing stored bytes; what it narrows
        # them to is all that Python then decodes for the other filters.
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
            for flt, codes in in_sql:  # no codes (NaN): IN () matches nothing
                parts.append(
                    "SELECT run_id FROM params WHERE key = ? AND value IN "
                    f"({','.join('?' * len(codes))})"
                )
                codes_args += [flt.key, *codes]
            rows = await self._fetchall(" INTERSECT ".join(parts), codes_args)
            candidates = {r[0] for r in rows}
        if in_python and candidates != set():
            keys = sorted({f.key for f in in_python})
            marks = ",".join("?" * len(keys))
            if candidates is None:
                values = await self._fetchall(
                    f"SELECT key, run_id, value FROM params WHERE key IN ({marks})", keys
                )
                if experiment_id is not None:
                    ids = await self._fetchall(
                        "SELECT id FROM runs WHERE experiment_id = ?", (experiment_id,)
                    )
                    candidates = {r[0] for r in ids}
            else:
                values = await self._fetchall(
                    f"SELECT key, run_id, value FROM params WHERE key IN ({marks}) "
                    "AND run_id IN (SELECT value FROM json_each(?))",
                    [*keys, _json_list(candidates)],
                )
            candidates = await anyio.to_thread.run_sync(
                select_matching, in_python, values, candidates
            )
        if not candidates:
            return []
        found = await self._fetchall(
            f"SELECT {RUN_COLUMNS}, params FROM runs WHERE id IN (SELECT value FROM json_each(?))",
            [_json_list(candidates)],
        )
        if experiment_id is not None:
            # Here, not in SQL: given the experiment, SQLite would scan all of its runs
            # through runs_by_experiment instead of looking up the few candidates.
            found = [r for r in found if r[1] == experiment_id]
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


_LOCK_STEP_MS = 25
"""How long one attempt at the write lock may wait inside SQLite; ``_begin`` loops."""


def _park_reader_thread(
    reader: aiosqlite.Connection, connected: set[threading.Thread]
) -> threading.Event:
    """Park the reader's thread in a wait outside SQLite; set the returned event to resume it.

    aiosqlite has no public hook for this; its thread runs the functions queued on
    ``_tx`` one at a time, so a queued wait holds it still once what is ahead is done.
    A thread that has not ``connected`` yet needs no parking: it opens its connection
    under the store lock, which the fork holds (and waiting for it would wait for the
    fork). A thread that stops (its connection was closed ahead of the wait) never
    reaches the wait, and is not waited for.
    """
    resume = threading.Event()
    tx = getattr(reader, "_tx", None)
    thread = getattr(reader, "_thread", None)
    if tx is None or thread not in connected or not thread.is_alive():
        return resume
    parked = threading.Event()

    def park() -> None:
        parked.set()
        resume.wait(_forks.WAIT_LIMIT)

    tx.put_nowait((None, park))
    deadline = time.monotonic() + _forks.WAIT_LIMIT
    while not parked.wait(0.01) and thread.is_alive() and time.monotonic() < deadline:
        pass
    return resume


def _json_list(items: set[str]) -> str:
    """``items`` as one JSON array: a parameter for ``IN (SELECT value FROM json_each(?))``."""
    return json.dumps(sorted(items))


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


def _journaled(conn: sqlite3.Connection, entries: Sequence[NewEntry]) -> set[tuple[str, int]]:
    """The ``(source, seq)`` of ``entries`` that the journal already holds: one query a source."""
    spans: dict[str, tuple[int, int]] = {}
    for entry in entries:
        low, high = spans.get(entry.source, (entry.seq, entry.seq))
        spans[entry.source] = (min(low, entry.seq), max(high, entry.seq))
    seen: set[tuple[str, int]] = set()
    for source, (low, high) in spans.items():
        rows = conn.execute(
            "SELECT seq FROM journal WHERE source = ? AND seq BETWEEN ? AND ?", (source, low, high)
        )
        seen.update((source, seq) for (seq,) in rows.fetchall())
    return seen
