"""Case 10, dashboard: ``/api/series`` of long series and ``/api/runs`` over many runs.

Requests go through the real app (guard, Litestar, handlers, JSON encoding) over
httpx's ASGI transport, so the time is the server's, without a socket. Each is
measured against a baseline taken in the same run on the same database:

- ``/api/series`` of one and of ten 1,000,000-point series at ``points=1000``,
  against reading the same series whole with ``get_metrics`` and bucketing it in
  Python (what a dashboard without rollups must do);
- ``/api/runs``' first page (100 runs, with params and 5 metric summaries each)
  over 10,000 runs × 20 params × 5 metrics, against the one ``filter_runs`` call
  that it starts with.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from typing import Any

import httpx

from benchmarks._harness import (
    Case,
    CaseResult,
    Context,
    Row,
    at_most,
    median,
    remove_db,
    run_async,
    spread,
)
from benchmarks.case_read import params_for
from runjournal import Tracker
from runjournal.ui import create_app

__all__ = ["CASE"]

ONE_SERIES_TARGET_S = 0.020
TEN_SERIES_TARGET_S = 0.100
RUNS_PAGE_TARGET_S = 0.100
REQUESTS = 7
METRICS = ("loss", "accuracy", "lr", "grad_norm", "throughput")


async def _timed(call: Callable[[], Awaitable[Any]]) -> list[float]:
    await call()  # warm: the read connection, Litestar's first request
    times = []
    for _ in range(REQUESTS):
        start = time.perf_counter()
        await call()
        times.append(time.perf_counter() - start)
    return times


def _client(tracker: Tracker) -> httpx.AsyncClient:
    transport = httpx.ASGITransport(app=create_app(tracker))
    return httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1:8765")


def _bucket_in_python(steps: list[int], values: list[float], points: int) -> int:
    """The baseline's bucketing: min, max and last per equal-width step bucket."""
    width = max(1, (steps[-1] - steps[0] + 1) // points + 1)
    buckets: dict[int, list[float]] = {}
    for step, value in zip(steps, values, strict=True):
        cell = buckets.get(step // width)
        if cell is None:
            buckets[step // width] = [value, value, value]
        else:
            cell[0] = min(cell[0], value)
            cell[1] = max(cell[1], value)
            cell[2] = value
    return len(buckets)


async def _series(context: Context, result: CaseResult, runs: int, target: float) -> None:
    points = context.config.n(1_000_000, 100_000)
    path = context.path(f"ui-series-{runs}.db")
    remove_db(path)
    async with Tracker.open(path) as tracker:
        experiment = await tracker.create_experiment("ui")
        run_ids = [await tracker.create_run(experiment, name=f"r{i}") for i in range(runs)]
        start = time.perf_counter()
        for run_id in run_ids:
            log = tracker.log_metric_nowait
            for step in range(points):
                log(run_id, "loss", step, 1.0 / (step + 1) if step != 424_242 else 50.0)
        await tracker.flush()
        logged = time.perf_counter() - start
        params: dict[str, Any] = {"run": run_ids, "key": "loss", "points": 1000}
        async with _client(tracker) as client:
            response = await client.get("/api/series", params=params)
            body = response.json()
            for series in body["series"]:
                if series["total"] != points or len(series["step"]) > 1000 or series["exact"]:
                    raise AssertionError(f"/api/series answered {series['total']} points")
                if points > 424_242 and max(series["max"]) != 50.0:
                    raise AssertionError("the spike is missing from the downsampled series")
            served = await _timed(lambda: client.get("/api/series", params=params))

        async def baseline() -> None:
            for run_id in run_ids:
                series = await tracker.get_metrics(run_id, "loss")
                _bucket_in_python([p.step for p in series], [p.value for p in series], 1000)

        base = await _timed(baseline) if runs == 1 else None
        zoom: dict[str, Any] = {
            "run": run_ids,
            "key": "loss",
            "points": 1000,
            "start": 500,
            "end": 800,
        }
        async with _client(tracker) as client:
            zoomed = await _timed(lambda: client.get("/api/series", params=zoom))
    label = "one" if runs == 1 else f"{runs}"
    result.rows.append(
        Row(
            f"/api/series, {label} {points:,}-point series, points=1000",
            median(served) * 1e3,
            "ms",
            at_most(target * 1e3),
            spread(served, "s"),
        )
    )
    if base is not None:
        result.rows.append(
            Row(
                "baseline: get_metrics of that series + bucketing in Python",
                median(base) * 1e3,
                "ms",
                note=f"/api/series is {median(base) / median(served):,.0f}× faster",
            )
        )
    result.rows.append(
        Row(
            f"/api/series, {label} series, a 301-step zoom (exact points)",
            median(zoomed) * 1e3,
            "ms",
            note=spread(zoomed, "s"),
        )
    )
    result.notes.append(
        f"logging {runs} × {points:,} points (rollups maintained by the writer) took "
        f"{logged:.1f} s: {runs * points / logged:,.0f} points/s"
    )


async def _runs(context: Context, result: CaseResult) -> None:
    runs = context.config.n(10_000, 1_000)
    path = context.path("ui-runs.db")
    remove_db(path)
    async with Tracker.open(path) as tracker:
        experiment = await tracker.create_experiment("sweep")
        for i in range(runs):
            run_id = await tracker.create_run(experiment, name=f"trial-{i}")
            tracker.log_params_nowait(run_id, params_for(i))
            for step in range(10):
                for key in METRICS:
                    tracker.log_metric_nowait(run_id, key, step, (i + step) / 100)
        await tracker.flush()
        async with _client(tracker) as client:
            page = (await client.get("/api/runs")).json()
            if page["total"] != runs or len(page["runs"]) != 100:
                raise AssertionError(f"/api/runs: {page['total']} runs, {len(page['runs'])}")
            if set(page["runs"][0]["metrics"]) != set(METRICS):
                raise AssertionError("/api/runs: the metric summaries are missing")
            first = await _timed(lambda: client.get("/api/runs"))
            sorted_by_metric = await _timed(
                lambda: client.get("/api/runs", params={"sort": "metric:loss", "desc": "true"})
            )
        base = await _timed(lambda: tracker.filter_runs(None, []))
    result.rows += [
        Row(
            f"/api/runs first page, {runs:,} runs × 20 params × 5 metrics",
            median(first) * 1e3,
            "ms",
            at_most(RUNS_PAGE_TARGET_S * 1e3),
            f"{median(first) / median(base):.2f}× the baseline; {spread(first, 's')}",
        ),
        Row(
            "the same, sorted by a metric's last value",
            median(sorted_by_metric) * 1e3,
            "ms",
            note=f"{median(sorted_by_metric) / median(base):.2f}× the baseline",
        ),
        Row(
            f"baseline: filter_runs(None, []) of the {runs:,} runs",
            median(base) * 1e3,
            "ms",
        ),
    ]


def run(context: Context) -> CaseResult:
    points = context.config.n(1_000_000, 100_000)
    runs = context.config.n(10_000, 1_000)
    result = CaseResult(
        10,
        "Dashboard",
        f"/api/series of 1 and of 10 {points:,}-point series at points=1000 (and a zoom), and "
        f"/api/runs' first page over {runs:,} runs × 20 params × 5 metrics, through the app "
        f"over httpx's ASGI transport; median of {REQUESTS} requests after a warm-up; "
        "baselines measured in the same run",
    )
    run_async(_series(context, result, 1, ONE_SERIES_TARGET_S))
    run_async(_series(context, result, 10, TEN_SERIES_TARGET_S))
    run_async(_runs(context, result))
    return result


CASE = Case("ui", 10, "Dashboard", run)
