"""The command line for the lifecycle additions of issue 13: ``runs resume``, ``runs hide``,
``runs restore`` and ``runs list --hidden / --all``. Each runs ``runjournal`` as a real
subprocess against the demo database of tests/test_cli.py."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.test_cli import Demo, assert_error, json_of, make_demo, rj


@pytest.fixture
def scratch(tmp_path: Path) -> Demo:
    """The demo database of tests/test_cli.py, this test's own (its runs 0 and 1 ended)."""
    return make_demo(tmp_path / "scratch.db")


# -- runs resume ------------------------------------------------------------------------------------
def test_runs_resume_makes_an_ended_run_running_again(scratch: Demo) -> None:
    ended = scratch.run_ids[0]
    before = json_of("--db", scratch.db, "show", ended)["run"]
    assert before["status"] == "SUCCESS" and before["end_time"] is not None
    resumed = json_of("--db", scratch.db, "runs", "resume", ended[:20])
    assert resumed["status"] == "RUNNING"
    assert resumed["end_time"] is None
    assert resumed["start_time"] == before["start_time"]
    ended_again = rj("--db", scratch.db, "runs", "end", ended, "--status", "SUCCESS")
    assert "RUNNING -> SUCCESS" in ended_again.stderr
    assert "SUCCESS -> RUNNING" in rj("--db", scratch.db, "runs", "resume", ended).stderr


def test_runs_resume_refuses_a_running_run_in_one_line(scratch: Demo) -> None:
    running = scratch.run_ids[2]
    assert json_of("--db", scratch.db, "show", running)["run"]["status"] == "RUNNING"
    assert_error(rj("--db", scratch.db, "runs", "resume", running), "only a run that ended")
    assert_error(rj("--db", scratch.db, "runs", "resume", "NOPE"), "run not found")
