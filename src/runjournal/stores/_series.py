"""A metric series read back from the journal entries that hold it, store-neutral.

A SQL store keeps, per series, the positions of the journal entries that logged it
(``metrics``); it reads those entries' bodies and hands them here. Pure: no
database module is imported here.
"""

from __future__ import annotations

from array import array
from collections.abc import Iterable, Sequence
from typing import Any

from runjournal.chunks import decode_chunks, steps_sorted
from runjournal.chunks import decode_window as chunk_window
from runjournal.events import EventCodec, MetricChunkLogged, MetricLogged, MetricsLogged
from runjournal.model import MetricArrays, MetricBucket
from runjournal.projection import by_step, metric_columns
from runjournal.rollups import FOLDED, Piece, Source, downsample, ladder_for

__all__ = ["decode_series", "decode_window", "downsample_stored"]


def decode_series(codec: EventCodec, rows: Sequence[tuple[int, bytes]]) -> MetricArrays:
    """The columns of a series' ``(version, body)`` entries (in journal order), by step."""
    decode = codec.decode
    events = [decode(body, version) for version, body in rows]
    chunks = [event.chunk for event in events if isinstance(event, MetricChunkLogged)]
    if len(chunks) == len(events):
        # A journal written since chunks: every column is decoded in one pass.
        steps, values, stamps, ordered = decode_chunks(chunks)
        return by_step(MetricArrays(steps, values, stamps), ordered)
    return _joined(
        metric_columns(event)
        for event in events
        if isinstance(event, MetricChunkLogged | MetricsLogged | MetricLogged)
    )


def decode_window(
    codec: EventCodec, rows: Sequence[tuple[int, bytes]], low: int, high: int
) -> MetricArrays:
    """The points with step in ``[low, high]`` of a series' ``(version, body)`` entries, by step.

    The entries are given in journal order (those whose step span meets the window).
    Only the window is decoded of a chunk (:func:`runjournal.chunks.decode_window`), so a
    zoom or a range's edge costs a few hundred points, not the entries' tens of thousands.
    """
    return _joined(_window_of(codec.decode(body, version), low, high) for version, body in rows)


def _window_of(event: object, low: int, high: int) -> tuple[MetricArrays, bool]:
    """The points of one entry with step in ``[low, high]``, and whether they are by step."""
    if isinstance(event, MetricChunkLogged):
        return MetricArrays(*chunk_window(event.chunk, low, high)), steps_sorted(event.chunk)
    if isinstance(event, MetricsLogged | MetricLogged):
        whole, in_order = metric_columns(event)
        return whole.within(low, high, in_order), in_order
    return _EMPTY, True


def _joined(parts: Iterable[tuple[MetricArrays, bool]]) -> MetricArrays:
    """Entries' columns (each with whether it is by step) one after the other, by step."""
    steps, values, stamps = array("q"), array("d"), array("d")
    ordered = True
    for columns, in_order in parts:
        if not columns.step:
            continue
        if ordered:
            # Each entry says whether it is in step order: only the seams are compared.
            ordered = in_order and (not steps or steps[-1] <= columns.step[0])
        steps.extend(columns.step)
        values.extend(columns.value)
        stamps.extend(columns.timestamp)
    return by_step(MetricArrays(steps, values, stamps), ordered)


_EMPTY = MetricArrays(array("q"), array("d"), array("d"))


def downsample_stored(
    source: Source,
    wholes: Iterable[Any],
    points: int,
    start: int | None,
    end: int | None,
) -> list[MetricBucket]:
    """:func:`runjournal.rollups.downsample` of a stored series, on the levels it holds.

    ``wholes`` is the series' bucket-0 rows of levels 0 and ``FOLDED`` as
    ``(level, *piece)``: which levels the store keeps for it is read from them.
    """
    by_level: dict[int, Piece] = {row[0]: row[1:] for row in wholes}
    whole = by_level.get(0)
    ladder = ladder_for(whole, by_level.get(FOLDED))
    return downsample(source, whole, points, start, end, ladder)
