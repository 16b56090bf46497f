"""A database of SQLite schema 5 (metric points as triples, before chunks) opens and answers
as it did, and takes chunks after it.

``tests/data/schema5.db`` and ``schema5.expected.json`` were written together by
``tests/data/make_schema5_database.py`` with the code of schema 5; they are never
regenerated. Schema 6 changed no table: a write open only marks the file as version 6
(so that a runjournal of version 5 refuses it rather than misreads the chunks it may then
hold), and a read-only open reads it as it is, never writing it.
"""

from __future__ import annotations

import hashlib
import shutil
import sqlite3
from pathlib import Path
from typing import Any

import msgspec

from runjournal import Tracker
from runjournal.journal import verify
from runjournal.stores.sqlite.schema import SCHEMA_VERSION
from tests.conftest import assert_identical
from tests.data.make_v1_database import collect_answers

DATA = Path(__file__).resolve().parent / "data"


def _expected() -> dict[str, Any]:
    expected: dict[str, Any] = msgspec.json.decode((DATA / "schema5.expected.json").read_bytes())
    return expected


def _copy(tmp_path: Path) -> Path:
    path = tmp_path / "schema5.db"
    shutil.copyfile(DATA / "schema5.db", path)
    return path


def _version_and_kinds(path: Path) -> tuple[int, set[str]]:
    """The file's schema version and the kinds of metric entry its journal holds."""
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        row = conn.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
        bodies = [body for (body,) in conn.execute("SELECT body FROM journal")]
    finally:
        conn.close()
    kinds = set()
    for body in bodies:
        for tag in (b"metrics.logged", b"metrics.chunk"):
            if tag in body:
                kinds.add(tag.decode())
    return int(row[0]), kinds


async def test_a_write_open_marks_it_version_6_and_every_answer_is_the_recorded_one(
    tmp_path: Path,
) -> None:
    expected = _expected()
    path = _copy(tmp_path)
    assert _version_and_kinds(path) == (5, {"metrics.logged"})
    async with Tracker.open(path) as tracker:
        got = await collect_answers(tracker, expected["experiment_ids"], expected["run_ids"])
    assert_identical(got, expected)
    assert _version_and_kinds(path) == (SCHEMA_VERSION, {"metrics.logged"})
    assert SCHEMA_VERSION == 6
    report = await verify(path)
    assert report.ok, report.differences


async def test_points_logged_after_the_upgrade_follow_the_old_ones_in_one_series(
    tmp_path: Path,
) -> None:
    path = _copy(tmp_path)
    async with Tracker.open(path) as tracker:
        series = [
            (run.id, key)
            for experiment in await tracker.list_experiments()
            for run in await tracker.list_runs(experiment.id)
            if run.status.value == "RUNNING"
            for key in await tracker.list_metric_keys(run.id)
        ]
        assert series, "the fixture has a RUNNING run with a metric"
        run_id, key = series[0]
        old = await tracker.get_metrics(run_id, key)
        last = max(point.step for point in old)
        for i in range(500):
            await tracker.log_metric(run_id, key, last + 1 + i, i / 7)
        await tracker.flush()
        new = await tracker.get_metrics(run_id, key)
        arrays = await tracker.get_metric_arrays(run_id, key)
    assert new[: len(old)] == old
    assert [(p.step, p.value) for p in new[len(old) :]] == [
        (last + 1 + i, i / 7) for i in range(500)
    ]
    assert list(arrays.step) == [p.step for p in new]
    assert _version_and_kinds(path) == (SCHEMA_VERSION, {"metrics.logged", "metrics.chunk"})
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
    assert_identical(got, expected)
    assert hashlib.sha256(path.read_bytes()).hexdigest() == before
