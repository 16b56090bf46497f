"""How runs end, for real: signals, uncaught exceptions and plain exits of real processes.

Each program (``tests/_workers/faces.py``) is what a user writes: ``rj.init`` and a loop
of ``rj.log``, ``async with tracker.run(...)`` under ``asyncio.run``, or
``with SyncTracker.open(...)``. Every test then reads the database back: the run's
status, its error tags, and every point that was logged (steps 0..N-1, no gap).
"""

from __future__ import annotations

import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from runjournal import RunStatus, SyncTracker
from tests.children import watched_child

WORKER = Path(__file__).parent / "_workers" / "faces.py"

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")


def status_tags_steps(db: Path, run_id: str) -> tuple[RunStatus, dict[str, str], list[int]]:
    with SyncTracker.open(db, read_only=True) as tracker:
        run = tracker.get_run(run_id)
        steps = [p.step for p in tracker.get_metrics(run_id, "loss")]
    return run.status, run.tags, steps


def signalled(db: Path, mode: str, signum: int) -> tuple[int, str, str, str]:
    """Start the loop, send ``signum`` once 100 steps are logged; code, run id, out, err."""
    with watched_child([str(WORKER), mode, str(db)], timeout=120) as child:
        assert child.stdout is not None
        run_id = child.stdout.readline().strip()
        assert child.stdout.readline().strip() == "ready", run_id
        time.sleep(0.2)
        child.send_signal(signum)
        out, err = child.communicate(timeout=60)
    return child.returncode, run_id, out, err


@pytest.mark.parametrize("mode", ["init-loop", "async-loop", "sync-loop"])
def test_ctrl_c_ends_the_run_cancelled_with_every_point(tmp_path: Path, mode: str) -> None:
    db = tmp_path / "sigint.db"
    code, run_id, out, err = signalled(db, mode, signal.SIGINT)
    assert code == -signal.SIGINT or code == 1, err  # KeyboardInterrupt's exit
    assert "KeyboardInterrupt" in err or code == -signal.SIGINT, err
    assert out.startswith("stopped at "), (out, err)
    logged = int(out.split()[-1])
    status, tags, steps = status_tags_steps(db, run_id)
    assert status is RunStatus.CANCELLED
    assert "error.type" not in tags
    assert steps == list(range(logged))


@pytest.mark.parametrize("mode", ["init-loop", "async-loop", "sync-loop"])
def test_sigterm_ends_the_run_cancelled_with_what_was_logged(tmp_path: Path, mode: str) -> None:
    db = tmp_path / "sigterm.db"
    code, run_id, _, err = signalled(db, mode, signal.SIGTERM)
    assert code == -signal.SIGTERM, err  # it still dies of SIGTERM
    status, _, steps = status_tags_steps(db, run_id)
    assert status is RunStatus.CANCELLED
    assert len(steps) >= 100
    assert steps == list(range(len(steps)))  # a prefix, no gap


def run_script(db: Path, mode: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(WORKER), mode, str(db)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_an_uncaught_exception_ends_the_init_run_failed_with_its_tags(tmp_path: Path) -> None:
    db = tmp_path / "raise.db"
    result = run_script(db, "init-raise")
    assert result.returncode == 1
    assert "ValueError: mmm" in result.stderr  # the usual traceback is still printed
    status, tags, steps = status_tags_steps(db, result.stdout.strip())
    assert status is RunStatus.FAILED
    assert tags["error.type"] == "ValueError"
    assert tags["error.message"] == "m" * 1000
    assert steps == list(range(10))


def test_a_plain_exit_ends_the_init_run_successfully(tmp_path: Path) -> None:
    db = tmp_path / "exit.db"
    result = run_script(db, "init-exit")
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    status, tags, steps = status_tags_steps(db, result.stdout.strip())
    assert status is RunStatus.SUCCESS
    assert "error.type" not in tags
    assert steps == list(range(10))


def test_an_open_portal_does_not_keep_the_interpreter_from_exiting(tmp_path: Path) -> None:
    db = tmp_path / "portal.db"
    started = time.monotonic()
    result = run_script(db, "portal-exit")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "0"
    assert result.stderr == ""
    assert time.monotonic() - started < 60  # not hung on the loop or its worker threads


def test_eight_processes_calling_init_at_once_make_one_experiment(tmp_path: Path) -> None:
    db = tmp_path / "sweep.db"
    start = tmp_path / "start"
    children = [
        subprocess.Popen(
            [sys.executable, str(WORKER), "init-sweep", str(db), str(start)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(8)
    ]
    try:
        for child in children:
            assert child.stdout is not None
            assert child.stdout.readline().strip() == "waiting"
        start.touch()
        outputs = [child.communicate(timeout=120) for child in children]
    finally:
        for child in children:
            if child.poll() is None:
                child.kill()
    for child, (_, err) in zip(children, outputs, strict=True):
        assert child.returncode == 0, err
    run_ids = {out.strip() for out, _ in outputs}
    assert len(run_ids) == 8
    with sqlite3.connect(db) as conn:
        experiments = conn.execute("SELECT id, name FROM experiments").fetchall()
        runs = conn.execute("SELECT experiment_id, status FROM runs").fetchall()
    conn.close()
    assert [name for _, name in experiments] == ["sweep"]
    assert sorted(runs) == [(experiments[0][0], "SUCCESS")] * 8
