"""Bringing a database written by an older runjournal up to :data:`~schema.SCHEMA_VERSION`.

A migration only ever changes projections: the journal is the truth and keeps
its bytes. Version 2 added ``runs.last_activity``, an index of experiments by
name, the ``rollups`` table and the step span of each ``metrics`` row; all are
derived from the journal, so the upgrade refolds the projections, which gives
every old run its last activity and every old series its rollups exactly as a
fresh fold would. It runs once, when a writer first opens the file, in one
``BEGIN IMMEDIATE`` transaction: a process that opens the file at the same time
waits for it, then finds the file current. Its cost is that of a ``rebuild()``.
"""

from __future__ import annotations

import sqlite3

from runjournal.events import EventCodec
from runjournal.stores.sqlite.schema import SCHEMA_VERSION, schema_version
from runjournal.stores.sqlite.writes import refold

__all__ = ["upgrade"]


def upgrade(conn: sqlite3.Connection, where: str) -> None:
    """Migrate the database on ``conn`` (autocommit, the write connection) to the current schema."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        # Another process may have upgraded it since we looked.
        if schema_version(conn) < SCHEMA_VERSION:
            refold(conn, EventCodec(), where)
            conn.execute(
                "UPDATE meta SET value = ? WHERE key = 'schema_version'", (str(SCHEMA_VERSION),)
            )
        conn.execute("COMMIT")
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise
