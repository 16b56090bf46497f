"""A database of SQLite schema 4 (before the typed params index) opens and answers as it did.

``tests/data/schema4.db`` and ``schema4.expected.json`` were written together by a
one-version copy of ``tests/data/make_schema_database.py`` with the code of schema 4; they
are never regenerated. A write open migrates a copy to the typed params index in one transaction;
a read-only open reads it as it is, never writing it. Either way every answer is the
recorded one, and searches agree with those of the migrated file.
"""

from __future__ import annotations

import hashlib
import shutil
import sqlite3
from pathlib import Path
from typing import Any

import msgspec

from runjournal import FilterOp, ParamFilter, Tracker
from runjournal.journal import verify
from runjournal.stores.sqlite.schema import SCHEMA_VERSION
from tests.conftest import assert_identical
from tests.data.make_v1_database import collect_answers

DATA = Path(__file__).resolve().parent / "data"

ORDERS = ["created_at", "name", "status", "param:epochs", "param:model", "param:flag", "param:lr"]
FILTERS = [
    [],
    [ParamFilter("epochs", FilterOp.GT, 2)],
    [ParamFilter("model", FilterOp.STARTS_WITH, "res")],
    [ParamFilter("layers", FilterOp.CONTAINS, 64)],
]


def _expected() -> dict[str, Any]:
    expected: dict[str, Any] = msgspec.json.decode((DATA / "schema4.expected.json").read_bytes())
    return expected


def _copy(tmp_path: Path, name: str = "schema4.db") -> Path:
    path = tmp_path / name
    shutil.copyfile(DATA / "schema4.db", path)
    return path


def _schema(path: Path) -> tuple[int, list[str]]:
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        row = conn.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
        columns = [info[1] for info in conn.execute("PRAGMA table_info(params)")]
        indexes = {info[1] for info in conn.execute("PRAGMA index_list(params)")}
    finally:
        conn.close()
    typed = {"params_by_num", "params_by_text"}
    assert indexes >= typed if "kind" in columns else not indexes & typed
    return int(row[0]), columns


async def _searches(tracker: Tracker) -> list[Any]:
    found = []
    for filters in FILTERS:
        for order in ORDERS:
            for desc in (False, True):
                page = await tracker.search_runs(None, filters, order_by=order, desc=desc, limit=3)
                ids = [run.id for run in page.runs]
                while page.next is not None:
                    page = await tracker.search_runs(
                        None, filters, order_by=order, desc=desc, limit=3, after=page.next
                    )
                    ids += [run.id for run in page.runs]
                found.append((order, desc, page.total, ids))
    return found


async def test_a_write_open_migrates_it_and_every_answer_is_the_recorded_one(
    tmp_path: Path,
) -> None:
    expected = _expected()
    path = _copy(tmp_path)
    assert _schema(path) == (4, ["key", "run_id", "value"])
    async with Tracker.open(path) as tracker:
        got = await collect_answers(tracker, expected["experiment_ids"], expected["run_ids"])
    assert_identical(got, expected)
    assert _schema(path) == (SCHEMA_VERSION, ["key", "run_id", "value", "kind", "num", "text"])
    report = await verify(path)
    assert report.ok, report.differences


async def test_a_read_only_open_answers_the_same_without_writing_the_file(
    tmp_path: Path,
) -> None:
    expected = _expected()
    path = _copy(tmp_path)
    before = hashlib.sha256(path.read_bytes()).hexdigest()
    async with Tracker.open(path, read_only=True) as tracker:
        got = await collect_answers(tracker, expected["experiment_ids"], expected["run_ids"])
        searched = await _searches(tracker)
    assert_identical(got, expected)
    assert hashlib.sha256(path.read_bytes()).hexdigest() == before
    assert _schema(path) == (4, ["key", "run_id", "value"])
    async with Tracker.open(_copy(tmp_path, "migrated.db")) as migrated:
        assert await _searches(migrated) == searched
    assert any(total and ids for _, _, total, ids in searched)
