"""The journal commands: export, import, rebuild, verify and replay, over ``runjournal.journal``."""

from __future__ import annotations

import argparse
import contextlib
import os
from collections.abc import Awaitable, Callable, Iterator
from datetime import datetime
from typing import TypeVar

import msgspec
from rich.text import Text

from runjournal import journal
from runjournal._cli_db import refuse_database, require_absent, require_database
from runjournal._cli_output import Output, format_value, key_value_table, table
from runjournal.stores.base import JournalEntry, RawEntry
from runjournal.stores.sqlite import SqliteBackend

__all__ = ["Until", "export", "import_", "parse_until", "rebuild", "replay", "verify"]

_REJECTIONS_SHOWN = 20


class Until(msgspec.Struct, frozen=True):
    """Where ``replay`` stops: at a journal position, or at a wall-clock time (Unix seconds)."""

    position: int | None = None
    time: float | None = None

    def __str__(self) -> str:
        if self.position is not None:
            return f"position {self.position}"
        return f"time {datetime.fromtimestamp(self.time or 0.0).astimezone().isoformat()}"


def parse_until(text: str) -> Until:
    """``--until``: a journal position (an integer), or an ISO-8601 time (local if no offset)."""
    stripped = text.strip()
    if stripped.isdigit():
        return Until(position=int(stripped))
    try:
        moment = datetime.fromisoformat(stripped)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected a journal position (an integer >= 0) or an ISO-8601 time, got {text!r}"
        ) from None
    return Until(time=moment.timestamp())


# -- export and import ----------------------------------------------------------------------------
async def export(args: argparse.Namespace, out: Output) -> int:
    """``runjournal export DEST [--experiment ID] [--run ID] [--after POSITION]``."""
    require_database(args.db)
    refuse_database(args.dest, "export writes event-log files and will not replace it")
    with out.progress(f"exporting {args.db} to {args.dest}"):
        result = await journal.export_events(
            args.db, args.dest, experiment_id=args.experiment, run_id=args.run, after=args.after
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
    source = JournalUntil(args.db, args.until)
    try:
        with _removed_on_error(args.into), out.progress(f"replaying into {args.into}"):
            result = await journal.import_events(args.into, source)
    finally:
        await source.close()
    _print_import(
        out, args.format, f"Replayed {args.db} up to {args.until} into {args.into}", result
    )
    return 0


_Entry = TypeVar("_Entry", RawEntry, JournalEntry)


class JournalUntil(SqliteBackend):
    """A database as an import source whose journal ends at a cut-off (for ``replay``).

    Only reading the journal is bounded: it yields the entries up to a position,
    or those recorded at or before a time (which in a merged journal need not be
    a prefix). Its projections are the database's own, so use it for nothing but
    :func:`runjournal.journal.import_events`.
    """

    def __init__(self, path: str, until: Until) -> None:
        super().__init__(path)
        self.until = until

    def __repr__(self) -> str:
        return f"{self.path} up to {self.until}"

    async def read_journal(self, after: int = 0, limit: int | None = None) -> list[JournalEntry]:
        return await self._bounded(super().read_journal, after, limit)

    async def read_journal_raw(self, after: int = 0, limit: int | None = None) -> list[RawEntry]:
        return await self._bounded(super().read_journal_raw, after, limit)

    async def _bounded(
        self,
        read: Callable[[int, int | None], Awaitable[list[_Entry]]],
        after: int,
        limit: int | None,
    ) -> list[_Entry]:
        """The next non-empty page within the cut-off, or ``[]`` once there is none."""
        end, cutoff = self.until.position, self.until.time
        while page := await read(after, limit):
            kept = [
                e
                for e in page
                if (end is None or e.position <= end)
                and (cutoff is None or e.recorded_at <= cutoff)
            ]
            if kept or (end is not None and page[-1].position >= end):
                return kept
            after = page[-1].position
        return []


@contextlib.contextmanager
def _removed_on_error(path: str) -> Iterator[None]:
    """If the block fails, remove the database it created at ``path`` (with its WAL files)."""
    existed = os.path.exists(path)
    try:
        yield
    except BaseException:
        if not existed:
            for leftover in (path, f"{path}-wal", f"{path}-shm"):
                with contextlib.suppress(FileNotFoundError):
                    os.remove(leftover)
        raise
