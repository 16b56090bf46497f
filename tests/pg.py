"""A throwaway PostgreSQL server for the tests, started once per test session on first use.

``initdb`` and ``pg_ctl`` (PostgreSQL's own tools) make a cluster in a temporary
folder that listens on 127.0.0.1 on a free port, with ``fsync=off`` (for the tests
only: a crash of the machine may lose the cluster, which is thrown away anyway).
initdb refuses to run as root, so as root the cluster belongs to ``nobody``.

``RUNJOURNAL_TEST_PG_DSN`` (a ``postgresql://`` URL) names a server to use instead.
Where neither can be had, the PostgreSQL tests skip with one reason; with
``RUNJOURNAL_REQUIRE_PG=1`` (CI) they fail instead.

Each store gets a schema of its own (``?schema=t_...`` in its URL), so the tests
share the one server without seeing each other's data.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import shutil
import socket
import subprocess
import tempfile
import threading
import uuid
from pathlib import Path

import pytest

__all__ = ["Server", "fresh_dsn", "require_server"]

_SETTINGS = {
    "listen_addresses": "'127.0.0.1'",
    "fsync": "off",
    "synchronous_commit": "off",
    "full_page_writes": "off",
    "max_connections": "300",
    "shared_buffers": "128MB",
    "log_min_messages": "fatal",
}


def _find_tool(name: str) -> str | None:
    found = shutil.which(name)
    if found:
        return found
    for root in sorted(Path("/usr/lib/postgresql").glob("*/bin"), reverse=True):
        if (root / name).exists():
            return str(root / name)
    return None


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class Server:
    """A PostgreSQL cluster of our own, in a temporary folder."""

    def __init__(self) -> None:
        initdb, self._pg_ctl = _find_tool("initdb"), _find_tool("pg_ctl")
        if initdb is None or self._pg_ctl is None:
            raise RuntimeError("no initdb/pg_ctl on this machine (install Debian's postgresql)")
        self._as: list[str] = []
        self.folder = Path(tempfile.mkdtemp(prefix="runjournal-pg-"))
        self.folder.chmod(0o755)
        if os.geteuid() == 0:
            self._as = ["runuser", "-u", "nobody", "--"]
            shutil.chown(self.folder, "nobody")
        self.data = self.folder / "data"
        self.port = _free_port()
        self._run(
            initdb, "-D", str(self.data), "-U", "runjournal", "--auth=trust",
            "--no-sync", "-E", "UTF8", "--locale=C",
        )  # fmt: skip
        with open(self.data / "postgresql.conf", "a") as conf:
            settings = {**_SETTINGS, "port": str(self.port)}
            settings["unix_socket_directories"] = f"'{self.folder}'"
            conf.writelines(f"{key} = {value}\n" for key, value in settings.items())
        self.start()
        self.dsn = f"postgresql://runjournal@127.0.0.1:{self.port}/postgres"

    def _run(self, *args: str) -> None:
        subprocess.run(
            [*self._as, *args], check=True, capture_output=True, cwd=self.folder, timeout=120
        )

    def _ctl(self, *args: str) -> None:
        assert self._pg_ctl is not None
        log = str(self.folder / "server.log")
        self._run(self._pg_ctl, "-D", str(self.data), "-l", log, "-w", "-t", "60", *args)

    def start(self) -> None:
        self._ctl("start")

    def stop(self, mode: str = "fast") -> None:
        self._ctl("stop", "-m", mode)

    def restart(self) -> None:
        """``pg_ctl restart -m fast``: every connection is cut, then the server is back."""
        self._ctl("restart", "-m", "fast")

    def destroy(self) -> None:
        with contextlib.suppress(subprocess.SubprocessError):
            self.stop("immediate")
        shutil.rmtree(self.folder, ignore_errors=True)


_lock = threading.Lock()
_server: Server | None = None
_base: str | None = None
_failure: str | None = None


def _required() -> bool:
    return os.environ.get("RUNJOURNAL_REQUIRE_PG") == "1"


def require_server() -> str:
    """The base DSN of the test server, started on first use; skips (or fails) without one."""
    global _server, _base, _failure
    with _lock:
        if _base is None and _failure is None:
            given = os.environ.get("RUNJOURNAL_TEST_PG_DSN")
            if given:
                _base = given
            else:
                try:
                    _server = Server()
                    atexit.register(_server.destroy)
                    _base = _server.dsn
                except (RuntimeError, OSError, subprocess.SubprocessError) as exc:
                    detail = getattr(exc, "stderr", b"") or b""
                    _failure = f"{exc} {detail.decode(errors='replace').strip()}".strip()
    if _base is None:
        message = f"no PostgreSQL for the tests: {_failure}"
        if _required():
            pytest.fail(message + " (RUNJOURNAL_REQUIRE_PG=1)", pytrace=False)
        pytest.skip(message)
    return _base


def own_server() -> Server:
    """The server these tests started (for the fault tests); skips on a server given by DSN."""
    require_server()
    if _server is None:
        pytest.skip(
            "the fault tests restart the server; RUNJOURNAL_TEST_PG_DSN names one we do not own"
        )
    return _server


def fresh_dsn() -> str:
    """A URL to the test server with a schema of its own (``?schema=t_<random>``)."""
    base = require_server()
    joiner = "&" if "?" in base else "?"
    return f"{base}{joiner}schema=t_{uuid.uuid4().hex[:16]}"
