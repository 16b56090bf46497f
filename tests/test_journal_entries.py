"""``journal.entries`` and ``journal.head``: reading the journal by position, page by page."""

from __future__ import annotations

import contextlib
import itertools
from pathlib import Path

import pytest

from runjournal import Tracker, journal
from runjournal.events import ExperimentCreated, MetricChunkLogged, RunCreated


async def _fill(db: Path) -> tuple[str, str]:
    async with Tracker.open(db) as tracker:
        experiment = await tracker.create_experiment("e")
        run_id = await tracker.create_run(experiment)
        await tracker.flush()
        for step in range(3):
            await tracker.log_metric(run_id, "loss", step, float(step))
    return experiment, run_id


async def test_entries_give_positions_times_and_events(tmp_path: Path) -> None:
    db = tmp_path / "j.db"
    experiment, run_id = await _fill(db)
    found = [entry async for entry in journal.entries(db)]
    assert [e.position for e in found] == [1, 2, 3]
    assert isinstance(found[0].event, ExperimentCreated)
    assert found[0].event.experiment_id == experiment
    assert isinstance(found[1].event, RunCreated)
    assert isinstance(found[2].event, MetricChunkLogged)
    assert found[2].event.run_id == run_id
    assert all(a.recorded_at <= b.recorded_at for a, b in itertools.pairwise(found))
    assert await journal.head(db) == 3


async def test_entries_after_and_limit(tmp_path: Path) -> None:
    db = tmp_path / "j.db"
    await _fill(db)
    assert [e.position async for e in journal.entries(db, after=1)] == [2, 3]
    assert [e.position async for e in journal.entries(db, after=1, limit=1)] == [2]
    assert [e.position async for e in journal.entries(db, limit=0)] == []
    assert [e.position async for e in journal.entries(db, after=3)] == []
    async with contextlib.aclosing(journal.entries(db)) as entries:
        first = await anext(entries)
    assert first.position == 1


async def test_entries_on_a_store_and_bad_arguments(tmp_path: Path) -> None:
    async with Tracker.open_in_memory() as tracker:
        await tracker.create_experiment("e")
        await tracker.flush()
        assert [e.position async for e in journal.entries(tracker.store)] == [1]
        assert await journal.head(tracker.store) == 1
    with pytest.raises(ValueError, match="after"):
        journal.entries(tmp_path / "x.db", after=-1)
    with pytest.raises(ValueError, match="limit"):
        journal.entries(tmp_path / "x.db", limit=-1)
    with pytest.raises(FileNotFoundError):
        [e async for e in journal.entries(tmp_path / "missing.db")]
    with pytest.raises(FileNotFoundError):
        await journal.head(tmp_path / "missing.db")
