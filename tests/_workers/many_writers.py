"""One of several processes logging to the same SQLite file at the same time.

Usage: many_writers.py DB RUN_ID KEY COUNT

Opens its own tracker, prints ``READY``, and waits for a line on stdin (so that
all writers start together, once every one of them has opened the file), then
logs COUNT points of KEY and leaves ``async with``. Prints ``DONE <committed>``.
"""

from __future__ import annotations

import asyncio
import sys

from runjournal import Tracker


async def main(path: str, run_id: str, key: str, count: int) -> None:
    async with Tracker.open(path) as tracker:
        print("READY", flush=True)
        await asyncio.to_thread(sys.stdin.readline)
        for step in range(count):
            if step % 2:
                tracker.log_metric_nowait(run_id, key, step, float(step))
            else:
                await tracker.log_metric(run_id, key, step, float(step))
        await tracker.flush()
        print(f"DONE {tracker.stats().committed}", flush=True)


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])))
