"""The SQLite schema of a runjournal database, and the checks that a file is one."""

from __future__ import annotations

import os
import sqlite3

from runjournal.errors import NotARunJournalDatabase

__all__ = [
    "APPLICATION_ID",
    "CONTENT_TABLES",
    "PROJECTIONS",
    "PROJECTION_TABLES",
    "SCHEMA_VERSION",
    "SQLITE_MAGIC",
    "TABLES_SINCE",
    "TYPED_PARAMS",
    "TYPED_PARAMS_SINCE",
    "check_schema",
    "ensure_schema",
    "is_sqlite_file",
    "refuse_foreign",
    "schema_version",
    "statements",
]

SQLITE_MAGIC = b"SQLite format 3\x00"
"""The first 16 bytes of every SQLite database file."""

APPLICATION_ID = 0x524A524E  # "RJRN" in the SQLite header, so tools can tell the file apart
SCHEMA_VERSION = 7
"""1: the first format. 2: ``runs.last_activity``, ``experiments_by_name``, the ``rollups``
table and the step span of each ``metrics`` row (all projections). 3: artifact content in
chunks (``chunks``, ``contents``, ``content_chunks``) instead of one ``blobs`` row each (see
``migrations``). 4: ``runs.hidden`` (a projection: 1 while the run is hidden). 5: the typed
params index (``params.kind``, ``num`` and ``text``, and their indexes; see ``filters``), and
``runs_by_creation`` for searches across experiments. 6: the journal may hold
``metrics.chunk`` entries (metric points as columns, :mod:`runjournal.chunks`) and the events
``tag.deleted``, ``run.renamed`` and ``experiment.updated``; the tables are those of 5, but a
runjournal of schema 5 cannot read those entries, so it must refuse the file (it asks to
upgrade runjournal) rather than misread it. 7: the rollup levels 4 to 6, between the first
format's 1 and 2, and level 7 (``rollups.FOLDED``), each series' whole once more, written only
by a runjournal that keeps them (rows of the ``rollups`` table; no table changed); and the
journal may hold metric chunks of format 3 (Zstandard planes), which a runjournal of schema 6
cannot decode."""
TYPED_PARAMS_SINCE = 5
"""The version that added the typed params index; a read-only open of the one before adds
it as a temporary view (``filters.typed_params_view``)."""
TABLES_SINCE = 5
"""The oldest version whose tables are those of :data:`SCHEMA_VERSION`: a read-only open reads
a file of that version or newer as it is."""

_JOURNAL = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS journal (
    position    INTEGER PRIMARY KEY,
    source      TEXT    NOT NULL,
    seq         INTEGER NOT NULL,
    recorded_at REAL    NOT NULL,
    version     INTEGER NOT NULL,
    body        BLOB    NOT NULL
);
CREATE UNIQUE INDEX IF NOT EXISTS journal_identity ON journal (source, seq);
CREATE TABLE IF NOT EXISTS chunks (
    id     INTEGER PRIMARY KEY,
    digest BLOB    NOT NULL UNIQUE,
    data   BLOB    NOT NULL
);
CREATE TABLE IF NOT EXISTS contents (
    sha256     TEXT    PRIMARY KEY,
    size_bytes INTEGER NOT NULL
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS content_chunks (
    sha256 TEXT    NOT NULL,
    idx    INTEGER NOT NULL,
    chunk  INTEGER NOT NULL,
    PRIMARY KEY (sha256, idx)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS content_chunks_by_chunk ON content_chunks (chunk);
"""

CONTENT_TABLES = _JOURNAL.split("CREATE TABLE IF NOT EXISTS chunks", 1)[1]
CONTENT_TABLES = "CREATE TABLE IF NOT EXISTS chunks" + CONTENT_TABLES
"""The artifact content tables: chunks (content-addressed, a rowid table: its rows are
large) and each content's manifest (its size, and its chunks in order)."""

# Projections: derived from the journal, dropped and refolded by rebuild().
# rollups (runjournal.rollups): per series, level 0 is the whole series (bucket 0), level
# l >= 1 cuts the steps into buckets of 2**rollups.SHIFTS[l] steps. SQLite stores NaN as NULL: a NULL first_value
# or last_value reads back as NaN, a NULL min_value or max_value means no finite value.
PROJECTIONS = """
CREATE TABLE IF NOT EXISTS experiments (
    id          TEXT PRIMARY KEY,
    name        TEXT NOT NULL,
    description TEXT,
    config      BLOB,
    tags        BLOB NOT NULL,
    created_at  REAL NOT NULL,
    updated_at  REAL NOT NULL
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS experiments_by_name ON experiments (name, created_at, id);
CREATE TABLE IF NOT EXISTS runs (
    id            TEXT PRIMARY KEY,
    experiment_id TEXT NOT NULL,
    name          TEXT,
    status        TEXT NOT NULL,
    created_at    REAL NOT NULL,
    start_time    REAL,
    end_time      REAL,
    tags          BLOB NOT NULL,
    params        BLOB NOT NULL,
    last_activity REAL,
    hidden        INTEGER NOT NULL DEFAULT 0
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS runs_by_experiment ON runs (experiment_id, created_at, id);
CREATE INDEX IF NOT EXISTS runs_by_creation ON runs (created_at, id, hidden);
CREATE TABLE IF NOT EXISTS params (
    key    TEXT    NOT NULL,
    run_id TEXT    NOT NULL,
    value  BLOB    NOT NULL,
    kind   INTEGER NOT NULL,
    num,
    text   TEXT,
    PRIMARY KEY (key, run_id)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS params_by_run ON params (run_id);
-- The typed params index (filters.py). num has no declared type, so that an int stays an
-- exact INTEGER (REAL affinity would round one beyond 2**53), and NaN is NULL there.
CREATE INDEX IF NOT EXISTS params_by_num ON params (key, num) WHERE num IS NOT NULL;
CREATE INDEX IF NOT EXISTS params_by_text ON params (key, text) WHERE text IS NOT NULL;
CREATE TABLE IF NOT EXISTS metrics (
    run_id     TEXT    NOT NULL,
    key        TEXT    NOT NULL,
    position   INTEGER NOT NULL,
    points     INTEGER NOT NULL,
    first_step INTEGER NOT NULL,
    last_step  INTEGER NOT NULL,
    PRIMARY KEY (run_id, key, position)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS rollups (
    level       INTEGER NOT NULL,
    run_id      TEXT    NOT NULL,
    key         TEXT    NOT NULL,
    bucket      INTEGER NOT NULL,
    first_step  INTEGER NOT NULL,
    last_step   INTEGER NOT NULL,
    min_value   REAL,
    max_value   REAL,
    first_value REAL,
    last_value  REAL,
    count       INTEGER NOT NULL,
    nonfinite   INTEGER NOT NULL,
    PRIMARY KEY (level, run_id, key, bucket)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS artifacts (
    run_id     TEXT    NOT NULL,
    position   INTEGER NOT NULL,
    name       TEXT    NOT NULL,
    sha256     TEXT    NOT NULL,
    size_bytes INTEGER NOT NULL,
    created_at REAL    NOT NULL,
    PRIMARY KEY (run_id, position)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS span_ids (run_id TEXT PRIMARY KEY, span_id TEXT NOT NULL) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS tombstones (id TEXT PRIMARY KEY, kind TEXT NOT NULL) WITHOUT ROWID;
"""

TYPED_PARAMS = PROJECTIONS.split("CREATE TABLE IF NOT EXISTS params", 1)[1]
TYPED_PARAMS = "CREATE TABLE IF NOT EXISTS params" + TYPED_PARAMS.split("CREATE TABLE", 1)[0]
"""The params table of schema 4 and its indexes (for ``migrations``)."""

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


def is_sqlite_file(path: str | os.PathLike[str]) -> bool:
    """True if ``path`` is a file that starts with the SQLite header (any SQLite database).

    Blocking: it reads the first 16 bytes. ``OSError`` if the file cannot be read.
    """
    with open(path, "rb") as file:
        return file.read(len(SQLITE_MAGIC)) == SQLITE_MAGIC


def statements(script: str) -> list[str]:
    """Split a schema script into statements (``executescript`` would commit first)."""
    return [part.strip() for part in script.split(";") if part.strip()]


def _identity(conn: sqlite3.Connection) -> tuple[int, list[str]]:
    """The file's application id and its tables, read in one read transaction.

    Two separate reads could straddle another process's schema creation (one
    transaction) and see its tables without its application id.
    """
    own = not conn.in_transaction
    if own:
        conn.execute("BEGIN")
    try:
        app_id: int = conn.execute("PRAGMA application_id").fetchone()[0]
        tables = [r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")]
    except BaseException:
        if own and conn.in_transaction:
            conn.execute("ROLLBACK")
        raise
    if own:
        conn.execute("COMMIT")
    return app_id, tables


def refuse_foreign(conn: sqlite3.Connection, where: str) -> None:
    """Raise :class:`NotARunJournalDatabase` unless the file is ours or an empty database.

    Reads only: it runs before anything (even the switch to WAL) touches the file.
    """
    try:
        app_id, tables = _identity(conn)
        if app_id == APPLICATION_ID:
            return
    except sqlite3.DatabaseError as exc:
        if exc.sqlite_errorname in ("SQLITE_NOTADB", "SQLITE_CORRUPT"):
            raise NotARunJournalDatabase(f"{where} is not a runjournal database ({exc})") from exc
        raise
    if app_id != 0 or tables:
        raise NotARunJournalDatabase(
            f"{where} is an SQLite database but not a runjournal one "
            f"(application_id={app_id}, tables: {', '.join(sorted(tables)) or 'none'})"
        )


def check_schema(conn: sqlite3.Connection, where: str) -> int:
    """Raise :class:`NotARunJournalDatabase` unless the file holds a runjournal schema we read.

    Reads only, for a read-only open: an empty database is refused, never initialised.
    Returns the file's schema version.
    """
    try:
        app_id = conn.execute("PRAGMA application_id").fetchone()[0]
        if app_id != APPLICATION_ID:
            refuse_foreign(conn, where)  # names what the file is, if it is something else
            raise NotARunJournalDatabase(
                f"{where} is an empty SQLite database, not a runjournal one"
            )
        version = conn.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
    except sqlite3.DatabaseError as exc:
        if exc.sqlite_errorname in ("SQLITE_NOTADB", "SQLITE_CORRUPT"):
            raise NotARunJournalDatabase(f"{where} is not a runjournal database ({exc})") from exc
        raise
    if version is None or int(version[0]) > SCHEMA_VERSION:
        raise NotARunJournalDatabase(
            f"{where} has runjournal schema version {version and version[0]}, "
            f"newer than this runjournal understands ({SCHEMA_VERSION})"
        )
    return int(version[0])


def ensure_schema(conn: sqlite3.Connection, where: str) -> int:
    """Create the schema in an empty database, or check that an existing one is ours.

    Returns the file's schema version (an older one is for ``migrations.upgrade``).
    Raises :class:`NotARunJournalDatabase` for any other file.
    """
    try:
        app_id, tables = _identity(conn)
    except sqlite3.DatabaseError as exc:
        if exc.sqlite_errorname in ("SQLITE_NOTADB", "SQLITE_CORRUPT"):
            raise NotARunJournalDatabase(f"{where} is not a runjournal database ({exc})") from exc
        raise
    if app_id == APPLICATION_ID:
        version = conn.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
        if version is None or int(version[0]) > SCHEMA_VERSION:
            raise NotARunJournalDatabase(
                f"{where} has runjournal schema version {version and version[0]}, "
                f"newer than this runjournal understands ({SCHEMA_VERSION})"
            )
        return int(version[0])
    if app_id != 0 or tables:
        raise NotARunJournalDatabase(
            f"{where} is an SQLite database but not a runjournal one "
            f"(application_id={app_id}, tables: {', '.join(sorted(tables)) or 'none'})"
        )
    conn.execute("BEGIN IMMEDIATE")
    try:
        # Another process may have created the schema since we looked.
        if conn.execute("PRAGMA application_id").fetchone()[0] != APPLICATION_ID:
            for statement in statements(_JOURNAL + PROJECTIONS):
                conn.execute(statement)
            conn.execute(
                "INSERT OR REPLACE INTO meta VALUES ('format', 'runjournal'), "
                "('schema_version', ?)",
                (str(SCHEMA_VERSION),),
            )
            conn.execute(f"PRAGMA application_id = {APPLICATION_ID}")
        conn.execute("COMMIT")
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise
    return schema_version(conn)


def schema_version(conn: sqlite3.Connection) -> int:
    """The schema version recorded in a runjournal database."""
    return int(conn.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()[0])
