"""Case 12, MLflow server: the real MLflow client against ``runjournal server``.

The issue's workload: 10 runs × 1,000 steps × 5 metrics through the sync client's
``log_metrics``, a sync ``log_metric`` round-trip probe (answered only after its commit),
and 100,000 points in the client's async mode. The baseline in the same run is a read
(``get-experiment-by-name``) on the same connection: ``log_metric`` minus it is what the
write and its commit cost. With ``--peers-python`` naming an interpreter that has full
``mlflow`` (``make bench-peers``), the same workload also runs against ``mlflow server``
on SQLite, and runjournal is put in ratio to it.

The MLflow client's own CPU time per call (about 2.5 ms here: it tries a dozen imports to
detect Databricks on every request) is reported too: no server can make the client faster
than that, so each ratio is shown beside its ceiling, mlflow server's time per call over the
client's own CPU.

``mlflow server`` takes 10-50 ms a request here, so its async phase is shorter
(``MLFLOW_ASYNC_POINTS``): rates in points per second are compared, not times. Its workload
has a time limit (``MLFLOW_TIMEOUT_S``); a phase it does not finish is reported as such,
with the phases before it, and the server's whole process group (its uvicorn workers and
job consumers) is stopped at the end.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchmarks._harness import REPO_ROOT, Case, CaseResult, Context, Row, at_least, at_most

__all__ = ["CASE"]

TIMEOUT_S = 1_800.0
MLFLOW_TIMEOUT_S = (1_200, 180)
"""How long ``mlflow server``'s workload may take (full run, quick run) before the phases left
are given up: its sync phases take about 10 minutes of a full run."""


def _async_points(context: Context, *, peer: bool) -> int:
    # mlflow server logs about 17 async points a second here: 100,000 would take 1.5 hours.
    return context.config.n(5_000, 1_000) if peer else context.config.n(100_000, 5_000)


def _workload(
    uri: str, context: Context, *, peer: bool = False, timeout: float = TIMEOUT_S
) -> dict[str, float]:
    """The workload's numbers; a run cut by ``timeout`` gives those of the phases it finished."""
    config = context.config
    sizes = [
        config.n(10, 2),
        config.n(1_000, 100),
        config.n(500, 100),
        _async_points(context, peer=peer),
    ]
    command = [sys.executable, "-m", "benchmarks.mlflow_workload", uri, *map(str, sizes)]
    try:
        done = subprocess.run(
            command, cwd=REPO_ROOT, check=False, timeout=timeout, capture_output=True, text=True
        )
        out = done.stdout
        if done.returncode != 0 and not peer:
            raise RuntimeError(f"the MLflow workload failed: {done.stderr[-2000:]}")
    except subprocess.TimeoutExpired as exc:
        partial = exc.stdout
        out = partial.decode() if isinstance(partial, bytes) else (partial or "")
    lines = [line for line in out.strip().splitlines() if line.startswith("{")]
    result: dict[str, float] = json.loads(lines[-1]) if lines else {}
    return result


def _serving(
    command: list[str], *, first_line: bool, log: Path | None = None
) -> tuple[subprocess.Popen[str], str]:
    # A server whose output nobody reads goes to a file: a pipe would fill up with its access
    # log and stop it (mlflow server hung after about 1,300 requests that way).
    output = None if log is None else log.open("w")
    process = subprocess.Popen(
        command,
        stdout=subprocess.PIPE if first_line else output,
        stderr=subprocess.DEVNULL if output is None else output,
        text=True,
        cwd=REPO_ROOT,
        start_new_session=True,  # its own process group: its workers are stopped with it
    )
    if not first_line:
        return process, ""
    assert process.stdout is not None
    return process, process.stdout.readline().strip().rstrip("/")


def _stop(process: subprocess.Popen[str]) -> None:
    """SIGTERM to the server's process group, SIGKILL to what is left after 30 s."""
    try:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        pass
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=30)


def _runjournal(context: Context) -> dict[str, float]:
    db = context.path("mlflow-server.db")
    process, url = _serving(
        [sys.executable, "-m", "runjournal.cli", "--db", str(db), "server", "--port", "0"],
        first_line=True,
    )
    try:
        return _workload(url, context)
    finally:
        _stop(process)


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
        log=store / "server.log",
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
        limit = context.config.n(*MLFLOW_TIMEOUT_S)
        return _workload(url, context, peer=True, timeout=limit)
    finally:
        _stop(process)


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
        Row(
            "the MLflow client's own CPU per sync log_metrics call (against runjournal)",
            ours["sync_client_cpu_ms_per_call"],
            "ms",
            note=f"{ours['sync_ms_per_call']:.2f} ms a call in all",
        ),
        Row(
            "the MLflow client's own CPU per async point (against runjournal)",
            ours["async_client_cpu_ms_per_point"],
            "ms",
            note=f"{1000 / ours['async_points_per_s']:.2f} ms a point in all",
        ),
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
    if "sync_points_per_s" in theirs:
        result.rows += [
            Row("mlflow server: sync log_metrics", theirs["sync_points_per_s"], "pts/s"),
            Row(
                "runjournal ÷ mlflow server, sync pts/s",
                ours["sync_points_per_s"] / theirs["sync_points_per_s"],
                "×",
                at_least(20.0),
            ),
            Row(
                "ceiling of that ratio: mlflow server's time per call ÷ the client's own CPU",
                theirs["sync_ms_per_call"] / ours["sync_client_cpu_ms_per_call"],
                "×",
                note="what a server answering in no time would reach with this client",
            ),
        ]
    if "log_metric_median_ms" in theirs:
        result.rows.append(
            Row(
                "mlflow server: log_metric round trip, median", theirs["log_metric_median_ms"], "ms"
            )
        )
    if "async_points_per_s" in theirs:
        result.rows += [
            Row("mlflow server: async mode", theirs["async_points_per_s"], "pts/s"),
            Row(
                "runjournal ÷ mlflow server, async pts/s",
                ours["async_points_per_s"] / theirs["async_points_per_s"],
                "×",
                at_least(10.0),
            ),
            Row(
                "ceiling of that ratio: mlflow server's time per point ÷ the client's own CPU",
                1000 / theirs["async_points_per_s"] / ours["async_client_cpu_ms_per_point"],
                "×",
                note="the async client sends from threads of one process, so its CPU bounds it",
            ),
        ]
        result.notes.append(
            f"mlflow server's async phase logged {_async_points(context, peer=True):,} points "
            "(runjournal's the full count): rates are compared"
        )
    missing = [k for k in ("sync_points_per_s", "async_points_per_s") if k not in theirs]
    if missing:
        result.notes.append(
            f"mlflow server did not finish within {context.config.n(*MLFLOW_TIMEOUT_S):.0f} s: "
            f"no {', '.join(missing)} (its stderr is in server.log of the scratch dir, kept "
            "with --keep)"
        )
    return result


CASE = Case("mlflow-server", 12, "MLflow server", run)
