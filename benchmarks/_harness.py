"""The machinery every case shares: targets and verdicts, tables, workloads, RESULTS.md.

A case is a :class:`Case`: a function from the run's :class:`Context` to a :class:`CaseResult`,
a list of :class:`Row` measurements. A row with a :class:`Target` gets a PASS or MISS verdict
and says by how much; a row without one is information (a baseline, a breakdown). Ratios
against a baseline measured in the same run are rows too, with the unit ``×``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import math
import os
import platform
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
import traceback
from collections.abc import AsyncIterator, Callable, Coroutine, Iterable, Sequence
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any, Literal, TypeVar

import psutil  # type: ignore[import-untyped]

from runjournal import Tracker

__all__ = [
    "FACE",
    "KEYS",
    "REPO_ROOT",
    "Case",
    "CaseResult",
    "Config",
    "Context",
    "E2ESample",
    "Mode",
    "PeerSummary",
    "Row",
    "Target",
    "at_least",
    "at_most",
    "disk_bytes",
    "format_value",
    "log_points",
    "main",
    "median",
    "percentile",
    "pipe_table",
    "raw_database",
    "remove_db",
    "run_async",
    "spread",
    "table_bytes",
    "tracked_run",
]

REPO_ROOT = Path(__file__).resolve().parents[1]
RESULTS_PATH = REPO_ROOT / "benchmarks" / "RESULTS.md"

KEYS: tuple[str, ...] = tuple(f"train/metric_{i}" for i in range(10))
"""The ten metric keys of the standard workload (10 keys × N steps)."""

Mode = Literal["await", "nowait"]
"""Which face of the tracker a loop logs through: ``await log_metric`` or ``log_metric_nowait``."""

FACE: dict[Mode, str] = {"await": "await log_metric", "nowait": "log_metric_nowait"}
"""How each :data:`Mode` is named in tables."""

T = TypeVar("T")


# -- targets, rows and results -------------------------------------------------------------------
@dataclasses.dataclass(frozen=True, slots=True)
class Target:
    """A bound from the issue: the value must be at most (or at least) ``bound``."""

    bound: float
    higher_is_better: bool

    def passed(self, value: float) -> bool:
        return value >= self.bound if self.higher_is_better else value <= self.bound

    def margin(self, value: float) -> str:
        """How far inside or outside the bound ``value`` is, as a factor."""
        if value <= 0 or self.bound <= 0:
            return ""
        factor = value / self.bound if self.higher_is_better else self.bound / value
        if factor >= 1:
            return f"{factor:.2f}× margin"
        word = "more" if self.higher_is_better else "less"
        return f"needs {1 / factor:.2f}× {word}"

    def describe(self, unit: str) -> str:
        sign = "≥" if self.higher_is_better else "≤"
        return f"{sign} {format_value(self.bound, unit)}"


def at_most(bound: float) -> Target:
    return Target(bound, higher_is_better=False)


def at_least(bound: float) -> Target:
    return Target(bound, higher_is_better=True)


@dataclasses.dataclass(frozen=True, slots=True)
class Row:
    """One measurement. ``value=None`` means it could not be measured (the note says why)."""

    name: str
    value: float | None
    unit: str
    target: Target | None = None
    note: str = ""

    @property
    def verdict(self) -> str:
        if self.value is None:
            return "N/A"
        if self.target is None:
            return "-"
        return "PASS" if self.target.passed(self.value) else "MISS"

    def cells(self) -> tuple[str, str, str, str, str, str]:
        value = "n/a" if self.value is None else format_value(self.value, self.unit)
        target = "-" if self.target is None else self.target.describe(self.unit)
        margin = ""
        if self.value is not None and self.target is not None:
            margin = self.target.margin(self.value)
        return (self.name, value, target, self.verdict, margin, self.note)


@dataclasses.dataclass(slots=True)
class CaseResult:
    """What one case measured, ready to print and to record."""

    number: int
    title: str
    workload: str
    rows: list[Row] = dataclasses.field(default_factory=list)
    tables: list[str] = dataclasses.field(default_factory=list)
    notes: list[str] = dataclasses.field(default_factory=list)
    seconds: float = 0.0
    error: str | None = None

    def render(self) -> str:
        lines = [f"### {self.number}. {self.title}", "", f"Workload: {self.workload}", ""]
        if self.rows:
            lines.append(render_table(self.rows))
        for table in self.tables:
            lines += ["", table]
        if self.error is not None:
            lines += ["", "ERROR:", "```", self.error.rstrip(), "```"]
        if self.notes:
            lines += ["", *(f"- {note}" for note in self.notes)]
        lines += ["", f"({self.seconds:.1f} s)", ""]
        return "\n".join(lines)


_HEADERS = ("measurement", "value", "target", "result", "by how much", "note")


def render_table(rows: Sequence[Row]) -> str:
    """The rows of a case as a table with their targets and verdicts."""
    return pipe_table(_HEADERS, [row.cells() for row in rows], right={1, 2})


def pipe_table(
    headers: Sequence[str], body: Sequence[Sequence[str]], right: set[int] | frozenset[int]
) -> str:
    """A Markdown pipe table, padded so that it also reads well in a terminal."""
    widths = [max(len(h), *(len(cells[i]) for cells in body)) for i, h in enumerate(headers)]

    def line(cells: Sequence[str]) -> str:
        padded = (
            c.rjust(w) if i in right else c.ljust(w)
            for i, (c, w) in enumerate(zip(cells, widths, strict=True))
        )
        return "| " + " | ".join(padded) + " |"

    rule = "|" + "".join(
        "-" * (w + 1) + ":|" if i in right else "-" * (w + 2) + "|" for i, w in enumerate(widths)
    )
    return "\n".join([line(headers), rule, *(line(cells) for cells in body)])


def format_value(value: float, unit: str) -> str:
    """Format ``value`` for its unit (the unit is part of the text)."""
    if unit in ("pts/s", "events/s", "rows", "points", "events", "entries"):
        return f"{value:,.0f} {unit}"
    if unit == "×":
        return f"{value:,.2f}×"
    if unit == "MB":
        return f"{value:,.1f} MB"
    if unit in ("µs", "ms", "s", "B/pt", "B"):
        digits = 3 if abs(value) < 1 else 2 if abs(value) < 10 else 1 if abs(value) < 1000 else 0
        return f"{value:,.{digits}f} {unit}"
    return f"{value:,g} {unit}".rstrip()


# -- statistics ----------------------------------------------------------------------------------
def percentile(ordered: Sequence[int], q: float) -> int:
    """The nearest-rank ``q``-th percentile of an ascending sequence (as the peers compute it)."""
    if not ordered:
        raise ValueError("percentile of an empty sequence")
    rank = math.ceil(q / 100.0 * len(ordered))
    return ordered[min(max(rank, 1), len(ordered)) - 1]


def median(values: Iterable[float]) -> float:
    return float(statistics.median(values))


def spread(values: Sequence[float], unit: str) -> str:
    """``"median of 3; range a–b"`` for a repeated measurement."""
    if len(values) < 2:
        return ""
    low, high = format_value(min(values), unit), format_value(max(values), unit)
    return f"median of {len(values)}; range {low} – {high}"


# -- the run's configuration and shared state ----------------------------------------------------
@dataclasses.dataclass(frozen=True, slots=True)
class Config:
    """How big this run is. ``quick`` shrinks every workload for a smoke test."""

    quick: bool
    workdir: Path
    peers_python: str | None
    peers_points: int

    def n(self, full: int, quick: int) -> int:
        """The workload size of this run: ``full``, or ``quick`` with ``--quick``."""
        return quick if self.quick else full

    @property
    def repeats(self) -> int:
        """How often the noisy measurements are repeated (the median is reported)."""
        return 1 if self.quick else 5

    @property
    def rounds(self) -> str:
        """How the repeats are described in a workload line."""
        if self.repeats == 1:
            return "1 round"
        return f"{self.repeats} rounds, interleaved; each figure is the median over the rounds"


@dataclasses.dataclass(frozen=True, slots=True)
class PeerSummary:
    """One peer case's numbers, from ``benchmarks.peers``' JSON report."""

    case: str
    version: str | None
    points: int
    points_per_call: int
    mean_us: float | None
    median_us: float | None
    p99_us: float | None
    pts_per_s: float | None
    bytes_per_point: float | None
    read_back: int | None
    error: str | None


@dataclasses.dataclass(frozen=True, slots=True)
class E2ESample:
    """The disk usage that case 2 left behind, for case 5."""

    points: int
    bytes_open: int
    bytes_closed: int
    raw_bytes: int
    breakdown: dict[str, int]


@dataclasses.dataclass(slots=True)
class Context:
    """Handed to every case: the configuration, a scratch directory, and earlier results."""

    config: Config
    peers: dict[str, PeerSummary] | None = None
    e2e_sample: E2ESample | None = None

    def path(self, name: str) -> Path:
        """A fresh database path in the run's scratch directory (any old files removed)."""
        path = self.config.workdir / name
        remove_db(path)
        return path


@dataclasses.dataclass(frozen=True, slots=True)
class Case:
    """One benchmark case of the issue."""

    id: str
    number: int
    title: str
    run: Callable[[Context], CaseResult]


# -- workloads -----------------------------------------------------------------------------------
def remove_db(path: Path) -> None:
    """Remove an SQLite database and the files beside it."""
    for suffix in ("", "-wal", "-shm", "-journal"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)


def raw_database(path: Path, statements: Iterable[str]) -> sqlite3.Connection:
    """A new SQLite database at ``path`` (any old one removed), in WAL mode with
    ``synchronous=NORMAL`` as runjournal opens its own, made of ``statements``; autocommit."""
    remove_db(path)
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=NORMAL")
        for statement in statements:
            conn.execute(statement)
    except BaseException:
        conn.close()
        raise
    return conn


def disk_bytes(path: Path) -> int:
    """Bytes on disk of an SQLite database: the file, its WAL and its shared-memory index."""
    total = 0
    for suffix in ("", "-wal", "-shm", "-journal"):
        with contextlib.suppress(FileNotFoundError):
            total += Path(f"{path}{suffix}").stat().st_size
    return total


def table_bytes(path: Path) -> dict[str, int]:
    """Bytes per table and index of a database, from SQLite's ``dbstat`` (empty if missing)."""
    conn = sqlite3.connect(path)
    try:
        rows = conn.execute("SELECT name, sum(pgsize) FROM dbstat GROUP BY name").fetchall()
    except sqlite3.Error:
        return {}
    finally:
        conn.close()
    return {str(name): int(size) for name, size in rows}


@contextlib.asynccontextmanager
async def tracked_run(path: Path, **options: Any) -> AsyncIterator[tuple[Tracker, str]]:
    """A tracker on a fresh database at ``path`` with one RUNNING run, everything committed."""
    remove_db(path)
    async with Tracker.open(path, **options) as tracker:
        experiment_id = await tracker.create_experiment("bench")
        run_id = await tracker.create_run(experiment_id, name="bench")
        await tracker.start_run(run_id)
        await tracker.flush()
        yield tracker, run_id


async def log_points(
    tracker: Tracker, run_id: str, keys: Sequence[str], steps: int, mode: Mode
) -> None:
    """Log ``len(keys) × steps`` points, step by step, one call per point.

    The value at ``step`` is ``1 / (step + 1)``, the series the peers log too.
    """
    if mode == "nowait":
        log_nowait = tracker.log_metric_nowait
        for step in range(steps):
            value = 1.0 / (step + 1)
            for key in keys:
                log_nowait(run_id, key, step, value)
    else:
        log = tracker.log_metric
        for step in range(steps):
            value = 1.0 / (step + 1)
            for key in keys:
                await log(run_id, key, step, value)


def run_async(coroutine: Coroutine[Any, Any, T]) -> T:
    """Run one case's coroutine on a fresh event loop."""
    return asyncio.run(coroutine)


# -- the machine and the code under test ---------------------------------------------------------
def _cpu_model() -> str:
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine()


def _git(*args: str) -> str:
    try:
        done = subprocess.run(
            ["git", *args], cwd=REPO_ROOT, capture_output=True, text=True, check=True, timeout=30
        )
    except (OSError, subprocess.SubprocessError):
        return ""
    return done.stdout.strip()


def git_commit() -> str:
    """The commit under test, marked when tracked files have uncommitted changes."""
    commit = _git("rev-parse", "--short=12", "HEAD") or "unknown"
    if _git("status", "--porcelain", "--untracked-files=no", "--", "src", "benchmarks"):
        commit += " + uncommitted changes"
    return commit


def load_average() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg()) if hasattr(os, "getloadavg") else "?"


def machine_lines() -> list[str]:
    load = load_average()
    versions = ", ".join(
        f"{name} {metadata.version(name)}" for name in ("runjournal", "msgspec", "anyio")
    )
    return [
        f"machine: {_cpu_model()}, {os.cpu_count()} cores, {platform.platform()}",
        f"python {platform.python_version()}, SQLite {sqlite3.sqlite_version}, {versions}",
        f"load average at start: {load}",
    ]


# -- the command line ----------------------------------------------------------------------------
def _parse(argv: Sequence[str] | None, cases: Sequence[Case]) -> argparse.Namespace:
    ids = [case.id for case in cases]
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks",
        description="runjournal's benchmark suite (issue 5). Cases: " + ", ".join(ids),
    )
    parser.add_argument(
        "--quick", action="store_true", help="10× smaller workloads (under a minute): a smoke test"
    )
    parser.add_argument(
        "--only",
        help="comma-separated case ids to run (default: all but peers, mlflow-server and pg-scale)",
    )
    parser.add_argument(
        "--peers-python",
        help="interpreter with trackio, mlflow and wandb installed; adds the peers case "
        "(and the caller-cost ratio to trackio)",
    )
    parser.add_argument(
        "--peers-points", type=int, help="points per peer case (default 100,000; quick 10,000)"
    )
    parser.add_argument("--workdir", type=Path, help="scratch directory (default: a temp dir)")
    parser.add_argument("--keep", action="store_true", help="keep the scratch directory")
    parser.add_argument(
        "--no-record", action="store_true", help=f"do not append to {RESULTS_PATH.name}"
    )
    parser.add_argument("--results", type=Path, default=RESULTS_PATH, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    selected = [s.strip() for s in (args.only or "").split(",") if s.strip()]
    unknown = sorted(set(selected) - set(ids))
    if unknown:
        parser.error(f"unknown case(s) {', '.join(unknown)}; choose from {', '.join(ids)}")
    if not selected:
        # The MLflow server case takes minutes of the MLflow client's own time, and pg-scale
        # writes 50 million points twice: asked for only.
        selected = [
            i
            for i in ids
            if (i != "peers" or args.peers_python) and i not in ("mlflow-server", "pg-scale")
        ]
    if "peers" in selected and not args.peers_python:
        default = REPO_ROOT / ".venv-peers" / "bin" / "python"
        args.peers_python = str(default) if default.exists() else sys.executable
    args.selected = selected
    return args


def main(cases: Sequence[Case], argv: Sequence[str] | None = None) -> int:
    """Run the selected cases in order, print each table, and record the run."""
    args = _parse(argv, cases)
    quick: bool = args.quick
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="runjournal-bench-"))
    workdir.mkdir(parents=True, exist_ok=True)
    peers_points = args.peers_points or (10_000 if quick else 100_000)
    config = Config(quick, workdir, args.peers_python, peers_points)
    context = Context(config)
    started_at = datetime.now(UTC)
    header = [
        (
            f"## {started_at.isoformat(timespec='seconds')} · {'quick' if quick else 'full'} run"
            f" · commit {git_commit()}"
        ),
        "",
        *(f"- {line}" for line in machine_lines()),
        f"- command: python -m benchmarks {' '.join(argv if argv is not None else sys.argv[1:])}",
    ]
    if quick:
        header.append("- quick run: workloads are 10× smaller than the issue's; a smoke test only")
    print("\n".join(header), flush=True)
    results: list[CaseResult] = []
    started = time.perf_counter()
    try:
        for case in cases:
            if case.id not in args.selected:
                continue
            print(f"\n... case {case.number} ({case.id}) running", file=sys.stderr, flush=True)
            result = _run_case(case, context)
            results.append(result)
            print("\n" + result.render(), flush=True)
    finally:
        if args.workdir is None and not args.keep:
            shutil.rmtree(workdir, ignore_errors=True)
        else:
            print(f"databases kept in {workdir}", file=sys.stderr)
    total = time.perf_counter() - started
    summary = _summary(results, total)
    print(summary, flush=True)
    if not args.no_record:
        record(args.results, header, results, summary)
        print(f"recorded in {args.results}", flush=True)
    return 1 if any(r.error is not None for r in results) else 0


def _run_case(case: Case, context: Context) -> CaseResult:
    busy = _cpu_seconds()
    started = time.perf_counter()
    try:
        result = case.run(context)
    except Exception:  # noqa: BLE001 - one failing case must not stop the others
        result = CaseResult(case.number, case.title, "(failed)", error=traceback.format_exc())
    result.seconds = time.perf_counter() - started
    machine, ours = (after - before for after, before in zip(_cpu_seconds(), busy, strict=True))
    others = max(machine - ours, 0.0) / result.seconds
    result.notes.append(
        f"meanwhile, processes outside this benchmark kept {others:.2f} of {os.cpu_count()} "
        "cores busy on average (high values mean the numbers above are pessimistic)"
    )
    return result


def _cpu_seconds() -> tuple[float, float]:
    """CPU seconds used so far by the whole machine, and by this process and its children."""
    machine = psutil.cpu_times()
    busy = machine.user + machine.system
    busy += sum(getattr(machine, name, 0.0) for name in ("nice", "irq", "softirq", "steal"))
    own = psutil.Process().cpu_times()
    return float(busy), float(own.user + own.system + own.children_user + own.children_system)


def _summary(results: Sequence[CaseResult], seconds: float) -> str:
    judged = [(r, row) for r in results for row in r.rows if row.verdict in ("PASS", "MISS")]
    missed = [
        f"{r.number}. {row.name} ({row.cells()[4]})" for r, row in judged if row.verdict == "MISS"
    ]
    unavailable = [
        f"{r.number}. {row.name}" for r in results for row in r.rows if row.value is None
    ]
    errors = [f"{r.number}. {r.title}" for r in results if r.error is not None]
    passed = sum(row.verdict == "PASS" for _, row in judged)
    lines = [
        "### Summary",
        "",
        (
            f"{passed} of {len(judged)} targets pass; total time {seconds:.0f} s; "
            f"load average at the end {load_average()}."
        ),
    ]
    lines += [f"- MISS {m}" for m in missed]
    lines += [f"- N/A {u}" for u in unavailable]
    lines += [f"- ERROR {e}" for e in errors]
    return "\n".join(lines) + "\n"


def record(path: Path, header: Sequence[str], results: Sequence[CaseResult], summary: str) -> None:
    """Append this run to RESULTS.md (creating it with its preamble if missing)."""
    if not path.exists():
        path.write_text(
            "# Benchmark results\n\nEvery run of `python -m benchmarks` appends itself below.\n\n"
        )
    text = "\n".join([*header, "", *(r.render() for r in results), summary])
    with path.open("a") as out:
        out.write("\n" + text + "\n")
