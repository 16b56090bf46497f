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
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager

from runjournal.errors import StoreError
from runjournal.events import EVENT_VERSION, EventCodec
from runjournal.projection import Rejected, evolve
from runjournal.stores.base import AppendResult, Content, NewEntry
from runjournal.stores.sqlite.overlay import Overlay
from runjournal.stores.sqlite.schema import (
    PROJECTION_TABLES,
    PROJECTIONS,
    statements,
)

__all__ = [
    "append",
    "append_artifact",
    "drop_contents",
    "refold",
    "store_chunks",
    "store_content",
    "sweep_chunks",
    "transaction",
]


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


def store_chunks(conn: sqlite3.Connection, content: Content) -> list[int]:
    """Store the chunks of ``content`` that are new, as they are read; their ids, in order.

    A chunk already stored (by its digest) is not written again.
    """
    ids: list[int] = []
    find = "SELECT id FROM chunks WHERE digest = ?"
    for digest, data in content:
        row = conn.execute(find, (digest,)).fetchone()
        if row is None:
            cursor = conn.execute("INSERT INTO chunks (digest, data) VALUES (?, ?)", (digest, data))
            ids.append(int(cursor.lastrowid or 0))
        else:
            ids.append(int(row[0]))
    return ids


def store_content(conn: sqlite3.Connection, content: Content, ids: list[int] | None = None) -> None:
    """Store ``content`` (its chunks, unless ``ids`` are given, and its manifest), once."""
    if ids is None:
        stored = conn.execute("SELECT 1 FROM contents WHERE sha256 = ?", (content.sha256,))
        if stored.fetchone() is not None and content.replayable:
            return  # content-addressed: the same bytes are already there
        ids = store_chunks(conn, content)
    cursor = conn.execute(
        "INSERT OR IGNORE INTO contents (sha256, size_bytes) VALUES (?, ?)",
        (content.sha256, content.size_bytes),
    )
    if cursor.rowcount:
        conn.executemany(
            "INSERT INTO content_chunks (sha256, idx, chunk) VALUES (?, ?, ?)",
            [(content.sha256, idx, chunk) for idx, chunk in enumerate(ids)],
        )


def drop_contents(conn: sqlite3.Connection, sha256s: Iterable[str]) -> int:
    """Drop these contents unless an artifact still names them; then their orphan chunks.

    Returns how many contents were dropped.
    """
    dropped = 0
    chunks: set[int] = set()
    for sha in sorted(set(sha256s)):
        if conn.execute("SELECT 1 FROM artifacts WHERE sha256 = ?", (sha,)).fetchone():
            continue
        rows = conn.execute("SELECT chunk FROM content_chunks WHERE sha256 = ?", (sha,))
        chunks.update(chunk for (chunk,) in rows.fetchall())
        conn.execute("DELETE FROM content_chunks WHERE sha256 = ?", (sha,))
        dropped += conn.execute("DELETE FROM contents WHERE sha256 = ?", (sha,)).rowcount
    conn.executemany(
        "DELETE FROM chunks WHERE id = ? "
        "AND NOT EXISTS (SELECT 1 FROM content_chunks WHERE chunk = ?)",
        [(chunk, chunk) for chunk in sorted(chunks)],
    )
    return dropped


def sweep_chunks(conn: sqlite3.Connection) -> int:
    """Delete every chunk that no content refers to; how many went.

    Contents commit with their chunks, so a crash never leaves such chunks; this
    is the guard that keeps it so after anything else (an older runjournal's
    interrupted migration, a hand-edited file).
    """
    return conn.execute(
        "DELETE FROM chunks WHERE NOT EXISTS (SELECT 1 FROM content_chunks WHERE chunk = chunks.id)"
    ).rowcount


def append(
    conn: sqlite3.Connection,
    codec: EventCodec,
    entries: Sequence[NewEntry],
    contents: Sequence[Content] = (),
) -> AppendResult:
    """Store ``contents``, then journal each entry that is new and still applies (in a transaction)."""
    for content in contents:
        store_content(conn, content)
    seen = _journaled(conn, entries)
    # Positions are ours to assign: BEGIN IMMEDIATE holds the write lock, and the
    # journal only ever grows, so the next position is max + 1.
    position = conn.execute("SELECT coalesce(max(position), 0) FROM journal").fetchone()[0]
    # The projections are the fold of the journal: an empty journal has nothing to look up.
    overlay = Overlay(conn, empty=position == 0)
    apply = overlay.apply
    rows: list[tuple[int, str, int, float, int, bytes]] = []
    duplicates = 0
    rejected: list[tuple[int, str]] = []
    encode = codec.encode
    for index, entry in enumerate(entries):
        identity = (entry.source, entry.seq)
        if identity in seen:
            duplicates += 1
            continue
        try:
            changes = evolve(overlay, entry.event)
        except Rejected as exc:
            rejected.append((index, str(exc)))
            continue
        position += 1
        apply(changes, position)
        seen.add(identity)
        body = entry.body
        rows.append(
            (
                position,
                identity[0],
                identity[1],
                entry.recorded_at,
                EVENT_VERSION,
                encode(entry.event) if body is None else body,
            )
        )
    conn.executemany(
        "INSERT INTO journal (position, source, seq, recorded_at, version, body) "
        "VALUES (?, ?, ?, ?, ?, ?)",
        rows,
    )
    overlay.write()
    return AppendResult(len(rows), duplicates, rejected, int(position))


def append_artifact(
    conn: sqlite3.Connection,
    codec: EventCodec,
    content: Content,
    entry: Callable[[str, int], NewEntry],
) -> AppendResult:
    """Store a streamed ``content`` and its entry (in a transaction, which the caller rolls back
    when the entry is rejected: see ``SqliteBackend.append_artifact``)."""
    ids = store_chunks(conn, content)
    assert content.sha256 is not None and content.size_bytes is not None
    store_content(conn, content, ids)
    return append(conn, codec, [entry(content.sha256, content.size_bytes)])


def refold(conn: sqlite3.Connection, codec: EventCodec, where: str) -> None:
    """Drop every projection table and fold the whole journal again (in a transaction)."""
    for table in PROJECTION_TABLES:
        conn.execute(f"DROP TABLE IF EXISTS {table}")
    for statement in statements(PROJECTIONS):
        conn.execute(statement)
    overlay = Overlay(conn, empty=True)
    rows = conn.execute("SELECT position, version, body FROM journal ORDER BY position")
    decode = codec.decode
    apply = overlay.apply
    while chunk := rows.fetchmany(10_000):
        for position, version, body in chunk:
            try:
                changes = evolve(overlay, decode(body, version))
            except Rejected as exc:
                raise StoreError(
                    f"{where}: journal entry {position} no longer applies: {exc}"
                ) from exc
            apply(changes, position)
    overlay.write()


def _journaled(conn: sqlite3.Connection, entries: Sequence[NewEntry]) -> set[tuple[str, int]]:
    """The ``(source, seq)`` of ``entries`` that the journal already holds: one query a source."""
    seqs: dict[str, list[int]] = {}
    for entry in entries:
        found = seqs.get(entry.source)
        if found is None:
            seqs[entry.source] = [entry.seq]
        else:
            found.append(entry.seq)
    seen: set[tuple[str, int]] = set()
    for source, numbers in seqs.items():
        rows = conn.execute(
            "SELECT seq FROM journal WHERE source = ? AND seq BETWEEN ? AND ?",
            (source, min(numbers), max(numbers)),
        )
        seen.update((source, seq) for (seq,) in rows.fetchall())
    return seen
