"""Case 2, end to end: points logged and committed per second, beside raw ``executemany``.

runjournal's time runs from the first logging call until ``flush()`` returns (everything
committed). The baseline is the physical floor of the naive design: plain ``sqlite3``, one
row per point with integer run and key ids in an indexed table, 10,000 rows per
``executemany`` transaction, in WAL mode with ``synchronous=NORMAL`` (runjournal's default
durability). Both build their values and timestamps inside the timed loop.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Sequence
from pathlib import Path

from benchmarks._harness import (
    FACE,
    KEYS,
    Case,
    CaseResult,
    Context,
    E2ESample,
    Mode,
    Row,
    at_least,
    disk_bytes,
    log_points,
    median,
    raw_database,
    run_async,
    spread,
    table_bytes,
    tracked_run,
)

__all__ = ["CASE", "E2ERun", "measure_raw", "measure_runjournal", "sample_for_size"]

PTS_TARGET = 500_000.0
RAW_RATIO_TARGET = 1.3
RAW_ROWS_PER_TRANSACTION = 10_000


@dataclasses.dataclass(frozen=True, slots=True)
class E2ERun:
    """One timed run, and the bytes its database used while open and after closing."""

    pts_per_s: float
    bytes_open: int
    bytes_closed: int


async def measure_runjournal(
    path: Path, keys: Sequence[str], steps: int, mode: Mode, durability: str = "normal"
) -> E2ERun:
    """Log ``len(keys) × steps`` points through ``mode`` and time them until ``flush()``."""
    async with tracked_run(path, durability=durability) as (tracker, run_id):
        start = time.perf_counter()
        await log_points(tracker, run_id, keys, steps, mode)
        await tracker.flush()
        elapsed = time.perf_counter() - start
        bytes_open = disk_bytes(path)
        if tracker.stats().dropped:
            raise RuntimeError("points were dropped")
    return E2ERun(len(keys) * steps / elapsed, bytes_open, disk_bytes(path))


RAW_SCHEMA = (
    (
        "CREATE TABLE points (run_id INTEGER NOT NULL, key_id INTEGER NOT NULL, "
        "step INTEGER NOT NULL, value REAL NOT NULL, timestamp REAL NOT NULL)"
    ),
    "CREATE INDEX points_series ON points (run_id, key_id, step)",
)


def measure_raw(
    path: Path, keys: Sequence[str], steps: int, per_transaction: int = RAW_ROWS_PER_TRANSACTION
) -> float:
    """The baseline: ``executemany`` of one indexed row per point; returns points per second."""
    conn = raw_database(path, RAW_SCHEMA)
    try:
        insert = "INSERT INTO points VALUES (?, ?, ?, ?, ?)"
        key_ids = range(len(keys))
        now = time.time
        rows: list[tuple[int, int, int, float, float]] = []
        start = time.perf_counter()
        for step in range(steps):
            value = 1.0 / (step + 1)
            for key_id in key_ids:
                rows.append((1, key_id, step, value, now()))
                if len(rows) == per_transaction:
                    conn.execute("BEGIN")
                    conn.executemany(insert, rows)
                    conn.execute("COMMIT")
                    rows = []
        if rows:
            conn.execute("BEGIN")
            conn.executemany(insert, rows)
            conn.execute("COMMIT")
        elapsed = time.perf_counter() - start
    finally:
        conn.close()
    return len(keys) * steps / elapsed


def _sample(points: int, measured: E2ERun, path: Path, raw_path: Path) -> E2ESample:
    return E2ESample(
        points=points,
        bytes_open=measured.bytes_open,
        bytes_closed=measured.bytes_closed,
        raw_bytes=disk_bytes(raw_path),
        breakdown=table_bytes(path),
    )


def sample_for_size(context: Context, steps: int) -> E2ESample:
    """Run case 2's workload once (both designs) to measure what it leaves on disk."""
    path = context.path("size.db")
    measured = run_async(measure_runjournal(path, KEYS, steps, "await"))
    raw_path = context.path("size-raw.db")
    measure_raw(raw_path, KEYS, steps)
    return _sample(len(KEYS) * steps, measured, path, raw_path)


def run(context: Context) -> CaseResult:
    steps = context.config.n(100_000, 10_000)
    points = len(KEYS) * steps
    repeats = context.config.repeats
    result = CaseResult(
        2,
        "End to end",
        f"{points:,} points ({len(KEYS)} keys × {steps:,} steps), one call per point, timed "
        "until flush() returned; raw executemany baseline in the same run; "
        + context.config.rounds,
    )
    raw: list[float] = []
    measured: dict[Mode, list[E2ERun]] = {"await": [], "nowait": []}
    raw_path = context.path("e2e-raw.db")
    for _ in range(repeats):
        raw.append(measure_raw(raw_path, KEYS, steps))
        for mode in ("await", "nowait"):
            path = context.path(f"e2e-{mode}.db")
            measured[mode].append(run_async(measure_runjournal(path, KEYS, steps, mode)))
    # What durability="full" (an fsync per commit, survives power loss) costs, same workload.
    full_path = context.path("e2e-full.db")
    full = [
        run_async(measure_runjournal(full_path, KEYS, steps, "await", "full")).pts_per_s
        for _ in range(repeats)
    ]
    raw_rate = median(raw)
    for mode, runs in measured.items():
        rates = [r.pts_per_s for r in runs]
        result.rows.append(
            Row(
                f"runjournal, {FACE[mode]}",
                median(rates),
                "pts/s",
                at_least(PTS_TARGET),
                spread(rates, "pts/s"),
            )
        )
    result.rows.append(
        Row("raw sqlite3 executemany (baseline)", raw_rate, "pts/s", note=spread(raw, "pts/s"))
    )
    for mode, runs in measured.items():
        rate = median(r.pts_per_s for r in runs)
        result.rows.append(
            Row(f"{FACE[mode]} ÷ raw executemany", rate / raw_rate, "×", at_least(RAW_RATIO_TARGET))
        )
    normal_rate = median(r.pts_per_s for r in measured["await"])
    result.rows.append(
        Row(
            "runjournal, await log_metric, durability='full'",
            median(full),
            "pts/s",
            note=f"{median(full) / normal_rate:.2f}× the default 'normal'; "
            + spread(full, "pts/s"),
        )
    )
    last = measured["await"][-1]
    await_path = context.config.workdir / "e2e-await.db"
    context.e2e_sample = _sample(points, last, await_path, raw_path)
    return result


CASE = Case("e2e", 2, "End to end", run)
