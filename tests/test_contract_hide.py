"""Contract: hiding and restoring runs (a soft delete, MLflow's delete/restore), on every store.

A hidden run keeps everything: ``get_run`` answers with ``hidden=True`` and logging
goes on, but ``list_runs`` and ``filter_runs`` leave it out unless asked with
``view="HIDDEN"`` (only hidden runs) or ``view="ALL"``. ``delete_run`` stays a tombstone.
"""

from __future__ import annotations

import contextlib
import sqlite3
from pathlib import Path

import pytest

from runjournal import (
    FilterOp,
    ParamFilter,
    RunNotFound,
    RunStatus,
    RunView,
    StoreReadOnly,
    SyncTracker,
    Tracker,
)
from runjournal.events import RunHidden, RunRestored
from runjournal.journal import rebuild, verify
from runjournal.stores.sqlite.schema import SCHEMA_VERSION


async def _three_runs(tracker: Tracker) -> tuple[str, list[str]]:
    exp = await tracker.create_experiment("e")
    runs = []
    for lr in (0.1, 0.01, 0.001):
        run_id = await tracker.create_run(exp, name=f"lr={lr}")
        await tracker.log_param(run_id, "lr", lr)
        runs.append(run_id)
    return exp, runs


async def test_a_hidden_run_leaves_the_listings_and_keeps_everything(tracker: Tracker) -> None:
    exp, (a, b, c) = await _three_runs(tracker)
    await tracker.start_run(b)
    await tracker.log_metric(b, "loss", 0, 0.5)
    await tracker.hide_run(b)
    assert [r.id for r in await tracker.list_runs(exp)] == [a, c]
    assert [r.id for r in await tracker.filter_runs(exp, [])] == [a, c]
    assert [r.id for r in await tracker.filter_runs(None, [])] == [a, c]
    hidden = await tracker.get_run(b)
    assert hidden.hidden is True
    assert hidden.status is RunStatus.RUNNING
    assert hidden.params == {"lr": 0.01}
    await tracker.log_metric(b, "loss", 1, 0.25)  # logging goes on
    await tracker.complete_run(b, RunStatus.SUCCESS)
    assert [p.value for p in await tracker.get_metrics(b, "loss")] == [0.5, 0.25]
    assert (await tracker.get_run(a)).hidden is False


async def test_views_pick_active_hidden_or_all_runs(tracker: Tracker) -> None:
    exp, (a, b, c) = await _three_runs(tracker)
    await tracker.hide_run(a)
    await tracker.hide_run(c)
    assert [r.id for r in await tracker.list_runs(exp, view="HIDDEN")] == [a, c]
    assert [r.id for r in await tracker.list_runs(exp, view=RunView.ALL)] == [a, b, c]
    assert [r.id for r in await tracker.list_runs(exp, view="active")] == [b]
    small = [ParamFilter("lr", FilterOp.LT, 0.05)]
    assert [r.id for r in await tracker.filter_runs(exp, small)] == [b]
    assert [r.id for r in await tracker.filter_runs(exp, small, view="HIDDEN")] == [c]
    assert [r.id for r in await tracker.filter_runs(None, small, view="ALL")] == [b, c]
    equal = [ParamFilter("lr", FilterOp.EQ, 0.1)]  # answered by the store's params index
    assert [r.id for r in await tracker.filter_runs(exp, equal)] == []
    assert [r.id for r in await tracker.filter_runs(exp, equal, view="ALL")] == [a]


async def test_restore_brings_a_run_back(tracker: Tracker) -> None:
    exp, (a, b, c) = await _three_runs(tracker)
    await tracker.hide_run(b)
    await tracker.restore_run(b)
    assert [r.id for r in await tracker.list_runs(exp)] == [a, b, c]
    assert (await tracker.get_run(b)).hidden is False


async def test_hide_and_restore_are_idempotent_and_kept_in_the_journal(tracker: Tracker) -> None:
    exp, (a, b, _) = await _three_runs(tracker)
    await tracker.hide_run(a)
    await tracker.hide_run(a)
    await tracker.restore_run(b)  # not hidden: nothing changes
    await tracker.flush()
    assert (await tracker.get_run(a)).hidden is True
    assert (await tracker.get_run(b)).hidden is False
    kinds = [
        type(e.event).__name__
        for e in await tracker.store.read_journal()
        if isinstance(e.event, RunHidden | RunRestored)
    ]
    assert kinds == ["RunHidden", "RunHidden", "RunRestored"]
    await rebuild(tracker.store)
    assert (await tracker.get_run(a)).hidden is True
    assert [r.id for r in await tracker.list_runs(exp, view="HIDDEN")] == [a]
    report = await verify(tracker.store)
    assert report.ok, report.differences


async def test_hiding_does_not_move_last_activity(tracker: Tracker) -> None:
    """Hiding is bookkeeping about a run, not a sign of life from its process."""
    _, (a, _, _) = await _three_runs(tracker)
    before = (await tracker.get_run(a)).last_activity
    await tracker.hide_run(a)
    assert (await tracker.get_run(a)).last_activity == before


async def test_a_deleted_run_cannot_be_hidden_or_restored(tracker: Tracker) -> None:
    _, (a, b, _) = await _three_runs(tracker)
    await tracker.hide_run(a)
    await tracker.delete_run(a)
    with pytest.raises(RunNotFound):
        await tracker.get_run(a)
    for call in (tracker.hide_run(a), tracker.restore_run(a), tracker.hide_run("01" + "Z" * 24)):
        with pytest.raises(RunNotFound):
            await call
    assert (await tracker.get_run(b)).hidden is False


async def test_a_bad_view_is_refused_by_name(tracker: Tracker) -> None:
    exp, _ = await _three_runs(tracker)
    with pytest.raises(ValueError, match="ACTIVE, HIDDEN or ALL"):
        await tracker.list_runs(exp, view="DELETED")
    with pytest.raises(ValueError, match="ACTIVE, HIDDEN or ALL"):
        await tracker.filter_runs(exp, [], view=3)  # type: ignore[arg-type]


def test_the_sync_face_hides_and_restores() -> None:
    with SyncTracker.open_in_memory() as tracker:
        exp = tracker.create_experiment("e")
        run_id = tracker.create_run(exp)
        tracker.hide_run(run_id)
        assert tracker.list_runs(exp) == []
        assert [r.id for r in tracker.list_runs(exp, view="ALL")] == [run_id]
        tracker.restore_run(run_id)
        assert [r.id for r in tracker.list_runs(exp)] == [run_id]


def _as_schema_3(path: Path) -> None:
    """Turn a fresh database into one of schema 3 (today's without ``runs.hidden``)."""
    with contextlib.closing(sqlite3.connect(path)) as conn:
        conn.execute("DROP INDEX runs_by_creation")  # of schema 5: it names runs.hidden
        conn.execute("ALTER TABLE runs DROP COLUMN hidden")
        conn.execute("UPDATE meta SET value = '3' WHERE key = 'schema_version'")
        conn.commit()


async def test_a_schema_3_database_gains_the_column_without_a_refold(tmp_path: Path) -> None:
    """Its journal cannot hide a run, so every run is listed, and its entries stay as they were."""
    path = tmp_path / "v3.db"
    async with Tracker.open(path) as tracker:
        exp, runs = await _three_runs(tracker)
        await tracker.log_metric(runs[0], "loss", 0, 1.0)
    _as_schema_3(path)
    with pytest.raises(StoreReadOnly, match="open it once with write access"):
        async with Tracker.open(path, read_only=True) as reader:
            await reader.list_runs(exp)
    async with Tracker.open(path) as tracker:
        assert [r.id for r in await tracker.list_runs(exp)] == runs
        assert not any(r.hidden for r in await tracker.list_runs(exp, view="ALL"))
        await tracker.hide_run(runs[1])
        assert [r.id for r in await tracker.list_runs(exp)] == [runs[0], runs[2]]
    with contextlib.closing(sqlite3.connect(path)) as conn:
        version = conn.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
    assert version == (str(SCHEMA_VERSION),)
    async with Tracker.open(path, read_only=True) as reader:
        assert [r.id for r in await reader.list_runs(exp, view="HIDDEN")] == [runs[1]]
    report = await verify(path)
    assert report.ok, report.differences
