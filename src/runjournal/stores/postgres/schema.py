"""The PostgreSQL schema of a runjournal database, and the checks that a schema is one.

runjournal keeps its tables in a schema of its own (``runjournal`` unless the user
names another) inside the user's database. The tables mirror the SQLite store's
(``runjournal.stores.sqlite.schema``), with PostgreSQL's types: ``bytea`` for the
msgpack bodies, ``double precision`` for times and values, ``bigint`` for steps
and positions. PostgreSQL keeps NaN in a ``double precision`` column, so a rollup's
first and last value are stored as they are.
"""

from __future__ import annotations

import hashlib
import re
from typing import TYPE_CHECKING, Any

import msgspec

from runjournal.errors import NotARunJournalDatabase, StoreReadOnly
from runjournal.stores._rollups import finer_levels_sql, upgrade_rollups
from runjournal.stores.postgres.filters import typed_columns

if TYPE_CHECKING:
    import psycopg

__all__ = [
    "PROJECTION_TABLES",
    "SCHEMA_VERSION",
    "STAGED",
    "STAGING",
    "TABLES",
    "check_schema",
    "check_schema_name",
    "ensure_schema",
    "lock_key",
    "notify_channel",
]

SCHEMA_VERSION = 3
"""1: the first PostgreSQL format (the tables of SQLite's schema version 4). 2: the typed
params index (``params.kind``, ``num`` and ``utf8``, and their indexes; see ``filters``),
and ``runs_by_creation`` for searches across experiments. 3: the rollup levels 4 to 6 and
level 7 (``rollups.FOLDED``), as in SQLite's schema 7 (rows only, no table changed), and
metric chunks of format 3 (Zstandard planes) in the journal.
:func:`ensure_schema` upgrades an older schema in place."""

_NAME = re.compile(r"[a-z_][a-z0-9_]{0,62}")

# A body is msgpack with its metric chunks already compressed: PostgreSQL's own compression of
# a long value (pglz, tried before a value is moved out of line) would only spend the server's
# time, about a quarter of what it spends on a batch of points, for nothing. EXTERNAL stores such
# values out of line as they are. (A schema made by an earlier version keeps the default,
# EXTENDED, until its next upgrade: changing it takes an exclusive lock on the journal.)
_JOURNAL = """
CREATE TABLE IF NOT EXISTS {s}.meta (key text PRIMARY KEY, value text NOT NULL);
CREATE TABLE IF NOT EXISTS {s}.journal (
    position    bigint           PRIMARY KEY,
    source      text             NOT NULL,
    seq         bigint           NOT NULL,
    recorded_at double precision NOT NULL,
    version     integer          NOT NULL,
    body        bytea            NOT NULL,
    UNIQUE (source, seq)
);
ALTER TABLE {s}.journal ALTER COLUMN body SET STORAGE EXTERNAL;
CREATE TABLE IF NOT EXISTS {s}.chunks (
    id     bigserial PRIMARY KEY,
    digest bytea     NOT NULL UNIQUE,
    data   bytea     NOT NULL
);
CREATE TABLE IF NOT EXISTS {s}.contents (
    sha256     text   PRIMARY KEY,
    size_bytes bigint NOT NULL
);
CREATE TABLE IF NOT EXISTS {s}.content_chunks (
    sha256 text    NOT NULL,
    idx    integer NOT NULL,
    chunk  bigint  NOT NULL,
    PRIMARY KEY (sha256, idx)
);
CREATE INDEX IF NOT EXISTS content_chunks_by_chunk ON {s}.content_chunks (chunk);
"""

# The typed params index (filters.py). num is numeric, so that an int of any size and a
# float (bound as its exact decimal expansion) compare exactly; NaN is NULL there. utf8 is
# a str's UTF-8 in bytea: bytes order as code points do, whatever the database's
# collation, and a str may hold NUL, which text may not.
_TYPED_INDEXES = """
CREATE INDEX IF NOT EXISTS params_by_num ON {s}.params (key, num) WHERE num IS NOT NULL;
CREATE INDEX IF NOT EXISTS params_by_utf8 ON {s}.params (key, utf8) WHERE utf8 IS NOT NULL;
"""

# Projections: derived from the journal, emptied and refolded by rebuild().
_PROJECTIONS = """
CREATE TABLE IF NOT EXISTS {s}.experiments (
    id          text             PRIMARY KEY,
    name        text             NOT NULL,
    description text,
    config      bytea,
    tags        bytea            NOT NULL,
    created_at  double precision NOT NULL,
    updated_at  double precision NOT NULL
);
CREATE INDEX IF NOT EXISTS experiments_by_name ON {s}.experiments (name, created_at, id);
CREATE TABLE IF NOT EXISTS {s}.runs (
    id            text             PRIMARY KEY,
    experiment_id text             NOT NULL,
    name          text,
    status        text             NOT NULL,
    created_at    double precision NOT NULL,
    start_time    double precision,
    end_time      double precision,
    tags          bytea            NOT NULL,
    params        bytea            NOT NULL,
    last_activity double precision,
    hidden        boolean          NOT NULL DEFAULT false
);
CREATE INDEX IF NOT EXISTS runs_by_experiment ON {s}.runs (experiment_id, created_at, id);
CREATE INDEX IF NOT EXISTS runs_by_creation ON {s}.runs (created_at, id);
CREATE TABLE IF NOT EXISTS {s}.params (
    key    text     NOT NULL,
    run_id text     NOT NULL,
    value  bytea    NOT NULL,
    kind   smallint NOT NULL,
    num    numeric,
    utf8   bytea,
    PRIMARY KEY (key, run_id)
);
CREATE INDEX IF NOT EXISTS params_by_run ON {s}.params (run_id);
CREATE TABLE IF NOT EXISTS {s}.metrics (
    run_id     text    NOT NULL,
    key        text    NOT NULL,
    position   bigint  NOT NULL,
    points     integer NOT NULL,
    first_step bigint  NOT NULL,
    last_step  bigint  NOT NULL,
    PRIMARY KEY (run_id, key, position)
);
CREATE TABLE IF NOT EXISTS {s}.rollups (
    level       smallint         NOT NULL,
    run_id      text             NOT NULL,
    key         text             NOT NULL,
    bucket      bigint           NOT NULL,
    first_step  bigint           NOT NULL,
    last_step   bigint           NOT NULL,
    min_value   double precision,
    max_value   double precision,
    first_value double precision,
    last_value  double precision,
    count       bigint           NOT NULL,
    nonfinite   bigint           NOT NULL,
    PRIMARY KEY (run_id, key, level, bucket)
);
CREATE TABLE IF NOT EXISTS {s}.artifacts (
    run_id     text             NOT NULL,
    position   bigint           NOT NULL,
    name       text             NOT NULL,
    sha256     text             NOT NULL,
    size_bytes bigint           NOT NULL,
    created_at double precision NOT NULL,
    PRIMARY KEY (run_id, position)
);
CREATE INDEX IF NOT EXISTS artifacts_by_sha256 ON {s}.artifacts (sha256);
CREATE TABLE IF NOT EXISTS {s}.span_ids (run_id text PRIMARY KEY, span_id text NOT NULL);
CREATE TABLE IF NOT EXISTS {s}.tombstones (id text PRIMARY KEY, kind text NOT NULL);
"""

STAGED = "pg_temp.rollups_incoming"
"""The staging table that :data:`STAGING` makes, always named in ``pg_temp``: no table of that
name elsewhere on the search path is ever written."""

STAGING = f"CREATE TEMP TABLE IF NOT EXISTS {STAGED} (LIKE {{s}}.rollups)"
"""The write connection's own table, made when it connects: a batch's rollup rows are copied
into it (``COPY``, a few microseconds a row) and merged into ``rollups`` by one statement,
instead of an upsert a row (about 50 microseconds of the driver's work each). Temporary, so
no other session sees it; the batch empties it again before it commits. Always named with
``pg_temp.``, so that no table of that name elsewhere on the search path is ever written."""

PROJECTION_TABLES = (
    "experiments",
    "runs",
    "params",
    "metrics",
    "rollups",
    "artifacts",
    "span_ids",
    "tombstones",
)
TABLES = ("meta", "journal", "chunks", "contents", "content_chunks", *PROJECTION_TABLES)
"""Every table of the schema (for sizes, and for telling our schema from a foreign one)."""


def check_schema_name(name: str) -> str:
    """``name`` if it is a plain lower-case identifier (it is spliced into SQL); else ValueError."""
    if not isinstance(name, str) or not _NAME.fullmatch(name):
        raise ValueError(
            f"schema must be a lower-case identifier (letters, digits, _; at most 63), got {name!r}"
        )
    return name


def lock_key(schema: str) -> int:
    """The ``pg_advisory_xact_lock`` key that serialises the writers of one schema."""
    digest = hashlib.sha256(f"runjournal:{schema}".encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


def notify_channel(schema: str) -> str:
    """The ``LISTEN``/``NOTIFY`` channel on which appends to ``schema`` are announced."""
    return f"runjournal_{schema}"


def _statements(script: str, schema: str) -> list[str]:
    text = script.format(s=schema)
    return [part.strip() for part in text.split(";") if part.strip()]


def _tables(conn: psycopg.Connection[Any], schema: str) -> set[str]:
    rows = conn.execute(
        "SELECT table_name FROM information_schema.tables WHERE table_schema = %s", (schema,)
    ).fetchall()
    return {str(r[0]) for r in rows}


def _recorded_version(conn: psycopg.Connection[Any], schema: str, where: str) -> int | None:
    """The schema version of a runjournal schema; None if the schema is absent or empty."""
    tables = _tables(conn, schema)
    if not tables:
        return None
    if "meta" not in tables:
        raise NotARunJournalDatabase(
            f"{where}: schema {schema!r} holds tables but not runjournal's "
            f"({', '.join(sorted(tables)[:10])})"
        )
    rows = conn.execute(f"SELECT key, value FROM {schema}.meta").fetchall()
    meta = {str(k): str(v) for k, v in rows}
    if meta.get("format") != "runjournal" or "schema_version" not in meta:
        raise NotARunJournalDatabase(
            f"{where}: schema {schema!r} has a meta table, but it is not a runjournal one"
        )
    version = int(meta["schema_version"])
    if version > SCHEMA_VERSION:
        raise NotARunJournalDatabase(
            f"{where}: schema {schema!r} has runjournal schema version {version}, "
            f"newer than this runjournal understands ({SCHEMA_VERSION})"
        )
    return version


def check_schema(conn: psycopg.Connection[Any], schema: str, where: str) -> int:
    """The version of an existing runjournal schema; :class:`NotARunJournalDatabase` otherwise.

    Reads only, for a read-only open: a missing schema is refused, never created.
    """
    version = _recorded_version(conn, schema, where)
    if version is None:
        raise NotARunJournalDatabase(f"{where}: no runjournal schema {schema!r} in this database")
    if version < SCHEMA_VERSION:
        # The queries read the current schema; a read-only open must not upgrade it.
        raise StoreReadOnly(
            f"{where}: schema {schema!r} was written by an older runjournal (schema "
            f"version {version}); open it once with write access to upgrade it"
        )
    return version


def ensure_schema(conn: psycopg.Connection[Any], schema: str, where: str) -> int:
    """Create the schema if it is missing, or check that an existing one is ours.

    Safe when several processes open the same database at once: the creation (or
    the upgrade of an older schema) runs under the schema's advisory lock, and each
    process looks again once it holds it. ``conn`` is in autocommit mode; this runs
    its own transaction.
    """
    version = _recorded_version(conn, schema, where)
    if version == SCHEMA_VERSION:
        return version
    with conn.transaction():
        conn.execute("SELECT pg_advisory_xact_lock(%s)", (lock_key(schema),))
        version = _recorded_version(conn, schema, where)
        if version == SCHEMA_VERSION:
            return version
        if version is not None:
            _upgrade(conn, schema, version)
            return SCHEMA_VERSION
        conn.execute(f"CREATE SCHEMA IF NOT EXISTS {schema}")
        for statement in _statements(_JOURNAL + _PROJECTIONS + _TYPED_INDEXES, schema):
            conn.execute(statement)
        conn.execute(
            f"INSERT INTO {schema}.meta VALUES ('format', 'runjournal'), "
            "('engine', 'postgresql'), ('schema_version', %s)",
            (str(SCHEMA_VERSION),),
        )
    return SCHEMA_VERSION


def _upgrade(conn: psycopg.Connection[Any], schema: str, version: int) -> None:
    """Bring a schema of an older version to :data:`SCHEMA_VERSION`, in the caller's transaction.

    Version 2: every ``params`` row gets its kind and typed copy, each stored value
    decoded once; then the typed indexes and ``runs_by_creation``. Version 3: the finer
    rollup levels, merged from each series' level 1, and each series' FOLDED bucket.
    """
    s = schema
    if version < 2:
        conn.execute(
            f"ALTER TABLE {s}.params ADD COLUMN IF NOT EXISTS kind smallint, "
            "ADD COLUMN IF NOT EXISTS num numeric, ADD COLUMN IF NOT EXISTS utf8 bytea"
        )
        decode = msgspec.msgpack.Decoder().decode
        with conn.cursor(name="rj_upgrade_params") as rows:
            rows.execute(f"SELECT key, run_id, value FROM {s}.params")
            while chunk := rows.fetchmany(10_000):
                conn.cursor().executemany(
                    f"UPDATE {s}.params SET kind = %s, num = %s, utf8 = %s "
                    "WHERE key = %s AND run_id = %s",
                    [(*typed_columns(decode(v)), key, run_id) for key, run_id, v in chunk],
                )
        conn.execute(f"ALTER TABLE {s}.params ALTER COLUMN kind SET NOT NULL")
        statements = _statements(_TYPED_INDEXES, s)
        statements.append(
            f"CREATE INDEX IF NOT EXISTS runs_by_creation ON {s}.runs (created_at, id)"
        )
        for statement in statements:
            conn.execute(statement)
    if version < 3:
        _finer_rollups(conn, s)
    conn.execute(f"ALTER TABLE {s}.journal ALTER COLUMN body SET STORAGE EXTERNAL")
    conn.execute(
        f"UPDATE {s}.meta SET value = %s WHERE key = 'schema_version'", (str(SCHEMA_VERSION),)
    )


def _finer_rollups(conn: psycopg.Connection[Any], s: str) -> None:
    """Version 3: the finer rollup levels and the FOLDED bucket of every series."""
    upgrade_rollups(conn, finer_levels_sql(f"{s}.rollups", "%s"), conn.cursor().executemany)
