"""Storage faults: a full disk, a read-only file, a lock held by another process, a foreign file.

Each gives a clear error at open or at flush, never a hang and never a corruption,
and once the fault is gone everything accepted is written exactly once.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import random
import shutil
import sqlite3
import stat
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from runjournal import (
    DrainTimeout,
    NotARunJournalDatabase,
    RejectedWrites,
    StoreFull,
    StoreLocked,
    StoreReadOnly,
    Tracker,
)
from runjournal.stores import SqliteBackend
from tests.children import watched_child

WORKERS = Path(__file__).parent / "_workers"


async def new_run(path: Path) -> str:
    async with Tracker.open(path) as tracker:
        experiment_id = await tracker.create_experiment("faults")
        return await tracker.create_run(experiment_id)


def query(path: Path, sql: str) -> list[Any]:
    conn = sqlite3.connect(path)
    try:
        return conn.execute(sql).fetchall()
    finally:
        conn.close()


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


# -- a full disk ----------------------------------------------------------------------------


async def test_full_disk_keeps_events_and_writes_them_once_there_is_room(tmp_path: Path) -> None:
    path = tmp_path / "full.db"
    run_id = await new_run(path)
    (pages,) = query(path, "PRAGMA page_count")[0]
    # Room for a few pages more: the first batches may fit, then the "disk" is full.
    store = SqliteBackend(path, pragmas={"max_page_count": pages + 3})
    total = 0
    async with Tracker(store, max_pending=1_000_000) as tracker:
        for _ in range(3):
            # The training loop keeps logging while the disk is full: calls never fail.
            for _ in range(20_000):
                tracker.log_metric_nowait(run_id, "full", total, float(total))
                total += 1
            with pytest.raises(StoreFull, match="full"):
                await tracker.flush()
        stats = tracker.stats()
        assert stats.accepted == total
        assert stats.committed < total
        assert stats.pending == total - stats.committed
        assert stats.rejected == stats.dropped == 0

        store.apply_pragmas({"max_page_count": 1_000_000_000})
        await tracker.flush()  # right away: the writer retries when a flush asks
        stats = tracker.stats()
        assert stats.committed == total
        assert stats.pending == 0
        points = await tracker.get_metrics(run_id, "full")
    # Everything accepted, exactly once, in order.
    assert [p.step for p in points] == list(range(total))
    assert [p.value for p in points] == [float(s) for s in range(total)]
    assert query(path, "SELECT sum(points) FROM metrics") == [(total,)]
    assert query(path, "SELECT count(*) FROM journal") == query(
        path, "SELECT count(DISTINCT source || ':' || seq) FROM journal"
    )
    assert query(path, "PRAGMA integrity_check") == [("ok",)]


async def test_full_disk_at_close_reports_what_is_lost(
    tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "full-close.db"
    run_id = await new_run(path)
    (pages,) = query(path, "PRAGMA page_count")[0]
    store = SqliteBackend(path, pragmas={"max_page_count": pages})

    # Random values: a chunk of them takes about 8 bytes a point, so they need new pages
    # (a constant series compresses into the free space of the pages it has).
    values = [random.Random(step).random() for step in range(5_000)]

    async def log_and_close() -> None:
        async with Tracker(store, drain_timeout=0.3) as tracker:
            for step, value in enumerate(values):
                tracker.log_metric_nowait(run_id, "full", step, value)

    with pytest.raises(DrainTimeout) as info:
        await log_and_close()
    assert info.value.unwritten == 5_000
    err = capfd.readouterr().err
    assert "5000 event(s) could not be written" in err
    assert query(path, "PRAGMA integrity_check") == [("ok",)]


# -- a read-only database -------------------------------------------------------------------


@contextmanager
def read_only(*paths: Path) -> Iterator[None]:
    modes = {p: stat.S_IMODE(p.stat().st_mode) for p in paths}
    try:
        for p in paths:
            p.chmod(0o555 if p.is_dir() else 0o444)
        yield
    finally:
        for p, mode in modes.items():
            p.chmod(mode)


def run_read_only_worker(path: Path, run_id: str) -> dict[str, Any]:
    done = subprocess.run(
        [sys.executable, str(WORKERS / "readonly.py"), "-", str(path), run_id],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    result: dict[str, Any] = json.loads(done.stdout)
    return result


@pytest.mark.parametrize("where", ["file", "directory", "missing"])
async def test_read_only_database_gives_a_clear_error_and_no_hang(
    tmp_path: Path, where: str
) -> None:
    directory = tmp_path / "data"
    directory.mkdir()
    path = directory / "ro.db"
    run_id = await new_run(path)
    if where == "missing":
        path = directory / "missing.db"
    before = digest(directory / "ro.db")
    with read_only(*([directory / "ro.db"] if where == "file" else [directory])):
        outcome = run_read_only_worker(path, run_id)
    assert outcome["error"] == StoreReadOnly.__name__, outcome
    assert outcome["stage"] == ("flush" if where == "file" else "open")
    assert "cannot be written" in outcome["message"]
    assert outcome["close_seconds"] < 20  # the drain gives up after its timeout
    assert digest(directory / "ro.db") == before
    assert not (directory / "missing.db").exists()
    assert query(directory / "ro.db", "PRAGMA integrity_check") == [("ok",)]


# -- a lock held by another process ---------------------------------------------------------


@contextmanager
def lock_holder(path: Path) -> Iterator[subprocess.Popen[str]]:
    with watched_child([str(WORKERS / "hold_lock.py"), str(path)], 120) as holder:
        assert holder.stdout is not None
        assert holder.stdout.readline() == "LOCKED\n"
        yield holder


def release(holder: subprocess.Popen[str]) -> None:
    assert holder.stdin is not None and holder.stdout is not None
    holder.stdin.write("go\n")
    holder.stdin.flush()
    assert holder.stdout.readline() == "RELEASED\n"


async def test_lock_held_longer_than_busy_timeout(tmp_path: Path) -> None:
    path = tmp_path / "locked.db"
    run_id = await new_run(path)
    async with Tracker.open(path, busy_timeout=0.2) as tracker:
        tracker.log_metric_nowait(run_id, "locked", 0, 0.0)
        await tracker.flush()
        with lock_holder(path) as holder:
            for step in range(1, 1_001):
                tracker.log_metric_nowait(run_id, "locked", step, float(step))
            with pytest.raises(StoreLocked, match="locked"):
                await tracker.flush()
            with pytest.raises(StoreLocked):  # still locked: still an error, no hang
                await tracker.flush()
            assert tracker.stats().pending == 1_000
            release(holder)
        await tracker.flush()
        points = await tracker.get_metrics(run_id, "locked")
    assert [p.step for p in points] == list(range(1_001))


async def test_lock_held_through_close_is_reported_in_full(
    tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    """Closing gives up after its drain timeout and counts every unwritten event.

    That includes the batch the writer holds in a write still waiting for the lock.
    """
    path = tmp_path / "locked-close.db"
    run_id = await new_run(path)
    tracker = Tracker.open(path, busy_timeout=60.0, drain_timeout=0.3)
    await tracker.store.open()
    tracker.log_metric_nowait(run_id, "locked", 0, 0.0)
    await tracker.flush()
    with lock_holder(path) as holder:
        for step in range(1, 5_001):
            tracker.log_metric_nowait(run_id, "locked", step, float(step))
        started = time.monotonic()
        with pytest.raises(DrainTimeout) as info:
            await tracker.close()
        took = time.monotonic() - started
        release(holder)
    assert info.value.unwritten == 5_000
    assert "5000 event(s) could not be written" in capfd.readouterr().err
    assert took < 10  # bounded by the drain timeout, not by the 60 s busy timeout


async def test_short_lock_is_absorbed_by_the_busy_timeout(tmp_path: Path) -> None:
    """A lock held for less than the busy timeout never reaches the user."""
    path = tmp_path / "brief.db"
    run_id = await new_run(path)
    async with Tracker.open(path, busy_timeout=30) as tracker:
        tracker.log_metric_nowait(run_id, "brief", 0, 0.0)
        await tracker.flush()
        with lock_holder(path) as holder:
            tracker.log_metric_nowait(run_id, "brief", 1, 1.0)
            timer = threading.Timer(0.5, release, args=(holder,))
            timer.start()
            try:
                await tracker.flush()
            finally:
                timer.join(30)
        points = await tracker.get_metrics(run_id, "brief")
    assert [p.step for p in points] == [0, 1]


# -- not a runjournal database ----------------------------------------------------------------


async def open_it(path: Path) -> None:
    async with Tracker.open(path):
        pass


async def log_nowait_to(path: Path) -> None:
    tracker = Tracker.open(path)
    try:
        tracker.log_metric_nowait("some-run", "k", 0, 1.0)  # the nowait path opens the file too
    finally:
        await tracker.close()


def foreign_sqlite(path: Path, *, wal: bool = False, application_id: int = 0) -> None:
    conn = sqlite3.connect(path)
    try:
        if wal:
            conn.execute("PRAGMA journal_mode=WAL")
        if application_id:
            conn.execute(f"PRAGMA application_id={application_id}")
        conn.execute("CREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT)")
        conn.executemany("INSERT INTO users (name) VALUES (?)", [("ada",), ("bob",)])
        conn.commit()
    finally:
        conn.close()


@pytest.mark.parametrize(
    "kind", ["random-bytes", "text", "sqlite-other-tables", "sqlite-wal-other", "sqlite-app-id"]
)
def test_foreign_file_is_refused_and_left_unchanged(tmp_path: Path, kind: str) -> None:
    path = tmp_path / "foreign.db"
    if kind == "random-bytes":
        path.write_bytes(b"\x00\x01not sqlite" + os.urandom(8192))
    elif kind == "text":
        path.write_text("name,value\nlr,0.1\n" * 200)
    elif kind == "sqlite-other-tables":
        foreign_sqlite(path)
    elif kind == "sqlite-wal-other":
        foreign_sqlite(path, wal=True)
    else:
        foreign_sqlite(path, application_id=0x1234)
    before = digest(path)
    siblings = sorted(p.name for p in tmp_path.iterdir())

    with pytest.raises(NotARunJournalDatabase):
        asyncio.run(open_it(path))
    with pytest.raises(NotARunJournalDatabase):
        asyncio.run(log_nowait_to(path))

    assert digest(path) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == siblings
    if kind.startswith("sqlite"):
        assert query(path, "SELECT name FROM users ORDER BY id") == [("ada",), ("bob",)]
        assert query(path, "PRAGMA integrity_check") == [("ok",)]


def test_newer_schema_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "newer.db"
    asyncio.run(new_run(path))
    conn = sqlite3.connect(path)
    conn.execute("UPDATE meta SET value = '999' WHERE key = 'schema_version'")
    conn.commit()
    conn.close()
    before = digest(path)
    with pytest.raises(NotARunJournalDatabase, match="newer"):
        asyncio.run(open_it(path))
    assert digest(path) == before


async def test_database_copied_elsewhere_keeps_working(tmp_path: Path) -> None:
    """A copy (WAL checkpointed by a clean close) opens and accepts writes: no stale state."""
    path = tmp_path / "a.db"
    run_id = await new_run(path)
    copy = tmp_path / "b.db"
    shutil.copy(path, copy)
    async with Tracker.open(copy) as tracker:
        tracker.log_metric_nowait(run_id, "m", 0, 1.0)
        assert [p.step for p in await tracker.get_metrics(run_id, "m")] == [0]


# -- a store that fails on one event (a bug, not a storage fault) -----------------------------


class PoisonedStore(SqliteBackend):
    """Raises an unexpected error for any batch holding a "poison" metric key."""

    def append(self, entries: Any, blobs: Any = ()) -> Any:
        if any(getattr(entry.event, "key", None) == "poison" for entry in entries):
            raise RuntimeError("a bug while encoding")
        return super().append(entries, blobs)


async def test_an_event_that_cannot_be_written_does_not_take_its_batch_with_it(
    tmp_path: Path,
) -> None:
    path = tmp_path / "poison.db"
    run_id = await new_run(path)
    async with Tracker(PoisonedStore(path), flush_interval=60) as tracker:
        for step in range(100):  # one batch: good points around a bad one
            tracker.log_metric_nowait(run_id, "good", step, 1.0)
            if step == 50:
                tracker.log_metric_nowait(run_id, "poison", step, 1.0)
        with pytest.raises(RejectedWrites, match="a bug while encoding") as info:
            await tracker.flush()
        assert len(info.value.rejections) == 1
        stats = tracker.stats()
        assert (stats.committed, stats.rejected) == (100, 1)
        points = await tracker.get_metrics(run_id, "good")
    assert [p.step for p in points] == list(range(100))
