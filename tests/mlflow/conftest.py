"""A real ``runjournal server`` process on a free port, and the real MLflow client pointed at it."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
# A client error must fail a test at once, not after minutes of retries.
os.environ.setdefault("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")

mlflow = pytest.importorskip("mlflow")


@dataclass
class Server:
    """A running ``runjournal server``: its address and its database."""

    url: str
    db: Path
    process: subprocess.Popen[str]

    def stop(self) -> int:
        """SIGTERM, as a service manager stops it; returns the exit code."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        return self.process.wait(timeout=30)


def start_server(db: Path, *args: str) -> Server:
    """``runjournal server --port 0`` on ``db``; returns once its address is printed."""
    process = subprocess.Popen(
        [sys.executable, "-m", "runjournal.cli", "--db", str(db), "server", "--port", "0", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert process.stdout is not None
    url = process.stdout.readline().strip()
    if not url:
        process.wait(timeout=10)
        assert process.stderr is not None
        raise AssertionError(f"the server did not start: {process.stderr.read()}")
    return Server(url.rstrip("/"), db, process)


@pytest.fixture
def server(tmp_path: Path) -> Iterator[Server]:
    """A server on a new database; stopped (SIGTERM, exit 0 expected) after the test."""
    running = start_server(tmp_path / "experiments.db")
    try:
        yield running
    finally:
        code = running.stop()
        for stream in (running.process.stdout, running.process.stderr):
            if stream is not None:
                stream.close()
        assert code == 0


@pytest.fixture
def tracking(server: Server, monkeypatch: pytest.MonkeyPatch) -> Iterator[Server]:
    """The MLflow client's tracking URI set to ``server``; no run left active afterwards."""
    monkeypatch.setenv("MLFLOW_TRACKING_URI", server.url)
    mlflow.set_tracking_uri(server.url)
    try:
        yield server
    finally:
        while mlflow.active_run() is not None:
            mlflow.end_run()
        mlflow.set_tracking_uri(None)
