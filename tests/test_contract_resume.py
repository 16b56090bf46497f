"""Contract: resuming an ended run (``resume_run``), on every store.

An ended run (SUCCESS, FAILED or CANCELLED) becomes RUNNING again through one
``run.resumed`` journal entry: its end time is cleared, its start time kept, and
the journal keeps every earlier completion, so a rebuild folds the same history.
"""

from __future__ import annotations

import time

import pytest

from runjournal import InvalidStateError, RejectedWrites, RunNotFound, RunStatus, Tracker
from runjournal.events import RunCompleted, RunResumed
from runjournal.journal import verify


async def _ended(tracker: Tracker, status: RunStatus) -> str:
    run_id = await tracker.create_run(await tracker.create_experiment("e"))
    await tracker.start_run(run_id)
    await tracker.complete_run(run_id, status)
    return run_id


@pytest.mark.parametrize("status", [RunStatus.SUCCESS, RunStatus.FAILED, RunStatus.CANCELLED])
async def test_every_ended_run_can_be_resumed(tracker: Tracker, status: RunStatus) -> None:
    run_id = await _ended(tracker, status)
    ended = await tracker.get_run(run_id)
    assert ended.end_time is not None
    before = time.time()
    await tracker.resume_run(run_id)
    resumed = await tracker.get_run(run_id)
    assert resumed.status is RunStatus.RUNNING
    assert resumed.end_time is None
    assert resumed.start_time == ended.start_time  # the first start is kept
    assert resumed.last_activity is not None and resumed.last_activity >= before


async def test_a_resumed_run_logs_and_ends_again_with_a_new_end_time(tracker: Tracker) -> None:
    run_id = await _ended(tracker, RunStatus.FAILED)
    first_end = (await tracker.get_run(run_id)).end_time
    assert first_end is not None
    await tracker.resume_run(run_id)
    await tracker.log_metric(run_id, "loss", 10, 0.5)
    await tracker.complete_run(run_id, RunStatus.SUCCESS)
    run = await tracker.get_run(run_id)
    assert run.status is RunStatus.SUCCESS
    assert run.end_time is not None and run.end_time >= first_end
    assert [p.step for p in await tracker.get_metrics(run_id, "loss")] == [10]


async def test_the_journal_keeps_the_whole_status_history(tracker: Tracker) -> None:
    run_id = await _ended(tracker, RunStatus.CANCELLED)
    await tracker.resume_run(run_id)
    await tracker.complete_run(run_id, RunStatus.SUCCESS)
    await tracker.flush()
    history = [
        e.event
        for e in await tracker.store.read_journal()
        if isinstance(e.event, RunCompleted | RunResumed) and e.event.run_id == run_id
    ]
    assert [type(e).__name__ for e in history] == ["RunCompleted", "RunResumed", "RunCompleted"]
    assert [getattr(e, "status", None) for e in history] == [
        RunStatus.CANCELLED,
        None,
        RunStatus.SUCCESS,
    ]
    report = await verify(tracker.store)
    assert report.ok, report.differences


@pytest.mark.parametrize("start", ["pending", "running"])
async def test_only_an_ended_run_can_be_resumed(tracker: Tracker, start: str) -> None:
    run_id = await tracker.create_run(await tracker.create_experiment("e"))
    if start == "running":
        await tracker.start_run(run_id)
    with pytest.raises(InvalidStateError, match="only a run that ended"):
        await tracker.resume_run(run_id)
    expected = RunStatus.PENDING if start == "pending" else RunStatus.RUNNING
    assert await tracker.get_run_status(run_id) is expected


async def test_start_run_still_refuses_an_ended_run(tracker: Tracker) -> None:
    run_id = await _ended(tracker, RunStatus.SUCCESS)
    with pytest.raises(InvalidStateError, match="only a PENDING run can be started"):
        await tracker.start_run(run_id)
    assert await tracker.get_run_status(run_id) is RunStatus.SUCCESS


async def test_resuming_an_unknown_or_deleted_run_is_not_found(tracker: Tracker) -> None:
    with pytest.raises(RunNotFound):
        await tracker.resume_run("01ZZZZZZZZZZZZZZZZZZZZZZZZ")
    run_id = await _ended(tracker, RunStatus.SUCCESS)
    await tracker.delete_run(run_id)
    with pytest.raises(RunNotFound):
        await tracker.resume_run(run_id)


async def test_a_resume_that_no_longer_applies_is_rejected_alone(tracker: Tracker) -> None:
    """Two resumes of one run accepted before either commits: the second is rejected at commit."""
    run_id = await _ended(tracker, RunStatus.FAILED)
    await tracker.resume_run(run_id)
    # Bypass the call's own check: the journal's fold is the last word.
    await tracker._put(RunResumed(run_id, time.time()))
    await tracker.log_metric(run_id, "loss", 0, 1.0)
    with pytest.raises(RejectedWrites, match="only a run that ended"):
        await tracker.flush()
    assert await tracker.get_run_status(run_id) is RunStatus.RUNNING
    assert len(await tracker.get_metrics(run_id, "loss")) == 1


async def test_lifecycle_calls_take_the_time_it_happened(tracker: Tracker) -> None:
    """For importers and the MLflow face: a run keeps the times it came with."""
    exp = await tracker.create_experiment("imported")
    run_id = await tracker.create_run(exp, at=1_700_000_000.5)
    await tracker.start_run(run_id, at=1_700_000_001.25)
    await tracker.complete_run(run_id, "FAILED", at=1_700_000_100.125)
    run = await tracker.get_run(run_id)
    assert (run.created_at, run.start_time, run.end_time) == (
        1_700_000_000.5,
        1_700_000_001.25,
        1_700_000_100.125,
    )
    with pytest.raises(ValueError, match="finite"):
        await tracker.create_run(exp, at=float("nan"))
    with pytest.raises(TypeError, match="timestamp"):
        await tracker.start_run(run_id, at="yesterday")  # type: ignore[arg-type]
