"""``runjournal server``: the dashboard plus MLflow's tracking API, which accepts writes.

Training code that logs through MLflow (the client, Lightning's ``MLFlowLogger``,
transformers' ``MLflowCallback``) logs into runjournal with
``MLFLOW_TRACKING_URI=http://127.0.0.1:5000``. The database is created if
missing. As for ``runjournal ui``: the first stdout line is the address
(``--port 0`` picks a free port), Ctrl-C and SIGTERM stop the server with exit
code 0 once everything accepted is written, and binding an address other than
loopback needs a token (``--token`` or ``$RUNJOURNAL_SERVER_TOKEN``), which the
MLflow client sends from ``MLFLOW_TRACKING_TOKEN``. It needs the ``ui`` extra.
"""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

from runjournal.cli.ui import add_binding_arguments, serving_token
from runjournal.tracker import Tracker

if TYPE_CHECKING:
    from runjournal.cli.output import Output

__all__ = ["DEFAULT_PORT", "TOKEN_ENV", "add_arguments", "server"]

DEFAULT_PORT = 5000
TOKEN_ENV = "RUNJOURNAL_SERVER_TOKEN"
_MISSING_EXTRA = "runjournal server needs the 'ui' extra: pip install 'runjournal[ui]'"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of ``runjournal server``."""
    add_binding_arguments(
        parser, default_port=DEFAULT_PORT, port_note=", MLflow's", token_env=TOKEN_ENV
    )


async def server(args: argparse.Namespace, out: Output) -> int:
    """Serve the dashboard and the MLflow API until Ctrl-C or SIGTERM."""
    del out
    try:
        from runjournal.server.app import create_server_app
        from runjournal.ui.server import bind, serve
    except ImportError:
        raise ValueError(_MISSING_EXTRA) from None
    token = serving_token(args, token_env=TOKEN_ENV, exposes="read and write")
    sock = bind(args.host, args.port)
    try:
        async with Tracker.open(args.db) as tracker:
            await tracker.store.head()  # a file that is not a runjournal database fails here
            app = create_server_app(
                tracker, token=token, allowed_hosts=args.allowed_hosts, bound_host=args.host
            )
            await serve(app, sock)
    finally:
        sock.close()
    return 0
