"""The one boundary where ``sqlite3`` errors become runjournal's own errors.

Every call into SQLite runs inside ``with translated(path):``, so that a caller
only ever sees a :class:`~runjournal.errors.StoreError` (locked, full, read-only,
not a runjournal database), never an ``sqlite3`` exception.

This is also the one place that decides whether an error is *transient* (the
storage cannot write now; the same write may succeed later, so the writer keeps
the events and retries) or *permanent* (this write can never succeed; the writer
isolates the events that cause it and rejects those alone). By primary result
code:

===================  ==========  ==============================================
code                 transient?  why
===================  ==========  ==============================================
BUSY, LOCKED         yes         another connection holds a lock
FULL                 yes         the disk (or ``max_page_count``) has no room
IOERR, NOMEM         yes         the OS or memory failed this time
READONLY, PERM       yes         permissions or a mount can be fixed meanwhile
CANTOPEN             yes         a missing directory or mount can come back
PROTOCOL, SCHEMA     yes         a race with another connection; retry works
INTERRUPT            yes         the write was cut short, not refused
TOOBIG               no          a value beyond ``SQLITE_LIMIT_LENGTH``
CONSTRAINT           no          the rows contradict the schema
MISMATCH, RANGE      no          a value or parameter SQLite cannot take
ERROR, AUTH, FORMAT  no          the same statement fails the same way again
NOTADB, CORRUPT      no          the file is not (or no more) a usable database
(any other)          yes         unknown: keep the events rather than refuse them
===================  ==========  ==============================================

A Python error raised while binding a value (``OverflowError`` for an int
beyond 64 bits, say) never reaches here; the writer treats it as permanent.
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

__all__ = ["is_transient", "translate_error", "translated"]


_PERMANENT = frozenset(
    {
        "SQLITE_TOOBIG",
        "SQLITE_CONSTRAINT",
        "SQLITE_MISMATCH",
        "SQLITE_RANGE",
        "SQLITE_ERROR",
        "SQLITE_AUTH",
        "SQLITE_FORMAT",
        "SQLITE_NOTADB",
        "SQLITE_CORRUPT",
    }
)
"""Primary result codes of writes that can never succeed (see the table above)."""


def is_transient(exc: sqlite3.Error) -> bool:
    """True if the same operation may succeed later (see the table above)."""
    name = getattr(exc, "sqlite_errorname", "") or ""
    if not name:  # no result code (a misuse of the module, say): keep the events
        return True
    return _primary(name) not in _PERMANENT


def translate_error(exc: sqlite3.Error, where: str) -> StoreError:
    """Turn an ``sqlite3`` error into the matching runjournal error.

    Its ``transient`` flag follows the table in this module's docstring.
    """
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
    if name == "SQLITE_TOOBIG":
        return StoreError(f"too large for the store ({exc})", transient=False)
    return StoreError(f"{where}: {exc}", transient=is_transient(exc))


def _primary(name: str) -> str:
    """The primary result code of an extended one (``SQLITE_CONSTRAINT_UNIQUE`` -> ``..._CONSTRAINT``)."""
    for code in _PERMANENT:
        if name.startswith(code):
            return code
    return name


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
