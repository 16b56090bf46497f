"""The ``runjournal`` command: look at, delete, export, import and replay what was tracked.

This module parses the arguments (argparse) and is the one place where errors
become a single ``runjournal: error: ...`` line on stderr and an exit code:

- 0: done;
- 1: the command failed (an unknown id, a missing or corrupt file, a file that
  is not a runjournal database, ``verify`` found differences, ...);
- 2: the command line itself is wrong (an unknown option, a bad ``--filter``),
  or the optional dependency rich is not installed;
- 130: interrupted with Ctrl-C.

The commands live in ``runjournal._cli_query`` and ``runjournal._cli_journal``.
They need rich (the ``cli`` extra), so they are imported only once rich is known
to be there.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from collections.abc import Callable, Coroutine, Sequence
from typing import TYPE_CHECKING, Any, NoReturn

from runjournal.errors import RunJournalError

if TYPE_CHECKING:
    from runjournal._cli_output import Output

__all__ = ["build_parser", "main", "run"]

Handler = Callable[[argparse.Namespace, "Output"], Coroutine[Any, Any, int]]

_PROG = "runjournal"
_MISSING_RICH = (
    "the runjournal command needs the 'cli' extra (rich is not installed): "
    "pip install 'runjournal[cli]'"
)


def main(argv: Sequence[str] | None = None) -> NoReturn:
    """Entry point of the ``runjournal`` console script."""
    sys.exit(run(argv))


def run(argv: Sequence[str] | None = None) -> int:
    """Run one command line and return its exit code; errors never escape as tracebacks."""
    if not _rich_installed():
        _print_error(_MISSING_RICH)
        return 2
    args = build_parser().parse_args(argv)
    from runjournal._cli_output import Output

    handler: Handler = args.handler
    try:
        return asyncio.run(handler(args, Output()))
    except KeyboardInterrupt:
        _print_error("interrupted")
        return 130
    except BrokenPipeError:
        # The reader of our output went away (`| head`): stop quietly, as other tools do.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 1
    except (RunJournalError, OSError, ValueError) as exc:
        _print_error(_describe_error(exc))
        return 1


def _describe_error(exc: BaseException) -> str:
    """The one line that tells the user what went wrong."""
    if isinstance(exc, OSError) and exc.errno is not None and exc.strerror:
        where = f": {exc.filename}" if exc.filename is not None else ""
        return f"{exc.strerror}{where}"
    return str(exc) or type(exc).__name__


def _print_error(message: str) -> None:
    one_line = " ".join(message.splitlines())
    print(f"{_PROG}: error: {one_line}", file=sys.stderr)


def _rich_installed() -> bool:
    try:
        import rich.console  # noqa: F401
    except ImportError:
        return False
    return True


# -- the parser -----------------------------------------------------------------------------------
class _Parser(argparse.ArgumentParser):
    """An argument parser whose usage errors are one line, like every other error."""

    def error(self, message: str) -> NoReturn:
        _print_error(f"{message} (see '{self.prog} --help')")
        self.exit(2)


class _Version(argparse.Action):
    """``--version``; looks the version up only when asked (importlib.metadata is slow to load)."""

    def __call__(self, parser: argparse.ArgumentParser, *args: Any, **kwargs: Any) -> NoReturn:
        import importlib.metadata

        parser.exit(message=f"{parser.prog} {importlib.metadata.version(_PROG)}\n")


def build_parser() -> argparse.ArgumentParser:
    """The parser of the whole command line; each command sets ``handler``."""
    from runjournal._cli_db import DB_ENV, default_db

    db_help = f"the database (default: ${DB_ENV} or ./experiments.db)"
    parser = _Parser(
        prog=_PROG,
        description="Look at, delete, export, import and replay runjournal experiment data.",
        epilog="Run 'runjournal COMMAND --help' for the options of a command.",
    )
    parser.add_argument("--db", metavar="PATH", default=default_db(), help=db_help)
    parser.add_argument(
        "--version", action=_Version, nargs=0, help="print the version of runjournal and exit"
    )
    # --db also goes after the command. SUPPRESS keeps the value given before the command
    # (or the default) unless the command's own --db is given.
    db_option = _Parser(add_help=False)
    db_option.add_argument("--db", metavar="PATH", default=argparse.SUPPRESS, help=db_help)
    commands = _Commands(parser, db_option)
    _add_query_commands(commands)
    _add_journal_commands(commands)
    return parser


class _Commands:
    """Adds the subcommands, each with ``--db`` and, where it prints data, ``--format``."""

    def __init__(self, parser: argparse.ArgumentParser, db_option: argparse.ArgumentParser):
        self._subparsers = parser.add_subparsers(metavar="COMMAND", required=True)
        self.db_option = db_option

    def add(
        self, name: str, handler: Handler, help: str, formats: Sequence[str] = ("table", "json")
    ) -> argparse.ArgumentParser:
        """A subcommand that runs ``handler``; ``formats=()`` for one without ``--format``."""
        sub: argparse.ArgumentParser = self._subparsers.add_parser(
            name, help=help, description=help, parents=[self.db_option]
        )
        sub.set_defaults(handler=handler)
        if formats:
            _add_format(sub, formats)
        return sub


def _add_query_commands(commands: _Commands) -> None:
    from runjournal import _cli_query as query

    experiments = commands.add(
        "experiments", query.experiments_list, "List (the default), show or delete experiments."
    )
    _add_experiment_actions(experiments, commands.db_option)

    runs = commands.add("runs", query.runs, "List the runs of an experiment, optionally filtered.")
    runs.add_argument("experiment_id", metavar="EXPERIMENT_ID")
    runs.add_argument(
        "--filter",
        metavar="EXPR",
        action="append",
        default=[],
        type=_filter_argument,
        help="KEY OP VALUE on params, OP one of = != < <= > >= ~ (contains) ^= (starts with); "
        "VALUE is JSON if it parses, else a string; repeat to AND several",
    )

    show = commands.add(
        "show", query.show, "Show one run: status, times, params, tags, metrics, artifacts."
    )
    show.add_argument("run_id", metavar="RUN_ID")

    metrics = commands.add(
        "metrics", query.metrics, "Print one metric series of a run.", ("table", "json", "csv")
    )
    metrics.add_argument("run_id", metavar="RUN_ID")
    metrics.add_argument("key", metavar="KEY")

    compare = commands.add("compare", query.compare, "Params and final metrics side by side.")
    compare.add_argument("run_ids", metavar="RUN_ID", nargs="+")

    delete = commands.add("delete", query.delete_run, "Delete a run for good.", formats=())
    delete.add_argument("run_id", metavar="RUN_ID")
    _add_yes(delete)


def _add_experiment_actions(
    experiments: argparse.ArgumentParser, db_option: argparse.ArgumentParser
) -> None:
    from runjournal import _cli_query as query

    actions = experiments.add_subparsers(metavar="ACTION", required=False)
    listing = actions.add_parser("list", help="every experiment (the default)", parents=[db_option])
    _add_format(listing, suppress=True)
    show = actions.add_parser("show", help="one experiment and its runs", parents=[db_option])
    show.add_argument("id", metavar="ID")
    show.set_defaults(handler=query.experiments_show)
    _add_format(show, suppress=True)
    delete = actions.add_parser(
        "delete", help="an experiment and all its runs, for good", parents=[db_option]
    )
    delete.add_argument("id", metavar="ID")
    delete.set_defaults(handler=query.experiments_delete)
    _add_yes(delete)


def _add_journal_commands(commands: _Commands) -> None:
    from runjournal import _cli_journal as journal

    export = commands.add(
        "export", journal.export, "Write the journal (or part of it) to an event-log file."
    )
    export.add_argument("dest", metavar="DEST")
    export.add_argument("--experiment", metavar="ID", help="only this experiment and its runs")
    export.add_argument("--run", metavar="ID", help="only this run")
    export.add_argument(
        "--after", metavar="POSITION", type=_position, help="only entries after this position"
    )

    load = commands.add(
        "import",
        journal.import_,
        "Append event-log files or databases to --db (created if missing); idempotent.",
    )
    load.add_argument("sources", metavar="SOURCE", nargs="+")

    commands.add("rebuild", journal.rebuild, "Drop the projections and fold the journal again.")
    commands.add(
        "verify", journal.verify, "Check that the projections match a fresh fold of the journal."
    )

    replay = commands.add(
        "replay", journal.replay, "Write the state at a position or a time into a new database."
    )
    replay.add_argument(
        "--until",
        metavar="POSITION|TIME",
        required=True,
        type=journal.parse_until,
        help="a journal position, or an ISO-8601 time (local time unless it has an offset)",
    )
    replay.add_argument("--into", metavar="NEW.db", required=True, help="a database to create")


def _add_format(
    parser: argparse.ArgumentParser,
    choices: Sequence[str] = ("table", "json"),
    *,
    suppress: bool = False,
) -> None:
    parser.add_argument(
        "--format",
        choices=choices,
        default=argparse.SUPPRESS if suppress else "table",
        help="output format (default: table)",
    )


def _add_yes(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--yes", "-y", action="store_true", help="do not ask for confirmation on a terminal"
    )


def _filter_argument(text: str) -> Any:
    from runjournal._cli_filters import parse_filter

    try:
        return parse_filter(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _position(text: str) -> int:
    try:
        position = int(text)
    except ValueError:
        position = -1
    if position < 0:
        raise argparse.ArgumentTypeError(f"a journal position is an integer >= 0, not {text!r}")
    return position


if __name__ == "__main__":
    main()
