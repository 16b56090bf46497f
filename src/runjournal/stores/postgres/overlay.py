"""The projection state of one PostgreSQL write transaction, held in memory and written once.

The same design as the SQLite store's overlay (``runjournal.stores.sqlite.overlay``):
the fold (``projection.evolve``) reads rows through it, loading each from its
table the first time, and every change lands in memory; :meth:`Overlay.write`
puts the changed rows back with one ``executemany`` per table (psycopg pipelines
those, so a batch costs a few round trips to the server, not one per row).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any

import msgspec

from runjournal.model import Experiment, MetricArrays, RunStatus
from runjournal.projection import (
    AddArtifact,
    AddMetrics,
    Change,
    DeleteExperiment,
    DeleteRun,
    MarkDeleted,
    PutExperiment,
    PutRun,
    RunRow,
    SetParams,
    SetSpanId,
)
from runjournal.rollups import Aggregate, merge, rollup
from runjournal.stores.postgres.filters import typed_columns

if TYPE_CHECKING:
    import psycopg

__all__ = [
    "EXPERIMENT_COLUMNS",
    "RUN_COLUMNS",
    "Overlay",
    "decode_params",
    "experiment_row",
    "run_row",
]

RUN_COLUMNS = (
    "id, experiment_id, name, status, created_at, start_time, end_time, tags, last_activity, hidden"
)
EXPERIMENT_COLUMNS = "id, name, description, config, tags, created_at, updated_at"

_encode = msgspec.msgpack.Encoder().encode
decode_params = msgspec.msgpack.Decoder(dict[str, Any]).decode
_decode_tags = msgspec.msgpack.Decoder(dict[str, str]).decode
_STATUS = {status.value: status for status in RunStatus}
_EMPTY_PARAMS = _encode({})


def experiment_row(row: Sequence[Any]) -> Experiment:
    """An ``experiments`` row selected as ``EXPERIMENT_COLUMNS``."""
    return Experiment(
        id=row[0],
        name=row[1],
        description=row[2],
        config=None if row[3] is None else decode_params(row[3]),
        tags=_decode_tags(row[4]),
        created_at=row[5],
        updated_at=row[6],
    )


def run_row(row: Sequence[Any]) -> RunRow:
    """A ``runs`` row selected as ``RUN_COLUMNS``."""
    return RunRow(
        id=row[0],
        experiment_id=row[1],
        name=row[2],
        status=_STATUS[row[3]],
        created_at=row[4],
        start_time=row[5],
        end_time=row[6],
        tags=_decode_tags(row[7]),
        last_activity=row[8],
        hidden=bool(row[9]),
    )


class Overlay:
    """The state one transaction folds events into (a ``projection.View``)."""

    def __init__(self, conn: psycopg.Connection[Any], schema: str) -> None:
        self._conn = conn
        self._s = schema
        self._experiments: dict[str, Experiment | None] = {}  # None: known to be absent
        self._runs: dict[str, RunRow | None] = {}
        self._params: dict[str, dict[str, Any]] = {}
        self._tombstones: dict[str, bool] = {}
        self._dirty_experiments: dict[str, Experiment] = {}
        self._dirty_runs: dict[str, RunRow] = {}
        self._dirty_params: dict[str, dict[str, Any]] = {}
        self._span_ids: dict[str, str] = {}
        self._metric_rows: list[tuple[str, str, int, int, int, int]] = []
        self._rollups: dict[tuple[int, str, str, int], Aggregate] = {}
        self._artifact_rows: list[tuple[str, int, str, str, int, float]] = []
        self._deleted_runs: list[str] = []
        self._deleted_experiments: list[str] = []
        self._marked: list[tuple[str, str]] = []

    def _one(self, sql: str, args: Sequence[Any]) -> Any:
        return self._conn.execute(sql, args).fetchone()

    # -- the View the fold reads ----------------------------------------------------------
    def experiment(self, experiment_id: str) -> Experiment | None:
        if experiment_id not in self._experiments:
            row = self._one(
                f"SELECT {EXPERIMENT_COLUMNS} FROM {self._s}.experiments WHERE id = %s",
                (experiment_id,),
            )
            self._experiments[experiment_id] = None if row is None else experiment_row(row)
        return self._experiments[experiment_id]

    def run(self, run_id: str) -> RunRow | None:
        if run_id not in self._runs:
            row = self._one(f"SELECT {RUN_COLUMNS} FROM {self._s}.runs WHERE id = %s", (run_id,))
            loaded = None if row is None else run_row(row)
            if loaded is not None and self.is_deleted(loaded.experiment_id):
                loaded = None  # its experiment was deleted earlier in this transaction
            self._runs[run_id] = loaded
        return self._runs[run_id]

    def is_deleted(self, entity_id: str) -> bool:
        known = self._tombstones.get(entity_id)
        if known is None:
            s = self._s
            known = self._one(f"SELECT 1 FROM {s}.tombstones WHERE id = %s", (entity_id,))
            known = known is not None
            if not known and self._deleted_experiments:
                row = self._one(f"SELECT experiment_id FROM {s}.runs WHERE id = %s", (entity_id,))
                known = row is not None and row[0] in self._deleted_experiments
            self._tombstones[entity_id] = known
        return known

    # -- changes ----------------------------------------------------------------------------
    def apply(self, changes: Iterable[Change], position: int) -> None:
        """Apply the changes of the journal entry at ``position`` to the in-memory state."""
        for change in changes:
            match change:
                case AddMetrics(run_id=run_id, key=key, columns=columns, ordered=ordered):
                    self._add_metrics(run_id, key, position, columns, ordered)
                case SetParams(run_id=run_id, params=params):
                    self._run_params(run_id).update(params)
                    self._dirty_params.setdefault(run_id, {}).update(params)
                case PutRun(row=run):
                    self._runs[run.id] = run
                    self._dirty_runs[run.id] = run
                case PutExperiment(row=exp):
                    self._experiments[exp.id] = exp
                    self._dirty_experiments[exp.id] = exp
                case SetSpanId(run_id=run_id, span_id=span_id):
                    self._span_ids[run_id] = span_id
                case AddArtifact(ref=ref):
                    self._artifact_rows.append(
                        (ref.run_id, position, ref.name, ref.sha256, ref.size_bytes, ref.created_at)
                    )
                case DeleteRun(run_id=run_id):
                    self._runs[run_id] = None
                    self._tombstones[run_id] = True
                    self._deleted_runs.append(run_id)
                case MarkDeleted(entity_id=entity_id, kind=kind):
                    self._tombstones[entity_id] = True
                    self._marked.append((entity_id, kind))
                case DeleteExperiment(experiment_id=exp_id):
                    self._experiments[exp_id] = None
                    self._tombstones[exp_id] = True
                    self._deleted_experiments.append(exp_id)
                    for run_id, known in list(self._runs.items()):
                        if known is not None and known.experiment_id == exp_id:
                            self._runs[run_id] = None
                            self._tombstones[run_id] = True

    def _add_metrics(
        self, run_id: str, key: str, position: int, columns: MetricArrays, ordered: bool
    ) -> None:
        cells = rollup(columns.step, columns.value, ordered)
        whole = cells.get((0, 0))
        if whole is None:
            return
        self._metric_rows.append(
            (run_id, key, position, len(columns.step), whole.first_step, whole.last_step)
        )
        pending = self._rollups
        for (level, bucket), agg in cells.items():
            cell = (level, run_id, key, bucket)
            old = pending.get(cell)
            pending[cell] = agg if old is None else merge(old, agg)

    def _run_params(self, run_id: str) -> dict[str, Any]:
        params = self._params.get(run_id)
        if params is None:
            row = self._one(f"SELECT params FROM {self._s}.runs WHERE id = %s", (run_id,))
            params = {} if row is None else decode_params(row[0])
            self._params[run_id] = params
        return params

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
                [
                    (
                        e.id,
                        e.name,
                        e.description,
                        None if e.config is None else _encode(e.config),
                        _encode(e.tags),
                        e.created_at,
                        e.updated_at,
                    )
                    for e in self._dirty_experiments.values()
                ],
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
                [
                    (
                        r.id,
                        r.experiment_id,
                        r.name,
                        r.status.value,
                        r.created_at,
                        r.start_time,
                        r.end_time,
                        _encode(r.tags),
                        _EMPTY_PARAMS,
                        r.last_activity,
                        bool(r.hidden),
                    )
                    for r in self._dirty_runs.values()
                ],
            )
        if self._dirty_params:
            cur.executemany(
                f"UPDATE {s}.runs SET params = %s WHERE id = %s",
                [(_encode(self._params[run_id]), run_id) for run_id in self._dirty_params],
            )
            cur.executemany(
                f"INSERT INTO {s}.params (key, run_id, value, kind, num, utf8) "
                "VALUES (%s, %s, %s, %s, %s, %s) "
                "ON CONFLICT (key, run_id) DO UPDATE SET value = excluded.value, "
                "kind = excluded.kind, num = excluded.num, utf8 = excluded.utf8",
                [
                    (key, run_id, _encode(value), *typed_columns(value))
                    for run_id, changed in self._dirty_params.items()
                    for key, value in changed.items()
                ],
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
            cur.executemany(
                _UPSERT_ROLLUP.format(s=s), [(*cell, *agg) for cell, agg in self._rollups.items()]
            )
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


# An existing bucket is the earlier-logged side: the same rule as rollups.merge, in SQL.
_UPSERT_ROLLUP = """
INSERT INTO {s}.rollups AS r (level, run_id, key, bucket, first_step, last_step, min_value,
                              max_value, first_value, last_value, count, nonfinite)
VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)
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
