"""The journal's events: frozen, tagged msgspec Structs, their codec, and upcasting.

Every operation on a run or an experiment is one event. The tag string of each
event is its stable stored identity; it never changes, whatever the class is
called. Evolution follows msgspec's rules: a new field gets a default and an
existing field never changes type. A change that breaks those rules bumps
:data:`EVENT_VERSION` and registers an upcaster in :data:`UPCASTERS` that turns
the old shape (as a plain dict) into the new one.

``MetricLogged`` is the hot-path form of one metric point; the writer folds
consecutive points of one ``(run, key)`` into a single ``MetricChunkLogged`` entry
(the points as columns, :mod:`runjournal.chunks`), which is what the journal stores.
Journals written before chunks hold ``MetricsLogged`` entries (the points as
``[step, value, timestamp]`` triples); those still read, export and import as they are.
"""

from __future__ import annotations

from array import array
from collections.abc import Callable
from typing import Any, TypeAlias

import msgspec

from runjournal.chunks import chunk_length, decode_chunk, encode_chunk
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
    "MetricChunkLogged",
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

# gc=False: the cyclic collector does not track events. An event is a tree of plain values
# (strings, numbers, dicts and lists of them, checked or decoded), never part of a
# reference cycle, and an import or a rebuild holds a hundred thousand of them at once.
# Tracked, the collector walked them all again and again, which cost as much as decoding
# them: an import of 100,000 params and tags events read its file in 0.23-0.47 s tracked,
# 0.14-0.21 s untracked. MetricChunkLogged keeps a __dict__ for its decoded columns, so it
# stays tracked.


class ExperimentCreated(
    msgspec.Struct, frozen=True, gc=False, tag="experiment.created", omit_defaults=True
):
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


class ExperimentDeleted(msgspec.Struct, frozen=True, gc=False, tag="experiment.deleted"):
    """Tombstone: the experiment and all its runs are gone from every query (purge erases them)."""

    experiment_id: str
    at: float


class ExperimentUpdated(
    msgspec.Struct, frozen=True, gc=False, tag="experiment.updated", omit_defaults=True
):
    """A live experiment renamed (``name``), or tags set on it (merged, a later value wins).

    MLflow's ``experiments/update`` and ``experiments/set-experiment-tag``. Its id
    stays: an experiment created by name keeps the id derived from its first name.
    """

    experiment_id: str
    at: float
    name: str | None = None
    tags: dict[str, str] = {}


class RunCreated(msgspec.Struct, frozen=True, gc=False, tag="run.created", omit_defaults=True):
    """A new run in PENDING state."""

    run_id: str
    experiment_id: str
    at: float
    name: str | None = None
    tags: dict[str, str] = {}


class RunStarted(msgspec.Struct, frozen=True, gc=False, tag="run.started"):
    """PENDING to RUNNING."""

    run_id: str
    at: float


class RunCompleted(msgspec.Struct, frozen=True, gc=False, tag="run.completed"):
    """The run reached a terminal status."""

    run_id: str
    status: RunStatus
    at: float


class RunResumed(msgspec.Struct, frozen=True, gc=False, tag="run.resumed"):
    """An ended run (SUCCESS, FAILED or CANCELLED) is RUNNING again; its end time is cleared.

    Its start time stays that of its first start; the journal keeps every earlier
    completion, so the status history is the run's ``run.completed`` and
    ``run.resumed`` entries in order.
    """

    run_id: str
    at: float


class RunHeartbeat(msgspec.Struct, frozen=True, gc=False, tag="run.heartbeat"):
    """The run's process is alive, though it logged nothing lately (moves its last activity)."""

    run_id: str
    at: float


class RunDeleted(msgspec.Struct, frozen=True, gc=False, tag="run.deleted"):
    """Tombstone: the run is gone from every query (purge erases its entries)."""

    run_id: str
    at: float


class RunHidden(msgspec.Struct, frozen=True, gc=False, tag="run.hidden"):
    """Soft delete: the run leaves the listings (unless asked for) and keeps everything.

    MLflow's ``runs/delete``. Unlike ``run.deleted`` (a tombstone) it can be
    undone, by ``run.restored``. Hiding a hidden run changes nothing.
    """

    run_id: str
    at: float


class RunRestored(msgspec.Struct, frozen=True, gc=False, tag="run.restored"):
    """A hidden run is back in the listings (MLflow's ``runs/restore``)."""

    run_id: str
    at: float


class RunRenamed(msgspec.Struct, frozen=True, gc=False, tag="run.renamed"):
    """A run's name changed (MLflow's ``runs/update`` with ``run_name``)."""

    run_id: str
    name: str
    at: float


class ParamsLogged(msgspec.Struct, frozen=True, gc=False, tag="params.logged"):
    """One or more parameters set on a run (last write wins per key)."""

    run_id: str
    params: dict[str, Any]
    at: float


class TagSet(msgspec.Struct, frozen=True, gc=False, tag="tag.set"):
    """A string tag set on a run."""

    run_id: str
    key: str
    value: str
    at: float


class TagDeleted(msgspec.Struct, frozen=True, gc=False, tag="tag.deleted"):
    """A tag removed from a run (MLflow's ``runs/delete-tag``); a missing key changes nothing."""

    run_id: str
    key: str
    at: float


class SpanIdSet(msgspec.Struct, frozen=True, gc=False, tag="span.set"):
    """The run's distributed-tracing span id."""

    run_id: str
    span_id: str
    at: float


class ArtifactLogged(msgspec.Struct, frozen=True, gc=False, tag="artifact.logged"):
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


class MetricsLogged(msgspec.Struct, frozen=True, gc=False, tag="metrics.logged"):
    """A batch of points of one metric of one run, in logging order: one journal entry.

    What the writer stored before :class:`MetricChunkLogged`; still read, never written.
    """

    run_id: str
    key: str
    points: list[MetricPoint]
    at: float


class MetricChunkLogged(msgspec.Struct, frozen=True, tag="metrics.chunk", dict=True):
    """A batch of points of one metric of one run, as columns: one journal entry.

    ``chunk`` is the points in logging order, encoded by :func:`runjournal.chunks.encode_chunk`.
    """

    run_id: str
    key: str
    chunk: bytes
    at: float

    @classmethod
    def from_columns(
        cls,
        run_id: str,
        key: str,
        steps: array[int],
        values: array[float],
        timestamps: array[float],
        at: float,
    ) -> MetricChunkLogged:
        """The entry of these columns (``'q'``, ``'d'``, ``'d'`` arrays), encoded here.

        The event keeps the columns beside the chunk, unencoded, so that the writer
        folds them into the projections without decoding what it just encoded. Treat
        them as the event's: read, never changed.
        """
        event = cls(run_id, key, encode_chunk(steps, values, timestamps), at)
        event.__dict__["_columns"] = (steps, values, timestamps)
        return event

    def columns(self) -> tuple[array[int], array[float], array[float]]:
        """The points' ``(step, value, timestamp)`` columns, in logging order.

        Raises ``ValueError`` if the chunk cannot be decoded.
        """
        columns: tuple[array[int], array[float], array[float]] | None
        columns = self.__dict__.get("_columns")
        return decode_chunk(self.chunk) if columns is None else columns

    @property
    def count(self) -> int:
        """How many points the chunk holds (read from its header)."""
        return chunk_length(self.chunk)

    @property
    def points(self) -> list[MetricPoint]:
        """The points, in logging order (decoded on each access)."""
        # Straight from the arrays, as projection.to_points (tolist() would build three lists
        # of the same numbers first).
        return list(map(MetricPoint, *self.columns()))


class IdsPurged(msgspec.Struct, frozen=True, gc=False, tag="ids.purged"):
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
    | MetricChunkLogged
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
