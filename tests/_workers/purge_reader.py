"""Read a database over and over while another process purges it; report what was seen.

Usage: purge_reader.py PATH LIVE_RUN_ID POINTS SECONDS

Opens the database read-only and, for SECONDS, reads the live run and its
``loss`` series, and the list of experiments. Every answer must be whole: the
live run with all POINTS points, whatever the purge is doing. Prints one JSON
object: how many rounds were read and every inconsistency met.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time

from runjournal import Tracker


async def main(path: str, run_id: str, points: int, seconds: float) -> None:
    rounds = 0
    problems: list[str] = []
    print("ready", flush=True)
    deadline = time.monotonic() + seconds
    async with Tracker.open(path, read_only=True) as tracker:
        while time.monotonic() < deadline:
            try:
                run = await tracker.get_run(run_id)
                series = await tracker.get_metrics(run_id, "loss")
                if len(series) != points or run.params != {"lr": 0.1}:
                    problems.append(f"partial answer: {len(series)} points, {run.params}")
                await tracker.list_experiments()
            except Exception as exc:  # noqa: BLE001 - every error is a finding, for the test
                problems.append(f"{type(exc).__name__}: {exc}")
            rounds += 1
    print(json.dumps({"rounds": rounds, "problems": problems[:20]}), flush=True)


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], sys.argv[2], int(sys.argv[3]), float(sys.argv[4])))
