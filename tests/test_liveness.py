"""Runs that died must not look RUNNING forever: last activity, heartbeats and staleness.

A run's ``last_activity`` is a projection: the recorded time of the newest journal
entry about it. The tracker's clock (``runjournal.tracker._time``) is replaced by a
fake one here, so that each entry is recorded at a known moment.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Awaitable, Callable
from pathlib import Path

import msgspec
import pytest

from runjournal import RunNotFound, RunStatus, Tracker
from runjournal.events import RunHeartbeat, TagSet
from runjournal.journal import rebuild, verify
from runjournal.model import STALE_AFTER, Run
from runjournal.stores.base import NewEntry
from tests.conftest import StoreKind, make_store

T0 = 1_800_000_000.0


class Clock:
    """The tracker's clock, moved by hand."""

    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    fake = Clock()
    monkeypatch.setattr("runjournal.tracker._time", fake)
    return fake


async def _running(tracker: Tracker, clock: Clock) -> str:
    experiment_id = await tracker.create_experiment("liveness")
    run_id = await tracker.create_run(experiment_id, name="r")
    clock.now += 1
    await tracker.start_run(run_id)
    return run_id


Action = Callable[[Tracker, str], Awaitable[None]]


async def _log_param(t: Tracker, r: str) -> None:
    await t.log_param(r, "lr", 0.1)


async def _log_params_nowait(t: Tracker, r: str) -> None:
    t.log_params_nowait(r, {"lr": 0.1})


async def _log_metric(t: Tracker, r: str) -> None:
    await t.log_metric(r, "loss", 0, 1.0)


async def _log_metric_with_an_old_timestamp(t: Tracker, r: str) -> None:
    # The point's own timestamp is the user's; the activity is when it was logged.
    await t.log_metric(r, "loss", 0, 1.0, timestamp=1_000_000_000.0)


async def _log_metrics_nowait(t: Tracker, r: str) -> None:
    t.log_metrics_nowait(r, {"loss": 1.0, "acc": 0.5}, 3)


async def _set_tag(t: Tracker, r: str) -> None:
    await t.set_tag(r, "k", "v")


async def _log_artifact(t: Tracker, r: str) -> None:
    await t.log_artifact(r, "model.bin", b"weights")


async def _set_span_id(t: Tracker, r: str) -> None:
    await t.set_span_id(r, "span-1")


async def _heartbeat(t: Tracker, r: str) -> None:
    await t.heartbeat(r)


async def _heartbeat_nowait(t: Tracker, r: str) -> None:
    t.heartbeat_nowait(r)


async def _complete(t: Tracker, r: str) -> None:
    await t.complete_run(r, RunStatus.SUCCESS)


ACTIONS: list[Action] = [
    _log_param,
    _log_params_nowait,
    _log_metric,
    _log_metric_with_an_old_timestamp,
    _log_metrics_nowait,
    _set_tag,
    _log_artifact,
    _set_span_id,
    _heartbeat,
    _heartbeat_nowait,
    _complete,
]


async def test_a_new_run_was_last_active_when_it_was_created(
    tracker: Tracker, clock: Clock
) -> None:
    experiment_id = await tracker.create_experiment("liveness")
    run_id = await tracker.create_run(experiment_id)
    assert (await tracker.get_run(run_id)).last_activity == T0
    clock.now = T0 + 7
    await tracker.start_run(run_id)
    assert (await tracker.get_run(run_id)).last_activity == T0 + 7


@pytest.mark.parametrize("action", ACTIONS, ids=lambda a: a.__name__.strip("_"))
async def test_every_entry_about_a_run_moves_its_last_activity(
    tracker: Tracker, clock: Clock, action: Action
) -> None:
    run_id = await _running(tracker, clock)
    clock.now = T0 + 600
    await action(tracker, run_id)
    run = await tracker.get_run(run_id)
    assert run.last_activity == T0 + 600
    # Every query answers the same run: get_run, list_runs and filter_runs.
    assert (await tracker.list_runs(run.experiment_id)) == [run]
    assert (await tracker.filter_runs(None, [])) == [run]


async def test_a_heartbeat_changes_nothing_but_the_last_activity(
    tracker: Tracker, clock: Clock
) -> None:
    run_id = await _running(tracker, clock)
    await tracker.log_param(run_id, "lr", 0.1)
    before = await tracker.get_run(run_id)
    clock.now = T0 + 31
    await tracker.heartbeat(run_id)
    tracker.heartbeat_nowait(run_id)
    after = await tracker.get_run(run_id)
    assert after == msgspec.structs.replace(before, last_activity=T0 + 31)
    assert await tracker.list_metric_keys(run_id) == []
    kinds = [type(e.event).__name__ for e in await tracker.store.read_journal()]
    assert kinds[-2:] == ["RunHeartbeat", "RunHeartbeat"]


async def test_a_heartbeat_after_the_run_ended_is_accepted(tracker: Tracker, clock: Clock) -> None:
    """A handle's idle timer may fire just as its run ends: that is no error."""
    run_id = await _running(tracker, clock)
    await tracker.complete_run(run_id, RunStatus.FAILED)
    clock.now = T0 + 5
    await tracker.heartbeat(run_id)
    await tracker.flush()  # raises RejectedWrites if the store refused it
    run = await tracker.get_run(run_id)
    assert (run.status, run.last_activity) == (RunStatus.FAILED, T0 + 5)


async def test_heartbeat_of_an_unknown_run_is_refused_at_the_call(tracker: Tracker) -> None:
    with pytest.raises(RunNotFound):
        await tracker.heartbeat("01HF0000000000000000NOSUCH")
    with pytest.raises(RunNotFound):
        tracker.heartbeat_nowait("01HF0000000000000000NOSUCH")
    with pytest.raises(TypeError):
        await tracker.heartbeat(42)  # type: ignore[arg-type]


async def test_an_older_entry_arriving_later_never_moves_the_last_activity_back(
    tracker: Tracker, clock: Clock
) -> None:
    """Merged and imported journals bring entries out of time order: the newest time wins."""
    run_id = await _running(tracker, clock)
    clock.now = T0 + 100
    await tracker.heartbeat(run_id)
    await tracker.flush()
    old = T0 + 50
    result = tracker.store.append(
        [
            NewEntry("01HF0000000000000000IMPORT", 1, TagSet(run_id, "k", "v", old), old),
            NewEntry("01HF0000000000000000IMPORT", 2, RunHeartbeat(run_id, old), old),
        ]
    )
    assert (result.appended, result.rejected) == (2, [])
    run = await tracker.get_run(run_id)
    assert (run.tags, run.last_activity) == ({"k": "v"}, T0 + 100)


async def test_rebuild_and_verify_agree_on_the_last_activity(
    store_kind: StoreKind, tmp_path: Path, clock: Clock
) -> None:
    store = make_store(store_kind, tmp_path)
    async with Tracker(store) as tracker:
        run_id = await _running(tracker, clock)
        for second in range(1, 20):
            clock.now = T0 + second
            await tracker.log_metric(run_id, "loss", second, 1 / second)
        clock.now = T0 + 40
        await tracker.heartbeat(run_id)
        await tracker.flush()
        assert (await verify(store)).ok
        await rebuild(store)
        assert (await tracker.get_run(run_id)).last_activity == T0 + 40
        assert (await verify(store)).ok


async def test_verify_sees_a_damaged_last_activity(tmp_path: Path, clock: Clock) -> None:
    db = tmp_path / "experiments.db"
    async with Tracker.open(db) as tracker:
        run_id = await _running(tracker, clock)
    with sqlite3.connect(db) as conn:
        conn.execute("UPDATE runs SET last_activity = 0 WHERE id = ?", (run_id,))
    conn.close()
    report = await verify(db)
    assert not report.ok
    assert [d.what for d in report.differences] == [f"run {run_id}"]
    await rebuild(db)
    assert (await verify(db)).ok


# -- staleness -----------------------------------------------------------------------------------
def _run(status: RunStatus, last_activity: float | None, start_time: float | None = T0) -> Run:
    return Run(
        id="01HF0000000000000000RUN001",
        experiment_id="01HF0000000000000000EXP001",
        name=None,
        status=status,
        created_at=T0,
        start_time=start_time,
        end_time=None,
        params={},
        tags={},
        last_activity=last_activity,
    )


def test_a_running_run_is_stale_after_five_minutes_without_activity() -> None:
    assert STALE_AFTER == 300.0
    run = _run(RunStatus.RUNNING, T0 + 10)
    assert not run.is_stale(T0 + 10 + 299.9)
    assert run.is_stale(T0 + 10 + 300)
    assert run.idle_for(T0 + 10 + 720) == 720
    assert not run.is_stale(T0 + 10 + 720, after=3600)
    assert run.idle_for(T0) == 0  # a clock behind the run's never gives a negative idle time


@pytest.mark.parametrize("status", [s for s in RunStatus if s is not RunStatus.RUNNING])
def test_only_running_runs_are_ever_stale(status: RunStatus) -> None:
    assert not _run(status, T0).is_stale(T0 + 10 * STALE_AFTER)


def test_a_run_without_a_recorded_activity_counts_from_its_start_then_its_creation() -> None:
    """A ``Run`` value from before ``last_activity`` existed (decoded from old JSON, say)."""
    old_json = msgspec.json.encode(_run(RunStatus.RUNNING, None))
    old_json = old_json.replace(b',"last_activity":null', b"")
    assert b"last_activity" not in old_json
    run = msgspec.json.decode(old_json, type=Run)
    assert run.last_activity is None
    assert run.idle_for(T0 + 60) == 60
    assert _run(RunStatus.RUNNING, None, start_time=None).idle_for(T0 + 90) == 90
