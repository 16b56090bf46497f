"""The store's connections: the writer's, a small pool of readers, and the listener.

The write connection belongs to the writer thread (one at a time, under the write
lock). Reads take a connection from a small pool on an anyio worker thread, so a
query never blocks the caller's event loop and several run at once. follow()'s
listener is one more connection, in ``LISTEN`` on the schema's channel.

All of them are plain synchronous psycopg connections, used from worker threads:
the queries are awaited from whatever event loop the caller runs (asyncio, trio,
the sync API's portal), and a psycopg ``AsyncConnection`` belongs to one asyncio
loop. Worker threads keep the store loop-agnostic, as the SQLite store is.

A connection that breaks (the server restarted) is dropped, and the next use
connects again: the writer's retry of the same batch reconnects by itself.

Fork safety: a forked child must never use, or close, a connection it inherited
(the socket is shared with the parent; libpq's goodbye on it would end the
parent's session). :meth:`Connections.after_fork_in_child` points each inherited
socket at ``/dev/null`` in the child and keeps the objects alive, then the child
connects afresh.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import threading
import urllib.parse
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any, TypeVar

import anyio.to_thread

try:
    import psycopg
    import psycopg.conninfo
except ImportError as exc:  # pragma: no cover - the extra is installed wherever tests run
    raise ImportError(
        "the PostgreSQL store needs psycopg: pip install 'runjournal[postgres]'"
    ) from exc

from runjournal import _forks
from runjournal.errors import StoreReadOnly, StoreUnavailable
from runjournal.stores.postgres.errors import translated
from runjournal.stores.postgres.schema import (
    STAGING,
    check_schema,
    ensure_schema,
    notify_channel,
)
from runjournal.stores.urls import is_postgres_url

__all__ = ["POOL_SIZE", "Conn", "Connections", "Settings", "describe", "split_schema"]

T = TypeVar("T")
Conn = psycopg.Connection[tuple[Any, ...]]

POOL_SIZE = 4
"""How many read connections a store keeps open at most."""


def describe(dsn: str) -> str:
    """The DSN without its password, for messages: ``postgresql://user@host:port/db``."""
    try:
        info = psycopg.conninfo.conninfo_to_dict(dsn)
    except psycopg.ProgrammingError:
        return "postgresql://(an invalid DSN)"
    user = info.get("user")
    host = info.get("host") or info.get("hostaddr") or "localhost"
    port = info.get("port") or "5432"
    db = info.get("dbname") or ""
    return f"postgresql://{f'{user}@' if user else ''}{host}:{port}/{db}"


def split_schema(dsn: str) -> tuple[str, str | None]:
    """A URL's ``schema=`` query parameter (runjournal's, not libpq's) and the URL without it."""
    if not is_postgres_url(dsn) or "?" not in dsn:
        return dsn, None
    base, _, query = dsn.partition("?")
    pairs = urllib.parse.parse_qsl(query, keep_blank_values=True)
    schemas = [value for key, value in pairs if key == "schema"]
    if not schemas:
        return dsn, None
    rest = urllib.parse.urlencode([(k, v) for k, v in pairs if k != "schema"])
    return (f"{base}?{rest}" if rest else base), schemas[-1]


@dataclasses.dataclass(slots=True, frozen=True)
class Settings:
    """Where the database is and how every connection to it is set up."""

    dsn: str
    schema: str
    read_only: bool
    connect_timeout: float
    where: str = dataclasses.field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "where", describe(self.dsn))


# Connections inherited through fork(): never used nor closed by the child (see above).
_ABANDONED: list[Conn] = []


def _abandon(conn: Conn | None) -> None:
    if conn is None:
        return
    try:
        fd = conn.pgconn.socket
    except psycopg.Error:
        fd = -1
    if fd >= 0:
        null = os.open(os.devnull, os.O_RDWR)
        try:
            os.dup2(null, fd)  # libpq's goodbye, if it ever says one, goes nowhere
        finally:
            os.close(null)
    _ABANDONED.append(conn)


class Connections:
    """The connections of one store, each opened on first use."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._write_lock = threading.RLock()
        self._pool_lock = threading.Lock()
        self._listen_lock = threading.Lock()
        self._write: Conn | None = None
        self._idle: list[Conn] = []
        self._busy: set[Conn] = set()
        self._listener: Conn | None = None
        self._checked = False
        self._held: list[threading.RLock | threading.Lock] = []
        self._pid = os.getpid()

    # -- connecting ------------------------------------------------------------------------
    def _connect(self, *, autocommit: bool = True) -> Conn:
        settings = self.settings
        try:
            conn = psycopg.connect(
                settings.dsn,
                autocommit=autocommit,
                connect_timeout=max(1, int(settings.connect_timeout)),
                application_name="runjournal",
            )
        except psycopg.OperationalError as exc:
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else repr(exc)
            raise StoreUnavailable(
                f"{settings.where}: cannot connect to the database server ({first})"
            ) from None
        return conn

    def _ensure_schema(self, conn: Conn) -> None:
        if self._checked:
            return
        settings = self.settings
        if settings.read_only:
            check_schema(conn, settings.schema, settings.where)
        else:
            ensure_schema(conn, settings.schema, settings.where)
        self._checked = True

    # -- the write connection --------------------------------------------------------------
    @contextmanager
    def writing(self) -> Iterator[Conn]:
        """The write connection, under the write lock, with its errors translated.

        A connection that broke is closed here, so that the next call reconnects.
        """
        self._check_fork()
        settings = self.settings
        if settings.read_only:
            raise StoreReadOnly(f"{settings.where}: opened read-only; it cannot be written")
        with self._write_lock, translated(settings.where):
            if self._write is None:
                conn = self._connect()
                try:
                    self._ensure_schema(conn)
                    self._make_staging(conn)
                except BaseException:
                    conn.close()
                    raise
                self._write = conn
            conn = self._write
            try:
                yield conn
            except BaseException:
                if conn.closed or conn.broken:
                    self._write = None
                    conn.close()
                raise

    def _make_staging(self, conn: Conn) -> None:
        """Create the write connection's staging table (``schema.STAGING``), where the role
        may create temporary tables (``overlay.Overlay`` upserts row by row without it)."""
        # Outside any transaction (the connection is in autocommit mode), so that no
        # rollback takes it away.
        with contextlib.suppress(psycopg.errors.InsufficientPrivilege):
            conn.execute(STAGING.format(s=self.settings.schema))

    # -- reads -------------------------------------------------------------------------------
    @contextmanager
    def reading(self) -> Iterator[Conn]:
        """A read connection from the pool (blocking), with its errors translated."""
        self._check_fork()
        settings = self.settings
        if not self._checked and not settings.read_only:
            with self.writing():
                pass  # the writer creates or checks the schema before anything reads it
        with translated(settings.where):
            with self._pool_lock:
                conn = self._idle.pop() if self._idle else None
            if conn is None:
                conn = self._connect()
                try:
                    if settings.read_only:
                        conn.execute("SET default_transaction_read_only = on")
                        self._ensure_schema(conn)
                except BaseException:
                    conn.close()
                    raise
            with self._pool_lock:
                self._busy.add(conn)
            try:
                yield conn
            finally:
                stale: list[Conn] = []
                with self._pool_lock:
                    self._busy.discard(conn)
                    if conn.broken:  # the server went away: the idle ones are gone too
                        stale, self._idle = self._idle, []
                    keep = not (conn.closed or conn.broken) and len(self._idle) < POOL_SIZE
                    if keep and self._pid == os.getpid():
                        self._idle.append(conn)
                    elif self._pid == os.getpid():
                        stale.append(conn)
                for old in stale:
                    old.close()

    def read_blocking(self, sql: str, args: Sequence[Any] = ()) -> list[Any]:
        """Every row of a query on a read connection.

        A pooled connection that the server dropped meanwhile (a restart) is
        replaced once: the read fails only if a fresh connection fails too.
        """
        for retry in (False, True):
            with self.reading() as conn:
                try:
                    return conn.execute(sql, args).fetchall()
                except psycopg.OperationalError:
                    if retry or not conn.broken:
                        raise
        raise AssertionError("unreachable")  # pragma: no cover

    async def read(self, sql: str, args: Sequence[Any] = ()) -> list[Any]:
        """:meth:`read_blocking` on a worker thread."""
        return await anyio.to_thread.run_sync(self.read_blocking, sql, args)

    async def read_then(self, sql: str, args: Sequence[Any], then: Callable[[list[Any]], T]) -> T:
        """``then(rows)`` of a query, on the same worker thread, once the connection is back."""

        def read_and_convert() -> T:
            return then(self.read_blocking(sql, args))

        return await anyio.to_thread.run_sync(read_and_convert)

    def open_blocking(self) -> None:
        """Connect now: create or check the schema, and be ready to read."""
        self.read_blocking("SELECT 1")

    # -- follow()'s listener -------------------------------------------------------------------
    def wait_for_append(self, timeout: float) -> bool:
        """Block until an append is announced or ``timeout`` passes; True if one was.

        The first call only starts listening and returns True at once: the caller
        reads again, so nothing committed before the ``LISTEN`` is missed.
        """
        self._check_fork()
        where = self.settings.where
        with self._listen_lock, translated(where):
            conn = self._listener
            if conn is None or conn.closed or conn.broken:
                self._listener = conn = self._connect()
                conn.execute(f"LISTEN {notify_channel(self.settings.schema)}")
                return True
            try:
                for _ in conn.notifies(timeout=timeout, stop_after=1):
                    return True
            except psycopg.OperationalError:
                self._listener = None
                conn.close()
                raise
            return False

    # -- closing -------------------------------------------------------------------------------
    def close_reader(self) -> None:
        self._check_fork()
        with self._pool_lock:
            idle, self._idle = self._idle, []
        for conn in idle:
            conn.close()
        with self._listen_lock:
            listener, self._listener = self._listener, None
        if listener is not None:
            listener.close()

    def close_writer(self) -> None:
        self._check_fork()
        with self._write_lock:
            conn, self._write = self._write, None
            if conn is not None:
                conn.close()

    # -- fork hooks ------------------------------------------------------------------------------
    def before_fork(self) -> None:
        """Let a write or a pool change in flight finish (a few seconds at most)."""
        for lock in (self._write_lock, self._pool_lock):
            if lock.acquire(timeout=_forks.WAIT_LIMIT):
                self._held.append(lock)

    def after_fork_in_parent(self) -> None:
        held, self._held = self._held, []
        for lock in reversed(held):
            lock.release()

    def after_fork_in_child(self) -> None:
        """Abandon every inherited connection; take fresh locks."""
        for conn in [self._write, self._listener, *self._idle, *self._busy]:
            _abandon(conn)
        self._write = None
        self._listener = None
        self._idle = []
        self._busy = set()
        self._write_lock = threading.RLock()
        self._pool_lock = threading.Lock()
        self._listen_lock = threading.Lock()
        self._held = []
        self._pid = os.getpid()

    def _check_fork(self) -> None:
        if self._pid != os.getpid():  # a forked child that the fork hooks did not reach
            self.after_fork_in_child()
