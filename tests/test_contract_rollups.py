"""Contract: the rollup projection and ``get_metrics_downsampled``, on every store.

The property tests log random series (out of step order, repeated steps, NaN and
±inf, in several commits) and check every answer against a brute-force reference
built from ``get_metrics``: the buckets must partition the range's points in
``get_metrics`` order, each summarising exactly its own points.
"""

from __future__ import annotations

import asyncio
import itertools
import math
import shutil
import tempfile
from collections.abc import Sequence
from pathlib import Path

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from runjournal import Tracker
from runjournal.journal import rebuild, verify
from runjournal.model import MetricBucket, MetricPoint
from runjournal.rollups import FOLDED, LEGACY_LADDER
from runjournal.stores.sqlite.schema import SCHEMA_VERSION
from tests.conftest import STORE_KINDS, StoreKind, assert_identical, make_store


async def _run(tracker: Tracker) -> str:
    return await tracker.create_run(await tracker.create_experiment("e"))


def _finite(value: float) -> bool:
    return not (math.isnan(value) or math.isinf(value))


def check_buckets(
    buckets: Sequence[MetricBucket],
    series: Sequence[MetricPoint],
    points: int,
    start: int | None,
    end: int | None,
) -> None:
    """Assert that ``buckets`` is a valid downsampling of ``series`` (get_metrics order)."""
    chosen = [
        p for p in series if (start is None or p.step >= start) and (end is None or p.step <= end)
    ]
    assert len(buckets) <= points
    assert sum(b.count for b in buckets) == len(chosen)
    if not chosen:
        assert buckets == []
        return
    assert buckets[0].first_step == buckets[0].last_step == chosen[0].step
    for before, after in itertools.pairwise(buckets):
        assert before.last_step < after.first_step
    index = 0
    for bucket in buckets:
        own = chosen[index : index + bucket.count]
        index += bucket.count
        finite = [p.value for p in own if _finite(p.value)]
        want = MetricBucket(
            first_step=own[0].step,
            last_step=own[-1].step,
            min=min(finite) if finite else None,
            max=max(finite) if finite else None,
            first=own[0].value,
            last=own[-1].value,
            count=len(own),
            nonfinite=len(own) - len(finite),
        )
        assert_identical(bucket, want)
    assert buckets[-1].last_step == chosen[-1].step


values = st.floats(allow_nan=True, allow_infinity=True, width=64) | st.floats(-10, 10)
steps = st.integers(0, 300) | st.integers(0, 2**24) | st.integers(0, 2**62)
series_strategy = st.lists(
    st.lists(st.tuples(steps, values), min_size=0, max_size=40), min_size=1, max_size=5
)
bounds = st.none() | steps


@pytest.mark.parametrize("kind", STORE_KINDS)
@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    commits=series_strategy,
    points=st.integers(2, 40),
    start=bounds,
    end=bounds,
    dense=st.booleans(),
)
# Steps past 2**53, where a float bucket width rounds: three buckets came back for points=2.
@example(
    commits=[[(0, 0.0), (1, 0.0), (18_014_398_509_481_829, 0.0)]],
    points=2,
    start=None,
    end=None,
    dense=False,
)
def test_downsampling_matches_a_brute_force_reference(
    kind: StoreKind,
    commits: list[list[tuple[int, float]]],
    points: int,
    start: int | None,
    end: int | None,
    dense: bool,
) -> None:
    if dense:  # long runs of consecutive steps, which fill the stepped levels
        commits = [
            [(i * 7 + j, v) for j, (_, v) in enumerate(c)] * 3 for i, c in enumerate(commits)
        ]
    folder = Path(tempfile.mkdtemp(prefix="rollups-"))
    try:
        asyncio.run(_check_store(kind, folder, commits, points, start, end))
    finally:
        shutil.rmtree(folder, ignore_errors=True)


async def _check_store(
    kind: StoreKind,
    folder: Path,
    commits: list[list[tuple[int, float]]],
    points: int,
    start: int | None,
    end: int | None,
) -> None:
    store = make_store(kind, folder)
    async with Tracker(store) as tracker:
        run_id = await _run(tracker)
        for commit in commits:
            for step, value in commit:
                await tracker.log_metric(run_id, "m", step, value)
            await tracker.flush()
        series = await tracker.get_metrics(run_id, "m")
        buckets = await tracker.get_metrics_downsampled(
            run_id, "m", points=points, start=start, end=end
        )
        check_buckets(buckets, series, points, start, end)
        whole = await tracker.get_metrics_downsampled(run_id, "m", points=points)
        check_buckets(whole, series, points, None, None)
        between = await tracker.get_metrics(run_id, "m", start=start, end=end)
        want = [
            p
            for p in series
            if (start is None or p.step >= start) and (end is None or p.step <= end)
        ]
        assert_identical(between, want)
        report = await verify(store)
        assert report.ok, report.differences
        await rebuild(store)
        again = await tracker.get_metrics_downsampled(
            run_id, "m", points=points, start=start, end=end
        )
        assert_identical(again, buckets)


async def test_large_and_small_commits_into_the_same_buckets_merge_as_a_rebuild_does(
    tracker: Tracker,
) -> None:
    # Commits of 20,001 points carry hundreds of rollup rows each (PostgreSQL copies those
    # into a staging table and merges them in one statement); the 7-point commits between
    # carry a few (upserted one by one). Each commit starts inside a bucket that the one
    # before began, and rewrites a few of its steps with NaN and new extremes.
    run_id = await _run(tracker)
    step = 0
    for size in (20_001, 7, 20_001, 7, 20_001):
        first = step
        for i in range(size):
            tracker.log_metric_nowait(run_id, "m", step, math.sin(step / 500) + (i % 3))
            step += 1
        for back in (first - 1, first - 2):
            if back >= 0:
                tracker.log_metric_nowait(run_id, "m", back, -100.0 if back % 2 else math.nan)
        await tracker.flush()
    series = await tracker.get_metrics(run_id, "m")
    for points, start, end in ((1_000, None, None), (37, 5_000, 45_000), (5_000, 19_990, None)):
        buckets = await tracker.get_metrics_downsampled(
            run_id, "m", points=points, start=start, end=end
        )
        check_buckets(buckets, series, points, start, end)
    before = await tracker.get_metrics_downsampled(run_id, "m", points=1_000)
    report = await verify(tracker.store)
    assert report.ok, report.differences
    await rebuild(tracker.store)
    assert_identical(await tracker.get_metrics_downsampled(run_id, "m", points=1_000), before)


async def test_a_single_spike_among_many_points_is_kept(tracker: Tracker) -> None:
    run_id = await _run(tracker)
    for step in range(50_000):
        tracker.log_metric_nowait(run_id, "m", step, -5.0 if step == 37_777 else 1.0)
    buckets = await tracker.get_metrics_downsampled(run_id, "m", points=100)
    assert len(buckets) <= 100
    assert min(b.min for b in buckets if b.min is not None) == -5.0
    assert sum(b.count for b in buckets) == 50_000
    assert buckets[0].first_step == buckets[0].last_step == 0
    assert buckets[-1].last_step == 49_999


async def test_summaries_give_each_runs_last_value_min_max_and_count(tracker: Tracker) -> None:
    exp = await tracker.create_experiment("e")
    first = await tracker.create_run(exp)
    second = await tracker.create_run(exp)
    for step, value in [(3, 0.3), (1, 0.1), (2, float("nan")), (3, 0.35)]:
        await tracker.log_metric(first, "loss", step, value)
    await tracker.log_metric(first, "acc", 0, 0.5)
    summaries = await tracker.metric_summaries([second, first, "nope"])
    assert list(summaries) == [second, first]
    assert summaries[second] == {}
    assert list(summaries[first]) == ["acc", "loss"]
    loss = summaries[first]["loss"]
    assert (loss.last_step, loss.last, loss.min, loss.max, loss.count, loss.nonfinite) == (
        3,
        0.35,
        0.1,
        0.35,
        4,
        1,
    )
    only = await tracker.metric_summaries([first], keys=["acc"])
    assert list(only[first]) == ["acc"]


async def test_a_run_without_the_key_gives_no_buckets(tracker: Tracker) -> None:
    run_id = await _run(tracker)
    assert await tracker.get_metrics_downsampled(run_id, "missing") == []


async def test_bad_arguments_are_refused(tracker: Tracker) -> None:
    run_id = await _run(tracker)
    with pytest.raises(ValueError, match="points"):
        await tracker.get_metrics_downsampled(run_id, "m", points=1)
    with pytest.raises(ValueError, match="start"):
        await tracker.get_metrics_downsampled(run_id, "m", start=-1)


async def test_deleting_a_run_drops_its_rollups(tracker: Tracker) -> None:
    run_id = await _run(tracker)
    await tracker.log_metric(run_id, "m", 1, 1.0)
    await tracker.delete_run(run_id)
    await tracker.flush()
    assert await tracker.metric_summaries([run_id]) == {}
    report = await verify(tracker.store)
    assert report.ok, report.differences


async def test_a_format1_database_is_migrated_in_place_with_its_rollups(tmp_path: Path) -> None:
    """The committed format-1 file gains rollups on first open; verify then checks them."""
    import sqlite3

    path = tmp_path / "format1.db"
    shutil.copyfile(Path(__file__).parent / "data" / "format1.db", path)
    async with Tracker.open(path) as tracker:
        runs = await tracker.filter_runs(None, [])
        checked = 0
        for run in runs:
            for key in await tracker.list_metric_keys(run.id):
                series = await tracker.get_metrics(run.id, key)
                buckets = await tracker.get_metrics_downsampled(run.id, key, points=3)
                check_buckets(buckets, series, 3, None, None)
                checked += 1
        assert checked > 0
    with sqlite3.connect(path) as conn:
        version = conn.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
        rows = conn.execute("SELECT count(*) FROM rollups WHERE level = 0").fetchone()
    conn.close()
    assert version == (str(SCHEMA_VERSION),)
    assert rows[0] == checked
    report = await verify(path)
    assert report.ok, report.differences


async def test_series_appended_to_without_the_finer_levels_are_read_through_the_first_ones(
    tmp_path: Path,
) -> None:
    """A runjournal of schema 6 that still has the file open keeps only levels 0 to 3.

    Its points then miss the finer levels, so the FOLDED bucket no longer counts every
    point: reads fall back to the first format's levels and stay exact, verify() names the
    gap, and rebuild() closes it.
    """
    import sqlite3

    path = tmp_path / "stale.db"
    finer = f"level NOT IN (0, {', '.join(map(str, LEGACY_LADDER))})"
    async with Tracker.open(path) as tracker:
        run_id = await _run(tracker)
        for step in range(100_000):
            tracker.log_metric_nowait(run_id, "m", step, 1.0 / (step + 1))
        await tracker.flush()
        with sqlite3.connect(path) as conn:
            before = conn.execute(f"SELECT * FROM rollups WHERE {finer}").fetchall()
        conn.close()
        await tracker.log_metric(run_id, "m", 100_000, 9.0)
        await tracker.flush()
    with sqlite3.connect(path) as conn:
        # What a schema-6 writer's commit of that point leaves: levels 0 to 3 hold it, the
        # finer ones and FOLDED are as they were before it.
        conn.execute(f"DELETE FROM rollups WHERE {finer}")
        conn.executemany(f"INSERT INTO rollups VALUES ({', '.join('?' * 12)})", before)
    conn.close()
    async with Tracker.open(path) as tracker:
        series = await tracker.get_metrics(run_id, "m")
        buckets = await tracker.get_metrics_downsampled(run_id, "m", points=500)
        check_buckets(buckets, series, 500, None, None)
        assert (buckets[-1].last_step, buckets[-1].last) == (100_000, 9.0)
    report = await verify(path)
    assert not report.ok
    assert any(f"rollup {FOLDED}/0" in str(d) for d in report.differences), report.differences
    await rebuild(path)
    report = await verify(path)
    assert report.ok, report.differences
    async with Tracker.open(path) as tracker:
        rows = await tracker.store.metric_rollups(run_id, "m")
        assert {level for level, _, _ in rows} == set(range(FOLDED + 1))
        again = await tracker.get_metrics_downsampled(run_id, "m", points=500)
        check_buckets(again, series, 500, None, None)
