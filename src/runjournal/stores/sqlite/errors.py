"""The one boundary where ``sqlite3`` errors become runjournal's own errors.

Every call into SQLite runs inside ``with translated(path):``, so that a caller
only ever sees a :class:`~runjournal.errors.StoreError` (locked, full, read-only,
not a runjournal database), never an ``sqlite3`` exception.
"""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager

from runjournal.errors import (
    NotARunJournalDatabase,
    StoreError,
    StoreFull,
    StoreLocked,
    StoreReadOnly,
)

__all__ = ["translate_error", "translated"]


def translate_error(exc: sqlite3.Error, where: str) -> StoreError:
    """Turn an ``sqlite3`` error into the matching runjournal error."""
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


@contextmanager
def translated(where: str) -> Iterator[None]:
    """Raise any ``sqlite3`` error of the block as :func:`translate_error` makes it."""
    try:
        yield
    except sqlite3.Error as exc:
        raise translate_error(exc, where) from exc


def _read_only_location(path: str) -> bool:
    directory = os.path.dirname(os.path.abspath(path)) or "."
    return os.path.exists(directory) and not os.access(directory, os.W_OK)
