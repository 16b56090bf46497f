"""The write transaction: a batch of journal entries and their projections, committed at once.

This is where a metric point reaches the disk. The writer thread hands a batch
to ``SqliteBackend.append``, which runs :func:`append` inside one
:func:`transaction` (``BEGIN IMMEDIATE ... COMMIT``) on the write connection:
each new entry is folded into the projections through an ``Overlay``, its body is
inserted into ``journal``, and the changed projection rows are written once at
the end. :func:`refold` drops the projections and folds the whole journal again.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager

from runjournal.errors import StoreError
from runjournal.events import EVENT_VERSION, BlobStored, EventCodec
from runjournal.projection import Rejected, evolve
from runjournal.stores.base import AppendResult, NewEntry
from runjournal.stores.sqlite.overlay import Overlay
from runjournal.stores.sqlite.schema import (
    PROJECTION_TABLES,
    PROJECTIONS,
    statements,
)

__all__ = ["append", "refold", "transaction"]


@contextmanager
def transaction(
    conn: sqlite3.Connection, busy_timeout: float, wait_limit: Callable[[], float | None]
) -> Iterator[sqlite3.Connection]:
    """``BEGIN IMMEDIATE`` ... ``COMMIT``, or ``ROLLBACK`` if the block raises.

    Waits for the write lock up to ``busy_timeout``, or until the ``time.monotonic()``
    moment that ``wait_limit()`` gives (a drain's deadline), whichever comes first.
    """
    _begin(conn, busy_timeout, wait_limit)
    try:
        yield conn
        conn.execute("COMMIT")
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise


def _begin(
    conn: sqlite3.Connection, busy_timeout: float, wait_limit: Callable[[], float | None]
) -> None:
    deadline = time.monotonic() + busy_timeout
    pause = 0.001
    while True:
        try:
            conn.execute("BEGIN IMMEDIATE")
            return
        except sqlite3.OperationalError as exc:
            if not (getattr(exc, "sqlite_errorname", "") or "").startswith("SQLITE_BUSY"):
                raise
            limit = wait_limit()
            limit = deadline if limit is None else min(deadline, limit)
            now = time.monotonic()
            if now >= limit:
                raise
            time.sleep(min(pause, limit - now))
            pause = min(pause * 2, 0.02)


def append(
    conn: sqlite3.Connection,
    codec: EventCodec,
    entries: Sequence[NewEntry],
    blobs: Sequence[BlobStored],
) -> AppendResult:
    """Store ``blobs``, then journal each entry that is new and still applies (in a transaction)."""
    if blobs:
        conn.executemany(
            "INSERT OR IGNORE INTO blobs (sha256, data) VALUES (?, ?)",
            [(b.sha256, b.data) for b in blobs],
        )
    seen = _journaled(conn, entries)
    overlay = Overlay(conn)
    # Positions are ours to assign: BEGIN IMMEDIATE holds the write lock, and the
    # journal only ever grows, so the next position is max + 1.
    position = conn.execute("SELECT coalesce(max(position), 0) FROM journal").fetchone()[0]
    rows: list[tuple[int, str, int, float, int, bytes]] = []
    duplicates = 0
    rejected: list[tuple[int, str]] = []
    encode = codec.encode
    for index, entry in enumerate(entries):
        if (entry.source, entry.seq) in seen:
            duplicates += 1
            continue
        try:
            changes = evolve(overlay, entry.event)
        except Rejected as exc:
            rejected.append((index, str(exc)))
            continue
        position += 1
        overlay.apply(changes, position)
        seen.add((entry.source, entry.seq))
        rows.append(
            (
                position,
                entry.source,
                entry.seq,
                entry.recorded_at,
                EVENT_VERSION,
                encode(entry.event),
            )
        )
    conn.executemany(
        "INSERT INTO journal (position, source, seq, recorded_at, version, body) "
        "VALUES (?, ?, ?, ?, ?, ?)",
        rows,
    )
    overlay.write()
    return AppendResult(len(rows), duplicates, rejected, int(position))


def refold(conn: sqlite3.Connection, codec: EventCodec, where: str) -> None:
    """Drop every projection table and fold the whole journal again (in a transaction)."""
    for table in PROJECTION_TABLES:
        conn.execute(f"DROP TABLE IF EXISTS {table}")
    for statement in statements(PROJECTIONS):
        conn.execute(statement)
    overlay = Overlay(conn)
    rows = conn.execute("SELECT position, version, body FROM journal ORDER BY position")
    decode = codec.decode
    while chunk := rows.fetchmany(10_000):
        for position, version, body in chunk:
            try:
                changes = evolve(overlay, decode(body, version))
            except Rejected as exc:
                raise StoreError(
                    f"{where}: journal entry {position} no longer applies: {exc}"
                ) from exc
            overlay.apply(changes, position)
    overlay.write()


def _journaled(conn: sqlite3.Connection, entries: Sequence[NewEntry]) -> set[tuple[str, int]]:
    """The ``(source, seq)`` of ``entries`` that the journal already holds: one query a source."""
    spans: dict[str, tuple[int, int]] = {}
    for entry in entries:
        low, high = spans.get(entry.source, (entry.seq, entry.seq))
        spans[entry.source] = (min(low, entry.seq), max(high, entry.seq))
    seen: set[tuple[str, int]] = set()
    for source, (low, high) in spans.items():
        rows = conn.execute(
            "SELECT seq FROM journal WHERE source = ? AND seq BETWEEN ? AND ?", (source, low, high)
        )
        seen.update((source, seq) for (seq,) in rows.fetchall())
    return seen
