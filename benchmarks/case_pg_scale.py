"""Case pg-scale: the issue's 50 million points on PostgreSQL beside SQLite (asked for only).

One process logs ``POINTS`` points (``RUNS`` runs × ``KEYS`` keys × steps, in step order,
``log_metric_nowait``) into a fresh PostgreSQL schema and into a fresh SQLite file, then
each store answers the reads a dashboard makes of a store that size: one whole series
(``get_metrics``, ``get_metric_arrays``), one series at 1,000 points
(``get_metrics_downsampled``), every run's summary of one key (``metric_summaries``), the
first page of runs by a metric (``search_runs``) and ``list_runs``. Every answer is
checked. Times are the median of ``READS`` warm calls; PostgreSQL's are also given as a
ratio to SQLite's in the same run. Sizes: SQLite's file with its WAL, PostgreSQL's tables
with their indexes and TOAST.

``make bench-pg-scale`` runs it; ``RUNJOURNAL_BENCH_PG_SCALE_POINTS`` sets the size
(default 50,000,000; ``--quick``: 1,000,000). The server is ``$RUNJOURNAL_BENCH_PG_DSN`` if
set, else a throwaway one (``tests.pg``: ``fsync=off``, so write rates are an upper bound
for a server that syncs).
"""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path
from statistics import median
from typing import Any

import psycopg

from benchmarks._harness import Case, CaseResult, Context, Row, disk_bytes, run_async
from benchmarks.case_pg import _server_dsn
from runjournal import Tracker
from runjournal.stores import PostgresBackend
from runjournal.stores.postgres.purge import size_on_server

__all__ = ["CASE"]

RUNS = 100
KEYS = tuple(f"metric_{k}" for k in range(10))
READS = 5


async def _timed(call: Callable[[], Awaitable[Any]]) -> tuple[float, Any]:
    answer = await call()  # warm: the first call opens the read connection
    times: list[float] = []
    for _ in range(READS):
        start = time.perf_counter()
        answer = await call()
        times.append(time.perf_counter() - start)
    return median(times), answer


async def _fill(target: str | Path, steps: int) -> tuple[list[str], float]:
    """Log every point; the run ids and the points per second, flush included."""
    async with Tracker.open(target) as tracker:
        exp = await tracker.create_experiment("scale")
        runs = [await tracker.create_run(exp, name=f"run-{i:03d}") for i in range(RUNS)]
        start = time.perf_counter()
        for r, run_id in enumerate(runs):
            log = tracker.log_metric_nowait
            for step in range(steps):
                value = (r + 1) / (step + 1)
                for key in KEYS:
                    log(run_id, key, step, value)
        await tracker.flush()
        return runs, RUNS * len(KEYS) * steps / (time.perf_counter() - start)


async def _reads(target: str | Path, runs: list[str], steps: int) -> dict[str, float]:
    key = KEYS[0]
    run_id = runs[RUNS // 2]
    out: dict[str, float] = {}
    async with Tracker.open(target, read_only=True) as tracker:
        exp = (await tracker.list_experiments())[0].id

        out["get_metrics"], points = await _timed(lambda: tracker.get_metrics(run_id, key))
        if [p.step for p in points] != list(range(steps)):
            raise AssertionError(f"{target}: get_metrics returned {len(points)} points")
        out["get_metric_arrays"], arrays = await _timed(
            lambda: tracker.get_metric_arrays(run_id, key)
        )
        if len(arrays.step) != steps:
            raise AssertionError(f"{target}: get_metric_arrays returned {len(arrays.step)}")
        out["downsampled"], buckets = await _timed(
            lambda: tracker.get_metrics_downsampled(run_id, key, points=1000)
        )
        if not 0 < len(buckets) <= 1000:
            raise AssertionError(f"{target}: {len(buckets)} buckets")
        out["summaries"], summaries = await _timed(lambda: tracker.metric_summaries(runs, [key]))
        if len(summaries) != RUNS:
            raise AssertionError(f"{target}: {len(summaries)} summaries")
        out["search"], page = await _timed(
            lambda: tracker.search_runs(exp, [], order_by=f"metric:{key}", desc=True)
        )
        # The last value of run r is (r + 1) / steps: the last run first.
        if page.runs[0].id != runs[-1] or page.total != RUNS:
            raise AssertionError(f"{target}: search_runs by a metric put the wrong run first")
        out["list_runs"], listed = await _timed(lambda: tracker.list_runs(exp))
        if len(listed) != RUNS:
            raise AssertionError(f"{target}: list_runs returned {len(listed)} runs")
    return out


_LABELS = {
    "get_metrics": "get_metrics of one whole series",
    "get_metric_arrays": "get_metric_arrays of the same series",
    "downsampled": "get_metrics_downsampled of it at 1,000 points (/api/series)",
    "summaries": f"metric_summaries of {RUNS} runs, one key",
    "search": f"search_runs by metric:KEY desc, first page of {RUNS} runs",
    "list_runs": f"list_runs of {RUNS} runs",
}


def run(context: Context) -> CaseResult:
    default = context.config.n(50_000_000, 1_000_000)
    points = int(os.environ.get("RUNJOURNAL_BENCH_PG_SCALE_POINTS", default))
    steps = max(1, points // (RUNS * len(KEYS)))
    points = steps * RUNS * len(KEYS)
    result = CaseResult(
        15,
        "PostgreSQL at scale",
        f"{points:,} points ({RUNS} runs × {len(KEYS)} keys × {steps:,} steps, "
        f"log_metric_nowait, one process) into each store; reads of one {steps:,}-point "
        f"series and of all runs; median of {READS} warm calls",
    )
    base, server = _server_dsn()
    try:
        dsn = f"{base}{'&' if '?' in base else '?'}schema=bench_{uuid.uuid4().hex[:8]}"
        path = context.path("pg-scale-baseline.db")

        async def both() -> tuple[float, float, dict[str, float], dict[str, float]]:
            pg_runs, pg_rate = await _fill(dsn, steps)
            lite_runs, lite_rate = await _fill(path, steps)
            store = PostgresBackend(dsn)
            with psycopg.connect(store.dsn, autocommit=True) as conn:
                conn.execute(f"VACUUM ANALYZE {store.schema}.journal")
                conn.execute(f"VACUUM ANALYZE {store.schema}.metrics")
                conn.execute(f"VACUUM ANALYZE {store.schema}.rollups")
            post = await _reads(dsn, pg_runs, steps)
            lite = await _reads(path, lite_runs, steps)
            return pg_rate, lite_rate, post, lite

        pg_rate, lite_rate, post, lite = run_async(both())
        store = PostgresBackend(dsn)
        with psycopg.connect(store.dsn, autocommit=True) as conn:
            pg_bytes = size_on_server(conn, store.schema)
            conn.execute(f"DROP SCHEMA {store.schema} CASCADE")
        lite_bytes = disk_bytes(path)
    finally:
        if server is not None:
            server.destroy()
    result.rows += [
        Row("SQLite: end to end", lite_rate, "pts/s"),
        Row("PostgreSQL: end to end", pg_rate, "pts/s", note=f"{pg_rate / lite_rate:.2f}× SQLite"),
        Row("SQLite: size (file + WAL)", lite_bytes / 2**20, "MiB", note=f"{lite_bytes / points:.2f} B/pt"),
        Row(
            "PostgreSQL: size (pg_total_relation_size)",
            pg_bytes / 2**20,
            "MiB",
            note=f"{pg_bytes / points:.2f} B/pt; {pg_bytes / lite_bytes:.2f}× SQLite",
        ),
    ]  # fmt: skip
    for name, label in _LABELS.items():
        result.rows.append(
            Row(
                f"PostgreSQL: {label}",
                post[name] * 1e3,
                "ms",
                note=f"SQLite {lite[name] * 1e3:.1f} ms; {post[name] / lite[name]:.2f}× SQLite",
            )
        )
    return result


CASE = Case("pg-scale", 15, "PostgreSQL at scale", run)
