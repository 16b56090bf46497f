"""The ``runs`` listing: one row per run, params and last metric values as columns.

Filters, sorting, the choice of columns and the row limit are pure functions
over :class:`Row` objects; :func:`runs` gathers the rows through the public
query API and prints them.
"""

from __future__ import annotations

import argparse
import math
import time
from collections.abc import Sequence
from typing import Any

import msgspec

from runjournal.cli.database import open_tracker
from runjournal.cli.output import (
    Output,
    format_duration,
    format_number,
    format_time,
    natural_key,
    table,
)
from runjournal.cli.resolve import resolve_experiment
from runjournal.cli.runs import format_status, status_matches
from runjournal.filter_syntax import RunFilter, is_missing, lookup
from runjournal.filtering import value_matches
from runjournal.model import Run

__all__ = ["Row", "RunRow", "runs"]

_FIXED = ["id", "name", "status", "started", "duration"]
_ABSENT = "-"


class Row(msgspec.Struct):
    """A run with the last value of each of its metrics."""

    run: Run
    metrics: dict[str, float]
    experiment: str = ""


class RunRow(msgspec.Struct, frozen=True):
    """``runs --format json``: a run's fields, then its last metric values."""

    id: str
    experiment_id: str
    name: str | None
    status: str
    created_at: float
    start_time: float | None
    end_time: float | None
    params: dict[str, Any]
    tags: dict[str, str]
    metrics: dict[str, float]
    hidden: bool = False


async def runs(args: argparse.Namespace, out: Output) -> int:
    """``runjournal runs [EXPERIMENT] [--filter EXPR] [--status S] [--sort KEY] [--limit N]``."""
    filters: list[RunFilter] = args.filter
    # Plain param keys are answered by the store; dotted ones may reach into nested params.
    pushed = [f.condition for f in filters if f.target == "param" and "." not in f.condition.key]
    async with open_tracker(args.db) as tracker:
        names: dict[str, str] = {}
        if args.experiment is None:
            experiment_id = None
            names = {e.id: e.name for e in await tracker.list_experiments()}
        else:
            experiment_id = (await resolve_experiment(tracker, args.experiment)).id
        view = "ALL" if args.all else "HIDDEN" if args.hidden else "ACTIVE"
        found = await tracker.filter_runs(experiment_id, pushed, view=view)
        if args.status:
            now = time.time()
            found = [r for r in found if any(status_matches(r, w, now) for w in args.status)]
        # The last value of every metric of every listed run, in one read of the rollups.
        summaries = await tracker.metric_summaries([r.id for r in found])
        rows = [
            Row(
                r,
                {key: b.last for key, b in summaries.get(r.id, {}).items() if b.count},
                names.get(r.experiment_id, ""),
            )
            for r in found
        ]
    unknown = _unknown_keys(filters, rows)
    for what in unknown:
        out.note(f"no listed run has the {what}, so the filter on it matches nothing")
    rows = [row for row in rows if all(_keeps(row, f) for f in filters)]
    if args.sort:
        rows = _sorted(rows, args.sort)
    if args.limit is not None:
        rows = rows[: args.limit]
    if args.format == "json":
        out.json([_json_row(row) for row in rows])
        return 0
    if not rows and unknown:
        return 0  # the note said why; an empty table would add nothing
    _print(out, rows, args, all_experiments=args.experiment is None)
    return 0


def _json_row(row: Row) -> RunRow:
    r = row.run
    return RunRow(
        r.id,
        r.experiment_id,
        r.name,
        r.status.value,
        r.created_at,
        r.start_time,
        r.end_time,
        r.params,
        r.tags,
        row.metrics,
        r.hidden,
    )


# -- filters --------------------------------------------------------------------------------------
def _value(row: Row, target: str, key: str) -> Any:
    """The value a filter, a sort or a column reads from a row; ``None`` if it has none."""
    if target == "metric":
        return row.metrics.get(key)
    if target == "tag":
        return row.run.tags.get(key)
    if target == "status":
        return row.run.status.value
    found = lookup(row.run.params, key)
    return None if is_missing(found) else found


def _has(row: Row, target: str, key: str) -> bool:
    if target == "metric":
        return key in row.metrics
    if target == "tag":
        return key in row.run.tags
    if target == "status":
        return True
    return not is_missing(lookup(row.run.params, key))


def _keeps(row: Row, flt: RunFilter) -> bool:
    key = flt.condition.key
    return _has(row, flt.target, key) and value_matches(_value(row, flt.target, key), flt.condition)


def _unknown_keys(filters: Sequence[RunFilter], rows: Sequence[Row]) -> list[str]:
    """The filters' keys that none of ``rows`` has (only the rows before filtering say so)."""
    unknown = []
    for flt in filters:
        if flt.target == "param" and "." not in flt.condition.key:
            continue  # pushed down: the store already left out every run without it
        if not any(_has(row, flt.target, flt.condition.key) for row in rows):
            unknown.append(f"{flt.target} {flt.condition.key!r}")
    return unknown


# -- sorting and columns --------------------------------------------------------------------------
def _resolve_key(rows: Sequence[Row], spelled: str) -> tuple[str, str]:
    """``(target, key)`` for a sort key or a column: ``metric.x``, ``param.x``, ``tag.x``, or a
    bare name, which is a param if any listed run has it, else a metric."""
    prefix, dot, name = spelled.partition(".")
    if dot and name and prefix in ("metric", "param", "tag"):
        return prefix, name
    if spelled in ("status", "name", "started", "created", "duration"):
        return "run", spelled
    if any(_has(row, "param", spelled) for row in rows):
        return "param", spelled
    return "metric", spelled


def _run_field(run: Run, key: str) -> Any:
    if key == "status":
        return run.status.value
    if key == "name":
        return run.name
    if key == "started":
        return run.start_time
    if key == "created":
        return run.created_at
    if run.start_time is None or run.end_time is None:
        return None
    return run.end_time - run.start_time


def _read(row: Row, target: str, key: str) -> Any:
    if target == "run":
        return _run_field(row.run, key)
    return _value(row, target, key)


def _sorted(rows: list[Row], spelled: str) -> list[Row]:
    """Rows ordered by a key (``-key`` descending); runs without it (or with NaN) come last."""
    descending = spelled.startswith("-")
    target, key = _resolve_key(rows, spelled.lstrip("-"))
    present: list[tuple[Any, Row]] = []
    absent: list[Row] = []
    for row in rows:
        value = _read(row, target, key)
        if value is None or (type(value) is float and math.isnan(value)):
            absent.append(row)
        else:
            present.append((_order(value), row))
    present.sort(key=lambda pair: pair[0], reverse=descending)
    return [row for _, row in present] + absent


def _order(value: Any) -> tuple[int, Any]:
    """Numbers before strings before anything else, each kind in its own order."""
    if type(value) in (int, float):
        return (0, value)
    if type(value) is str:
        return (1, natural_key(value))
    return (2, msgspec.json.encode(value))


def _columns(args: argparse.Namespace, rows: Sequence[Row]) -> list[tuple[str, str]]:
    """``--columns``, or the params whose values differ between the rows, then every metric."""
    if args.columns:
        return [_resolve_key(rows, c.strip()) for c in args.columns.split(",") if c.strip()]
    params: set[str] = set()
    for row in rows:
        params.update(row.run.params)
    varying = [
        ("param", key)
        for key in sorted(params, key=natural_key)
        if len({msgspec.json.encode(_value(row, "param", key)) for row in rows}) > 1
    ]
    metrics = sorted({key for row in rows for key in row.metrics}, key=natural_key)
    return [*varying, *(("metric", key) for key in metrics)]


def _cell(value: Any, precision: int) -> str:
    if value is None:
        return _ABSENT
    return format_number(value, precision)


def _print(
    out: Output, rows: list[Row], args: argparse.Namespace, *, all_experiments: bool
) -> None:
    fixed = ["id", *(["experiment"] if all_experiments else []), *_FIXED[1:]]
    now = time.time()
    fixed_rows = [
        [
            row.run.id,
            *([row.experiment] if all_experiments else []),
            row.run.name or "",
            format_status(row.run, now),
            format_time(row.run.start_time),
            format_duration(row.run.start_time, row.run.end_time),
        ]
        for row in rows
    ]
    # Each column costs its widest cell plus the table's padding and border (3 characters).
    used = sum(
        max([len(name), *(len(str(r[i])) for r in fixed_rows)]) + 3 for i, name in enumerate(fixed)
    )
    chosen: list[tuple[str, str, list[str]]] = []
    left_out = 0
    for target, key in _columns(args, rows):
        header = f"{target}.{key}" if target == "tag" else key
        cells = [_cell(_read(row, target, key), args.precision) for row in rows]
        cost = max([len(header), *(len(c) for c in cells)]) + 3
        if not args.columns and used + cost > out.data.width:
            left_out += 1
            continue
        used += cost
        chosen.append((target, header, cells))
    headers = [*fixed, *(h for _, h, _ in chosen)]
    table_rows = [
        [*fixed_row, *(cells[i] for _, _, cells in chosen)]
        for i, fixed_row in enumerate(fixed_rows)
    ]
    out.print(table("Runs", headers, table_rows))
    if left_out:
        out.note(f"{left_out} more column(s) do not fit; choose with --columns")
