"""Case pg: the PostgreSQL store beside SQLite, on the same workload in the same run.

One process logs ``N`` points (4 keys, ``log_metric_nowait``) into a fresh SQLite file
and into a fresh PostgreSQL schema; each then answers ``get_metrics`` of one whole
series and ``/api/series`` of it at 1,000 points (the real app over httpx's ASGI
transport). Sizes: SQLite's file with its WAL, PostgreSQL's tables with their
indexes and TOAST (``pg_total_relation_size``), per point. ``follow()`` latency is
the time from ``flush()`` returning in a writer to the entry reaching a follower.

The server is ``$RUNJOURNAL_BENCH_PG_DSN`` if set, else a throwaway one that the
tests' fixture starts (``tests.pg.Server``: initdb, ``fsync=off``; so the write
rates are an upper bound for a server that syncs).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import statistics
import time
import uuid
from typing import Any

import httpx
import psycopg

from benchmarks._harness import (
    KEYS,
    Case,
    CaseResult,
    Context,
    Row,
    at_most,
    disk_bytes,
    log_points,
    run_async,
    tracked_run,
)
from runjournal import Tracker, journal
from runjournal.stores import PostgresBackend
from runjournal.stores.postgres.purge import size_on_server
from runjournal.ui import create_app

__all__ = ["CASE"]


def _server_dsn() -> tuple[str, Any]:
    given = os.environ.get("RUNJOURNAL_BENCH_PG_DSN")
    if given:
        return given, None
    from tests.pg import Server

    server = Server()
    return server.dsn, server


async def _timed(call: Any, repeats: int = 5) -> float:
    await call()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        await call()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


async def _measure(tracker: Tracker, run_id: str, steps: int) -> dict[str, float]:
    start = time.perf_counter()
    await log_points(tracker, run_id, KEYS, steps, "nowait")
    await tracker.flush()
    rate = steps * len(KEYS) / (time.perf_counter() - start)
    read = await _timed(lambda: tracker.get_metrics(run_id, KEYS[0]))
    transport = httpx.ASGITransport(app=create_app(tracker))
    params: dict[str, Any] = {"run": [run_id], "key": KEYS[0], "points": 1000}
    async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1:8765") as c:
        served = await _timed(lambda: c.get("/api/series", params=params), repeats=20)
    return {"rate": rate, "read": read, "series": served}


async def _follow_latency(dsn: str, samples: int) -> float:
    got: asyncio.Queue[float] = asyncio.Queue()

    async def follower() -> None:
        head = await _head(dsn)
        async with contextlib.aclosing(journal.follow(dsn, after=head)) as entries:
            async for _ in entries:
                got.put_nowait(time.perf_counter())

    task = asyncio.create_task(follower())
    await asyncio.sleep(0.5)
    delays = []
    async with Tracker.open(dsn) as tracker:
        exp = await tracker.create_experiment("follow")
        await tracker.flush()
        await got.get()
        for i in range(samples):
            del i
            run_start = time.perf_counter()
            await tracker.create_run(exp)
            await tracker.flush()
            delays.append(await got.get() - run_start)
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
    return statistics.median(delays)


async def _head(dsn: str) -> int:
    store = PostgresBackend(dsn)
    try:
        return await store.head()
    finally:
        await store.close()


def run(context: Context) -> CaseResult:
    steps = context.config.n(250_000, 10_000)
    points = steps * len(KEYS)
    result = CaseResult(
        13,
        "PostgreSQL beside SQLite",
        f"{points:,} points ({len(KEYS)} keys, log_metric_nowait), one process, each store",
    )
    base, server = _server_dsn()
    try:
        dsn = f"{base}{'&' if '?' in base else '?'}schema=bench_{uuid.uuid4().hex[:8]}"
        path = context.path("pg-baseline.db")

        async def both() -> tuple[dict[str, float], dict[str, float], float]:
            async with tracked_run(path) as (tracker, run_id):
                lite = await _measure(tracker, run_id, steps)
            async with Tracker.open(dsn) as tracker:
                exp = await tracker.create_experiment("bench")
                run_id = await tracker.create_run(exp, name="bench")
                await tracker.start_run(run_id)
                await tracker.flush()
                post = await _measure(tracker, run_id, steps)
            follow = await _follow_latency(dsn, context.config.n(50, 10))
            return lite, post, follow

        lite, post, follow = run_async(both())
        store = PostgresBackend(dsn)
        with psycopg.connect(store.dsn, autocommit=True) as conn:
            conn.execute(f"VACUUM ANALYZE {store.schema}.journal")
            pg_bytes = size_on_server(conn, store.schema)
        lite_bytes = disk_bytes(path)
        result.rows += [
            Row("SQLite: end to end", lite["rate"], "pts/s"),
            Row("PostgreSQL: end to end", post["rate"], "pts/s"),
            Row("PostgreSQL ÷ SQLite, end to end", post["rate"] / lite["rate"], "×"),
            Row("SQLite: bytes per point (file + WAL)", lite_bytes / points, "B/pt"),
            Row("PostgreSQL: bytes per point (pg_total_relation_size)", pg_bytes / points, "B/pt"),
            Row(f"SQLite: get_metrics of {steps:,} points", lite["read"], "s"),
            Row(f"PostgreSQL: get_metrics of {steps:,} points", post["read"], "s", at_most(0.5)),
            Row("SQLite: /api/series at 1,000 points", lite["series"], "s"),
            Row("PostgreSQL: /api/series at 1,000 points", post["series"], "s", at_most(0.03)),
            Row("PostgreSQL: follow() latency, flush to delivery (median)", follow, "s",
                at_most(0.05)),
        ]  # fmt: skip
    finally:
        if server is not None:
            server.destroy()
    return result


CASE = Case("pg", 13, "PostgreSQL beside SQLite", run)
