"""The MLflow client's async logging: ten threads send log-batch requests at once, out of order."""

from __future__ import annotations

import mlflow

from tests.mlflow.conftest import Server, assert_agree

POINTS = 10_000


def test_ten_thousand_async_points_all_arrive_in_step_order(tracking: Server) -> None:
    mlflow.set_experiment("async")
    mlflow.config.enable_async_logging()  # type: ignore[no-untyped-call]
    try:
        with mlflow.start_run() as run:
            mlflow.log_params({"lr": 0.01, "epochs": 3})
            for step in range(POINTS):
                mlflow.log_metric("loss", 1.0 / (step + 1), step=step)
    finally:
        mlflow.config.enable_async_logging(False)  # type: ignore[no-untyped-call]
    client = mlflow.MlflowClient()
    history = client.get_metric_history(run.info.run_id, "loss")
    assert [m.step for m in history] == list(range(POINTS))
    assert [m.value for m in history] == [1.0 / (s + 1) for s in range(POINTS)]
    got = client.get_run(run.info.run_id)
    assert got.data.metrics["loss"] == 1.0 / POINTS
    assert got.data.params == {"lr": "0.01", "epochs": "3"}
    assert got.info.status == "FINISHED"
    assert_agree(tracking, run.info.run_id)
