"""Fire-and-forget logging from real threads, the event loop's own included."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from runjournal import Tracker
from runjournal.events import MetricChunkLogged

WORKERS = Path(__file__).parent / "_workers"
THREADS = 8
PER_THREAD = 10_000


async def new_run(tracker: Tracker) -> str:
    experiment_id = await tracker.create_experiment("threads")
    return await tracker.create_run(experiment_id)


def value_of(thread: int, step: int) -> float:
    return thread * 1_000_000 + step + 0.25


@pytest.mark.parametrize("max_pending", [100_000, 257], ids=["roomy", "backpressure"])
async def test_eight_threads_lose_nothing_and_keep_order(tmp_path: Path, max_pending: int) -> None:
    path = tmp_path / "threads.db"
    errors: list[BaseException] = []
    async with Tracker.open(path, max_pending=max_pending) as tracker:
        run_id = await new_run(tracker)
        start = threading.Barrier(THREADS)

        def produce(thread: int) -> None:
            try:
                start.wait(timeout=30)
                for step in range(PER_THREAD):
                    # Each thread has its own key, and all share one key with distinct steps.
                    tracker.log_metric_nowait(run_id, f"t{thread}", step, value_of(thread, step))
                    tracker.log_metric_nowait(
                        run_id, "shared", thread * PER_THREAD + step, float(thread)
                    )
            except Exception as exc:  # noqa: BLE001 - reported by the assertion below
                errors.append(exc)

        threads = [threading.Thread(target=produce, args=(i,)) for i in range(THREADS)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=120)
        assert not any(t.is_alive() for t in threads), "a producer thread hung"
        assert errors == []
        await tracker.flush()
        stats = tracker.stats()
        total = 2 * THREADS * PER_THREAD
        assert stats.pending == 0
        assert stats.dropped == 0
        assert stats.rejected == 0
        # + the experiment and the run
        assert stats.accepted == stats.committed == total + 2

        # The journal keeps each thread's points in the order that thread logged them.
        per_thread_steps: dict[str, list[int]] = {}
        shared_by_thread: dict[int, list[int]] = {i: [] for i in range(THREADS)}
        for entry in await tracker.store.read_journal():
            event = entry.event
            if not isinstance(event, MetricChunkLogged):
                continue
            if event.key == "shared":
                for point in event.points:
                    shared_by_thread[int(point.value)].append(point.step)
            else:
                per_thread_steps.setdefault(event.key, []).extend(p.step for p in event.points)
        for i in range(THREADS):
            assert per_thread_steps[f"t{i}"] == list(range(PER_THREAD))
            assert shared_by_thread[i] == list(range(i * PER_THREAD, (i + 1) * PER_THREAD))

    # A fresh tracker on the same file sees every point, with its value.
    async with Tracker.open(path) as fresh:
        for i in range(THREADS):
            points = await fresh.get_metrics(run_id, f"t{i}")
            assert [p.step for p in points] == list(range(PER_THREAD))
            assert [p.value for p in points] == [value_of(i, s) for s in range(PER_THREAD)]
        shared = await fresh.get_metrics(run_id, "shared")
        assert [p.step for p in shared] == list(range(THREADS * PER_THREAD))
        assert [p.value for p in shared] == [float(s // PER_THREAD) for s in range(len(shared))]


def test_nowait_from_the_event_loop_thread_with_block_policy_does_not_deadlock(
    tmp_path: Path,
) -> None:
    path = tmp_path / "loop.db"

    async def setup() -> str:
        async with Tracker.open(path) as tracker:
            return await new_run(tracker)

    async def read(run_id: str) -> list[int]:
        async with Tracker.open(path) as fresh:
            return [p.step for p in await fresh.get_metrics(run_id, "loop")]

    run_id = asyncio.run(setup())
    count = 3_000
    # In a child process, so that a deadlock fails this test instead of hanging the suite.
    done = subprocess.run(
        [sys.executable, str(WORKERS / "loop_block.py"), str(path), run_id, str(count)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert done.stderr == ""
    assert done.stdout.split() == ["DONE", str(count)]
    assert asyncio.run(read(run_id)) == list(range(count))


async def test_nowait_from_the_loop_thread_in_process(tmp_path: Path) -> None:
    """The same, in this process: the loop thread blocks in put_blocking; the writer drains."""
    async with Tracker.open(tmp_path / "inproc.db", max_pending=10, on_full="block") as tracker:
        run_id = await new_run(tracker)
        stop = threading.Event()
        watchdog_fired: list[bool] = []

        def watchdog() -> None:
            # If the loop thread deadlocks, close the writer: the blocked call then raises.
            if not stop.wait(60):
                watchdog_fired.append(True)
                tracker._writer.close(timeout=0)

        guard = threading.Thread(target=watchdog, daemon=True)
        guard.start()
        try:
            for step in range(2_000):
                tracker.log_metric_nowait(run_id, "inproc", step, float(step))
        finally:
            stop.set()
            guard.join(timeout=10)
        assert watchdog_fired == []
        points = await tracker.get_metrics(run_id, "inproc")
        assert [p.step for p in points] == list(range(2_000))
