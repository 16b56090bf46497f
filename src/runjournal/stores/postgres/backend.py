"""``PostgresBackend``: the PostgreSQL store, composed of the connections, the writes and the queries.

The same journal and projections as the SQLite store, in a schema of their own
inside the user's database. A batch is one transaction on the writer's
connection, under the schema's advisory lock (``writes``); reads run on pooled
connections from worker threads (``queries``); ``follow()`` wakes on the
``NOTIFY`` that each append sends (``wait_for_append``).
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager

import anyio
import anyio.to_thread

from runjournal import _forks
from runjournal.events import EventCodec
from runjournal.projection import RunRow
from runjournal.stores._contents import Refused, StoredContent
from runjournal.stores._overlay import RUN_COLUMNS, run_row
from runjournal.stores.base import AppendResult, Content, NewEntry, PurgeResult, Store
from runjournal.stores.postgres import purge, writes
from runjournal.stores.postgres.connection import Conn, Connections, Settings, split_schema
from runjournal.stores.postgres.overlay import Overlay
from runjournal.stores.postgres.queries import PostgresQueries
from runjournal.stores.postgres.schema import check_schema_name

__all__ = ["DEFAULT_SCHEMA", "FALLBACK_POLL", "PostgresBackend"]

DEFAULT_SCHEMA = "runjournal"

FALLBACK_POLL = 1.0
"""How long ``follow()`` waits for a ``NOTIFY`` before it reads the journal anyway."""


class PostgresBackend(PostgresQueries):
    """A runjournal database in a schema of a PostgreSQL database.

    ``dsn`` is a libpq connection string or ``postgresql://`` URL; the database is
    the user's, and runjournal creates its tables in ``schema`` (default
    ``runjournal``; a URL may name it as ``?schema=NAME``) on first open, or
    checks that they are its own. Several
    processes and machines may write the same schema at once.

    ``read_only=True`` never creates the schema (a missing one is
    ``NotARunJournalDatabase``) and runs every read in a read-only transaction;
    every write raises ``StoreReadOnly``.
    """

    def __init__(
        self,
        dsn: str,
        *,
        schema: str | None = None,
        read_only: bool = False,
        connect_timeout: float = 10.0,
    ) -> None:
        if not isinstance(dsn, str) or not dsn:
            raise ValueError(f"dsn must be a PostgreSQL connection string, got {dsn!r}")
        if connect_timeout <= 0:
            raise ValueError("connect_timeout must be > 0")
        dsn, in_url = split_schema(dsn)
        if schema is not None and in_url is not None and schema != in_url:
            raise ValueError(f"two schemas given: {schema!r}, and {in_url!r} in the URL")
        schema = schema or in_url or DEFAULT_SCHEMA
        self._settings = Settings(
            dsn, check_schema_name(schema), bool(read_only), float(connect_timeout)
        )
        super().__init__(Connections(self._settings), EventCodec())
        self._wait_limit: float | None = None
        _forks.register(self, _forks.Stage.QUIESCE)  # before this store ever connects

    def __repr__(self) -> str:
        mode = ", read_only=True" if self.read_only else ""
        return f"PostgresBackend({self.spec!r}{mode})"

    @property
    def schema(self) -> str:
        """The PostgreSQL schema that holds runjournal's tables."""
        return self._settings.schema

    @property
    def read_only(self) -> bool:
        """True if opened with ``read_only=True``."""
        return self._settings.read_only

    @property
    def spec(self) -> str:
        """The DSN without its password (``postgresql://user@host:port/db[?schema=NAME]``)."""
        settings = self._settings
        if settings.schema == DEFAULT_SCHEMA:
            return settings.where
        return f"{settings.where}?schema={settings.schema}"

    @property
    def dsn(self) -> str:
        """The connection string as given (without ``schema=``); it may hold a password."""
        return self._settings.dsn

    def reopener(self) -> Callable[[], Store]:
        """A picklable callable that connects to this same schema again."""
        settings = self._settings
        return functools.partial(
            PostgresBackend,
            settings.dsn,
            schema=settings.schema,
            read_only=settings.read_only,
            connect_timeout=settings.connect_timeout,
        )

    # -- opening and closing -----------------------------------------------------------------
    async def open(self) -> None:
        await anyio.to_thread.run_sync(self._connections.open_blocking)

    async def close(self) -> None:
        with anyio.CancelScope(shield=True):
            await anyio.to_thread.run_sync(self.close_blocking)

    def close_blocking(self) -> None:
        self._connections.close_reader()
        self._wait_limit = None
        self._connections.close_writer()

    def limit_waits(self, deadline: float | None) -> None:
        self._wait_limit = deadline

    # -- fork hooks -------------------------------------------------------------------------------
    def before_fork(self) -> None:
        """Let a write in flight finish before the process forks."""
        self._connections.before_fork()

    def after_fork_in_parent(self) -> None:
        self._connections.after_fork_in_parent()

    def after_fork_in_child(self) -> None:
        """Abandon the parent's connections in a forked child: it connects afresh."""
        self._connections.after_fork_in_child()

    # -- writing -----------------------------------------------------------------------------
    def append(self, entries: Sequence[NewEntry], contents: Sequence[Content] = ()) -> AppendResult:
        with self._transaction() as conn:
            return writes.append(conn, self.schema, self._codec, entries, contents)

    def append_artifact(
        self, content: Content, entry: Callable[[str, int], NewEntry]
    ) -> AppendResult:
        """Store a streamed content and its entry in one transaction (see ``Store``)."""
        try:
            with self._transaction() as conn:
                result = writes.append_artifact(conn, self.schema, self._codec, content, entry)
                if result.rejected:
                    raise Refused(result)
                return result
        except Refused as refused:
            return refused.result

    def content(self, sha256: str) -> Content | None:
        """The stored content with this SHA-256, read one chunk per query when iterated."""
        rows = self._connections.read_blocking(
            f"SELECT size_bytes FROM {self.schema}.contents WHERE sha256 = %s", (sha256,)
        )
        if not rows:
            return None
        return StoredContent(self, sha256, int(rows[0][0]))

    def lookup_run(self, run_id: str) -> RunRow | None:
        if self.read_only:
            rows = self._connections.read_blocking(
                f"SELECT {RUN_COLUMNS} FROM {self.schema}.runs WHERE id = %s", (run_id,)
            )
            return run_row(rows[0]) if rows else None
        with self._connections.writing() as conn:
            return Overlay(conn, self.schema).run(run_id)

    def rebuild_blocking(self) -> None:
        with self._transaction() as conn:
            writes.refold(conn, self.schema, self._codec, self.spec)
            writes.sweep_chunks(conn, self.schema)

    async def rebuild(self) -> None:
        await anyio.to_thread.run_sync(self.rebuild_blocking)

    def purge_blocking(self) -> PurgeResult:
        with self._connections.writing() as conn:
            size_before = purge.size_on_server(conn, self.schema)
        with self._transaction() as conn:
            erased = purge.erase(conn, self.schema, self._codec, self.spec)
        with self._connections.writing() as conn:
            purge.vacuum(conn, self.schema)
            size_after = purge.size_on_server(conn, self.schema)
        return PurgeResult(
            runs=list(erased.plan.runs),
            experiments=list(erased.plan.experiments),
            entries=erased.entries,
            blobs=erased.blobs,
            position=erased.position,
            size_before=size_before,
            size_after=size_after,
            compacted=True,
        )

    async def purge(self) -> PurgeResult:
        return await anyio.to_thread.run_sync(self.purge_blocking)

    # -- follow() ---------------------------------------------------------------------------
    async def wait_for_append(self, after: int) -> None:
        """Return once an entry past ``after`` may be committed: on a ``NOTIFY``, or after
        :data:`FALLBACK_POLL` seconds at most (a notification can be lost with a connection)."""
        del after  # every append notifies; the caller reads from its own cursor
        await anyio.to_thread.run_sync(
            self._connections.wait_for_append, FALLBACK_POLL, abandon_on_cancel=True
        )

    @contextmanager
    def _transaction(self) -> Iterator[Conn]:
        """One transaction on the write connection; within a drain's deadline
        (``limit_waits``), waiting for another writer's lock is cut short."""
        with self._connections.writing() as conn, conn.transaction():
            limit = self._wait_limit
            if limit is not None:
                timeout = max(1, int((limit - time.monotonic()) * 1000))
                conn.execute(f"SET LOCAL lock_timeout = {timeout}")
            yield conn
