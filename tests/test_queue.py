"""The writer's bounded queue (runjournal.writer.EventQueue): room, backpressure and closing.

These drive the queue by hand, standing in for the writer thread with :meth:`take`,
so every wait below ends because of a signal, never because time passed.
"""

from __future__ import annotations

import threading
from pathlib import Path

import anyio
import pytest

from runjournal import RunJournalError, Tracker
from runjournal.events import RunStarted
from runjournal.writer import EventQueue, QueueItem

JOIN = 30.0  # only a bound on a hang: every wait here ends on a signal


def item(i: int) -> RunStarted:
    return RunStarted(f"run-{i}", float(i))


def full_queue(capacity: int = 3, batch_size: int = 100) -> EventQueue:
    queue = EventQueue(capacity, batch_size)
    for i in range(capacity):
        assert queue.offer(item(i))
    return queue


def take(queue: EventQueue, limit: int) -> list[QueueItem]:
    taken: list[QueueItem] = []
    queue.take(taken, limit)  # type: ignore[arg-type]  # no markers here
    return taken


def start(target: object) -> tuple[threading.Thread, list[BaseException | None]]:
    """Run ``target`` in a thread; the list receives what it raised (or None)."""
    outcome: list[BaseException | None] = []

    def run() -> None:
        try:
            target()  # type: ignore[operator]
        except BaseException as exc:  # noqa: BLE001 - handed to the test
            outcome.append(exc)
        else:
            outcome.append(None)

    thread = threading.Thread(target=run, daemon=True)  # a failing test must not hang exit
    thread.start()
    return thread, outcome


def test_offer_accepts_up_to_the_capacity_then_refuses() -> None:
    queue = full_queue(3)
    assert not queue.offer(item(3))
    assert len(queue) == 3
    assert take(queue, 2) == [item(0), item(1)]
    assert queue.offer(item(3))
    assert take(queue, 10) == [item(2), item(3)]


def test_a_blocked_producer_gets_in_once_the_writer_takes_a_batch() -> None:
    queue = full_queue(3)
    thread, outcome = start(lambda: queue.put_blocking(item(3)))
    # Wait until the producer waits for room, which also wakes the writer.
    assert queue.wait_for_work(JOIN)
    assert thread.is_alive()
    assert take(queue, 1) == [item(0)]
    thread.join(JOIN)
    assert outcome == [None]
    assert take(queue, 10) == [item(1), item(2), item(3)]


def test_reaching_the_batch_size_wakes_the_writer() -> None:
    queue = EventQueue(100, batch_size=5)
    for i in range(4):
        queue.offer(item(i))
    assert not queue.wait_for_work(0)
    queue.offer(item(4))
    assert queue.wait_for_work(JOIN)


def test_closing_wakes_every_blocked_producer_and_they_raise() -> None:
    queue = full_queue(2)
    started = [start(lambda i=i: queue.put_blocking(item(10 + i))) for i in range(3)]
    assert queue.wait_for_work(JOIN)  # at least one producer is waiting
    queue.close()
    for thread, outcome in started:
        thread.join(JOIN)
        assert not thread.is_alive()
        (error,) = outcome
        assert isinstance(error, RunJournalError)
        assert "closed" in str(error)
    assert not queue.offer(item(99))


async def test_an_awaiting_producer_leaves_the_event_loop_free() -> None:
    queue = full_queue(1)
    # Were the producer to block the loop's thread, nothing below could run: closing the
    # queue from another thread then ends the test with the producer's error, not a hang.
    watchdog = threading.Timer(JOIN, queue.close)
    watchdog.start()
    try:
        async with anyio.create_task_group() as tg:
            tg.start_soon(queue.put, item(1))
            # This task runs while the producer waits for room.
            assert await anyio.to_thread.run_sync(queue.wait_for_work, JOIN)
            assert take(queue, 1) == [item(0)]
    finally:
        watchdog.cancel()
    assert take(queue, 10) == [item(1)]


async def test_closing_wakes_an_awaiting_producer_and_it_raises() -> None:
    queue = full_queue(1)
    raised: list[bool] = []

    async def producer() -> None:
        with pytest.raises(RunJournalError, match="closed"):
            await queue.put(item(1))
        raised.append(True)

    async with anyio.create_task_group() as tg:
        tg.start_soon(producer)
        assert await anyio.to_thread.run_sync(queue.wait_for_work, JOIN)
        queue.close()
    assert raised == [True]


async def test_cancelling_an_awaiting_producer_enqueues_nothing() -> None:
    queue = full_queue(1)
    with anyio.CancelScope() as scope:
        async with anyio.create_task_group() as tg:
            tg.start_soon(queue.put, item(1))
            assert await anyio.to_thread.run_sync(queue.wait_for_work, JOIN)
            scope.cancel()
    assert scope.cancelled_caught
    assert take(queue, 10) == [item(0)]  # the room also ends the abandoned wait
    assert len(queue) == 0


def test_a_forked_child_starts_with_an_empty_open_queue() -> None:
    queue = full_queue(2)
    queue.after_fork_in_child()
    assert len(queue) == 0
    assert queue.offer(item(5))
    closed = full_queue(2)
    closed.close()
    closed.after_fork_in_child()
    assert not closed.offer(item(5))


async def test_a_tracker_under_backpressure_loses_nothing() -> None:
    """Far more points than the queue holds, from the loop and a thread at once."""
    async with Tracker.open_in_memory(max_pending=7, batch_size=3) as tracker:
        run_id = await tracker.create_run(await tracker.create_experiment("queue"))

        def from_a_thread() -> None:
            for step in range(2_000):
                tracker.log_metric_nowait(run_id, "thread", step, 1.0)

        async with anyio.create_task_group() as tg:
            tg.start_soon(anyio.to_thread.run_sync, from_a_thread)
            for step in range(2_000):
                await tracker.log_metric(run_id, "loop", step, 1.0)
        await tracker.flush()
        for key in ("loop", "thread"):
            points = await tracker.get_metrics(run_id, key)
            assert [p.step for p in points] == list(range(2_000))
        assert tracker.stats().dropped == 0


def test_stats_count_every_event_while_the_writer_holds_a_batch(tmp_path: Path) -> None:
    """An event the writer has taken off the queue but not yet encoded is still accepted:
    ``stats().accepted`` never falls behind what producers were told was queued."""
    logged = 0  # events whose log call has returned, read by the polling thread
    done = threading.Event()

    async def main() -> list[str]:
        nonlocal logged
        problems: list[str] = []
        async with Tracker.open(tmp_path / "stats.db", batch_size=500) as tracker:
            run_id = await tracker.create_run(await tracker.create_experiment("stats"))
            await tracker.flush()
            base = tracker.stats().accepted

            def poll() -> None:
                while not done.is_set():
                    before = logged
                    accepted = tracker.stats().accepted - base
                    if accepted < before:
                        problems.append(f"accepted {accepted} < {before} logged")

            poller = threading.Thread(target=poll)
            poller.start()
            try:
                for step in range(20_000):
                    tracker.log_metric_nowait(run_id, "m", step, step * 0.5)
                    logged += 1
                await tracker.flush()
            finally:
                done.set()
                poller.join(JOIN)
            stats = tracker.stats()
            assert stats.accepted - base == 20_000 == stats.committed - base
        return problems

    assert anyio.run(main) == []
