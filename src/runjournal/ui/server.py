"""Serving the dashboard with uvicorn: bind, print the address, stop cleanly on a signal.

:func:`bind` opens the listening socket first, so that a port in use is an
``OSError`` before anything is printed, and ``port=0`` picks a free port.
:func:`serve` prints the address as the first line of stdout (flushed), then
serves until SIGINT or SIGTERM. uvicorn's own signal handling re-raises the
signal after shutdown and waits for open streams; here the server installs its
own handlers instead, ends every event stream, and returns normally (the
command then exits 0), within :data:`SHUTDOWN_GRACE` seconds.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import socket
import sys
from collections.abc import Callable, Iterator
from typing import TextIO

import uvicorn

from runjournal.ui.app import UiApp

__all__ = ["SHUTDOWN_GRACE", "address", "bind", "serve"]

SHUTDOWN_GRACE = 3
"""Seconds that open connections get to finish once a stop is asked for."""


def bind(host: str, port: int) -> socket.socket:
    """A listening TCP socket on ``host:port`` (``port=0``: a free one); ``OSError`` if taken."""
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    family, kind, proto, _, where = infos[0]
    sock = socket.socket(family, kind, proto)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(where)
        sock.listen(128)
        sock.setblocking(False)
    except BaseException:
        sock.close()
        raise
    return sock


def address(sock: socket.socket) -> str:
    """``http://HOST:PORT/`` of a bound socket (an IPv6 host in brackets)."""
    host, port = sock.getsockname()[:2]
    shown = f"[{host}]" if ":" in host else host
    return f"http://{shown}:{port}/"


class _Server(uvicorn.Server):
    """uvicorn without its signal handling: :func:`serve` installs its own."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


async def serve(
    app: UiApp,
    sock: socket.socket,
    *,
    out: TextIO | None = None,
    on_ready: Callable[[str], None] | None = None,
) -> None:
    """Serve ``app`` on ``sock`` until SIGINT or SIGTERM; prints the address first.

    ``on_ready(url)`` runs once the address is printed (``--open`` opens a browser there).
    """
    config = uvicorn.Config(
        app,
        log_level="warning",
        lifespan="off",
        timeout_graceful_shutdown=SHUTDOWN_GRACE,
        access_log=False,
        server_header=False,
    )
    server = _Server(config)
    loop = asyncio.get_running_loop()

    def stop() -> None:
        app.streams.close()
        server.should_exit = True

    signals = (signal.SIGINT, signal.SIGTERM)
    for signum in signals:
        loop.add_signal_handler(signum, stop)
    try:
        url = address(sock)
        stream = out if out is not None else sys.stdout
        print(url, file=stream, flush=True)
        if on_ready is not None:
            on_ready(url)
        await server.serve(sockets=[sock])
    finally:
        for signum in signals:
            loop.remove_signal_handler(signum)
        app.streams.close()
