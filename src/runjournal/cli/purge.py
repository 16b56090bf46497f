"""``runjournal purge``: erase deleted runs and experiments for good, and compact the file.

``delete`` hides; ``purge`` erases (see :func:`runjournal.journal.purge`).
"""

from __future__ import annotations

import argparse

from rich.text import Text

from runjournal import journal
from runjournal.cli.database import require_database
from runjournal.cli.output import Output, confirmed, key_value_table

__all__ = ["purge"]


def _size(size: int | None) -> str:
    return "-" if size is None else f"{size / 1e6:.1f} MB ({size} bytes)"


async def purge(args: argparse.Namespace, out: Output) -> int:
    """``runjournal purge [--yes]``: asks first on a terminal, unless ``--yes``."""
    require_database(args.db)
    what = f"for good the entries of every deleted run and experiment in {args.db}"
    if not confirmed(out, what, yes=args.yes):
        return 1
    with out.progress(f"purging {args.db}"):
        result = await journal.purge(args.db)
    if args.format == "json":
        out.json(result)
        return 0
    if result.position is None:
        out.print(Text(f"{args.db}: nothing deleted was left to erase"))
    rows: list[tuple[str, object]] = [
        ("runs erased", len(result.runs)),
        ("experiments erased", len(result.experiments)),
        ("journal entries erased", result.entries),
        ("artifact contents dropped", result.blobs),
        ("size before", _size(result.size_before)),
        ("size after", _size(result.size_after)),
    ]
    out.print(key_value_table(f"Purged {args.db}", rows))
    if not result.compacted:
        out.note("another process kept the database busy, so it was not compacted; purge again")
    return 0
