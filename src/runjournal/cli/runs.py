"""The commands about runs: ``runs`` (list, filtered), ``show``, ``metrics``, ``compare``, ``delete``.

Each command is ``async def command(args, out) -> exit code``; :mod:`runjournal.cli.parser`
parses the arguments and picks it. Tables go through :mod:`runjournal.cli.output`,
JSON through msgspec with the field names of the structs below, which are stable.
"""

from __future__ import annotations

import argparse
import math
from collections.abc import Sequence
from typing import Any, Final

import msgspec
from rich.table import Table

from runjournal.cli.database import open_tracker
from runjournal.cli.output import (
    Output,
    confirmed,
    format_duration,
    format_mapping,
    format_time,
    format_value,
    key_value_table,
    sorted_items,
    table,
)
from runjournal.filtering import strict_equal
from runjournal.model import ArtifactRef, MetricPoint, Run, RunStatus
from runjournal.tracker import Tracker

__all__ = [
    "ComparedRun",
    "Comparison",
    "ComparisonRow",
    "MetricSummary",
    "RunDetails",
    "compare",
    "delete_run",
    "metrics",
    "runs",
    "runs_table",
    "show",
]

TABLE_ROW_LIMIT: Final = 200
"""Points shown by ``metrics --format table``; csv and json always give the whole series."""


# -- the JSON shapes ------------------------------------------------------------------------------
class MetricSummary(msgspec.Struct, frozen=True):
    """A metric series in one line: its size, its last point and its range (NaN left out)."""

    key: str
    count: int
    last_step: int
    last: float
    min: float
    max: float


class RunDetails(msgspec.Struct, frozen=True):
    """``show``: everything about one run."""

    run: Run
    metrics: list[MetricSummary]
    artifacts: list[ArtifactRef]
    span_id: str | None


class ComparedRun(msgspec.Struct, frozen=True):
    """A column of ``compare``."""

    id: str
    name: str | None
    experiment_id: str
    status: RunStatus


class ComparisonRow(msgspec.Struct, frozen=True):
    """A row of ``compare``: one value per run (null where the run has none)."""

    key: str
    values: list[Any]
    differs: bool


class Comparison(msgspec.Struct, frozen=True):
    """``compare``: params and final metric values of several runs, side by side."""

    runs: list[ComparedRun]
    params: list[ComparisonRow]
    metrics: list[ComparisonRow]


# -- runs -----------------------------------------------------------------------------------------
async def runs(args: argparse.Namespace, out: Output) -> int:
    """``runjournal runs EXPERIMENT_ID [--filter EXPR ...]``."""
    async with open_tracker(args.db) as tracker:
        found = await tracker.filter_runs(args.experiment_id, args.filter)
    if args.format == "json":
        out.json(found)
    else:
        out.print(runs_table(found))
    return 0


def runs_table(found: Sequence[Run]) -> Table:
    """The runs as a table: id, name, status, start, duration and params."""
    rows = [
        (
            r.id,
            r.name or "",
            r.status.value,
            format_time(r.start_time),
            format_duration(r.start_time, r.end_time),
            format_mapping(r.params),
        )
        for r in found
    ]
    return table("Runs", ["id", "name", "status", "started", "duration", "params"], rows)


async def delete_run(args: argparse.Namespace, out: Output) -> int:
    """``runjournal delete RUN_ID``."""
    async with open_tracker(args.db, read_only=False) as tracker:
        run = await tracker.get_run(args.run_id)
        what = f"run {run.id}" + (f" ({run.name})" if run.name else "")
        if not confirmed(out, what, yes=args.yes):
            return 1
        await tracker.delete_run(run.id)
    out.note(f"deleted {what}")
    return 0


# -- one run --------------------------------------------------------------------------------------
async def show(args: argparse.Namespace, out: Output) -> int:
    """``runjournal show RUN_ID``."""
    async with open_tracker(args.db) as tracker:
        details = await _run_details(tracker, args.run_id)
    if args.format == "json":
        out.json(details)
        return 0
    run = details.run
    fields: list[tuple[str, object]] = [
        ("id", run.id),
        ("name", run.name or ""),
        ("experiment", run.experiment_id),
        ("status", run.status.value),
        ("created", format_time(run.created_at)),
        ("started", format_time(run.start_time)),
        ("ended", format_time(run.end_time)),
        ("duration", format_duration(run.start_time, run.end_time)),
        ("span id", details.span_id or ""),
    ]
    out.print(key_value_table("Run", fields))
    out.print(table("Params", ["key", "value"], sorted_items(run.params)))
    out.print(table("Tags", ["key", "value"], sorted_items(run.tags)))
    metric_rows = [
        (m.key, m.count, m.last_step, repr(m.last), repr(m.min), repr(m.max))
        for m in details.metrics
    ]
    out.print(table("Metrics", ["key", "points", "last step", "last", "min", "max"], metric_rows))
    artifact_rows = [
        (a.name, a.size_bytes, a.sha256, format_time(a.created_at)) for a in details.artifacts
    ]
    out.print(table("Artifacts", ["name", "bytes", "sha256", "logged"], artifact_rows))
    return 0


async def _run_details(tracker: Tracker, run_id: str) -> RunDetails:
    run = await tracker.get_run(run_id)
    summaries = [
        _summarize(key, await tracker.get_metrics(run.id, key))
        for key in await tracker.list_metric_keys(run.id)
    ]
    return RunDetails(
        run=run,
        metrics=summaries,
        artifacts=await tracker.list_artifacts(run.id),
        span_id=await tracker.get_span_id(run.id),
    )


def _summarize(key: str, points: Sequence[MetricPoint]) -> MetricSummary:
    """Count, last point (highest step) and range of a non-empty series, ordered by step."""
    last = points[-1]
    values = [p.value for p in points if not math.isnan(p.value)]
    low, high = (min(values), max(values)) if values else (math.nan, math.nan)
    return MetricSummary(key, len(points), last.step, last.value, low, high)


async def metrics(args: argparse.Namespace, out: Output) -> int:
    """``runjournal metrics RUN_ID KEY [--format table|json|csv]``."""
    async with open_tracker(args.db) as tracker:
        await tracker.get_run(args.run_id)  # RunNotFound before an empty series
        points = await tracker.get_metrics(args.run_id, args.key)
    if not points:
        raise ValueError(f"run {args.run_id} has no metric {args.key!r}")
    if args.format == "json":
        out.json([{"step": p.step, "value": p.value, "timestamp": p.timestamp} for p in points])
    elif args.format == "csv":
        out.csv(["step", "value", "timestamp"], ((p.step, p.value, p.timestamp) for p in points))
    else:
        _print_points(out, args.key, points)
    return 0


def _print_points(out: Output, key: str, points: Sequence[MetricPoint]) -> None:
    """The series as a table; a long one shows only its first and last points."""
    half = TABLE_ROW_LIMIT // 2
    shown = points if len(points) <= TABLE_ROW_LIMIT else [*points[:half], *points[-half:]]
    rows = [(p.step, repr(p.value), format_time(p.timestamp)) for p in shown]
    out.print(table(key, ["step", "value", "time"], rows))
    if len(shown) < len(points):
        out.note(
            f"{len(shown)} of {len(points)} points shown (the first and last {half}); "
            "--format csv or json gives them all"
        )


# -- several runs ---------------------------------------------------------------------------------
_ABSENT: Any = object()


async def compare(args: argparse.Namespace, out: Output) -> int:
    """``runjournal compare RUN_ID RUN_ID...``."""
    async with open_tracker(args.db) as tracker:
        compared = [await _final_state(tracker, run_id) for run_id in args.run_ids]
    sections = {
        "params": _side_by_side([r.params for r, _ in compared]),
        "metrics": _side_by_side([finals for _, finals in compared]),
    }
    if args.format == "json":
        out.json(
            Comparison(
                runs=[ComparedRun(r.id, r.name, r.experiment_id, r.status) for r, _ in compared],
                params=_json_rows(sections["params"]),
                metrics=_json_rows(sections["metrics"]),
            )
        )
        return 0
    headers = [f"{r.name}\n{r.id}" if r.name else r.id for r, _ in compared]
    for title, rows in (("Params", sections["params"]), ("Final metrics", sections["metrics"])):
        shown = [
            (
                "*" if differs else "",
                key,
                *("-" if v is _ABSENT else format_value(v) for v in values),
            )
            for key, values, differs in rows
        ]
        out.print(table(title, ["", "key", *headers], shown))
    out.note("* marks a row whose values differ; - a value the run does not have")
    return 0


async def _final_state(tracker: Tracker, run_id: str) -> tuple[Run, dict[str, float]]:
    run = await tracker.get_run(run_id)
    finals = {
        key: (await tracker.get_metrics(run.id, key))[-1].value
        for key in await tracker.list_metric_keys(run.id)
    }
    return run, finals


_Row = tuple[str, list[Any], bool]
"""``(key, one value per run or _ABSENT, whether they differ)``."""


def _side_by_side(per_run: Sequence[dict[str, Any]]) -> list[_Row]:
    keys = sorted({key for values in per_run for key in values})
    rows = []
    for key in keys:
        values = [values.get(key, _ABSENT) for values in per_run]
        rows.append((key, values, any(not _same(values[0], v) for v in values[1:])))
    return rows


def _json_rows(rows: list[_Row]) -> list[ComparisonRow]:
    return [
        ComparisonRow(key, [None if v is _ABSENT else v for v in values], differs)
        for key, values, differs in rows
    ]


def _same(a: Any, b: Any) -> bool:
    if a is _ABSENT or b is _ABSENT:
        return a is b
    if type(a) is float and type(b) is float and math.isnan(a) and math.isnan(b):
        return True
    return strict_equal(a, b)
