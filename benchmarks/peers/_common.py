"""Shared timing, environment and result helpers for the peer benchmarks."""

from __future__ import annotations

import dataclasses
import math
import os
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

METRIC_KEY = "loss"
"""The one metric key every case logs."""

RUN_NAME = "bench-run"
PROJECT_NAME = "bench"


@dataclasses.dataclass(frozen=True, slots=True)
class PeerResult:
    """One benchmark case's outcome; on failure ``error`` is set and the measurements are None.

    ``points_per_call`` is 1 for one-call-per-point cases; for batch cases the latency fields
    describe whole batch calls, not single points.
    """

    peer: str
    case: str
    n_points: int
    calls: int
    points_per_call: int
    latency_mean_us: float | None
    latency_median_us: float | None
    latency_p99_us: float | None
    latency_p999_us: float | None
    end_to_end_points_per_s: float | None
    bytes_per_point: float | None
    points_read_back: int | None
    version: str | None = None
    notes: str = ""
    error: str | None = None

    def to_json_dict(self) -> dict[str, Any]:
        """Return the record as a JSON-serialisable dict."""
        return dataclasses.asdict(self)

    @classmethod
    def from_json_dict(cls, data: Mapping[str, Any]) -> PeerResult:
        """Rebuild a record from :meth:`to_json_dict` output, ignoring unknown keys."""
        names = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in names})

    @classmethod
    def failed(
        cls, *, peer: str, case: str, n_points: int, error: str, notes: str = ""
    ) -> PeerResult:
        """Return a row for a case that could not run or did not finish."""
        return cls(
            peer=peer,
            case=case,
            n_points=n_points,
            calls=0,
            points_per_call=0,
            latency_mean_us=None,
            latency_median_us=None,
            latency_p99_us=None,
            latency_p999_us=None,
            end_to_end_points_per_s=None,
            bytes_per_point=None,
            points_read_back=None,
            notes=notes,
            error=error,
        )


class PeerUnavailableError(RuntimeError):
    """The peer library cannot be imported in this interpreter."""


@dataclasses.dataclass(frozen=True, slots=True)
class LatencySummary:
    """Per-call latency statistics in microseconds."""

    mean_us: float
    median_us: float
    p99_us: float
    p999_us: float


def percentile(sorted_values: Sequence[int], q: float) -> int:
    """Return the nearest-rank ``q``-th percentile (0 < q <= 100) of an ascending sequence."""
    if not sorted_values:
        raise ValueError("percentile of an empty sequence")
    rank = math.ceil(q / 100.0 * len(sorted_values))
    return sorted_values[min(max(rank, 1), len(sorted_values)) - 1]


def summarize_latencies(latencies_ns: Sequence[int]) -> LatencySummary:
    """Summarise per-call latencies measured in nanoseconds."""
    ordered = sorted(latencies_ns)
    return LatencySummary(
        mean_us=sum(ordered) / len(ordered) / 1_000,
        median_us=percentile(ordered, 50) / 1_000,
        p99_us=percentile(ordered, 99) / 1_000,
        p999_us=percentile(ordered, 99.9) / 1_000,
    )


def expected_value(step: int) -> float:
    """Return the value logged at ``step``, so read-back can check values as well as counts."""
    return 1.0 / (step + 1)


@dataclasses.dataclass(frozen=True, slots=True)
class ReadBack:
    """What a peer's reader returned for the series."""

    points: int
    note: str


def check_series(points: Iterable[tuple[int, float]], n_points: int) -> ReadBack:
    """Compare read-back ``(step, value)`` pairs against the logged series."""
    count = 0
    seen: set[int] = set()
    duplicates = 0
    wrong_values = 0
    out_of_range = 0
    for step, value in points:
        count += 1
        if step in seen:
            duplicates += 1
        seen.add(step)
        if not 0 <= step < n_points:
            out_of_range += 1
        elif value != expected_value(step):
            wrong_values += 1
    missing = n_points - len(seen & set(range(n_points)))
    problems = [
        f"{label}={number}"
        for label, number in (
            ("missing_steps", missing),
            ("duplicate_steps", duplicates),
            ("wrong_values", wrong_values),
            ("steps_out_of_range", out_of_range),
        )
        if number
    ]
    status = ", ".join(problems) if problems else "all steps and values match"
    return ReadBack(points=count, note=f"read back {count}/{n_points} points ({status})")


def directory_usage(path: Path) -> tuple[int, int]:
    """Return (apparent bytes, file count) of the regular files under ``path``."""
    total = 0
    files = 0
    if not path.exists():
        return 0, 0
    for root, _dirs, names in os.walk(path):
        for name in names:
            file_path = Path(root, name)
            if file_path.is_symlink() or not file_path.is_file():
                continue
            total += file_path.stat().st_size
            files += 1
    return total, files


def largest_files(path: Path, limit: int = 3) -> str:
    """Describe the ``limit`` largest files under ``path`` (relative names and sizes)."""
    sized: list[tuple[int, str]] = []
    for root, _dirs, names in os.walk(path):
        for name in names:
            file_path = Path(root, name)
            if file_path.is_file() and not file_path.is_symlink():
                sized.append((file_path.stat().st_size, str(file_path.relative_to(path))))
    sized.sort(reverse=True)
    return ", ".join(f"{name} {format_bytes(size)}" for size, name in sized[:limit])


def format_bytes(size: float) -> str:
    """Format a byte count with a binary unit."""
    for unit in ("B", "KiB", "MiB"):
        if abs(size) < 1024:
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{size:.1f} GiB"


def storage_note(store_dir: Path) -> tuple[int, str]:
    """Measure ``store_dir`` and return (bytes, a note saying what was counted)."""
    size, files = directory_usage(store_dir)
    biggest = largest_files(store_dir)
    return size, f"disk: {files} files, {format_bytes(size)} under the store dir ({biggest})"


def stray_note(dirs: Mapping[str, Path]) -> str:
    """Describe files a peer wrote outside its store dir (not counted in bytes/point)."""
    parts = []
    for label, path in dirs.items():
        size, files = directory_usage(path)
        if files:
            parts.append(f"{label}: {files} files, {format_bytes(size)}")
    return "not counted: " + "; ".join(parts) if parts else ""


def offline_environment(aux_dir: Path) -> dict[str, str]:
    """Return environment variables that keep every peer offline and quiet.

    Names were checked against the installed peers' sources: mlflow reads
    ``MLFLOW_DISABLE_TELEMETRY`` and ``DO_NOT_TRACK`` (which must be the string "true"), and
    huggingface_hub (imported by trackio) reads ``HF_HUB_OFFLINE`` and ``HF_HUB_DISABLE_TELEMETRY``.
    """
    return {
        "DO_NOT_TRACK": "true",
        "MLFLOW_DISABLE_TELEMETRY": "true",
        "HF_HUB_OFFLINE": "1",
        "HF_HUB_DISABLE_TELEMETRY": "1",
        "HF_HOME": str(aux_dir / "hf"),
        "GRADIO_ANALYTICS_ENABLED": "False",
        "XDG_CACHE_HOME": str(aux_dir / "xdg-cache"),
        "XDG_CONFIG_HOME": str(aux_dir / "xdg-config"),
        "XDG_DATA_HOME": str(aux_dir / "xdg-data"),
        "TMPDIR": str(aux_dir / "tmp"),
        "PYTHONUNBUFFERED": "1",
    }


SCRUBBED_PREFIXES = ("WANDB_", "TRACKIO_", "MLFLOW_", "HF_", "GRADIO_", "DATABRICKS_")
"""Inherited variables with these prefixes could point a peer at a server, so cases drop them."""


def scrubbed_environment(base: Mapping[str, str]) -> dict[str, str]:
    """Copy ``base`` without the variables that could redirect or reconfigure a peer."""
    return {k: v for k, v in base.items() if not k.startswith(SCRUBBED_PREFIXES)}


@dataclasses.dataclass(frozen=True, slots=True)
class CaseDirs:
    """The directories one case uses; only ``store`` is counted as the peer's storage."""

    root: Path

    @property
    def store(self) -> Path:
        """Where the peer is told to keep its data (counted for bytes/point)."""
        return self.root / "store"

    @property
    def aux(self) -> Path:
        """Caches, configs and logs the peer keeps outside its data (not counted)."""
        return self.root / "aux"

    @property
    def cwd(self) -> Path:
        """Working directory of the case process, to catch files written relative to it."""
        return self.root / "cwd"

    def create(self) -> None:
        """Create all directories."""
        for path in (self.store, self.aux / "tmp", self.cwd):
            path.mkdir(parents=True, exist_ok=True)


def build_result(
    *,
    peer: str,
    case: str,
    n_points: int,
    points_per_call: int,
    latencies_ns: Sequence[int],
    loop_ns: int,
    elapsed_ns: int,
    dirs: CaseDirs,
    read_back: ReadBack,
    version: str | None,
    notes: Sequence[str] = (),
) -> PeerResult:
    """Assemble a :class:`PeerResult` from one finished case's raw measurements.

    ``loop_ns`` is the time spent in the logging loop and ``elapsed_ns`` that plus finishing the
    run; the difference is how long the peer needed to store what the calls had queued.
    """
    summary = summarize_latencies(latencies_ns)
    size, disk_note = storage_note(dirs.store)
    extra = stray_note({"aux": dirs.aux, "cwd": dirs.cwd})
    timing_note = (
        f"time: logging loop {loop_ns / 1e9:.2f} s + finish/flush"
        f" {(elapsed_ns - loop_ns) / 1e9:.2f} s"
    )
    all_notes = [*notes, timing_note, read_back.note, disk_note]
    if extra:
        all_notes.append(extra)
    return PeerResult(
        peer=peer,
        case=case,
        n_points=n_points,
        calls=len(latencies_ns),
        points_per_call=points_per_call,
        latency_mean_us=summary.mean_us,
        latency_median_us=summary.median_us,
        latency_p99_us=summary.p99_us,
        latency_p999_us=summary.p999_us,
        end_to_end_points_per_s=n_points / (elapsed_ns / 1e9) if elapsed_ns > 0 else None,
        bytes_per_point=size / n_points if n_points else None,
        points_read_back=read_back.points,
        version=version,
        notes="; ".join(all_notes),
    )
