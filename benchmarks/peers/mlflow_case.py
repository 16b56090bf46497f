"""MLflow with a local SQLite tracking store (``sqlite:///...``), no tracking server.

Two cases: ``log_metric`` (one synchronous call per point, the common pattern) and ``log_batch``
(``MlflowClient.log_batch`` with 1,000 metrics per call, MLflow's per-request maximum).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from importlib import metadata
from typing import Any

from ._common import (
    METRIC_KEY,
    PROJECT_NAME,
    RUN_NAME,
    CaseDirs,
    PeerResult,
    PeerUnavailableError,
    build_result,
    check_series,
    expected_value,
)

PEER = "mlflow"
BATCH_SIZE = 1_000


def environment(dirs: CaseDirs) -> dict[str, str]:
    """Return the variables that point MLflow at a SQLite file in the case's store dir."""
    return {
        "MLFLOW_TRACKING_URI": f"sqlite:///{(dirs.store / 'mlflow.db').resolve()}",
        "MLFLOW_ENABLE_ASYNC_LOGGING": "false",
    }


def _import_mlflow() -> Any:
    try:
        import mlflow  # type: ignore[import-not-found,unused-ignore]
    except ImportError as exc:
        raise PeerUnavailableError(str(exc)) from exc
    return mlflow


def _start_run(mlflow: Any, dirs: CaseDirs) -> str:
    """Create the experiment and start the run; the schema migration happens here, untimed."""
    experiment_id = mlflow.create_experiment(
        PROJECT_NAME, artifact_location=(dirs.store / "artifacts").resolve().as_uri()
    )
    active = mlflow.start_run(experiment_id=experiment_id, run_name=RUN_NAME)
    run_id: str = active.info.run_id
    return run_id


def _finish(
    *,
    mlflow: Any,
    case: str,
    run_id: str,
    points: int,
    points_per_call: int,
    latencies: list[int],
    loop: int,
    elapsed: int,
    dirs: CaseDirs,
    notes: list[str],
) -> PeerResult:
    history = mlflow.MlflowClient().get_metric_history(run_id, METRIC_KEY)
    read_back = check_series(((int(m.step), float(m.value)) for m in history), points)
    return build_result(
        peer=PEER,
        case=case,
        n_points=points,
        points_per_call=points_per_call,
        latencies_ns=latencies,
        loop_ns=loop,
        elapsed_ns=elapsed,
        dirs=dirs,
        read_back=read_back,
        version=metadata.version("mlflow"),
        notes=[*notes, "read back with MlflowClient.get_metric_history"],
    )


def run_log_metric(points: int, dirs: CaseDirs) -> PeerResult:
    """Log ``points`` points with one synchronous ``mlflow.log_metric`` call each."""
    mlflow = _import_mlflow()
    run_id = _start_run(mlflow, dirs)
    log_metric: Callable[..., object] = mlflow.log_metric
    values = [expected_value(i) for i in range(points)]
    latencies = [0] * points
    clock = time.perf_counter_ns
    start = clock()
    for i in range(points):
        value = values[i]
        t0 = clock()
        log_metric(METRIC_KEY, value, step=i, synchronous=True)
        latencies[i] = clock() - t0
    loop = clock() - start
    mlflow.end_run()
    elapsed = clock() - start
    return _finish(
        mlflow=mlflow,
        case="mlflow_log_metric",
        run_id=run_id,
        points=points,
        points_per_call=1,
        latencies=latencies,
        loop=loop,
        elapsed=elapsed,
        dirs=dirs,
        notes=["mlflow.log_metric(synchronous=True) per point; end-to-end includes end_run()"],
    )


def run_log_batch(points: int, dirs: CaseDirs) -> PeerResult:
    """Log ``points`` points with ``MlflowClient.log_batch`` calls of 1,000 metrics each."""
    mlflow = _import_mlflow()
    from mlflow.entities import Metric  # type: ignore[import-not-found,unused-ignore]

    run_id = _start_run(mlflow, dirs)
    client = mlflow.MlflowClient()
    timestamp_ms = int(time.time() * 1000)
    batches = [
        [
            Metric(METRIC_KEY, expected_value(i), timestamp_ms, i)
            for i in range(first, min(first + BATCH_SIZE, points))
        ]
        for first in range(0, points, BATCH_SIZE)
    ]
    log_batch: Callable[..., object] = client.log_batch
    latencies = [0] * len(batches)
    clock = time.perf_counter_ns
    start = clock()
    for index, batch in enumerate(batches):
        t0 = clock()
        log_batch(run_id, metrics=batch, synchronous=True)
        latencies[index] = clock() - t0
    loop = clock() - start
    mlflow.end_run()
    elapsed = clock() - start
    return _finish(
        mlflow=mlflow,
        case="mlflow_log_batch",
        run_id=run_id,
        points=points,
        points_per_call=BATCH_SIZE,
        latencies=latencies,
        loop=loop,
        elapsed=elapsed,
        dirs=dirs,
        notes=[
            (
                f"MlflowClient.log_batch of {BATCH_SIZE} metrics per call (latencies are per"
                f" batch call; {len(batches)} calls, so p99.9 is the slowest call);"
                " Metric objects built before timing; end-to-end includes end_run()"
            ),
        ],
    )
