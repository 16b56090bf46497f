"""Purging: erase the journal entries of deleted runs and experiments, then compact the file.

:func:`erase` runs inside one write transaction (``writes.transaction``): it
finds every entry about an id in ``tombstones``, deletes those rows, appends one
``ids.purged`` entry that keeps the ids as tombstones, folds the projections
again and drops the artifact contents that only erased entries referred to. A
crash anywhere in it leaves the old file. :func:`compact` then runs ``VACUUM``
(its own atomic transaction, which WAL readers do not block) and truncates the
WAL when no reader holds it.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import time

from runjournal.events import EVENT_VERSION, EventCodec
from runjournal.ids import new_id
from runjournal.projection import PurgePlan
from runjournal.stores.sqlite.connection import LOCK_STEP_MS
from runjournal.stores.sqlite.writes import drop_contents, refold

__all__ = ["Erased", "compact", "erase", "size_on_disk"]


class Erased:
    """What :func:`erase` did."""

    def __init__(self, plan: PurgePlan, entries: int, blobs: int, position: int | None) -> None:
        self.plan = plan
        self.entries = entries
        self.blobs = blobs
        self.position = position


def erase(conn: sqlite3.Connection, codec: EventCodec, where: str) -> Erased:
    """Erase every entry about a deleted id (inside the caller's write transaction)."""
    deleted = {row[0] for row in conn.execute("SELECT id FROM tombstones")}
    plan = PurgePlan(deleted)
    if not deleted:
        return Erased(plan, 0, 0, None)
    head = conn.execute("SELECT coalesce(max(position), 0) FROM journal").fetchone()[0]
    doomed: list[tuple[int]] = []
    shas: set[str] = set()
    about = codec.about
    rows = conn.execute("SELECT position, version, body FROM journal ORDER BY position")
    while chunk := rows.fetchmany(10_000):
        for position, version, body in chunk:
            run_id, experiment_id, sha256 = about(body, version)
            if plan.erases(run_id, experiment_id):
                doomed.append((position,))
                if sha256 is not None:
                    shas.add(sha256)
    event = plan.event(time.time())
    if event is None:
        return Erased(plan, 0, 0, None)
    conn.executemany("DELETE FROM journal WHERE position = ?", doomed)
    # Above the old head, never at an erased position: a follower past it must see this entry.
    position = head + 1
    conn.execute(
        "INSERT INTO journal (position, source, seq, recorded_at, version, body) "
        "VALUES (?, ?, 1, ?, ?, ?)",
        (position, f"purge-{new_id()}", event.at, EVENT_VERSION, codec.encode(event)),
    )
    refold(conn, codec, where)
    blobs = drop_contents(conn, shas)
    return Erased(plan, len(doomed), blobs, position)


def compact(conn: sqlite3.Connection, busy_timeout: float) -> bool:
    """``VACUUM``, then truncate the WAL; False if another process kept the database busy."""
    conn.execute(f"PRAGMA busy_timeout={int(busy_timeout * 1000)}")
    try:
        conn.execute("VACUUM")
    except sqlite3.OperationalError as exc:
        if (getattr(exc, "sqlite_errorname", "") or "").startswith(
            ("SQLITE_BUSY", "SQLITE_LOCKED")
        ):
            return False
        raise
    finally:
        conn.execute(f"PRAGMA busy_timeout={LOCK_STEP_MS}")
    # Shrinks the -wal file unless a reader still holds an older snapshot; that is harmless.
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
    return True


def size_on_disk(path: str) -> int | None:
    """Bytes of the database file and its WAL, or None for an in-memory database."""
    if path == ":memory:":
        return None
    total = 0
    for name in (path, f"{path}-wal"):
        with contextlib.suppress(FileNotFoundError):
            total += os.stat(name).st_size
    return total
