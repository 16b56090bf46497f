"""Case pg: the PostgreSQL store beside SQLite, on the same workloads in the same run.

- End to end: one process logs ``N`` points (10 keys, ``log_metric_nowait``) into a fresh
  SQLite file and into a fresh PostgreSQL schema, alternately, over several rounds.
- Reads: one more series of a million points in each store answers ``get_metrics`` and
  ``/api/series`` at 1,000 points (the real app over httpx's ASGI transport).
- Sizes: SQLite's file with its WAL, PostgreSQL's tables with their indexes and TOAST
  (``pg_total_relation_size``), per point of the end-to-end workload.
- Many writers: case 7's rounds (spawned processes, a common start, every point read back)
  into PostgreSQL, one process against 4 sharing the same total.
- ``follow()`` latency: from ``flush()`` returning in a writer to the entry reaching a follower.

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
    at_least,
    at_most,
    disk_bytes,
    log_points,
    median,
    remove_db,
    run_async,
    spread,
    tracked_run,
)
from benchmarks.case_many_writers import WRITERS, Outcome, writers_round
from runjournal import Tracker, journal
from runjournal.stores import PostgresBackend
from runjournal.stores.postgres.purge import size_on_server
from runjournal.ui import create_app

__all__ = ["CASE"]

LONG = "long"
"""The key of the series that the reads measure."""


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


async def _end_to_end(tracker: Tracker, run_id: str, steps: int) -> float:
    """Points per second logging ``steps`` steps of every key, until ``flush()`` returns."""
    start = time.perf_counter()
    await log_points(tracker, run_id, KEYS, steps, "nowait")
    await tracker.flush()
    return steps * len(KEYS) / (time.perf_counter() - start)


async def _reads(tracker: Tracker, run_id: str, points: int) -> dict[str, float]:
    """Log one ``points``-long series, then time ``get_metrics`` and ``/api/series`` of it."""
    await log_points(tracker, run_id, (LONG,), points, "nowait")
    await tracker.flush()
    read = await _timed(lambda: tracker.get_metrics(run_id, LONG))
    transport = httpx.ASGITransport(app=create_app(tracker))
    params: dict[str, Any] = {"run": [run_id], "key": LONG, "points": 1000}
    async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1:8765") as c:
        served = await _timed(lambda: c.get("/api/series", params=params), repeats=20)
    return {"read": read, "series": served}


async def _fresh_run(tracker: Tracker) -> str:
    exp = await tracker.create_experiment("bench")
    run_id = await tracker.create_run(exp, name="bench")
    await tracker.start_run(run_id)
    await tracker.flush()
    return run_id


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


def _schema(base: str) -> str:
    """``base`` with a new schema of its own."""
    return f"{base}{'&' if '?' in base else '?'}schema=bench_{uuid.uuid4().hex[:8]}"


def run(context: Context) -> CaseResult:
    config = context.config
    steps = config.n(100_000, 10_000)
    points = steps * len(KEYS)
    long_points = config.n(1_000_000, 50_000)
    writer_steps = config.n(100_000, 10_000)
    rounds = config.n(3, 1)
    result = CaseResult(
        13,
        "PostgreSQL beside SQLite",
        f"end to end: {points:,} points ({len(KEYS)} keys, log_metric_nowait), one process, each "
        f"store, {rounds} rounds alternating, fresh each time; reads: one {long_points:,}-point "
        f"series; many writers: {writer_steps * len(KEYS):,} points by 1 process, then by "
        f"{WRITERS} processes ({rounds} rounds each)",
    )
    base, server = _server_dsn()
    try:
        path = context.path("pg-baseline.db")
        dsn = ""

        async def end_to_end() -> tuple[float, float]:
            nonlocal dsn
            remove_db(path)
            async with tracked_run(path) as (tracker, run_id):
                lite = await _end_to_end(tracker, run_id, steps)
            dsn = _schema(base)
            async with Tracker.open(dsn) as tracker:
                post = await _end_to_end(tracker, await _fresh_run(tracker), steps)
            return lite, post

        rates = [run_async(end_to_end()) for _ in range(rounds)]
        lite_rates, post_rates = [r[0] for r in rates], [r[1] for r in rates]
        # The sizes are of the last round's stores, before the long series goes in.
        store = PostgresBackend(dsn)
        with psycopg.connect(store.dsn, autocommit=True) as conn:
            conn.execute(f"VACUUM ANALYZE {store.schema}.journal")
            pg_bytes = size_on_server(conn, store.schema)
        lite_bytes = disk_bytes(path)

        async def reads() -> tuple[dict[str, float], dict[str, float], float]:
            async with tracked_run(path) as (tracker, run_id):
                lite = await _reads(tracker, run_id, long_points)
            async with Tracker.open(dsn) as tracker:
                post = await _reads(tracker, await _fresh_run(tracker), long_points)
            follow = await _follow_latency(dsn, config.n(50, 10))
            return lite, post, follow

        lite, post, follow = run_async(reads())
        singles: list[Outcome] = []
        manies: list[Outcome] = []
        for _ in range(rounds):
            singles.append(writers_round(_schema(base), 1, writer_steps))
            manies.append(writers_round(_schema(base), WRITERS, writer_steps // WRITERS))
        single_rates = [o.points / o.seconds for o in singles]
        many_rates = [o.points / o.seconds for o in manies]
        lite_rate, post_rate = median(lite_rates), median(post_rates)
        long = f"{long_points:,}-point series"
        result.rows += [
            Row("SQLite: end to end", lite_rate, "pts/s", note=spread(lite_rates, "pts/s")),
            Row("PostgreSQL: end to end", post_rate, "pts/s", at_least(500_000),
                spread(post_rates, "pts/s")),
            Row("PostgreSQL ÷ SQLite, end to end", post_rate / lite_rate, "×"),
            Row("SQLite: bytes per point (file + WAL)", lite_bytes / points, "B/pt"),
            Row("PostgreSQL: bytes per point (pg_total_relation_size)", pg_bytes / points, "B/pt"),
            Row(f"SQLite: get_metrics of a {long}", lite["read"], "s"),
            Row(f"PostgreSQL: get_metrics of a {long}", post["read"], "s", at_most(0.5)),
            Row(f"SQLite: /api/series of a {long} at 1,000 points", lite["series"], "s"),
            Row(f"PostgreSQL: /api/series of a {long} at 1,000 points", post["series"], "s",
                at_most(0.03)),
            Row("PostgreSQL: follow() latency, flush to delivery (median)", follow, "s",
                at_most(0.05)),
            Row("PostgreSQL: 1 writer process", median(single_rates), "pts/s",
                note=spread(single_rates, "pts/s")),
            Row(f"PostgreSQL: {WRITERS} writer processes, total", median(many_rates), "pts/s",
                note=spread(many_rates, "pts/s")),
            Row(f"PostgreSQL: {WRITERS} processes ÷ 1 process",
                median(many_rates) / median(single_rates), "×", at_least(1.5)),
            Row(f"PostgreSQL: points lost or wrong, 1 and {WRITERS} processes",
                sum(o.lost for o in singles + manies), "points", at_most(0),
                f"over all {2 * rounds} rounds"),
        ]  # fmt: skip
    finally:
        if server is not None:
            server.destroy()
    return result


CASE = Case("pg", 13, "PostgreSQL beside SQLite", run)
