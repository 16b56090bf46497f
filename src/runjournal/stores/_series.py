"""A metric series read back from the journal entries that hold it, store-neutral.

A SQL store keeps, per series, the positions of the journal entries that logged it
(``metrics``); it reads those entries' bodies and hands them here. Pure: no
database module is imported here.
"""

from __future__ import annotations

import bisect
from array import array
from collections.abc import Sequence

from runjournal.chunks import decode_chunks, steps_sorted
from runjournal.chunks import decode_window as chunk_window
from runjournal.events import EventCodec, MetricChunkLogged, MetricLogged, MetricsLogged
from runjournal.model import MetricArrays
from runjournal.projection import by_step, metric_columns

__all__ = ["decode_series", "decode_window"]


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


def decode_window(
    codec: EventCodec, rows: Sequence[tuple[int, bytes]], low: int, high: int
) -> MetricArrays:
    """The points with step in ``[low, high]`` of a series' ``(version, body)`` entries, by step.

    The entries are given in journal order (those whose step span meets the window).
    Only the window is decoded of a chunk (:func:`runjournal.chunks.decode_window`), so a
    zoom or a range's edge costs a few hundred points, not the entries' tens of thousands.
    """
    steps, values, stamps = array("q"), array("d"), array("d")
    ordered = True
    for version, body in rows:
        event = codec.decode(body, version)
        if isinstance(event, MetricChunkLogged):
            columns = MetricArrays(*chunk_window(event.chunk, low, high))
            in_order = steps_sorted(event.chunk)
        elif isinstance(event, MetricsLogged | MetricLogged):
            whole, in_order = metric_columns(event)
            columns = _within(whole, in_order, low, high)
        else:
            continue
        if not columns.step:
            continue
        if ordered:
            # Each entry says whether it is in step order: only the seams are compared.
            ordered = in_order and (not steps or steps[-1] <= columns.step[0])
        steps.extend(columns.step)
        values.extend(columns.value)
        stamps.extend(columns.timestamp)
    return by_step(MetricArrays(steps, values, stamps), ordered)


def _within(columns: MetricArrays, ordered: bool, low: int, high: int) -> MetricArrays:
    """The points of ``columns`` with step in ``[low, high]``, in their order."""
    steps = columns.step
    if ordered:
        begin = bisect.bisect_left(steps, low)
        end = bisect.bisect_right(steps, high, begin)
        return MetricArrays(
            steps[begin:end], columns.value[begin:end], columns.timestamp[begin:end]
        )
    keep = [i for i, step in enumerate(steps) if low <= step <= high]
    return MetricArrays(
        array("q", map(steps.__getitem__, keep)),
        array("d", map(columns.value.__getitem__, keep)),
        array("d", map(columns.timestamp.__getitem__, keep)),
    )
