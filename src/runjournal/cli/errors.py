"""How the command reports a failure: one ``runjournal: error: ...`` line on stderr.

The exit codes are:

- 0: done;
- 1: the command failed (an unknown id, a missing or corrupt file, a file that
  is not a runjournal database, ``verify`` found differences, ...);
- 2: the command line itself is wrong (an unknown option, a bad ``--filter``),
  or the optional dependency rich is not installed;
- 130: interrupted with Ctrl-C.
"""

from __future__ import annotations

import re
import sys

__all__ = ["PROG", "describe_error", "print_error"]

PROG = "runjournal"
"""The command's name, as its messages and ``--help`` spell it."""


def describe_error(exc: BaseException) -> str:
    """The one line that tells the user what went wrong."""
    if isinstance(exc, OSError) and exc.errno is not None and exc.strerror:
        where = f": {exc.filename}" if exc.filename is not None else ""
        return f"{exc.strerror}{where}"
    return str(exc) or type(exc).__name__


_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")


def print_error(message: str) -> None:
    """Write ``message`` to stderr as one ``runjournal: error:`` line, control characters escaped."""
    one_line = " ".join(message.splitlines())
    safe = _CONTROL.sub(lambda found: found[0].encode("unicode_escape").decode("ascii"), one_line)
    print(f"{PROG}: error: {safe}", file=sys.stderr)
