"""Files as artifacts: streamed in chunks, deduplicated by chunk, read back as streams.

Contract tests run over every store (``STORE_KINDS``); the SQLite ones also look
at the tables, and a real process killed in the middle of an upload shows that
nothing partial survives.
"""

from __future__ import annotations

import hashlib
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from runjournal import ArtifactNotFound, Tracker
from runjournal.journal import export_events, import_events, purge, rebuild
from runjournal.stores import SqliteBackend
from runjournal.stores.base import CHUNK_SIZE

WORKERS = Path(__file__).resolve().parent / "_workers"


def pattern(size: int, seed: int = 0) -> bytes:
    """Deterministic bytes whose chunks all differ (a chunk of zeros would dedupe)."""
    block = hashlib.sha256(seed.to_bytes(8, "big")).digest() * 2048  # 64 KiB
    out = bytearray()
    counter = 0
    while len(out) < size:
        out += counter.to_bytes(8, "big") + block[8:]
        counter += 1
    return bytes(out[:size])


async def new_run(tracker: Tracker) -> str:
    run_id = await tracker.create_run(await tracker.create_experiment("files"))
    await tracker.start_run(run_id)
    return run_id


async def read_stream(tracker: Tracker, sha256: str) -> list[bytes]:
    return [piece async for piece in tracker.open_artifact(sha256)]


async def test_a_file_larger_than_a_chunk_round_trips(tracker: Tracker, tmp_path: Path) -> None:
    data = pattern(2 * CHUNK_SIZE + 12345)
    path = tmp_path / "model.bin"
    path.write_bytes(data)
    run_id = await new_run(tracker)
    digest = await tracker.log_artifact(run_id, "model.bin", path)
    assert digest == hashlib.sha256(data).hexdigest()
    pieces = await read_stream(tracker, digest)
    assert [len(p) for p in pieces] == [CHUNK_SIZE, CHUNK_SIZE, 12345]
    assert b"".join(pieces) == data
    assert await tracker.get_artifact_data(digest) == data
    [ref] = await tracker.list_artifacts(run_id)
    assert (ref.name, ref.sha256, ref.size_bytes) == ("model.bin", digest, len(data))


async def test_a_path_may_be_str_or_pathlike_and_empty(tracker: Tracker, tmp_path: Path) -> None:
    (tmp_path / "empty").write_bytes(b"")
    run_id = await new_run(tracker)
    digest = await tracker.log_artifact(run_id, "empty", str(tmp_path / "empty"))
    assert digest == hashlib.sha256(b"").hexdigest()
    assert await read_stream(tracker, digest) == []
    assert await tracker.get_artifact_data(digest) == b""


async def test_file_and_bytes_of_the_same_content_share_one_id(
    tracker: Tracker, tmp_path: Path
) -> None:
    data = pattern(CHUNK_SIZE + 1)
    (tmp_path / "a").write_bytes(data)
    run_id = await new_run(tracker)
    from_file = await tracker.log_artifact(run_id, "a", tmp_path / "a")
    from_bytes = await tracker.log_artifact(run_id, "b", data)
    assert from_file == from_bytes
    assert await tracker.get_artifact_data(from_file) == data


async def test_a_directory_becomes_one_artifact_per_file(tracker: Tracker, tmp_path: Path) -> None:
    root = tmp_path / "ckpt"
    (root / "sub" / "deeper").mkdir(parents=True)
    files = {"a.txt": b"a", "sub/b.bin": pattern(1000), "sub/deeper/c": b""}
    for relative, data in files.items():
        (root / relative).write_bytes(data)
    run_id = await new_run(tracker)
    logged = await tracker.log_artifact(run_id, "ckpt", root)
    assert logged == {
        f"ckpt/{relative}": hashlib.sha256(data).hexdigest() for relative, data in files.items()
    }
    refs = await tracker.list_artifacts(run_id)
    assert [r.name for r in refs] == sorted(logged)
    for relative, data in files.items():
        assert await tracker.get_artifact_data(logged[f"ckpt/{relative}"]) == data


async def test_download_streams_to_a_file_or_into_a_directory(
    tracker: Tracker, tmp_path: Path
) -> None:
    data = pattern(CHUNK_SIZE + 99)
    run_id = await new_run(tracker)
    digest = await tracker.log_artifact(run_id, "../../etc/passwd", data)
    target = await tracker.download_artifact(digest, tmp_path / "out.bin")
    assert target == tmp_path / "out.bin" and target.read_bytes() == data
    folder = tmp_path / "folder"
    folder.mkdir()
    inside = await tracker.download_artifact(digest, folder)
    assert inside == folder / "passwd"  # a label, never a path: only its last part is used
    assert inside.read_bytes() == data
    assert sorted(p.name for p in folder.iterdir()) == ["passwd"]
    with pytest.raises(ArtifactNotFound):
        await tracker.download_artifact("0" * 64, tmp_path / "missing")
    assert not (tmp_path / "missing").exists()
    leftovers = [name for name in os.listdir(tmp_path) if name.startswith(".runjournal")]
    assert leftovers == []


async def test_open_artifact_of_an_unknown_digest_raises_when_iterated(tracker: Tracker) -> None:
    stream = tracker.open_artifact("f" * 64)
    with pytest.raises(ArtifactNotFound):
        await anext(aiter(stream))
    with pytest.raises(ValueError, match="SHA-256"):
        tracker.open_artifact("nope")


async def test_an_unreadable_file_is_refused_and_nothing_is_stored(
    tracker: Tracker, tmp_path: Path
) -> None:
    run_id = await new_run(tracker)
    with pytest.raises(FileNotFoundError):
        await tracker.log_artifact(run_id, "x", tmp_path / "nope")
    await tracker.flush()
    assert await tracker.list_artifacts(run_id) == []


async def test_identical_chunks_are_stored_once(tmp_path: Path) -> None:
    path = tmp_path / "dedupe.db"
    first = pattern(3 * CHUNK_SIZE)
    second = first[: 2 * CHUNK_SIZE] + pattern(CHUNK_SIZE, seed=1)  # shares two chunks
    (tmp_path / "first").write_bytes(first)
    (tmp_path / "second").write_bytes(second)
    async with Tracker.open(path) as tracker:
        run_id = await new_run(tracker)
        await tracker.log_artifact(run_id, "first", tmp_path / "first")
        await tracker.log_artifact(run_id, "second", tmp_path / "second")
        await tracker.log_artifact(run_id, "again", tmp_path / "first")
    with sqlite3.connect(path) as conn:
        assert conn.execute("SELECT count(*) FROM contents").fetchone() == (2,)
        assert conn.execute("SELECT count(*) FROM chunks").fetchone() == (4,)


async def test_purge_drops_unshared_chunks_and_keeps_shared_ones(tmp_path: Path) -> None:
    path = tmp_path / "purge.db"
    shared = pattern(CHUNK_SIZE)
    async with Tracker.open(path) as tracker:
        keep = await new_run(tracker)
        kept = await tracker.log_artifact(keep, "kept", shared + b"k")
        doomed_exp = await tracker.create_experiment("doomed")
        doomed = await tracker.create_run(doomed_exp)
        await tracker.log_artifact(doomed, "gone", shared + pattern(CHUNK_SIZE, seed=2))
        await tracker.delete_experiment(doomed_exp)
    result = await purge(path)
    assert result.blobs == 1
    with sqlite3.connect(path) as conn:
        assert conn.execute("SELECT count(*) FROM contents").fetchone() == (1,)
        assert conn.execute("SELECT count(*) FROM chunks").fetchone() == (2,)  # shared + "k"
    async with Tracker.open(path) as tracker:
        assert await tracker.get_artifact_data(kept) == shared + b"k"


async def test_export_and_import_carry_the_chunks(tracker: Tracker, tmp_path: Path) -> None:
    data = pattern(2 * CHUNK_SIZE + 5)
    (tmp_path / "f").write_bytes(data)
    run_id = await new_run(tracker)
    digest = await tracker.log_artifact(run_id, "f", tmp_path / "f")
    assert isinstance(digest, str)
    await tracker.log_artifact(run_id, "copy", data)
    await tracker.flush()
    log = tmp_path / "out.rjlog"
    exported = await export_events(tracker.store, log)
    assert exported.blobs == 1
    assert log.stat().st_size < len(data) + 100_000  # each chunk once
    for target in (tmp_path / "from-log.db", tmp_path / "from-db.db"):
        source = log if target.name == "from-log.db" else tmp_path / "from-log.db"
        result = await import_events(target, source)
        assert result.sources[0].blobs == 1
        async with Tracker.open(target) as other:
            assert await other.get_artifact_data(digest) == data
            assert [a.name for a in await other.list_artifacts(run_id)] == ["f", "copy"]


async def test_rebuild_sweeps_chunks_that_nothing_refers_to(tmp_path: Path) -> None:
    path = tmp_path / "sweep.db"
    async with Tracker.open(path) as tracker:
        run_id = await new_run(tracker)
        digest = await tracker.log_artifact(run_id, "a", b"kept")
    with sqlite3.connect(path) as conn:
        conn.execute("INSERT INTO chunks (digest, data) VALUES (?, ?)", (b"\0" * 32, b"stray"))
    await rebuild(path)
    with sqlite3.connect(path) as conn:
        conn.execute("INSERT INTO chunks (digest, data) VALUES (?, ?)", (b"\1" * 32, b"stray"))
        assert conn.execute("SELECT count(*) FROM chunks").fetchone() == (2,)
    store = SqliteBackend(path)
    await store.open()  # a writable open sweeps too
    await store.close()
    with sqlite3.connect(path) as conn:
        assert conn.execute("SELECT count(*) FROM chunks").fetchone() == (1,)
    async with Tracker.open(path) as tracker:
        assert await tracker.get_artifact_data(digest) == b"kept"


@pytest.mark.parametrize("chunks_before_kill", [1, 3])
def test_kill_9_in_the_middle_of_a_file_leaves_nothing_partial(
    tmp_path: Path, chunks_before_kill: int
) -> None:
    """The worker stops inside the upload's transaction after some chunks, and is killed."""
    path = tmp_path / "killed.db"
    data_file = tmp_path / "big.bin"
    data_file.write_bytes(pattern(6 * CHUNK_SIZE))
    victim = subprocess.Popen(
        [
            sys.executable,
            str(WORKERS / "upload_killed.py"),
            str(path),
            str(data_file),
            str(chunks_before_kill),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert victim.stdout is not None
    assert victim.stdout.readline().strip() == "inside"
    victim.kill()
    victim.communicate(timeout=30)
    with sqlite3.connect(path) as conn:
        # Read before any runjournal open: the torn transaction left nothing behind.
        assert conn.execute("SELECT count(*) FROM chunks").fetchone() == (0,)
        assert conn.execute("SELECT count(*) FROM contents").fetchone() == (0,)
        assert conn.execute("SELECT count(*) FROM artifacts").fetchone() == (0,)
        assert conn.execute("SELECT count(*) FROM runs").fetchone() == (1,)


def test_logging_a_file_keeps_memory_flat(tmp_path: Path) -> None:
    """Real RSS of a fresh process: a 256 MiB file raises the peak far less than its size."""
    data_file = tmp_path / "big.bin"
    with open(data_file, "wb") as file:
        file.writelines(pattern(CHUNK_SIZE, seed=i) for i in range(64))
    done = subprocess.run(
        [sys.executable, str(WORKERS / "upload_rss.py"), str(tmp_path / "rss.db"), str(data_file)],
        capture_output=True,
        text=True,
        check=True,
        timeout=300,
        env={**os.environ, "PYTHONHASHSEED": "0"},
    )
    baseline, peak = (int(v) for v in done.stdout.split())
    assert peak - baseline < 96 * 1024 * 1024, (baseline, peak)
