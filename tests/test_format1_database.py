"""A database written by runjournal's storage format 1 opens with this code and answers as it did.

``tests/data/format1.db`` and ``format1.expected.json`` were written together by
``tests/data/make_v1_database.py`` with the code that wrote format 1; they are never
regenerated. Whatever the format of the day, opening a copy of that database (and migrating
it, if the code does) must lose nothing and change no answer.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import msgspec

from runjournal import Tracker
from runjournal.journal import verify
from tests.conftest import assert_identical
from tests.data.make_v1_database import collect_answers

DATA = Path(__file__).resolve().parent / "data"

ADDED_RUN_FIELDS = frozenset({"last_activity", "hidden"})
"""Fields of ``Run`` added after format 1: the recorded answers cannot hold them."""


def _as_format1(answer: Any) -> Any:
    """``answer`` without the run fields that format 1 did not have (tested on their own below)."""
    if isinstance(answer, list):
        return [_as_format1(item) for item in answer]
    if isinstance(answer, dict):
        is_run = "experiment_id" in answer and "status" in answer
        return {
            key: _as_format1(value)
            for key, value in answer.items()
            if not (is_run and key in ADDED_RUN_FIELDS)
        }
    return answer


def _expected() -> dict[str, Any]:
    expected: dict[str, Any] = msgspec.json.decode((DATA / "format1.expected.json").read_bytes())
    return expected


def _copy(tmp_path: Path) -> Path:
    path = tmp_path / "format1.db"
    shutil.copyfile(DATA / "format1.db", path)
    return path


async def test_every_answer_is_the_recorded_one(tmp_path: Path) -> None:
    expected = _expected()
    async with Tracker.open(_copy(tmp_path)) as tracker:
        got = await collect_answers(tracker, expected["experiment_ids"], expected["run_ids"])
    assert_identical(_as_format1(got), expected)


async def test_the_answers_hold_after_the_database_is_reopened(tmp_path: Path) -> None:
    """A second open (after any migration the first one did) answers the same."""
    expected = _expected()
    path = _copy(tmp_path)
    for _ in range(2):
        async with Tracker.open(path) as tracker:
            got = await collect_answers(tracker, expected["experiment_ids"], expected["run_ids"])
        assert_identical(_as_format1(got), expected)


async def test_every_old_run_gets_its_last_activity_from_the_journal(tmp_path: Path) -> None:
    """Opening a format-1 file derives ``last_activity``: the newest entry about each run."""
    async with Tracker.open(_copy(tmp_path)) as tracker:
        newest: dict[str, float] = {}
        for entry in await tracker.store.read_journal():
            run_id = getattr(entry.event, "run_id", None)
            if run_id is not None:
                newest[run_id] = max(newest.get(run_id, entry.recorded_at), entry.recorded_at)
        runs = await tracker.filter_runs(None, [])
    assert runs
    for run in runs:
        assert run.last_activity == newest[run.id], run.name


async def test_verify_is_clean(tmp_path: Path) -> None:
    path = _copy(tmp_path)
    async with Tracker.open(path) as tracker:
        await tracker.flush()
    report = await verify(path)
    assert report.ok, report.differences
