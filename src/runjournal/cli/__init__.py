"""The ``runjournal`` command: look at, delete, export, import and replay what was tracked.

:func:`run` is the one place where a command's errors become a single
``runjournal: error: ...`` line on stderr and an exit code (see
:mod:`runjournal.cli.errors`). The modules, one concern each:

- :mod:`~runjournal.cli.parser`: the command line (argparse), which command runs what;
- :mod:`~runjournal.cli.experiments`: ``experiments`` list, show and delete;
- :mod:`~runjournal.cli.runs`: ``runs``, ``show``, ``metrics``, ``compare`` and ``delete``;
- :mod:`~runjournal.cli.journal`: ``export``, ``import``, ``rebuild``, ``verify`` and
  ``replay``, over :mod:`runjournal.journal`;
- :mod:`~runjournal.cli.database`: opening the ``--db`` database;
- :mod:`~runjournal.cli.filters`: parsing ``--filter`` expressions;
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
from runjournal.cli.parser import Handler, build_parser
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
    args = build_parser().parse_args(argv)
    from runjournal.cli.output import Output

    handler: Handler = args.handler
    try:
        return asyncio.run(handler(args, Output()))
    except KeyboardInterrupt:
        print_error("interrupted")
        return 130
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
