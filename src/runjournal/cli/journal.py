"""The journal commands: ``export``, ``import``, ``rebuild``, ``verify`` and ``replay``.

The work is done by :mod:`runjournal.journal`; a command only checks the paths
it was given and prints what the journal function returns.
"""

from __future__ import annotations

import argparse
import contextlib
import os
from collections.abc import Iterator
from datetime import datetime

import msgspec
from rich.text import Text

from runjournal import journal
from runjournal.cli.database import (
    open_tracker,
    refuse_database,
    require_absent,
    require_database,
)
from runjournal.cli.output import Output, format_value, key_value_table, table
from runjournal.cli.resolve import resolve_experiment, resolve_run
from runjournal.stores import is_postgres_url

__all__ = ["Rebuilt", "export", "import_", "parse_until", "rebuild", "replay", "verify"]

_REJECTIONS_SHOWN = 20


def parse_until(text: str) -> journal.Cutoff:
    """``--until``: a journal position (an integer), or an ISO-8601 time (local if no offset)."""
    stripped = text.strip()
    if stripped.isdigit():
        return journal.Cutoff(position=int(stripped))
    try:
        moment = datetime.fromisoformat(stripped)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected a journal position (an integer >= 0) or an ISO-8601 time, got {text!r}"
        ) from None
    return journal.Cutoff(time=moment.timestamp())


# -- export and import ----------------------------------------------------------------------------
async def export(args: argparse.Namespace, out: Output) -> int:
    """``runjournal export DEST [--experiment ID] [--run ID] [--after POSITION]``."""
    require_database(args.db)
    refuse_database(args.dest, "export writes event-log files and will not replace it")
    if not args.force:
        require_absent(args.dest, "give --force to replace it")
    experiment_id, run_id = args.experiment, args.run
    if experiment_id is not None or run_id is not None:
        async with open_tracker(args.db) as tracker:
            if experiment_id is not None:
                experiment_id = (await resolve_experiment(tracker, experiment_id)).id
            if run_id is not None:
                run_id = (await resolve_run(tracker, run_id)).id
    with out.progress(f"exporting {args.db} to {args.dest}"):
        result = await journal.export_events(
            args.db, args.dest, experiment_id=experiment_id, run_id=run_id, after=args.after
        )
    if args.format == "json":
        out.json(result)
    else:
        fields = msgspec.structs.asdict(result)
        out.print(key_value_table(f"Exported to {args.dest}", list(fields.items())))
    return 0


async def import_(args: argparse.Namespace, out: Output) -> int:
    """``runjournal import SOURCE...``: creates the database if it is missing."""
    with _removed_on_error(args.db), out.progress(f"importing into {args.db}"):
        result = await journal.import_events(args.db, *args.sources)
    _print_import(out, args.format, f"Imported into {args.db}", result)
    return 0


def _print_import(out: Output, fmt: str, title: str, result: journal.ImportResult) -> None:
    if fmt == "json":
        out.json(result)
        return
    columns = ["source", "kind", "entries", "events", "blobs", "appended", "duplicates", "rejected"]
    rows = [
        (s.source, s.kind, s.entries, s.events, s.blobs, s.appended, s.duplicates, s.rejected)
        for s in result.sources
    ]
    out.print(table(title, columns, rows))
    rejections = [r for s in result.sources for r in s.rejections]
    if rejections:
        shown = [(r.source, r.seq, r.event, r.reason) for r in rejections[:_REJECTIONS_SHOWN]]
        out.print(table("Left out", ["source", "seq", "event", "reason"], shown))
    if len(rejections) > _REJECTIONS_SHOWN:
        out.note(f"{len(rejections)} entries left out; --format json lists them all")


# -- rebuild and verify ---------------------------------------------------------------------------
class Rebuilt(msgspec.Struct, frozen=True):
    """What ``rebuild`` prints: the journal position its projections now stand at."""

    position: int


async def rebuild(args: argparse.Namespace, out: Output) -> int:
    """``runjournal rebuild``."""
    require_database(args.db)
    with out.progress(f"rebuilding {args.db}"):
        position = await journal.rebuild(args.db)
    if args.format == "json":
        out.json(Rebuilt(position))
    else:
        out.print(Text(f"{args.db}: projections rebuilt from journal entries 1 to {position}"))
    return 0


async def verify(args: argparse.Namespace, out: Output) -> int:
    """``runjournal verify``: exit code 1 if the projections differ from a fresh fold."""
    require_database(args.db)
    with out.progress(f"verifying {args.db}"):
        report = await journal.verify(args.db)
    if args.format == "json":
        out.json(report)
    elif report.differences:
        rows = [(d.what, format_value(d.live), format_value(d.journal)) for d in report.differences]
        title = f"{len(rows)} difference(s) at position {report.position}; rebuild repairs them"
        out.print(table(title, ["what", "live projections", "folded journal"], rows))
    else:
        out.print(
            Text(f"{args.db}: the projections match the journal (position {report.position})")
        )
    return 0 if report.ok else 1


# -- replay ---------------------------------------------------------------------------------------
async def replay(args: argparse.Namespace, out: Output) -> int:
    """``runjournal replay --until POSITION|TIME --into NEW.db``.

    The journal entries up to the cut-off are imported into the new database, so
    it holds the state :func:`runjournal.journal.state_at` shows at that point,
    with the journal that led there. With a time, entries recorded after it are
    left out, and so is anything that depended on them.
    """
    require_database(args.db)
    require_absent(args.into, "replay writes a new database")
    with _removed_on_error(args.into), out.progress(f"replaying into {args.into}"):
        result = await journal.import_events(args.into, args.db, until=args.until)
    _print_import(
        out, args.format, f"Replayed {args.db} up to {args.until} into {args.into}", result
    )
    return 0


@contextlib.contextmanager
def _removed_on_error(path: str) -> Iterator[None]:
    """If the block fails, remove the database it created at ``path`` (with its WAL files).

    A PostgreSQL schema is left as it is: each source is one transaction there.
    """
    existed = is_postgres_url(path) or os.path.exists(path)
    try:
        yield
    except BaseException:
        if not existed:
            for leftover in (path, f"{path}-wal", f"{path}-shm"):
                with contextlib.suppress(FileNotFoundError):
                    os.remove(leftover)
        raise
