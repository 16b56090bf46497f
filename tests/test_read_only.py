"""The read-only open: ``Tracker.open(path, read_only=True)``, the journal readers and the CLI.

It never writes, never creates the file and never switches the journal mode;
it reads a database that another process is writing, and one in a directory
the user cannot write. Root ignores file modes, so those tests run the reader
as ``nobody``.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from runjournal import Tracker, journal
from runjournal.errors import NotARunJournalDatabase, StoreReadOnly
from runjournal.stores import SqliteBackend

WORKERS = Path(__file__).parent / "_workers"
_ENV = {**os.environ, "COLUMNS": "200"}
_ENV.pop("RUNJOURNAL_DB", None)


async def _make(path: Path) -> tuple[str, str]:
    async with Tracker.open(path) as tracker:
        experiment = await tracker.create_experiment("exp")
        run = await tracker.create_run(experiment)
        await tracker.log_metric(run, "loss", 0, 0.5)
    return experiment, run


def _files(folder: Path) -> dict[str, tuple[int, int]]:
    return {p.name: (p.stat().st_size, p.stat().st_mtime_ns) for p in folder.iterdir()}


async def test_a_missing_file_is_not_created(tmp_path: Path) -> None:
    path = tmp_path / "missing.db"
    with pytest.raises(FileNotFoundError):
        Tracker.open(path, read_only=True)
    with pytest.raises(FileNotFoundError):
        SqliteBackend(path, read_only=True)
    with pytest.raises(FileNotFoundError):
        await journal.verify(path)
    assert os.listdir(tmp_path) == []


async def test_reads_work_and_every_write_raises_at_the_call(tmp_path: Path) -> None:
    path = tmp_path / "x.db"
    experiment, run = await _make(path)
    before = _files(tmp_path)
    async with Tracker.open(path, read_only=True) as tracker:
        assert tracker.store.read_only
        assert [e.id for e in await tracker.list_experiments()] == [experiment]
        assert [p.value for p in await tracker.get_metrics(run, "loss")] == [0.5]
        with pytest.raises(StoreReadOnly, match="read-only"):
            await tracker.log_metric(run, "loss", 1, 1.0)
        with pytest.raises(StoreReadOnly):
            tracker.log_metric_nowait(run, "loss", 1, 1.0)
        with pytest.raises(StoreReadOnly):
            await tracker.create_experiment("new")
        with pytest.raises(StoreReadOnly):
            await tracker.log_params(run, {"a": 1})
        with pytest.raises(StoreReadOnly):
            await tracker.complete_run(run, "CANCELLED")  # a PENDING run may be cancelled
        with pytest.raises(StoreReadOnly):
            await tracker.store.rebuild()
        with pytest.raises(StoreReadOnly):
            await tracker.store.purge()
    # The database file is untouched. (In a writable folder, SQLite's WAL reader may leave
    # an empty -wal and the -shm index beside it, as any SQLite reader does.)
    assert _files(tmp_path)["x.db"] == before["x.db"]
    wal = tmp_path / "x.db-wal"
    assert not wal.exists() or wal.stat().st_size == 0


async def test_the_journal_mode_is_never_switched(tmp_path: Path) -> None:
    path = tmp_path / "x.db"
    await _make(path)
    with sqlite3.connect(path) as conn:
        conn.execute("PRAGMA journal_mode=DELETE")
    async with Tracker.open(path, read_only=True) as tracker:
        assert len(await tracker.list_experiments()) == 1
    assert (await journal.verify(path)).ok
    await journal.export_events(path, tmp_path / "out.rjlog")
    with sqlite3.connect(path) as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "delete"


async def test_an_empty_or_foreign_file_is_refused_and_left_alone(tmp_path: Path) -> None:
    empty = tmp_path / "empty.db"
    sqlite3.connect(empty).close()
    foreign = tmp_path / "foreign.db"
    with sqlite3.connect(foreign) as conn:
        conn.execute("CREATE TABLE t (x)")
    before = _files(tmp_path)
    for path in (empty, foreign):
        with pytest.raises(NotARunJournalDatabase):
            async with Tracker.open(path, read_only=True) as tracker:
                await tracker.list_experiments()
    assert _files(tmp_path) == before


async def test_sees_the_commits_of_a_process_that_is_writing(tmp_path: Path) -> None:
    path = tmp_path / "live.db"
    writer = subprocess.Popen(  # noqa: ASYNC220 - a writer beside the reader under test
        [sys.executable, str(WORKERS / "slow_writer.py"), str(path)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert writer.stdin is not None and writer.stdout is not None
    try:
        run = writer.stdout.readline().strip()
        async with Tracker.open(path, read_only=True) as tracker:
            assert len(await tracker.get_metrics(run, "loss")) == 1
            for count in (2, 3):
                writer.stdin.write("\n")
                writer.stdin.flush()
                assert writer.stdout.readline().strip() == f"committed {count}"
                assert len(await tracker.get_metrics(run, "loss")) == count
    finally:
        writer.communicate(timeout=30)
    assert writer.returncode == 0


# -- as a user who cannot write the directory --------------------------------------------------
_API = """
import asyncio, sys
from runjournal import Tracker, StoreReadOnly
async def main():
    async with Tracker.open(sys.argv[1], read_only=True) as t:
        [e] = await t.list_experiments()
        [r] = await t.list_runs(e.id)
        print(len(await t.get_metrics(r.id, "loss")))
        try:
            await t.create_experiment("x")
        except StoreReadOnly:
            print("refused")
asyncio.run(main())
"""


@pytest.fixture
def locked_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A database in a folder that ``nobody`` can read but not write, itself readable."""
    if os.geteuid() != 0 or shutil.which("setpriv") is None:
        pytest.skip("needs root, to run the reader as nobody")
    base = tmp_path_factory.mktemp("locked")
    folder = base / "db"
    folder.mkdir()
    asyncio.run(_make(folder / "x.db"))
    _reachable(folder)
    (folder / "x.db").chmod(0o644)
    return folder


def _reachable(folder: Path) -> None:
    """Let other users into ``folder`` (read and list, not write), through pytest's 0700 parents."""
    for p in [folder, *folder.parents]:
        if p == Path("/tmp") or p == p.parent:
            break
        p.chmod(p.stat().st_mode | 0o755)


def _as_nobody(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    drop = ["setpriv", "--reuid", "nobody", "--regid", "nogroup", "--clear-groups"]
    return subprocess.run(
        [*drop, sys.executable, *args],
        capture_output=True,
        text=True,
        env=_ENV,
        cwd=cwd,
        timeout=60,
        check=False,
    )


def test_cli_read_commands_work_in_a_directory_the_user_cannot_write(
    locked_folder: Path, tmp_path: Path
) -> None:
    db = str(locked_folder / "x.db")
    before = _files(locked_folder)
    done = _as_nobody("-m", "runjournal.cli", "--db", db, "experiments", "--format", "json")
    assert done.returncode == 0, done.stderr
    assert [e["name"] for e in json.loads(done.stdout)] == ["exp"]
    done = _as_nobody("-m", "runjournal.cli", "--db", db, "verify")
    assert done.returncode == 0, done.stderr
    out = tmp_path / "writable"
    out.mkdir()
    _reachable(out)
    out.chmod(0o777)
    done = _as_nobody("-m", "runjournal.cli", "--db", db, "export", str(out / "all.rjlog"))
    assert done.returncode == 0, done.stderr
    assert (out / "all.rjlog").stat().st_size > 0
    # A write command still says plainly that it cannot write.
    done = _as_nobody("-m", "runjournal.cli", "--db", db, "purge", "--yes")
    assert done.returncode == 1 and "cannot be written" in done.stderr
    assert _files(locked_folder) == before


def test_python_api_in_a_directory_the_user_cannot_write(locked_folder: Path) -> None:
    done = _as_nobody("-c", _API, str(locked_folder / "x.db"))
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["1", "refused"]
