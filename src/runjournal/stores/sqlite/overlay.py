"""The projection state of one SQLite write transaction: ``stores._overlay`` and SQLite's SQL.

The fold reads the state through the overlay and changes it in memory
(:class:`runjournal.stores._overlay.FoldState`); :meth:`Overlay.write` puts each changed row
back with one statement per table.
"""

from __future__ import annotations

import sqlite3

from runjournal.rollups import LEVELS
from runjournal.stores._overlay import FoldState, experiment_values, run_values
from runjournal.stores.sqlite.filters import param_columns

__all__ = ["Overlay"]


class Overlay(FoldState):
    """The state one SQLite transaction folds events into (a ``projection.View``).

    ``empty=True`` says the projection tables are empty (a rebuild just made them):
    the overlay then holds the whole state and never looks a row up.
    """

    def __init__(self, conn: sqlite3.Connection, *, empty: bool = False) -> None:
        super().__init__(conn, "", "?", empty=empty)
        self._conn: sqlite3.Connection = conn

    # -- writing back -----------------------------------------------------------------------
    def write(self) -> None:
        """Write every changed row, then apply the deletions (which win over anything above)."""
        conn = self._conn
        if self._dirty_experiments:
            conn.executemany(
                "INSERT OR REPLACE INTO experiments VALUES (?, ?, ?, ?, ?, ?, ?)",
                map(experiment_values, self._dirty_experiments.values()),
            )
        if self._dirty_runs:
            conn.executemany(
                "INSERT INTO runs (id, experiment_id, name, status, created_at, start_time, "
                "end_time, tags, params, last_activity, hidden) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) "
                "ON CONFLICT (id) DO UPDATE SET status = excluded.status, "
                "start_time = excluded.start_time, end_time = excluded.end_time, "
                "tags = excluded.tags, name = excluded.name, "
                "last_activity = excluded.last_activity, hidden = excluded.hidden",
                map(run_values, self._dirty_runs.values()),
            )
        if self._dirty_params:
            blobs, rows = self._params_rows(param_columns)
            conn.executemany("UPDATE runs SET params = ? WHERE id = ?", blobs)
            conn.executemany(
                "INSERT OR REPLACE INTO params (key, run_id, value, kind, num, text) "
                "VALUES (?, ?, ?, ?, ?, ?)",
                rows,
            )
        if self._span_ids:
            conn.executemany(
                "INSERT OR REPLACE INTO span_ids (run_id, span_id) VALUES (?, ?)",
                list(self._span_ids.items()),
            )
        if self._metric_rows:
            conn.executemany(
                "INSERT INTO metrics (run_id, key, position, points, first_step, last_step) "
                "VALUES (?, ?, ?, ?, ?, ?)",
                self._metric_rows,
            )
        if self._rollups:
            conn.executemany(_UPSERT_ROLLUP, [(*cell, *agg) for cell, agg in self._rollups.items()])
        if self._artifact_rows:
            conn.executemany("INSERT INTO artifacts VALUES (?, ?, ?, ?, ?, ?)", self._artifact_rows)
        for exp_id in self._deleted_experiments:
            run_ids = conn.execute("SELECT id FROM runs WHERE experiment_id = ?", (exp_id,))
            for (run_id,) in run_ids.fetchall():
                _delete_run(conn, run_id)
            conn.execute("DELETE FROM experiments WHERE id = ?", (exp_id,))
            conn.execute("INSERT OR IGNORE INTO tombstones VALUES (?, 'experiment')", (exp_id,))
        for run_id in self._deleted_runs:
            _delete_run(conn, run_id)
        if self._marked:
            conn.executemany("INSERT OR IGNORE INTO tombstones VALUES (?, ?)", self._marked)


# An existing bucket is the earlier-logged side: the same rule as rollups.merge, in SQL
# (in SET, a column names the old row's value).
_UPSERT_ROLLUP = """
INSERT INTO rollups (level, run_id, key, bucket, first_step, last_step, min_value, max_value,
                     first_value, last_value, count, nonfinite)
VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
ON CONFLICT (level, run_id, key, bucket) DO UPDATE SET
    first_value = CASE WHEN excluded.first_step < first_step
                       THEN excluded.first_value ELSE first_value END,
    first_step = min(first_step, excluded.first_step),
    last_value = CASE WHEN excluded.last_step >= last_step
                      THEN excluded.last_value ELSE last_value END,
    last_step = max(last_step, excluded.last_step),
    min_value = CASE WHEN min_value IS NULL OR excluded.min_value < min_value
                     THEN excluded.min_value ELSE min_value END,
    max_value = CASE WHEN max_value IS NULL OR excluded.max_value > max_value
                     THEN excluded.max_value ELSE max_value END,
    count = count + excluded.count,
    nonfinite = nonfinite + excluded.nonfinite
"""

_ALL_LEVELS = ", ".join(map(str, LEVELS))


def _delete_run(conn: sqlite3.Connection, run_id: str) -> None:
    for table, column in _RUN_TABLES:
        conn.execute(f"DELETE FROM {table} WHERE {column} = ?", (run_id,))
    # The level leads the key: name every level, so that SQLite seeks instead of scanning.
    conn.execute(f"DELETE FROM rollups WHERE level IN ({_ALL_LEVELS}) AND run_id = ?", (run_id,))
    conn.execute("INSERT OR IGNORE INTO tombstones VALUES (?, 'run')", (run_id,))


_RUN_TABLES = (
    ("runs", "id"),
    ("params", "run_id"),
    ("metrics", "run_id"),
    ("artifacts", "run_id"),
    ("span_ids", "run_id"),
)
