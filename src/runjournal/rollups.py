"""The metric rollup projection: min, max, first, last and count per bucket of steps.

Every series (run, key) is summarised at :data:`LEVELS`. Level 0 is one bucket holding
the whole series (the run table's summary). The stepped levels of :data:`LADDER` cut the
steps into aligned buckets of ``2**SHIFTS[level]`` steps (bucket ``step >> shift``), from
256 steps up to about 16.8 million, each level 4 times wider than the one before up to
65,536 steps. A chart of a range wider than 64 steps per output bucket reads stored buckets,
about one or two per output bucket up to series of some 30 million steps (a few thousand
rows, never a million points, see :data:`COARSER`); a narrower zoom reads the raw points of
that window only. The finest
width is coarse on purpose: the writer maintains every level in the commit of each batch,
and a finer first level (16 steps) cost a row per point for series logged every 100 steps.

Levels 1, 2 and 3 (256, 65,536 and 16.8 million steps) are the first format's; levels 4
to 6 (1,024, 4,096 and 16,384 steps) came later, between the first two. Each costs the writer
a row per series per commit, so there are no more: a commit of a few points to each of many
series (a sweep) writes 8 rows per series instead of 4. A series whose :data:`FOLDED` bucket does not count every
point of its level 0 (a database written before them, or appended to since by a
runjournal that did not keep them) is read through :data:`LEGACY_LADDER` only
(:func:`ladder_for`): slower, never wrong.

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
from array import array
from collections.abc import Iterable, Iterator, Sequence
from typing import Any, Final, NamedTuple, Protocol, TypeAlias

from runjournal.model import MetricBucket

__all__ = [
    "BITS",
    "COARSER",
    "FOLDED",
    "LADDER",
    "LADDER_COARSER",
    "LEGACY_LADDER",
    "LEVELS",
    "SHIFTS",
    "Aggregate",
    "Piece",
    "Source",
    "aggregate_points",
    "downsample",
    "finer_levels",
    "ladder_for",
    "merge",
    "rollup",
]

BITS = 8
"""The finest stepped level's buckets are ``2**BITS`` (256) steps wide."""
SHIFTS: Final[dict[int, int]] = {1: 8, 4: 10, 5: 12, 6: 14, 2: 16, 3: 24}
"""Each stepped level's bucket width, as a power of two: its bucket of a step is ``step >> shift``."""
LADDER: Final = (1, 4, 5, 6, 2, 3)
"""The stepped levels, from the finest (256 steps) to the widest (about 16.8 million): 4 times
apart up to 65,536 steps, where charts of long series read; 256 times above, as in the first format."""
LEGACY_LADDER: Final = (1, 2, 3)
"""The stepped levels of the first format: what a series without a whole :data:`FOLDED` has."""
FOLDED: Final = 7
"""Level 7, bucket 0: the whole series once more, kept only by writers that keep every level
of :data:`LADDER`. Its count equals level 0's exactly when those levels hold every point."""
LEVELS: Final = tuple(range(FOLDED + 1))
"""Every level a store may hold: 0 (the whole series), the stepped levels and :data:`FOLDED`."""
COARSER = 4
"""How much coarser than asked :func:`downsample` may answer to read stored buckets.

The finest level, and every level of :data:`LEGACY_LADDER`, is used for buckets at most
``COARSER`` times wider than the equal-width buckets asked for, so a request for
``points`` buckets gets at least about ``points / COARSER`` of them. Without this slack,
a 100,000-step series at ``points=1000`` (100 steps a bucket, under the 256 of level 1)
would read and bucket every raw point; with it, it reads 391 stored buckets. A level only
4 times wider than the one below it has the smaller slack :data:`LADDER_COARSER`.
"""
LADDER_COARSER = 2
"""The slack of a level 4 times wider than the one below it: a request for ``points`` buckets
gets at least about half of them, from at most about ``2 * points`` stored rows. (A
1,000,000-step series at ``points=1000`` reads 977 buckets of 1,024 steps, where the
first format's levels made it read 3,907 of 256.)"""


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
    if isinstance(values, array):
        # Boxed once here, not once by each of sum, min and max over every slice.
        values = values.tolist()
    # This is the writer's cost per point: batches in step order (nearly all of them) take
    # each finest bucket as one slice, summarised by C builtins.
    level_aggs = _finest_sorted(steps, values) if ordered else _finest_any(steps, values)
    out: dict[tuple[int, int], Aggregate] = {}
    for level, bucket_aggs in _climb(level_aggs):
        for bucket, agg in bucket_aggs.items():
            out[level, bucket] = agg
        level_aggs = bucket_aggs
    whole: Aggregate | None = None
    for agg in level_aggs.values():
        whole = agg if whole is None else merge(whole, agg)
    if whole is not None:
        out[0, 0] = out[FOLDED, 0] = whole
    return out


def _climb(finest: dict[int, Aggregate]) -> Iterator[tuple[int, dict[int, Aggregate]]]:
    """Each level of :data:`LADDER` with its buckets, each level merged from the one before."""
    aggs = finest
    yield LADDER[0], aggs
    for finer, level in itertools.pairwise(LADDER):
        aggs = _coarser(aggs, SHIFTS[level] - SHIFTS[finer])
        yield level, aggs


def _coarser(aggs: dict[int, Aggregate], shift: int) -> dict[int, Aggregate]:
    coarser: dict[int, Aggregate] = {}
    for bucket, agg in aggs.items():
        # Buckets of one level cover disjoint steps, so their merge order does not matter.
        parent = coarser.get(bucket >> shift)
        coarser[bucket >> shift] = agg if parent is None else merge(parent, agg)
    return coarser


def finer_levels(finest: dict[int, Aggregate]) -> dict[tuple[int, int], Aggregate]:
    """The buckets of the levels of :data:`LADDER` that :data:`LEGACY_LADDER` lacks.

    ``finest`` is a series' buckets of level 1 (bucket -> aggregate), as a database of the
    first format holds them; the result is keyed ``(level, bucket)``. Each level is merged
    from the one below it, exactly as :func:`rollup` builds it from points.
    """
    return {
        (level, bucket): agg
        for level, aggs in _climb(finest)
        if level not in LEGACY_LADDER
        for bucket, agg in aggs.items()
    }


def ladder_for(whole: Piece | None, folded: Piece | None) -> tuple[int, ...]:
    """The stepped levels to read a series by, from its level 0 and :data:`FOLDED` buckets."""
    if whole is not None and folded is not None and folded[6] == whole[6]:
        return LADDER
    return LEGACY_LADDER


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

    def points(self, low: int, high: int) -> tuple[Sequence[int], Sequence[float]]:
        """The steps and values of the raw points with step in ``[low, high]``.

        Two parallel sequences, in get_metrics order.
        """


_STEP_MAX = 2**63 - 1
_NAN = float("nan")
_INF = float("inf")


class _Stored(NamedTuple):
    rung: int
    """The index in the ladder of the level that the rows are of."""
    rows: Sequence[Piece]


class _Raw(NamedTuple):
    steps: Sequence[int]
    values: Sequence[float]


_Segment: TypeAlias = _Stored | _Raw


def _segments(
    source: Source, low: int, high: int, ladder: Sequence[int], rung: int
) -> list[_Segment]:
    """Stored buckets and raw points that cover exactly the points in ``[low, high]``, by step.

    ``ladder[rung]`` is the level to read (raw points for a rung of -1). A stored bucket
    is used whenever its points all lie in the range, even if its nominal width pokes out
    (the last bucket of a series is usually such); only a bucket that holds points on both
    sides of a bound is read one rung finer.
    """
    if low > high:
        return []
    if rung < 0:
        steps, values = source.points(low, high)
        return [_Raw(steps, values)] if steps else []
    shift = SHIFTS[ladder[rung]]
    rows = list(source.buckets(ladder[rung], low >> shift, high >> shift))
    if not rows:
        return []  # every point lies in some stored bucket: none here means no points
    left: list[_Segment] = []
    right: list[_Segment] = []
    if rows[0][0] < low:  # bucket low >> shift, straddling low
        rows.pop(0)
        edge = min(high, (((low >> shift) + 1) << shift) - 1)
        left = _segments(source, low, edge, ladder, rung - 1)
    if rows and rows[-1][1] > high:  # bucket high >> shift, straddling high
        rows.pop()
        right = _segments(source, max(low, (high >> shift) << shift), high, ladder, rung - 1)
    middle: list[_Segment] = [_Stored(rung, rows)] if rows else []
    return [*left, *middle, *right]


def _split_head(source: Source, segments: list[_Segment], ladder: Sequence[int]) -> None:
    """Make the first piece hold one step only, reading finer levels as needed."""
    while segments:
        head = segments[0]
        if isinstance(head, _Raw):
            return
        first = head.rows[0]
        if first[0] == first[1]:
            return
        finer = _segments(source, first[0], first[1], ladder, head.rung - 1)
        rest = [_Stored(head.rung, head.rows[1:])] if len(head.rows) > 1 else []
        segments[:1] = [*finer, *rest]


class _Columns:
    """The pieces of a range as parallel lists, so that C builtins summarise slices of them.

    A raw point is a piece of one point. ``lows`` and ``highs`` hold +inf and -inf
    for a piece without finite values; ``counts`` and ``nonfinite`` are running
    sums (``counts[j] - counts[i]`` is the size of pieces ``i..j-1``).
    """

    def __init__(self, segments: list[_Segment]) -> None:
        self.first_steps: list[int] = []
        self.last_steps: list[int] = []
        self.lows: list[float] = []
        self.highs: list[float] = []
        self.firsts: list[float | None] = []
        self.lasts: list[float | None] = []
        sizes: list[int] = []
        bad: list[int] = []
        for segment in segments:
            if isinstance(segment, _Raw):
                self._add_raw(segment, sizes, bad)
            else:
                self._add_stored(segment.rows, sizes, bad)
        self.counts = [0, *itertools.accumulate(sizes)]
        self.nonfinite = [0, *itertools.accumulate(bad)]

    def _add_raw(self, raw: _Raw, sizes: list[int], bad: list[int]) -> None:
        steps, values = raw
        self.first_steps += steps
        self.last_steps += steps
        self.firsts += values
        self.lasts += values
        sizes += itertools.repeat(1, len(steps))
        total = sum(values)
        if total - total == 0.0:  # every value finite (an overflow to inf takes the long way)
            self.lows += values
            self.highs += values
            bad += itertools.repeat(0, len(steps))
        else:
            self.lows += [v if v - v == 0.0 else _INF for v in values]
            self.highs += [v if v - v == 0.0 else -_INF for v in values]
            bad += [0 if v - v == 0.0 else 1 for v in values]

    def _add_stored(self, rows: Sequence[Piece], sizes: list[int], bad: list[int]) -> None:
        first_steps, last_steps, lows, highs, firsts, lasts, counts, nonfinite = zip(
            *rows, strict=True
        )
        self.first_steps += first_steps
        self.last_steps += last_steps
        self.lows += [_INF if v is None else v for v in lows] if None in lows else lows
        self.highs += [-_INF if v is None else v for v in highs] if None in highs else highs
        self.firsts += firsts
        self.lasts += lasts
        sizes += counts
        bad += nonfinite

    def buckets(self, begins: list[int], ends: list[int]) -> list[MetricBucket]:
        """The bucket of pieces ``begins[i]..ends[i]-1``, for each ``i``."""
        # Most buckets hold one piece (stored buckets about as wide as asked): only the others
        # take a slice and a min and max of it.
        lows: list[float | None] = list(map(self.lows.__getitem__, begins))
        highs: list[float | None] = list(map(self.highs.__getitem__, begins))
        wide = map(operator.gt, map(operator.sub, ends, begins), itertools.repeat(1))
        for i in itertools.compress(range(len(begins)), wide):
            lows[i] = min(self.lows[begins[i] : ends[i]])
            highs[i] = max(self.highs[begins[i] : ends[i]])
        if _INF in lows:
            lows = [None if v == _INF else v for v in lows]
        if -_INF in highs:
            highs = [None if v == -_INF else v for v in highs]
        lasts_at = [end - 1 for end in ends]
        firsts = list(map(self.firsts.__getitem__, begins))
        lasts = list(map(self.lasts.__getitem__, lasts_at))
        if None in firsts:
            firsts = [_NAN if v is None else v for v in firsts]
        if None in lasts:
            lasts = [_NAN if v is None else v for v in lasts]
        counts, nonfinite = self.counts, self.nonfinite
        return list(
            map(
                MetricBucket,
                map(self.first_steps.__getitem__, begins),
                map(self.last_steps.__getitem__, lasts_at),
                lows,
                highs,
                firsts,
                lasts,
                map(operator.sub, map(counts.__getitem__, ends), map(counts.__getitem__, begins)),
                map(
                    operator.sub,
                    map(nonfinite.__getitem__, ends),
                    map(nonfinite.__getitem__, begins),
                ),
            )
        )


def downsample(
    source: Source,
    whole: Piece | None,
    points: int,
    start: int | None,
    end: int | None,
    ladder: Sequence[int] = LADDER,
) -> list[MetricBucket]:
    """At most ``points`` buckets over the series' steps in ``[start, end]`` (both inclusive).

    ``whole`` is the series' level-0 aggregate (None: no such series). The first
    bucket holds the range's first step alone; the last ends at the range's last
    point; bucket steps strictly increase; every point of the range is in
    exactly one bucket, so the range's true min and max always appear. Stored
    buckets up to :data:`COARSER` times wider than asked are used as they are,
    so there may be fewer than ``points`` buckets although the range holds more.
    ``ladder`` is the stepped levels the source holds (:func:`ladder_for`).
    """
    if points < 2:
        raise ValueError(f"points must be at least 2, got {points}")
    if whole is None:
        return []
    low = max(whole[0], 0 if start is None else start)
    high = min(whole[1], _STEP_MAX if end is None else end)
    if low > high:
        return []
    rung = _rung_for((high - low + 1) / (points - 1), ladder)
    segments = _segments(source, low, high, ladder, rung)
    _split_head(source, segments, ladder)
    if not segments:
        return []
    columns = _Columns(segments)
    steps = columns.first_steps
    count = len(steps)
    # The first bucket: the range's first step alone (every raw point logged at that step).
    head = bisect.bisect_right(steps, steps[0])
    begins, ends = [0], [head]
    if head < count:
        # The other pieces cover disjoint steps in order: each output bucket is a run of them,
        # by the equal-width slot of its first step.
        origin = steps[head]
        # Integer ceiling division: steps reach 2**63, past where floats hold every integer.
        width = -(-(columns.last_steps[-1] - origin + 1) // (points - 1))
        # Each piece's slot, and the pieces where the slot changes, computed in C.
        slots = list(
            map(
                operator.floordiv,
                map(operator.sub, itertools.islice(steps, head, None), itertools.repeat(origin)),
                itertools.repeat(width),
            )
        )
        changes = map(operator.ne, itertools.islice(slots, 1, None), slots)
        starts = list(itertools.compress(range(head + 1, count), changes))
        begins += [head, *starts]
        ends += [*starts, count]
    return columns.buckets(begins, ends)


def _rung_for(asked: float, ladder: Sequence[int]) -> int:
    """The rung of ``ladder`` to answer buckets of ``asked`` steps from (-1: raw points).

    The widest level no wider than ``slack * asked``: ``LADDER_COARSER`` for a level 4 times
    wider than the one below it, ``COARSER`` for one 256 times wider or the finest.
    """
    rung = -1
    while rung + 1 < len(ladder):
        shift = SHIFTS[ladder[rung + 1]]
        close = rung >= 0 and shift - SHIFTS[ladder[rung]] <= 2
        if (1 << shift) > (LADDER_COARSER if close else COARSER) * asked:
            break
        rung += 1
    return rung
