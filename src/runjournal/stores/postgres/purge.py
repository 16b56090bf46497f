"""Purging: erase the journal entries of deleted runs and experiments, then vacuum.

The same steps as the SQLite store's purge (``runjournal.stores.sqlite.purge``),
in one transaction under the schema's write lock; then ``VACUUM`` of the
schema's tables, which PostgreSQL runs outside any transaction.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from runjournal.events import EVENT_VERSION, EventCodec
from runjournal.ids import new_id
from runjournal.projection import PurgePlan
from runjournal.stores.postgres.schema import TABLES, notify_channel
from runjournal.stores.postgres.writes import drop_contents, lock, refold

if TYPE_CHECKING:
    import psycopg

__all__ = ["Erased", "erase", "size_on_server", "vacuum"]


class Erased:
    """What :func:`erase` did."""

    def __init__(self, plan: PurgePlan, entries: int, blobs: int, position: int | None) -> None:
        self.plan = plan
        self.entries = entries
        self.blobs = blobs
        self.position = position


def erase(conn: psycopg.Connection[Any], schema: str, codec: EventCodec, where: str) -> Erased:
    """Erase every entry about a deleted id (inside the caller's transaction)."""
    s = schema
    lock(conn, s)
    deleted = {str(row[0]) for row in conn.execute(f"SELECT id FROM {s}.tombstones").fetchall()}
    plan = PurgePlan(deleted)
    if not deleted:
        return Erased(plan, 0, 0, None)
    row = conn.execute(f"SELECT coalesce(max(position), 0) FROM {s}.journal").fetchone()
    head = int(row[0]) if row is not None else 0
    doomed: list[int] = []
    shas: set[str] = set()
    about = codec.about
    with conn.cursor(name="runjournal_purge") as rows:
        rows.itersize = 10_000
        rows.execute(f"SELECT position, version, body FROM {s}.journal ORDER BY position")
        for position, version, body in rows:
            run_id, experiment_id, sha256 = about(bytes(body), version)
            if plan.erases(run_id, experiment_id):
                doomed.append(int(position))
                if sha256 is not None:
                    shas.add(sha256)
    event = plan.event(time.time())
    if event is None:
        return Erased(plan, 0, 0, None)
    conn.execute(f"DELETE FROM {s}.journal WHERE position = ANY(%s)", (doomed,))
    position = head + 1  # above the old head: a follower past it must see this entry
    conn.execute(
        f"INSERT INTO {s}.journal (position, source, seq, recorded_at, version, body) "
        "VALUES (%s, %s, 1, %s, %s, %s)",
        (position, f"purge-{new_id()}", event.at, EVENT_VERSION, codec.encode(event)),
    )
    refold(conn, s, codec, where)
    blobs = drop_contents(conn, s, shas)
    conn.execute("SELECT pg_notify(%s, %s)", (notify_channel(s), str(position)))
    return Erased(plan, len(doomed), blobs, position)


def vacuum(conn: psycopg.Connection[Any], schema: str) -> None:
    """``VACUUM`` every table of the schema (``conn`` in autocommit mode)."""
    for table in TABLES:
        conn.execute(f"VACUUM {schema}.{table}")


def size_on_server(conn: psycopg.Connection[Any], schema: str) -> int:
    """Bytes the schema's tables take, with their indexes and TOAST (``pg_total_relation_size``)."""
    row = conn.execute(
        "SELECT coalesce(sum(pg_total_relation_size(c.oid)), 0) FROM pg_class c "
        "JOIN pg_namespace n ON n.oid = c.relnamespace "
        "WHERE n.nspname = %s AND c.relkind = 'r'",
        (schema,),
    ).fetchone()
    return int(row[0]) if row is not None else 0
