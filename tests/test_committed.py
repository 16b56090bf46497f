"""``Tracker.committed``: wait for one caller's events, and hear only of their rejections.

A server answers many requests through one tracker; each request must learn whether
*its* events were committed, not whether some other request's were.
"""

from __future__ import annotations

import asyncio

import pytest

from runjournal import RejectedWrites, Tracker


async def test_each_caller_hears_only_of_its_own_rejected_events(tracker: Tracker) -> None:
    exp = await tracker.create_experiment("e")
    doomed = await tracker.create_run(exp)
    alive = await tracker.create_run(exp)
    await tracker.flush()
    await tracker.delete_run(doomed)  # queued: points logged to it now are refused at commit

    async def bad() -> str:
        tracker.log_metric_nowait(doomed, "m", 0, 1.0)
        return "bad queued"

    async def good() -> str:
        tracker.log_metric_nowait(alive, "m", 0, 1.0)
        return "good queued"

    outcomes = await asyncio.gather(
        tracker.committed(bad), tracker.committed(good), return_exceptions=True
    )
    assert isinstance(outcomes[0], RejectedWrites)
    assert doomed in str(outcomes[0])
    assert outcomes[1] is None
    await tracker.flush()  # the rejection was told to its caller, not kept for the next flush
    assert [p.value for p in await tracker.get_metrics(alive, "m")] == [1.0]
    assert tracker.stats().rejected == 1


async def test_an_error_of_the_work_wins_and_what_it_queued_is_still_committed(
    tracker: Tracker,
) -> None:
    exp = await tracker.create_experiment("e")
    run_id = await tracker.create_run(exp)

    async def half() -> None:
        tracker.log_metric_nowait(run_id, "m", 0, 1.0)
        raise KeyError("the caller's own failure")

    with pytest.raises(KeyError, match="own failure"):
        await tracker.committed(half)
    assert [p.step for p in await tracker.get_metrics(run_id, "m")] == [0]
