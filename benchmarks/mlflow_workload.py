"""The MLflow client workload of ``case_mlflow_server``, run in its own process against a URI.

``python -m benchmarks.mlflow_workload URI RUNS STEPS PROBES ASYNC_POINTS`` prints one JSON
object: the sync ``log_metrics`` rate, the ``log_metric`` and a read's round trips, and the
async-mode rate. Needs the MLflow client (the ``mlflow`` dependency group).
"""

from __future__ import annotations

import json
import os
import statistics
import sys
import time

os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")

import mlflow

__all__ = ["main"]

KEYS = ("loss", "acc", "lr", "grad_norm", "epoch")


def main(argv: list[str]) -> dict[str, float]:
    """Run the workload against the tracking URI ``argv[0]``; returns its numbers."""
    uri = argv[0]
    runs, steps, probes, async_points = (int(a) for a in argv[1:5])
    mlflow.set_tracking_uri(uri)
    mlflow.set_experiment("bench")
    client = mlflow.MlflowClient()

    started = time.perf_counter()
    for _ in range(runs):
        with mlflow.start_run():
            for step in range(steps):
                mlflow.log_metrics(dict.fromkeys(KEYS, 1.0 / (step + 1)), step=step)
    sync_seconds = time.perf_counter() - started

    writes: list[float] = []
    reads: list[float] = []
    with mlflow.start_run():
        for step in range(probes):
            t = time.perf_counter()
            mlflow.log_metric("probe", float(step), step=step)
            writes.append(time.perf_counter() - t)
            t = time.perf_counter()
            client.get_experiment_by_name("bench")
            reads.append(time.perf_counter() - t)

    mlflow.config.enable_async_logging()  # type: ignore[no-untyped-call]
    started = time.perf_counter()
    with mlflow.start_run():
        for step in range(async_points):
            mlflow.log_metric("loss", 1.0 / (step + 1), step=step)
    async_seconds = time.perf_counter() - started  # end_run drains the queue first
    mlflow.config.enable_async_logging(False)  # type: ignore[no-untyped-call]
    return {
        "sync_points_per_s": runs * steps * len(KEYS) / sync_seconds,
        "log_metric_median_ms": statistics.median(writes) * 1000,
        "read_median_ms": statistics.median(reads) * 1000,
        "async_points_per_s": async_points / async_seconds,
    }


if __name__ == "__main__":
    print(json.dumps(main(sys.argv[1:])))
