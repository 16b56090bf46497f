"""Case 1, caller cost: how long one logging call holds up the training loop.

Every call is timed on its own with ``perf_counter_ns``, in a tight loop of 10 keys × N
steps, while the writer thread commits in the background. A tight loop is the hardest case:
the writer competes with the caller for the GIL, and the queue fills if it falls behind.

The floor row times, the same way, the least any logging call does: build its event and
append it to a deque, with no checks and no writer.
"""

from __future__ import annotations

import collections
import dataclasses
import time
from array import array
from collections.abc import Sequence
from pathlib import Path

from benchmarks._harness import (
    FACE,
    KEYS,
    Case,
    CaseResult,
    Context,
    Mode,
    Row,
    at_least,
    at_most,
    median,
    percentile,
    run_async,
    spread,
    tracked_run,
)
from runjournal.events import MetricLogged
from runjournal.ids import new_id

__all__ = [
    "CASE",
    "Latency",
    "combine",
    "floor_ns",
    "measure",
    "timer_overhead_ns",
    "trackio_ratio_rows",
]

MEDIAN_TARGET_US = 1.0
P99_TARGET_US = 10.0
TRACKIO_RATIO_TARGET = 15.0


@dataclasses.dataclass(frozen=True, slots=True)
class Latency:
    """The distribution of one loop's call times, and its throughput up to ``flush()``."""

    mode: Mode
    calls: int
    mean_us: float
    median_us: float
    p99_us: float
    p999_us: float
    max_us: float
    pts_per_s: float
    dropped: int


async def measure(path: Path, keys: Sequence[str], steps: int, mode: Mode) -> Latency:
    """Log ``len(keys) × steps`` points through ``mode``, timing every call."""
    calls = len(keys) * steps
    latencies = array("q", bytes(8 * calls))
    clock = time.perf_counter_ns
    i = 0
    async with tracked_run(path) as (tracker, run_id):
        start = clock()
        if mode == "nowait":
            log_nowait = tracker.log_metric_nowait
            for step in range(steps):
                value = 1.0 / (step + 1)
                for key in keys:
                    t0 = clock()
                    log_nowait(run_id, key, step, value)
                    latencies[i] = clock() - t0
                    i += 1
        else:
            log = tracker.log_metric
            for step in range(steps):
                value = 1.0 / (step + 1)
                for key in keys:
                    t0 = clock()
                    await log(run_id, key, step, value)
                    latencies[i] = clock() - t0
                    i += 1
        await tracker.flush()
        elapsed = clock() - start
        dropped = tracker.stats().dropped
    ordered = sorted(latencies)
    return Latency(
        mode=mode,
        calls=calls,
        mean_us=sum(ordered) / calls / 1e3,
        median_us=percentile(ordered, 50) / 1e3,
        p99_us=percentile(ordered, 99) / 1e3,
        p999_us=percentile(ordered, 99.9) / 1e3,
        max_us=ordered[-1] / 1e3,
        pts_per_s=calls / (elapsed / 1e9),
        dropped=dropped,
    )


def floor_ns(keys: Sequence[str], steps: int) -> int:
    """The median time of the least a call must do: build its event and append it to a deque.

    The same loop and timer as :func:`measure`, with no tracker, no checks and no writer
    competing for the GIL: no logging call can be cheaper than this on the same machine.
    """
    samples = array("q", bytes(8 * len(keys) * steps))
    clock = time.perf_counter_ns
    queue: collections.deque[MetricLogged] = collections.deque()
    append = queue.append
    stamp = time.time
    run_id = new_id()
    i = 0
    for step in range(steps):
        value = 1.0 / (step + 1)
        for key in keys:
            t0 = clock()
            append(MetricLogged(run_id, key, step, value, stamp()))
            samples[i] = clock() - t0
            i += 1
        if len(queue) >= 10_000:
            queue.clear()  # as the writer would, so that memory stays flat
    return percentile(sorted(samples), 50)


def timer_overhead_ns(calls: int) -> int:
    """The median time of an empty timed region: what every latency above includes."""
    clock = time.perf_counter_ns
    samples = array("q", bytes(8 * calls))
    for i in range(calls):
        t0 = clock()
        samples[i] = clock() - t0
    return percentile(sorted(samples), 50)


def combine(rounds: Sequence[Latency]) -> Latency:
    """One summary of repeated rounds: the median of each statistic, the largest maximum."""
    return Latency(
        mode=rounds[0].mode,
        calls=rounds[0].calls,
        mean_us=median(r.mean_us for r in rounds),
        median_us=median(r.median_us for r in rounds),
        p99_us=median(r.p99_us for r in rounds),
        p999_us=median(r.p999_us for r in rounds),
        max_us=max(r.max_us for r in rounds),
        pts_per_s=median(r.pts_per_s for r in rounds),
        dropped=sum(r.dropped for r in rounds),
    )


def _rows(rounds: Sequence[Latency]) -> list[Row]:
    latency = combine(rounds)
    label = FACE[latency.mode]

    def note(field: str) -> str:
        return spread([getattr(r, field) for r in rounds], "µs")

    return [
        Row(
            f"{label}: median",
            latency.median_us,
            "µs",
            at_most(MEDIAN_TARGET_US),
            note("median_us"),
        ),
        Row(f"{label}: p99", latency.p99_us, "µs", at_most(P99_TARGET_US), note("p99_us")),
        Row(f"{label}: p99.9", latency.p999_us, "µs", note=note("p999_us")),
        Row(f"{label}: mean", latency.mean_us, "µs", note="stalls included"),
        Row(f"{label}: max", latency.max_us, "µs", note="one call: queue full or GIL hand-over"),
    ]


def trackio_ratio_rows(context: Context, latency: Latency) -> list[Row]:
    """trackio's call time over runjournal's, from the peers measured in this same run.

    The target compares medians. The means (trackio's includes its slow calls, ours the
    queue-full and GIL stalls) are shown beside, without a verdict.
    """
    name = f"trackio ÷ {FACE[latency.mode]}"
    peer = (context.peers or {}).get("trackio")
    if peer is None or peer.median_us is None:
        why = (
            "no peers in this run (make bench-peers, or --peers-python)"
            if context.peers is None
            else f"trackio failed: {peer.error if peer else 'missing'}"
        )
        return [Row(f"{name}, medians", None, "×", at_least(TRACKIO_RATIO_TARGET), why)]
    rows = [
        Row(
            f"{name}, medians",
            peer.median_us / latency.median_us,
            "×",
            at_least(TRACKIO_RATIO_TARGET),
            f"trackio {peer.median_us:.2f} µs at {peer.points:,} calls",
        )
    ]
    if peer.mean_us is not None:
        rows.append(
            Row(
                f"{name}, means",
                peer.mean_us / latency.mean_us,
                "×",
                note=f"trackio {peer.mean_us:.2f} µs",
            )
        )
    return rows


def run(context: Context) -> CaseResult:
    steps = context.config.n(100_000, 10_000)
    calls = len(KEYS) * steps
    repeats = context.config.repeats
    result = CaseResult(
        1,
        "Caller cost",
        f"{calls:,} calls per face ({len(KEYS)} keys × {steps:,} steps), each timed alone, "
        "writer thread committing meanwhile (default options: max_pending 100,000); "
        + context.config.rounds,
    )
    rounds: dict[Mode, list[Latency]] = {"await": [], "nowait": []}
    for _ in range(repeats):
        for mode, measured in rounds.items():
            path = context.path(f"caller-{mode}.db")
            measured.append(run_async(measure(path, KEYS, steps, mode)))
    for measured in rounds.values():
        result.rows += _rows(measured)
    for measured in rounds.values():
        result.rows += trackio_ratio_rows(context, combine(measured))
    overhead = timer_overhead_ns(calls)
    floor = floor_ns(KEYS, steps)
    fastest = min(combine(measured).median_us for measured in rounds.values())
    result.rows += [
        Row("timer overhead (empty timed region)", overhead / 1e3, "µs", note="included above"),
        Row(
            "floor: build the event and append it to a deque, nothing else",
            floor / 1e3,
            "µs",
            note=f"median, timed the same way; the faster face costs {fastest * 1e3 / floor:.2f}×",
        ),
    ]
    for mode, measured in rounds.items():
        latency = combine(measured)
        result.notes.append(
            f"{FACE[mode]}: {latency.pts_per_s:,.0f} pts/s including the final flush() "
            f"while timing every call; dropped {latency.dropped}"
        )
    return result


CASE = Case("caller", 1, "Caller cost", run)
