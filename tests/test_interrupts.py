"""Ctrl-C in an async training loop: a real SIGINT to a real process under ``asyncio.run``.

``asyncio.run`` turns the first Ctrl-C into a cancellation of the main task, which
only an ``await`` that suspends can deliver; ``await log_metric`` is such a point
every 50 ms. The run then ends CANCELLED from the ``except`` block, even after a
second Ctrl-C, whose cancellation is still pending when ``complete_run`` runs.
"""

from __future__ import annotations

import asyncio
import signal
import sys
import time
from pathlib import Path

import pytest

from runjournal import Tracker
from tests.children import watched_child

WORKER = Path(__file__).parent / "_workers" / "async_loop.py"

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")


def run_status_and_steps(path: Path, run_id: str) -> tuple[str, list[int]]:
    async def read() -> tuple[str, list[int]]:
        async with Tracker.open(path) as tracker:
            status = await tracker.get_run_status(run_id)
            points = await tracker.get_metrics(run_id, "loss")
        return str(status), [p.step for p in points]

    return asyncio.run(read())


def interrupt(path: Path, mode: str, signals: int) -> tuple[int, str, str, str]:
    """Start the loop, send ``signals`` SIGINTs once it is ready; its code, run id, out, err."""
    with watched_child([str(WORKER), str(path), mode], timeout=90) as child:
        assert child.stdout is not None
        run_id = child.stdout.readline().strip()
        assert child.stdout.readline().strip() == "ready"
        for _ in range(signals):
            child.send_signal(signal.SIGINT)
            time.sleep(0.5)
        out, err = child.communicate(timeout=60)
    return child.returncode, run_id, out, err


def test_first_ctrl_c_stops_the_loop_and_the_run_ends_cancelled(tmp_path: Path) -> None:
    path = tmp_path / "ctrl-c.db"
    code, run_id, out, err = interrupt(path, "loop", 1)
    assert code == -signal.SIGINT, err  # asyncio.run re-raises it as KeyboardInterrupt
    assert out.startswith("stopped at "), (out, err)
    stopped_at = int(out.split()[-1])
    assert stopped_at < 20_000  # the loop stopped, it did not run to its end
    status, steps = run_status_and_steps(path, run_id)
    assert status == "CANCELLED"
    assert steps == list(range(stopped_at))  # every point logged before the interrupt


def test_second_ctrl_c_still_ends_the_run_cancelled(tmp_path: Path) -> None:
    path = tmp_path / "ctrl-c-twice.db"
    code, run_id, out, err = interrupt(path, "blocking", 2)
    assert code == -signal.SIGINT, err
    assert out.strip() == "stopped at 100", (out, err)
    status, steps = run_status_and_steps(path, run_id)
    assert status == "CANCELLED"
    assert steps == list(range(100))
