"""Case 8, peers: trackio, MLflow and wandb beside runjournal, in the same run.

The peers run through ``benchmarks.peers`` in their own interpreter (``--peers-python``,
``make bench-peers`` builds ``.venv-peers``), each case in a fresh process. Then runjournal
logs the very same workload here (one run, key ``loss``, steps ``0..N-1``, one call per
point) for caller cost and end to end, beside the raw ``executemany`` baseline, and every
peer is put in ratio to runjournal. Later cases of the same run (case 1) use these numbers.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Sequence
from typing import Any

from benchmarks._harness import (
    FACE,
    REPO_ROOT,
    Case,
    CaseResult,
    Context,
    Mode,
    PeerSummary,
    format_value,
    median,
    pipe_table,
    run_async,
)
from benchmarks.case_caller_cost import Latency, combine, measure, trackio_ratio_rows
from benchmarks.case_end_to_end import measure_raw, measure_runjournal

__all__ = ["CASE", "load_peers"]

PEER_TIMEOUT_S = 1_800.0
SERIES = ("loss",)


def load_peers(report: dict[str, Any]) -> dict[str, PeerSummary]:
    """The peers' JSON report (``benchmarks.peers --json``) by case id."""
    peers: dict[str, PeerSummary] = {}
    for item in report["results"]:
        peers[str(item["case"])] = PeerSummary(
            case=str(item["case"]),
            version=item.get("version"),
            points=int(item["n_points"]),
            points_per_call=int(item.get("points_per_call") or 1),
            mean_us=item.get("latency_mean_us"),
            median_us=item.get("latency_median_us"),
            p99_us=item.get("latency_p99_us"),
            pts_per_s=item.get("end_to_end_points_per_s"),
            bytes_per_point=item.get("bytes_per_point"),
            read_back=item.get("points_read_back"),
            error=item.get("error"),
        )
    return peers


def _run_peers(context: Context) -> dict[str, PeerSummary]:
    config = context.config
    assert config.peers_python is not None
    report = config.workdir / "peers.json"
    report.unlink(missing_ok=True)
    command = [config.peers_python, "-m", "benchmarks.peers", "--points",
               str(config.peers_points), "--json", str(report)]  # fmt: skip
    print("$ " + " ".join(command), file=sys.stderr, flush=True)
    # The peers' own table goes to our stderr: this case prints the combined one.
    subprocess.run(command, cwd=REPO_ROOT, check=True, timeout=PEER_TIMEOUT_S, stdout=sys.stderr)
    loaded: dict[str, Any] = json.loads(report.read_text())
    return load_peers(loaded)


def _cost(value: float | None, spec: str, unit: str = "") -> str:
    return "-" if value is None else format(value, spec) + unit


def _ratio(numerator: float | None, denominator: float | None) -> str:
    if numerator is None or denominator is None or denominator <= 0:
        return "-"
    return f"{numerator / denominator:,.1f}×"


def _side_by_side(
    peers: dict[str, PeerSummary],
    latencies: Sequence[Latency],
    rates: dict[str, float],
    bytes_per_point: float,
) -> str:
    ours = latencies[0]  # await log_metric: the ratios below are against it
    headers = ("tracker", "points", "median per call", "p99 per call", "pts/call",
               "logged + stored", "B/point", "call cost ÷ ours", "ours ÷ its pts/s",
               "its B ÷ ours")  # fmt: skip
    body: list[tuple[str, ...]] = []
    for latency in latencies:
        label = FACE[latency.mode]
        body.append((
            f"runjournal {label}", f"{latency.calls:,}", f"{latency.median_us:.2f} µs",
            f"{latency.p99_us:.2f} µs", "1", format_value(rates[latency.mode], "pts/s"),
            f"{bytes_per_point:.1f}", "", "", "",
        ))  # fmt: skip
    body.append((
        "raw sqlite3 executemany", f"{ours.calls:,}", "-", "-", "10,000",
        format_value(rates["raw"], "pts/s"), "-", "", _ratio(rates["await"], rates["raw"]), "",
    ))  # fmt: skip
    for case, peer in peers.items():
        per_point = None if peer.median_us is None else peer.median_us / peer.points_per_call
        name = f"{case} {peer.version or ''}".strip()
        if peer.error:
            body.append((name, f"{peer.points:,}", "error", "", "", "", "", "", "", ""))
            continue
        body.append((
            name, f"{peer.points:,}", _cost(peer.median_us, ",.1f", " µs"),
            _cost(peer.p99_us, ",.1f", " µs"), f"{peer.points_per_call:,}",
            _cost(peer.pts_per_s, ",.0f", " pts/s"), _cost(peer.bytes_per_point, ",.1f"),
            _ratio(per_point, ours.median_us), _ratio(rates["await"], peer.pts_per_s),
            _ratio(peer.bytes_per_point, bytes_per_point),
        ))  # fmt: skip
    return pipe_table(headers, body, right=frozenset(range(1, len(headers))))


def run(context: Context) -> CaseResult:
    points = context.config.peers_points
    result = CaseResult(
        8,
        "Peers",
        f"one run, key 'loss', steps 0..{points - 1:,}, one logging call per point (MLflow "
        f"log_batch: 1,000 per call), peers with {context.config.peers_python}; runjournal and "
        f"the raw baseline in this same run, {context.config.rounds}",
    )
    peers = _run_peers(context)
    context.peers = peers
    modes: tuple[Mode, ...] = ("await", "nowait")
    calls: dict[Mode, list[Latency]] = {mode: [] for mode in modes}
    runs: dict[str, list[float]] = {"await": [], "nowait": [], "raw": []}
    bytes_per_point = 0.0
    for _ in range(context.config.repeats):
        for mode in modes:
            path = context.path(f"peers-{mode}.db")
            calls[mode].append(run_async(measure(path, SERIES, points, mode)))
            measured = run_async(measure_runjournal(path, SERIES, points, mode))
            runs[mode].append(measured.pts_per_s)
            bytes_per_point = max(measured.bytes_open, measured.bytes_closed) / points
        runs["raw"].append(measure_raw(context.path("peers-raw.db"), SERIES, points))
    latencies = [combine(calls[mode]) for mode in modes]
    rates = {name: median(values) for name, values in runs.items()}
    for latency in latencies:
        result.rows += trackio_ratio_rows(context, latency)
    result.tables.append(_side_by_side(peers, latencies, rates, bytes_per_point))
    result.notes += [
        (
            "ratios are against runjournal's await log_metric: a peer's median per point "
            "(per call ÷ points per call) over ours, our end-to-end rate over its, its bytes "
            "per point over ours (ours: the larger of open and closed)"
        ),
        *(f"{case}: ERROR {peer.error}" for case, peer in peers.items() if peer.error),
        *(
            f"{case}: read back {peer.read_back:,} of {peer.points:,} points"
            for case, peer in peers.items()
            if peer.read_back is not None and peer.read_back != peer.points
        ),
    ]
    return result


CASE = Case("peers", 8, "Peers", run)
