"""Call ``log_metric_nowait`` from the event loop's own thread with a tiny queue.

Usage: loop_block.py DB RUN_ID COUNT

With ``on_full="block"`` and ``max_pending=10`` every call after the tenth waits
for room. If the writer needed this (blocked) loop to run, it would deadlock; the
parent bounds the run with a timeout. Prints ``DONE <committed>`` at the end.
"""

from __future__ import annotations

import asyncio
import sys

from runjournal import Tracker


async def main(path: str, run_id: str, count: int) -> None:
    async with Tracker.open(path, max_pending=10, on_full="block") as tracker:
        for step in range(count):
            # No await in this loop: the loop thread itself is what blocks.
            tracker.log_metric_nowait(run_id, "loop", step, float(step))
        await tracker.flush()
        print(f"DONE {tracker.stats().committed}", flush=True)


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], sys.argv[2], int(sys.argv[3])))
