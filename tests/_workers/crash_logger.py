"""Log continuously until killed, printing what each completed flush acknowledged.

Usage: crash_logger.py DB RUN_ID

Logs steps 0, 1, 2, ... of two metrics ("a" then "b" at each step, so that the
journal interleaves them) and, every so often, a param. After each completed
``flush()`` it prints ``ACK <step>``: every step up to and including it was
committed. The parent kills this process with SIGKILL at a random moment.
"""

from __future__ import annotations

import asyncio
import sys

from runjournal import Tracker


def value(step: int) -> float:
    return step * 0.5 + 0.125


async def main(path: str, run_id: str) -> None:
    # A short flush interval: commits happen all the time, so kills land inside them too.
    tracker = Tracker.open(path, flush_interval=0.005, batch_size=500)
    async with tracker:
        print("READY", flush=True)
        step = 0
        while True:
            for _ in range(97):
                tracker.log_metric_nowait(run_id, "a", step, value(step))
                await tracker.log_metric(run_id, "b", step, -value(step))
                step += 1
            tracker.log_params_nowait(run_id, {"last": step - 1})
            if step % (97 * 5) == 0:
                await tracker.flush()
                print(f"ACK {step - 1}", flush=True)


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], sys.argv[2]))
