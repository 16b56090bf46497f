"""A metric series read back from the journal entries that hold it, store-neutral.

A SQL store keeps, per series, the positions of the journal entries that logged it
(``metrics``); it reads those entries' bodies and hands them here. Pure: no
database module is imported here.
"""

from __future__ import annotations

import bisect
from array import array
from collections.abc import Sequence

from runjournal.chunks import decode_chunks
from runjournal.events import EventCodec, MetricChunkLogged, MetricLogged, MetricsLogged
from runjournal.model import MetricArrays
from runjournal.projection import by_step, metric_columns

__all__ = ["decode_series", "slice_entries"]


def decode_series(codec: EventCodec, rows: Sequence[tuple[int, bytes]]) -> MetricArrays:
    """The columns of a series' ``(version, body)`` entries (in journal order), by step."""
    decode = codec.decode
    events = [decode(body, version) for version, body in rows]
    chunks = [event.chunk for event in events if isinstance(event, MetricChunkLogged)]
    if len(chunks) == len(events):
        # A journal written since chunks: every column is decoded in one pass.
        steps, values, stamps, ordered = decode_chunks(chunks)
        return by_step(MetricArrays(steps, values, stamps), ordered)
    steps, values, stamps = array("q"), array("d"), array("d")
    ordered = True
    for event in events:
        if not isinstance(event, MetricChunkLogged | MetricsLogged | MetricLogged):
            continue
        columns, in_order = metric_columns(event)
        if ordered:
            # Each chunk says whether it is in step order: only the seams are compared.
            ordered = in_order and (not steps or not columns.step or steps[-1] <= columns.step[0])
        steps.extend(columns.step)
        values.extend(columns.value)
        stamps.extend(columns.timestamp)
    return by_step(MetricArrays(steps, values, stamps), ordered)


def slice_entries(
    entries: Sequence[MetricArrays], low: int, high: int
) -> tuple[list[int], list[float]]:
    """Steps and values in ``[low, high]`` of entries in journal order (each by step), by step."""
    steps: list[int] = []
    values: list[float] = []
    ordered = True
    for entry in entries:
        first = bisect.bisect_left(entry.step, low)
        last = bisect.bisect_right(entry.step, high, lo=first)
        if first == last:
            continue
        if ordered and steps and steps[-1] > entry.step[first]:
            ordered = False
        steps += entry.step[first:last]
        values += entry.value[first:last]
    if ordered:  # nearly always: the entries follow each other by step
        return steps, values
    # A stable sort keeps logging order among equal steps.
    order = sorted(range(len(steps)), key=steps.__getitem__)
    return [steps[i] for i in order], [values[i] for i in order]
