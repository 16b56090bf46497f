"""The command line: the parser (argparse) of every command, and which function runs each.

Each command is ``async def handler(args, out) -> exit code``, set as the
parsed arguments' ``handler``. Usage errors are one line, like every other
error (:mod:`runjournal.cli.errors`), with exit code 2. The handlers' modules
need rich, so they are imported only when the parser is built.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable, Coroutine, Sequence
from typing import TYPE_CHECKING, Any, NoReturn

from runjournal.cli.errors import PROG, print_error

if TYPE_CHECKING:
    from runjournal.cli.output import Output

__all__ = ["Handler", "build_parser"]

Handler = Callable[[argparse.Namespace, "Output"], Coroutine[Any, Any, int]]
"""A command: runs with the parsed arguments and the output streams, returns the exit code."""


class _Parser(argparse.ArgumentParser):
    """An argument parser whose usage errors are one line, like every other error."""

    def error(self, message: str) -> NoReturn:
        print_error(f"{message} (see '{self.prog} --help')")
        self.exit(2)


class _Version(argparse.Action):
    """``--version``; looks the version up only when asked (importlib.metadata is slow to load)."""

    def __call__(self, parser: argparse.ArgumentParser, *args: Any, **kwargs: Any) -> NoReturn:
        import importlib.metadata

        parser.exit(message=f"{parser.prog} {importlib.metadata.version(PROG)}\n")


def build_parser() -> argparse.ArgumentParser:
    """The parser of the whole command line; each command sets ``handler``."""
    from runjournal.cli.database import DB_ENV, default_db

    db_help = f"the database (default: ${DB_ENV} or ./experiments.db)"
    parser = _Parser(
        prog=PROG,
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
    _add_experiments_command(commands)
    _add_run_commands(commands)
    _add_journal_commands(commands)
    _add_ui_command(commands)
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


def _add_experiments_command(commands: _Commands) -> None:
    from runjournal.cli import experiments as handlers

    experiments = commands.add(
        "experiments", handlers.experiments_list, "List (the default), show or delete experiments."
    )
    actions = experiments.add_subparsers(metavar="ACTION", required=False)
    db_option = commands.db_option
    listing = actions.add_parser("list", help="every experiment (the default)", parents=[db_option])
    _add_format(listing, suppress=True)
    show = actions.add_parser("show", help="one experiment and its runs", parents=[db_option])
    show.add_argument("id", metavar="ID")
    show.set_defaults(handler=handlers.experiments_show)
    _add_format(show, suppress=True)
    delete = actions.add_parser(
        "delete", help="an experiment and all its runs, for good", parents=[db_option]
    )
    delete.add_argument("id", metavar="ID")
    delete.set_defaults(handler=handlers.experiments_delete)
    _add_yes(delete)


def _add_run_commands(commands: _Commands) -> None:
    from runjournal.cli import runs as handlers

    runs = commands.add(
        "runs", handlers.runs, "List the runs of an experiment, optionally filtered."
    )
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
        "show", handlers.show, "Show one run: status, times, params, tags, metrics, artifacts."
    )
    show.add_argument("run_id", metavar="RUN_ID")

    metrics = commands.add(
        "metrics", handlers.metrics, "Print one metric series of a run.", ("table", "json", "csv")
    )
    metrics.add_argument("run_id", metavar="RUN_ID")
    metrics.add_argument("key", metavar="KEY")

    compare = commands.add("compare", handlers.compare, "Params and final metrics side by side.")
    compare.add_argument("run_ids", metavar="RUN_ID", nargs="+")

    delete = commands.add("delete", handlers.delete_run, "Delete a run for good.", formats=())
    delete.add_argument("run_id", metavar="RUN_ID")
    _add_yes(delete)


def _add_journal_commands(commands: _Commands) -> None:
    from runjournal.cli import journal

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


def _add_ui_command(commands: _Commands) -> None:
    from runjournal.cli import ui

    ui.add_arguments(commands.add("ui", ui.ui, "Serve the read-only dashboard.", formats=()))


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
    from runjournal.cli.filters import parse_filter

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
