"""The commands about runs: ``show``, ``metrics``, ``compare``, ``delete``, ``runs end``,
``runs resume``, ``runs hide`` and ``runs restore``.

(``runs`` itself, the listing, is :mod:`runjournal.cli.listing`.) A run is given
by its id or a unique prefix of it (:mod:`runjournal.cli.resolve`).

Each command is ``async def command(args, out) -> exit code``; :mod:`runjournal.cli.parser`
parses the arguments and picks it. Tables go through :mod:`runjournal.cli.output`,
JSON through msgspec with the field names of the structs below, which are stable.
"""

from __future__ import annotations

import argparse
import math
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, Final

import msgspec
from rich.table import Table

from runjournal.cli.database import open_tracker
from runjournal.cli.output import (
    Output,
    confirmed,
    format_duration,
    format_mapping,
    format_number,
    format_time,
    key_value_table,
    lines,
    natural_key,
    sorted_items,
    table,
)
from runjournal.cli.output import (
    cell as cell_of,
)
from runjournal.cli.resolve import resolve_run
from runjournal.filtering import strict_equal
from runjournal.model import STALE_AFTER, ArtifactRef, MetricBucket, MetricPoint, Run, RunStatus
from runjournal.tracker import Tracker

__all__ = [
    "ComparedRun",
    "Comparison",
    "ComparisonRow",
    "MetricSummary",
    "RunDetails",
    "compare",
    "delete_run",
    "end_run",
    "format_status",
    "hide_run",
    "metrics",
    "restore_run",
    "resume_run",
    "runs_table",
    "show",
    "status_matches",
]

_TABLE_ROW_LIMIT: Final = 200
"""Rows shown by ``metrics --format table`` (unless ``--all``); csv and json give them all."""


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


class ComparisonRow(msgspec.Struct, frozen=True, omit_defaults=True):
    """A row of ``compare``: one value per run (null where the run has none)."""

    key: str
    values: list[Any]
    differs: bool
    steps: list[int | None] | None = None
    """For a final metric: the step of each run's last point (null where it has none)."""


class Comparison(msgspec.Struct, frozen=True):
    """``compare``: params and final metric values of several runs, side by side."""

    runs: list[ComparedRun]
    params: list[ComparisonRow]
    metrics: list[ComparisonRow]


# -- runs -----------------------------------------------------------------------------------------
def runs_table(found: Sequence[Run]) -> Table:
    """The runs as a table: id, name, status, start, duration and params."""
    now = time.time()
    rows = [
        (
            r.id,
            r.name or "",
            format_status(r, now),
            format_time(r.start_time),
            format_duration(r.start_time, r.end_time),
            format_mapping(r.params),
        )
        for r in found
    ]
    return table("Runs", ["id", "name", "status", "started", "duration", "params"], rows)


# -- status and liveness ------------------------------------------------------------------------
def status_matches(run: Run, wanted: str, now: float) -> bool:
    """Whether ``run`` has the ``--status`` asked for: a status name (any case), or ``stale``."""
    if wanted.lower() == "stale":
        return run.is_stale(now)
    return run.status.value == wanted.upper()


def format_status(run: Run, now: float) -> str:
    """The run's status, with how long a stale run has been silent: ``RUNNING (no activity for 12 min)``.

    A hidden run says so: ``SUCCESS (hidden)``.
    """
    text = run.status.value
    if run.is_stale(now, STALE_AFTER):
        text += f" (no activity for {_idle(run.idle_for(now))})"
    return text + " (hidden)" if run.hidden else text


def _idle(seconds: float) -> str:
    minutes = int(seconds // 60)
    if minutes < 120:
        return f"{minutes} min"
    hours = minutes // 60
    return f"{hours} h" if hours < 48 else f"{hours // 24} d"


async def delete_run(args: argparse.Namespace, out: Output) -> int:
    """``runjournal delete RUN_ID``."""
    async with open_tracker(args.db, read_only=False) as tracker:
        run = await resolve_run(tracker, args.run_id)
        what = f"run {run.id}" + (f" ({run.name})" if run.name else "")
        if not confirmed(out, what, yes=args.yes):
            return 1
        await tracker.delete_run(run.id)
    out.note(f"deleted {what}")
    return 0


async def end_run(args: argparse.Namespace, out: Output) -> int:
    """``runjournal runs end RUN_ID [--status FAILED|CANCELLED|SUCCESS]``: close a run that died."""
    status = RunStatus(args.status)

    async def end(tracker: Tracker, run: Run) -> None:
        if run.status.is_terminal:
            raise ValueError(f"run {run.id} has already ended ({run.status.value})")
        await tracker.complete_run(run.id, status)

    def ended(before: Run, after: Run) -> str:
        return f"run {before.id} ended: {before.status.value} -> {after.status.value}"

    return await _change_run(args, out, end, ended)


async def resume_run(args: argparse.Namespace, out: Output) -> int:
    """``runjournal runs resume RUN_ID``: an ended run is RUNNING again."""

    async def resume(tracker: Tracker, run: Run) -> None:
        await tracker.resume_run(run.id)

    def resumed(before: Run, after: Run) -> str:
        return f"run {before.id} resumed: {before.status.value} -> {after.status.value}"

    return await _change_run(args, out, resume, resumed)


async def hide_run(args: argparse.Namespace, out: Output) -> int:
    """``runjournal runs hide RUN_ID``: a soft delete, undone by ``runs restore``."""

    async def hide(tracker: Tracker, run: Run) -> None:
        await tracker.hide_run(run.id)

    def hidden(before: Run, after: Run) -> str:
        if before.hidden:
            return f"run {before.id} was already hidden"
        return f"run {before.id} hidden (runs list --hidden shows it)"

    return await _change_run(args, out, hide, hidden)


async def restore_run(args: argparse.Namespace, out: Output) -> int:
    """``runjournal runs restore RUN_ID``: a hidden run is listed again."""

    async def restore(tracker: Tracker, run: Run) -> None:
        await tracker.restore_run(run.id)

    def restored(before: Run, after: Run) -> str:
        return f"run {before.id} " + ("restored" if before.hidden else "was already listed")

    return await _change_run(args, out, restore, restored)


async def _change_run(
    args: argparse.Namespace,
    out: Output,
    change: Callable[[Tracker, Run], Awaitable[None]],
    describe: Callable[[Run, Run], str],
) -> int:
    """Resolve ``args.run_id``, apply ``change``, wait for it to be written, and show the run:
    whole with ``--format json``, else as one line ``describe(before, after)``."""
    async with open_tracker(args.db, read_only=False) as tracker:
        before = await resolve_run(tracker, args.run_id)
        await change(tracker, before)
        await tracker.flush()
        after = await tracker.get_run(before.id)
    if args.format == "json":
        out.json(after)
    else:
        out.note(describe(before, after))
    return 0


# -- one run --------------------------------------------------------------------------------------
async def show(args: argparse.Namespace, out: Output) -> int:
    """``runjournal show RUN_ID``."""
    async with open_tracker(args.db) as tracker:
        details = await _run_details(tracker, (await resolve_run(tracker, args.run_id)).id)
    if args.format == "json":
        out.json(details)
        return 0
    run = details.run
    fields: list[tuple[str, object]] = [
        ("id", run.id),
        ("name", run.name or ""),
        ("experiment", run.experiment_id),
        ("status", format_status(run, time.time())),
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
        for m in sorted(details.metrics, key=lambda m: natural_key(m.key))
    ]
    out.print(table("Metrics", ["key", "points", "last step", "last", "min", "max"], metric_rows))
    artifact_rows = [
        (a.name, a.size_bytes, a.sha256, format_time(a.created_at)) for a in details.artifacts
    ]
    out.print(table("Artifacts", ["name", "bytes", "sha256", "logged"], artifact_rows))
    return 0


async def _run_details(tracker: Tracker, run_id: str) -> RunDetails:
    run = await tracker.get_run(run_id)
    # From the rollups: a summary costs one row per key, whatever the length of the series.
    buckets = (await tracker.metric_summaries([run.id])).get(run.id, {})
    summaries = [_summarize(key, buckets[key]) for key in sorted(buckets) if buckets[key].count]
    return RunDetails(
        run=run,
        metrics=summaries,
        artifacts=await tracker.list_artifacts(run.id),
        span_id=await tracker.get_span_id(run.id),
    )


def _summarize(key: str, whole: MetricBucket) -> MetricSummary:
    """Count, last point (highest step) and range (finite values; NaN if none) of a series."""
    low = math.nan if whole.min is None else whole.min
    high = math.nan if whole.max is None else whole.max
    return MetricSummary(key, whole.count, whole.last_step, whole.last, low, high)


async def metrics(args: argparse.Namespace, out: Output) -> int:
    """``runjournal metrics RUN_ID KEY [KEY ...] [--format table|json|csv] [--all]``.

    One key prints its points (step, value, time). Several keys print one row
    per step with a column per key (the last point of each step), ``-`` where
    a series has no point at that step.
    """
    keys = list(dict.fromkeys(args.keys))
    async with open_tracker(args.db) as tracker:
        run = await resolve_run(tracker, args.run_id)  # RunNotFound before an empty series
        whole = (await tracker.metric_summaries([run.id], keys)).get(run.id, {})
        for key in keys:
            if key not in whole or not whole[key].count:
                raise ValueError(f"run {run.id} has no metric {key!r}")
        if len(keys) == 1 and args.format == "table" and not args.all:
            key = keys[0]
            if whole[key].count > _TABLE_ROW_LIMIT:
                # Print the head and the tail without reading the whole series.
                head, tail = await _ends(tracker, run.id, key, whole[key], _TABLE_ROW_LIMIT // 2)
                _print_ends(out, key, head, tail, whole[key].count)
                return 0
        series = {key: await tracker.get_metrics(run.id, key) for key in keys}
    if len(series) == 1:
        ((key, points),) = series.items()
        if args.format == "json":
            out.json([{"step": p.step, "value": p.value, "timestamp": p.timestamp} for p in points])
        elif args.format == "csv":
            out.csv(
                ["step", "value", "timestamp"], ((p.step, p.value, p.timestamp) for p in points)
            )
        else:
            rows = [(p.step, repr(p.value), format_time(p.timestamp)) for p in points]
            _print_rows(out, key, ["step", "value", "time"], rows, show_all=args.all)
        return 0
    if args.format == "json":
        out.json(
            {
                key: [{"step": p.step, "value": p.value, "timestamp": p.timestamp} for p in points]
                for key, points in series.items()
            }
        )
        return 0
    by_step: dict[int, dict[str, float]] = {}
    for key, points in series.items():
        for p in points:
            by_step.setdefault(p.step, {})[key] = p.value
    keys = list(series)
    steps = sorted(by_step)
    if args.format == "csv":
        out.csv(["step", *keys], ([s, *(by_step[s].get(k, "") for k in keys)] for s in steps))
        return 0
    table_rows: list[tuple[object, ...]] = [
        (s, *(repr(by_step[s][k]) if k in by_step[s] else "-" for k in keys)) for s in steps
    ]
    _print_rows(out, ", ".join(keys), ["step", *keys], table_rows, show_all=args.all)
    return 0


async def _ends(
    tracker: Tracker, run_id: str, key: str, whole: MetricBucket, count: int
) -> tuple[list[MetricPoint], list[MetricPoint]]:
    """The first and last ``count`` points of a series, reading step windows that grow.

    Only the stored batches that reach a window are decoded, so a 10-million-point
    series costs a few batches, not the whole series.
    """
    width = count
    while True:
        head = await tracker.get_metrics(
            run_id, key, end=min(whole.first_step + width, whole.last_step)
        )
        if len(head) >= count or whole.first_step + width >= whole.last_step:
            break
        width *= 4
    width = count
    while True:
        start = max(whole.last_step - width, whole.first_step)
        tail = await tracker.get_metrics(run_id, key, start=start)
        if len(tail) >= count or start == whole.first_step:
            break
        width *= 4
    return head[:count], tail[-count:]


def _print_ends(
    out: Output, key: str, head: list[MetricPoint], tail: list[MetricPoint], total: int
) -> None:
    rows = [(p.step, repr(p.value), format_time(p.timestamp)) for p in (*head, *tail)]
    out.print(table(key, ["step", "value", "time"], rows))
    out.note(
        f"{len(rows)} of {total} rows shown (the first and last {len(head)}); "
        "--all shows them all, --format csv or json gives them to programs"
    )


def _print_rows(
    out: Output, title: str, columns: list[str], rows: Sequence[Sequence[object]], *, show_all: bool
) -> None:
    """A table of a series; a long one shows only its first and last rows unless ``show_all``."""
    half = _TABLE_ROW_LIMIT // 2
    cut = not show_all and len(rows) > _TABLE_ROW_LIMIT
    shown = [*rows[:half], *rows[-half:]] if cut else rows
    out.print(table(title, columns, shown))
    if cut:
        out.note(
            f"{len(shown)} of {len(rows)} rows shown (the first and last {half}); "
            "--all shows them all, --format csv or json gives them to programs"
        )


# -- several runs ---------------------------------------------------------------------------------
_ABSENT: Any = object()


async def compare(args: argparse.Namespace, out: Output) -> int:
    """``runjournal compare RUN_ID RUN_ID... [--precision N]``."""
    async with open_tracker(args.db) as tracker:
        compared = [await _final_state(tracker, run_id) for run_id in args.run_ids]
    params = _side_by_side([r.params for r, _ in compared])
    finals = _side_by_side([{k: v for k, (v, _) in f.items()} for _, f in compared])
    steps = {key: [f[key][1] if key in f else None for _, f in compared] for key, _, _ in finals}
    if args.format == "json":
        out.json(
            Comparison(
                runs=[ComparedRun(r.id, r.name, r.experiment_id, r.status) for r, _ in compared],
                params=_json_rows(params),
                metrics=[
                    msgspec.structs.replace(row, steps=steps[row.key]) for row in _json_rows(finals)
                ],
            )
        )
        return 0
    headers = [lines(r.name, r.id) if r.name else lines(r.id) for r, _ in compared]
    status_row = ("", "status", *(r.status.value for r, _ in compared))
    precision = args.precision

    def shown(rows: list[_Row], with_steps: bool) -> list[tuple[object, ...]]:
        result: list[tuple[object, ...]] = []
        for key, values, differs in rows:
            cells: list[object] = []
            for i, v in enumerate(values):
                if v is _ABSENT:
                    cells.append("-")
                elif with_steps:
                    cells.append(f"{format_number(v, precision)} (step {steps[key][i]})")
                else:
                    cells.append(format_number(v, precision))
            result.append(("*" if differs else "", key, *cells))
        return result

    out.print(_compare_table("Params", headers, [status_row, *shown(params, False)]))
    out.print(_compare_table("Final metrics", headers, shown(finals, True)))
    out.note("* marks a row whose values differ; - a value the run does not have")
    return 0


def _compare_table(title: str, headers: list[Any], rows: list[tuple[object, ...]]) -> Table:
    result = table(title, ["", "key"], rows=[])
    for header in headers:
        result.add_column(header, no_wrap=True)
    for row in rows:
        result.add_row(*(cell_of(v) for v in row))
    return result


async def _final_state(tracker: Tracker, given: str) -> tuple[Run, dict[str, tuple[float, int]]]:
    run = await resolve_run(tracker, given)
    buckets = (await tracker.metric_summaries([run.id])).get(run.id, {})
    finals = {key: (b.last, b.last_step) for key, b in buckets.items() if b.count}
    return run, finals


_Row = tuple[str, list[Any], bool]
"""``(key, one value per run or _ABSENT, whether they differ)``."""


def _side_by_side(per_run: Sequence[dict[str, Any]]) -> list[_Row]:
    keys = sorted({key for values in per_run for key in values}, key=natural_key)
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
