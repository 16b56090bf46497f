"""The new faces' programs as users write them, for the tests that end them for real.

Usage: faces.py MODE DB. Prints the run id, then ``ready`` once 100 steps are logged.

- init-loop: ``rj.init`` and an endless ``rj.log`` loop (for SIGINT and SIGTERM)
- init-raise: ``rj.init``, 10 steps, then an uncaught ValueError with a long message
- init-exit: ``rj.init``, 10 steps, then the script ends without ``rj.finish``
- init-sweep: ``rj.init(experiment="sweep")`` at once with others (waits for a start file)
- async-loop: ``async with tracker.run(...)`` under ``asyncio.run``, an endless loop
- sync-loop: ``with SyncTracker.open(...)`` and ``with tracker.run(...)``, an endless loop
- portal-exit: a SyncTracker left open (queries ran on the portal) when the script ends

On SIGINT the loops print ``stopped at N``: N steps were logged before it.
"""

from __future__ import annotations

import asyncio
import os
import sys
import time

import runjournal as rj


def init_loop(db: str) -> None:
    run = rj.init(experiment="endings", config={"mode": "init"}, db=db)
    print(run.id, flush=True)
    step = 0
    try:
        while step < 200_000:
            time.sleep(0.001)
            rj.log({"loss": 1.0 / (step + 1)})
            step += 1
            if step == 100:
                print("ready", flush=True)
    except KeyboardInterrupt:
        print(f"stopped at {step}", flush=True)
        raise


def init_then(db: str, ending: str) -> None:
    run = rj.init(experiment="endings", db=db)
    print(run.id, flush=True)
    for _ in range(10):
        rj.log({"loss": 0.5})
    if ending == "raise":
        raise ValueError("m" * 3000)


def init_sweep(db: str, start: str) -> None:
    print("waiting", flush=True)
    while not os.path.exists(start):
        time.sleep(0.001)
    run = rj.init(experiment="sweep", db=db)
    rj.log({"loss": 1.0})
    print(run.id, flush=True)


async def async_loop(db: str) -> None:
    async with rj.Tracker.open(db) as tracker, tracker.run("endings") as run:
        print(run.id, flush=True)
        step = 0
        try:
            while step < 200_000:
                time.sleep(0.001)  # noqa: ASYNC251 - a synchronous training step
                await run.log({"loss": 1.0 / (step + 1)})
                step += 1
                if step == 100:
                    print("ready", flush=True)
        except (KeyboardInterrupt, asyncio.CancelledError):
            print(f"stopped at {step}", flush=True)
            raise


def sync_loop(db: str) -> None:
    with rj.SyncTracker.open(db) as tracker, tracker.run("endings") as run:
        print(run.id, flush=True)
        step = 0
        try:
            while step < 200_000:
                time.sleep(0.001)
                run.log({"loss": 1.0 / (step + 1)})
                step += 1
                if step == 100:
                    print("ready", flush=True)
        except KeyboardInterrupt:
            print(f"stopped at {step}", flush=True)
            raise


def portal_exit(db: str) -> None:
    tracker = rj.SyncTracker.open(db)
    experiment_id = tracker.ensure_experiment("portal")
    print(len(tracker.list_runs(experiment_id)), flush=True)


def main(mode: str, db: str) -> None:
    if mode == "init-loop":
        init_loop(db)
    elif mode in ("init-raise", "init-exit"):
        init_then(db, mode.removeprefix("init-"))
    elif mode == "init-sweep":
        init_sweep(db, sys.argv[3])
    elif mode == "async-loop":
        asyncio.run(async_loop(db))
    elif mode == "sync-loop":
        sync_loop(db)
    elif mode == "portal-exit":
        portal_exit(db)
    else:
        raise SystemExit(f"unknown mode {mode}")


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
