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
    assert_identical(got, expected)


async def test_the_answers_hold_after_the_database_is_reopened(tmp_path: Path) -> None:
    """A second open (after any migration the first one did) answers the same."""
    expected = _expected()
    path = _copy(tmp_path)
    for _ in range(2):
        async with Tracker.open(path) as tracker:
            got = await collect_answers(tracker, expected["experiment_ids"], expected["run_ids"])
        assert_identical(got, expected)


async def test_verify_is_clean(tmp_path: Path) -> None:
    path = _copy(tmp_path)
    async with Tracker.open(path) as tracker:
        await tracker.flush()
    report = await verify(path)
    assert report.ok, report.differences
