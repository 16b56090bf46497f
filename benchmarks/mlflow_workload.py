"""The MLflow client workload of ``case_mlflow_server``, run in its own process against a URI.

``python -m benchmarks.mlflow_workload URI RUNS STEPS PROBES ASYNC_POINTS`` prints one JSON
object: the sync ``log_metrics`` rate, the ``log_metric`` and a read's round trips, and the
async-mode rate, each rate with the CPU time this client process spent per call or point
(all its threads: the async mode sends from a pool of them). Needs the MLflow client (the ``mlflow`` dependency group).
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


def _report(numbers: dict[str, float]) -> None:
    """Print the numbers so far: a caller that gives up on a later phase still has them."""
    print(json.dumps(numbers), flush=True)


def main(argv: list[str]) -> dict[str, float]:
    """Run the workload against the tracking URI ``argv[0]``; returns its numbers.

    Prints the numbers after each phase (one JSON object a line, each holding all so far).
    """
    uri = argv[0]
    runs, steps, probes, async_points = (int(a) for a in argv[1:5])
    mlflow.set_tracking_uri(uri)
    mlflow.set_experiment("bench")
    client = mlflow.MlflowClient()

    started, cpu = time.perf_counter(), time.process_time()
    for _ in range(runs):
        with mlflow.start_run():
            for step in range(steps):
                mlflow.log_metrics(dict.fromkeys(KEYS, 1.0 / (step + 1)), step=step)
    sync_seconds = time.perf_counter() - started
    numbers = {
        "sync_points_per_s": runs * steps * len(KEYS) / sync_seconds,
        "sync_ms_per_call": sync_seconds / (runs * steps) * 1000,
        # This process's own CPU per call: a rate no server can lift the client above.
        "sync_client_cpu_ms_per_call": (time.process_time() - cpu) / (runs * steps) * 1000,
    }
    _report(numbers)

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

    numbers["log_metric_median_ms"] = statistics.median(writes) * 1000
    numbers["read_median_ms"] = statistics.median(reads) * 1000
    _report(numbers)

    mlflow.config.enable_async_logging()  # type: ignore[no-untyped-call]
    started, cpu = time.perf_counter(), time.process_time()
    with mlflow.start_run():
        for step in range(async_points):
            mlflow.log_metric("loss", 1.0 / (step + 1), step=step)
    async_seconds = time.perf_counter() - started  # end_run drains the queue first
    mlflow.config.enable_async_logging(False)  # type: ignore[no-untyped-call]
    numbers["async_points_per_s"] = async_points / async_seconds
    numbers["async_client_cpu_ms_per_point"] = (time.process_time() - cpu) / async_points * 1000
    return numbers


if __name__ == "__main__":
    _report(main(sys.argv[1:]))
