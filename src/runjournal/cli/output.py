"""How the command line talks: rich tables for people, JSON and CSV for programs, questions.

Every string that comes from the user's data goes into a :class:`rich.text.Text`,
which rich never parses as markup, so a parameter named ``[red]x`` prints as is.
Data goes to stdout; progress bars, notes and questions go to stderr, so piping
the output of a command never mixes the two.
"""

from __future__ import annotations

import contextlib
import csv
import math
import os
import sys
from collections.abc import Iterable, Iterator, Sequence
from datetime import UTC, datetime
from typing import Any

import msgspec
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.prompt import Confirm
from rich.table import Table
from rich.text import Text

__all__ = [
    "Output",
    "cell",
    "confirmed",
    "format_duration",
    "format_mapping",
    "format_time",
    "format_value",
    "key_value_table",
    "sorted_items",
    "table",
]

_PIPE_WIDTH = 240
"""Width of tables written to a pipe or file: wide enough that ids never wrap."""

_MISSING = "-"


def _console(*, stderr: bool) -> Console:
    stream = sys.stderr if stderr else sys.stdout
    width = None
    if not stream.isatty() and "COLUMNS" not in os.environ:
        width = _PIPE_WIDTH
    return Console(
        stderr=stderr, width=width, markup=False, emoji=False, highlight=False, soft_wrap=False
    )


class Output:
    """The two streams of one command: ``data`` (stdout) and ``notes`` (stderr)."""

    def __init__(self) -> None:
        self.data = _console(stderr=False)
        self.notes = _console(stderr=True)

    def print(self, *renderables: Any) -> None:
        """Print tables or texts to stdout."""
        self.data.print(*renderables)

    def note(self, message: str) -> None:
        """A line for the person at the terminal, on stderr."""
        self.notes.print(Text(message))

    def json(self, value: Any) -> None:
        """Write ``value`` as one line of JSON to stdout (structs keep their field order)."""
        sys.stdout.flush()
        sys.stdout.buffer.write(msgspec.json.encode(value) + b"\n")
        sys.stdout.buffer.flush()

    def csv(self, header: Sequence[str], rows: Iterable[Sequence[object]]) -> None:
        """Write CSV with a header row to stdout."""
        writer = csv.writer(sys.stdout, lineterminator="\n")
        writer.writerow(header)
        writer.writerows(rows)
        sys.stdout.flush()

    @contextlib.contextmanager
    def progress(self, description: str) -> Iterator[None]:
        """A pulsing progress bar on stderr while the block runs, only if stderr is a terminal.

        The journal functions report no progress as they go, so the bar shows that
        work goes on and for how long, not how much is left.
        """
        bar = Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            TimeElapsedColumn(),
            console=self.notes,
            transient=True,
            disable=not self.notes.is_terminal,
        )
        with bar:
            bar.add_task(description, total=None)
            yield


def confirmed(out: Output, what: str, *, yes: bool) -> bool:
    """Ask before deleting ``what``, but only a person at a terminal; ``yes`` skips the question."""
    if yes or not (sys.stdin.isatty() and out.notes.is_terminal):
        return True
    question = Text(f"Delete {what}? This cannot be undone.")
    if Confirm.ask(question, console=out.notes, default=False):
        return True
    out.note("nothing deleted")
    return False


def cell(value: object) -> Text:
    """A table cell that shows ``value`` literally (no markup, no emoji codes)."""
    return value if isinstance(value, Text) else Text(str(value))


def table(title: str | None, columns: Sequence[str], rows: Iterable[Sequence[object]]) -> Table:
    """A rich table whose cells are literal texts."""
    result = Table(title=None if title is None else Text(title), title_justify="left")
    for name in columns:
        result.add_column(Text(name), overflow="fold")
    for row in rows:
        result.add_row(*(cell(v) for v in row))
    return result


def key_value_table(title: str | None, pairs: Iterable[tuple[str, object]]) -> Table:
    """A two-column table (name, value) for one object's fields."""
    result = table(title, ["", ""], pairs)
    result.show_header = False
    result.columns[0].style = "bold"
    return result


def format_value(value: Any) -> str:
    """A param or metric value as people read it: strings raw, the rest as JSON."""
    if type(value) is str:
        return value
    if type(value) is float:
        return repr(value)
    return msgspec.json.encode(value).decode()


def format_time(timestamp: float | None) -> str:
    """Unix seconds as ISO-8601 in the local time zone, with its offset."""
    if timestamp is None:
        return _MISSING
    moment = datetime.fromtimestamp(timestamp, tz=UTC).astimezone()
    return moment.isoformat(timespec="milliseconds")


def format_duration(start: float | None, end: float | None) -> str:
    """``end - start`` as ``H:MM:SS.s`` (or a dash when either is unknown)."""
    if start is None or end is None:
        return _MISSING
    seconds = max(end - start, 0.0)
    if not math.isfinite(seconds):
        return _MISSING
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{int(hours)}:{int(minutes):02d}:{secs:04.1f}"


def sorted_items(mapping: dict[str, Any]) -> list[tuple[str, str]]:
    """``(key, formatted value)`` pairs, sorted by key."""
    return [(key, format_value(mapping[key])) for key in sorted(mapping)]


def format_mapping(mapping: dict[str, Any]) -> str:
    """``key=value`` lines, sorted by key, for a cell that holds a whole mapping."""
    return "\n".join(f"{key}={value}" for key, value in sorted_items(mapping))
