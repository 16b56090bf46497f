"""The MLflow endpoints beyond logging, with the real client: tags removed, experiments tagged,
searched, renamed, runs renamed, and clear refusals for what runjournal does not keep."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import httpx
import mlflow
import pytest
from mlflow.exceptions import MlflowException

from runjournal import Tracker
from runjournal.model import Experiment, Run
from tests.mlflow.conftest import Server, assert_agree, start_server

API = "/api/2.0/mlflow"


@pytest.fixture(scope="module")
def shared(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """One server for this module's tests (each works in experiments of its own)."""
    running = start_server(tmp_path_factory.mktemp("endpoints") / "experiments.db")
    try:
        yield running
    finally:
        assert running.stop() == 0


@pytest.fixture
def client(shared: Server) -> mlflow.MlflowClient:
    return mlflow.MlflowClient(tracking_uri=shared.url)


def _ours_run(server: Server, run_id: str) -> Run:
    async def read() -> Run:
        async with Tracker.open(server.db, read_only=True) as tracker:
            return await tracker.get_run(run_id)

    return asyncio.run(read())


def _ours_experiment(server: Server, experiment_id: str) -> Experiment:
    async def read() -> Experiment:
        async with Tracker.open(server.db, read_only=True) as tracker:
            return await tracker.get_experiment(experiment_id)

    return asyncio.run(read())


def test_delete_tag_removes_the_tag_and_a_missing_one_is_404(
    shared: Server, client: mlflow.MlflowClient
) -> None:
    experiment_id = client.create_experiment("tags-deleted")
    run_id = client.create_run(experiment_id).info.run_id
    client.set_tag(run_id, "keep", "1")
    client.set_tag(run_id, "drop", "2")
    client.delete_tag(run_id, "drop")
    assert "drop" not in client.get_run(run_id).data.tags
    assert client.get_run(run_id).data.tags["keep"] == "1"
    assert "drop" not in _ours_run(shared, run_id).tags
    with pytest.raises(MlflowException) as missing:
        client.delete_tag(run_id, "drop")
    assert missing.value.error_code == "RESOURCE_DOES_NOT_EXIST"
    client.set_terminated(run_id)
    assert_agree(shared, run_id)


def test_experiment_tags_are_set_later_and_read_back_both_ways(
    shared: Server, client: mlflow.MlflowClient
) -> None:
    experiment_id = client.create_experiment("tagged-later", tags={"team": "vision"})
    client.set_experiment_tag(experiment_id, "stage", "draft")
    client.set_experiment_tag(experiment_id, "stage", "final")  # a later value wins
    assert client.get_experiment(experiment_id).tags == {"team": "vision", "stage": "final"}
    assert _ours_experiment(shared, experiment_id).tags == {"team": "vision", "stage": "final"}
    with pytest.raises(MlflowException) as missing:
        client.set_experiment_tag("0" * 26, "k", "v")
    assert missing.value.error_code == "RESOURCE_DOES_NOT_EXIST"


def test_search_experiments_takes_mlflow_filters_order_by_and_pages(
    client: mlflow.MlflowClient,
) -> None:
    for name, team in [("srch-alpha", "a"), ("srch-beta", "b"), ("srch-Gamma", "a")]:
        client.create_experiment(name, tags={"team": team})

    def names(**kwargs: object) -> list[str]:
        return [e.name for e in client.search_experiments(**kwargs)]  # type: ignore[arg-type]

    assert names(filter_string="name = 'srch-beta'") == ["srch-beta"]
    assert names(filter_string="name LIKE 'srch-%'", order_by=["name ASC"]) == [
        "srch-Gamma",
        "srch-alpha",
        "srch-beta",
    ]
    assert names(filter_string="name ILIKE 'SRCH-G%'") == ["srch-Gamma"]
    assert names(filter_string="name != 'srch-beta' AND tags.team = 'a'", order_by=["name"]) == [
        "srch-Gamma",
        "srch-alpha",
    ]
    assert names(filter_string="tags.team LIKE 'b%'") == ["srch-beta"]
    # Newest first by default, as MLflow.
    assert names(filter_string="name LIKE 'srch-%'") == ["srch-Gamma", "srch-beta", "srch-alpha"]
    first = client.search_experiments(
        filter_string="name LIKE 'srch-%'", order_by=["name DESC"], max_results=2
    )
    assert [e.name for e in first] == ["srch-beta", "srch-alpha"]
    rest = client.search_experiments(
        filter_string="name LIKE 'srch-%'",
        order_by=["name DESC"],
        max_results=2,
        page_token=first.token,
    )
    assert [e.name for e in rest] == ["srch-Gamma"]
    assert rest.token is None
    for bad, says in [
        ("name > 'a'", "invalid operator >"),
        ("metrics.loss < 1", "experiments have no metrics"),
        ("creation_time > 'x'", "compares with a number"),
        ("name = 'a' OR name = 'b'", "OR is not supported"),
    ]:
        with pytest.raises(MlflowException) as refused:
            client.search_experiments(filter_string=bad)
        assert refused.value.error_code == "INVALID_PARAMETER_VALUE"
        assert says in refused.value.message, bad


def test_renaming_a_run_renames_it_and_its_run_name_tag_both_ways(
    shared: Server, client: mlflow.MlflowClient
) -> None:
    experiment_id = client.create_experiment("renamed-runs")
    run_id = client.create_run(experiment_id, run_name="before").info.run_id
    client.update_run(run_id, name="after")
    assert client.get_run(run_id).info.run_name == "after"
    assert client.get_run(run_id).data.tags["mlflow.runName"] == "after"
    assert _ours_run(shared, run_id).name == "after"
    # The tag renames the run too, as MLflow keeps them in step.
    client.set_tag(run_id, "mlflow.runName", "by-tag")
    assert _ours_run(shared, run_id).name == "by-tag"
    assert client.get_run(run_id).info.run_name == "by-tag"
    assert [r.info.run_id for r in client.search_runs([experiment_id], "run_name = 'by-tag'")] == [
        run_id
    ]
    client.set_terminated(run_id)
    assert_agree(shared, run_id)


def test_renaming_an_experiment_keeps_its_id_and_frees_the_old_name(
    shared: Server, client: mlflow.MlflowClient
) -> None:
    experiment_id = client.create_experiment("exp-old-name")
    client.create_experiment("exp-taken")
    client.rename_experiment(experiment_id, "exp-new-name")
    renamed = client.get_experiment_by_name("exp-new-name")
    assert renamed is not None
    assert renamed.experiment_id == experiment_id
    assert client.get_experiment_by_name("exp-old-name") is None
    assert _ours_experiment(shared, experiment_id).name == "exp-new-name"
    with pytest.raises(MlflowException) as taken:
        client.rename_experiment(experiment_id, "exp-taken")
    assert taken.value.error_code == "RESOURCE_ALREADY_EXISTS"
    # The old name is free: a new experiment gets it (and an id of its own).
    again = client.create_experiment("exp-old-name")
    assert again != experiment_id
    assert client.get_experiment(again).name == "exp-old-name"


def test_experiments_delete_is_refused_clearly_and_restore_of_a_live_one_is_a_no_op(
    client: mlflow.MlflowClient,
) -> None:
    experiment_id = client.create_experiment("not-deleted")
    with pytest.raises(MlflowException) as refused:
        client.delete_experiment(experiment_id)
    assert refused.value.error_code == "INVALID_STATE"
    assert "cannot be restored" in refused.value.message
    client.restore_experiment(experiment_id)
    assert client.get_experiment(experiment_id).lifecycle_stage == "active"


def test_logged_model_endpoints_answer_not_implemented_in_mlflows_error_shape(
    shared: Server, client: mlflow.MlflowClient
) -> None:
    experiment_id = client.create_experiment("no-models")
    # The client does not retry a 501 (MLFLOW_HTTP_REQUEST_MAX_RETRIES is 0 here anyway).
    with pytest.raises(MlflowException) as refused:
        client.create_logged_model(experiment_id, name="m")
    assert refused.value.error_code == "NOT_IMPLEMENTED"
    assert "logged models" in refused.value.message
    raw = httpx.get(f"{shared.url}{API}/logged-models/m-{'0' * 32}")
    assert raw.status_code == 501
    assert raw.json()["error_code"] == "NOT_IMPLEMENTED"
    # Searching still answers no models (downloads ask), and other unknown paths stay 404
    # ENDPOINT_NOT_FOUND, the code the client falls back on.
    search = httpx.post(f"{shared.url}{API}/logged-models/search", json={})
    assert search.json() == {"models": []}
    unknown = httpx.post(f"{shared.url}{API}/traces", json={})
    assert (unknown.status_code, unknown.json()["error_code"]) == (404, "ENDPOINT_NOT_FOUND")


def test_the_fluent_api_can_rename_its_active_run(tracking: Server, tmp_path: Path) -> None:
    del tmp_path
    mlflow.set_experiment("fluent-rename")
    with mlflow.start_run(run_name="first-name") as run:
        mlflow.MlflowClient().update_run(run.info.run_id, name="second-name")
        mlflow.log_metric("m", 1.0)
    assert _ours_run(tracking, run.info.run_id).name == "second-name"
    assert_agree(tracking, run.info.run_id)
