"""`make wheel-check`: serve a page with `runjournal ui` from the installed wheel, then stop it.

Run with the wheel's Python from outside the repository: it makes a database,
starts the command on a free port, loads the home page, every static file the
page names (the wheel must carry them) and an API answer, then stops the server
with SIGTERM and expects exit code 0.
"""

from __future__ import annotations

import asyncio
import re
import signal
import subprocess
import sys
import tempfile
import urllib.request
from pathlib import Path

import runjournal


async def _make(path: Path) -> None:
    async with runjournal.Tracker.open(path) as tracker:
        run_id = await tracker.create_run(await tracker.create_experiment("wheel"))
        await tracker.log_metric(run_id, "loss", 0, 1.0)


def _get(url: str) -> bytes:
    with urllib.request.urlopen(url, timeout=10) as response:
        assert response.status == 200, (url, response.status)
        body: bytes = response.read()
        return body


def main() -> None:
    db = Path(tempfile.mkdtemp()) / "wheel.db"
    asyncio.run(_make(db))
    command = [sys.executable, "-m", "runjournal.cli", "ui", "--db", str(db), "--port", "0"]
    server = subprocess.Popen(command, stdout=subprocess.PIPE, text=True)
    try:
        assert server.stdout is not None
        url = server.stdout.readline().strip()
        assert url.startswith("http://127.0.0.1:"), url
        page = _get(url).decode()
        linked = re.findall(r'(?:src|href)="(/static/[^"]+)"', page)
        for path in linked:
            _get(url.rstrip("/") + path)
        _get(url + "favicon.ico")
        assert b'"wheel"' in _get(url + "api/experiments")
    finally:
        server.send_signal(signal.SIGTERM)
        code = server.wait(timeout=10)
    assert code == 0, f"runjournal ui exited with {code}"
    print(f"wheel page ok: {url} ({len(linked)} static files, from {runjournal.__file__})")


if __name__ == "__main__":
    main()
