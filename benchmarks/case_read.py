"""Case 3, read: a long series back, and listing and filtering many runs.

The series is one key of one run, logged and committed first. The runs are 10,000 runs of one
experiment with 20 params each, drawn from a seeded generator so that the expected match of
every filter is known and checked. Each query is timed on a tracker with nothing pending
(the read-your-writes barrier is then free), several times; the median is reported.

Beside ``get_metrics``, two floors from its own columns: building the MetricPoint objects
alone, and building plain tuples (the cheapest object per point CPython makes).
"""

from __future__ import annotations

import dataclasses
import functools
import random
import sqlite3
import time
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any

import anyio.to_thread

from benchmarks._harness import (
    Case,
    CaseResult,
    Context,
    Row,
    at_most,
    log_points,
    median,
    run_async,
    spread,
    tracked_run,
)
from runjournal import FilterOp, MetricPoint, ParamFilter, Run, Tracker
from runjournal.stores.sqlite.filters import select_matching

__all__ = ["CASE", "params_for"]

SERIES_TARGET_S = 0.3
ARRAYS_TARGET_S = 0.030
FILTER_TARGET_S = 0.050
LIST_RUNS_TARGET_S = 0.025
WIDE_FILTER_TARGET_S = 0.100
READS = 5

OPTIMIZERS = ("adamw", "adam", "sgd", "lion")
MODELS = ("gpt2-small", "gpt2-medium", "llama-7b", "llama-13b", "mistral-7b", "t5-base",
          "bert-base", "vit-b16")  # fmt: skip


def params_for(i: int) -> dict[str, Any]:
    """The 20 params of run ``i`` of the sweep."""
    rng = random.Random(i)
    return {
        "seed": i,
        "learning_rate": 10 ** rng.uniform(-5, -2),
        "batch_size": rng.choice((16, 32, 64, 128, 256)),
        "optimizer": rng.choice(OPTIMIZERS),
        "model": rng.choice(MODELS),
        "num_layers": rng.randint(2, 48),
        "hidden_size": rng.choice((256, 512, 768, 1024, 2048)),
        "dropout": round(rng.uniform(0.0, 0.5), 3),
        "weight_decay": rng.choice((0.0, 0.01, 0.1)),
        "warmup_steps": rng.randint(0, 5000),
        "epochs": rng.randint(1, 100),
        "scheduler": rng.choice(("cosine", "linear", "constant")),
        "grad_clip": rng.choice((0.5, 1.0, 5.0)),
        "precision": rng.choice(("fp32", "bf16", "fp16")),
        "dataset": rng.choice(("wikitext", "c4", "openwebtext", "pile")),
        "label_smoothing": rng.choice((0.0, 0.1)),
        "beta1": 0.9,
        "beta2": rng.choice((0.95, 0.999)),
        "eps": 1e-8,
        "notes": f"sweep {i // 1000} trial {i}",
    }


@dataclasses.dataclass(frozen=True, slots=True)
class Query:
    """A filter_runs query, with the same condition in Python to know the expected answer."""

    name: str
    filters: tuple[ParamFilter, ...]
    expect: Callable[[dict[str, Any]], bool]
    judged: bool = True


def _queries(runs: int) -> list[Query]:
    needle = runs * 4242 // 10_000
    return [
        Query(
            "learning_rate < 1e-4 and optimizer = adamw and batch_size = 64",
            (
                ParamFilter("learning_rate", FilterOp.LT, 1e-4),
                ParamFilter("optimizer", FilterOp.EQ, "adamw"),
                ParamFilter("batch_size", FilterOp.EQ, 64),
            ),
            lambda p: (
                p["learning_rate"] < 1e-4 and p["optimizer"] == "adamw" and p["batch_size"] == 64
            ),
        ),
        Query(
            "model starts with llama and num_layers >= 40 and dataset = c4",
            (
                ParamFilter("model", FilterOp.STARTS_WITH, "llama"),
                ParamFilter("num_layers", FilterOp.GTE, 40),
                ParamFilter("dataset", FilterOp.EQ, "c4"),
            ),
            lambda p: (
                p["model"].startswith("llama") and p["num_layers"] >= 40 and p["dataset"] == "c4"
            ),
        ),
        Query(
            f"seed = {needle} (one run)",
            (ParamFilter("seed", FilterOp.EQ, needle),),
            lambda p: p["seed"] == needle,
        ),
        Query(
            "notes contains 'trial 42' (substring)",
            (ParamFilter("notes", FilterOp.CONTAINS, "trial 42"),),
            lambda p: "trial 42" in p["notes"],
        ),
        Query(
            "dropout >= 0 (every run; not selective)",
            (ParamFilter("dropout", FilterOp.GTE, 0.0),),
            lambda p: p["dropout"] >= 0.0,
            judged=False,
        ),
    ]


async def _timed(call: Callable[[], Awaitable[Sequence[Any]]]) -> tuple[list[float], int]:
    times: list[float] = []
    found = 0
    for _ in range(READS):
        start = time.perf_counter()
        found = len(await call())
        times.append(time.perf_counter() - start)
    return times, found


def _points(*columns: Sequence[Any]) -> list[MetricPoint]:
    return list(map(MetricPoint, *columns))


def _tuples(*columns: Sequence[Any]) -> list[tuple[Any, ...]]:
    return list(zip(*columns, strict=True))


def _timed_sync(call: Callable[[], Sequence[Any]]) -> list[float]:
    times: list[float] = []
    for _ in range(READS):
        start = time.perf_counter()
        call()
        times.append(time.perf_counter() - start)
    return times


async def _series(context: Context, result: CaseResult) -> None:
    points = context.config.n(1_000_000, 100_000)
    path = context.path("read-series.db")
    async with tracked_run(path) as (tracker, run_id):
        await log_points(tracker, run_id, ("loss",), points, "nowait")
        await tracker.flush()
        times, found = await _timed(lambda: tracker.get_metrics(run_id, "loss"))
        series = await tracker.get_metrics(run_id, "loss")
        array_times, _ = await _timed(lambda: tracker.get_metric_arrays(run_id, "loss"))
        arrays = await tracker.get_metric_arrays(run_id, "loss")
    if found != points or [p.step for p in series] != list(range(points)):
        raise AssertionError(f"get_metrics returned {found} points, expected {points} in order")
    if arrays.step.tolist() != [p.step for p in series] or arrays.value.tolist() != [
        p.value for p in series
    ]:
        raise AssertionError("get_metric_arrays differs from get_metrics")
    # Floors: whatever a get_metrics does, it hands back one MetricPoint per point, and
    # Python builds no object per point faster than zip builds tuples.
    columns = (arrays.step, arrays.value, arrays.timestamp)
    build_times = _timed_sync(functools.partial(_points, *columns))
    tuple_times = _timed_sync(functools.partial(_tuples, *columns))
    del series, arrays, columns
    async with Tracker.open(path) as fresh:
        start = time.perf_counter()
        await fresh.get_metrics(run_id, "loss")
        first = time.perf_counter() - start
    result.rows += [
        Row(
            f"get_metrics, {points:,}-point series",
            median(times),
            "s",
            at_most(SERIES_TARGET_S),
            spread(times, "s"),
        ),
        Row(
            "the same, first call of a freshly opened tracker",
            first,
            "s",
            note="includes opening the read connection",
        ),
        Row(
            f"get_metric_arrays, the same {points:,}-point series",
            median(array_times),
            "s",
            at_most(ARRAYS_TARGET_S),
            spread(array_times, "s"),
        ),
        Row("get_metrics ÷ get_metric_arrays", median(times) / median(array_times), "×"),
        Row(
            f"floor: {points:,} MetricPoint objects built from those arrays, nothing read",
            median(build_times),
            "s",
            note=f"get_metrics is {median(times) / median(build_times):.2f}× this",
        ),
        Row(
            f"floor: {points:,} plain tuples from the same arrays (zip)",
            median(tuple_times),
            "s",
            note="no object per point is built faster in CPython",
        ),
    ]


async def _runs(context: Context, result: CaseResult) -> None:
    runs = context.config.n(10_000, 1_000)
    path = context.path("read-runs.db")
    all_params = [params_for(i) for i in range(runs)]
    async with Tracker.open(path) as tracker:
        experiment_id = await tracker.create_experiment("sweep")
        start = time.perf_counter()
        for i, params in enumerate(all_params):
            run_id = await tracker.create_run(experiment_id, name=f"trial-{i}")
            await tracker.log_params(run_id, params)
        await tracker.flush()
        built = time.perf_counter() - start
        times, found = await _timed(lambda: tracker.list_runs(experiment_id))
        if found != runs:
            raise AssertionError(f"list_runs returned {found} runs, expected {runs}")
        base, _ = await _timed(functools.partial(_fetch_rows, path))
        result.rows += [
            Row(
                f"list_runs, {runs:,} runs × 20 params",
                median(times) * 1e3,
                "ms",
                at_most(LIST_RUNS_TARGET_S * 1e3),
                f"{median(times) / median(base):.2f}× the baseline; {spread(times, 's')}",
            ),
            Row(
                "baseline: the same rows fetched with sqlite3, nothing decoded",
                median(base) * 1e3,
                "ms",
            ),
        ]
        for query in _queries(runs):
            expected = sum(query.expect(p) for p in all_params)
            for scope, label in ((experiment_id, "experiment"), (None, "all")):
                if scope is None and not query.judged:
                    continue
                times, found = await _timed(
                    functools.partial(tracker.filter_runs, scope, query.filters)
                )
                if found != expected:
                    raise AssertionError(f"{query.name}: {found} runs, expected {expected}")
                result.rows.append(
                    Row(
                        f"filter_runs ({label}): {query.name}",
                        median(times) * 1e3,
                        "ms",
                        at_most(FILTER_TARGET_S * 1e3) if query.judged else None,
                        f"{found:,} runs match",
                    )
                )
    result.notes.append(
        f"building {runs:,} runs (create_run + log_params of 20 params each, then flush) took "
        f"{built:.1f} s: {2 * runs / built:,.0f} events/s"
    )


async def _fetch_rows(path: Path) -> list[Any]:
    """The runs' rows as ``sqlite3`` fetches them: what list_runs reads, before any decoding."""
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        rows: list[Any] = conn.execute(
            "SELECT id, experiment_id, name, status, created_at, start_time, end_time, tags, "
            "last_activity, params FROM runs ORDER BY created_at, id"
        ).fetchall()
        return rows
    finally:
        conn.close()


def _decoded_match(path: Path, filters: Sequence[ParamFilter]) -> list[str]:
    """The filters matched by decoding every value of their keys in Python (the old way)."""
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        keys = sorted({f.key for f in filters})
        rows = conn.execute(
            f"SELECT key, run_id, value FROM params WHERE key IN ({','.join('?' * len(keys))})",
            keys,
        ).fetchall()
    finally:
        conn.close()
    return sorted(select_matching(filters, rows, None))


async def _wide(context: Context, result: CaseResult) -> None:
    """filter_runs and search_runs over 100,000 runs × 20 params."""
    runs = context.config.n(100_000, 10_000)
    path = context.path("read-wide.db")
    all_params = [params_for(i) for i in range(runs)]
    # About 1 % of the runs match, as in the 10,000-run queries above.
    query = (
        ParamFilter("learning_rate", FilterOp.LT, 2e-5),
        ParamFilter("model", FilterOp.STARTS_WITH, "llama-1"),
    )
    expected = sum(
        p["learning_rate"] < 2e-5 and p["model"].startswith("llama-1") for p in all_params
    )
    async with Tracker.open(path) as tracker:
        experiment_id = await tracker.create_experiment("sweep")
        for i, params in enumerate(all_params):
            run_id = await tracker.create_run(experiment_id, name=f"trial-{i}")
            tracker.log_params_nowait(run_id, params)
        await tracker.flush()
        times, found = await _timed(functools.partial(tracker.filter_runs, None, query))
        if found != expected:
            raise AssertionError(f"range and prefix: {found} runs, expected {expected}")
        base = []
        for _ in range(READS):
            start = time.perf_counter()
            matched = await anyio.to_thread.run_sync(_decoded_match, path, query)
            base.append(time.perf_counter() - start)
        if len(matched) != expected:
            raise AssertionError(f"the baseline found {len(matched)} runs, expected {expected}")

        async def first_page() -> list[Run]:
            page = await tracker.search_runs(None, order_by="param:learning_rate", desc=True)
            return page.runs

        paged, found = await _timed(first_page)
        if found != 100:
            raise AssertionError(f"search_runs: a page of {found} runs")
    result.rows += [
        Row(
            f"filter_runs (all): learning_rate < 2e-5 and model starts with llama-1, "
            f"{runs:,} runs × 20 params",
            median(times) * 1e3,
            "ms",
            at_most(WIDE_FILTER_TARGET_S * 1e3),
            f"{expected:,} runs match; {median(times) / median(base):.2f}× the baseline",
        ),
        Row(
            "baseline: the same, decoding both keys' values in Python",
            median(base) * 1e3,
            "ms",
        ),
        Row(
            f"search_runs, first 100 of {runs:,} runs by param:learning_rate desc",
            median(paged) * 1e3,
            "ms",
            note=spread(paged, "s"),
        ),
    ]


def run(context: Context) -> CaseResult:
    series = context.config.n(1_000_000, 100_000)
    runs = context.config.n(10_000, 1_000)
    result = CaseResult(
        3,
        "Read",
        f"get_metrics of one {series:,}-point series; list_runs and filter_runs over {runs:,} "
        f"runs × 20 params (one experiment, 'experiment' scope, and 'all' = experiment_id None); "
        f"median of {READS} calls each; every answer is checked",
    )
    run_async(_series(context, result))
    run_async(_runs(context, result))
    run_async(_wide(context, result))
    return result


CASE = Case("read", 3, "Read", run)
