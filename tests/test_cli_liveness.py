"""The command line tells a run that died from one that runs: ``RUNNING (no activity for N min)``."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from runjournal import RunStatus, Tracker
from tests.test_cli import json_of, ok, rj


async def _database(path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """An experiment with a run silent for 12.5 minutes, a live one, and one that ended long ago."""
    now = time.time()
    ids: dict[str, str] = {}
    async with Tracker.open(path) as tracker:
        monkeypatch.setattr("runjournal.tracker._time", lambda: now - 3600)
        ids["experiment"] = experiment = await tracker.create_experiment("liveness")
        for name in ("silent", "live", "ended"):
            ids[name] = await tracker.create_run(experiment, name=name)
            await tracker.start_run(ids[name])
        await tracker.complete_run(ids["ended"], RunStatus.SUCCESS)
        monkeypatch.setattr("runjournal.tracker._time", lambda: now - 750)
        await tracker.log_metric(ids["silent"], "loss", 0, 1.0)
        monkeypatch.setattr("runjournal.tracker._time", lambda: now - 5)
        await tracker.heartbeat(ids["live"])
    return ids


async def test_runs_and_show_say_how_long_a_running_run_has_been_silent(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    db = tmp_path / "experiments.db"
    ids = await _database(db, monkeypatch)
    table = ok("runs", ids["experiment"], "--db", db)
    lines = {name: line for line in table.splitlines() for name in ids if f" {name} " in line}
    assert "RUNNING (no activity for 12 min)" in lines["silent"]
    assert "no activity" not in lines["live"] and "RUNNING" in lines["live"]
    assert "no activity" not in lines["ended"] and "SUCCESS" in lines["ended"]
    assert "RUNNING (no activity for 12 min)" in ok("show", ids["silent"], "--db", db)
    assert "no activity" not in ok("show", ids["live"], "--db", db)
    shown = json_of("show", ids["silent"], "--db", db)
    assert shown["run"]["status"] == "RUNNING"  # JSON keeps the status, and the time it needs
    assert time.time() - shown["run"]["last_activity"] == pytest.approx(750, abs=60)


@pytest.mark.parametrize(
    ("status", "expected"),
    [
        ("stale", ["silent"]),
        ("STALE", ["silent"]),
        ("running", ["silent", "live"]),
        ("SUCCESS", ["ended"]),
        ("FAILED", []),
    ],
)
async def test_runs_status_filters_and_stale_finds_the_runs_that_died(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, status: str, expected: list[str]
) -> None:
    db = tmp_path / "experiments.db"
    ids = await _database(db, monkeypatch)
    found = json_of("runs", ids["experiment"], "--status", status, "--db", db)
    assert [r["name"] for r in found] == expected


async def test_runs_status_refuses_an_unknown_status(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    db = tmp_path / "experiments.db"
    ids = await _database(db, monkeypatch)
    done = rj("runs", ids["experiment"], "--status", "dead", "--db", db)
    assert done.returncode == 2
    assert "unknown status 'dead'" in done.stderr
    assert "STALE" in done.stderr
    assert "Traceback" not in done.stderr
