"""A real ``runjournal server`` process on a free port, and the real MLflow client pointed at it."""

from __future__ import annotations

import asyncio
import math
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from runjournal import Tracker
from runjournal.journal import verify
from runjournal.model import MetricPoint, Run

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

    def stop(self, how: signal.Signals = signal.SIGTERM) -> int:
        """SIGTERM, as a service manager stops it (or ``how``); returns the exit code."""
        if self.process.poll() is None:
            self.process.send_signal(how)
        try:
            return self.process.wait(timeout=30)
        finally:
            for stream in (self.process.stdout, self.process.stderr):
                if stream is not None:
                    stream.close()


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
        assert running.stop() == 0


@pytest.fixture
def tracking(server: Server, monkeypatch: pytest.MonkeyPatch) -> Iterator[Server]:
    """The MLflow client's tracking URI set to ``server``; no run left active afterwards."""
    monkeypatch.setenv("MLFLOW_TRACKING_URI", server.url)
    mlflow.set_tracking_uri(server.url)
    # The fluent API remembers the last experiment set, whose id this new server never had.
    monkeypatch.setattr(mlflow.tracking.fluent, "_active_experiment_id", None)
    try:
        yield server
    finally:
        while mlflow.active_run() is not None:
            mlflow.end_run()
        mlflow.set_tracking_uri(None)
        os.environ.pop("MLFLOW_EXPERIMENT_ID", None)  # set_experiment sets it


_STATUS = {"RUNNING": "RUNNING", "FINISHED": "SUCCESS", "FAILED": "FAILED", "KILLED": "CANCELLED"}


def _same_float(a: float, b: float) -> bool:
    return a == b or (math.isnan(a) and math.isnan(b))


def assert_agree(server: Server, run_id: str) -> None:
    """The run read through runjournal's own API and through the MLflow client is the same,
    and the database's projections agree with its journal (``verify``)."""
    client = mlflow.MlflowClient(tracking_uri=server.url)
    theirs = client.get_run(run_id)

    async def read() -> tuple[Run, dict[str, list[MetricPoint]], bool]:
        async with Tracker.open(server.db, read_only=True) as tracker:
            run = await tracker.get_run(run_id)
            keys = await tracker.list_metric_keys(run_id)
            series = {key: await tracker.get_metrics(run_id, key) for key in keys}
        return run, series, (await verify(server.db)).ok

    ours, series, clean = asyncio.run(read())
    assert clean, "verify() found the projections out of step with the journal"
    assert _STATUS[theirs.info.status] == ours.status.value
    assert theirs.info.experiment_id == ours.experiment_id
    assert theirs.data.params == {k: str(v) for k, v in ours.params.items()}
    assert theirs.data.tags == ours.tags
    assert sorted(theirs.data.metrics) == sorted(series)
    for key, points in series.items():
        history = client.get_metric_history(run_id, key)
        assert [(m.step, m.timestamp) for m in history] == [
            (p.step, round(p.timestamp * 1000)) for p in points
        ]
        assert all(_same_float(m.value, p.value) for m, p in zip(history, points, strict=True))
        last_step = max(p.step for p in points)
        assert any(
            p.step == last_step and _same_float(p.value, theirs.data.metrics[key]) for p in points
        )
