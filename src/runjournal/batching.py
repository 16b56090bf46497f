"""Batching: how the items taken off the queue become journal entries (a pure function).

Metric points dominate the volume, so consecutive points of one ``(run, key)``
share one ``MetricChunkLogged`` entry instead of one entry each: their columns,
encoded here, on the writer thread (:mod:`runjournal.chunks`). Any other event
ends the stretch of points before it, so the journal keeps the order in which
events were accepted. Artifacts never come here (the writer commits each in a
transaction of its own, with its content), and anything that is not an event at all (the writer's flush markers) is handed
back untouched, to be released once the batch is committed.
"""

from __future__ import annotations

import dataclasses
import typing
from array import array
from collections.abc import Iterable
from typing import Generic, TypeVar

from runjournal.chunks import MAX_POINTS
from runjournal.events import Event, MetricChunkLogged, MetricLogged
from runjournal.stores.base import NewEntry, recorded_at

__all__ = ["Batch", "to_entries"]

_M = TypeVar("_M")

_EVENTS: tuple[type[Event], ...] = typing.get_args(Event)

# Columns from the start: encoding then takes them as they are.
_Columns = tuple["array[int]", "array[float]", "array[float]"]


@dataclasses.dataclass(frozen=True, slots=True)
class Batch(Generic[_M]):
    """What one batch of queue items becomes: one store transaction, plus its markers."""

    entries: list[NewEntry]
    """The journal entries, numbered ``seq, seq + 1, ...`` in acceptance order."""
    markers: list[_M]
    """Every item that is not an event, in queue order."""
    events: int
    """How many events the batch holds, counting each metric point as one."""
    next_seq: int
    """The sequence number that the source's next entry gets."""


def to_entries(items: Iterable[Event | _M], source: str, next_seq: int) -> Batch[_M]:
    """Group ``items`` into the journal entries of ``source``, numbered from ``next_seq``.

    Consecutive metric points (with no other event between them) become one
    ``MetricChunkLogged`` entry per ``(run, key)``, in the order each pair first
    appears; such an entry is recorded when the newest point of the stretch was
    accepted, so that no entry is dated before a point it holds. Every other
    event becomes one entry of its own, recorded when it was accepted.
    """
    entries: list[NewEntry] = []
    markers: list[_M] = []
    events = 0
    seq = next_seq
    groups: dict[tuple[str, str], _Columns] = {}
    newest: MetricLogged | None = None

    for item in items:
        if type(item) is MetricLogged:
            events += 1
            group_key = (item.run_id, item.key)
            group = groups.get(group_key)
            if group is None:
                groups[group_key] = (
                    array("q", (item.step,)),
                    array("d", (item.value,)),
                    array("d", (item.timestamp,)),
                )
            else:
                group[0].append(item.step)
                group[1].append(item.value)
                group[2].append(item.timestamp)
            newest = item
        elif isinstance(item, _EVENTS):
            if newest is not None:
                seq = _close_stretch(groups, newest, source, seq, entries)
                groups = {}
                newest = None
            events += 1
            entries.append(NewEntry(source, seq, item, recorded_at(item)))
            seq += 1
        else:
            markers.append(typing.cast("_M", item))
    if newest is not None:
        seq = _close_stretch(groups, newest, source, seq, entries)
    return Batch(entries, markers, events, seq)


def _close_stretch(
    groups: dict[tuple[str, str], _Columns],
    newest: MetricLogged,
    source: str,
    seq: int,
    entries: list[NewEntry],
) -> int:
    at = newest.timestamp if newest.at is None else newest.at
    for (run_id, key), (steps, values, stamps) in groups.items():
        # A stretch longer than a chunk holds (only with a huge batch_size) takes several.
        for start in range(0, len(steps), MAX_POINTS):
            if len(steps) <= MAX_POINTS:
                event = MetricChunkLogged.from_columns(run_id, key, steps, values, stamps, at)
            else:
                end = start + MAX_POINTS
                event = MetricChunkLogged.from_columns(
                    run_id, key, steps[start:end], values[start:end], stamps[start:end], at
                )
            entries.append(NewEntry(source, seq, event, at))
            seq += 1
    return seq
