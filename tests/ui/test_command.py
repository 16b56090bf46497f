"""``runjournal ui`` as a user runs it: a real process, a real port, real signals."""

from __future__ import annotations

import asyncio
import contextlib
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from runjournal import Tracker

COMMAND = [sys.executable, "-m", "runjournal.cli", "ui"]


async def _make_database(path: Path) -> str:
    async with Tracker.open(path) as tracker:
        run_id = await tracker.create_run(await tracker.create_experiment("e"), name="r")
        await tracker.log_metric(run_id, "loss", 0, 1.0)
    return run_id


@pytest.fixture
def database(tmp_path: Path) -> tuple[Path, str]:
    path = tmp_path / "experiments.db"
    return path, asyncio.run(_make_database(path))


@contextlib.contextmanager
def serving(*args: str) -> Iterator[tuple[subprocess.Popen[str], str]]:
    """The command running; yields it and the address of its first stdout line."""
    process = subprocess.Popen(
        [*COMMAND, *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        assert process.stdout is not None
        url = process.stdout.readline().strip()
        yield process, url
    finally:
        if process.poll() is None:
            process.kill()
        process.wait()
        for stream in (process.stdout, process.stderr):
            if stream is not None:
                stream.close()


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def test_first_line_is_the_address_of_the_chosen_port(database: tuple[Path, str]) -> None:
    path, _ = database
    port = _free_port()
    with serving("--db", str(path), "--port", str(port)) as (process, url):
        assert url == f"http://127.0.0.1:{port}/"
        response = httpx.get(url + "api/experiments", timeout=10)
        assert response.status_code == 200
        assert response.json()[0]["name"] == "e"
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=10) == 0


def _open_event_stream(url: str, got: list[str], ready: threading.Event) -> None:
    with (
        contextlib.suppress(httpx.HTTPError),
        httpx.stream("GET", url + "api/events?after=0", timeout=30) as response,
    ):
        for line in response.iter_lines():
            got.append(line)
            if line.startswith("id:"):
                ready.set()


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_a_signal_stops_it_with_exit_code_0_even_with_a_stream_open(
    database: tuple[Path, str], signum: signal.Signals
) -> None:
    path, _ = database
    with serving("--db", str(path), "--port", "0") as (process, url):
        assert url.startswith("http://127.0.0.1:")
        assert not url.endswith(":0/")
        got: list[str] = []
        ready = threading.Event()
        reader = threading.Thread(target=_open_event_stream, args=(url, got, ready), daemon=True)
        reader.start()
        assert ready.wait(10), got
        assert "event: experiment" in got
        started = time.monotonic()
        process.send_signal(signum)
        assert process.wait(timeout=10) == 0
        assert time.monotonic() - started < 5
        assert process.stderr is not None
        assert "Traceback" not in process.stderr.read()
        reader.join(5)


def test_live_events_resume_after_the_last_event_id(database: tuple[Path, str]) -> None:
    path, run_id = database
    with serving("--db", str(path), "--port", "0") as (process, url):
        head = int(httpx.get(url + "api/runs", timeout=10).headers["x-journal-position"])

        async def log_more() -> None:
            async with Tracker.open(path) as tracker:
                await tracker.log_metric(run_id, "loss", 7, 0.5)

        asyncio.run(log_more())
        headers = {"Last-Event-ID": str(head)}
        with httpx.stream("GET", url + "api/events", headers=headers, timeout=10) as response:
            assert response.headers["content-type"].startswith("text/event-stream")
            lines: list[str] = []
            for line in response.iter_lines():
                lines.append(line)
                if line.startswith("data:"):
                    break
        assert f"id: {head + 1}" in lines
        assert "event: metrics" in lines
        data = lines[-1]
        assert f'"run_id":"{run_id}"' in data
        assert '"last_step":7' in data
        assert '"count":1' in data
        process.send_signal(signal.SIGINT)
        assert process.wait(timeout=10) == 0


def _error_of(*args: str) -> tuple[int, str, str]:
    done = subprocess.run(
        [*COMMAND, *args], check=False, capture_output=True, text=True, timeout=60
    )
    return done.returncode, done.stdout, done.stderr


def test_a_port_in_use_is_a_one_line_error(database: tuple[Path, str]) -> None:
    path, _ = database
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        code, out, err = _error_of("--db", str(path), "--port", str(port))
    assert code == 1
    assert out == ""
    assert err.count("\n") == 1
    assert err.startswith("runjournal: error:")


def test_a_missing_database_is_a_one_line_error(tmp_path: Path) -> None:
    missing = tmp_path / "missing.db"
    code, out, err = _error_of("--db", str(missing), "--port", "0")
    assert (code, out) == (1, "")
    assert err.count("\n") == 1
    assert "no database" in err
    assert not missing.exists()


def test_a_file_that_is_not_a_runjournal_database_is_refused(tmp_path: Path) -> None:
    other = tmp_path / "notes.db"
    other.write_text("just text\n")
    code, out, err = _error_of("--db", str(other), "--port", "0")
    assert (code, out) == (1, "")
    assert err.count("\n") == 1
    assert "not" in err


def test_a_public_bind_needs_a_token(database: tuple[Path, str]) -> None:
    path, _ = database
    code, out, err = _error_of("--db", str(path), "--host", "0.0.0.0", "--port", "0")
    assert (code, out) == (1, "")
    assert err.count("\n") == 1
    assert "--token" in err


def test_a_token_guards_the_served_api(database: tuple[Path, str]) -> None:
    path, _ = database
    with serving("--db", str(path), "--port", "0", "--token", "tok") as (process, url):
        assert httpx.get(url + "api/runs", timeout=10).status_code == 401
        good = httpx.get(url + "api/runs", headers={"Authorization": "Bearer tok"}, timeout=10)
        assert good.status_code == 200
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=10) == 0
