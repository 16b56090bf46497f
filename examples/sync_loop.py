"""The shortest path: a plain synchronous training loop with ``rj.init / rj.log / rj.finish``.

``python examples/sync_loop.py [--db PATH] [--steps N]``. Logs a loss and an accuracy
at every step (steps 0, 1, 2, ... counted for you), then
reads the run back through ``SyncTracker`` and prints what was stored.
"""

from __future__ import annotations

import argparse
import math

import runjournal as rj


def train(db: str, steps: int) -> str:
    """Log a fake training run to ``db`` and return its id."""
    run = rj.init(experiment="sync-demo", config={"lr": 1e-3, "epochs": steps}, db=db)
    for step in range(steps):
        loss = math.exp(-step / 10)
        rj.log({"loss": loss, "accuracy": 1 - loss})
    rj.log_artifact("notes.txt", b"trained on nothing at all")
    rj.finish()
    return run.id


def report(db: str, run_id: str) -> None:
    with rj.SyncTracker.open(db) as tracker:
        run = tracker.get_run(run_id)
        points = tracker.get_metrics(run_id, "loss")
        print(f"run         {run_id} {run.status.value}")
        print(f"params      {tracker.get_params(run_id)}")
        print(f"loss        {len(points)} points, last step {points[-1].step}")
        print(f"context     host={run.tags.get('rj.host')} python={run.tags.get('rj.python')}")
        print(f"artifacts   {[a.name for a in tracker.list_artifacts(run_id)]}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--db", default="experiments.db")
    parser.add_argument("--steps", type=int, default=100)
    args = parser.parse_args()
    report(args.db, train(args.db, args.steps))


if __name__ == "__main__":
    main()
