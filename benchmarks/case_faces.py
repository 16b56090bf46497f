"""Case 9, the faces people type: what one logging call costs through each, in the same run.

The async face (``await tracker.log_metric``), its ``*_nowait`` twin, the synchronous
``SyncTracker.log_metric``, the run handle's ``run.log_metric`` (its step counter) and
``rj.log`` are timed call by call on the workload of case 1 (10 keys × N steps, one point
per call), each on a fresh database, the writer committing meanwhile. The synchronous
logging calls are bound straight to the ``*_nowait`` core, so they should cost the same.
Then the run context: how long capturing the ``rj.*`` tags takes at run start.
"""

from __future__ import annotations

import time
from array import array
from collections.abc import Callable
from pathlib import Path

import runjournal as rj
from benchmarks._harness import (
    KEYS,
    Case,
    CaseResult,
    Context,
    Row,
    at_most,
    median,
    percentile,
    run_async,
    spread,
    tracked_run,
)
from benchmarks.case_caller_cost import floor_ns
from runjournal import SyncTracker
from runjournal.context import capture

__all__ = ["CAPTURE_TARGET_MS", "CASE", "MEDIAN_TARGET_US", "capture_ms", "time_calls"]

MEDIAN_TARGET_US = 1.0
CAPTURE_TARGET_MS = 50.0


def time_calls(log: Callable[[str, int, float], object], steps: int) -> tuple[float, float]:
    """Median and p99 (µs) of ``log(key, step, value)`` over ``len(KEYS) × steps`` calls."""
    calls = len(KEYS) * steps
    latencies = array("q", bytes(8 * calls))
    clock = time.perf_counter_ns
    i = 0
    for step in range(steps):
        value = 1.0 / (step + 1)
        for key in KEYS:
            t0 = clock()
            log(key, step, value)
            latencies[i] = clock() - t0
            i += 1
    ordered = sorted(latencies)
    return percentile(ordered, 50) / 1e3, percentile(ordered, 99) / 1e3


async def _async_face(path: Path, steps: int) -> dict[str, tuple[float, float]]:
    results = {}
    async with tracked_run(path) as (tracker, run_id):
        calls = len(KEYS) * steps
        latencies = array("q", bytes(8 * calls))
        clock = time.perf_counter_ns
        log = tracker.log_metric
        i = 0
        for step in range(steps):
            value = 1.0 / (step + 1)
            for key in KEYS:
                t0 = clock()
                await log(run_id, key, step, value)
                latencies[i] = clock() - t0
                i += 1
        ordered = sorted(latencies)
        results["await tracker.log_metric"] = (
            percentile(ordered, 50) / 1e3,
            percentile(ordered, 99) / 1e3,
        )
        nowait = tracker.log_metric_nowait
        results["tracker.log_metric_nowait"] = time_calls(
            lambda key, step, value: nowait(run_id, key, step, value), steps
        )
        await tracker.flush()
    return results


def _sync_faces(context: Context, steps: int) -> dict[str, tuple[float, float]]:
    results = {}
    with SyncTracker.open(context.path("faces-sync.db")) as tracker:
        with tracker.run("bench", capture=False) as run:
            log_metric = tracker.log_metric
            run_id = run.id
            results["SyncTracker.log_metric"] = time_calls(
                lambda key, step, value: log_metric(run_id, key, step, value), steps
            )
        with tracker.run("bench", capture=False) as run:
            handle_log_metric = run.log_metric
            results["SyncRun.log_metric (step given)"] = time_calls(
                lambda key, step, value: handle_log_metric(key, value, step), steps
            )
        with tracker.run("bench", capture=False) as run:
            handle_log = run.log
            results["SyncRun.log({k: v}) (auto step)"] = time_calls(
                lambda key, step, value: handle_log({key: value}), steps
            )
    rj.init(experiment="bench", db=context.path("faces-init.db"), capture=False)
    try:
        rj_log = rj.log
        results["rj.log({k: v})"] = time_calls(lambda key, step, value: rj_log({key: value}), steps)
    finally:
        rj.finish()
    return results


def capture_ms(times: int) -> list[float]:
    """How long each of ``times`` context captures took, in milliseconds."""
    samples = []
    for _ in range(times):
        t0 = time.perf_counter()
        capture()
        samples.append((time.perf_counter() - t0) * 1e3)
    return samples


def run(context: Context) -> CaseResult:
    steps = context.config.n(20_000, 2_000)
    result = CaseResult(
        9,
        "The faces people type",
        f"{len(KEYS) * steps:,} calls per face ({len(KEYS)} keys × {steps:,} steps), each timed "
        "alone, one point per call; then 20 context captures in a git work tree; "
        + context.config.rounds,
    )
    rounds: dict[str, list[tuple[float, float]]] = {}
    for _ in range(context.config.repeats):
        measured = run_async(_async_face(context.path("faces-async.db"), steps))
        measured |= _sync_faces(context, steps)
        for name, value in measured.items():
            rounds.setdefault(name, []).append(value)
    baseline = median(m for m, _ in rounds["await tracker.log_metric"])
    for name, values in rounds.items():
        medians = [m for m, _ in values]
        result.rows.append(
            Row(
                f"{name}: median",
                median(medians),
                "µs",
                at_most(MEDIAN_TARGET_US),
                spread(medians, "µs"),
            )
        )
        result.rows.append(Row(f"{name}: p99", median(p for _, p in values), "µs"))
        if name != "await tracker.log_metric":
            result.rows.append(
                Row(f"{name} ÷ await log_metric, medians", median(medians) / baseline, "×")
            )
    floor = floor_ns(KEYS, steps) / 1e3
    result.rows.append(
        Row(
            "floor: build the event and append it to a deque, nothing else",
            floor,
            "µs",
            note=f"median, timed the same way (case 1); await log_metric costs {baseline / floor:.2f}×",
        )
    )
    samples = sorted(capture_ms(20))
    result.rows.append(
        Row(
            "context capture: median",
            median(samples),
            "ms",
            at_most(CAPTURE_TARGET_MS),
            "one git status (porcelain v2) included",
        )
    )
    result.rows.append(Row("context capture: max", samples[-1], "ms", at_most(CAPTURE_TARGET_MS)))
    return result


CASE = Case("faces", 9, "The faces people type", run)
