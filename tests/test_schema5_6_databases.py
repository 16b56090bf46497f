"""Databases of SQLite schemas 5 (metric points as triples) and 6 (points as chunks) open and
answer as they did, and take new points after their old ones.

``tests/data/schema{5,6}.db`` and their ``.expected.json`` were written together with the code
of that schema (``tests/data/make_schema_database.py``); they are never regenerated. Schemas
6 and 7 changed no table: a write open marks the file as the current version (so that a
runjournal of version 5 refuses it rather than misreads the chunks it may then hold) and adds
the finer rollup levels of version 7, merged from the stored level 1; a read-only open reads
it as it is, never writing it, through the first format's levels.
"""

from __future__ import annotations

import hashlib
import shutil
import sqlite3
from pathlib import Path
from typing import Any

import msgspec
import pytest

from runjournal import Tracker
from runjournal.journal import verify
from runjournal.rollups import LEGACY_LADDER, LEVELS
from runjournal.stores.sqlite.schema import SCHEMA_VERSION
from tests.conftest import assert_identical
from tests.data.make_v1_database import collect_answers
from tests.test_contract_rollups import check_buckets

DATA = Path(__file__).resolve().parent / "data"


# Each fixture's schema version and the kinds of metric entry its journal holds.
FIXTURES = {
    "schema5": (5, {"metrics.logged"}),
    "schema6": (6, {"metrics.chunk"}),
}
fixtures = pytest.mark.parametrize("name", sorted(FIXTURES))


def _expected(name: str) -> dict[str, Any]:
    expected: dict[str, Any] = msgspec.json.decode((DATA / f"{name}.expected.json").read_bytes())
    return expected


def _copy(tmp_path: Path, name: str) -> Path:
    path = tmp_path / f"{name}.db"
    shutil.copyfile(DATA / f"{name}.db", path)
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


@fixtures
async def test_a_write_open_marks_it_current_and_every_answer_is_the_recorded_one(
    tmp_path: Path, name: str
) -> None:
    expected = _expected(name)
    path = _copy(tmp_path, name)
    version, kinds = FIXTURES[name]
    assert _version_and_kinds(path) == (version, kinds)
    assert_identical(await _answers_and_charts(path, expected, read_only=False), expected)
    assert _version_and_kinds(path) == (SCHEMA_VERSION, kinds)
    # verify() compares every rollup level with a fold of the journal: the levels the upgrade
    # merged from level 1 are exactly those a writer of schema 7 folds from the points.
    report = await verify(path)
    assert report.ok, report.differences
    assert _levels(path) == set(LEVELS)


async def _answers_and_charts(path: Path, expected: dict[str, Any], *, read_only: bool) -> Any:
    """Every answer ``collect_answers`` records, after checking every series' downsampling."""
    async with Tracker.open(path, read_only=read_only) as tracker:
        await _check_charts(tracker)
        return await collect_answers(tracker, expected["experiment_ids"], expected["run_ids"])


async def _check_charts(tracker: Tracker) -> None:
    """Every series downsamples validly, through whichever rollup levels the file holds."""
    checked = 0
    for run in await tracker.filter_runs(None, []):
        for key in await tracker.list_metric_keys(run.id):
            series = await tracker.get_metrics(run.id, key)
            for points in (2, 5, 50):
                buckets = await tracker.get_metrics_downsampled(run.id, key, points=points)
                check_buckets(buckets, series, points, None, None)
            checked += 1
    assert checked > 0


def _levels(path: Path) -> set[int]:
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        return {level for (level,) in conn.execute("SELECT DISTINCT level FROM rollups")}
    finally:
        conn.close()


@fixtures
async def test_points_logged_after_the_upgrade_follow_the_old_ones_in_one_series(
    tmp_path: Path, name: str
) -> None:
    path = _copy(tmp_path, name)
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
    assert _version_and_kinds(path) == (SCHEMA_VERSION, FIXTURES[name][1] | {"metrics.chunk"})
    report = await verify(path)
    assert report.ok, report.differences


@fixtures
async def test_a_read_only_open_answers_the_same_without_writing_the_file(
    tmp_path: Path, name: str
) -> None:
    expected = _expected(name)
    path = _copy(tmp_path, name)
    before = hashlib.sha256(path.read_bytes()).hexdigest()
    assert_identical(await _answers_and_charts(path, expected, read_only=True), expected)
    assert hashlib.sha256(path.read_bytes()).hexdigest() == before
    assert _levels(path) == set(LEGACY_LADDER) | {0}
