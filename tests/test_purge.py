"""``journal.purge`` and ``runjournal purge``: delete hides, purge erases, for every store."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from runjournal import Tracker, journal
from runjournal.errors import ArtifactNotFound, ExperimentNotFound, RunNotFound, StoreError
from runjournal.events import IdsPurged
from runjournal.stores import JournalEntry, SqliteBackend
from runjournal.stores.sqlite import purge as sqlite_purge
from tests.conftest import StoreKind, make_store

WORKERS = Path(__file__).parent / "_workers"


class Logged:
    """Two experiments: ``doomed`` with a run to delete, ``kept`` with one to keep."""

    def __init__(self, experiment: str, doomed: str, kept: str, sha: str, delete_at: int) -> None:
        self.experiment = experiment
        self.doomed = doomed
        self.kept = kept
        self.sha = sha
        self.delete_at = delete_at


async def _log(tracker: Tracker, *, artifact: bytes = b"secret weights") -> Logged:
    experiment = await tracker.create_experiment("exp", {"seed": 1})
    doomed = await tracker.create_run(experiment, name="private")
    await tracker.start_run(doomed)
    await tracker.log_params(doomed, {"token": "hunter2"})
    await tracker.set_tag(doomed, "owner", "alice")
    await tracker.set_span_id(doomed, "span-1")
    sha = await tracker.log_artifact(doomed, "weights.bin", artifact)
    for step in range(10):
        await tracker.log_metric(doomed, "loss", step, 1.0 / (step + 1))
    kept = await tracker.create_run(experiment, name="public")
    await tracker.log_params(kept, {"lr": 0.1})
    for step in range(5):
        await tracker.log_metric(kept, "loss", step, float(step))
    await tracker.flush()
    before_delete = await tracker.store.head()
    await tracker.delete_run(doomed)
    await tracker.flush()
    return Logged(experiment, doomed, kept, sha, before_delete)


def _mentions(entries: list[JournalEntry], ident: str) -> list[object]:
    return [
        e.event
        for e in entries
        if ident in (getattr(e.event, "run_id", None), getattr(e.event, "experiment_id", None))
    ]


@pytest.mark.parametrize("kind", ["sqlite-file", "sqlite-memory", "memory", "postgres"])
async def test_purge_erases_a_deleted_run_and_keeps_its_tombstone(
    kind: StoreKind, tmp_path: Path
) -> None:
    store = make_store(kind, tmp_path)
    async with Tracker(store) as tracker:
        logged = await _log(tracker)
        old_export = tmp_path / "before.rjlog"
        await journal.export_events(store, old_export)
        # Before the purge, the past still holds the deleted run: this is what delete leaves.
        past = await journal.state_at(store, position=logged.delete_at)
        assert (await past.get_run(logged.doomed)).name == "private"
        head_before = await store.head()

        result = await journal.purge(store)

        assert result.runs == [logged.doomed] and result.experiments == []
        assert result.entries >= 8 and result.blobs == 1
        assert result.position == head_before + 1
        entries = await store.read_journal()
        assert _mentions(entries, logged.doomed) == []
        last = entries[-1].event
        assert isinstance(last, IdsPurged) and (last.runs, last.experiments) == (
            [logged.doomed],
            [],
        )
        # The past no longer holds it either, and its artifact content is gone.
        past = await journal.state_at(store, position=logged.delete_at)
        with pytest.raises(RunNotFound):
            await past.get_run(logged.doomed)
        with pytest.raises(ArtifactNotFound):
            await store.get_artifact_data(logged.sha)
        # What was kept is whole.
        assert [p.value for p in await tracker.get_metrics(logged.kept, "loss")] == [
            0.0,
            1.0,
            2.0,
            3.0,
            4.0,
        ]
        assert await tracker.get_params(logged.kept) == {"lr": 0.1}
        assert (await journal.verify(store)).ok
        await journal.rebuild(store)
        assert (await journal.verify(store)).ok
        # A full export no longer carries any of it.
        after_export = tmp_path / "after.rjlog"
        exported = await journal.export_events(store, after_export)
        assert exported.blobs == 0
        assert b"hunter2" not in after_export.read_bytes()
        # The tombstone stays: importing the old export brings nothing back.
        imported = await journal.import_events(store, old_export)
        assert imported.appended == 0
        assert {r.event.split(" for ")[1] for r in imported.sources[0].rejections} >= {
            logged.doomed
        }
        with pytest.raises(RunNotFound):
            await tracker.get_run(logged.doomed)
        assert _mentions(await store.read_journal(), logged.doomed) == []
        # The store still takes writes after the gap in positions, above the purge entry.
        await tracker.log_metric(logged.kept, "loss", 5, 5.0)
        await tracker.flush()
        assert (await store.read_journal())[-1].position == result.position + 1
        # Purging again finds nothing left to erase.
        again = await journal.purge(store)
        assert (again.runs, again.entries, again.position) == ([], 0, None)


@pytest.mark.parametrize("kind", ["sqlite-file", "memory", "postgres"])
async def test_purge_erases_a_deleted_experiment_and_its_runs(
    kind: StoreKind, tmp_path: Path
) -> None:
    store = make_store(kind, tmp_path)
    async with Tracker(store) as tracker:
        logged = await _log(tracker)
        other = await tracker.create_experiment("other")
        await tracker.delete_experiment(logged.experiment)
        await tracker.flush()
        result = await journal.purge(store)
        assert set(result.runs) == {logged.doomed, logged.kept}
        assert result.experiments == [logged.experiment]
        entries = await store.read_journal()
        for ident in (logged.experiment, logged.doomed, logged.kept):
            assert _mentions(entries, ident) == []
        assert [e.id for e in await tracker.list_experiments()] == [other]
        with pytest.raises(ExperimentNotFound):
            await (await journal.state_at(store, position=2)).get_experiment(logged.experiment)
        assert (await journal.verify(store)).ok


async def test_purge_gives_the_space_back(tmp_path: Path) -> None:
    """A deleted run's 20 MB artifact, then its experiment: purge shrinks the file."""
    path = tmp_path / "big.db"
    big = os.urandom(20_000_000)
    async with Tracker.open(path) as tracker:
        logged = await _log(tracker, artifact=big)
        await tracker.delete_experiment(logged.experiment)
        await tracker.flush()
    size = path.stat().st_size
    assert size > len(big)
    result = await journal.purge(path)
    assert result.size_before is not None and result.size_after is not None
    assert result.size_before >= size
    assert result.size_after < 1_000_000 and result.compacted
    assert path.stat().st_size < 1_000_000
    wal_sizes = [os.stat(e).st_size for e in os.scandir(tmp_path) if e.name == "big.db-wal"]
    assert wal_sizes in ([], [0])
    exported = await journal.export_events(path, tmp_path / "all.rjlog")
    assert exported.blobs == 0 and (tmp_path / "all.rjlog").stat().st_size < 10_000


async def test_a_purge_that_fails_midway_changes_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "x.db"
    async with Tracker.open(path) as tracker:
        logged = await _log(tracker)
    store = SqliteBackend(path)
    before = await store.read_journal_raw()

    def broken_refold(*args: object) -> None:
        raise StoreError("disk on fire")  # after the journal rows were deleted, before commit

    monkeypatch.setattr(sqlite_purge, "refold", broken_refold)
    with pytest.raises(StoreError, match="disk on fire"):
        await store.purge()
    monkeypatch.undo()
    assert await store.read_journal_raw() == before
    assert await store.get_artifact_data(logged.sha)
    assert (await journal.verify(store)).ok
    await store.close()
    assert (await journal.purge(path)).runs == [logged.doomed]


async def test_a_purge_killed_in_its_transaction_leaves_the_old_journal(tmp_path: Path) -> None:
    """kill -9 of a purging process, after it deleted the rows and refolded, before commit."""
    path = tmp_path / "x.db"
    async with Tracker.open(path) as tracker:
        logged = await _log(tracker)
    store = SqliteBackend(path)
    before = await store.read_journal_raw()
    await store.close()
    victim = subprocess.Popen(  # noqa: ASYNC220 - killed at a known point, below
        [sys.executable, str(WORKERS / "purge_killed.py"), str(path)],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert victim.stdout is not None
    assert victim.stdout.readline().strip() == "inside"
    victim.kill()
    victim.communicate(timeout=30)
    store = SqliteBackend(path)
    assert await store.read_journal_raw() == before
    assert await store.get_artifact_data(logged.sha)
    assert (await journal.verify(store)).ok
    await store.close()
    assert (await journal.purge(path)).runs == [logged.doomed]


async def test_readers_in_another_process_keep_consistent_answers(tmp_path: Path) -> None:
    path = tmp_path / "x.db"
    async with Tracker.open(path) as tracker:
        logged = await _log(tracker, artifact=os.urandom(2_000_000))
        # Many deleted entries, so that the purge takes a while.
        for _ in range(20):
            run = await tracker.create_run(logged.experiment)
            await tracker.log_metrics(run, {"a": 1.0, "b": 2.0}, 0)
            await tracker.log_artifact(run, "blob", os.urandom(200_000))
            await tracker.delete_run(run)
    reader = subprocess.Popen(  # noqa: ASYNC220 - it runs beside the purge we await
        [sys.executable, str(WORKERS / "purge_reader.py"), str(path), logged.kept, "5", "3"],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert reader.stdout is not None
    assert reader.stdout.readline().strip() == "ready"
    purged = [await journal.purge(path) for _ in range(2)]
    out, _ = reader.communicate(timeout=60)
    report = json.loads(out)
    assert len(purged[0].runs) == 21
    assert report["rounds"] > 10
    assert report["problems"] == []


def test_cli_purge(tmp_path: Path) -> None:
    import asyncio

    path = tmp_path / "x.db"

    async def setup() -> Logged:
        async with Tracker.open(path) as tracker:
            return await _log(tracker)

    logged = asyncio.run(setup())
    env = {**os.environ, "COLUMNS": "200"}
    env.pop("RUNJOURNAL_DB", None)
    done = subprocess.run(
        [sys.executable, "-m", "runjournal.cli", "--db", str(path), "purge", "--format", "json"],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert result["runs"] == [logged.doomed] and result["blobs"] == 1
    help_text = subprocess.run(
        [sys.executable, "-m", "runjournal.cli", "purge", "--help"],
        capture_output=True,
        text=True,
        env=env,
        check=True,
    ).stdout
    assert "--yes" in help_text
