"""The store's two connections: how each is opened, and the only way to use one.

The write connection belongs to the writer thread; it is opened in WAL mode with
the durability's ``synchronous`` setting, the user's extra pragmas and the schema
check. The read connection is one plain ``sqlite3`` connection with
``query_only`` on, shared by anyio worker threads, one at a time. Each is used
only inside :meth:`Connections.writing` or :meth:`Connections.read_blocking`,
which hold its lock (see ``forks``) and translate its errors (see ``errors``).
"""

from __future__ import annotations

import dataclasses
import os
import sqlite3
import urllib.parse
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any, Literal, TypeVar

import anyio.to_thread

from runjournal.errors import StoreReadOnly
from runjournal.ids import new_id
from runjournal.stores.sqlite.errors import translated
from runjournal.stores.sqlite.filters import typed_params_view
from runjournal.stores.sqlite.forks import Locks, abandon
from runjournal.stores.sqlite.migrations import sweep_at_open, upgrade
from runjournal.stores.sqlite.schema import (
    SCHEMA_VERSION,
    TABLES_SINCE,
    TYPED_PARAMS_SINCE,
    check_schema,
    ensure_schema,
    refuse_foreign,
    schema_version,
)

__all__ = ["LOCK_STEP_MS", "Connections", "Durability", "Settings", "check_pragma"]

Durability = Literal["normal", "full"]

LOCK_STEP_MS = 25
"""How long one attempt at the write lock may wait inside SQLite; the transaction loops."""

T = TypeVar("T")


@dataclasses.dataclass(slots=True)
class Settings:
    """Where the database is and how every connection to it is set up."""

    path: str
    durability: Durability
    busy_timeout: float
    pragmas: dict[str, int | str]
    read_only: bool = False
    """Never write, never create the file, never switch the journal mode (see ``_connect_read_only``)."""
    target: str = dataclasses.field(init=False)
    """What ``sqlite3.connect`` opens: the path, or a named memdb database shared by the
    writer and the reader of one ``":memory:"`` store."""

    def __post_init__(self) -> None:
        self.target = f"file:/runjournal-{new_id()}?vfs=memdb" if self.memory else self.path

    @property
    def memory(self) -> bool:
        return self.path == ":memory:"


def check_pragma(name: str, value: int | str) -> str:
    """``name=value`` for a ``PRAGMA`` statement; ``ValueError`` unless both are plain words."""
    if not name.replace("_", "").isalnum():
        raise ValueError(f"not a PRAGMA name: {name!r}")
    if type(value) is int or (isinstance(value, str) and value.replace("_", "").isalnum()):
        return f"{name}={value}"
    raise ValueError(f"not a PRAGMA value: {value!r}")


def _connect_writer(settings: Settings) -> sqlite3.Connection:
    conn = sqlite3.connect(
        settings.target,
        timeout=settings.busy_timeout,
        isolation_level=None,
        check_same_thread=False,
        uri=settings.memory,
    )
    try:
        if not settings.memory:
            mode = conn.execute("PRAGMA journal_mode").fetchone()[0]
            if mode != "wal":
                refuse_foreign(conn, settings.path)  # before the switch rewrites the header
                conn.execute("PRAGMA journal_mode=WAL")
        sync = "FULL" if settings.durability == "full" else "NORMAL"
        conn.execute(f"PRAGMA synchronous={sync}")
        for name, value in settings.pragmas.items():
            conn.execute(f"PRAGMA {check_pragma(name, value)}")
        if ensure_schema(conn, settings.path) < SCHEMA_VERSION:
            upgrade(conn, settings.path)
        # From here on, the transaction waits for the write lock itself, in short steps, so
        # that a drain deadline can cut the wait short (SQLite's own wait cannot be cut).
        conn.execute(f"PRAGMA busy_timeout={LOCK_STEP_MS}")
        sweep_at_open(conn)
    except BaseException:
        conn.close()
        raise
    return conn


def _connect_reader(settings: Settings) -> sqlite3.Connection:
    conn = sqlite3.connect(
        settings.target,
        timeout=settings.busy_timeout,
        check_same_thread=False,
        uri=settings.memory,
    )
    try:
        conn.execute("PRAGMA query_only=1")
    except BaseException:
        conn.close()
        raise
    return conn


def _connect_read_only(settings: Settings) -> sqlite3.Connection:
    """A reader that cannot write, for a database that must already exist.

    ``mode=ro`` reads a database that other processes are writing, as any reader
    does; in WAL mode it needs the ``-shm`` file, which SQLite creates if the
    directory lets it. In a directory (or mount) that this process cannot write,
    with no ``-shm`` to share, SQLite refuses; the database is then opened with
    ``immutable=1``, which reads the file alone without any locking. That is only
    safe while nothing writes it, so it is used only when no ``-wal`` file exists
    (no writer has it open, or one closed it cleanly).
    """
    path = settings.path
    if not os.path.exists(path):
        raise FileNotFoundError(f"no runjournal database at {path!r}")
    base = "file:" + urllib.parse.quote(os.path.abspath(path))
    try:
        return _open_checked(f"{base}?mode=ro", settings)
    except sqlite3.OperationalError as exc:
        name = getattr(exc, "sqlite_errorname", "") or ""
        if not name.startswith(("SQLITE_CANTOPEN", "SQLITE_READONLY")):
            raise
        if os.path.exists(f"{path}-wal"):
            raise StoreReadOnly(
                f"{path}: cannot be read here: its WAL is in use and SQLite cannot create "
                f"the shared-memory file beside it in a read-only directory ({exc})"
            ) from exc
    return _open_checked(f"{base}?mode=ro&immutable=1", settings)


def _open_checked(uri: str, settings: Settings) -> sqlite3.Connection:
    conn = sqlite3.connect(uri, timeout=settings.busy_timeout, check_same_thread=False, uri=True)
    try:
        version = check_schema(conn, settings.path)
        if version == TYPED_PARAMS_SINCE - 1:
            typed_params_view(conn)  # before query_only, which forbids even temp objects
        elif version < TABLES_SINCE:
            # The queries read the current schema; a read-only open must not migrate.
            raise StoreReadOnly(
                f"{settings.path} was written by an older runjournal (schema "
                f"{schema_version(conn)}); open it once with write access to upgrade it"
            )
        conn.execute("PRAGMA query_only=1")
    except BaseException:
        conn.close()
        raise
    return conn


class Connections:
    """The write connection and the read connection of one store, each opened on first use."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.locks = Locks()
        self._write: sqlite3.Connection | None = None
        self._read: sqlite3.Connection | None = None

    @contextmanager
    def writing(self) -> Iterator[sqlite3.Connection]:
        """The write connection, under the write lock, with its errors translated."""
        self._check_fork()
        if self.settings.read_only:
            raise StoreReadOnly(f"{self.settings.path}: opened read-only; it cannot be written")
        with self.locks.write, translated(self.settings.path):
            if self._write is None:
                self._write = _connect_writer(self.settings)
            yield self._write

    def length_limit(self) -> int:
        """The write connection's ``SQLITE_LIMIT_LENGTH``: the largest string or blob it stores."""
        conn = self._write
        if conn is not None:
            try:
                # sqlite3_limit only reads a field: no need to wait for a commit to end.
                return conn.getlimit(sqlite3.SQLITE_LIMIT_LENGTH)
            except sqlite3.ProgrammingError:
                pass  # closed meanwhile: open it again below
        with self.writing() as opened:
            return opened.getlimit(sqlite3.SQLITE_LIMIT_LENGTH)

    def read_blocking(self, sql: str, args: Sequence[Any] = ()) -> list[Any]:
        """Every row of a query on the read connection, under the read lock."""
        self._check_fork()
        if self._read is None and not self.settings.read_only:
            with self.writing():
                pass  # the writer creates or checks the schema before anything reads it
        with self.locks.read, translated(self.settings.path):
            if self._read is None:
                connect = _connect_read_only if self.settings.read_only else _connect_reader
                self._read = connect(self.settings)
            return self._read.execute(sql, args).fetchall()

    async def read(self, sql: str, args: Sequence[Any] = ()) -> list[Any]:
        """:meth:`read_blocking` on a worker thread."""
        return await anyio.to_thread.run_sync(self.read_blocking, sql, args)

    async def read_then(self, sql: str, args: Sequence[Any], then: Callable[[list[Any]], T]) -> T:
        """``then(rows)`` of a query, on the same worker thread, after the read lock is freed."""

        def read_and_convert() -> T:
            return then(self.read_blocking(sql, args))

        return await anyio.to_thread.run_sync(read_and_convert)

    def open_blocking(self) -> None:
        """Open both connections now: create or check the schema, and be ready to read."""
        self.read_blocking("SELECT 1")

    def close_reader(self) -> None:
        self._check_fork()
        with self.locks.read:
            conn, self._read = self._read, None
            if conn is not None:
                conn.close()

    def close_writer(self) -> None:
        self._check_fork()
        with self.locks.write:
            conn, self._write = self._write, None
            if conn is not None:
                conn.close()

    # -- fork hooks (see forks) ------------------------------------------------------------------
    def before_fork(self) -> None:
        self.locks.before_fork()

    def after_fork_in_parent(self) -> None:
        self.locks.after_fork_in_parent()

    def after_fork_in_child(self) -> None:
        abandon(self._write, self._read)
        self._write = None
        self._read = None
        self.locks.renew()

    def _check_fork(self) -> None:
        if self.locks.forked:  # a forked child that the fork hooks did not reach
            self.after_fork_in_child()
