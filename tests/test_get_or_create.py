"""Experiments by name: ``find_experiment`` and the race-free get-or-create ``ensure_experiment``.

An experiment created by name gets an id derived from the name and a generation
(``ids.name_id``), so that processes creating "the experiment called X" at once
all create the same one, and the fold keeps the first creation.
"""

from __future__ import annotations

import asyncio
import multiprocessing.synchronize
import re
from pathlib import Path

import anyio.to_thread
import pytest

from runjournal import Tracker
from runjournal.events import ExperimentCreated
from runjournal.ids import name_id
from runjournal.journal import rebuild, verify
from runjournal.projection import Rejected, State
from runjournal.stores import InMemoryStorage, SqliteBackend, Store
from tests.children import get_context
from tests.conftest import StoreKind

ULID_SHAPE = re.compile(r"[0-7][0-9A-HJKMNP-TV-Z]{25}")


async def test_find_experiment_gives_the_oldest_live_one_with_that_name(tracker: Tracker) -> None:
    assert await tracker.find_experiment("sweep") is None
    first = await tracker.create_experiment("sweep", {"a": 1})
    await tracker.create_experiment("sweep")
    await tracker.create_experiment("other")
    found = await tracker.find_experiment("sweep")
    assert found is not None
    assert (found.id, found.config) == (first, {"a": 1})
    await tracker.delete_experiment(first)
    found = await tracker.find_experiment("sweep")
    assert found is not None and found.id != first
    assert await tracker.find_experiment("Sweep") is None  # names are case-sensitive


async def test_find_experiment_refuses_what_is_no_name(tracker: Tracker) -> None:
    with pytest.raises(ValueError, match="experiment name must not be empty"):
        await tracker.find_experiment("")
    with pytest.raises(TypeError, match="experiment name must be a str"):
        await tracker.find_experiment(None)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="experiment name must not be empty"):
        await tracker.ensure_experiment("")


async def test_ensure_experiment_creates_once_then_returns_the_same_id(tracker: Tracker) -> None:
    experiment_id = await tracker.ensure_experiment("sweep")
    assert ULID_SHAPE.fullmatch(experiment_id)
    assert experiment_id == name_id("experiment", "sweep", 0)
    assert await tracker.ensure_experiment("sweep") == experiment_id
    experiment = await tracker.get_experiment(experiment_id)
    assert (experiment.name, experiment.config, experiment.tags) == ("sweep", None, {})
    assert [e.id for e in await tracker.list_experiments()] == [experiment_id]
    run_id = await tracker.create_run(experiment_id)  # usable at once, before any flush
    assert [r.id for r in await tracker.list_runs(experiment_id)] == [run_id]


async def test_ensure_experiment_reuses_one_made_by_create_experiment(tracker: Tracker) -> None:
    made = await tracker.create_experiment("sweep", {"lr": [1e-3, 1e-4]})
    assert await tracker.ensure_experiment("sweep") == made
    assert len(await tracker.list_experiments()) == 1


async def test_the_arguments_of_ensure_experiment_serve_only_to_create_it(
    tracker: Tracker,
) -> None:
    experiment_id = await tracker.ensure_experiment(
        "sweep", {"lr": 0.1}, description="a sweep", tags={"team": "nlp"}
    )
    again = await tracker.ensure_experiment("sweep", {"lr": 0.2}, tags={"team": "cv"})
    assert again == experiment_id
    experiment = await tracker.get_experiment(experiment_id)
    assert (experiment.config, experiment.description, experiment.tags) == (
        {"lr": 0.1},
        "a sweep",
        {"team": "nlp"},
    )
    # Bad arguments are refused whether or not the experiment exists.
    with pytest.raises(TypeError, match="config must be a mapping"):
        await tracker.ensure_experiment("sweep", [1, 2])  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="description must be a str"):
        await tracker.ensure_experiment("new", description=3)  # type: ignore[arg-type]
    assert await tracker.find_experiment("new") is None


async def test_after_a_delete_the_name_gets_a_new_id_every_time(tracker: Tracker) -> None:
    seen: list[str] = []
    for _ in range(3):
        experiment_id = await tracker.ensure_experiment("sweep")
        await tracker.create_run(experiment_id)
        seen.append(experiment_id)
        await tracker.delete_experiment(experiment_id)
    assert seen == [name_id("experiment", "sweep", g) for g in range(3)]
    assert len(set(seen)) == 3
    again = await tracker.ensure_experiment("sweep")
    assert again not in seen
    assert [e.id for e in await tracker.list_experiments()] == [again]
    assert await tracker.list_runs(again) == []  # the deleted runs stay deleted


@pytest.mark.parametrize("kind", ["sqlite-file", "memory"])
async def test_two_writers_creating_the_same_name_at_once_make_one_experiment(
    kind: StoreKind, tmp_path: Path
) -> None:
    """Neither sees the other's creation before both are committed: the fold keeps one."""
    db = tmp_path / "experiments.db"
    shared = InMemoryStorage()

    def store() -> Store:
        return SqliteBackend(db) if kind == "sqlite-file" else shared

    async with Tracker(store()) as one, Tracker(store()) as two:
        first = await one.ensure_experiment("sweep")
        second = await two.ensure_experiment("sweep")  # one's creation is still queued
        assert first == second
        run_one = await one.create_run(first, name="from one")
        run_two = await two.create_run(second, name="from two")
        await one.flush()
        await two.flush()  # no RejectedWrites: the second creation is a no-op
        experiments = await one.list_experiments()
        assert [e.id for e in experiments] == [first]
        assert {r.id for r in await two.list_runs(first)} == {run_one, run_two}
        created = [
            e for e in await one.store.read_journal() if isinstance(e.event, ExperimentCreated)
        ]
        assert len(created) == 2  # both are in the journal; folding the second changes nothing
        assert (await verify(one.store)).ok
        await rebuild(one.store)
        assert await one.list_experiments() == experiments


def test_the_fold_refuses_a_generation_whose_id_is_not_derived_from_the_name() -> None:
    state = State()
    forged = ExperimentCreated(name_id("experiment", "other", 0), "sweep", 1.0, generation=0)
    with pytest.raises(Rejected, match="not the id of generation 0 of 'sweep'"):
        state.fold(forged)
    state.fold(ExperimentCreated(name_id("experiment", "sweep", 0), "sweep", 1.0, generation=0))
    state.fold(ExperimentCreated(name_id("experiment", "sweep", 0), "sweep", 2.0, generation=0))
    assert [e.created_at for e in state.list_experiments()] == [1.0]  # the first one is kept
    with pytest.raises(Rejected, match="already exists"):  # a plain re-creation still is refused
        state.fold(ExperimentCreated(name_id("experiment", "sweep", 0), "sweep", 3.0))


def test_name_ids_are_stable_distinct_and_shaped_like_ulids() -> None:
    names = ["sweep", "Sweep", "sweep ", "", "日本語", "a\x00b"]
    ids = {name_id("experiment", n, g) for n in names for g in range(5)}
    assert len(ids) == len(names) * 5
    assert all(ULID_SHAPE.fullmatch(i) for i in ids)
    # Fixed forever: every process, every version, derives the same id from the same name.
    assert name_id("experiment", "sweep", 0) == name_id("experiment", "sweep", 0)
    assert name_id("experiment", "gpt2-finetune", 0) == "62CCW08RDBAK57JJCA8VN7DWPE"


# -- a sweep of real processes ------------------------------------------------------------------
PROCESSES = 8


def sweep_member(db: str, barrier: multiprocessing.synchronize.Barrier, index: int) -> None:
    """One process of a sweep: wait for the others, then get-or-create "sweep" and log a run."""

    async def member() -> None:
        async with Tracker.open(db) as tracker:
            await tracker.list_experiments()  # the database is open before the race starts
            await anyio.to_thread.run_sync(barrier.wait, 60)
            experiment_id = await tracker.ensure_experiment("sweep")
            run_id = await tracker.create_run(experiment_id, name=f"member-{index}")
            await tracker.start_run(run_id)
            await tracker.log_metric(run_id, "loss", 0, 1.0 / (index + 1))
            await tracker.complete_run(run_id, "SUCCESS")

    asyncio.run(member())


async def test_a_sweep_of_processes_started_at_once_ends_with_one_experiment(
    tmp_path: Path,
) -> None:
    db = tmp_path / "sweep.db"
    async with Tracker.open(db):
        pass  # created here, so that the members race on the experiment, not on the schema
    context = get_context("spawn")
    barrier = context.Barrier(PROCESSES)
    members = [
        context.Process(target=sweep_member, args=(str(db), barrier, i)) for i in range(PROCESSES)
    ]
    for process in members:
        process.start()
    for process in members:
        await anyio.to_thread.run_sync(process.join, 120)
    for process in members:
        if process.is_alive():
            process.kill()
    assert [p.exitcode for p in members] == [0] * PROCESSES

    async with Tracker.open(db) as tracker:
        experiments = await tracker.list_experiments()
        assert [e.name for e in experiments] == ["sweep"]
        runs = await tracker.list_runs(experiments[0].id)
        assert sorted(r.name or "" for r in runs) == [f"member-{i}" for i in range(PROCESSES)]
        assert {r.status.value for r in runs} == {"SUCCESS"}
    assert (await verify(db)).ok
