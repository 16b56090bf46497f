"""Logging from many processes: separate writers on one file, forked and spawned workers."""

from __future__ import annotations

import asyncio
import multiprocessing
import pickle
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from runjournal import Tracker
from runjournal.stores import SqliteBackend
from tests.children import get_context

WORKERS = Path(__file__).parent / "_workers"


async def new_run(tracker: Tracker, name: str = "processes") -> str:
    experiment_id = await tracker.create_experiment(name)
    return await tracker.create_run(experiment_id)


# -- the bodies of multiprocessing children (module level, so that spawn can import them) --


def child_logs(tracker: Tracker, run_id: str, key: str, count: int) -> None:
    """Log through a tracker received from the parent, and return normally."""
    for step in range(count):
        tracker.log_metric_nowait(run_id, key, step, step * 0.5)
    tracker.log_metrics_nowait(run_id, {f"{key}.a": 1.0, f"{key}.b": 2.0}, count)
    tracker.log_param_nowait(run_id, f"{key}.param", "from the child")
    tracker.log_params_nowait(run_id, {f"{key}.nested": {"x": [1, 2.5, True, None]}})


def child_logs_then_reports(tracker: Tracker, run_id: str, key: str, count: int) -> None:
    child_logs(tracker, run_id, key, count)
    # A child that was forked while the parent wrote must still get its own writer going.
    tracker.flush_blocking()


def run_child(
    context: str, target: Callable[..., None], *args: object, timeout: float = 120
) -> int:
    process = get_context(context).Process(target=target, args=args)
    process.start()
    process.join(timeout)
    if process.is_alive():
        process.kill()
        process.join(10)
        pytest.fail(f"the {context} child hung")
    assert process.exitcode is not None
    return process.exitcode


async def check_child_points(tracker: Tracker, run_id: str, key: str, count: int) -> None:
    points = await tracker.get_metrics(run_id, key)
    assert [p.step for p in points] == list(range(count))
    assert [p.value for p in points] == [s * 0.5 for s in range(count)]
    assert [p.value for p in await tracker.get_metrics(run_id, f"{key}.a")] == [1.0]
    assert [p.step for p in await tracker.get_metrics(run_id, f"{key}.b")] == [count]
    params = await tracker.get_params(run_id)
    assert params[f"{key}.param"] == "from the child"
    assert params[f"{key}.nested"] == {"x": [1, 2.5, True, None]}
    assert type(params[f"{key}.nested"]["x"][2]) is bool


# -- many processes, one file -------------------------------------------------------------------


def test_four_processes_write_one_file_at_once(tmp_path: Path) -> None:
    path = tmp_path / "shared.db"
    per_process = 50_000

    async def setup() -> list[str]:
        async with Tracker.open(path) as tracker:
            return [await new_run(tracker, f"p{i}") for i in range(4)]

    async def read_all() -> list[list[tuple[int, float]]]:
        async with Tracker.open(path) as fresh:
            return [
                [(p.step, p.value) for p in await fresh.get_metrics(run_id, f"proc{i}")]
                for i, run_id in enumerate(run_ids)
            ]

    run_ids = asyncio.run(setup())
    children = [
        subprocess.Popen(
            [
                sys.executable,
                str(WORKERS / "many_writers.py"),
                str(path),
                run_ids[i],
                f"proc{i}",
                str(per_process),
            ],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for i in range(4)
    ]
    try:
        # A barrier on pipes, not on time: every child has opened the database (it says
        # READY) before any of them is told to start.
        for child in children:
            assert child.stdout is not None
            if child.stdout.readline() != "READY\n":
                pytest.fail(f"a writer did not start: {child.communicate(timeout=60)[1]}")
        for child in children:
            assert child.stdin is not None
            child.stdin.write("go\n")
            child.stdin.flush()
        outputs = [child.communicate(timeout=180) for child in children]
    finally:
        for child in children:
            if child.poll() is None:
                child.kill()
                child.wait()
    for child, (out, err) in zip(children, outputs, strict=True):
        assert err == "", err  # no "database is locked", no warning, nothing
        assert child.returncode == 0
        assert out.split() == ["DONE", str(per_process)]
    expected = [(s, float(s)) for s in range(per_process)]
    assert asyncio.run(read_all()) == [expected] * 4


# -- forked and spawned workers ---------------------------------------------------------------


@pytest.mark.parametrize("context", ["fork", "spawn"])
async def test_worker_needs_no_async_with_and_loses_nothing(tmp_path: Path, context: str) -> None:
    count = 20_000
    async with Tracker.open(tmp_path / f"{context}.db") as tracker:
        run_id = await new_run(tracker)
        tracker.log_metric_nowait(run_id, "parent", 0, 1.0)
        await tracker.flush()  # a spawned child finds the run in the file
        code = run_child(context, child_logs, tracker, run_id, "child", count)
        assert code == 0
        await check_child_points(tracker, run_id, "child", count)
        # The parent's tracker is unaffected by what the child did.
        tracker.log_metric_nowait(run_id, "parent", 1, 2.0)
        assert [p.step for p in await tracker.get_metrics(run_id, "parent")] == [0, 1]


async def test_several_forked_children_at_once(tmp_path: Path) -> None:
    count = 10_000
    ctx = multiprocessing.get_context("fork")
    async with Tracker.open(tmp_path / "forks.db") as tracker:
        run_id = await new_run(tracker)
        args = [(tracker, run_id, f"w{i}", count) for i in range(4)]
        processes = [ctx.Process(target=child_logs, args=a) for a in args]
        for process in processes:
            process.start()
        for process in processes:
            process.join(120)
        hung = [p for p in processes if p.is_alive()]
        for process in hung:
            process.kill()
            process.join(10)
        assert hung == []
        assert [p.exitcode for p in processes] == [0] * 4
        for i in range(4):
            await check_child_points(tracker, run_id, f"w{i}", count)


def read_constantly(path: Path, run_id: str, stop: threading.Event, reads: list[int]) -> None:
    """Query the file through a second tracker on its own event loop, until told to stop."""

    async def main() -> None:
        async with Tracker.open(path) as reader:
            while not stop.is_set():
                await reader.get_metrics(run_id, "parent")
                reads.append(1)

    asyncio.run(main())


def fork_loggers_while(
    busy: list[threading.Thread],
    stop: threading.Event,
    tracker: Tracker,
    run_id: str,
    prefix: str,
    forks: int,
    count: int,
) -> list[int]:
    """Fork ``forks`` children in turn, each logging ``count`` points, while ``busy`` runs.

    The threads are started first, and told to ``stop`` and joined at the end.
    Returns the children's exit codes.
    """
    for thread in busy:
        thread.start()
    try:
        return [
            run_child(
                "fork", child_logs_then_reports, tracker, run_id, f"{prefix}{i}", count, timeout=60
            )
            for i in range(forks)
        ]
    finally:
        stop.set()
        for thread in busy:
            thread.join(30)


async def test_fork_while_the_parent_reads_and_writes(tmp_path: Path) -> None:
    """Children forked while the parent's threads are inside SQLite still work (no hang).

    SQLite's locks and lock bookkeeping are per-process memory, so a child forked in
    the middle of a write or a read would inherit them held.
    """
    count = 2_000
    forks = 12
    path = tmp_path / "busy.db"
    async with Tracker.open(path, flush_interval=0.001) as tracker:
        run_id = await new_run(tracker)
        await tracker.flush()
        stop = threading.Event()
        reads: list[int] = []

        def parent_logs() -> None:
            step = 0
            while not stop.is_set():
                tracker.log_metric_nowait(run_id, "parent", step, 0.0)
                step += 1
                if step % 200 == 0:
                    time.sleep(0.0005)  # let the writer commit often: forks land mid-commit

        busy = [
            threading.Thread(target=parent_logs),
            threading.Thread(target=read_constantly, args=(path, run_id, stop, reads)),
        ]
        codes = fork_loggers_while(busy, stop, tracker, run_id, "f", forks, count)
        assert codes == [0] * forks
        assert reads, "the reader never read: the test did not test reads during fork"
        for i in range(forks):
            await check_child_points(tracker, run_id, f"f{i}", count)
        parent = await tracker.get_metrics(run_id, "parent")
        assert [p.step for p in parent] == list(range(len(parent)))


async def test_spawned_child_gets_a_handle_to_the_same_file(tmp_path: Path) -> None:
    path = tmp_path / "handle.db"
    tracker = Tracker.open(
        path, durability="full", busy_timeout=1.5, max_pending=1234, drain_timeout=7.0
    )
    async with tracker:
        clone = pickle.loads(pickle.dumps(tracker))
        try:
            assert isinstance(clone, Tracker)
            assert clone is not tracker
            assert isinstance(clone.store, SqliteBackend)
            assert Path(clone.store.path) == path
            assert clone.store.durability == "full"
            assert clone.store.busy_timeout == 1.5
            assert clone._writer.max_pending == 1234
            assert clone._writer.drain_timeout == 7.0
        finally:
            await clone.close()


async def test_in_memory_tracker_refuses_pickling() -> None:
    async with Tracker.open_in_memory() as tracker:
        with pytest.raises(TypeError, match="cannot be sent"):
            pickle.dumps(tracker)
        ctx = multiprocessing.get_context("spawn")
        process = ctx.Process(target=child_logs, args=(tracker, "x", "k", 1))
        with pytest.raises(TypeError):
            process.start()
    async with Tracker.open(":memory:") as memory_file:
        with pytest.raises(TypeError):
            pickle.dumps(memory_file)
