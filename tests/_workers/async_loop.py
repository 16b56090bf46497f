"""A training loop as a user writes it under ``asyncio.run``, for the Ctrl-C tests.

``python async_loop.py DB MODE``. Each step is synchronous work (1 ms) followed by
``await log_metric``. On Ctrl-C the run ends CANCELLED and the interrupt goes on.
MODE ``loop``: steps until interrupted (at most 20,000). MODE ``blocking``: after 100
steps, one long synchronous step (an evaluation with no ``await``), so that the first
Ctrl-C's cancellation is still pending when the second raises ``KeyboardInterrupt``.
"""

from __future__ import annotations

import asyncio
import sys
import time

from runjournal import RunStatus, Tracker


async def main(path: str, mode: str) -> None:
    async with Tracker.open(path) as tracker:
        experiment_id = await tracker.create_experiment("interrupts")
        run_id = await tracker.create_run(experiment_id)
        await tracker.start_run(run_id)
        print(run_id, flush=True)
        step = 0
        try:
            while step < 20_000:
                time.sleep(0.001)  # noqa: ASYNC251 - a synchronous training step
                await tracker.log_metric(run_id, "loss", step, 1.0 / (step + 1))
                step += 1
                if step == 100:
                    print("ready", flush=True)
                    if mode == "blocking":
                        time.sleep(60)  # noqa: ASYNC251 - a long synchronous eval
        except (KeyboardInterrupt, asyncio.CancelledError):
            await tracker.complete_run(run_id, RunStatus.CANCELLED)
            print(f"stopped at {step}", flush=True)
            raise
        await tracker.complete_run(run_id, RunStatus.SUCCESS)


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], sys.argv[2]))
