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

__all__ = [
    "DEFAULT_PORT",
    "TOKEN_ENV",
    "add_arguments",
    "add_binding_arguments",
    "serving_token",
    "ui",
]

DEFAULT_PORT = 8765
TOKEN_ENV = "RUNJOURNAL_UI_TOKEN"
_MISSING_EXTRA = "runjournal ui needs the 'ui' extra: pip install 'runjournal[ui]'"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of ``runjournal ui``."""
    add_binding_arguments(parser, default_port=DEFAULT_PORT, port_note="", token_env=TOKEN_ENV)
    parser.add_argument("--open", action="store_true", help="open the dashboard in a browser")


def add_binding_arguments(
    parser: argparse.ArgumentParser, *, default_port: int, port_note: str, token_env: str
) -> None:
    """``--host``, ``--port``, ``--token`` and ``--allowed-hosts``: shared by ``ui`` and ``server``."""
    parser.add_argument(
        "--host", default="127.0.0.1", help="the address to bind (default: %(default)s)"
    )
    parser.add_argument(
        "--port",
        type=int,
        default=default_port,
        help=f"the port (default: %(default)s{port_note}; 0: any free one)",
    )
    parser.add_argument(
        "--token",
        default=None,
        help=f"a secret every request must carry (default: ${token_env}); "
        "required to bind an address other than loopback",
    )
    parser.add_argument(
        "--allowed-hosts",
        metavar="HOST",
        action="append",
        default=None,
        help="with a token: the Host names served (repeat; default: any)",
    )


def serving_token(args: argparse.Namespace, *, token_env: str, exposes: str) -> str | None:
    """The token from ``--token`` or ``$token_env``; refuse a non-loopback bind without one.

    ``exposes`` says what another machine could do (``"read"``, ``"read and write"``).
    """
    from runjournal.ui.security import is_loopback

    token: str | None = args.token or os.environ.get(token_env) or None
    if not token and not is_loopback(args.host):
        raise ValueError(
            f"binding {args.host} would let other machines {exposes} every experiment: "
            f"give --token (or ${token_env}), or bind 127.0.0.1"
        )
    return token


async def ui(args: argparse.Namespace, out: Output) -> int:
    """Serve the dashboard until Ctrl-C or SIGTERM."""
    del out
    try:
        from runjournal.ui import create_app
        from runjournal.ui.server import bind, serve
    except ImportError:
        raise ValueError(_MISSING_EXTRA) from None
    token = serving_token(args, token_env=TOKEN_ENV, exposes="read")
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
