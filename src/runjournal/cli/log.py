"""The ``log`` and ``follow`` commands: the journal's entries, one line each.

A line is ``POSITION  TIME  KIND  RUN-OR-EXPERIMENT  DETAIL``; the position is
what ``replay --until`` and ``export --after`` take. ``log`` prints what the
journal holds (from ``--after``, at most ``--limit`` entries); ``follow`` prints
the last few entries, then every new one as it is committed, until Ctrl-C. With
``--format json`` each entry is one JSON object (``log``: an array of them;
``follow``: one object per line).
"""

from __future__ import annotations

import argparse
import contextlib
from typing import Final

import msgspec

from runjournal import journal
from runjournal.cli.database import require_database
from runjournal.cli.output import Output, escape, format_time
from runjournal.events import (
    ArtifactLogged,
    Event,
    ExperimentCreated,
    MetricChunkLogged,
    MetricLogged,
    MetricsLogged,
    ParamsLogged,
    RunCompleted,
    RunCreated,
    TagSet,
)

__all__ = ["FOLLOW_BACKLOG", "LogLine", "follow", "log"]

FOLLOW_BACKLOG: Final = 10
"""Entries ``follow`` shows before the new ones, as ``tail -f`` does."""


class LogLine(msgspec.Struct, frozen=True):
    """One journal entry as ``log --format json`` and ``follow --format json`` give it."""

    position: int
    recorded_at: float
    kind: str
    run_id: str | None
    experiment_id: str | None
    detail: str


def _describe(position: int, recorded_at: float, event: Event) -> LogLine:
    """What one line says about an entry."""
    kind = str(type(event).__struct_config__.tag)
    run_id = getattr(event, "run_id", None)
    experiment_id = getattr(event, "experiment_id", None)
    return LogLine(position, recorded_at, kind, run_id, experiment_id, _detail(event))


def _detail(event: Event) -> str:
    match event:
        case MetricsLogged(key=key, points=points) | MetricChunkLogged(key=key, points=points):
            steps = (
                f"step {points[0].step}"
                if len(points) == 1
                else (f"steps {points[0].step}..{points[-1].step}" if points else "no points")
            )
            return f"{key}: {len(points)} point(s), {steps}"
        case MetricLogged(key=key, step=step):
            return f"{key}: step {step}"
        case ParamsLogged(params=params):
            return ", ".join(params)
        case TagSet(key=key, value=value):
            return f"{key}={value}"
        case RunCompleted(status=status):
            return status.value
        case ArtifactLogged(name=name, size_bytes=size):
            return f"{name} ({size:,} bytes)"
        case ExperimentCreated(name=name) | RunCreated(name=name):
            return name or ""
    return ""


def _text(line: LogLine) -> str:
    target = line.run_id or line.experiment_id or "-"
    detail = escape(line.detail)
    if len(detail) > 120:
        detail = detail[:120] + "…"
    return (
        f"{line.position:>8}  {format_time(line.recorded_at)}  {line.kind:<18} {target}  {detail}"
    )


def _recorded_at(event: Event) -> float:
    at = getattr(event, "at", None)
    return float(at) if at is not None else float(getattr(event, "timestamp", 0.0))


async def log(args: argparse.Namespace, out: Output) -> int:
    """``runjournal log [--after POSITION] [--limit N]``."""
    require_database(args.db)
    first = True
    if args.format == "json":
        out.raw(b"[")
    async with contextlib.aclosing(
        journal.entries(args.db, after=args.after, limit=args.limit)
    ) as entries:
        async for entry in entries:
            line = _describe(entry.position, entry.recorded_at, entry.event)
            if args.format == "json":
                out.raw((b"" if first else b",") + msgspec.json.encode(line))
            else:
                out.line(_text(line))
            first = False
    if args.format == "json":
        out.raw(b"]\n")
    return 0


async def follow(args: argparse.Namespace, out: Output) -> int:
    """``runjournal follow [--after POSITION]``: tail the journal until Ctrl-C (exit code 0)."""
    require_database(args.db)
    after = args.after
    if after is None:
        after = max(await journal.head(args.db) - FOLLOW_BACKLOG, 0)
    async with contextlib.aclosing(
        journal.follow(args.db, after=after, poll_interval=args.interval)
    ) as entries:
        async for position, event in entries:
            line = _describe(position, _recorded_at(event), event)
            if args.format == "json":
                out.raw(msgspec.json.encode(line) + b"\n")
            else:
                out.line(_text(line))
    return 0  # pragma: no cover - the journal never ends; Ctrl-C does
