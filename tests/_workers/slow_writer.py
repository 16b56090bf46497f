"""Keep a database open for writing, and log one point each time a line arrives on stdin.

Usage: slow_writer.py PATH

Prints the run id once the first point is committed, then "committed N" after
each further point (flushed, so the commit is on disk). Exits at end of input.
"""

from __future__ import annotations

import asyncio
import sys

from runjournal import Tracker


async def main(path: str) -> None:
    async with Tracker.open(path) as tracker:
        experiment = await tracker.create_experiment("live")
        run = await tracker.create_run(experiment)
        await tracker.log_metric(run, "loss", 0, 0.0)
        await tracker.flush()
        print(run, flush=True)
        step = 0
        while await asyncio.to_thread(sys.stdin.readline):
            step += 1
            await tracker.log_metric(run, "loss", step, float(step))
            await tracker.flush()
            print(f"committed {step + 1}", flush=True)


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1]))
