"""Opening the ``--db`` database for a command: read-only unless it writes; only ``import`` creates.

Read commands open the database read-only (``Tracker.open(read_only=True)``), so
that they work on a file in a directory the user cannot write and never touch
it. Commands that write (``delete``, ``experiments delete``, ...) ask for
``read_only=False``.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from runjournal.errors import NotARunJournalDatabase
from runjournal.stores import is_postgres_url
from runjournal.tracker import Tracker

__all__ = [
    "DB_ENV",
    "default_db",
    "open_tracker",
    "refuse_database",
    "require_absent",
    "require_database",
]

DB_ENV = "RUNJOURNAL_DB"
_SQLITE_MAGIC = b"SQLite format 3\x00"


def default_db() -> str:
    """``$RUNJOURNAL_DB`` if set (a path or a ``postgresql://`` URL), else ``./experiments.db``."""
    db = os.environ.get(DB_ENV) or "experiments.db"
    return db if is_postgres_url(db) else os.path.expanduser(db)


def require_database(path: str) -> None:
    """Refuse a path that holds no database, rather than create an empty one there.

    A ``postgresql://`` URL passes: its store checks the schema when it opens
    (read-only, a missing schema is ``NotARunJournalDatabase``).
    """
    if is_postgres_url(path):
        return
    if not os.path.exists(path):
        raise FileNotFoundError(f"no database at {path!r} (give --db PATH or set ${DB_ENV})")
    if os.path.isdir(path):
        raise NotARunJournalDatabase(f"{path} is a directory, not a runjournal database")
    if os.path.getsize(path) == 0:
        raise NotARunJournalDatabase(f"{path} is an empty file, not a runjournal database")


@asynccontextmanager
async def open_tracker(
    path: str, *, create: bool = False, read_only: bool = True
) -> AsyncIterator[Tracker]:
    """A tracker on ``path``, read-only unless ``read_only=False`` (or ``create``).

    Unless ``create``, the database must already exist.
    """
    if not create:
        require_database(path)
    async with Tracker.open(path, read_only=read_only and not create) as tracker:
        yield tracker


def require_absent(path: str, why: str) -> None:
    """Raise ``FileExistsError`` if ``path`` exists: a command that must not overwrite it."""
    if os.path.exists(path):
        raise FileExistsError(f"{path!r} already exists; {why}")


def refuse_database(path: str, why: str) -> None:
    """Raise ``FileExistsError`` if ``path`` is an SQLite database, which must not be replaced."""
    try:
        with open(path, "rb") as file:
            header = file.read(len(_SQLITE_MAGIC))
    except (FileNotFoundError, IsADirectoryError):
        return
    if header == _SQLITE_MAGIC:
        raise FileExistsError(f"{path!r} is an SQLite database; {why}")
