"""How the command line talks: rich tables for people, JSON and CSV for programs, questions.

Every string that comes from the user's data goes into a :class:`rich.text.Text`,
which rich never parses as markup, so a parameter named ``[red]x`` prints as is,
and its control characters (newlines, ANSI escapes, bidi overrides) are shown
escaped (``\\n``, ``\\x1b``) by :func:`escape`, so data never drives the terminal.
A table cell longer than :data:`CELL_LIMIT` characters is cut (:func:`cell`);
JSON and CSV always carry values whole. JSON writes NaN and infinities as the
strings ``"NaN"``, ``"Infinity"`` and ``"-Infinity"`` (as MLflow does), never
``null``, which means None. Data goes to stdout; progress bars, notes and questions go to stderr, so piping
the output of a command never mixes the two.
"""

from __future__ import annotations

import contextlib
import csv
import math
import os
import re
import sys
from collections.abc import Callable, Iterable, Iterator, Sequence
from datetime import UTC, datetime
from typing import Any

import msgspec
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.prompt import Confirm
from rich.table import Table
from rich.text import Text

__all__ = [
    "CELL_LIMIT",
    "Output",
    "cell",
    "confirmed",
    "escape",
    "format_duration",
    "format_mapping",
    "format_number",
    "format_time",
    "format_value",
    "json_safe",
    "key_value_table",
    "lines",
    "natural_key",
    "sorted_items",
    "table",
]

_PIPE_WIDTH = 240
"""Width of tables written to a pipe or file: wide enough that ids never wrap."""

_MISSING = "-"

CELL_LIMIT = 200
"""Characters of a value shown in a table cell; longer ones are cut, with their full length."""

# C0 and C1 controls, DEL, and the Unicode marks that reorder or hide text (bidi, zero-width).
_UNSAFE = re.compile("[\x00-\x1f\x7f-\x9f\u200b-\u200f\u2028-\u202e\u2066-\u2069\ufeff]")


def escape(text: str) -> str:
    """``text`` with every control character written as an escape (``\\n``, ``\\x1b``)."""
    if _UNSAFE.search(text) is None:
        return text
    return _UNSAFE.sub(lambda found: found[0].encode("unicode_escape").decode("ascii"), text)


def _shorten(text: str, limit: int = CELL_LIMIT) -> str:
    """Cut ``text`` to ``limit`` characters (escaped), saying how long it really is."""
    if len(text) <= limit:
        return escape(text)
    return f"{escape(text[:limit])}… ({len(text):,} chars)"


_DIGITS = re.compile(r"(\d+)")


def natural_key(text: str) -> tuple[tuple[int, int | str], ...]:
    """A sort key that orders the numbers inside names by value: ``p2`` before ``p10``."""
    return tuple(
        (0, int(part)) if part.isdigit() else (1, part.casefold())
        for part in _DIGITS.split(text)
        if part
    )


def json_safe(value: Any) -> Any:
    """``value`` as builtins, with NaN and infinities as ``"NaN"``, ``"Infinity"``, ``"-Infinity"``."""
    return _finite(msgspec.to_builtins(value))


def _finite(value: Any) -> Any:
    kind = type(value)
    if kind is float:
        if math.isfinite(value):
            return value
        return "NaN" if math.isnan(value) else ("Infinity" if value > 0 else "-Infinity")
    if kind is list:
        return [_finite(v) for v in value]
    if kind is dict:
        return {k: _finite(v) for k, v in value.items()}
    return value


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
        """A line for the person at the terminal, on stderr (control characters escaped)."""
        self.notes.print(Text(escape(message)))

    def json(self, value: Any) -> None:
        """Write ``value`` as one line of JSON to stdout (structs keep their field order).

        NaN and infinities become ``"NaN"``, ``"Infinity"`` and ``"-Infinity"``.
        """
        self.raw(msgspec.json.encode(json_safe(value)) + b"\n")

    def raw(self, data: bytes) -> None:
        """Write bytes to stdout as they are."""
        sys.stdout.flush()
        sys.stdout.buffer.write(data)
        sys.stdout.buffer.flush()

    def line(self, text: str) -> None:
        """Write one line of text to stdout at once (for streams: ``log``, ``follow``)."""
        sys.stdout.write(text + "\n")
        sys.stdout.flush()

    def csv(self, header: Sequence[str], rows: Iterable[Sequence[object]]) -> None:
        """Write CSV with a header row to stdout."""
        writer = csv.writer(sys.stdout, lineterminator="\n")
        writer.writerow(header)
        writer.writerows(rows)
        sys.stdout.flush()

    @contextlib.contextmanager
    def progress(self, description: str, total: int | None = None) -> Iterator[Callable[[], None]]:
        """A progress bar on stderr while the block runs, only if stderr is a terminal.

        With ``total``, the bar counts: the block calls what it is given once per item
        done. Without it (the journal functions report no progress as they go), the bar
        pulses and shows for how long the work has gone on.
        """
        bar = Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            TimeElapsedColumn() if total is None else MofNCompleteColumn(),
            console=self.notes,
            transient=True,
            disable=not self.notes.is_terminal,
        )
        with bar:
            task = bar.add_task(description, total=total)
            yield lambda: bar.advance(task)


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
    """A table cell that shows ``value`` literally (no markup, no emoji codes, no controls).

    A value longer than :data:`CELL_LIMIT` is cut with an ellipsis and its full
    length. A :class:`~rich.text.Text` is taken as already made safe.
    """
    return value if isinstance(value, Text) else Text(_shorten(str(value)))


def lines(*parts: str) -> Text:
    """A cell of several lines, each escaped and cut on its own."""
    return Text("\n".join(_shorten(part) for part in parts))


def table(
    title: str | None,
    columns: Sequence[str],
    rows: Iterable[Sequence[object]],
    *,
    ids: Sequence[str] = ("id",),
) -> Table:
    """A rich table whose cells are literal texts; columns named in ``ids`` never wrap."""
    result = Table(title=None if title is None else Text(escape(title)), title_justify="left")
    for name in columns:
        if name in ids:
            result.add_column(Text(name), no_wrap=True, min_width=26)
        else:
            result.add_column(cell(name), overflow="fold")
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
    return msgspec.json.encode(json_safe(value)).decode()


def format_number(value: Any, precision: int | None) -> str:
    """:func:`format_value`, with floats cut to ``precision`` significant digits."""
    if precision is not None and type(value) is float and math.isfinite(value):
        return f"{value:.{precision}g}"
    return format_value(value)


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
    """``(key, formatted value)`` pairs, in natural order of keys (``p2`` before ``p10``)."""
    return [(key, format_value(mapping[key])) for key in sorted(mapping, key=natural_key)]


def format_mapping(mapping: dict[str, Any]) -> Text:
    """``key=value`` lines, sorted by key, for a cell that holds a whole mapping."""
    return lines(*(f"{key}={value}" for key, value in sorted_items(mapping)))
