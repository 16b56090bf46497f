"""Forking while other threads open, use and close stores: the child never inherits a held lock."""

from __future__ import annotations

import asyncio
import os
import threading
import time
from pathlib import Path

from runjournal import Tracker, _forks
from runjournal.stores import SqliteBackend
from tests.test_processes import check_child_points, fork_loggers_while, new_run


class SlowToFork:
    """A fork participant that takes its time, so that other threads act during the fork."""

    def __init__(self) -> None:
        self.forking = threading.Event()
        self.forked = threading.Event()

    def before_fork(self) -> None:
        self.forking.set()
        time.sleep(0.3)

    def after_fork_in_parent(self) -> None:
        self.forked.set()

    def after_fork_in_child(self) -> None:
        return None


def test_a_store_created_during_a_fork_joins_after_it(tmp_path: Path) -> None:
    """Registering waits for a fork in progress: no store is half-covered by one."""
    slow = SlowToFork()
    _forks.register(slow, _forks.Stage.COMMIT)
    seen: list[bool] = []

    def create_during_the_fork() -> None:
        slow.forking.wait(10)
        SqliteBackend(tmp_path / "late.db")
        seen.append(slow.forked.is_set())

    creator = threading.Thread(target=create_during_the_fork)
    creator.start()
    pid = os.fork()
    if pid == 0:
        os._exit(0)
    creator.join(10)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    # Created while the fork was in its hooks, the store only registered once it was over.
    assert seen == [True]


def open_and_close_constantly(path: Path, stop: threading.Event, opened: list[int]) -> None:
    """Open a fresh tracker on ``path``, read through it and close it, until told to stop."""

    async def main() -> None:
        while not stop.is_set():
            async with Tracker.open(path) as tracker:
                await tracker.list_experiments()
            opened.append(1)

    asyncio.run(main())


async def test_fork_while_other_threads_open_and_close_stores(tmp_path: Path) -> None:
    """Stores opened and closed on other threads during forks never leave a child hung.

    Each opening and closing enters SQLite (``sqlite3_open``, the schema check, the
    reader's connection, ``sqlite3_close``); a fork in the middle of one used to leave
    the child waiting forever on SQLite's allocator mutex.
    """
    path = tmp_path / "churn.db"
    forks = 25
    count = 500
    async with Tracker.open(path) as tracker:
        run_id = await new_run(tracker)
        await tracker.flush()
        stop = threading.Event()
        opened: list[int] = []
        churn = [
            threading.Thread(target=open_and_close_constantly, args=(path, stop, opened))
            for _ in range(2)
        ]
        codes = fork_loggers_while(churn, stop, tracker, run_id, "c", forks, count)
        assert codes == [0] * forks
        # About 60 here; fewer would still cross the forks, but none would test nothing.
        assert len(opened) >= 10, "the other threads hardly opened anything during the forks"
        for i in range(forks):
            await check_child_points(tracker, run_id, f"c{i}", count)
