"""The write transaction: a batch of journal entries and their projections, committed at once.

``PostgresBackend.append`` runs :func:`append` inside one transaction on the
write connection. Its first statement takes the schema's
``pg_advisory_xact_lock``, which every writer of the schema takes, in every
process: positions are then assigned as ``max + 1`` by one writer at a time and
the lock is released only by the commit, so commit order equals position order
and a reader tailing the journal never sees position ``n + 1`` before ``n``
(with an identity column instead, a tailing reader missed about one entry in
five under eight concurrent writers). The ``NOTIFY`` that wakes ``follow()`` is
sent inside the same transaction, so it is delivered only if the entries commit.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import TYPE_CHECKING, Any

from runjournal.errors import StoreError
from runjournal.events import EVENT_VERSION, EventCodec
from runjournal.projection import Rejected, evolve
from runjournal.stores.base import AppendResult, Content, NewEntry
from runjournal.stores.postgres.overlay import Overlay
from runjournal.stores.postgres.schema import PROJECTION_TABLES, lock_key, notify_channel

if TYPE_CHECKING:
    import psycopg

__all__ = [
    "append",
    "append_artifact",
    "drop_contents",
    "lock",
    "refold",
    "store_chunks",
    "store_content",
    "sweep_chunks",
]


_JOURNAL_TYPES = ("int8", "text", "int8", "float8", "int4", "bytea")
"""The journal's columns, as a binary ``COPY`` sends them (the server parses no text)."""


def lock(conn: psycopg.Connection[Any], schema: str) -> None:
    """Take the schema's write lock, until the transaction ends."""
    conn.execute("SELECT pg_advisory_xact_lock(%s)", (lock_key(schema),))


def store_chunks(conn: psycopg.Connection[Any], schema: str, content: Content) -> list[int]:
    """Store the chunks of ``content`` that are new, as they are read; their ids, in order."""
    ids: list[int] = []
    for digest, data in content:
        row = conn.execute(
            f"INSERT INTO {schema}.chunks (digest, data) VALUES (%s, %s) "
            "ON CONFLICT (digest) DO NOTHING RETURNING id",
            (digest, data),
        ).fetchone()
        if row is None:
            row = conn.execute(
                f"SELECT id FROM {schema}.chunks WHERE digest = %s", (digest,)
            ).fetchone()
            assert row is not None
        ids.append(int(row[0]))
    return ids


def store_content(
    conn: psycopg.Connection[Any], schema: str, content: Content, ids: list[int] | None = None
) -> None:
    """Store ``content`` (its chunks, unless ``ids`` are given, and its manifest), once."""
    if ids is None:
        stored = conn.execute(
            f"SELECT 1 FROM {schema}.contents WHERE sha256 = %s", (content.sha256,)
        ).fetchone()
        if stored is not None and content.replayable:
            return  # content-addressed: the same bytes are already there
        ids = store_chunks(conn, schema, content)
    added = conn.execute(
        f"INSERT INTO {schema}.contents (sha256, size_bytes) VALUES (%s, %s) "
        "ON CONFLICT DO NOTHING",
        (content.sha256, content.size_bytes),
    ).rowcount
    if added:
        conn.cursor().executemany(
            f"INSERT INTO {schema}.content_chunks (sha256, idx, chunk) VALUES (%s, %s, %s)",
            [(content.sha256, idx, chunk) for idx, chunk in enumerate(ids)],
        )


def drop_contents(conn: psycopg.Connection[Any], schema: str, sha256s: Iterable[str]) -> int:
    """Drop these contents unless an artifact still names them; then their orphan chunks."""
    s = schema
    dropped = 0
    chunks: set[int] = set()
    for sha in sorted(set(sha256s)):
        if conn.execute(f"SELECT 1 FROM {s}.artifacts WHERE sha256 = %s", (sha,)).fetchone():
            continue
        rows = conn.execute(f"SELECT chunk FROM {s}.content_chunks WHERE sha256 = %s", (sha,))
        chunks.update(int(chunk) for (chunk,) in rows.fetchall())
        conn.execute(f"DELETE FROM {s}.content_chunks WHERE sha256 = %s", (sha,))
        dropped += conn.execute(f"DELETE FROM {s}.contents WHERE sha256 = %s", (sha,)).rowcount
    for chunk in sorted(chunks):
        conn.execute(
            f"DELETE FROM {s}.chunks WHERE id = %s "
            f"AND NOT EXISTS (SELECT 1 FROM {s}.content_chunks WHERE chunk = %s)",
            (chunk, chunk),
        )
    return dropped


def sweep_chunks(conn: psycopg.Connection[Any], schema: str) -> int:
    """Delete every chunk that no content refers to; how many went."""
    s = schema
    return conn.execute(
        f"DELETE FROM {s}.chunks c WHERE NOT EXISTS "
        f"(SELECT 1 FROM {s}.content_chunks m WHERE m.chunk = c.id)"
    ).rowcount


def append(
    conn: psycopg.Connection[Any],
    schema: str,
    codec: EventCodec,
    entries: Sequence[NewEntry],
    contents: Sequence[Content] = (),
) -> AppendResult:
    """Journal each entry that is new and still applies (inside the caller's transaction)."""
    lock(conn, schema)
    for content in contents:
        store_content(conn, schema, content)
    seen = _journaled(conn, schema, entries)
    overlay = Overlay(conn, schema)
    row = conn.execute(f"SELECT coalesce(max(position), 0) FROM {schema}.journal").fetchone()
    position = int(row[0]) if row is not None else 0
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
                encode(entry.event) if entry.body is None else entry.body,
            )
        )
    if rows:
        with conn.cursor().copy(
            f"COPY {schema}.journal (position, source, seq, recorded_at, version, body) "
            "FROM STDIN (FORMAT BINARY)"
        ) as copy:
            copy.set_types(_JOURNAL_TYPES)
            for journal_row in rows:
                copy.write_row(journal_row)
        overlay.write()
        conn.execute("SELECT pg_notify(%s, %s)", (notify_channel(schema), str(position)))
    return AppendResult(len(rows), duplicates, rejected, position)


def append_artifact(
    conn: psycopg.Connection[Any],
    schema: str,
    codec: EventCodec,
    content: Content,
    entry: Callable[[str, int], NewEntry],
) -> AppendResult:
    """Store a streamed ``content`` and its entry (the caller rolls back a rejected one)."""
    lock(conn, schema)
    ids = store_chunks(conn, schema, content)
    assert content.sha256 is not None and content.size_bytes is not None
    store_content(conn, schema, content, ids)
    return append(conn, schema, codec, [entry(content.sha256, content.size_bytes)])


def refold(conn: psycopg.Connection[Any], schema: str, codec: EventCodec, where: str) -> None:
    """Empty every projection table and fold the whole journal again (in a transaction)."""
    lock(conn, schema)
    conn.execute("TRUNCATE " + ", ".join(f"{schema}.{t}" for t in PROJECTION_TABLES))
    overlay = Overlay(conn, schema)
    decode = codec.decode
    # A named (server-side) cursor: the journal streams, it is never held in memory at once.
    with conn.cursor(name="runjournal_refold") as rows:
        rows.itersize = 10_000
        rows.execute(f"SELECT position, version, body FROM {schema}.journal ORDER BY position")
        for position, version, body in rows:
            try:
                changes = evolve(overlay, decode(bytes(body), version))
            except Rejected as exc:
                raise StoreError(
                    f"{where}: journal entry {position} no longer applies: {exc}"
                ) from exc
            overlay.apply(changes, position)
    overlay.write()


def _journaled(
    conn: psycopg.Connection[Any], schema: str, entries: Sequence[NewEntry]
) -> set[tuple[str, int]]:
    """The ``(source, seq)`` of ``entries`` that the journal already holds: one query a source."""
    spans: dict[str, tuple[int, int]] = {}
    for entry in entries:
        low, high = spans.get(entry.source, (entry.seq, entry.seq))
        spans[entry.source] = (min(low, entry.seq), max(high, entry.seq))
    seen: set[tuple[str, int]] = set()
    for source, (low, high) in spans.items():
        rows = conn.execute(
            f"SELECT seq FROM {schema}.journal WHERE source = %s AND seq BETWEEN %s AND %s",
            (source, low, high),
        )
        seen.update((source, int(seq)) for (seq,) in rows.fetchall())
    return seen
