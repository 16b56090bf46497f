"""Run the peer benchmark cases, each in a fresh subprocess, and print a table.

Usage::

    python -m benchmarks.peers --points 100000 --json OUT.json [--only trackio,mlflow,wandb]
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import os
import platform
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import traceback
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from . import mlflow_case, trackio_case, wandb_case
from ._common import (
    SCRUBBED_PREFIXES,
    CaseDirs,
    PeerResult,
    PeerUnavailableError,
    offline_environment,
    scrubbed_environment,
)

REPO_ROOT = Path(__file__).resolve().parents[2]
DEFAULT_MLFLOW_PER_CALL_POINTS = 2_000
STDERR_TAIL_CHARS = 600


@dataclasses.dataclass(frozen=True, slots=True)
class CaseSpec:
    """One benchmark case: how to configure its process and how to run it."""

    case_id: str
    peer: str
    environment: Callable[[CaseDirs], dict[str, str]]
    run: Callable[[int, CaseDirs], PeerResult]


CASES: tuple[CaseSpec, ...] = (
    CaseSpec("trackio", "trackio", trackio_case.environment, trackio_case.run),
    CaseSpec("wandb", "wandb", wandb_case.environment, wandb_case.run),
    CaseSpec("mlflow_log_batch", "mlflow", mlflow_case.environment, mlflow_case.run_log_batch),
    CaseSpec("mlflow_log_metric", "mlflow", mlflow_case.environment, mlflow_case.run_log_metric),
)
CASES_BY_ID = {spec.case_id: spec for spec in CASES}


def select_cases(only: str | None) -> list[CaseSpec]:
    """Return the cases named by ``--only`` (a peer name selects all of that peer's cases)."""
    if not only:
        return list(CASES)
    tokens = [token.strip() for token in only.split(",") if token.strip()]
    unknown = [t for t in tokens if t not in CASES_BY_ID and all(s.peer != t for s in CASES)]
    if unknown:
        known = sorted({*CASES_BY_ID, *(s.peer for s in CASES)})
        raise SystemExit(f"unknown case(s) {unknown}; choose from {known}")
    return [s for s in CASES if s.case_id in tokens or s.peer in tokens]


def points_for(spec: CaseSpec, requested: int, mlflow_per_call_points: int) -> int:
    """Return how many points a case logs; MLflow's per-call case is capped to bound its runtime."""
    if spec.case_id == "mlflow_log_metric" and mlflow_per_call_points > 0:
        return min(requested, mlflow_per_call_points)
    return requested


# --- child side --------------------------------------------------------------------------------


def run_case_in_this_process(case_id: str, points: int, case_dir: Path, result_path: Path) -> int:
    """Run one case here (the child process) and write its result as JSON."""
    spec = CASES_BY_ID[case_id]
    dirs = CaseDirs(case_dir)
    dirs.create()
    # The parent already did this; repeating it keeps a hand-started child just as isolated.
    for key in [k for k in os.environ if k.startswith(SCRUBBED_PREFIXES)]:
        del os.environ[key]
    os.environ.update(offline_environment(dirs.aux))
    os.environ.update(spec.environment(dirs))
    os.chdir(dirs.cwd)
    try:
        result = spec.run(points, dirs)
    except PeerUnavailableError as exc:
        result = PeerResult.failed(
            peer=spec.peer, case=case_id, n_points=points, error=f"not installed: {exc}"
        )
    except Exception as exc:  # noqa: BLE001 -- any peer failure must become a row, not a crash
        tail = traceback.format_exc()[-STDERR_TAIL_CHARS:]
        result = PeerResult.failed(
            peer=spec.peer,
            case=case_id,
            n_points=points,
            error=f"{type(exc).__name__}: {exc}",
            notes=tail.replace("\n", " | "),
        )
    result_path.write_text(json.dumps(result.to_json_dict(), indent=2))
    return 0


# --- parent side -------------------------------------------------------------------------------


def _kill_group(pgid: int) -> None:
    """Kill what is left of a case's process group (e.g. a lingering wandb-core service)."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, signal.SIGKILL)


def _tail(path: Path) -> str:
    if not path.exists():
        return ""
    text = path.read_text(errors="replace").strip()
    return text[-STDERR_TAIL_CHARS:].replace("\n", " | ")


def run_case_subprocess(
    spec: CaseSpec,
    *,
    points: int,
    python: str,
    root: Path,
    timeout_s: float,
) -> tuple[PeerResult, float]:
    """Run one case in a fresh interpreter with a scrubbed environment; never raises."""
    dirs = CaseDirs(root / spec.case_id)
    dirs.create()
    result_path = dirs.root / "result.json"
    log_path = dirs.root / "process.log"
    env = scrubbed_environment(os.environ)
    env.update(offline_environment(dirs.aux))
    env.update(spec.environment(dirs))
    env["PYTHONPATH"] = os.pathsep.join(
        p for p in (str(REPO_ROOT), os.environ.get("PYTHONPATH", "")) if p
    )
    command = [
        python,
        "-m",
        "benchmarks.peers",
        "--run-case",
        spec.case_id,
        "--points",
        str(points),
        "--case-dir",
        str(dirs.root),
        "--result",
        str(result_path),
    ]
    started = time.perf_counter()
    with log_path.open("wb") as log:
        try:
            # A new session makes the case the leader of its own process group, so a timeout
            # can also kill helper processes it spawned (wandb-core).
            process = subprocess.Popen(
                command,
                cwd=dirs.cwd,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        except OSError as exc:
            error = f"could not start {python}: {exc}"
            return PeerResult.failed(
                peer=spec.peer, case=spec.case_id, n_points=points, error=error
            ), 0.0
        try:
            returncode = process.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            _kill_group(process.pid)
            process.wait()
            wall = time.perf_counter() - started
            return PeerResult.failed(
                peer=spec.peer,
                case=spec.case_id,
                n_points=points,
                error=f"timed out after {timeout_s:.0f} s",
                notes=_tail(log_path),
            ), wall
        finally:
            _kill_group(process.pid)
    wall = time.perf_counter() - started
    if result_path.exists():
        return PeerResult.from_json_dict(json.loads(result_path.read_text())), wall
    return PeerResult.failed(
        peer=spec.peer,
        case=spec.case_id,
        n_points=points,
        error=f"case process exited with {returncode} without a result",
        notes=_tail(log_path),
    ), wall


def _fmt(value: float | None, spec: str) -> str:
    return "-" if value is None else format(value, spec)


def render_table(rows: Sequence[tuple[PeerResult, float]]) -> str:
    """Render results as a fixed-width table followed by each case's notes or error."""
    headers = (
        "case",
        "version",
        "points",
        "pts/call",
        "mean µs",
        "median µs",
        "p99 µs",
        "p99.9 µs",
        "e2e pts/s",
        "B/point",
        "read back",
        "wall s",
    )
    body = [
        (
            r.case,
            r.version or "-",
            f"{r.n_points:,}",
            _fmt(r.points_per_call or None, ",d"),
            _fmt(r.latency_mean_us, ",.1f"),
            _fmt(r.latency_median_us, ",.1f"),
            _fmt(r.latency_p99_us, ",.1f"),
            _fmt(r.latency_p999_us, ",.1f"),
            _fmt(r.end_to_end_points_per_s, ",.0f"),
            _fmt(r.bytes_per_point, ",.1f"),
            _fmt(r.points_read_back, ",d"),
            f"{wall:.1f}",
        )
        for r, wall in rows
    ]
    widths = [max(len(h), *(len(row[i]) for row in body)) for i, h in enumerate(headers)]

    def line(cells: Sequence[str]) -> str:
        first = cells[0].ljust(widths[0])
        rest = (c.rjust(w) for c, w in zip(cells[1:], widths[1:], strict=True))
        return "  ".join((first, *rest))

    out = [line(headers), line(["-" * w for w in widths]), *(line(row) for row in body), ""]
    for result, _wall in rows:
        if result.error:
            out.append(f"{result.case}: ERROR {result.error}")
            if result.notes:
                out.append(f"    {result.notes}")
        else:
            out.append(f"{result.case}: {result.notes}")
    return "\n".join(out)


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    """Parse command-line arguments."""
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.peers",
        description="Benchmark other experiment trackers offline, one subprocess per case.",
    )
    parser.add_argument("--points", type=int, default=100_000, help="points per case")
    parser.add_argument("--json", type=Path, help="write results to this JSON file")
    parser.add_argument(
        "--only",
        help="comma-separated peers or case ids: "
        + ", ".join(sorted({*CASES_BY_ID, *(s.peer for s in CASES)})),
    )
    parser.add_argument(
        "--timeout", type=float, default=300.0, help="seconds allowed per case (default 300)"
    )
    parser.add_argument(
        "--python",
        default=sys.executable,
        help="interpreter that has the peers installed (default: this one)",
    )
    parser.add_argument(
        "--mlflow-per-call-points",
        type=int,
        default=DEFAULT_MLFLOW_PER_CALL_POINTS,
        help="cap for the mlflow_log_metric case, ~6 ms per call (default 2000; 0 = no cap)",
    )
    parser.add_argument("--workdir", type=Path, help="keep case directories here")
    # Internal: how the parent starts one case in a child process.
    parser.add_argument("--run-case", choices=sorted(CASES_BY_ID), help=argparse.SUPPRESS)
    parser.add_argument("--case-dir", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--result", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.points <= 0:
        parser.error("--points must be positive")
    if args.run_case and (args.case_dir is None or args.result is None):
        parser.error("--run-case needs --case-dir and --result")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point: run the selected cases and report them."""
    args = parse_args(argv)
    if args.run_case:
        return run_case_in_this_process(args.run_case, args.points, args.case_dir, args.result)

    specs = select_cases(args.only)
    # Cases run with their own cwd, so a relative interpreter path must be made absolute; not
    # resolved, since following a venv's symlink would lose the venv.
    python = os.path.abspath(args.python) if os.sep in args.python else args.python
    if args.workdir is not None:
        args.workdir.mkdir(parents=True, exist_ok=True)
        root = Path(tempfile.mkdtemp(prefix="peers-", dir=args.workdir))
    else:
        root = Path(tempfile.mkdtemp(prefix="runjournal-peers-"))
    rows: list[tuple[PeerResult, float]] = []
    try:
        for spec in specs:
            points = points_for(spec, args.points, args.mlflow_per_call_points)
            print(f"running {spec.case_id} ({points:,} points) ...", file=sys.stderr, flush=True)
            result, wall = run_case_subprocess(
                spec, points=points, python=python, root=root, timeout_s=args.timeout
            )
            if points != args.points:
                capped = (
                    f"ran {points:,} of the requested {args.points:,} points"
                    " (--mlflow-per-call-points)"
                )
                result = dataclasses.replace(result, notes=f"{capped}; {result.notes}")
            rows.append((result, wall))
    finally:
        if args.workdir is None:
            shutil.rmtree(root, ignore_errors=True)
        else:
            print(f"case directories kept in {root}", file=sys.stderr)

    print(render_table(rows))
    if args.json is not None:
        report: dict[str, Any] = {
            "created": datetime.now(UTC).isoformat(timespec="seconds"),
            "requested_points": args.points,
            "python": python,
            "platform": platform.platform(),
            "cpu_count": os.cpu_count(),
            "results": [{**r.to_json_dict(), "wall_s": round(w, 3)} for r, w in rows],
        }
        args.json.write_text(json.dumps(report, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
