"""What ``rollups.downsample`` reads to answer a chart: stored buckets, and few raw points.

The store contract (tests/test_contract_rollups.py) checks every answer against a brute-force
reference; these tests pin down the cost side. The source here is the pure function's real
input, built with the writer's own ``rollups.rollup``, and it counts what is read from it.
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Sequence

import pytest

from runjournal.model import MetricPoint
from runjournal.rollups import (
    COARSER,
    FOLDED,
    LADDER,
    LEGACY_LADDER,
    Aggregate,
    Piece,
    downsample,
    ladder_for,
    rollup,
)
from runjournal.stores._rollups import add_finer_levels
from tests.test_contract_rollups import check_buckets


class CountingSource:
    """A series' stored buckets (as the writer folds them) and raw points, counting reads."""

    def __init__(self, series: list[MetricPoint]) -> None:
        self.series = series
        self.levels: dict[int, dict[int, Piece]] = {}
        steps, values = [p.step for p in series], [p.value for p in series]
        for (level, bucket), agg in rollup(steps, values).items():
            self.levels.setdefault(level, {})[bucket] = tuple(agg)  # type: ignore[assignment]
        self.points_read = 0
        self.buckets_read = 0

    @property
    def whole(self) -> Piece:
        return self.levels[0][0]

    def buckets(self, level: int, low: int, high: int) -> Sequence[Piece]:
        table = self.levels[level]
        rows = [table[b] for b in sorted(table) if low <= b <= high]
        self.buckets_read += len(rows)
        return rows

    def points(self, low: int, high: int) -> tuple[list[int], list[float]]:
        steps = [p.step for p in self.series]
        chosen = self.series[bisect.bisect_left(steps, low) : bisect.bisect_right(steps, high)]
        self.points_read += len(chosen)
        return [p.step for p in chosen], [p.value for p in chosen]


def _series(count: int, spike_at: int) -> list[MetricPoint]:
    return [
        MetricPoint(step, 50.0 if step == spike_at else 1.0 / (step + 1), 0.0)
        for step in range(count)
    ]


def test_a_whole_series_reads_stored_buckets_and_only_its_first_buckets_points() -> None:
    series = _series(300_000, spike_at=123_457)
    source = CountingSource(series)
    buckets = downsample(source, source.whole, 1000, None, None)
    check_buckets(buckets, series, 1000, None, None)
    # The first step must stand alone, so the first stored bucket (256 steps) is read raw;
    # the last bucket is partly empty but holds only points of the range, so it is used whole.
    assert source.points_read <= 256
    assert source.buckets_read <= math.ceil(300_000 / 256) + 1
    assert max(b.max for b in buckets if b.max is not None) == 50.0


def test_a_series_just_too_short_for_the_asked_resolution_is_answered_from_stored_buckets() -> None:
    # 100 steps per asked bucket: level 1 (256 steps) is at most COARSER times too wide.
    series = _series(100_000, spike_at=77_777)
    source = CountingSource(series)
    buckets = downsample(source, source.whole, 1000, None, None)
    check_buckets(buckets, series, 1000, None, None)
    assert source.points_read <= 256
    assert 1000 // COARSER <= len(buckets) <= 1000
    assert max(b.max for b in buckets if b.max is not None) == 50.0


@pytest.mark.parametrize(("start", "end"), [(1_000, 2_000), (1_000, 30_000), (5, 99_999)])
def test_a_window_reads_raw_points_only_at_its_edges(start: int, end: int) -> None:
    series = _series(100_000, spike_at=1_500)
    source = CountingSource(series)
    buckets = downsample(source, source.whole, 200, start, end)
    check_buckets(buckets, series, 200, start, end)
    width = end - start + 1
    if width / 199 * COARSER < 256:  # too narrow for stored buckets: the window's points, raw
        assert source.points_read == width
    else:  # the partial stored buckets at both edges, raw
        assert source.points_read <= 2 * 256


def test_a_million_step_series_reads_about_one_stored_bucket_per_drawn_point() -> None:
    """The levels between the first format's: 977 buckets of 1,024 steps, not 3,907 of 256."""
    series = _series(1_000_000, spike_at=424_242)
    source = CountingSource(series)
    buckets = downsample(source, source.whole, 1000, None, None)
    check_buckets(buckets, series, 1000, None, None)
    assert source.buckets_read <= math.ceil(1_000_000 / 1024) + 8
    assert 500 <= len(buckets) <= 1000
    assert source.points_read <= 256
    assert max(b.max for b in buckets if b.max is not None) == 50.0
    # The first format's levels answer validly too, reading four times as many buckets.
    legacy = CountingSource(series)
    old = downsample(legacy, legacy.whole, 1000, None, None, LEGACY_LADDER)
    check_buckets(old, series, 1000, None, None)
    assert legacy.buckets_read > 3 * source.buckets_read


def test_the_finer_levels_are_read_only_while_the_folded_bucket_counts_every_point() -> None:
    source = CountingSource(_series(5_000, spike_at=7))
    whole, folded = source.whole, source.levels[FOLDED][0]
    assert folded == whole
    assert ladder_for(whole, folded) == LADDER
    assert ladder_for(whole, None) == LEGACY_LADDER  # a database of the first format
    stale = (*folded[:6], folded[6] - 1, folded[7])  # a writer without them appended a point
    assert ladder_for(whole, stale) == LEGACY_LADDER
    assert ladder_for(None, None) == LEGACY_LADDER


@pytest.mark.parametrize("size", [1, 3, 7, 1000])
def test_an_upgrade_derives_the_finer_levels_of_series_that_span_pages(size: int) -> None:
    """Level-1 rows read a page at a time give each series the levels ``rollup`` folds."""
    folded: dict[tuple[str, str], dict[tuple[int, int], Aggregate]] = {}
    rows: list[tuple[object, ...]] = []
    for run_id, key, count in [("a", "m", 3000), ("a", "n", 10), ("b", "m", 1500)]:
        cells = rollup(list(range(count)), [float(i % 17) for i in range(count)])
        folded[run_id, key] = cells
        rows += sorted((run_id, key, b, *agg) for (lv, b), agg in cells.items() if lv == 1)

    def read_page(after: tuple[str, str, int], limit: int) -> list[tuple[object, ...]]:
        return [row for row in rows if row[:3] > after][:limit]

    written: list[tuple[object, ...]] = []
    add_finer_levels(read_page, written.extend, size)
    got = {(row[0], row[1], row[2], row[3]): Aggregate(*row[4:]) for row in written}  # type: ignore[arg-type]
    want = {
        (level, run_id, key, bucket): agg
        for (run_id, key), cells in folded.items()
        for (level, bucket), agg in cells.items()
        if level in LADDER and level not in LEGACY_LADDER
    }
    assert got == want
    assert len(written) == len(want)  # no series written twice at a page's seam
