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


# -- runs hide / restore / list --hidden / --all --------------------------------------------------
def test_runs_hide_takes_a_run_out_of_the_list_and_restore_brings_it_back(scratch: Demo) -> None:
    first, second, third = scratch.run_ids

    def listed(*options: str) -> list[str]:
        return [r["id"] for r in json_of("--db", scratch.db, "runs", *options)]

    hidden = json_of("--db", scratch.db, "runs", "hide", second[:20])
    assert hidden["hidden"] is True and hidden["id"] == second
    assert listed() == [first, third]
    assert listed("--hidden") == [second]
    assert listed("--all") == [first, second, third]
    assert [r["hidden"] for r in json_of("--db", scratch.db, "runs", "--all")] == [
        False,
        True,
        False,
    ]
    table = rj("--db", scratch.db, "runs", "--all", "--columns", "learning_rate").stdout
    assert "(hidden)" in table
    assert json_of("--db", scratch.db, "show", second)["run"]["hidden"] is True
    again = rj("--db", scratch.db, "runs", "hide", second)
    assert again.returncode == 0 and "already hidden" in again.stderr
    restored = rj("--db", scratch.db, "runs", "restore", second[:20])
    assert restored.returncode == 0 and "restored" in restored.stderr
    assert listed() == [first, second, third]


def test_runs_list_refuses_hidden_and_all_together(scratch: Demo) -> None:
    assert_error(rj("--db", scratch.db, "runs", "--hidden", "--all"), "not allowed", code=2)
    assert_error(rj("--db", scratch.db, "runs", "hide", "NOPE"), "run not found")
