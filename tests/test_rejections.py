"""One bad event never takes its batch-mates down, and rejections are reported once per run.

Errors the store alone can find are told apart in one place (``translate_error``):
transient ones (locked, full, read-only) keep the events and retry, permanent ones
(a value beyond SQLite's length limit, say) reject the event that causes them and
nothing else. These tests lower SQLite's real length limit on the write connection.
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
from pathlib import Path

import pytest

from runjournal import ArtifactNotFound, RejectedWrites, RunStatus, StoreLocked, Tracker
from runjournal.stores import SqliteBackend
from runjournal.stores.base import CHUNK_SIZE
from runjournal.stores.sqlite.errors import translate_error


def lower_length_limit(store: SqliteBackend, limit: int) -> None:
    """Lower ``SQLITE_LIMIT_LENGTH`` on the store's write connection (tests only)."""
    with store._connections.writing() as conn:
        conn.setlimit(sqlite3.SQLITE_LIMIT_LENGTH, limit)


async def started_run(tracker: Tracker) -> str:
    experiment_id = await tracker.create_experiment("limits")
    run_id = await tracker.create_run(experiment_id)
    await tracker.start_run(run_id)
    await tracker.flush()
    return run_id


async def test_an_event_too_big_for_the_store_is_rejected_alone(
    tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    """Points, a params event beyond the length limit, more points, then the run ends.

    Only the store can tell that the params do not fit. That event alone is
    rejected, with the reason, at the next flush; the run ends SUCCESS with every
    point, and nothing is reported lost at exit.
    """
    store = SqliteBackend(tmp_path / "toobig.db")
    async with Tracker(store, flush_interval=60) as tracker:
        run_id = await started_run(tracker)
        lower_length_limit(store, 20_000)
        for step in range(100):
            await tracker.log_metric(run_id, "loss", step, 1.0 / (step + 1))
        await tracker.log_params(run_id, {"vocabulary": "w" * 30_000})
        for step in range(100, 200):
            await tracker.log_metric(run_id, "loss", step, 1.0 / (step + 1))
        await tracker.complete_run(run_id, RunStatus.SUCCESS)
        with pytest.raises(RejectedWrites, match=r"params\.logged.*too large") as info:
            await tracker.flush()
        assert len(info.value.rejections) == 1
        run = await tracker.get_run(run_id)
        points = await tracker.get_metrics(run_id, "loss")
        stats = tracker.stats()
    assert run.status is RunStatus.SUCCESS
    assert run.params == {}
    assert [p.step for p in points] == list(range(200))
    assert stats.rejected == 1
    assert "lost" not in capfd.readouterr().err


async def test_an_artifact_beyond_the_store_length_limit_is_stored_in_chunks(
    tmp_path: Path,
) -> None:
    """SQLite's length limit bounds one chunk, not an artifact."""
    store = SqliteBackend(tmp_path / "artifact.db")
    async with Tracker(store) as tracker:
        run_id = await started_run(tracker)
        lower_length_limit(store, CHUNK_SIZE + 1024)
        data = bytes(range(256)) * (3 * CHUNK_SIZE // 256 + 7)
        digest = await tracker.log_artifact(run_id, "weights", data)
        assert await tracker.get_artifact_data(digest) == data


async def test_an_artifact_refused_at_commit_takes_its_entry_and_nothing_else(
    tmp_path: Path,
) -> None:
    """The limit drops after the call: content and entry are rejected together, never apart."""
    store = SqliteBackend(tmp_path / "late.db")
    async with Tracker(store, flush_interval=60) as tracker:
        run_id = await started_run(tracker)
        await tracker.log_metric(run_id, "loss", 0, 1.0)
        sha256 = await tracker.log_artifact(run_id, "weights", b"\1" * 50_000)
        await tracker.log_artifact(run_id, "notes", b"fine")
        await tracker.log_metric(run_id, "loss", 1, 0.5)
        lower_length_limit(store, 20_000)
        with pytest.raises(RejectedWrites, match=r"artifact\.logged.*too large") as info:
            await tracker.flush()
        assert len(info.value.rejections) == 1
        artifacts = await tracker.list_artifacts(run_id)
        points = await tracker.get_metrics(run_id, "loss")
        with pytest.raises(ArtifactNotFound):
            await tracker.get_artifact_data(sha256)
    assert [a.name for a in artifacts] == ["notes"]
    assert [p.step for p in points] == [0, 1]


def test_errors_are_transient_or_permanent_by_their_sqlite_code(tmp_path: Path) -> None:
    path = tmp_path / "codes.db"
    holder = sqlite3.connect(path, isolation_level=None)
    other = sqlite3.connect(path, isolation_level=None, timeout=0)
    try:
        holder.execute("CREATE TABLE t (k TEXT PRIMARY KEY)")
        holder.execute("INSERT INTO t VALUES ('a')")
        errors: list[sqlite3.Error] = []
        holder.execute("BEGIN IMMEDIATE")
        try:
            other.execute("BEGIN IMMEDIATE")
        except sqlite3.OperationalError as exc:
            errors.append(exc)
        holder.execute("ROLLBACK")
        try:
            other.execute("INSERT INTO t VALUES ('a')")
        except sqlite3.IntegrityError as exc:
            errors.append(exc)
        other.setlimit(sqlite3.SQLITE_LIMIT_LENGTH, 10)
        try:
            other.execute("INSERT INTO t VALUES (?)", ("x" * 11,))
        except sqlite3.DataError as exc:
            errors.append(exc)
    finally:
        holder.close()
        other.close()
    busy, constraint, too_big = (translate_error(exc, str(path)) for exc in errors)
    assert isinstance(busy, StoreLocked)
    assert busy.transient
    assert not constraint.transient
    assert not too_big.transient
    assert "too large" in str(too_big)


async def test_a_run_deleted_by_another_tracker_is_reported_once_with_every_rejection(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "shared.db"
    async with Tracker.open(path, flush_interval=0.01) as mine, Tracker.open(path) as theirs:
        run_id = await started_run(mine)
        await theirs.delete_run(run_id)
        await theirs.flush()
        caplog.set_level(logging.ERROR, logger="runjournal")
        for round_ in range(20):  # twenty batches, each refused
            for i in range(10):
                await mine.log_metric(run_id, "loss", round_ * 10 + i, 1.0)
            await asyncio.sleep(0.03)
        with pytest.raises(RejectedWrites) as info:
            await mine.flush()
        stats = mine.stats()
    rejected_lines = [r for r in caplog.records if "rejected" in r.getMessage()]
    assert len(rejected_lines) == 1
    assert run_id in rejected_lines[0].getMessage()
    assert stats.rejected == 200
    rejections = info.value.rejections
    assert len(rejections) > 1  # one per refused journal entry, none left out
    assert all(what == f"metrics.chunk for {run_id}" for what, _ in rejections)
    assert f"(×{len(rejections)})" in str(info.value)
