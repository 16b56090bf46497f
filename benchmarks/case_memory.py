"""Case 6, memory: peak RSS of a process logging 10,000,000 points as fast as it can.

The logging runs in a child process of its own (``python -m benchmarks.case_memory --child``),
so nothing of the harness counts. The child reports its RSS every tenth of the way and its
peak (``VmHWM``) at the end; the parent also samples the child's RSS
with psutil every 20 ms. A bounded queue shows as an RSS that stops growing early.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import resource
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import psutil  # type: ignore[import-untyped]

from benchmarks._harness import (
    KEYS,
    REPO_ROOT,
    Case,
    CaseResult,
    Context,
    Row,
    at_most,
    tracked_run,
)

__all__ = ["CASE"]

PEAK_TARGET_MB = 150.0
PARTS = 10
MB = 1e6


def rss_bytes(pid: int) -> int:
    """The resident set size of process ``pid``."""
    return int(psutil.Process(pid).memory_info().rss)


def own_peak_rss() -> int:
    """This process's peak RSS since it started.

    Linux's ``VmHWM`` is the high-water mark of this program's own memory; ``ru_maxrss`` is
    not, as it keeps the parent's peak from before ``exec`` (the harness's, here).
    """
    with contextlib.suppress(OSError):
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak if sys.platform == "darwin" else peak * 1024


# -- the child -----------------------------------------------------------------------------------
def _say(**fields: Any) -> None:
    print(json.dumps(fields), flush=True)


async def _child(path: Path, steps: int) -> None:
    pid = os.getpid()
    _say(phase="imported", points=0, rss=rss_bytes(pid), seconds=0.0)
    async with tracked_run(path) as (tracker, run_id):
        _say(phase="opened", points=0, rss=rss_bytes(pid), seconds=0.0)
        log = tracker.log_metric_nowait
        before = tracker.stats().committed
        chunk = steps // PARTS
        start = time.perf_counter()
        for part in range(PARTS):
            for step in range(part * chunk, (part + 1) * chunk):
                value = 1.0 / (step + 1)
                for key in KEYS:
                    log(run_id, key, step, value)
            elapsed = time.perf_counter() - start
            points = (part + 1) * chunk * len(KEYS)
            _say(phase="logging", points=points, rss=rss_bytes(pid), seconds=elapsed)
        await tracker.flush()
        elapsed = time.perf_counter() - start
        stats = tracker.stats()
        _say(
            phase="flushed",
            points=stats.committed - before,
            rss=rss_bytes(pid),
            seconds=elapsed,
            dropped=stats.dropped,
        )
    _say(phase="closed", points=steps * len(KEYS), rss=rss_bytes(pid), peak=own_peak_rss())


# -- the parent ----------------------------------------------------------------------------------
def _sample(pid: int, process: subprocess.Popen[str], peak: list[int]) -> None:
    while process.poll() is None:
        try:
            peak[0] = max(peak[0], rss_bytes(pid))
        except psutil.Error:
            return
        time.sleep(0.02)


def run(context: Context) -> CaseResult:
    steps = context.config.n(1_000_000, 100_000)
    points = steps * len(KEYS)
    result = CaseResult(
        6,
        "Memory",
        f"{points:,} points ({len(KEYS)} keys × {steps:,} steps) through log_metric_nowait in a "
        "tight loop, in a child process, default options (max_pending 100,000, on_full block)",
    )
    path = context.path("memory.db")
    process = subprocess.Popen(
        [sys.executable, "-m", "benchmarks.case_memory", "--child", str(path), str(steps)],
        cwd=REPO_ROOT,
        stdout=subprocess.PIPE,
        text=True,
    )
    sampled = [0]
    sampler = threading.Thread(target=_sample, args=(process.pid, process, sampled))
    sampler.start()
    assert process.stdout is not None
    reports = [json.loads(line) for line in process.stdout]
    process.wait()
    sampler.join()
    if process.returncode != 0 or not reports or reports[-1]["phase"] != "closed":
        raise RuntimeError(f"the memory child failed (exit {process.returncode}): {reports[-1:]}")
    by_phase = {r["phase"]: r for r in reports if r["phase"] != "logging"}
    logging = [r for r in reports if r["phase"] == "logging"]
    flushed = by_phase["flushed"]
    if flushed["points"] != points or flushed["dropped"]:
        raise RuntimeError(
            f"committed {flushed['points']} of {points}, dropped {flushed['dropped']}"
        )
    opened = by_phase["opened"]["rss"]
    first, last = logging[0]["rss"], max(r["rss"] for r in logging)
    result.rows += [
        Row(
            "peak RSS (the child's VmHWM)",
            by_phase["closed"]["peak"] / MB,
            "MB",
            at_most(PEAK_TARGET_MB),
        ),
        Row("peak RSS (sampled every 20 ms)", sampled[0] / MB, "MB"),
        Row("RSS after imports and opening the tracker", opened / MB, "MB"),
        Row(
            f"RSS growth from {logging[0]['points']:,} points to {points:,}",
            (last - first) / MB,
            "MB",
            note="flat means the queue bounds memory",
        ),
        Row("logging rate, until flush() returned", points / flushed["seconds"], "pts/s"),
    ]
    series = ", ".join(f"{r['points'] / 1e6:g}M {r['rss'] / MB:.0f}" for r in logging)
    result.notes.append(f"RSS (MB) while logging: {series}; after flush {flushed['rss'] / MB:.0f}")
    return result


CASE = Case("memory", 6, "Memory", run)


def _main() -> None:
    parser = argparse.ArgumentParser(description="the child process of the memory case")
    parser.add_argument("--child", type=Path, required=True, help="database path")
    parser.add_argument("steps", type=int)
    args = parser.parse_args()
    asyncio.run(_child(args.child, args.steps))


if __name__ == "__main__":
    _main()
