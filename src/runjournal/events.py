"""The journal's events: frozen, tagged msgspec Structs, their codec, and upcasting.

Every operation on a run or an experiment is one event. The tag string of each
event is its stable stored identity; it never changes, whatever the class is
called. Evolution follows msgspec's rules: a new field gets a default and an
existing field never changes type. A change that breaks those rules bumps
:data:`EVENT_VERSION` and registers an upcaster in :data:`UPCASTERS` that turns
the old shape (as a plain dict) into the new one.

``MetricLogged`` is the hot-path form of one metric point; the writer folds
consecutive points of one ``(run, key)`` into a single ``MetricsLogged`` entry,
which is what the journal stores.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeAlias

import msgspec

from runjournal.model import MetricPoint, RunStatus

__all__ = [
    "EVENT_VERSION",
    "UPCASTERS",
    "ArtifactLogged",
    "Event",
    "EventCodec",
    "ExperimentCreated",
    "ExperimentDeleted",
    "ExperimentUpdated",
    "IdsPurged",
    "MetricLogged",
    "MetricsLogged",
    "ParamsLogged",
    "RunCompleted",
    "RunCreated",
    "RunDeleted",
    "RunHeartbeat",
    "RunHidden",
    "RunRenamed",
    "RunRestored",
    "RunResumed",
    "RunStarted",
    "SpanIdSet",
    "TagDeleted",
    "TagSet",
    "Upcaster",
    "describe",
]

EVENT_VERSION = 1
"""The version of the event shapes this code writes."""


class ExperimentCreated(msgspec.Struct, frozen=True, tag="experiment.created", omit_defaults=True):
    """A new experiment.

    ``generation`` is set when the experiment was created by name (get-or-create):
    its id is then ``ids.name_id("experiment", name, generation)``, the same in
    every process, and a second creation of that live experiment is a no-op.
    """

    experiment_id: str
    name: str
    at: float
    description: str | None = None
    config: dict[str, Any] | None = None
    tags: dict[str, str] = {}
    generation: int | None = None


class ExperimentDeleted(msgspec.Struct, frozen=True, tag="experiment.deleted"):
    """Tombstone: the experiment and all its runs are gone from every query (purge erases them)."""

    experiment_id: str
    at: float


class ExperimentUpdated(msgspec.Struct, frozen=True, tag="experiment.updated", omit_defaults=True):
    """A live experiment renamed (``name``), or tags set on it (merged, a later value wins).

    MLflow's ``experiments/update`` and ``experiments/set-experiment-tag``. Its id
    stays: an experiment created by name keeps the id derived from its first name.
    """

    experiment_id: str
    at: float
    name: str | None = None
    tags: dict[str, str] = {}


class RunCreated(msgspec.Struct, frozen=True, tag="run.created", omit_defaults=True):
    """A new run in PENDING state."""

    run_id: str
    experiment_id: str
    at: float
    name: str | None = None
    tags: dict[str, str] = {}


class RunStarted(msgspec.Struct, frozen=True, tag="run.started"):
    """PENDING to RUNNING."""

    run_id: str
    at: float


class RunCompleted(msgspec.Struct, frozen=True, tag="run.completed"):
    """The run reached a terminal status."""

    run_id: str
    status: RunStatus
    at: float


class RunResumed(msgspec.Struct, frozen=True, tag="run.resumed"):
    """An ended run (SUCCESS, FAILED or CANCELLED) is RUNNING again; its end time is cleared.

    Its start time stays that of its first start; the journal keeps every earlier
    completion, so the status history is the run's ``run.completed`` and
    ``run.resumed`` entries in order.
    """

    run_id: str
    at: float


class RunHeartbeat(msgspec.Struct, frozen=True, tag="run.heartbeat"):
    """The run's process is alive, though it logged nothing lately (moves its last activity)."""

    run_id: str
    at: float


class RunDeleted(msgspec.Struct, frozen=True, tag="run.deleted"):
    """Tombstone: the run is gone from every query (purge erases its entries)."""

    run_id: str
    at: float


class RunHidden(msgspec.Struct, frozen=True, tag="run.hidden"):
    """Soft delete: the run leaves the listings (unless asked for) and keeps everything.

    MLflow's ``runs/delete``. Unlike ``run.deleted`` (a tombstone) it can be
    undone, by ``run.restored``. Hiding a hidden run changes nothing.
    """

    run_id: str
    at: float


class RunRestored(msgspec.Struct, frozen=True, tag="run.restored"):
    """A hidden run is back in the listings (MLflow's ``runs/restore``)."""

    run_id: str
    at: float


class RunRenamed(msgspec.Struct, frozen=True, tag="run.renamed"):
    """A run's name changed (MLflow's ``runs/update`` with ``run_name``)."""

    run_id: str
    name: str
    at: float


class ParamsLogged(msgspec.Struct, frozen=True, tag="params.logged"):
    """One or more parameters set on a run (last write wins per key)."""

    run_id: str
    params: dict[str, Any]
    at: float


class TagSet(msgspec.Struct, frozen=True, tag="tag.set"):
    """A string tag set on a run."""

    run_id: str
    key: str
    value: str
    at: float


class TagDeleted(msgspec.Struct, frozen=True, tag="tag.deleted"):
    """A tag removed from a run (MLflow's ``runs/delete-tag``); a missing key changes nothing."""

    run_id: str
    key: str
    at: float


class SpanIdSet(msgspec.Struct, frozen=True, tag="span.set"):
    """The run's distributed-tracing span id."""

    run_id: str
    span_id: str
    at: float


class ArtifactLogged(msgspec.Struct, frozen=True, tag="artifact.logged"):
    """A named artifact of a run; the bytes live in the content-addressed blob store."""

    run_id: str
    name: str
    sha256: str
    size_bytes: int
    at: float


class MetricLogged(msgspec.Struct, frozen=True, tag="metric.logged", gc=False, omit_defaults=True):
    """One metric point, as it travels the queue.

    ``at`` is when it was accepted; it is left out when it equals ``timestamp``
    (the default timestamp), which keeps the hot path to one clock read.
    """

    run_id: str
    key: str
    step: int
    value: float
    timestamp: float
    at: float | None = None


class MetricsLogged(msgspec.Struct, frozen=True, tag="metrics.logged"):
    """A batch of points of one metric of one run, in logging order: one journal entry."""

    run_id: str
    key: str
    points: list[MetricPoint]
    at: float


class IdsPurged(msgspec.Struct, frozen=True, tag="ids.purged"):
    """Tombstones that outlive a purge: these deleted ids had their entries erased.

    A purge removes every journal entry about a deleted run or experiment (its
    creation and its deletion included) and appends this one entry in their
    place, so that the fold still knows the ids as deleted and an import can
    never bring them back. Folded, it deletes any of them that is live.
    """

    runs: list[str]
    experiments: list[str]
    at: float


Event: TypeAlias = (
    ExperimentCreated
    | ExperimentDeleted
    | ExperimentUpdated
    | RunCreated
    | RunStarted
    | RunCompleted
    | RunResumed
    | RunHidden
    | RunRestored
    | RunDeleted
    | RunHeartbeat
    | ParamsLogged
    | TagSet
    | TagDeleted
    | RunRenamed
    | SpanIdSet
    | ArtifactLogged
    | MetricLogged
    | MetricsLogged
    | IdsPurged
)
"""Everything that can be stored in the journal (``MetricLogged`` only in tests and imports)."""

Upcaster: TypeAlias = Callable[[dict[str, Any]], dict[str, Any]]

UPCASTERS: dict[tuple[str, int], Upcaster] = {}
"""``(tag, version) -> function`` turning a version-``v`` body into version ``v + 1``."""


def describe(event: Event) -> str:
    """A short human description of an event, for error reports."""
    tag = type(event).__struct_config__.tag
    target = getattr(event, "run_id", None) or getattr(event, "experiment_id", "?")
    return f"{tag} for {target}"


class _About(msgspec.Struct):
    run_id: str | None = None
    experiment_id: str | None = None
    sha256: str | None = None


_about = msgspec.msgpack.Decoder(_About).decode


class EventCodec:
    """Encodes and decodes journal events. Create one per store and reuse it."""

    def __init__(self) -> None:
        self._encoder = msgspec.msgpack.Encoder()
        self._decoder: msgspec.msgpack.Decoder[Event] = msgspec.msgpack.Decoder(Event)
        self._raw = msgspec.msgpack.Decoder(dict[str, Any])

    def encode(self, event: Event) -> bytes:
        """Encode one event (with its tag) to msgpack."""
        return self._encoder.encode(event)

    def decode(self, body: bytes, version: int = EVENT_VERSION) -> Event:
        """Decode one stored event, upcasting it first if it has an older shape."""
        if version == EVENT_VERSION:
            return self._decoder.decode(body)
        if version > EVENT_VERSION:
            raise ValueError(
                f"event version {version} is newer than this runjournal understands "
                f"({EVENT_VERSION}); upgrade runjournal"
            )
        raw = self._raw.decode(body)
        tag = raw.get("type")
        for v in range(version, EVENT_VERSION):
            upcaster = UPCASTERS.get((str(tag), v))
            if upcaster is not None:
                raw = upcaster(raw)
        event: Event = msgspec.convert(raw, Event)
        return event

    def about(
        self, body: bytes, version: int = EVENT_VERSION
    ) -> tuple[str | None, str | None, str | None]:
        """``(run_id, experiment_id, sha256)`` of a stored event, each None where it has none.

        A current body is read for those three fields only; an older one is upcast first.
        """
        if version == EVENT_VERSION:
            about = _about(body)
            return about.run_id, about.experiment_id, about.sha256
        event = self.decode(body, version)
        return (
            getattr(event, "run_id", None),
            getattr(event, "experiment_id", None),
            getattr(event, "sha256", None),
        )
