"""The metric rollup projection: min, max, first, last and count per bucket of steps.

Every series (run, key) is summarised at :data:`LEVELS`: level 0 is one bucket
holding the whole series (the run table's summary), and level ``l`` ≥ 1 cuts
the steps into aligned buckets of ``256**l`` steps (bucket ``step >> 8*l``). A
chart of a range wider than 256 steps per output bucket reads stored buckets, a
few thousand rows, never a million points; a narrower zoom reads the raw points
of that window only. The widths are coarse on purpose: the writer maintains
every level in the commit of each batch, and a finer first level (16 steps)
cost a row per point for series logged every 100 steps.

A bucket is an :class:`Aggregate` keyed by its step range, so it never needs
to be recomputed: two aggregates of the same bucket combine exactly
(:func:`merge`), in whatever step order the points were logged, because the
later-logged side wins ties on equal steps, which is ``get_metrics``' order
(by step; equal steps in logging order). :func:`downsample` answers a range
from any :class:`Source` of stored buckets and raw points. Pure: no I/O.
"""

from __future__ import annotations

import bisect
import itertools
import operator
from collections.abc import Iterable, Sequence
from typing import Any, NamedTuple, Protocol, TypeAlias

from runjournal.model import MetricBucket

__all__ = [
    "BITS",
    "LEVELS",
    "TOP_LEVEL",
    "Aggregate",
    "Piece",
    "Source",
    "aggregate_points",
    "downsample",
    "merge",
    "rollup",
]

BITS = 8
"""A level's buckets are ``2**BITS`` (256) times wider than the level below's."""
TOP_LEVEL = 3
"""The widest stepped level: buckets of ``256**3`` (about 16.8 million) steps."""
LEVELS = tuple(range(TOP_LEVEL + 1))
"""Level 0 (the whole series as one bucket) and the stepped levels 1..TOP_LEVEL."""


class Aggregate(NamedTuple):
    """The summary of the points of one bucket.

    ``first`` and ``last`` are the first and last points in ``get_metrics``
    order (NaN and ±inf included). ``min`` and ``max`` are over the finite
    values only, None if there are none; ``nonfinite`` counts the others.
    """

    first_step: int
    last_step: int
    min: float | None
    max: float | None
    first: float
    last: float
    size: int
    nonfinite: int

    def to_bucket(self) -> MetricBucket:
        """The public :class:`MetricBucket` of this aggregate."""
        return MetricBucket(*self)


def merge(earlier: Aggregate, later: Aggregate) -> Aggregate:
    """Combine two aggregates; ``later``'s points were logged after ``earlier``'s.

    Exact for any two sets of points: on an equal first step the earlier-logged
    point comes first, on an equal last step the later-logged one is last.
    """
    if later.first_step < earlier.first_step:
        first_step, first = later.first_step, later.first
    else:
        first_step, first = earlier.first_step, earlier.first
    if later.last_step >= earlier.last_step:
        last_step, last = later.last_step, later.last
    else:
        last_step, last = earlier.last_step, earlier.last
    lo, hi = earlier.min, earlier.max
    if later.min is not None:
        lo = later.min if lo is None or later.min < lo else lo
    if later.max is not None:
        hi = later.max if hi is None or later.max > hi else hi
    return Aggregate(
        first_step,
        last_step,
        lo,
        hi,
        first,
        last,
        earlier.size + later.size,
        earlier.nonfinite + later.nonfinite,
    )


def aggregate_points(points: Iterable[tuple[int, float]]) -> Aggregate | None:
    """The aggregate of ``(step, value)`` pairs given in logging order (None if empty)."""
    agg: Aggregate | None = None
    for step, value in points:
        one = _single(step, value)
        agg = one if agg is None else merge(agg, one)
    return agg


def _single(step: int, value: float) -> Aggregate:
    if value - value == 0.0:  # finite: NaN - NaN and inf - inf are NaN
        return Aggregate(step, step, value, value, value, value, 1, 0)
    return Aggregate(step, step, None, None, value, value, 1, 1)


def rollup(
    steps: Sequence[int], values: Sequence[float], ordered: bool | None = None
) -> dict[tuple[int, int], Aggregate]:
    """The aggregates of a batch of points (columns in logging order), keyed by ``(level, bucket)``.

    ``ordered`` says whether the steps never decrease (None: find out).
    """
    if ordered is None:
        ordered = all(map(operator.le, steps, itertools.islice(steps, 1, None)))
    # This is the writer's cost per point: batches in step order (nearly all of them) take
    # each finest bucket as one slice, summarised by C builtins.
    level_aggs = _finest_sorted(steps, values) if ordered else _finest_any(steps, values)
    out: dict[tuple[int, int], Aggregate] = {}
    for level in range(1, TOP_LEVEL + 1):
        for bucket, agg in level_aggs.items():
            out[level, bucket] = agg
        if level == TOP_LEVEL:
            break
        coarser: dict[int, Aggregate] = {}
        for bucket, agg in level_aggs.items():
            # Buckets of one level cover disjoint steps, so their merge order does not matter.
            parent = coarser.get(bucket >> BITS)
            coarser[bucket >> BITS] = agg if parent is None else merge(parent, agg)
        level_aggs = coarser
    whole: Aggregate | None = None
    for agg in level_aggs.values():
        whole = agg if whole is None else merge(whole, agg)
    if whole is not None:
        out[0, 0] = whole
    return out


def _finest_sorted(steps: Sequence[int], values: Sequence[float]) -> dict[int, Aggregate]:
    out: dict[int, Aggregate] = {}
    count = len(steps)
    i = 0
    while i < count:
        bucket = steps[i] >> BITS
        j = bisect.bisect_left(steps, (bucket + 1) << BITS, i)
        chunk = values[i:j]
        total = sum(chunk)
        if total - total == 0.0:  # every value finite (an overflow to inf takes the long way)
            lo: float | None = min(chunk)
            hi: float | None = max(chunk)
            nonfinite = 0
        else:
            finite = [v for v in chunk if v - v == 0.0]
            lo = min(finite) if finite else None
            hi = max(finite) if finite else None
            nonfinite = len(chunk) - len(finite)
        out[bucket] = Aggregate(
            steps[i], steps[j - 1], lo, hi, chunk[0], chunk[-1], j - i, nonfinite
        )
        i = j
    return out


def _finest_any(steps: Sequence[int], values: Sequence[float]) -> dict[int, Aggregate]:
    finest: dict[int, list[Any]] = {}
    for step, value in zip(steps, values, strict=True):
        finite = value - value == 0.0
        cell = finest.get(step >> BITS)
        if cell is None:
            if finite:
                finest[step >> BITS] = [step, step, value, value, value, value, 1, 0]
            else:
                finest[step >> BITS] = [step, step, None, None, value, value, 1, 1]
            continue
        if step < cell[0]:
            cell[0] = step
            cell[4] = value
        if step >= cell[1]:
            cell[1] = step
            cell[5] = value
        if finite:
            if cell[2] is None or value < cell[2]:
                cell[2] = value
            if cell[3] is None or value > cell[3]:
                cell[3] = value
        else:
            cell[7] += 1
        cell[6] += 1
    return {b: Aggregate(*c) for b, c in finest.items()}


Piece: TypeAlias = tuple[int, int, float | None, float | None, float | None, float | None, int, int]
"""An :class:`Aggregate` as a plain tuple, as a store reads it; None for first or last is NaN."""


class Source(Protocol):
    """What :func:`downsample` reads: one series' stored buckets and raw points."""

    def buckets(self, level: int, low: int, high: int) -> Sequence[Piece]:
        """The stored aggregates of ``level`` with bucket number in ``[low, high]``, by step."""

    def points(self, low: int, high: int) -> list[tuple[int, float]]:
        """The raw ``(step, value)`` points with step in ``[low, high]``, in get_metrics order."""


_STEP_MAX = 2**63 - 1
_NAN = float("nan")


def _by_step(points: list[tuple[int, float]]) -> list[Piece]:
    """One aggregate per distinct step of points given in get_metrics order."""
    out: list[Piece] = []
    for step, value in points:
        one = _single(step, value)
        if out and out[-1][0] == step:
            out[-1] = merge(Aggregate(*out[-1]), one)  # type: ignore[arg-type]
        else:
            out.append(one)
    return out


def _pieces(source: Source, low: int, high: int, level: int) -> list[Piece]:
    """Aggregates with disjoint steps that cover exactly ``[low, high]``, coarsest first."""
    if low > high:
        return []
    if level == 0:
        return list(_by_step(source.points(low, high)))
    shift = BITS * level
    first_full = -((-low) >> shift)  # ceil(low / width)
    end_full = (high + 1) >> shift  # buckets first_full .. end_full - 1 lie inside
    if first_full >= end_full:
        return _pieces(source, low, high, level - 1)
    return [
        *_pieces(source, low, (first_full << shift) - 1, level - 1),
        *source.buckets(level, first_full, end_full - 1),
        *_pieces(source, end_full << shift, high, level - 1),
    ]


def downsample(
    source: Source, whole: Piece | None, points: int, start: int | None, end: int | None
) -> list[MetricBucket]:
    """At most ``points`` buckets over the series' steps in ``[start, end]`` (both inclusive).

    ``whole`` is the series' level-0 aggregate (None: no such series). The first
    bucket holds the range's first step alone; the last ends at the range's last
    point; bucket steps strictly increase; every point of the range is in
    exactly one bucket, so the range's true min and max always appear.
    """
    if points < 2:
        raise ValueError(f"points must be at least 2, got {points}")
    if whole is None:
        return []
    low = max(whole[0], 0 if start is None else start)
    high = min(whole[1], _STEP_MAX if end is None else end)
    if low > high:
        return []
    level = _level_for((high - low + 1) / (points - 1))
    pieces = _pieces(source, low, high, level)
    if not pieces:
        return []
    head = pieces[0]
    if head[0] != head[1]:
        # The first bucket must hold the range's first step alone: split the piece there.
        pieces[:1] = [
            *_by_step(source.points(head[0], head[0])),
            *_pieces(source, head[0] + 1, head[1], level),
        ]
    out = [_bucket(pieces, 0, 1)]
    if len(pieces) == 1:
        return out
    # The pieces cover disjoint steps in order: each output bucket is a run of them, by the
    # equal-width slot of its first step.
    origin = pieces[1][0]
    # Integer ceiling division: steps reach 2**63, past where floats hold every integer.
    width = -(-(pieces[-1][1] - origin + 1) // (points - 1))
    begin = 1
    slot = 0
    for index in range(2, len(pieces)):
        here = (pieces[index][0] - origin) // width
        if here != slot:
            out.append(_bucket(pieces, begin, index))
            begin, slot = index, here
    out.append(_bucket(pieces, begin, len(pieces)))
    return out


def _bucket(pieces: list[Piece], begin: int, end: int) -> MetricBucket:
    """The bucket of ``pieces[begin:end]``, which cover disjoint steps in order."""
    first = pieces[begin]
    last = pieces[end - 1]
    if end - begin == 1:
        lo, hi, count, nonfinite = first[2], first[3], first[6], first[7]
    else:
        group = pieces[begin:end]
        lows = [p[2] for p in group if p[2] is not None]
        highs = [p[3] for p in group if p[3] is not None]
        lo = min(lows) if lows else None
        hi = max(highs) if highs else None
        count = sum(p[6] for p in group)
        nonfinite = sum(p[7] for p in group)
    return MetricBucket(
        first[0],
        last[1],
        lo,
        hi,
        _NAN if first[4] is None else first[4],
        _NAN if last[5] is None else last[5],
        count,
        nonfinite,
    )


def _level_for(steps_per_bucket: float) -> int:
    """The coarsest stepped level whose buckets are no wider than ``steps_per_bucket`` (0: raw)."""
    level = 0
    while level < TOP_LEVEL and (1 << (BITS * (level + 1))) <= steps_per_bucket:
        level += 1
    return level
