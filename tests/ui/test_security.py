"""The guard: Host check, token, read-only methods, security headers, escaping."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest

from runjournal import Tracker
from runjournal.ui import create_app
from runjournal.ui.security import CSP, host_name, is_loopback

XSS = ["<script>alert(1)</script>", '"><img src=x onerror=alert(1)>']


@pytest.fixture
async def memory_tracker() -> AsyncIterator[Tracker]:
    async with Tracker.open_in_memory() as tracker:
        yield tracker


def _client(app: object, host: str = "127.0.0.1:8765") -> httpx.AsyncClient:
    transport = httpx.ASGITransport(app=app)  # type: ignore[arg-type]
    return httpx.AsyncClient(transport=transport, base_url=f"http://{host}")


@pytest.mark.parametrize(
    "host", ["127.0.0.1:8765", "localhost:1", "[::1]:8765", "LOCALHOST", "127.0.0.1"]
)
async def test_loopback_hosts_are_served(memory_tracker: Tracker, host: str) -> None:
    async with _client(create_app(memory_tracker), host) as client:
        assert (await client.get("/api/experiments")).status_code == 200


@pytest.mark.parametrize("host", ["evil.example", "127.0.0.1.evil.example:8765", "10.0.0.5"])
async def test_other_hosts_get_403(memory_tracker: Tracker, host: str) -> None:
    """DNS rebinding: a page of another site that resolves to 127.0.0.1 still says its Host."""
    async with _client(create_app(memory_tracker), host) as client:
        for path in ("/api/experiments", "/", "/nothing"):
            response = await client.get(path)
            assert response.status_code == 403
            assert response.json()["error"]["code"] == "FORBIDDEN_HOST"


async def test_the_bound_host_is_served(memory_tracker: Tracker) -> None:
    app = create_app(memory_tracker, bound_host="192.168.1.7", token="t")
    async with _client(app, "anything.example") as client:  # a token: any Host by default
        response = await client.get("/api/experiments", headers={"Authorization": "Bearer t"})
        assert response.status_code == 200
    app = create_app(memory_tracker, token="t", allowed_hosts=["box.lan"])
    async with _client(app, "other.lan") as client:
        response = await client.get("/api/experiments", headers={"Authorization": "Bearer t"})
        assert response.status_code == 403
    async with _client(app, "box.lan:8765") as client:
        response = await client.get("/api/experiments", headers={"Authorization": "Bearer t"})
        assert response.status_code == 200


@pytest.mark.parametrize("method", ["POST", "PUT", "PATCH", "DELETE", "OPTIONS", "TRACE"])
async def test_only_get_and_head(memory_tracker: Tracker, method: str) -> None:
    async with _client(create_app(memory_tracker)) as client:
        for path in ("/api/runs", "/", "/api/events", "/nothing"):
            response = await client.request(method, path)
            assert response.status_code == 405
            assert response.headers["allow"] == "GET, HEAD"
        assert (await client.head("/api/runs")).status_code == 200


async def test_a_token_is_checked_on_every_request(memory_tracker: Tracker) -> None:
    app = create_app(memory_tracker, token="s3cret")
    async with _client(app) as client:
        for path in ("/api/experiments", "/", "/favicon.ico", "/api/openapi.json"):
            response = await client.get(path)
            assert response.status_code == 401, path
            assert response.json()["error"]["code"] == "UNAUTHORIZED"
        wrong = await client.get("/api/experiments", headers={"Authorization": "Bearer nope"})
        assert wrong.status_code == 401
        assert (await client.get("/api/experiments?token=nope")).status_code == 401
        good = await client.get("/api/experiments", headers={"Authorization": "Bearer s3cret"})
        assert good.status_code == 200
        assert "set-cookie" not in good.headers
    async with _client(app) as browser:
        first = await browser.get("/?token=s3cret")
        assert first.status_code == 200
        cookie = first.headers["set-cookie"]
        assert "HttpOnly" in cookie
        assert "SameSite=Strict" in cookie
        # The cookie alone carries the next requests.
        assert (await browser.get("/api/experiments")).status_code == 200


async def test_security_headers_on_every_response(memory_tracker: Tracker) -> None:
    async with _client(create_app(memory_tracker)) as client:
        for path in ("/", "/api/experiments", "/nothing", "/favicon.ico"):
            response = await client.get(path)
            assert response.headers["content-security-policy"] == CSP
            assert response.headers["x-content-type-options"] == "nosniff"
            assert response.headers["x-frame-options"] == "DENY"
        assert "'unsafe-inline'" not in CSP
        assert "script-src 'self'" in CSP


async def test_user_strings_come_back_as_json_text(memory_tracker: Tracker) -> None:
    tracker = memory_tracker
    exp = await tracker.create_experiment(XSS[0], tags={XSS[0]: XSS[1]}, description=XSS[1])
    run_id = await tracker.create_run(exp, name=XSS[1], tags={XSS[1]: XSS[0]})
    await tracker.log_params(run_id, {XSS[0]: XSS[1], "nested": {XSS[1]: [XSS[0]]}})
    await tracker.log_metric(run_id, XSS[0], 0, 1.0)
    await tracker.log_artifact(run_id, XSS[1], b"x")
    await tracker.flush()
    async with _client(create_app(tracker)) as client:
        (experiment,) = (await client.get("/api/experiments")).json()
        assert experiment["name"] == XSS[0]
        assert experiment["tags"] == {XSS[0]: XSS[1]}
        response = await client.get(f"/api/runs/{run_id}")
        assert response.headers["content-type"] == "application/json"
        run = response.json()
        assert run["name"] == XSS[1]
        assert run["params"] == {XSS[0]: XSS[1], "nested": {XSS[1]: [XSS[0]]}}
        assert list(run["metrics"]) == [XSS[0]]
        assert run["artifacts"][0]["name"] == XSS[1]
        series = await client.get("/api/series", params={"run": run_id, "key": XSS[0]})
        assert series.json()["key"] == XSS[0]
        download = await client.get(f"/api/artifacts/{run['artifacts'][0]['sha256']}")
        assert "<" not in download.headers["content-disposition"]
        assert '"><' not in download.headers["content-disposition"]


def test_host_names_and_loopback() -> None:
    assert host_name("[::1]:80") == "::1"
    assert host_name("Example.COM:8080") == "example.com"
    assert host_name("::1") == "::1"
    assert is_loopback("127.0.0.2")
    assert is_loopback("::1")
    assert is_loopback("localhost")
    assert not is_loopback("0.0.0.0")
    assert not is_loopback("192.168.0.1")
    assert not is_loopback("example.com")
