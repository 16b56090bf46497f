"""The wire protocol of ``runjournal server`` as the MLflow client relies on it, spoken raw."""

from __future__ import annotations

import asyncio
import signal
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path

import httpx
import mlflow
import pytest

from runjournal import Tracker
from tests.mlflow.conftest import Server, start_server

API = "/api/2.0/mlflow"
ARTIFACTS = "/api/2.0/mlflow-artifacts/artifacts"


def _post(server: Server, endpoint: str, body: Mapping[str, object]) -> httpx.Response:
    return httpx.post(f"{server.url}{API}/{endpoint}", json=body, timeout=30)


def _new_run(server: Server) -> tuple[str, str]:
    experiment_id = _post(server, "experiments/create", {"name": "raw"}).json()["experiment_id"]
    run = _post(server, "runs/create", {"experiment_id": experiment_id, "start_time": 0})
    assert run.status_code == 200
    return experiment_id, run.json()["run"]["info"]["run_id"]


def test_errors_are_json_4xx_with_an_mlflow_error_code(server: Server) -> None:
    missing = httpx.get(
        f"{server.url}{API}/experiments/get-by-name", params={"experiment_name": "nope"}
    )
    assert missing.status_code == 404
    assert missing.json()["error_code"] == "RESOURCE_DOES_NOT_EXIST"
    assert "nope" in missing.json()["message"]
    no_run = httpx.get(f"{server.url}{API}/runs/get", params={"run_id": "0" * 26})
    assert (no_run.status_code, no_run.json()["error_code"]) == (404, "RESOURCE_DOES_NOT_EXIST")
    unknown = _post(server, "runs/teleport", {})
    assert (unknown.status_code, unknown.json()["error_code"]) == (404, "ENDPOINT_NOT_FOUND")
    not_json = httpx.post(
        f"{server.url}{API}/runs/create",
        content=b"{not json",
        headers={"content-type": "application/json"},
    )
    assert (not_json.status_code, not_json.json()["error_code"]) == (400, "MALFORMED_REQUEST")
    _, run_id = _new_run(server)
    bad_step = _post(
        server,
        "runs/log-metric",
        {"run_id": run_id, "key": "m", "value": 1.0, "timestamp": 1, "step": 2.5},
    )
    assert (bad_step.status_code, bad_step.json()["error_code"]) == (
        400,
        "INVALID_PARAMETER_VALUE",
    )
    bad_status = _post(server, "runs/update", {"run_id": run_id, "status": "SLEEPING"})
    assert bad_status.status_code == 400
    assert "SLEEPING" in bad_status.json()["message"]


def test_a_write_needs_json_so_that_another_site_cannot_post_a_form(server: Server) -> None:
    form = httpx.post(
        f"{server.url}{API}/experiments/create",
        content=b'{"name": "csrf"}',
        headers={"content-type": "text/plain"},
    )
    assert form.status_code == 415
    got = httpx.get(
        f"{server.url}{API}/experiments/get-by-name", params={"experiment_name": "csrf"}
    )
    assert got.status_code == 404


def test_ids_are_strings_times_milliseconds_and_nonfinite_values_strings(server: Server) -> None:
    experiment_id, run_id = _new_run(server)
    batch = {
        "run_id": run_id,
        "metrics": [
            {"key": "nan", "value": "NaN", "timestamp": 1_700_000_000_123, "step": 0},
            {"key": "up", "value": "Infinity", "timestamp": 1_700_000_000_124, "step": 0},
            {"key": "down", "value": "-Infinity", "timestamp": 1_700_000_000_125, "step": 0},
            {"key": "x", "value": 2, "timestamp": 1_700_000_000_126, "step": 3},
        ],
    }
    assert _post(server, "runs/log-batch", batch).json() == {}
    run = httpx.get(f"{server.url}{API}/runs/get", params={"run_id": run_id}).json()["run"]
    assert run["info"]["experiment_id"] == experiment_id
    assert isinstance(run["info"]["start_time"], int)
    metrics = {m["key"]: m for m in run["data"]["metrics"]}
    assert metrics["nan"]["value"] == "NaN"
    assert metrics["up"]["value"] == "Infinity"
    assert metrics["down"]["value"] == "-Infinity"
    assert metrics["x"] == {"key": "x", "value": 2.0, "timestamp": 1_700_000_000_126, "step": 3}


def test_latest_metric_is_by_step_then_timestamp_and_history_pages(server: Server) -> None:
    _, run_id = _new_run(server)
    # Out of order, as the async client sends them; two points at the last step.
    points = [(5, 50.0, 1005), (9, 90.0, 1009), (9, 91.0, 1010), (1, 10.0, 1001)]
    for step, value, stamp in points:
        body = {"run_id": run_id, "key": "m", "value": value, "timestamp": stamp, "step": step}
        assert _post(server, "runs/log-metric", body).status_code == 200
    run = httpx.get(f"{server.url}{API}/runs/get", params={"run_id": run_id}).json()["run"]
    assert run["data"]["metrics"] == [{"key": "m", "value": 91.0, "timestamp": 1010, "step": 9}]
    seen: list[int] = []
    token = None
    pages = 0
    while True:
        query: dict[str, str | int] = {"run_id": run_id, "metric_key": "m", "max_results": 3}
        if token:
            query["page_token"] = token
        page = httpx.get(f"{server.url}{API}/metrics/get-history", params=query).json()
        seen.extend(m["step"] for m in page["metrics"])
        pages += 1
        token = page.get("next_page_token")
        if not token:
            break
    assert (seen, pages) == ([1, 5, 9, 9], 2)


def test_get_by_name_answers_the_oldest_of_experiments_sharing_a_name(server: Server) -> None:
    async def two_of_a_name() -> list[str]:
        async with Tracker.open(server.db) as tracker:
            return [await tracker.create_experiment("twin") for _ in range(2)]

    oldest, _ = asyncio.run(two_of_a_name())
    got = httpx.get(
        f"{server.url}{API}/experiments/get-by-name", params={"experiment_name": "twin"}
    )
    assert got.json()["experiment"]["experiment_id"] == oldest
    assert got.json()["experiment"]["lifecycle_stage"] == "active"


def test_artifact_paths_with_dot_dot_or_a_leading_slash_are_refused(server: Server) -> None:
    experiment_id, run_id = _new_run(server)
    base = f"{server.url}{ARTIFACTS}/{experiment_id}/{run_id}/artifacts"
    assert httpx.put(f"{base}/ok.txt", content=b"fine").status_code == 200
    # Percent-encoded, so that the HTTP client does not resolve the dots before sending.
    for bad in ("a/%2E%2E/%2E%2E/etc/passwd", "%2E%2E", "a/%2E/b", "a//b"):
        response = httpx.put(f"{base}/{bad}", content=b"x")
        assert response.status_code == 400, bad
        assert response.json()["error_code"] == "INVALID_PARAMETER_VALUE"
    listed = httpx.get(f"{server.url}{ARTIFACTS}", params={"path": "/etc"})
    assert listed.status_code == 400
    files = httpx.get(
        f"{server.url}{ARTIFACTS}", params={"path": f"{experiment_id}/{run_id}/artifacts"}
    ).json()
    assert files == {"files": [{"path": "ok.txt", "is_dir": False, "file_size": 4}]}
    # The newest artifact of a name is the one served.
    assert httpx.put(f"{base}/ok.txt", content=b"newer").status_code == 200
    assert httpx.get(f"{base}/ok.txt").content == b"newer"
    assert httpx.get(f"{base}/absent.txt").status_code == 404


def test_the_dashboard_stays_read_only_beside_the_writable_api(server: Server) -> None:
    page = httpx.get(server.url + "/")
    assert page.status_code == 200
    assert httpx.post(server.url + "/api/experiments", json={}).status_code == 405
    assert httpx.get(server.url + "/api/experiments").status_code == 200


def test_a_token_guards_every_path_and_the_client_sends_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    guarded = start_server(tmp_path / "t.db", "--token", "s3cret")
    try:
        url = f"{guarded.url}{API}/experiments/get-by-name"
        assert httpx.get(url, params={"experiment_name": "x"}).status_code == 401
        assert httpx.get(guarded.url + "/").status_code == 401
        monkeypatch.setenv("MLFLOW_TRACKING_TOKEN", "s3cret")
        client = mlflow.MlflowClient(tracking_uri=guarded.url)
        experiment_id = client.create_experiment("with-token")
        assert client.get_experiment(experiment_id).name == "with-token"
    finally:
        assert guarded.stop() == 0


def test_a_200_means_committed_even_if_the_server_is_killed_right_after(tmp_path: Path) -> None:
    running = start_server(tmp_path / "k.db")
    try:
        _, run_id = _new_run(running)
        body = {"run_id": run_id, "key": "m", "value": 1.5, "timestamp": 1000, "step": 0}
        assert _post(running, "runs/log-metric", body).status_code == 200
        assert _post(running, "runs/log-parameter", {"run_id": run_id, "key": "p", "value": "v"})
    finally:
        assert running.stop(signal.SIGKILL) == -signal.SIGKILL

    async def read() -> tuple[list[float], dict[str, object]]:
        async with Tracker.open(running.db, read_only=True) as tracker:
            points = await tracker.get_metrics(run_id, "m")
            return [p.value for p in points], await tracker.get_params(run_id)

    assert asyncio.run(read()) == ([1.5], {"p": "v"})


def test_binding_beyond_loopback_without_a_token_is_refused(tmp_path: Path) -> None:
    command = [sys.executable, "-m", "runjournal.cli", "--db", str(tmp_path / "x.db"), "server"]
    done = subprocess.run(
        [*command, "--host", "0.0.0.0", "--port", "0"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 1
    assert "--token" in done.stderr
    assert done.stdout == ""
