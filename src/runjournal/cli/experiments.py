"""The ``experiments`` command: list (the default), show or delete experiments.

Each action is ``async def action(args, out) -> exit code``; :mod:`runjournal.cli.parser`
parses the arguments and picks it. JSON goes through msgspec with the field
names of the structs below, which are stable.
"""

from __future__ import annotations

import argparse

import msgspec

from runjournal.cli.database import open_tracker
from runjournal.cli.output import (
    Output,
    confirmed,
    format_mapping,
    format_time,
    format_value,
    key_value_table,
    table,
)
from runjournal.cli.resolve import resolve_experiment
from runjournal.cli.runs import runs_table
from runjournal.model import Experiment, Run

__all__ = [
    "ExperimentDetails",
    "ExperimentSummary",
    "experiments_delete",
    "experiments_list",
    "experiments_show",
]


class ExperimentSummary(msgspec.Struct, frozen=True):
    """One line of ``experiments list``."""

    id: str
    name: str
    description: str | None
    tags: dict[str, str]
    created_at: float
    updated_at: float
    runs: int


class ExperimentDetails(msgspec.Struct, frozen=True):
    """``experiments show``: the experiment and its runs."""

    experiment: Experiment
    runs: list[Run]


async def experiments_list(args: argparse.Namespace, out: Output) -> int:
    """``runjournal experiments [list]``."""
    async with open_tracker(args.db) as tracker:
        summaries = [
            ExperimentSummary(
                e.id,
                e.name,
                e.description,
                e.tags,
                e.created_at,
                e.updated_at,
                len(await tracker.list_runs(e.id)),
            )
            for e in await tracker.list_experiments()
        ]
    if args.format == "json":
        out.json(summaries)
        return 0
    rows = [
        (s.id, s.name, s.runs, format_time(s.created_at), s.description or "") for s in summaries
    ]
    out.print(table("Experiments", ["id", "name", "runs", "created", "description"], rows))
    return 0


async def experiments_show(args: argparse.Namespace, out: Output) -> int:
    """``runjournal experiments show ID``."""
    async with open_tracker(args.db) as tracker:
        experiment = await resolve_experiment(tracker, args.id)
        details = ExperimentDetails(experiment, await tracker.list_runs(experiment.id))
    if args.format == "json":
        out.json(details)
        return 0
    fields: list[tuple[str, object]] = [
        ("id", experiment.id),
        ("name", experiment.name),
        ("description", experiment.description or ""),
        ("created", format_time(experiment.created_at)),
        ("updated", format_time(experiment.updated_at)),
        ("tags", format_mapping(experiment.tags)),
        ("config", "" if experiment.config is None else format_value(experiment.config)),
    ]
    out.print(key_value_table("Experiment", fields), runs_table(details.runs))
    return 0


async def experiments_delete(args: argparse.Namespace, out: Output) -> int:
    """``runjournal experiments delete ID``: the experiment and all its runs."""
    async with open_tracker(args.db, read_only=False) as tracker:
        experiment = await resolve_experiment(tracker, args.id)
        count = len(await tracker.list_runs(experiment.id))
        what = f"experiment {experiment.id} ({experiment.name}) and its {count} run(s)"
        if not confirmed(out, what, yes=args.yes):
            return 1
        await tracker.delete_experiment(experiment.id)
    out.note(f"deleted {what}")
    return 0
