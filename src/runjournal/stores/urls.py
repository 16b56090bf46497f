"""Which store a spec names: a ``postgresql://`` URL, or the path of an SQLite file.

Every face opens a store from what the user typed (``Tracker.open``, ``--db``,
``$RUNJOURNAL_DB``, the journal functions) through :func:`store_for`, so a URL
works wherever a path does. Telling them apart needs no driver: psycopg is
loaded only for a URL.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

from runjournal.stores.sqlite import Durability, SqliteBackend

if TYPE_CHECKING:
    from runjournal.stores.base import Store

__all__ = ["is_postgres_url", "store_for"]

_SCHEMES = ("postgresql://", "postgres://")


def is_postgres_url(spec: object) -> bool:
    """True if ``spec`` is a ``postgresql://`` (or ``postgres://``) URL."""
    return isinstance(spec, str) and spec.lower().startswith(_SCHEMES)


def store_for(
    spec: str | os.PathLike[str],
    *,
    read_only: bool = False,
    durability: Durability = "normal",
    busy_timeout: float = 30.0,
) -> Store:
    """The store ``spec`` names: ``PostgresBackend`` for a URL, else ``SqliteBackend``.

    ``durability`` and ``busy_timeout`` are SQLite's (PostgreSQL's durability is
    the server's own setting).
    """
    if is_postgres_url(spec):
        from runjournal.stores.postgres import PostgresBackend

        return PostgresBackend(str(spec), read_only=read_only)
    return SqliteBackend(
        spec, durability=durability, busy_timeout=busy_timeout, read_only=read_only
    )
