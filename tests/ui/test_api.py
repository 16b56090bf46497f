"""The JSON API, through an HTTP client against the app, on every store."""

from __future__ import annotations

import math
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from runjournal import Tracker
from runjournal.ui import create_app
from runjournal.ui.api import safe_filename
from runjournal.ui.live import event_message
from tests.conftest import StoreKind, make_store


@pytest.fixture
async def client(tracker: Tracker) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=create_app(tracker))
    async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1:8765") as c:
        yield c


async def _run(tracker: Tracker, name: str = "r", **params: Any) -> str:
    experiments = await tracker.list_experiments()
    exp = experiments[0].id if experiments else await tracker.create_experiment("e")
    run_id = await tracker.create_run(exp, name=name)
    if params:
        await tracker.log_params(run_id, params)
    return run_id


def _error(response: httpx.Response, status: int, code: str) -> str:
    assert response.status_code == status, response.text
    body = response.json()
    assert body["error"]["code"] == code
    message: str = body["error"]["message"]
    return message


async def test_experiments_list_with_run_counts(
    tracker: Tracker, client: httpx.AsyncClient
) -> None:
    exp = await tracker.create_experiment("first", {"lr": 0.1}, tags={"team": "a"})
    await tracker.create_run(exp)
    await tracker.create_run(exp)
    await tracker.create_experiment("second")
    await tracker.flush()
    response = await client.get("/api/experiments")
    assert response.status_code == 200
    assert int(response.headers["x-journal-position"]) == await tracker.store.head()
    body = response.json()
    assert [(e["name"], e["run_count"]) for e in body] == [("first", 2), ("second", 0)]
    assert body[0]["config"] == {"lr": 0.1}
    assert body[0]["tags"] == {"team": "a"}
    assert set(body[0]) == {
        "id", "name", "description", "config", "tags", "created_at", "updated_at", "run_count"
    }  # fmt: skip


async def test_runs_carry_params_and_metric_summaries(
    tracker: Tracker, client: httpx.AsyncClient
) -> None:
    run_id = await _run(tracker, lr=0.01, opt="adam")
    for step, value in [(0, 1.0), (2, 0.25), (1, 0.5)]:
        await tracker.log_metric(run_id, "loss", step, value)
    await tracker.flush()
    body = (await client.get("/api/runs")).json()
    assert body["total"] == 1
    assert body["next"] is None
    (run,) = body["runs"]
    assert run["params"] == {"lr": 0.01, "opt": "adam"}
    assert run["metrics"] == {
        "loss": {"last": 0.25, "last_step": 2, "min": 0.25, "max": 1.0, "count": 3}
    }
    assert run["status"] == "PENDING"


async def test_runs_filter_sort_and_page(tracker: Tracker, client: httpx.AsyncClient) -> None:
    ids = []
    for i, lr in enumerate([0.3, 0.1, 0.2, None]):
        params = {} if lr is None else {"lr": lr}
        ids.append(await _run(tracker, name=f"r{i}", **params))
        if lr is not None:
            await tracker.log_metric(ids[-1], "acc", 0, lr * 2)
    await tracker.flush()
    filtered = (await client.get("/api/runs", params={"filter": ["lr<0.25"]})).json()
    assert {r["name"] for r in filtered["runs"]} == {"r1", "r2"}
    by_param = (await client.get("/api/runs", params={"sort": "param:lr"})).json()
    assert [r["name"] for r in by_param["runs"]] == ["r1", "r2", "r0", "r3"]  # no lr: last
    by_metric = (
        await client.get("/api/runs", params={"sort": "metric:acc", "desc": "true"})
    ).json()
    assert [r["name"] for r in by_metric["runs"]] == ["r0", "r2", "r1", "r3"]
    pages: list[str] = []
    cursor: str | None = None
    while True:
        query: dict[str, Any] = {"limit": 3, "sort": "name"}
        if cursor is not None:
            query["cursor"] = cursor
        page = (await client.get("/api/runs", params=query)).json()
        assert page["total"] == 4
        pages += [r["name"] for r in page["runs"]]
        cursor = page["next"]
        if cursor is None:
            break
    assert pages == ["r0", "r1", "r2", "r3"]


async def test_runs_of_one_experiment_and_bad_input(
    tracker: Tracker, client: httpx.AsyncClient
) -> None:
    await _run(tracker)
    other = await tracker.create_experiment("other")
    await tracker.create_run(other, name="there")
    await tracker.flush()
    body = (await client.get("/api/runs", params={"experiment": other})).json()
    assert [r["name"] for r in body["runs"]] == ["there"]
    _error(
        await client.get("/api/runs", params={"experiment": "nope"}), 404, "EXPERIMENT_NOT_FOUND"
    )
    _error(await client.get("/api/runs", params={"filter": "no operator"}), 400, "BAD_REQUEST")
    _error(await client.get("/api/runs", params={"sort": "bogus"}), 400, "BAD_REQUEST")
    _error(await client.get("/api/runs", params={"cursor": "x"}), 400, "BAD_REQUEST")
    response = await client.get("/api/runs", params={"limit": "0"})
    _error(response, 400, "BAD_REQUEST")
    assert "x-journal-position" in response.headers


async def test_one_run_with_artifacts_and_span_id(
    tracker: Tracker, client: httpx.AsyncClient
) -> None:
    run_id = await _run(tracker)
    sha = await tracker.log_artifact(run_id, "model.bin", b"\x00weights")
    await tracker.set_span_id(run_id, "span-1")
    await tracker.flush()
    body = (await client.get(f"/api/runs/{run_id}")).json()
    assert body["span_id"] == "span-1"
    assert body["artifacts"] == [
        {"name": "model.bin", "sha256": sha, "size_bytes": 8, "created_at": pytest.approx(
            body["artifacts"][0]["created_at"])}
    ]  # fmt: skip
    message = _error(await client.get("/api/runs/nope"), 404, "RUN_NOT_FOUND")
    assert "nope" in message


async def test_artifact_download(tracker: Tracker, client: httpx.AsyncClient) -> None:
    run_id = await _run(tracker)
    # Names with CR/LF are refused at the call now; test_safe_filename covers control characters.
    sha = await tracker.log_artifact(run_id, '../x/"evil"; name.txt', b"<script>1</script>")
    await tracker.flush()
    for suffix in ("", f"?run={run_id}"):
        response = await client.get(f"/api/artifacts/{sha}{suffix}")
        assert response.status_code == 200
        assert response.content == b"<script>1</script>"
        assert response.headers["content-type"] == "application/octet-stream"
        assert response.headers["x-content-type-options"] == "nosniff"
        disposition = response.headers["content-disposition"]
        assert disposition.startswith('attachment; filename="_evil__ name.txt"'), disposition
    _error(await client.get("/api/artifacts/" + "0" * 64), 404, "ARTIFACT_NOT_FOUND")
    _error(await client.get("/api/artifacts/model.bin"), 400, "BAD_REQUEST")
    _error(await client.get("/api/artifacts/..%2Fetc%2Fpasswd"), 404, "NOT_FOUND")


def test_safe_filename() -> None:
    assert safe_filename("a/b/c.txt") == "c.txt"
    assert safe_filename("..\\..\\win.ini") == "win.ini"
    assert safe_filename("\x00\x1f") == "__"
    assert safe_filename("..") == "artifact"


async def test_series_exact_and_downsampled(tracker: Tracker, client: httpx.AsyncClient) -> None:
    run_id = await _run(tracker)
    for step in range(500):
        tracker.log_metric_nowait(run_id, "loss", step, 1000.0 if step == 321 else step / 1000)
    await tracker.log_metric(run_id, "loss", 10, float("nan"))
    await tracker.log_metric(run_id, "loss", 11, math.inf)
    empty = await _run(tracker, name="empty")
    await tracker.flush()
    params: dict[str, Any] = {"run": [run_id, empty], "key": "loss", "points": 50}
    body = (await client.get("/api/series", params=params)).json()
    assert body["key"] == "loss"
    series, nothing = body["series"]
    assert nothing == {
        "run_id": empty, "total": 0, "exact": True, "step": [], "value": [], "min": [],
        "max": [], "nonfinite": 0, "time": [],
    }  # fmt: skip
    assert series["total"] == 502
    assert series["exact"] is False
    assert len(series["step"]) <= 50
    assert series["step"][0] == 0
    assert series["step"][-1] == 499
    assert all(a < b for a, b in zip(series["step"], series["step"][1:], strict=False))
    assert max(m for m in series["max"] if m is not None) == 1000.0
    assert series["nonfinite"] == 2
    zoom: dict[str, Any] = {"run": run_id, "key": "loss", "points": 50, "start": 9, "end": 12}
    exact = (await client.get("/api/series", params=zoom)).json()["series"][0]
    assert exact["exact"] is True
    assert exact["step"] == [9, 10, 10, 11, 11, 12]
    assert exact["value"] == [0.009, 0.01, None, 0.011, None, 0.012]
    assert exact["min"] == exact["max"] == exact["value"]
    assert exact["nonfinite"] == 2
    assert len(exact["time"]) == 6


async def test_series_limits(tracker: Tracker, client: httpx.AsyncClient) -> None:
    run_id = await _run(tracker)
    await tracker.flush()
    many = [f"run-{i}" for i in range(101)]
    message = _error(await client.get("/api/series", params={"run": many}), 400, "BAD_REQUEST")
    assert "100" in message  # checked before the missing key and the unknown runs
    repeated = {"run": [run_id] * 150, "key": "loss"}
    assert (await client.get("/api/series", params=repeated)).status_code == 200
    unknown = {"run": [run_id, "ghost"], "key": "loss"}
    assert "ghost" in _error(await client.get("/api/series", params=unknown), 404, "RUN_NOT_FOUND")
    for bad in ({"points": "1"}, {"points": "x"}, {"start": "-1"}, {"key": ""}):
        query: dict[str, Any] = {"run": run_id, "key": "loss", **bad}
        _error(await client.get("/api/series", params=query), 400, "BAD_REQUEST")


async def test_unknown_paths_and_openapi(client: httpx.AsyncClient) -> None:
    _error(await client.get("/api/nothing"), 404, "NOT_FOUND")
    document = (await client.get("/api/openapi.json")).json()
    assert "/api/series" in document["paths"]
    assert (await client.get("/favicon.ico")).status_code == 200
    home = await client.get("/")
    assert home.status_code == 200
    assert home.headers["content-type"].startswith("text/html")


def test_event_messages() -> None:
    from runjournal.events import ExperimentCreated, MetricsLogged, TagSet
    from runjournal.model import MetricPoint

    points = [MetricPoint(5, 1.0, 0.0), MetricPoint(3, 2.0, 0.0)]
    message = event_message(7, MetricsLogged("r1", "loss", points, 0.0))
    assert message.startswith(b"id: 7\nevent: metrics\ndata: {")
    assert b'"key":"loss"' in message
    assert b'"last_step":5' in message
    assert b'"count":2' in message
    assert message.endswith(b"\n\n")
    created = event_message(1, ExperimentCreated("e1", "<b>", 0.0))
    assert b"event: experiment" in created
    assert b'"experiment_id":"e1"' in created
    assert b'"run_id":"r"' in event_message(2, TagSet("r", "k", "v", 0.0))


@pytest.mark.parametrize("kind", ["sqlite-file", "postgres"])
async def test_the_app_serves_a_store_directly(tmp_path: Path, kind: StoreKind) -> None:
    """Not only a tracker: any store (so PostgreSQL serves it unchanged)."""
    store = make_store(kind, tmp_path)
    async with Tracker(store) as tracker:
        await _run(tracker)
        await tracker.flush()
        transport = httpx.ASGITransport(app=create_app(store))
        async with httpx.AsyncClient(transport=transport, base_url="http://localhost") as c:
            assert (await c.get("/api/runs")).json()["total"] == 1


async def test_a_silent_running_run_is_marked_stale(
    tracker: Tracker, client: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A RUNNING run whose last entry is 12 minutes old carries ``stale_for``; a live one not."""
    import time

    now = time.time()
    monkeypatch.setattr("runjournal.tracker._time", lambda: now - 720)
    silent = await _run(tracker, "silent")
    await tracker.start_run(silent)
    monkeypatch.setattr("runjournal.tracker._time", lambda: now)
    live = await _run(tracker, "live")
    await tracker.start_run(live)
    await tracker.flush()
    runs = {r["name"]: r for r in (await client.get("/api/runs")).json()["runs"]}
    assert runs["silent"]["last_activity"] == pytest.approx(now - 720)
    assert 700 < runs["silent"]["stale_for"] < 800
    assert runs["live"]["stale_for"] is None
    detail = (await client.get(f"/api/runs/{silent}")).json()
    assert 700 < detail["stale_for"] < 800


async def test_runs_pages_are_cut_by_opaque_cursors_of_one_order(
    tracker: Tracker, client: httpx.AsyncClient
) -> None:
    """A cursor continues its own order only; a run added meanwhile is not seen twice."""
    for i, lr in enumerate([0.5, 0.1, "x", 0.3, None]):
        await _run(tracker, name=f"r{i}", **({} if lr is None else {"lr": lr}))
    await tracker.flush()
    query: dict[str, Any] = {"sort": "param:lr", "desc": "true", "limit": 2}
    first = (await client.get("/api/runs", params=query)).json()
    assert [r["name"] for r in first["runs"]] == ["r2", "r0"]  # strings rank above numbers
    assert first["total"] == 5
    await _run(tracker, name="late", lr=0.9)  # sorts before the cursor: not on a later page
    await tracker.flush()
    rest = (await client.get("/api/runs", params={**query, "cursor": first["next"]})).json()
    assert [r["name"] for r in rest["runs"]] == ["r3", "r1"]
    last = (await client.get("/api/runs", params={**query, "cursor": rest["next"]})).json()
    assert [r["name"] for r in last["runs"]] == ["r4"]  # no lr: last
    assert last["next"] is None
    assert last["total"] == 6
    message = _error(
        await client.get("/api/runs", params={"sort": "name", "cursor": first["next"]}),
        400,
        "BAD_REQUEST",
    )
    assert "param:lr" in message
