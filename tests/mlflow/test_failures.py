"""When the store fails or refuses: MLflow's JSON error body with the right status, told to the
request whose events failed, and nothing accepted is lost."""

from __future__ import annotations

import asyncio
import math
import sqlite3
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path

import httpx
import mlflow
import pytest
import uvicorn
from mlflow.exceptions import MlflowException

from runjournal import Tracker
from runjournal.server.app import create_server_app
from runjournal.stores import SqliteBackend
from runjournal.ui.server import address, bind
from tests.mlflow.conftest import Server

API = "/api/2.0/mlflow"


@contextmanager
def serving(store: SqliteBackend) -> Iterator[str]:
    """``runjournal server``'s app on ``store``, under a real uvicorn on a thread of this process
    (so that the test can reach into the store: fill its disk, then give room again)."""
    sock = bind("127.0.0.1", 0)
    url = address(sock).rstrip("/")
    servers: list[uvicorn.Server] = []
    started = threading.Event()

    async def main() -> None:
        async with Tracker(store) as tracker:
            app = create_server_app(tracker)
            config = uvicorn.Config(app, log_level="critical", lifespan="off", access_log=False)
            server = uvicorn.Server(config)
            servers.append(server)
            started.set()
            await server.serve(sockets=[sock])

    thread = threading.Thread(target=asyncio.run, args=(main(),), daemon=True)
    thread.start()
    assert started.wait(30)
    deadline = time.monotonic() + 30
    while not servers[0].started and time.monotonic() < deadline:
        time.sleep(0.01)
    try:
        yield url
    finally:
        servers[0].should_exit = True
        thread.join(60)
        sock.close()
        assert not thread.is_alive()


def _post(url: str, endpoint: str, body: dict[str, object]) -> httpx.Response:
    return httpx.post(f"{url}{API}/{endpoint}", json=body, timeout=60)


def test_a_full_disk_is_a_json_503_the_client_knows_and_nothing_is_lost(tmp_path: Path) -> None:
    path = tmp_path / "full.db"
    with serving(SqliteBackend(path)) as url:
        experiment_id = _post(url, "experiments/create", {"name": "full"}).json()["experiment_id"]
        run = _post(url, "runs/create", {"experiment_id": experiment_id, "start_time": 0})
        run_id = run.json()["run"]["info"]["run_id"]
    pages = sqlite3.connect(path).execute("PRAGMA page_count").fetchone()[0]
    # Room for a page or two: the first batch that needs more finds the "disk" full.
    store = SqliteBackend(path, pragmas={"max_page_count": pages + 2})
    # Noisy values, which metric chunks cannot squeeze into the pages left.
    big = [
        {"key": f"k{i}", "value": math.sin(i * 1000 + s), "timestamp": 1000 + s, "step": s}
        for i in range(5)
        for s in range(400)
    ]
    with serving(store) as url:
        full = _post(url, "runs/log-batch", {"run_id": run_id, "metrics": big})
        assert full.status_code == 503
        assert full.headers["content-type"] == "application/json"
        assert full.json()["error_code"] == "TEMPORARILY_UNAVAILABLE"
        assert "full" in full.json()["message"]
        # The real client retries a 503 (MLFLOW_HTTP_REQUEST_MAX_RETRIES times, 0 here), then
        # raises; the point it sent stays queued and is written once there is room.
        client = mlflow.MlflowClient(tracking_uri=url)
        with pytest.raises(MlflowException, match="503"):
            client.log_metric(run_id, "late", 2.0, timestamp=2000, step=0)
        # Room again: what was accepted is written, once, and the server answers 200 again.
        store.apply_pragmas({"max_page_count": 1_000_000_000})
        ok = _post(
            url,
            "runs/log-metric",
            {"run_id": run_id, "key": "after", "value": 3.0, "timestamp": 3000, "step": 0},
        )
        assert ok.status_code == 200
        got = client.get_run(run_id).data.metrics
    assert got == {
        **{f"k{i}": math.sin(i * 1000 + 399) for i in range(5)},
        "late": 2.0,
        "after": 3.0,
    }
    history = sqlite3.connect(path).execute("SELECT sum(points) FROM metrics").fetchone()[0]
    assert history == 5 * 400 + 2


def test_a_rejection_is_told_to_the_request_whose_events_were_rejected_only(
    server: Server,
) -> None:
    experiment_id = _post(server.url, "experiments/create", {"name": "two"}).json()["experiment_id"]
    doomed, alive = (
        _post(server.url, "runs/create", {"experiment_id": experiment_id}).json()["run"]["info"][
            "run_id"
        ]
        for _ in range(2)
    )
    for run_id in (doomed, alive):  # the server now knows both runs
        body = {"run_id": run_id, "key": "m", "value": 0.0, "timestamp": 1, "step": 0}
        assert _post(server.url, "runs/log-metric", body).status_code == 200

    async def delete_elsewhere() -> None:
        async with Tracker.open(server.db) as other:
            await other.delete_run(doomed)

    asyncio.run(delete_elsewhere())

    # Hold the write lock, so that the requests below queue up and share commits.
    holder = sqlite3.connect(server.db, isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")

    def log(args: tuple[str, int]) -> tuple[str, int, dict[str, str]]:
        run_id, step = args
        body = {"run_id": run_id, "key": "m", "value": 1.0, "timestamp": 2, "step": step}
        response = _post(server.url, "runs/log-metric", body)
        return run_id, response.status_code, response.json()

    work = [(run_id, step) for step in range(1, 11) for run_id in (doomed, alive)]
    with ThreadPoolExecutor(len(work)) as pool:
        answers = pool.map(log, work)
        time.sleep(0.5)
        holder.execute("ROLLBACK")
        holder.close()
        results = list(answers)
    for run_id, status, body in results:
        if run_id == doomed:
            assert (status, body["error_code"]) == (400, "INVALID_PARAMETER_VALUE"), body
            assert doomed in body["message"]
        else:
            assert (status, body) == (200, {}), body

    async def steps() -> list[int]:
        async with Tracker.open(server.db, read_only=True) as tracker:
            return [p.step for p in await tracker.get_metrics(alive, "m")]

    assert sorted(asyncio.run(steps())) == list(range(11))
