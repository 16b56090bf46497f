"""Case pg-search: filter_runs and search_runs on PostgreSQL beside SQLite, in the same run.

The same sweep as case 3 (``case_read``: 10,000 runs × 20 params, one experiment) is
written into a fresh SQLite file and into a fresh PostgreSQL schema; then each store
answers case 3's filter queries (in the experiment and across all) and the first page
of two searches. Every answer is checked against the params in Python. Times are the
median of ``READS`` calls on a warm store; PostgreSQL's are also given as a ratio to
SQLite's. The target: each selective filter within 50 ms on PostgreSQL.

The server is ``$RUNJOURNAL_BENCH_PG_DSN`` if set, else a throwaway one (``tests.pg``).
"""

from __future__ import annotations

import functools
import time
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path
from statistics import median
from typing import Any

import psycopg

from benchmarks._harness import Case, CaseResult, Context, Row, at_most, run_async
from benchmarks.case_pg import _server_dsn
from benchmarks.case_read import FILTER_TARGET_S, READS, Query, _queries, params_for
from runjournal import Tracker
from runjournal.model import Run
from runjournal.stores import PostgresBackend

__all__ = ["CASE"]


async def _timed(call: Callable[[], Awaitable[list[Run]]]) -> tuple[float, int]:
    await call()  # warm: the first call opens the read connection
    times: list[float] = []
    found = 0
    for _ in range(READS):
        start = time.perf_counter()
        found = len(await call())
        times.append(time.perf_counter() - start)
    return median(times), found


async def _fill(target: str | Path, all_params: list[dict[str, Any]]) -> tuple[str, float]:
    async with Tracker.open(target) as tracker:
        experiment_id = await tracker.create_experiment("sweep")
        start = time.perf_counter()
        for i, params in enumerate(all_params):
            run_id = await tracker.create_run(experiment_id, name=f"trial-{i}")
            tracker.log_params_nowait(run_id, params)
        await tracker.flush()
        return experiment_id, time.perf_counter() - start


async def _answers(
    target: str | Path, experiment_id: str, queries: list[Query], all_params: list[dict[str, Any]]
) -> dict[str, tuple[float, int]]:
    out: dict[str, tuple[float, int]] = {}
    async with Tracker.open(target, read_only=True) as tracker:
        for query in queries:
            expected = sum(query.expect(p) for p in all_params)
            for scope, label in ((experiment_id, "experiment"), (None, "all")):
                elapsed, found = await _timed(
                    functools.partial(tracker.filter_runs, scope, query.filters)
                )
                if found != expected:
                    raise AssertionError(f"{target}: {query.name}: {found} runs, not {expected}")
                out[f"filter_runs ({label}): {query.name}"] = (elapsed, found)
        for order, desc in (("param:learning_rate", True), ("created_at", False)):

            async def first_page(order: str = order, desc: bool = desc) -> list[Run]:
                page = await tracker.search_runs(None, [], order_by=order, desc=desc)
                if page.total != len(all_params):
                    raise AssertionError(f"search_runs counted {page.total} runs")
                return page.runs

            elapsed, found = await _timed(first_page)
            if found != 100:
                raise AssertionError(f"search_runs by {order}: a page of {found} runs")
            out[f"search_runs, first 100 by {order}{' desc' if desc else ''}"] = (elapsed, found)
    return out


def run(context: Context) -> CaseResult:
    runs = context.config.n(10_000, 1_000)
    all_params = [params_for(i) for i in range(runs)]
    queries = _queries(runs)
    result = CaseResult(
        14,
        "PostgreSQL: filters and search",
        f"filter_runs (case 3's queries) and search_runs over {runs:,} runs × 20 params, "
        f"SQLite and PostgreSQL in the same run; median of {READS} warm calls",
    )
    base, server = _server_dsn()
    try:
        dsn = f"{base}{'&' if '?' in base else '?'}schema=bench_{uuid.uuid4().hex[:8]}"
        path = context.path("pg-search-baseline.db")

        async def both() -> tuple[dict[str, tuple[float, int]], ...]:
            lite_exp, lite_fill = await _fill(path, all_params)
            pg_exp, pg_fill = await _fill(dsn, all_params)
            result.notes.append(
                f"writing the sweep (create_run + log_params_nowait, flush): SQLite "
                f"{lite_fill:.1f} s, PostgreSQL {pg_fill:.1f} s"
            )
            store = PostgresBackend(dsn)
            with psycopg.connect(store.dsn, autocommit=True) as conn:
                conn.execute(f"VACUUM ANALYZE {store.schema}.params")
                conn.execute(f"VACUUM ANALYZE {store.schema}.runs")
            lite = await _answers(path, lite_exp, queries, all_params)
            post = await _answers(dsn, pg_exp, queries, all_params)
            return lite, post

        lite, post = run_async(both())
    finally:
        if server is not None:
            server.destroy()
    selective = {q.name for q in queries if q.judged}
    for label, (pg_s, found) in post.items():
        lite_s = lite[label][0]
        judged = label.startswith("filter_runs") and label.split(": ", 1)[1] in selective
        result.rows.append(
            Row(
                f"PostgreSQL: {label}",
                pg_s * 1e3,
                "ms",
                at_most(FILTER_TARGET_S * 1e3) if judged else None,
                f"{found:,} runs; SQLite {lite_s * 1e3:.1f} ms; {pg_s / lite_s:.2f}× SQLite",
            )
        )
    return result


CASE = Case("pg-search", 14, "PostgreSQL: filters and search", run)
