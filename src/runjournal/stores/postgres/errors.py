"""The one boundary where psycopg errors become runjournal's own errors.

Every call into PostgreSQL runs inside ``with translated(where):``, so a caller
only ever sees a :class:`~runjournal.errors.StoreError`. ``where`` is the DSN
with its password removed (``connection.describe``), so no message carries it.

Transient (the writer keeps the events and retries the whole batch) or permanent
(the writer isolates the events that cause it), by SQLSTATE class:

==========================  ==========  ==========================================
class                       transient?  why
==========================  ==========  ==========================================
08 connection exception     yes         the server is down, restarting, unreachable
57 operator intervention    yes         shutdown, cancel, statement timeout
53 insufficient resources   yes         disk full, out of memory, too many clients
40 transaction rollback     yes         serialization failure, deadlock
55 object not in state      yes         lock not available (``lock_timeout``)
25 invalid txn state        yes         a read-only transaction (a standby)
22 data exception           no          a value PostgreSQL cannot take
23 integrity violation      no          the rows contradict the schema
42 syntax / access rule     no          the same statement fails the same way
(no SQLSTATE)               yes         the connection broke before any answer
(any other)                 yes         unknown: keep the events rather than refuse them
==========================  ==========  ==========================================
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import psycopg

from runjournal.errors import StoreError, StoreFull, StoreLocked, StoreReadOnly, StoreUnavailable

__all__ = ["is_transient", "translate_error", "translated"]

_PERMANENT_CLASSES = frozenset({"22", "23", "42", "0A", "2B", "44", "XX"})


def is_transient(exc: psycopg.Error) -> bool:
    """True if the same operation may succeed later (see the table above)."""
    state = exc.sqlstate
    if state is None:
        return True
    return state[:2] not in _PERMANENT_CLASSES


def translate_error(exc: psycopg.Error, where: str) -> StoreError:
    """Turn a psycopg error into the matching runjournal error."""
    state = exc.sqlstate or ""
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    if isinstance(exc, psycopg.OperationalError) and (not state or state[:2] in ("08", "57")):
        return StoreUnavailable(f"{where}: the database server is unavailable ({text})")
    if state == "53100":
        return StoreFull(f"{where}: the server's disk is full ({text})")
    if state in ("55P03", "40P01", "40001"):
        return StoreLocked(f"{where}: waited too long for another writer ({text})")
    if state == "25006":
        return StoreReadOnly(f"{where}: the database cannot be written ({text})")
    if state == "54000":
        return StoreError(f"too large for the store ({text})", transient=False)
    return StoreError(f"{where}: {text}", transient=is_transient(exc))


@contextmanager
def translated(where: str) -> Iterator[None]:
    """Raise any psycopg error of the block as :func:`translate_error` makes it."""
    try:
        yield
    except psycopg.Error as exc:
        raise translate_error(exc, where) from exc
