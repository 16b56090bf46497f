"""The ``runjournal`` command: look at, delete, export, import and replay what was tracked.

:func:`run` is the one place where a command's errors become a single
``runjournal: error: ...`` line on stderr and an exit code (see
:mod:`runjournal.cli.errors`). The modules, one concern each:

- :mod:`~runjournal.cli.parser`: the command line (argparse), which command runs what;
- :mod:`~runjournal.cli.experiments`: ``experiments`` list, show and delete;
- :mod:`~runjournal.cli.listing`: ``runs`` (one row per run, filters, sorting, columns);
- :mod:`~runjournal.cli.runs`: ``show``, ``metrics``, ``compare``, ``delete`` and ``runs end``;
- :mod:`~runjournal.cli.artifacts`: ``artifacts`` list and get;
- :mod:`~runjournal.cli.journal`: ``export``, ``import``, ``rebuild``, ``verify`` and
  ``replay``, over :mod:`runjournal.journal`;
- :mod:`~runjournal.cli.log`: ``log`` and ``follow``, the journal's entries line by line;
- :mod:`~runjournal.cli.resolve`: experiment names and run-id prefixes;
- :mod:`~runjournal.cli.database`: opening the ``--db`` database;
- :mod:`~runjournal.filter_syntax` (shared with the dashboard): parsing ``--filter`` expressions;
- :mod:`~runjournal.cli.output`: tables, JSON, CSV, progress bars and questions.

The commands need rich (the ``cli`` extra), so their modules are imported only
once rich is known to be there.
"""

from __future__ import annotations

import asyncio
import os
import sys
from collections.abc import Sequence
from typing import NoReturn

from runjournal.cli.errors import describe_error, print_error
from runjournal.cli.parser import Handler, build_parser, with_default_action
from runjournal.errors import RunJournalError

__all__ = ["build_parser", "main", "run"]

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
        print_error(_MISSING_RICH)
        return 2
    arguments = sys.argv[1:] if argv is None else list(argv)
    parser = build_parser()
    args = parser.parse_args(with_default_action(arguments))
    handler: Handler | None = args.handler
    if handler is None:  # a bare `runjournal`: the help, as asked for, and success
        parser.print_help()
        return 0
    from runjournal.cli.output import Output

    try:
        return asyncio.run(handler(args, Output()))
    except KeyboardInterrupt:
        code: int = getattr(args, "interrupt_code", 130)
        if code:
            print_error("interrupted")
        return code
    except BrokenPipeError:
        # The reader of our output went away (`| head`): stop quietly, as other tools do.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 1
    except (RunJournalError, OSError, ValueError) as exc:
        print_error(describe_error(exc))
        return 1


def _rich_installed() -> bool:
    try:
        import rich.console  # noqa: F401
    except ImportError:
        return False
    return True
