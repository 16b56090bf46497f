"""The durability contract, tested by killing and ending real processes.

- ``kill -9`` at a random moment: the file is never corrupt, everything a completed
  ``flush()`` acknowledged is there, the survivors are a prefix of what was logged,
  and ``rebuild()`` reproduces the projections.
- Every other ending (SIGTERM, SIGINT, an exception, ``sys.exit()``, the end of the
  script, a worker's plain return) drains the queue: with 100,000 events queued
  when it begins, none is lost.
- ``on_full="drop"`` counts and warns; ``stats()`` adds up; a write rejected at
  commit is reported by the next ``flush()`` (or ``close()``).
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import os
import random
import signal
import sqlite3
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from runjournal import (
    DroppedEventsWarning,
    RejectedWrites,
    Tracker,
)
from runjournal.stores import SqliteBackend
from runjournal.stores.sqlite.schema import PROJECTION_TABLES
from tests.children import get_context, watched_child
from tests.snapshot import snapshot

WORKERS = Path(__file__).parent / "_workers"
QUEUED = 100_000  # events still queued when an ending begins (the contract asks for 50,000)


def stress_count(default: int) -> int:
    return int(os.environ.get("RUNJOURNAL_STRESS", default))


async def new_run(path: Path) -> str:
    async with Tracker.open(path) as tracker:
        experiment_id = await tracker.create_experiment("durability")
        return await tracker.create_run(experiment_id)


def integrity(path: Path) -> str:
    conn = sqlite3.connect(path)
    try:
        result: str = conn.execute("PRAGMA integrity_check").fetchone()[0]
        return result
    finally:
        conn.close()


def dump_projections(path: Path) -> dict[str, list[Any]]:
    """Every projection table's rows, in a fixed order."""
    conn = sqlite3.connect(path)
    try:
        return {
            table: conn.execute(f"SELECT * FROM {table} ORDER BY 1, 2").fetchall()
            for table in PROJECTION_TABLES
        }
    finally:
        conn.close()


def journal_seqs(path: Path) -> dict[str, list[int]]:
    conn = sqlite3.connect(path)
    try:
        seqs: dict[str, list[int]] = {}
        for source, seq in conn.execute("SELECT source, seq FROM journal ORDER BY position"):
            seqs.setdefault(source, []).append(seq)
        return seqs
    finally:
        conn.close()


def crash_value(step: int) -> float:  # the same as in _workers/crash_logger.py
    return step * 0.5 + 0.125


# -- kill -9 at a random moment -------------------------------------------------------------


def crash_once(tmp_path: Path, index: int, rng: random.Random) -> tuple[int, int]:
    """One child killed at a random moment; returns (acknowledged step, surviving points)."""
    path = tmp_path / f"crash{index}.db"
    run_id = asyncio.run(new_run(path))
    with watched_child([str(WORKERS / "crash_logger.py"), str(path), run_id], 60) as child:
        assert child.stdout is not None
        assert child.stdout.readline() == "READY\n", "the logger did not start"
        time.sleep(rng.uniform(0.0, 0.6))
        child.send_signal(signal.SIGKILL)
        out, err = child.communicate(timeout=30)
    assert child.returncode == -signal.SIGKILL, err
    acked = max((int(line.split()[1]) for line in out.splitlines() if line), default=-1)
    assert integrity(path) == "ok"
    survivors = asyncio.run(check_survivors(path, run_id, acked))
    assert integrity(path) == "ok"
    return acked, survivors


async def check_survivors(path: Path, run_id: str, acked: int) -> int:
    async with Tracker.open(path) as tracker:
        a = await tracker.get_metrics(run_id, "a")
        b = await tracker.get_metrics(run_id, "b")
        params = await tracker.get_params(run_id)
        # Everything acknowledged by a completed flush survived.
        assert len(a) > acked
        assert len(b) > acked
        # The survivors are a prefix of what was logged: a then b at each step, in order.
        assert [p.step for p in a] == list(range(len(a)))
        assert [p.step for p in b] == list(range(len(b)))
        assert [p.value for p in a] == [crash_value(s) for s in range(len(a))]
        assert [p.value for p in b] == [-crash_value(s) for s in range(len(b))]
        assert len(a) - len(b) in (0, 1)
        if "last" in params:
            assert params["last"] <= len(b) - 1
        # Each source's journal entries are a gapless prefix of its sequence numbers.
        for seqs in journal_seqs(path).values():
            assert seqs == list(range(1, len(seqs) + 1))

        # Folding the journal again gives exactly the same projections.
        before, before_rows = await snapshot(tracker.store), dump_projections(path)
        await tracker.store.rebuild()
        assert dump_projections(path) == before_rows
        assert await snapshot(tracker.store) == before
    return len(a)


def run_crashes(tmp_path: Path, count: int) -> None:
    rng = random.Random(os.environ.get("RUNJOURNAL_SEED", "crash"))
    outcomes = [crash_once(tmp_path, i, rng) for i in range(count)]
    # The kills landed at different moments, some after acknowledged flushes.
    assert len({survivors for _, survivors in outcomes}) > count // 2
    assert any(acked >= 0 for acked, _ in outcomes)


def test_sigkill_at_random_moments(tmp_path: Path) -> None:
    run_crashes(tmp_path, stress_count(20))


@pytest.mark.slow
@pytest.mark.skipif("RUNJOURNAL_STRESS" not in os.environ, reason="set RUNJOURNAL_STRESS")
def test_sigkill_at_random_moments_long(tmp_path: Path) -> None:
    run_crashes(tmp_path, max(stress_count(200), 20))


# -- every other ending drains the queue ----------------------------------------------------

ENDINGS = {
    # mode: (signal the parent sends once the events are queued, expected return code)
    "sigterm": (signal.SIGTERM, -signal.SIGTERM),
    "sigterm-sync": (signal.SIGTERM, -signal.SIGTERM),
    "sigint": (signal.SIGINT, -signal.SIGINT),
    "sigint-sync": (signal.SIGINT, -signal.SIGINT),
    "exception": (None, 1),
    "sys-exit": (None, 3),
    "script-end": (None, 0),
    "script-end-sync": (None, 0),
}


async def read_steps(path: Path, run_id: str, key: str) -> list[tuple[int, float]]:
    async with Tracker.open(path) as fresh:
        return [(p.step, p.value) for p in await fresh.get_metrics(run_id, key)]


@pytest.mark.parametrize("mode", list(ENDINGS))
def test_ending_drains_everything_queued(tmp_path: Path, mode: str) -> None:
    path = tmp_path / "ending.db"
    run_id = asyncio.run(new_run(path))
    send, expected_code = ENDINGS[mode]
    args = [str(WORKERS / "ending.py"), mode, str(path), run_id, str(QUEUED)]
    with watched_child(args, 120) as child:
        assert child.stdout is not None
        line = child.stdout.readline()
        assert line.startswith("PENDING "), line
        assert int(line.split()[1]) >= 50_000
        if send is not None:
            child.send_signal(send)
        _, err = child.communicate(timeout=90)
    assert child.returncode == expected_code, err
    assert "could not be written" not in err
    assert "rejected" not in err
    if mode == "exception":
        assert "RuntimeError: the training loop failed" in err
    assert integrity(path) == "ok"
    assert asyncio.run(read_steps(path, run_id, "end")) == [(s, float(s)) for s in range(QUEUED)]


def worker_returns(tracker: Tracker, run_id: str, count: int, report: Any) -> None:
    """A multiprocessing worker that logs, reports how much is queued, and just returns."""
    for step in range(count):
        tracker.log_metric_nowait(run_id, "worker", step, float(step))
    report.put(tracker.stats().pending)


@pytest.mark.parametrize("context", ["fork", "spawn"])
async def test_worker_plain_return_drains_everything_queued(tmp_path: Path, context: str) -> None:
    path = tmp_path / "worker.db"
    run_id = await new_run(path)
    ctx = get_context(context)
    report = ctx.SimpleQueue()
    options: dict[str, Any] = {
        "max_pending": 1_000_000,
        "batch_size": 1_000_000,
        "flush_interval": 60.0,
    }
    async with Tracker.open(path, **options) as tracker:
        process = ctx.Process(target=worker_returns, args=(tracker, run_id, QUEUED, report))
        process.start()
        process.join(120)
        if process.is_alive():
            process.kill()
            process.join(10)
            pytest.fail("the worker hung")
        assert process.exitcode == 0
        assert report.get() >= 50_000
        points = await tracker.get_metrics(run_id, "worker")
    assert [p.step for p in points] == list(range(QUEUED))


async def test_drain_of_100k_pending_events_fits_the_timeout(tmp_path: Path) -> None:
    path = tmp_path / "drain.db"
    run_id = await new_run(path)
    tracker = Tracker.open(path, max_pending=1_000_000, batch_size=1_000_000, flush_interval=60)
    async with tracker:
        for step in range(QUEUED):
            tracker.log_metric_nowait(run_id, "drain", step, 1.0)
        assert tracker.stats().pending == QUEUED
        started = time.perf_counter()
    drained_in = time.perf_counter() - started
    assert drained_in < 30.0  # drain_timeout; in practice well under a second
    async with Tracker.open(path) as fresh:
        assert len(await fresh.get_metrics(run_id, "drain")) == QUEUED


# -- drops, stats and rejections ------------------------------------------------------------


@contextmanager
def write_lock(path: Path) -> Iterator[None]:
    """Hold the database's write lock from another connection: the writer waits meanwhile."""
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        conn.execute("BEGIN IMMEDIATE")
        yield
        conn.execute("ROLLBACK")
    finally:
        conn.close()


def wait_until(condition: Any, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.005)


async def test_drop_policy_counts_and_warns_once_per_burst(tmp_path: Path) -> None:
    path = tmp_path / "drop.db"
    run_id = await new_run(path)
    capacity = 100
    burst = 1_000
    tracker = Tracker.open(
        path, max_pending=capacity, batch_size=10 * capacity, flush_interval=60, on_full="drop"
    )
    logged: list[int] = []
    async with tracker:
        tracker.log_metric_nowait(run_id, "drop", 0, 0.0)  # learn the run id while unlocked
        logged.append(0)
        await tracker.flush()
        numbers = iter(range(1, 2 * burst + 1))

        def log_burst() -> None:
            for step in itertools.islice(numbers, burst):
                tracker.log_metric_nowait(run_id, "drop", step, float(step))

        for burst_number in (1, 2):
            committed = tracker.stats().committed
            # The writer cannot commit while another connection holds the lock, so the
            # queue stays full for the whole burst.
            with write_lock(path):
                with pytest.warns(DroppedEventsWarning) as record:
                    log_burst()
                stats = tracker.stats()
                # Nothing could be written meanwhile: at most the queue and one batch.
                assert stats.committed == committed
                assert stats.pending <= 2 * capacity
                assert stats.accepted + stats.dropped == 1 + burst * burst_number
                assert stats.accepted == stats.committed + stats.pending + stats.rejected
            assert len([w for w in record if w.category is DroppedEventsWarning]) == 1
            assert "on_full='drop'" in str(record[0].message)
            await tracker.flush()
            stats = tracker.stats()
            assert stats.pending == 0
            assert stats.accepted == stats.committed
            assert stats.dropped >= burst_number * (burst - 2 * capacity)
        points = await tracker.get_metrics(run_id, "drop")
    stats = tracker.stats()
    assert stats.accepted + stats.dropped == 1 + 2 * burst
    # What was accepted is exactly what is stored, in order; what was dropped is not.
    assert len(points) == stats.committed
    steps = [p.step for p in points]
    assert steps == sorted(set(steps))
    assert steps[: capacity + 1] == list(range(capacity + 1))  # the queue had room for these


async def test_stats_add_up(tmp_path: Path) -> None:
    path = tmp_path / "stats.db"
    async with Tracker.open(path) as tracker, Tracker.open(path) as other:
        experiment_id = await tracker.create_experiment("stats")
        run_id = await tracker.create_run(experiment_id)
        doomed = await tracker.create_run(experiment_id)
        for step in range(1_000):
            tracker.log_metric_nowait(run_id, "m", step, 1.0)
        await tracker.flush()
        stats = tracker.stats()
        assert stats == stats.__class__(
            accepted=1_003,
            committed=1_003,
            dropped=0,
            rejected=0,
            pending=0,
            last_commit_events=stats.last_commit_events,
            last_commit_seconds=stats.last_commit_seconds,
        )
        assert 0 < stats.last_commit_events <= 1_003
        assert stats.last_commit_seconds > 0

        await other.delete_run(doomed)
        await other.flush()
        with write_lock(path):
            for step in range(500):
                tracker.log_metric_nowait(doomed, "m", step, 1.0)
                tracker.log_metric_nowait(run_id, "m", 1_000 + step, 1.0)
            # Wait until the writer has taken the batch and is stuck on the lock.
            wait_until(lambda: not tracker._writer.queue and tracker.stats().accepted == 2_003)
            stats = tracker.stats()
            assert stats.committed == 1_003
            assert stats.pending == 1_000
            assert stats.accepted == 2_003
            assert stats.accepted == stats.committed + stats.pending + stats.rejected
        with pytest.raises(RejectedWrites):
            await tracker.flush()
        stats = tracker.stats()
        assert stats.pending == 0
        assert stats.rejected == 500
        assert stats.committed == 1_503
        assert stats.accepted == stats.committed + stats.rejected == 2_003


async def test_write_rejected_at_commit_is_reported_by_the_next_flush(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "rejected.db"
    async with Tracker.open(path) as tracker, Tracker.open(path) as other:
        experiment_id = await tracker.create_experiment("rejected")
        run_id = await tracker.create_run(experiment_id)
        kept = await tracker.create_run(experiment_id)
        tracker.log_metric_nowait(run_id, "m", 0, 1.0)
        await tracker.flush()

        await other.delete_run(run_id)  # another tracker deletes the run in the meantime
        await other.flush()
        # This tracker knows the run, so the calls are accepted; the commit refuses them.
        tracker.log_metric_nowait(run_id, "m", 1, 2.0)
        await tracker.log_param(run_id, "p", 1)
        tracker.log_metric_nowait(kept, "m", 0, 3.0)
        with (
            caplog.at_level(logging.ERROR, logger="runjournal"),
            pytest.raises(RejectedWrites) as info,
        ):
            await tracker.flush()
        rejections = info.value.rejections
        assert len(rejections) == 2
        assert {what.split(" for ")[0] for what, _ in rejections} == {
            "metrics.chunk",
            "params.logged",
        }
        for what, why in rejections:
            assert run_id in what
            assert "was deleted" in why
        # Logged once per run; RejectedWrites above lists both writes.
        assert sum("rejected" in r.getMessage() for r in caplog.records) == 1
        # Reported once; the neighbours in the same batch were written.
        await tracker.flush()
        assert [p.value for p in await tracker.get_metrics(kept, "m")] == [3.0]
        assert tracker.stats().rejected == 2


async def test_write_rejected_at_commit_is_reported_by_close(tmp_path: Path) -> None:
    path = tmp_path / "rejected-close.db"
    run_id = await new_run(path)

    async def never_flushed() -> None:
        async with Tracker.open(path) as tracker, Tracker.open(path) as other:
            tracker.log_metric_nowait(run_id, "m", 0, 1.0)
            await tracker.flush()
            await other.delete_run(run_id)
            await other.flush()
            tracker.log_metric_nowait(run_id, "m", 1, 1.0)

    with pytest.raises(RejectedWrites, match="was deleted"):
        await never_flushed()


def test_rebuild_blocking_matches_async_rebuild(tmp_path: Path) -> None:
    """The blocking rebuild, used by tools, gives the same projections as the async one."""
    path = tmp_path / "rebuild.db"

    async def fill() -> None:
        async with Tracker.open(path) as tracker:
            experiment_id = await tracker.create_experiment("rebuild", {"lr": 0.1})
            run_id = await tracker.create_run(experiment_id, name="r", tags={"t": "1"})
            await tracker.start_run(run_id)
            await tracker.log_params(run_id, {"a": [1, 2.5, None, True], "b": {"c": "d"}})
            for step in range(100):
                tracker.log_metric_nowait(run_id, "m", step, step / 7)
            await tracker.set_tag(run_id, "k", "v")
            await tracker.set_span_id(run_id, "span")
            await tracker.log_artifact(run_id, "blob", b"bytes")
            doomed = await tracker.create_run(experiment_id)
            await tracker.delete_run(doomed)

    asyncio.run(fill())
    before = dump_projections(path)
    assert before["runs"] and before["metrics"] and before["tombstones"]
    backend = SqliteBackend(path)
    try:
        backend.rebuild_blocking()
    finally:
        backend.close_blocking()
    assert dump_projections(path) == before
    assert integrity(path) == "ok"
