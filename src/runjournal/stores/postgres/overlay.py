"""The projection state of one PostgreSQL write transaction: ``stores._overlay`` and its SQL.

The fold reads the state through the overlay and changes it in memory
(:class:`runjournal.stores._overlay.FoldState`, shared with the SQLite store);
:meth:`Overlay.write` puts the changed rows back with one ``executemany`` per table (psycopg
pipelines those, so a batch costs a few round trips to the server, not one per row).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from runjournal.stores._overlay import FoldState, experiment_values, run_values
from runjournal.stores.postgres.filters import typed_columns
from runjournal.stores.postgres.schema import STAGED

if TYPE_CHECKING:
    import psycopg

__all__ = ["Overlay"]


class Overlay(FoldState):
    """The state one PostgreSQL transaction folds events into (a ``projection.View``)."""

    def __init__(self, conn: psycopg.Connection[Any], schema: str) -> None:
        super().__init__(conn, f"{schema}.", "%s")
        self._s = schema

    # -- writing back -----------------------------------------------------------------------
    def write(self) -> None:
        """Write every changed row, then apply the deletions (which win over anything above)."""
        conn, s = self._conn, self._s
        cur = conn.cursor()
        if self._dirty_experiments:
            cur.executemany(
                f"INSERT INTO {s}.experiments VALUES (%s, %s, %s, %s, %s, %s, %s) "
                "ON CONFLICT (id) DO UPDATE SET name = excluded.name, "
                "description = excluded.description, config = excluded.config, "
                "tags = excluded.tags, created_at = excluded.created_at, "
                "updated_at = excluded.updated_at",
                map(experiment_values, self._dirty_experiments.values()),
            )
        if self._dirty_runs:
            cur.executemany(
                f"INSERT INTO {s}.runs (id, experiment_id, name, status, created_at, start_time, "
                "end_time, tags, params, last_activity, hidden) "
                "VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s) "
                "ON CONFLICT (id) DO UPDATE SET status = excluded.status, "
                "start_time = excluded.start_time, end_time = excluded.end_time, "
                "tags = excluded.tags, name = excluded.name, "
                "last_activity = excluded.last_activity, hidden = excluded.hidden",
                map(run_values, self._dirty_runs.values()),
            )
        if self._dirty_params:
            blobs, rows = self._params_rows(typed_columns)
            cur.executemany(f"UPDATE {s}.runs SET params = %s WHERE id = %s", blobs)
            cur.executemany(
                f"INSERT INTO {s}.params (key, run_id, value, kind, num, utf8) "
                "VALUES (%s, %s, %s, %s, %s, %s) "
                "ON CONFLICT (key, run_id) DO UPDATE SET value = excluded.value, "
                "kind = excluded.kind, num = excluded.num, utf8 = excluded.utf8",
                rows,
            )
        if self._span_ids:
            cur.executemany(
                f"INSERT INTO {s}.span_ids (run_id, span_id) VALUES (%s, %s) "
                "ON CONFLICT (run_id) DO UPDATE SET span_id = excluded.span_id",
                list(self._span_ids.items()),
            )
        if self._metric_rows:
            cur.executemany(
                f"INSERT INTO {s}.metrics (run_id, key, position, points, first_step, last_step) "
                "VALUES (%s, %s, %s, %s, %s, %s)",
                self._metric_rows,
            )
        if self._rollups:
            rows = [(*cell, *agg) for cell, agg in self._rollups.items()]
            # The connection has its staging table unless its role may not create one.
            if len(rows) < _STAGE_FROM or cur.execute(_HAS_STAGING).fetchone() == (None,):
                cur.executemany(_UPSERT_ROLLUP.format(s=s), rows)
            else:
                with cur.copy(_COPY_STAGED) as copy:
                    copy.set_types(_STAGED_TYPES)
                    for row in rows:
                        copy.write_row(row)
                cur.execute(_MERGE_STAGED.format(s=s))
                cur.execute(f"DELETE FROM {STAGED}")
        if self._artifact_rows:
            cur.executemany(
                f"INSERT INTO {s}.artifacts VALUES (%s, %s, %s, %s, %s, %s)", self._artifact_rows
            )
        for exp_id in self._deleted_experiments:
            run_ids = cur.execute(f"SELECT id FROM {s}.runs WHERE experiment_id = %s", (exp_id,))
            for (run_id,) in run_ids.fetchall():
                _delete_run(conn, s, run_id)
            cur.execute(f"DELETE FROM {s}.experiments WHERE id = %s", (exp_id,))
            cur.execute(
                f"INSERT INTO {s}.tombstones VALUES (%s, 'experiment') ON CONFLICT DO NOTHING",
                (exp_id,),
            )
        for run_id in self._deleted_runs:
            _delete_run(conn, s, run_id)
        if self._marked:
            cur.executemany(
                f"INSERT INTO {s}.tombstones VALUES (%s, %s) ON CONFLICT DO NOTHING", self._marked
            )


_STAGE_FROM = 64
"""From this many rollup rows a batch copies them into ``rollups_incoming`` (``schema.STAGING``)
and merges them with one statement; fewer go as pipelined upserts, which take no extra
round trips."""

_HAS_STAGING = f"SELECT to_regclass('{STAGED}')"
_COPY_STAGED = f"COPY {STAGED} FROM STDIN (FORMAT BINARY)"
_STAGED_TYPES = ("int2", "text", "text", "int8", "int8", "int8") + ("float8",) * 4 + ("int8",) * 2

# An existing bucket is the earlier-logged side: the same rule as rollups.merge, in SQL.
# The rows come either as parameters or from the staging table (one row per bucket there,
# since they are the keys of a dict: ON CONFLICT never meets a bucket twice in one statement).
_ROLLUP_CONFLICT = """
ON CONFLICT (run_id, key, level, bucket) DO UPDATE SET
    first_value = CASE WHEN excluded.first_step < r.first_step
                       THEN excluded.first_value ELSE r.first_value END,
    first_step = least(r.first_step, excluded.first_step),
    last_value = CASE WHEN excluded.last_step >= r.last_step
                      THEN excluded.last_value ELSE r.last_value END,
    last_step = greatest(r.last_step, excluded.last_step),
    min_value = CASE WHEN r.min_value IS NULL OR excluded.min_value < r.min_value
                     THEN excluded.min_value ELSE r.min_value END,
    max_value = CASE WHEN r.max_value IS NULL OR excluded.max_value > r.max_value
                     THEN excluded.max_value ELSE r.max_value END,
    count = r.count + excluded.count,
    nonfinite = r.nonfinite + excluded.nonfinite
"""

_INTO_ROLLUPS = """
INSERT INTO {s}.rollups AS r (level, run_id, key, bucket, first_step, last_step, min_value,
                              max_value, first_value, last_value, count, nonfinite)
"""

_UPSERT_ROLLUP = (
    _INTO_ROLLUPS + "VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)" + _ROLLUP_CONFLICT
)

_MERGE_STAGED = _INTO_ROLLUPS + f"SELECT * FROM {STAGED}" + _ROLLUP_CONFLICT


def _delete_run(conn: psycopg.Connection[Any], s: str, run_id: str) -> None:
    for table, column in _RUN_TABLES:
        conn.execute(f"DELETE FROM {s}.{table} WHERE {column} = %s", (run_id,))
    conn.execute(f"INSERT INTO {s}.tombstones VALUES (%s, 'run') ON CONFLICT DO NOTHING", (run_id,))


_RUN_TABLES = (
    ("runs", "id"),
    ("params", "run_id"),
    ("metrics", "run_id"),
    ("rollups", "run_id"),
    ("artifacts", "run_id"),
    ("span_ids", "run_id"),
)
