"""Contract: artifacts are content-addressed by SHA-256 and stored once."""

from __future__ import annotations

import hashlib
import sqlite3
from pathlib import Path

import pytest

from runjournal import ArtifactNotFound, Tracker
from runjournal.stores import SqliteBackend


async def test_log_artifact_returns_the_sha256_and_the_bytes_come_back(tracker: Tracker) -> None:
    run_id = await tracker.create_run(await tracker.create_experiment("e"))
    data = b"...weights..." * 1000
    digest = await tracker.log_artifact(run_id, "model.safetensors", data)
    assert digest == hashlib.sha256(data).hexdigest()
    assert len(digest) == 64 and digest == digest.lower()
    assert await tracker.get_artifact_data(digest) == data
    [ref] = await tracker.list_artifacts(run_id)
    assert (ref.run_id, ref.name, ref.sha256, ref.size_bytes) == (
        run_id,
        "model.safetensors",
        digest,
        len(data),
    )
    assert ref.created_at > 0


async def test_empty_and_bytes_like_data_are_accepted(tracker: Tracker) -> None:
    run_id = await tracker.create_run(await tracker.create_experiment("e"))
    empty = await tracker.log_artifact(run_id, "empty", b"")
    assert await tracker.get_artifact_data(empty) == b""
    view = await tracker.log_artifact(run_id, "view", memoryview(b"abc"))
    array = await tracker.log_artifact(run_id, "array", bytearray(b"abc"))
    assert view == array == hashlib.sha256(b"abc").hexdigest()


async def test_artifacts_list_in_logging_order_with_names_as_labels(tracker: Tracker) -> None:
    run_id = await tracker.create_run(await tracker.create_experiment("e"))
    names = ["../../etc/passwd", "/abs/path", "ckpt/step-1.pt", "ok"]
    for i, name in enumerate(names):
        await tracker.log_artifact(run_id, name, bytes([i]))
    assert [a.name for a in await tracker.list_artifacts(run_id)] == names


async def test_same_bytes_under_any_run_or_name_share_one_digest(tracker: Tracker) -> None:
    exp_id = await tracker.create_experiment("e")
    a, b = await tracker.create_run(exp_id), await tracker.create_run(exp_id)
    d1 = await tracker.log_artifact(a, "x", b"same")
    d2 = await tracker.log_artifact(b, "y", b"same")
    d3 = await tracker.log_artifact(a, "x-again", b"same")
    assert d1 == d2 == d3
    assert [r.name for r in await tracker.list_artifacts(a)] == ["x", "x-again"]
    assert await tracker.get_artifact_data(d1) == b"same"


async def test_sqlite_stores_identical_content_once(tmp_path: Path) -> None:
    path = tmp_path / "a.db"
    async with Tracker(SqliteBackend(path)) as tracker:
        exp_id = await tracker.create_experiment("e")
        for i in range(3):
            run_id = await tracker.create_run(exp_id)
            await tracker.log_artifact(run_id, f"copy-{i}", b"\x00" * 100_000)
        await tracker.log_artifact(run_id, "other", b"\x01")
    with sqlite3.connect(path) as conn:
        assert conn.execute("SELECT count(*) FROM contents").fetchone() == (2,)
        assert conn.execute("SELECT count(*) FROM chunks").fetchone() == (2,)
        assert conn.execute("SELECT count(*) FROM artifacts").fetchone() == (4,)


async def test_unknown_digest_is_not_found_and_bad_digests_are_refused(tracker: Tracker) -> None:
    with pytest.raises(ArtifactNotFound):
        await tracker.get_artifact_data("0" * 64)
    for bad in ["abc", "G" * 64, "A" * 64, 5]:
        with pytest.raises(ValueError, match="SHA-256"):
            await tracker.get_artifact_data(bad)  # type: ignore[arg-type]


async def test_bad_artifact_arguments_are_refused(tracker: Tracker) -> None:
    run_id = await tracker.create_run(await tracker.create_experiment("e"))
    with pytest.raises(TypeError, match="bytes or a path"):
        await tracker.log_artifact(run_id, "a", 42)  # type: ignore[call-overload]
    with pytest.raises(FileNotFoundError, match="no file or directory"):
        await tracker.log_artifact(run_id, "a", "no/such/file")
    with pytest.raises(ValueError, match="artifact name"):
        await tracker.log_artifact(run_id, "", b"x")
    assert await tracker.list_artifacts(run_id) == []
