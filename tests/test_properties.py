"""Properties: every store folds any history alike, and rebuild() reproduces the live state."""

from __future__ import annotations

import asyncio
import tempfile
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from runjournal import RunStatus, Tracker
from runjournal.events import Event
from runjournal.stores import InMemoryStorage, NewEntry, SqliteBackend, Store
from runjournal.stores.base import recorded_at
from tests.snapshot import snapshot
from tests.strategies import histories, param_values

SETTINGS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _stores(folder: Path) -> list[Store]:
    return [SqliteBackend(folder / "a.db"), SqliteBackend(":memory:"), InMemoryStorage()]


async def _fold(store: Store, history: list[Event], batch: int) -> list[list[tuple[int, str]]]:
    rejected = []
    for start in range(0, len(history), batch):
        chunk = history[start : start + batch]
        entries = [NewEntry("S", start + i, e, recorded_at(e)) for i, e in enumerate(chunk)]
        rejected.append(store.append(entries).rejected)
    return rejected


@SETTINGS
@given(history=histories, batch=st.integers(1, 8))
def test_every_store_folds_a_history_alike_and_rebuilds_it(
    history: list[Event], batch: int
) -> None:
    async def check() -> None:
        with tempfile.TemporaryDirectory() as folder:
            stores = _stores(Path(folder))
            try:
                answers = []
                for store in stores:
                    await store.open()
                    rejected = await _fold(store, history, batch)
                    live = await snapshot(store)
                    await store.rebuild()
                    assert await snapshot(store) == live, f"rebuild differs on {store!r}"
                    answers.append((rejected, live))
                assert answers[1] == answers[0], "SQLite in memory differs from SQLite on file"
                assert answers[2] == answers[0], "the in-memory store differs from SQLite"
            finally:
                for store in stores:
                    await store.close()

    asyncio.run(check())


@SETTINGS
@given(
    ops=st.lists(
        st.tuples(st.sampled_from(["param", "metric", "status", "tag", "artifact"]), param_values),
        max_size=30,
    )
)
def test_tracker_histories_rebuild_identically(ops: list[tuple[str, Any]]) -> None:
    async def check() -> None:
        with tempfile.TemporaryDirectory() as folder:
            for store in _stores(Path(folder)):
                async with Tracker(store) as tracker:
                    exp_id = await tracker.create_experiment("p")
                    run_ids = [await tracker.create_run(exp_id) for _ in range(2)]
                    for i, (op, value) in enumerate(ops):
                        run_id = run_ids[i % 2]
                        if op == "param":
                            await tracker.log_param(run_id, f"k{i % 3}", value)
                        elif op == "metric":
                            await tracker.log_metric(run_id, "m", i % 4, float(i))
                        elif op == "status":
                            status = await tracker.get_run_status(run_id)
                            if status is RunStatus.PENDING:
                                await tracker.start_run(run_id)
                            elif status is RunStatus.RUNNING:
                                await tracker.complete_run(run_id, RunStatus.FAILED)
                        elif op == "tag":
                            await tracker.set_tag(run_id, "t", repr(value))
                        else:
                            await tracker.log_artifact(run_id, "a", repr(value).encode())
                    await tracker.flush()
                    live = await snapshot(store)
                    await store.rebuild()
                    assert await snapshot(store) == live

    asyncio.run(check())
