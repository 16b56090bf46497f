"""Bringing a database written by an older runjournal up to :data:`~schema.SCHEMA_VERSION`.

A migration never changes the journal: it is the truth and keeps its bytes.
Version 3 moved artifact content from one ``blobs`` row per artifact (at most
SQLite's 1 GB) into chunks of at most ``CHUNK_SIZE`` with a manifest per
content; each old blob is read piece by piece through SQLite's incremental blob
I/O, never whole into Python. Version 4 added ``runs.hidden``: no journal an older
runjournal wrote hides a run, so the column is added with its default, 0, without
a refold. Version 2 added ``runs.last_activity``, an index of
experiments by name, the ``rollups`` table and the step span of each ``metrics`` row;
all are derived from the journal, so the upgrade refolds the projections, which gives
every old run its last activity and every old series its rollups exactly as a
fresh fold would. It runs once, when a writer first opens the file, in one
``BEGIN IMMEDIATE`` transaction: a process that opens the file at the same time
waits for it, then finds the file current. Its cost is that of a ``rebuild()``.
Version 5 gave each ``params`` row its kind and a typed copy of its value (the
typed params index, see ``filters``), and runs an index by creation time: a file of
version 3 or 4 gets them in the same
one transaction by :func:`_typed_params`, which decodes each stored value once
(an older file is refolded, which writes them anyway).
Version 6 changed no table: it marks a file whose journal may hold ``metrics.chunk``
entries and the ``tag.deleted``, ``run.renamed`` and ``experiment.updated`` events, which a
runjournal of version 5 cannot read, so that such a runjournal refuses
the file instead of misreading it. Upgrading a file of version 5 only sets the version.
Version 7 added the rollup levels between the first format's (``runjournal.rollups``), so
that a chart reads about one stored row per point it draws: :func:`_finer_rollups` merges
them from each series' level-1 rows, a page at a time, and copies each series' level 0 as
its ``FOLDED`` bucket, which says that the new levels hold every point.
"""

from __future__ import annotations

import hashlib
import sqlite3

import msgspec

from runjournal.events import EventCodec
from runjournal.stores._rollups import finer_levels_sql, upgrade_rollups
from runjournal.stores.base import CHUNK_SIZE
from runjournal.stores.sqlite.filters import param_columns
from runjournal.stores.sqlite.schema import (
    CONTENT_TABLES,
    SCHEMA_VERSION,
    TYPED_PARAMS,
    schema_version,
    statements,
)
from runjournal.stores.sqlite.writes import refold, sweep_chunks

__all__ = ["sweep_at_open", "upgrade"]


def upgrade(conn: sqlite3.Connection, where: str) -> None:
    """Migrate the database on ``conn`` (autocommit, the write connection) to the current schema."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        # Another process may have upgraded it since we looked.
        version = schema_version(conn)
        if version < 3:
            _chunk_blobs(conn)
        if version < 3:
            # Every projection is derived from the journal: a refold rebuilds them in
            # their current shape, whatever the older one was.
            refold(conn, EventCodec(), where)
        else:
            if version < 4:
                conn.execute("ALTER TABLE runs ADD COLUMN hidden INTEGER NOT NULL DEFAULT 0")
            if version < 5:
                _typed_params(conn)
            if version < 7:
                _finer_rollups(conn)
        if version < SCHEMA_VERSION:
            conn.execute(
                "UPDATE meta SET value = ? WHERE key = 'schema_version'", (str(SCHEMA_VERSION),)
            )
        conn.execute("COMMIT")
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise


_FINER_SQL = finer_levels_sql("rollups", "?")


def _finer_rollups(conn: sqlite3.Connection) -> None:
    """Version 7: the finer rollup levels and the ``FOLDED`` bucket of every series."""
    upgrade_rollups(conn, _FINER_SQL, conn.executemany)


def _chunk_blobs(conn: sqlite3.Connection) -> None:
    """Version 3: every ``blobs`` row becomes chunks and a manifest; ``blobs`` goes."""
    for statement in statements(CONTENT_TABLES):
        conn.execute(statement)
    # A rowid table of one row, so that incremental blob I/O can read it in pieces.
    conn.execute("CREATE TEMP TABLE IF NOT EXISTS legacy_blob (data BLOB)")
    shas = [sha for (sha,) in conn.execute("SELECT sha256 FROM blobs").fetchall()]
    find = "SELECT id FROM chunks WHERE digest = ?"
    for sha in shas:
        conn.execute("DELETE FROM temp.legacy_blob")
        conn.execute(
            "INSERT INTO temp.legacy_blob (rowid, data) SELECT 1, data FROM blobs WHERE sha256 = ?",
            (sha,),
        )
        ids: list[int] = []
        size = 0
        with conn.blobopen("legacy_blob", "data", 1, readonly=True, name="temp") as blob:
            while piece := blob.read(CHUNK_SIZE):
                size += len(piece)
                digest = hashlib.sha256(piece).digest()
                row = conn.execute(find, (digest,)).fetchone()
                if row is None:
                    cursor = conn.execute(
                        "INSERT INTO chunks (digest, data) VALUES (?, ?)", (digest, piece)
                    )
                    ids.append(int(cursor.lastrowid or 0))
                else:
                    ids.append(int(row[0]))
        conn.execute("INSERT OR IGNORE INTO contents VALUES (?, ?)", (sha, size))
        conn.executemany(
            "INSERT OR IGNORE INTO content_chunks VALUES (?, ?, ?)",
            [(sha, idx, chunk) for idx, chunk in enumerate(ids)],
        )
    conn.execute("DROP TABLE temp.legacy_blob")
    conn.execute("DROP TABLE blobs")


def _typed_params(conn: sqlite3.Connection) -> None:
    """Version 5: every ``params`` row gets its kind, ``num`` and ``text`` (and their indexes);
    runs get ``runs_by_creation``."""
    conn.execute("ALTER TABLE params RENAME TO params_v3")
    for index in ("params_by_run", "params_by_num", "params_by_text"):
        # Names stay with the renamed table: drop them, or IF NOT EXISTS below skips them.
        conn.execute(f"DROP INDEX IF EXISTS {index}")
    for statement in statements(TYPED_PARAMS):
        conn.execute(statement)
    decode = msgspec.msgpack.Decoder().decode
    rows = conn.execute("SELECT key, run_id, value FROM params_v3")
    while chunk := rows.fetchmany(10_000):
        conn.executemany(
            "INSERT INTO params (key, run_id, value, kind, num, text) VALUES (?, ?, ?, ?, ?, ?)",
            [(key, run_id, value, *param_columns(decode(value))) for key, run_id, value in chunk],
        )
    conn.execute("DROP TABLE params_v3")
    conn.execute("CREATE INDEX IF NOT EXISTS runs_by_creation ON runs (created_at, id, hidden)")


def sweep_at_open(conn: sqlite3.Connection) -> None:
    """Drop chunks that no content refers to, if there are any and the lock is free now.

    A look first, so that a clean file is never written to at open; and no wait
    for another process's write (a long artifact upload, say): the next open sweeps.
    """
    orphan = conn.execute(
        "SELECT 1 FROM chunks WHERE NOT EXISTS "
        "(SELECT 1 FROM content_chunks WHERE chunk = chunks.id) LIMIT 1"
    ).fetchone()
    if orphan is None:
        return
    try:
        conn.execute("BEGIN IMMEDIATE")
    except sqlite3.OperationalError:
        return
    try:
        sweep_chunks(conn)
        conn.execute("COMMIT")
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise
