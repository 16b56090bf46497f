"""The pure fold from events to projection changes, and the run-lifecycle rules.

``evolve(view, event)`` looks at the current state through a read-only
:class:`View`, checks the event against the rules, and returns the
:class:`Change` records that the event makes. It does no I/O: each store supplies
the view (from its dicts or its tables) and applies the changes in its own way,
so the SQLite and in-memory stores follow exactly the same rules, live and on
``rebuild()``.
"""

from __future__ import annotations

from typing import Any, Protocol, TypeAlias

import msgspec

from runjournal.errors import InvalidStateError
from runjournal.events import (
    ArtifactLogged,
    Event,
    ExperimentCreated,
    ExperimentDeleted,
    MetricLogged,
    MetricsLogged,
    ParamsLogged,
    RunCompleted,
    RunCreated,
    RunDeleted,
    RunStarted,
    SpanIdSet,
    TagSet,
)
from runjournal.model import ArtifactRef, Experiment, MetricPoint, Run, RunStatus

__all__ = [
    "AddArtifact",
    "AddMetrics",
    "Change",
    "DeleteExperiment",
    "DeleteRun",
    "ExperimentRow",
    "PutExperiment",
    "PutRun",
    "Rejected",
    "RunRow",
    "SetParams",
    "SetSpanId",
    "View",
    "check_transition",
    "evolve",
]


class ExperimentRow(msgspec.Struct):
    """The projected state of one experiment."""

    id: str
    name: str
    description: str | None
    config: dict[str, Any] | None
    tags: dict[str, str]
    created_at: float
    updated_at: float

    def to_public(self) -> Experiment:
        return Experiment(
            id=self.id,
            name=self.name,
            description=self.description,
            config=self.config,
            tags=dict(self.tags),
            created_at=self.created_at,
            updated_at=self.updated_at,
        )


class RunRow(msgspec.Struct):
    """The projected state of one run, without its params, metrics and artifacts."""

    id: str
    experiment_id: str
    name: str | None
    status: RunStatus
    created_at: float
    start_time: float | None
    end_time: float | None
    tags: dict[str, str]

    def to_public(self, params: dict[str, Any]) -> Run:
        return Run(
            id=self.id,
            experiment_id=self.experiment_id,
            name=self.name,
            status=self.status,
            created_at=self.created_at,
            start_time=self.start_time,
            end_time=self.end_time,
            params=params,
            tags=dict(self.tags),
        )


class PutExperiment(msgspec.Struct, frozen=True):
    row: ExperimentRow


class PutRun(msgspec.Struct, frozen=True):
    row: RunRow


class SetParams(msgspec.Struct, frozen=True):
    run_id: str
    params: dict[str, Any]


class SetSpanId(msgspec.Struct, frozen=True):
    run_id: str
    span_id: str


class AddArtifact(msgspec.Struct, frozen=True):
    ref: ArtifactRef


class AddMetrics(msgspec.Struct, frozen=True):
    run_id: str
    key: str
    points: list[MetricPoint]


class DeleteRun(msgspec.Struct, frozen=True):
    run_id: str


class DeleteExperiment(msgspec.Struct, frozen=True):
    experiment_id: str


Change: TypeAlias = (
    PutExperiment
    | PutRun
    | SetParams
    | SetSpanId
    | AddArtifact
    | AddMetrics
    | DeleteRun
    | DeleteExperiment
)


class Rejected(Exception):
    """The event contradicts the current state; the store records it as rejected."""


class View(Protocol):
    """Read-only access to the state an event is applied to."""

    def experiment(self, experiment_id: str) -> ExperimentRow | None:
        """The live experiment, or None if it never existed or was deleted."""

    def run(self, run_id: str) -> RunRow | None:
        """The live run, or None if it never existed or was deleted."""

    def is_deleted(self, entity_id: str) -> bool:
        """True if an experiment or run with this id was deleted."""


_ALLOWED: dict[RunStatus, frozenset[RunStatus]] = {
    RunStatus.PENDING: frozenset({RunStatus.RUNNING, RunStatus.CANCELLED}),
    RunStatus.RUNNING: frozenset({RunStatus.SUCCESS, RunStatus.FAILED, RunStatus.CANCELLED}),
}


def check_transition(run_id: str, current: RunStatus, new: RunStatus) -> None:
    """Raise :class:`InvalidStateError` unless ``current -> new`` is a legal transition."""
    if new not in _ALLOWED.get(current, frozenset()):
        if new is RunStatus.RUNNING:
            why = "only a PENDING run can be started"
        elif new is RunStatus.PENDING:
            why = "a run cannot go back to PENDING"
        else:
            why = "only a RUNNING run can complete (a PENDING one may be CANCELLED)"
        raise InvalidStateError(
            f"run {run_id!r} is {current.value}; cannot move to {new.value}: {why}"
        )


def _live_run(view: View, run_id: str) -> RunRow:
    row = view.run(run_id)
    if row is None:
        state = "was deleted" if view.is_deleted(run_id) else "does not exist"
        raise Rejected(f"run {run_id!r} {state}")
    return row


def evolve(view: View, event: Event) -> list[Change]:
    """Return the changes ``event`` makes to the state seen through ``view``.

    Raises :class:`Rejected` if the event contradicts that state.
    """
    match event:
        case MetricsLogged(run_id=run_id, key=key, points=points):
            _live_run(view, run_id)
            return [AddMetrics(run_id, key, points)]
        case MetricLogged(run_id=run_id, key=key, step=step, value=value, timestamp=ts):
            _live_run(view, run_id)
            return [AddMetrics(run_id, key, [MetricPoint(step, value, ts)])]
        case ParamsLogged(run_id=run_id, params=params):
            _live_run(view, run_id)
            return [SetParams(run_id, params)]
        case ExperimentCreated(experiment_id=exp_id):
            if view.experiment(exp_id) is not None or view.is_deleted(exp_id):
                raise Rejected(f"experiment {exp_id!r} already exists")
            new_experiment = ExperimentRow(
                id=exp_id,
                name=event.name,
                description=event.description,
                config=event.config,
                tags=dict(event.tags),
                created_at=event.at,
                updated_at=event.at,
            )
            return [PutExperiment(new_experiment)]
        case RunCreated(run_id=run_id, experiment_id=exp_id):
            experiment = view.experiment(exp_id)
            if experiment is None:
                raise Rejected(f"experiment {exp_id!r} does not exist")
            if view.run(run_id) is not None or view.is_deleted(run_id):
                raise Rejected(f"run {run_id!r} already exists")
            run = RunRow(
                id=run_id,
                experiment_id=exp_id,
                name=event.name,
                status=RunStatus.PENDING,
                created_at=event.at,
                start_time=None,
                end_time=None,
                tags=dict(event.tags),
            )
            touched = msgspec.structs.replace(
                experiment, updated_at=max(experiment.updated_at, event.at)
            )
            return [PutRun(run), PutExperiment(touched)]
        case RunStarted(run_id=run_id, at=at):
            row = _live_run(view, run_id)
            _transition(row, RunStatus.RUNNING)
            return [PutRun(msgspec.structs.replace(row, status=RunStatus.RUNNING, start_time=at))]
        case RunCompleted(run_id=run_id, status=status, at=at):
            row = _live_run(view, run_id)
            _transition(row, status)
            return [PutRun(msgspec.structs.replace(row, status=status, end_time=at))]
        case TagSet(run_id=run_id, key=key, value=value):
            row = _live_run(view, run_id)
            return [PutRun(msgspec.structs.replace(row, tags={**row.tags, key: value}))]
        case SpanIdSet(run_id=run_id, span_id=span_id):
            _live_run(view, run_id)
            return [SetSpanId(run_id, span_id)]
        case ArtifactLogged(run_id=run_id):
            _live_run(view, run_id)
            ref = ArtifactRef(run_id, event.name, event.sha256, event.size_bytes, event.at)
            return [AddArtifact(ref)]
        case RunDeleted(run_id=run_id):
            _live_run(view, run_id)
            return [DeleteRun(run_id)]
        case ExperimentDeleted(experiment_id=exp_id):
            if view.experiment(exp_id) is None:
                state = "was deleted" if view.is_deleted(exp_id) else "does not exist"
                raise Rejected(f"experiment {exp_id!r} {state}")
            return [DeleteExperiment(exp_id)]
    raise TypeError(f"not a journal event: {event!r}")  # pragma: no cover


def _transition(row: RunRow, new: RunStatus) -> None:
    try:
        check_transition(row.id, row.status, new)
    except InvalidStateError as exc:
        raise Rejected(str(exc)) from None
