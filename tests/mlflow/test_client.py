"""The real MLflow client (fluent API and ``MlflowClient``) against ``runjournal server``."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import mlflow
import pytest
from mlflow.exceptions import MlflowException

from runjournal import Tracker
from runjournal.model import FilterOp, ParamFilter
from tests.mlflow.conftest import Server, assert_agree


def test_a_fluent_run_logs_everything_and_reads_back_what_it_sent(
    tracking: Server, tmp_path: Path
) -> None:
    notes = tmp_path / "notes.txt"
    notes.write_text("a file from disk\n")
    mlflow.set_experiment("fluent")
    with mlflow.start_run(run_name="first") as run:
        mlflow.log_param("lr", 0.001)
        mlflow.log_params({"batch_size": 32, "layers": [1, 2], "dropout": None, "bn": True})
        mlflow.log_metric("loss", 0.9)  # no step: step 0
        mlflow.log_metric("loss", 0.5, step=1)
        mlflow.log_metrics({"acc": 0.75, "odd": float("nan"), "big": float("inf")}, step=2)
        mlflow.set_tag("team", "vision")
        mlflow.set_tags({"seed": 7})
        mlflow.log_artifact(str(notes))
        mlflow.log_artifact(str(notes), artifact_path="sub/dir")
        mlflow.log_text("some text", "texts/t.txt")
        mlflow.log_dict({"a": 1, "b": [2, 3]}, "config.json")
    run_id = run.info.run_id

    client = mlflow.MlflowClient()
    got = client.get_run(run_id)
    assert got.info.status == "FINISHED"
    assert got.info.run_name == "first"
    assert got.info.end_time >= got.info.start_time > 0
    # The client's own times, to the millisecond.
    assert got.info.start_time == run.info.start_time
    assert got.info.artifact_uri == f"mlflow-artifacts:/{got.info.experiment_id}/{run_id}/artifacts"
    # Params come back as exactly the strings the client sent (str(v)).
    assert got.data.params == {
        "lr": "0.001",
        "batch_size": "32",
        "layers": "[1, 2]",
        "dropout": "None",
        "bn": "True",
    }
    assert got.data.metrics["loss"] == 0.5
    assert got.data.metrics["acc"] == 0.75
    assert got.data.metrics["odd"] != got.data.metrics["odd"]  # NaN
    assert got.data.metrics["big"] == float("inf")
    assert got.data.tags["team"] == "vision"
    assert got.data.tags["seed"] == "7"
    assert got.data.tags["mlflow.runName"] == "first"
    assert [(m.step, m.value) for m in client.get_metric_history(run_id, "loss")] == [
        (0, 0.9),
        (1, 0.5),
    ]

    top = {(f.path, f.is_dir) for f in client.list_artifacts(run_id)}
    assert top == {
        ("notes.txt", False),
        ("sub", True),
        ("texts", True),
        ("config.json", False),
    }
    assert [f.path for f in client.list_artifacts(run_id, "sub/dir")] == ["sub/dir/notes.txt"]
    assert mlflow.artifacts.load_text(f"runs:/{run_id}/texts/t.txt") == "some text"
    assert mlflow.artifacts.load_dict(f"runs:/{run_id}/config.json") == {"a": 1, "b": [2, 3]}
    local = client.download_artifacts(run_id, "sub", str(tmp_path / "down"))
    assert (Path(local) / "dir" / "notes.txt").read_text() == "a file from disk\n"
    assert_agree(tracking, run_id)


def test_a_run_left_by_an_exception_is_failed(tracking: Server) -> None:
    mlflow.set_experiment("failing")

    def train() -> None:
        with mlflow.start_run() as run:
            started.append(run.info.run_id)
            mlflow.log_metric("loss", 1.0, step=0)
            raise RuntimeError("diverged")

    started: list[str] = []
    with pytest.raises(RuntimeError, match="diverged"):
        train()
    (run_id,) = started
    got = mlflow.MlflowClient().get_run(run_id)
    assert got.info.status == "FAILED"
    assert_agree(tracking, run_id)


def test_an_ended_run_resumes_and_keeps_its_history(tracking: Server) -> None:
    mlflow.set_experiment("resumable")
    with mlflow.start_run() as run:
        mlflow.log_metric("loss", 1.0, step=0)
    with mlflow.start_run(run_id=run.info.run_id):
        assert mlflow.MlflowClient().get_run(run.info.run_id).info.status == "RUNNING"
        mlflow.log_metric("loss", 0.5, step=1)
    client = mlflow.MlflowClient()
    assert client.get_run(run.info.run_id).info.status == "FINISHED"
    assert [m.value for m in client.get_metric_history(run.info.run_id, "loss")] == [1.0, 0.5]
    assert_agree(tracking, run.info.run_id)


def test_a_param_cannot_change_but_may_be_logged_again(tracking: Server) -> None:
    mlflow.set_experiment("params")
    with mlflow.start_run() as run:
        mlflow.log_param("lr", 0.1)
        mlflow.log_param("lr", 0.1)
        with pytest.raises(MlflowException, match="INVALID_PARAMETER_VALUE") as caught:
            mlflow.log_param("lr", 0.2)
        assert "lr" in str(caught.value)
        with pytest.raises(MlflowException, match="INVALID_PARAMETER_VALUE"):
            mlflow.log_params({"lr": 0.3, "new": 1})
    got = mlflow.MlflowClient().get_run(run.info.run_id)
    assert got.data.params == {"lr": "0.1"}  # the refused batch logged nothing
    assert_agree(tracking, run.info.run_id)


def test_client_runs_and_experiments_search_and_history(tracking: Server) -> None:
    client = mlflow.MlflowClient()
    first = client.create_experiment("searched", tags={"owner": "me"})
    assert client.get_experiment(first).tags == {"owner": "me"}
    by_name = client.get_experiment_by_name("searched")
    assert by_name is not None
    assert by_name.experiment_id == first
    with pytest.raises(MlflowException, match="RESOURCE_ALREADY_EXISTS"):
        client.create_experiment("searched")
    run_ids = []
    for i in range(3):
        run = client.create_run(first, run_name=f"r{i}")
        client.log_batch(
            run.info.run_id,
            metrics=[
                mlflow.entities.Metric("m", float(s), 1_700_000_000_000 + s, s) for s in range(60)
            ],
        )
        client.set_terminated(run.info.run_id, "KILLED" if i == 2 else "FINISHED")
        run_ids.append(run.info.run_id)
    assert {e.name for e in client.search_experiments()} >= {"searched"}

    found = client.search_runs([first])
    assert [r.info.run_id for r in found] == run_ids[::-1]  # newest first
    assert [r.info.status for r in found] == ["KILLED", "FINISHED", "FINISHED"]
    page = client.search_runs([first], max_results=2)
    assert len(page) == 2
    assert page.token is not None
    rest = client.search_runs([first], max_results=2, page_token=page.token)
    assert [r.info.run_id for r in [*page, *rest]] == run_ids[::-1]
    fluent = mlflow.search_runs(experiment_names=["searched"], output_format="list")
    assert len(fluent) == 3

    history = client.get_metric_history(run_ids[0], "m")
    assert [(m.step, m.timestamp) for m in history] == [
        (s, 1_700_000_000_000 + s) for s in range(60)
    ]
    for run_id in run_ids:
        assert_agree(tracking, run_id)


def test_start_run_without_an_experiment_uses_default(tracking: Server) -> None:
    with mlflow.start_run() as run:
        mlflow.log_dict({"k": "v"}, "d.json")
    client = mlflow.MlflowClient()
    default = client.get_experiment_by_name("Default")
    assert default is not None
    assert default.lifecycle_stage == "active"
    assert client.get_run(run.info.run_id).info.experiment_id == default.experiment_id
    assert client.get_experiment("0").experiment_id == default.experiment_id
    text = mlflow.artifacts.load_text(f"runs:/{run.info.run_id}/d.json")
    assert json.loads(text) == {"k": "v"}
    assert_agree(tracking, run.info.run_id)


def test_search_runs_with_filters_order_by_and_deleted_runs(tracking: Server) -> None:
    mlflow.set_experiment("filtered")
    made: dict[str, str] = {}
    for name, lr, loss, team in [
        ("a", 0.001, 0.9, "vision"),
        ("b", 0.01, 0.5, "vision"),
        ("c", 0.1, 0.7, "nlp"),
    ]:
        with mlflow.start_run(run_name=name) as run:
            mlflow.log_param("lr", lr)
            mlflow.log_metric("loss", loss, step=1)
            mlflow.set_tag("team", team)
        made[name] = run.info.run_id

    def names(filter_string: str = "", order_by: list[str] | None = None) -> list[str]:
        runs = mlflow.search_runs(
            experiment_names=["filtered"],
            filter_string=filter_string,
            order_by=order_by,
            output_format="list",
        )
        return [r.info.run_name for r in runs]

    assert names() == ["c", "b", "a"]  # newest first
    assert names("params.lr = '0.01'") == ["b"]
    assert names("metrics.loss < 0.8 and tags.team = 'vision'") == ["b"]
    assert names("tags.`mlflow.runName` LIKE '%'", ["metrics.loss ASC"]) == ["b", "c", "a"]
    assert names("attributes.status = 'FINISHED'", ["params.lr DESC"]) == ["c", "b", "a"]
    assert names(f"attributes.run_id IN ('{made['a']}', '{made['c']}')") == ["c", "a"]
    with pytest.raises(MlflowException, match="INVALID_PARAMETER_VALUE"):
        names("metrics.loss LIKE '1'")

    client = mlflow.MlflowClient()
    client.delete_run(made["b"])
    assert names() == ["c", "a"]
    assert client.get_run(made["b"]).info.lifecycle_stage == "deleted"
    deleted = mlflow.search_runs(
        experiment_names=["filtered"], run_view_type=2, output_format="list"
    )
    assert [r.info.run_name for r in deleted] == ["b"]
    client.restore_run(made["b"])
    assert names() == ["c", "b", "a"]
    for run_id in made.values():
        assert_agree(tracking, run_id)


def test_numeric_params_sent_as_strings_filter_as_numbers_in_runjournal(tracking: Server) -> None:
    """The choice of ``runjournal.mlflow.mapping``: "0.001" is kept as 0.001 (it prints back the
    same), so runjournal's own ``lr < 1e-2`` finds it; "1e-3" stays a string."""
    mlflow.set_experiment("typed-params")
    with mlflow.start_run() as small:
        mlflow.log_params({"lr": 0.001, "note": "1e-3"})
    with mlflow.start_run() as large:
        mlflow.log_params({"lr": 0.1, "note": "x"})

    async def below() -> tuple[list[str], dict[str, object]]:
        async with Tracker.open(tracking.db, read_only=True) as tracker:
            experiment = await tracker.find_experiment("typed-params")
            assert experiment is not None
            found = await tracker.filter_runs(experiment.id, [ParamFilter("lr", FilterOp.LT, 1e-2)])
            return [r.id for r in found], await tracker.get_params(small.info.run_id)

    ids, params = asyncio.run(below())
    assert ids == [small.info.run_id]
    assert params == {"lr": 0.001, "note": "1e-3"}
    assert mlflow.MlflowClient().get_run(small.info.run_id).data.params == {
        "lr": "0.001",
        "note": "1e-3",
    }
    assert large.info.run_id not in ids
