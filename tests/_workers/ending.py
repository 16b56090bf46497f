"""Queue many events, then end the process in one particular way.

Usage: ending.py MODE DB RUN_ID COUNT

Logs COUNT points of the metric "end" (steps 0..COUNT-1) while the writer is held
back (a long flush interval and a batch bigger than COUNT), so that all of them are
still queued when the ending begins. Prints ``PENDING <n>`` when they are. MODE:

- sigterm, sigint: then waits inside ``async with`` under ``asyncio.run`` for the
  parent to send that signal (SIGINT becomes KeyboardInterrupt/cancellation)
- sigterm-sync, sigint-sync: the same in plain synchronous code, no event loop
- exception: an exception escapes ``async with``
- sys-exit: ``sys.exit(3)`` inside ``async with``
- script-end: the script just ends, never closing the tracker (exit hooks drain)
- script-end-sync: the same with no event loop at all, only ``*_nowait`` calls
"""

from __future__ import annotations

import asyncio
import sys
import time
from typing import Any

from runjournal import Tracker

OPTIONS: dict[str, Any] = {
    "max_pending": 1_000_000,
    "batch_size": 1_000_000,
    "flush_interval": 60.0,
}
KEEP: list[Tracker] = []  # keeps an unclosed tracker alive to the very end, like a global


def log_all(tracker: Tracker, run_id: str, count: int) -> None:
    for step in range(count):
        tracker.log_metric_nowait(run_id, "end", step, float(step))
    print(f"PENDING {tracker.stats().pending}", flush=True)


def wait_for_signal() -> None:
    time.sleep(60)
    raise SystemExit("the signal never arrived")


async def in_async_with(mode: str, path: str, run_id: str, count: int) -> None:
    async with Tracker.open(path, **OPTIONS) as tracker:
        await tracker.get_run(run_id)  # opens the reader too, like a real training loop
        log_all(tracker, run_id, count)
        if mode in ("sigterm", "sigint"):
            await asyncio.sleep(60)
            raise SystemExit("the signal never arrived")
        if mode == "exception":
            raise RuntimeError("the training loop failed")
        if mode == "sys-exit":
            sys.exit(3)
        raise SystemExit(f"unknown mode {mode}")


async def script_end(path: str, run_id: str, count: int) -> None:
    tracker = Tracker.open(path, **OPTIONS)
    KEEP.append(tracker)
    await tracker.get_run(run_id)  # the reader thread is running too
    log_all(tracker, run_id, count)


def main(mode: str, path: str, run_id: str, count: int) -> None:
    if mode in ("sigterm", "sigint", "exception", "sys-exit"):
        asyncio.run(in_async_with(mode, path, run_id, count))
    elif mode == "script-end":
        asyncio.run(script_end(path, run_id, count))
    elif mode in ("script-end-sync", "sigterm-sync", "sigint-sync"):
        tracker = Tracker.open(path, **OPTIONS)
        KEEP.append(tracker)
        log_all(tracker, run_id, count)
        if mode != "script-end-sync":
            wait_for_signal()
    else:
        raise SystemExit(f"unknown mode {mode}")


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]))
