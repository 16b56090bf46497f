"""Contract: metric series keep every point, in step order, exactly as logged."""

from __future__ import annotations

import math
import time

import pytest

from runjournal import MetricPoint, Tracker


async def _run(tracker: Tracker) -> str:
    return await tracker.create_run(await tracker.create_experiment("e"))


async def test_points_come_back_ordered_by_step(tracker: Tracker) -> None:
    run_id = await _run(tracker)
    for step in [5, 1, 3, 0, 4, 2]:
        await tracker.log_metric(run_id, "loss", step, step / 10)
    points = await tracker.get_metrics(run_id, "loss")
    assert [p.step for p in points] == [0, 1, 2, 3, 4, 5]
    assert [p.value for p in points] == [0.0, 0.1, 0.2, 0.3, 0.4, 0.5]


async def test_duplicate_steps_are_kept_in_logging_order(tracker: Tracker) -> None:
    run_id = await _run(tracker)
    await tracker.log_metric(run_id, "loss", 1, 0.5)
    await tracker.log_metric(run_id, "loss", 0, 9.0)
    await tracker.log_metric(run_id, "loss", 1, 0.4)
    await tracker.flush()  # the third point lands in another journal entry
    await tracker.log_metric(run_id, "loss", 1, 0.3)
    points = await tracker.get_metrics(run_id, "loss")
    assert [(p.step, p.value) for p in points] == [(0, 9.0), (1, 0.5), (1, 0.4), (1, 0.3)]


async def test_timestamps_default_to_now_and_explicit_ones_are_kept(tracker: Tracker) -> None:
    run_id = await _run(tracker)
    before = time.time()
    await tracker.log_metric(run_id, "loss", 0, 1.0)
    after = time.time()
    await tracker.log_metric(run_id, "loss", 1, 1.0, timestamp=1_700_000_000.25)
    await tracker.log_metric(run_id, "loss", 2, 1.0, timestamp=1_700_000_001)
    first, second, third = await tracker.get_metrics(run_id, "loss")
    assert before <= first.timestamp <= after
    assert second.timestamp == 1_700_000_000.25
    assert third.timestamp == 1_700_000_001.0 and type(third.timestamp) is float


async def test_nan_and_infinities_are_stored_faithfully(tracker: Tracker) -> None:
    run_id = await _run(tracker)
    for step, value in enumerate([float("nan"), float("inf"), float("-inf"), -0.0, 5e-324]):
        await tracker.log_metric(run_id, "weird", step, value)
    values = [p.value for p in await tracker.get_metrics(run_id, "weird")]
    assert math.isnan(values[0])
    assert values[1:3] == [math.inf, -math.inf]
    assert math.copysign(1.0, values[3]) == -1.0
    assert values[4] == 5e-324


async def test_int_values_become_floats(tracker: Tracker) -> None:
    run_id = await _run(tracker)
    await tracker.log_metric(run_id, "count", 0, 3)
    [point] = await tracker.get_metrics(run_id, "count")
    assert point == MetricPoint(step=0, value=3.0, timestamp=point.timestamp)
    assert type(point.value) is float


@pytest.mark.parametrize(
    ("step", "value", "error", "message"),
    [
        (-1, 1.0, ValueError, "step"),
        (2**63, 1.0, ValueError, "step"),
        (1.0, 1.0, TypeError, "step must be an int"),
        ("1", 1.0, TypeError, "step"),
        (True, 1.0, TypeError, "step"),
        (0, True, TypeError, "bool"),
        (0, "1.0", TypeError, "str"),
        (0, None, TypeError, "NoneType"),
        (0, 10**400, ValueError, "too large"),
    ],
)
async def test_bad_points_are_refused_at_the_call(
    tracker: Tracker, step: object, value: object, error: type[Exception], message: str
) -> None:
    run_id = await _run(tracker)
    with pytest.raises(error, match=message):
        await tracker.log_metric(run_id, "loss", step, value)  # type: ignore[arg-type]
    with pytest.raises(error, match=message):
        tracker.log_metric_nowait(run_id, "loss", step, value)  # type: ignore[arg-type]
    with pytest.raises(error, match=message):
        await tracker.log_metrics(run_id, {"ok": 1.0, "loss": value}, step)  # type: ignore[dict-item, arg-type]
    assert await tracker.list_metric_keys(run_id) == []


@pytest.mark.parametrize(
    ("key", "error"), [("", ValueError), (3, TypeError), ("a\x00", ValueError)]
)
async def test_bad_metric_keys_are_refused(
    tracker: Tracker, key: object, error: type[Exception]
) -> None:
    run_id = await _run(tracker)
    with pytest.raises(error, match="key"):
        await tracker.log_metric(run_id, key, 0, 1.0)  # type: ignore[arg-type]
    assert await tracker.list_metric_keys(run_id) == []


async def test_bad_timestamps_are_refused(tracker: Tracker) -> None:
    run_id = await _run(tracker)
    with pytest.raises(TypeError, match="timestamp"):
        await tracker.log_metric(run_id, "loss", 0, 1.0, timestamp="now")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="timestamp"):
        await tracker.log_metric(run_id, "loss", 0, 1.0, timestamp=float("nan"))


async def test_an_unknown_key_gives_an_empty_series(tracker: Tracker) -> None:
    run_id = await _run(tracker)
    await tracker.log_metric(run_id, "loss", 0, 1.0)
    assert await tracker.get_metrics(run_id, "accuracy") == []


async def test_log_metrics_records_every_key_at_one_step(tracker: Tracker) -> None:
    run_id = await _run(tracker)
    await tracker.log_metrics(run_id, {"loss": 0.5, "acc": 0.9}, 7, timestamp=123.0)
    tracker.log_metrics_nowait(run_id, {"loss": 0.25}, 8)
    assert await tracker.list_metric_keys(run_id) == ["acc", "loss"]
    assert await tracker.get_metrics(run_id, "acc") == [MetricPoint(7, 0.9, 123.0)]
    assert [(p.step, p.value) for p in await tracker.get_metrics(run_id, "loss")] == [
        (7, 0.5),
        (8, 0.25),
    ]


async def test_series_of_runs_and_keys_are_independent(tracker: Tracker) -> None:
    exp_id = await tracker.create_experiment("e")
    a, b = await tracker.create_run(exp_id), await tracker.create_run(exp_id)
    for step in range(100):
        await tracker.log_metric(a, "loss", step, 1.0)
        await tracker.log_metric(b, "loss", step, 2.0)
        await tracker.log_metric(a, "acc", step, 3.0)
    assert {p.value for p in await tracker.get_metrics(a, "loss")} == {1.0}
    assert {p.value for p in await tracker.get_metrics(b, "loss")} == {2.0}
    assert len(await tracker.get_metrics(a, "acc")) == 100
    assert await tracker.list_metric_keys(b) == ["loss"]


async def test_a_long_series_spans_many_batches(tracker: Tracker) -> None:
    run_id = await _run(tracker)
    for step in range(50_000):
        tracker.log_metric_nowait(run_id, "loss", step, step * 0.5)
        if step % 20_000 == 0:
            await tracker.flush()
    points = await tracker.get_metrics(run_id, "loss")
    assert len(points) == 50_000
    assert all(p.step == i and p.value == i * 0.5 for i, p in enumerate(points))
