"""One of several processes logging to the same SQLite file at the same time.

Usage: many_writers.py DB RUN_ID KEY COUNT GO_FILE

Opens its own tracker, waits until GO_FILE exists (so that all writers start
together), logs COUNT points of KEY, and leaves ``async with``. Prints
``DONE <committed>``.
"""

from __future__ import annotations

import asyncio
import os
import sys
import time

from runjournal import Tracker


def wait_for(go_file: str) -> None:
    deadline = time.monotonic() + 60
    while not os.path.exists(go_file):
        if time.monotonic() > deadline:
            raise SystemExit("the go file never appeared")
        time.sleep(0.005)


async def main(path: str, run_id: str, key: str, count: int, go_file: str) -> None:
    async with Tracker.open(path) as tracker:
        await asyncio.to_thread(wait_for, go_file)
        for step in range(count):
            if step % 2:
                tracker.log_metric_nowait(run_id, key, step, float(step))
            else:
                await tracker.log_metric(run_id, key, step, float(step))
        await tracker.flush()
        print(f"DONE {tracker.stats().committed}", flush=True)


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]), sys.argv[5]))
