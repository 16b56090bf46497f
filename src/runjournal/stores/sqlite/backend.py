"""``SqliteBackend``: the SQLite store, composed of the connections, the writes and the queries.

An append-only journal plus projection tables in one file. Writes come from the
writer thread through the write connection: a whole batch is one
``BEGIN IMMEDIATE ... COMMIT`` (``writes``). Reads run on worker threads through
the read connection (``queries``). The database runs in WAL mode, so readers and
the writers of other processes do not block each other; a busy timeout absorbs
the short waits that remain.

Metric points are stored once: a ``metrics.logged`` journal entry carries a batch
of points, and the ``metrics`` projection indexes those entries by (run, key).
"""

from __future__ import annotations

import functools
import os
import sqlite3
from collections.abc import Callable, Mapping, Sequence
from contextlib import AbstractContextManager

import anyio
import anyio.to_thread

from runjournal import _forks
from runjournal.events import EventCodec
from runjournal.projection import RunRow
from runjournal.stores._contents import Refused, StoredContent
from runjournal.stores._overlay import RUN_COLUMNS, run_row
from runjournal.stores.base import AppendResult, Content, NewEntry, PurgeResult, Store
from runjournal.stores.sqlite import purge, writes
from runjournal.stores.sqlite.connection import Connections, Durability, Settings, check_pragma
from runjournal.stores.sqlite.overlay import Overlay
from runjournal.stores.sqlite.queries import SqliteQueries

__all__ = ["SqliteBackend"]


class SqliteBackend(SqliteQueries):
    """A runjournal database in one SQLite file (or ``":memory:"``).

    ``durability="normal"`` (WAL with ``synchronous=NORMAL``) survives any crash of
    the process; ``"full"`` also survives power loss, at the price of an fsync per
    commit. ``pragmas`` are extra ``PRAGMA`` settings applied to every connection.

    ``read_only=True`` opens an existing database for reading only: it never
    writes, never creates the file (a missing one is ``FileNotFoundError``) and
    never switches the journal mode; every write raises ``StoreReadOnly``. It
    reads a database that other processes are writing, and one in a read-only
    directory or mount (see ``connection._connect_read_only`` for the limits).
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        durability: Durability = "normal",
        busy_timeout: float = 30.0,
        pragmas: Mapping[str, int | str] | None = None,
        read_only: bool = False,
    ) -> None:
        if durability not in ("normal", "full"):
            raise ValueError(f"durability must be 'normal' or 'full', got {durability!r}")
        if busy_timeout < 0:
            raise ValueError("busy_timeout must be >= 0")
        path = os.fspath(path)
        if read_only and path == ":memory:":
            raise ValueError("an in-memory database cannot be opened read-only: it would be empty")
        if read_only and not os.path.exists(path):
            raise FileNotFoundError(f"no runjournal database at {path!r}")
        self._settings = Settings(
            path, durability, busy_timeout, dict(pragmas or {}), read_only=bool(read_only)
        )
        super().__init__(Connections(self._settings), EventCodec())
        self._wait_limit: float | None = None
        _forks.register(self, _forks.Stage.QUIESCE)  # before this store ever touches SQLite

    def __repr__(self) -> str:
        mode = ", read_only=True" if self.read_only else ""
        return f"SqliteBackend({self.path!r}, durability={self.durability!r}{mode})"

    @property
    def path(self) -> str:
        """The database file, or ``":memory:"``."""
        return self._settings.path

    @property
    def durability(self) -> Durability:
        """``"normal"`` or ``"full"`` (see the class)."""
        return self._settings.durability

    @property
    def busy_timeout(self) -> float:
        """How long to wait for another process's write lock, in seconds."""
        return self._settings.busy_timeout

    @property
    def read_only(self) -> bool:
        """True if opened with ``read_only=True``."""
        return self._settings.read_only

    @property
    def spec(self) -> str:
        return self._settings.path

    def reopener(self) -> Callable[[], Store]:
        """A picklable callable that opens this database again, with the same settings."""
        settings = self._settings
        if settings.memory:
            raise TypeError(f"{self!r} lives in this process only; it cannot be sent elsewhere")
        return functools.partial(
            SqliteBackend,
            settings.path,
            durability=settings.durability,
            busy_timeout=settings.busy_timeout,
            pragmas=dict(settings.pragmas),
            read_only=settings.read_only,
        )

    # -- opening and closing -----------------------------------------------------------------
    async def open(self) -> None:
        await anyio.to_thread.run_sync(self._connections.open_blocking)

    async def close(self) -> None:
        with anyio.CancelScope(shield=True):  # a cancelled caller still lets go of the file
            await anyio.to_thread.run_sync(self.close_blocking)

    def close_blocking(self) -> None:
        self._connections.close_reader()
        self._close_writer()

    def _close_writer(self) -> None:
        self._wait_limit = None  # a drain's deadline ends with it; a reopened store waits anew
        self._connections.close_writer()

    def apply_pragmas(self, pragmas: Mapping[str, int | str]) -> None:
        """Set ``PRAGMA`` values now on the open write connection and on every future one."""
        with self._connections.writing() as conn:
            self._settings.pragmas.update(pragmas)
            for name, value in pragmas.items():
                conn.execute(f"PRAGMA {check_pragma(name, value)}")

    def limit_waits(self, deadline: float | None) -> None:
        self._wait_limit = deadline

    # -- fork hooks (see forks) ----------------------------------------------------------------
    def before_fork(self) -> None:
        """Hold this store's threads out of SQLite until the fork is done."""
        self._connections.before_fork()

    def after_fork_in_parent(self) -> None:
        self._connections.after_fork_in_parent()

    def after_fork_in_child(self) -> None:
        """Drop the parent's connections and locks in a forked child, before any thread runs."""
        self._connections.after_fork_in_child()

    # -- writing -----------------------------------------------------------------------------
    def append(self, entries: Sequence[NewEntry], contents: Sequence[Content] = ()) -> AppendResult:
        with self._connections.writing() as conn, self._transaction(conn):
            return writes.append(conn, self._codec, entries, contents)

    def append_artifact(
        self, content: Content, entry: Callable[[str, int], NewEntry]
    ) -> AppendResult:
        """Store a streamed content and its entry in one transaction (see ``Store``).

        The transaction holds the write lock while the chunks arrive, so other
        processes' writers wait for it (up to their ``busy_timeout``, then retry).
        """
        with self._connections.writing() as conn:
            # Copying a large artifact from the WAL into the database file at this commit
            # would take as long again as writing it; the next batch's commit (or closing)
            # checkpoints instead, off the caller's wait.
            limit = conn.execute("PRAGMA wal_autocheckpoint").fetchone()[0]
            conn.execute("PRAGMA wal_autocheckpoint=0")
            try:
                with self._transaction(conn):
                    result = writes.append_artifact(conn, self._codec, content, entry)
                    if result.rejected:
                        raise Refused(result)
            except Refused as refused:
                return refused.result
            finally:
                conn.execute(f"PRAGMA wal_autocheckpoint={int(limit)}")
            return result

    def content(self, sha256: str) -> Content | None:
        """The stored content with this SHA-256, read one chunk per query when iterated."""
        rows = self._connections.read_blocking(
            "SELECT size_bytes FROM contents WHERE sha256 = ?", (sha256,)
        )
        if not rows:
            return None
        return StoredContent(self, sha256, int(rows[0][0]))

    def lookup_run(self, run_id: str) -> RunRow | None:
        if self.read_only:
            rows = self._connections.read_blocking(
                f"SELECT {RUN_COLUMNS} FROM runs WHERE id = ?", (run_id,)
            )
            return run_row(rows[0]) if rows else None
        with self._connections.writing() as conn:
            return Overlay(conn).run(run_id)

    def rebuild_blocking(self) -> None:
        with self._connections.writing() as conn, self._transaction(conn):
            writes.refold(conn, self._codec, self.path)
            writes.sweep_chunks(conn)

    async def rebuild(self) -> None:
        await anyio.to_thread.run_sync(self.rebuild_blocking)

    def purge_blocking(self) -> PurgeResult:
        size_before = purge.size_on_disk(self.path)
        with self._connections.writing() as conn:
            with self._transaction(conn):
                erased = purge.erase(conn, self._codec, self.path)
            compacted = purge.compact(conn, self.busy_timeout)
        return PurgeResult(
            runs=list(erased.plan.runs),
            experiments=list(erased.plan.experiments),
            entries=erased.entries,
            blobs=erased.blobs,
            position=erased.position,
            size_before=size_before,
            size_after=purge.size_on_disk(self.path),
            compacted=compacted,
        )

    async def purge(self) -> PurgeResult:
        return await anyio.to_thread.run_sync(self.purge_blocking)

    def _transaction(self, conn: sqlite3.Connection) -> AbstractContextManager[sqlite3.Connection]:
        return writes.transaction(conn, self.busy_timeout, self._current_wait_limit)

    def _current_wait_limit(self) -> float | None:
        return self._wait_limit
