"""The projection state of one write transaction, held in memory and written once.

Shared by the relational stores (SQLite, PostgreSQL). The fold (``projection.evolve``)
reads the state through an overlay: a row is loaded from its table the first time the fold
asks for it, and every change the fold makes lands in memory. At the end of the batch, the
store's ``Overlay.write`` puts each changed row back with one statement per table, in its
own SQL. A batch of a thousand param events then costs a handful of statements, not five
per event, and ``rebuild()`` folds a whole journal the same way, starting from empty tables.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import Any, ClassVar

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

__all__ = [
    "EMPTY_PARAMS",
    "EXPERIMENT_COLUMNS",
    "RUN_COLUMNS",
    "FoldState",
    "decode_params",
    "encode_value",
    "experiment_row",
    "experiment_values",
    "run_row",
    "run_values",
]

RUN_COLUMNS = (
    "id, experiment_id, name, status, created_at, start_time, end_time, tags, last_activity, hidden"
)
EXPERIMENT_COLUMNS = "id, name, description, config, tags, created_at, updated_at"

encode_value = msgspec.msgpack.Encoder().encode
decode_params = msgspec.msgpack.Decoder(dict[str, Any]).decode
_decode_tags = msgspec.msgpack.Decoder(dict[str, str]).decode
_STATUS = {status.value: status for status in RunStatus}
EMPTY_PARAMS = encode_value({})
"""A new run's ``runs.params``: its params are written after it, from the params changed."""


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


def experiment_values(e: Experiment) -> tuple[Any, ...]:
    """The ``experiments`` row of ``e``, in table order (``EXPERIMENT_COLUMNS``)."""
    config = None if e.config is None else encode_value(e.config)
    return (e.id, e.name, e.description, config, encode_value(e.tags), e.created_at, e.updated_at)


def run_values(r: RunRow) -> tuple[Any, ...]:
    """The ``runs`` row of ``r`` as ``id, experiment_id, name, status, created_at, start_time,
    end_time, tags, params, last_activity, hidden`` (params: :data:`EMPTY_PARAMS`)."""
    return (
        r.id,
        r.experiment_id,
        r.name,
        r.status.value,
        r.created_at,
        r.start_time,
        r.end_time,
        encode_value(r.tags),
        EMPTY_PARAMS,
        r.last_activity,
        r.hidden,
    )


class FoldState:
    """The state one transaction folds events into (a ``projection.View``), in memory.

    ``conn`` is the store's connection (``execute(sql, args).fetchone()`` is all this reads
    with), ``prefix`` what goes before a table's name (``""`` or ``"schema."``) and ``mark``
    the driver's placeholder. ``empty=True`` says the projection tables are empty (a rebuild
    just made them): the overlay then holds the whole state and never looks a row up.
    """

    def __init__(self, conn: Any, prefix: str, mark: str, *, empty: bool = False) -> None:
        self._conn = conn
        self._empty = empty
        self._select_experiment = (
            f"SELECT {EXPERIMENT_COLUMNS} FROM {prefix}experiments WHERE id = {mark}"
        )
        self._select_run = f"SELECT {RUN_COLUMNS} FROM {prefix}runs WHERE id = {mark}"
        self._select_tombstone = f"SELECT 1 FROM {prefix}tombstones WHERE id = {mark}"
        self._select_experiment_of = f"SELECT experiment_id FROM {prefix}runs WHERE id = {mark}"
        self._select_params = f"SELECT params FROM {prefix}runs WHERE id = {mark}"
        # None marks a row known to be absent.
        self._experiments: dict[str, Experiment | None] = {}
        self._runs: dict[str, RunRow | None] = {}
        self._params: dict[str, dict[str, Any]] = {}
        self._tombstones: dict[str, bool] = {}
        self._dirty_experiments: dict[str, Experiment] = {}
        self._dirty_runs: dict[str, RunRow] = {}
        self._dirty_params: dict[str, dict[str, Any]] = {}
        self._span_ids: dict[str, str] = {}
        self._metric_rows: list[tuple[str, str, int, int, int, int]] = []
        # (level, run, key, bucket) -> what this transaction adds to that rollup bucket.
        self._rollups: dict[tuple[int, str, str, int], Aggregate] = {}
        self._artifact_rows: list[tuple[str, int, str, str, int, float]] = []
        self._deleted_runs: list[str] = []
        self._deleted_experiments: list[str] = []
        self._marked: list[tuple[str, str]] = []

    # -- the View the fold reads ----------------------------------------------------------
    def experiment(self, experiment_id: str) -> Experiment | None:
        if experiment_id not in self._experiments:
            row = self._one(self._select_experiment, experiment_id)
            self._experiments[experiment_id] = None if row is None else experiment_row(row)
        return self._experiments[experiment_id]

    def run(self, run_id: str) -> RunRow | None:
        if run_id not in self._runs:
            row = self._one(self._select_run, run_id)
            loaded = None if row is None else run_row(row)
            if loaded is not None and self.is_deleted(loaded.experiment_id):
                loaded = None  # its experiment was deleted earlier in this transaction
            self._runs[run_id] = loaded
        return self._runs[run_id]

    def is_deleted(self, entity_id: str) -> bool:
        known = self._tombstones.get(entity_id)
        if known is None:
            known = self._one(self._select_tombstone, entity_id) is not None
            if not known and self._deleted_experiments:
                # A run of an experiment deleted earlier in this transaction.
                row = self._one(self._select_experiment_of, entity_id)
                known = row is not None and row[0] in self._deleted_experiments
            self._tombstones[entity_id] = known
        return known

    def _one(self, sql: str, entity_id: str) -> Any:
        """The first row of a lookup by id in the tables, or None (always, when they are empty)."""
        if self._empty:
            return None
        return self._conn.execute(sql, (entity_id,)).fetchone()

    def _run_params(self, run_id: str) -> dict[str, Any]:
        params = self._params.get(run_id)
        if params is None:
            row = self._one(self._select_params, run_id)
            params = {} if row is None else decode_params(row[0])
            self._params[run_id] = params
        return params

    # -- changes ----------------------------------------------------------------------------
    def apply(self, changes: Iterable[Change], position: int) -> None:
        """Apply the changes of the journal entry at ``position`` to the in-memory state."""
        handlers = self._handlers
        for change in changes:
            handlers[type(change)](self, change, position)

    def _put_run(self, change: PutRun, position: int) -> None:
        run = change.row
        self._runs[run.id] = run
        self._dirty_runs[run.id] = run

    def _set_params(self, change: SetParams, position: int) -> None:
        run_id, params = change.run_id, change.params
        self._run_params(run_id).update(params)
        dirty = self._dirty_params.get(run_id)
        if dirty is None:
            self._dirty_params[run_id] = dict(params)
        else:
            dirty.update(params)

    def _put_experiment(self, change: PutExperiment, position: int) -> None:
        exp = change.row
        self._experiments[exp.id] = exp
        self._dirty_experiments[exp.id] = exp

    def _metrics(self, change: AddMetrics, position: int) -> None:
        self._add_metrics(change.run_id, change.key, position, change.columns, change.ordered)

    def _span_id(self, change: SetSpanId, position: int) -> None:
        self._span_ids[change.run_id] = change.span_id

    def _artifact(self, change: AddArtifact, position: int) -> None:
        ref = change.ref
        self._artifact_rows.append(
            (ref.run_id, position, ref.name, ref.sha256, ref.size_bytes, ref.created_at)
        )

    def _delete_run(self, change: DeleteRun, position: int) -> None:
        run_id = change.run_id
        self._runs[run_id] = None
        self._tombstones[run_id] = True
        self._deleted_runs.append(run_id)

    def _mark_deleted(self, change: MarkDeleted, position: int) -> None:
        self._tombstones[change.entity_id] = True
        self._marked.append((change.entity_id, change.kind))

    def _delete_experiment(self, change: DeleteExperiment, position: int) -> None:
        exp_id = change.experiment_id
        self._experiments[exp_id] = None
        self._tombstones[exp_id] = True
        self._deleted_experiments.append(exp_id)
        for run_id, known in list(self._runs.items()):
            if known is not None and known.experiment_id == exp_id:
                self._runs[run_id] = None
                self._tombstones[run_id] = True

    # One method per kind of change: a lookup by type, not a match down a list of cases,
    # since a replay applies a change or two for every entry of the journal.
    _handlers: ClassVar[dict[type[Change], Callable[[FoldState, Any, int], None]]] = {
        PutRun: _put_run,
        SetParams: _set_params,
        PutExperiment: _put_experiment,
        AddMetrics: _metrics,
        SetSpanId: _span_id,
        AddArtifact: _artifact,
        DeleteRun: _delete_run,
        MarkDeleted: _mark_deleted,
        DeleteExperiment: _delete_experiment,
    }

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

    def _params_rows(
        self, typed: Callable[[Any], tuple[Any, ...]]
    ) -> tuple[list[tuple[bytes, str]], list[tuple[Any, ...]]]:
        """What a write puts back of the params changed: ``(params, run id)`` of each run, and
        ``(key, run id, value, *typed(value))`` of each param (``typed``: the store's typed
        index columns of a value)."""
        blobs = [(encode_value(self._params[run_id]), run_id) for run_id in self._dirty_params]
        rows = [
            (key, run_id, encode_value(value), *typed(value))
            for run_id, changed in self._dirty_params.items()
            for key, value in changed.items()
        ]
        return blobs, rows
