"""Contract: ``get_metric_arrays`` gives the series of ``get_metrics`` as three columns.

Every store answers it (the ``tracker`` fixture runs each test on each), and journals that
hold points the old way (``metrics.logged`` triples) answer it the same as chunks.
"""

from __future__ import annotations

import math
import random
import struct
from array import array
from pathlib import Path

import anyio.to_thread
import pytest

from runjournal import MetricArrays, MetricPoint, RunNotFound, Tracker, journal
from runjournal.chunks import encode_chunk
from runjournal.events import Event, MetricChunkLogged, MetricLogged, MetricsLogged
from runjournal.stores.base import NewEntry


async def _run(tracker: Tracker) -> str:
    return await tracker.create_run(await tracker.create_experiment("e"))


def _points(arrays: MetricArrays) -> list[MetricPoint]:
    return [MetricPoint(*p) for p in zip(*arrays, strict=True)]


def _bits(column: array[float]) -> bytes:
    return column.tobytes()


async def test_columns_are_the_points_of_get_metrics(tracker: Tracker) -> None:
    run_id = await _run(tracker)
    for step in [5, 1, 3, 0, 4, 2, 3]:
        await tracker.log_metric(run_id, "loss", step, step / 10, timestamp=1e9 + step)
    arrays = await tracker.get_metric_arrays(run_id, "loss")
    assert isinstance(arrays, MetricArrays)
    assert [c.typecode for c in arrays] == ["q", "d", "d"]
    assert _points(arrays) == await tracker.get_metrics(run_id, "loss")
    assert list(arrays.step) == [0, 1, 2, 3, 3, 4, 5]


async def test_equal_steps_keep_their_logging_order_across_batches(tracker: Tracker) -> None:
    run_id = await _run(tracker)
    await tracker.log_metric(run_id, "loss", 1, 0.5)
    await tracker.log_metric(run_id, "loss", 0, 9.0)
    await tracker.flush()
    await tracker.log_metric(run_id, "loss", 1, 0.4)
    await tracker.flush()
    await tracker.log_metric(run_id, "loss", 0, 8.0)
    arrays = await tracker.get_metric_arrays(run_id, "loss")
    assert list(zip(arrays.step, arrays.value, strict=True)) == [
        (0, 9.0),
        (0, 8.0),
        (1, 0.5),
        (1, 0.4),
    ]


async def test_batches_in_step_order_read_in_logging_order(tracker: Tracker) -> None:
    """The common case: no sort, and the batches' seams are where order is checked."""
    run_id = await _run(tracker)
    for batch in range(4):
        for step in range(batch * 100, batch * 100 + 100):
            await tracker.log_metric(run_id, "loss", step, step * 0.5)
        await tracker.flush()
    arrays = await tracker.get_metric_arrays(run_id, "loss")
    assert list(arrays.step) == list(range(400))
    assert list(arrays.value) == [s * 0.5 for s in range(400)]


async def test_values_and_timestamps_keep_their_bits(tracker: Tracker) -> None:
    run_id = await _run(tracker)
    values = [math.nan, -math.inf, math.inf, -0.0, 5e-324, 1.7976931348623157e308, 0.1]
    stamps = [1_700_000_000.123456789 + i * 1e-7 for i in range(len(values))]
    for step, (value, stamp) in enumerate(zip(values, stamps, strict=True)):
        await tracker.log_metric(run_id, "weird", step, value, timestamp=stamp)
    arrays = await tracker.get_metric_arrays(run_id, "weird")
    assert _bits(arrays.value) == _bits(array("d", values))
    assert list(arrays.timestamp) == stamps


async def test_a_long_random_series_matches_get_metrics(tracker: Tracker) -> None:
    rng = random.Random(7)
    run_id = await _run(tracker)
    for _ in range(3):
        for _ in range(700):
            value = struct.unpack("<d", rng.randbytes(8))[0]
            await tracker.log_metric(run_id, "r", rng.randrange(50), value)
        await tracker.flush()
    arrays = await tracker.get_metric_arrays(run_id, "r")
    points = await tracker.get_metrics(run_id, "r")
    assert len(points) == 2100
    assert [p.step for p in points] == list(arrays.step)
    assert _bits(array("d", [p.value for p in points])) == _bits(arrays.value)


async def test_each_call_returns_new_arrays(tracker: Tracker) -> None:
    run_id = await _run(tracker)
    await tracker.log_metric(run_id, "loss", 0, 1.0)
    first = await tracker.get_metric_arrays(run_id, "loss")
    first.value[0] = 42.0
    first.step.append(9)
    again = await tracker.get_metric_arrays(run_id, "loss")
    assert (list(again.step), list(again.value)) == ([0], [1.0])


async def test_an_unknown_key_gives_empty_columns(tracker: Tracker) -> None:
    run_id = await _run(tracker)
    arrays = await tracker.get_metric_arrays(run_id, "never")
    assert [(c.typecode, len(c)) for c in arrays] == [("q", 0), ("d", 0), ("d", 0)]


async def test_an_unknown_run_is_refused(tracker: Tracker) -> None:
    with pytest.raises(RunNotFound):
        await tracker.get_metric_arrays("01J00000000000000000000000", "loss")


async def test_old_triples_and_chunks_read_as_one_series(tracker: Tracker) -> None:
    """A journal written before chunks holds ``metrics.logged`` triples; they still read."""
    run_id = await _run(tracker)
    old = MetricsLogged(run_id, "loss", [MetricPoint(2, 0.2, 10.0), MetricPoint(0, 0.0, 11.0)], 11)
    single = MetricLogged(run_id, "loss", 3, 0.3, 12.0)
    chunk = MetricChunkLogged(run_id, "loss", encode_chunk([1, 4], [0.1, 0.4], [13.0, 14.0]), 14)
    await tracker.flush()
    events: list[Event] = [old, single, chunk]
    entries = [NewEntry("elsewhere", seq, event, 14.0) for seq, event in enumerate(events)]
    result = await anyio.to_thread.run_sync(tracker.store.append, entries)
    assert result.appended == 3
    want = [
        MetricPoint(0, 0.0, 11.0),
        MetricPoint(1, 0.1, 13.0),
        MetricPoint(2, 0.2, 10.0),
        MetricPoint(3, 0.3, 12.0),
        MetricPoint(4, 0.4, 14.0),
    ]
    assert await tracker.get_metrics(run_id, "loss") == want
    assert _points(await tracker.get_metric_arrays(run_id, "loss")) == want
    [summary] = (await tracker.store.metric_summaries([run_id]))[run_id].values()
    assert (summary.first_step, summary.last_step, summary.count) == (0, 4, 5)
    assert (summary.min, summary.max, summary.first, summary.last) == (0.0, 0.4, 0.0, 0.4)


async def test_chunks_export_and_import_bit_for_bit(tracker: Tracker, tmp_path: Path) -> None:
    """An event-log file carries each chunk entry's body as it is; the copy answers the same."""
    run_id = await _run(tracker)
    values = [math.nan, -0.0, 1e-310, 0.25]
    for step, value in enumerate(values * 50):
        await tracker.log_metric(run_id, "loss", step % 7, value, timestamp=1e9 + step / 3)
    await tracker.flush()
    exported = await journal.export_events(tracker.store, tmp_path / "log.rjlog")
    assert exported.events >= 200
    async with Tracker.open(tmp_path / "copy.db") as copy:
        result = await journal.import_events(copy.store, tmp_path / "log.rjlog")
        assert result.rejected == 0
        want = await tracker.get_metric_arrays(run_id, "loss")
        got = await copy.get_metric_arrays(run_id, "loss")
        assert list(got.step) == list(want.step)
        assert _bits(got.value) == _bits(want.value)
        assert _bits(got.timestamp) == _bits(want.timestamp)
        assert len(got.step) == 200
        assert (await journal.verify(copy.store)).ok
