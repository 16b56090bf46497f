"""``runjournal ui``: serve the read-only dashboard of a database on this machine.

The first line on stdout is the address (flushed at once, so a script or a test
can read it); ``--port 0`` picks a free port. Ctrl-C and SIGTERM stop the server
with exit code 0. A port in use, a missing database or a file that is not a
runjournal database is a one-line error with exit code 1, and so is a bind to
an address other than loopback without a token (``--token`` or
``$RUNJOURNAL_UI_TOKEN``). It needs the ``ui`` extra (litestar, uvicorn).
"""

from __future__ import annotations

import argparse
import os
import threading
import webbrowser
from collections.abc import Callable
from typing import TYPE_CHECKING

from runjournal.cli.database import require_database
from runjournal.tracker import Tracker

if TYPE_CHECKING:
    from runjournal.cli.output import Output

__all__ = ["DEFAULT_PORT", "TOKEN_ENV", "add_arguments", "ui"]

DEFAULT_PORT = 8765
TOKEN_ENV = "RUNJOURNAL_UI_TOKEN"
_MISSING_EXTRA = "runjournal ui needs the 'ui' extra: pip install 'runjournal[ui]'"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of ``runjournal ui``."""
    parser.add_argument(
        "--host", default="127.0.0.1", help="the address to bind (default: %(default)s)"
    )
    parser.add_argument(
        "--port",
        type=int,
        default=DEFAULT_PORT,
        help="the port (default: %(default)s; 0: any free one)",
    )
    parser.add_argument("--open", action="store_true", help="open the dashboard in a browser")
    parser.add_argument(
        "--token",
        default=None,
        help=f"a secret every request must carry (default: ${TOKEN_ENV}); "
        "required to bind an address other than loopback",
    )
    parser.add_argument(
        "--allowed-hosts",
        metavar="HOST",
        action="append",
        default=None,
        help="with a token: the Host names served (repeat; default: any)",
    )


async def ui(args: argparse.Namespace, out: Output) -> int:
    """Serve the dashboard until Ctrl-C or SIGTERM."""
    del out
    try:
        from runjournal.ui import create_app
        from runjournal.ui.security import is_loopback
        from runjournal.ui.server import bind, serve
    except ImportError:
        raise ValueError(_MISSING_EXTRA) from None
    token = args.token or os.environ.get(TOKEN_ENV) or None
    if not token and not is_loopback(args.host):
        raise ValueError(
            f"binding {args.host} would let other machines read every experiment: "
            f"give --token (or ${TOKEN_ENV}), or bind 127.0.0.1"
        )
    require_database(args.db)
    # Read-only: it never writes, never creates the file, never switches the journal mode.
    async with Tracker.open(args.db, read_only=True) as tracker:
        await tracker.store.head()  # a file that is not a runjournal database fails here
        app = create_app(
            tracker, token=token, allowed_hosts=args.allowed_hosts, bound_host=args.host
        )
        sock = bind(args.host, args.port)
        try:
            await serve(app, sock, on_ready=_opener(args.open))
        finally:
            sock.close()
    return 0


def _opener(wanted: bool) -> Callable[[str], None] | None:
    if not wanted:
        return None

    def open_browser(url: str) -> None:
        threading.Thread(target=webbrowser.open, args=(url,), daemon=True).start()

    return open_browser
