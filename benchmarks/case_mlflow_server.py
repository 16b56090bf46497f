"""Case 12, MLflow server: the real MLflow client against ``runjournal server``.

The issue's workload: 10 runs × 1,000 steps × 5 metrics through the sync client's
``log_metrics``, a sync ``log_metric`` round-trip probe (answered only after its commit),
and 100,000 points in the client's async mode. The baseline in the same run is a read
(``get-experiment-by-name``) on the same connection: ``log_metric`` minus it is what the
write and its commit cost. With ``--peers-python`` naming an interpreter that has full
``mlflow`` (``make bench-peers``), the same workload also runs against ``mlflow server``
on SQLite, and runjournal is put in ratio to it.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchmarks._harness import REPO_ROOT, Case, CaseResult, Context, Row, at_least, at_most

__all__ = ["CASE"]

TIMEOUT_S = 1_800.0


def _workload(uri: str, context: Context) -> dict[str, float]:
    config = context.config
    sizes = [config.n(10, 2), config.n(1_000, 100), config.n(500, 100), config.n(100_000, 5_000)]
    command = [sys.executable, "-m", "benchmarks.mlflow_workload", uri, *map(str, sizes)]
    done = subprocess.run(
        command, cwd=REPO_ROOT, check=True, timeout=TIMEOUT_S, capture_output=True, text=True
    )
    result: dict[str, float] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def _serving(command: list[str], *, first_line: bool) -> tuple[subprocess.Popen[str], str]:
    process = subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, cwd=REPO_ROOT
    )
    assert process.stdout is not None
    return process, (process.stdout.readline().strip().rstrip("/") if first_line else "")


def _runjournal(context: Context) -> dict[str, float]:
    db = context.path("mlflow-server.db")
    process, url = _serving(
        [sys.executable, "-m", "runjournal.cli", "--db", str(db), "server", "--port", "0"],
        first_line=True,
    )
    try:
        return _workload(url, context)
    finally:
        process.terminate()
        process.wait(timeout=60)


def _has_mlflow_server(python: str) -> bool:
    probe = subprocess.run([python, "-c", "import mlflow.server"], check=False, capture_output=True)
    return probe.returncode == 0


def _mlflow(context: Context, python: str) -> dict[str, float]:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    store = Path(tempfile.mkdtemp(dir=context.config.workdir, prefix="mlflow-"))
    process, _ = _serving(
        [
            python,
            "-m",
            "mlflow",
            "server",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--backend-store-uri",
            f"sqlite:///{store / 'mlflow.db'}",
            "--artifacts-destination",
            str(store / "artifacts"),
        ],
        first_line=False,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        import httpx

        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            try:
                if httpx.get(url + "/health", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.5)
        return _workload(url, context)
    finally:
        process.terminate()
        process.wait(timeout=60)


def run(context: Context) -> CaseResult:
    config = context.config
    result = CaseResult(
        12,
        "MLflow server",
        f"the MLflow client: {config.n(10, 2)} runs × {config.n(1_000, 100)} steps × 5 metrics "
        f"by log_metrics (sync), {config.n(500, 100)} log_metric round trips, "
        f"{config.n(100_000, 5_000):,} points in async mode; one server process on SQLite",
    )
    ours = _runjournal(context)
    commit_ms = ours["log_metric_median_ms"] - ours["read_median_ms"]
    result.rows += [
        Row("runjournal server: sync log_metrics", ours["sync_points_per_s"], "pts/s"),
        Row(
            "runjournal server: log_metric round trip, median (after commit)",
            ours["log_metric_median_ms"],
            "ms",
            at_most(5.0),
        ),
        Row("baseline: a read's round trip, median", ours["read_median_ms"], "ms"),
        Row("the write and its commit (log_metric − read)", commit_ms, "ms"),
        Row("runjournal server: async mode", ours["async_points_per_s"], "pts/s"),
    ]
    python = config.peers_python
    if python is None or not _has_mlflow_server(python):
        result.notes.append(
            "mlflow server not measured: no interpreter with full mlflow (make bench-peers "
            "installs one in .venv-peers); the issue measured it at 90 pts/s sync, 52 ms "
            "log_metric"
        )
        return result
    theirs = _mlflow(context, python)
    result.rows += [
        Row("mlflow server: sync log_metrics", theirs["sync_points_per_s"], "pts/s"),
        Row("mlflow server: log_metric round trip, median", theirs["log_metric_median_ms"], "ms"),
        Row("mlflow server: async mode", theirs["async_points_per_s"], "pts/s"),
        Row(
            "runjournal ÷ mlflow server, sync pts/s",
            ours["sync_points_per_s"] / theirs["sync_points_per_s"],
            "×",
            at_least(20.0),
        ),
        Row(
            "runjournal ÷ mlflow server, async pts/s",
            ours["async_points_per_s"] / theirs["async_points_per_s"],
            "×",
            at_least(10.0),
        ),
    ]
    return result


CASE = Case("mlflow-server", 12, "MLflow server", run)
