"""Case 7, many writers: 4 processes logging into one database file at once.

The same total workload runs twice in this run, each time in freshly spawned processes: once
in one process (the baseline), once split over 4 processes, each logging its own run. All
workers open their tracker and learn their run first, then start together at a barrier; the
total rate is all points over the time from that start until the last ``flush()`` returned.
Afterwards every series is read back and checked point by point.
"""

from __future__ import annotations

import asyncio
import dataclasses
import multiprocessing
import time
import traceback
from multiprocessing.synchronize import Barrier
from pathlib import Path
from typing import Any

from benchmarks._harness import (
    KEYS,
    Case,
    CaseResult,
    Context,
    Row,
    at_least,
    at_most,
    log_points,
    median,
    run_async,
    spread,
)
from runjournal import Tracker

__all__ = ["CASE", "WRITERS", "Outcome", "writers_round"]

WRITERS = 4
RATIO_TARGET = 1.0
TIMEOUT_S = 600.0


@dataclasses.dataclass(frozen=True, slots=True)
class Outcome:
    """What the processes of one round did."""

    processes: int
    points: int
    seconds: float
    lost: int
    per_process: list[float]


# -- a worker process ----------------------------------------------------------------------------
async def _work(path: str, run_id: str, steps: int, barrier: Barrier) -> tuple[float, float]:
    async with Tracker.open(path) as tracker:
        await tracker.log_param(run_id, "writer", run_id)  # learns the run before the start
        await tracker.flush()
        barrier.wait(TIMEOUT_S)
        start = time.monotonic()
        await log_points(tracker, run_id, KEYS, steps, "nowait")
        await tracker.flush()
        end = time.monotonic()
        if tracker.stats().dropped:
            raise RuntimeError(f"{tracker.stats().dropped} points dropped")
    return start, end


def _worker(path: str, run_id: str, steps: int, barrier: Barrier, out: Any) -> None:
    try:
        start, end = asyncio.run(_work(path, run_id, steps, barrier))
        out.put((run_id, start, end, None))
    except BaseException:  # noqa: BLE001 - reported to the parent, which raises it
        barrier.abort()
        out.put((run_id, 0.0, 0.0, traceback.format_exc()))


# -- the parent ----------------------------------------------------------------------------------
async def _prepare(path: Path | str, processes: int) -> list[str]:
    async with Tracker.open(path) as tracker:
        experiment_id = await tracker.create_experiment("writers")
        run_ids = []
        for i in range(processes):
            run_id = await tracker.create_run(experiment_id, name=f"writer-{i}")
            await tracker.start_run(run_id)
            run_ids.append(run_id)
        return run_ids


async def _lost(path: Path | str, run_ids: list[str], steps: int) -> int:
    """Points missing from (or wrong in) the database, over every run and key."""
    lost = 0
    async with Tracker.open(path) as tracker:
        for run_id in run_ids:
            for key in KEYS:
                series = await tracker.get_metrics(run_id, key)
                good = sum(
                    p.step == i and p.value == 1.0 / (i + 1) for i, p in enumerate(series[:steps])
                )
                lost += steps - good + max(len(series) - steps, 0)
    return lost


def writers_round(path: Path | str, processes: int, steps: int) -> Outcome:
    """One round: ``processes`` spawned writers into ``path`` (a file, or a PostgreSQL URL),
    ``steps`` steps of every key each, each its own run; then every point is checked."""
    run_ids = run_async(_prepare(path, processes))
    spawn = multiprocessing.get_context("spawn")
    barrier = spawn.Barrier(processes + 1)
    out = spawn.Queue()
    workers = [
        spawn.Process(target=_worker, args=(str(path), run_id, steps, barrier, out))
        for run_id in run_ids
    ]
    for worker in workers:
        worker.start()
    try:
        barrier.wait(TIMEOUT_S)
        finished = [out.get(timeout=TIMEOUT_S) for _ in workers]
    finally:
        for worker in workers:
            worker.join(TIMEOUT_S)
    errors = [error for *_, error in finished if error is not None]
    if errors:
        raise RuntimeError("a writer process failed:\n" + errors[0])
    points = processes * steps * len(KEYS)
    seconds = max(end for _, _, end, _ in finished) - min(start for _, start, _, _ in finished)
    per_process = [steps * len(KEYS) / (end - start) for _, start, end, _ in finished]
    lost = run_async(_lost(path, run_ids, steps))
    return Outcome(processes, points, seconds, lost, per_process)


def run(context: Context) -> CaseResult:
    total_steps = context.config.n(100_000, 20_000)
    points = total_steps * len(KEYS)
    repeats = context.config.repeats
    result = CaseResult(
        7,
        "Many writers",
        f"{points:,} points in total ({len(KEYS)} keys), log_metric_nowait: one process logging "
        f"them all, then {WRITERS} processes logging {points // WRITERS:,} each into one file, "
        "each process its own run; spawned processes, common start at a barrier; "
        + context.config.rounds,
    )
    singles: list[Outcome] = []
    manies: list[Outcome] = []
    for _ in range(repeats):
        singles.append(writers_round(context.path("writers-1.db"), 1, total_steps))
        manies.append(
            writers_round(context.path(f"writers-{WRITERS}.db"), WRITERS, total_steps // WRITERS)
        )
    single_rates = [o.points / o.seconds for o in singles]
    many_rates = [o.points / o.seconds for o in manies]
    single_rate, many_rate = median(single_rates), median(many_rates)
    result.rows += [
        Row("1 process (baseline)", single_rate, "pts/s", note=spread(single_rates, "pts/s")),
        Row(f"{WRITERS} processes, total", many_rate, "pts/s", note=spread(many_rates, "pts/s")),
        Row(
            f"{WRITERS} processes ÷ 1 process",
            many_rate / single_rate,
            "×",
            at_least(RATIO_TARGET),
        ),
        Row(
            f"points lost or wrong, {WRITERS} processes",
            sum(o.lost for o in manies),
            "points",
            at_most(0),
            f"over all {repeats} rounds" if repeats > 1 else "",
        ),
        Row(
            "points lost or wrong, 1 process",
            sum(o.lost for o in singles),
            "points",
            at_most(0),
            f"over all {repeats} rounds" if repeats > 1 else "",
        ),
    ]
    rates = ", ".join(f"{rate:,.0f}" for rate in manies[-1].per_process)
    result.notes.append(
        f"each of the {WRITERS} processes in the last round, pts/s over its own span: {rates}"
    )
    return result


CASE = Case("writers", 7, "Many writers", run)
