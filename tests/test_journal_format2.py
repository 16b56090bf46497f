"""Event-log format 2: blocks of entries that name each source once, read beside format 1.

An export writes its entries as ``journal.entries`` blocks (format 2) and an
export without entries as format 1; an import reads both, and keeps every body
at the current event version as the file carries it.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

import msgspec
import pytest

from runjournal import CorruptLogFile, Tracker
from runjournal import journal as journal_module
from runjournal.eventlog import LogWriter, read_log
from runjournal.events import EventCodec, RunCreated, RunStarted
from runjournal.journal import (
    EntriesRecord,
    EntryRecord,
    LogRecord,
    export_events,
    import_events,
    verify,
)
from tests.conftest import assert_identical
from tests.test_journal import journal_of, opened, populate, snapshot

EXP = "01HF0000000000000000EXP001"
RUN = "01HF0000000000000000RUN001"
SOURCE = "01HF0000000000000000SOURCE"

_decode_record = msgspec.msgpack.Decoder(LogRecord).decode


def records_of(path: Path) -> list[LogRecord]:
    return [_decode_record(payload) for payload in read_log(path).records]


def stored_rows(db: Path) -> list[tuple[str, int, float, int, bytes]]:
    conn = sqlite3.connect(db)
    try:
        return [
            (s, q, t, v, bytes(b))
            for s, q, t, v, b in conn.execute(
                "SELECT source, seq, recorded_at, version, body FROM journal ORDER BY position"
            )
        ]
    finally:
        conn.close()


async def two_source_database(path: Path) -> None:
    """A varied history written by two trackers, so that the journal has two sources."""
    async with Tracker.open(path) as tracker:
        await populate(tracker)
    async with Tracker.open(path) as other:
        experiment = await other.create_experiment("second source")
        run_id = await other.create_run(experiment)
        await other.log_params(run_id, {"lr": 1e-4, "layers": 3})
        await other.set_tag(run_id, "who", "the second tracker")


async def test_an_export_is_format_2_and_names_each_source_once(tmp_path: Path) -> None:
    db = tmp_path / "source.db"
    await two_source_database(db)
    rows = stored_rows(db)
    sources = sorted({row[0] for row in rows})
    assert len(sources) == 2

    log = tmp_path / "all.rjlog"
    exported = await export_events(db, log)
    assert read_log(log).header["format_version"] == 2
    blocks = [r for r in records_of(log) if isinstance(r, EntriesRecord)]
    assert len(blocks) == 1
    assert sorted(blocks[0].sources) == sources
    data = log.read_bytes()
    assert [data.count(source.encode()) for source in sources] == [1, 1]
    assert exported.entries == len(rows) == len(blocks[0].body)


async def test_format_2_is_smaller_than_format_1_for_the_same_entries(tmp_path: Path) -> None:
    db = tmp_path / "source.db"
    await two_source_database(db)
    v2 = tmp_path / "v2.rjlog"
    await export_events(db, v2)
    v1 = tmp_path / "v1.rjlog"
    write_as_format_1(v2, v1)
    assert v2.stat().st_size < 0.8 * v1.stat().st_size


def write_as_format_1(v2: Path, v1: Path) -> None:
    """The same records as a format-1 file: each block's entries as ``journal.entry`` records."""
    encode = msgspec.msgpack.encode
    with LogWriter(v1, format_version=1) as writer:
        for record in records_of(v2):
            if isinstance(record, EntriesRecord):
                for index, seq, at, version, body in zip(
                    record.source,
                    record.seq,
                    record.recorded_at,
                    record.version,
                    record.body,
                    strict=True,
                ):
                    writer.write(encode(EntryRecord(record.sources[index], seq, at, version, body)))
            else:
                writer.write(encode(record))


async def test_format_1_and_format_2_files_of_one_journal_import_alike(tmp_path: Path) -> None:
    db = tmp_path / "source.db"
    await two_source_database(db)
    v2 = tmp_path / "v2.rjlog"
    await export_events(db, v2)
    v1 = tmp_path / "v1.rjlog"
    write_as_format_1(v2, v1)
    assert read_log(v1).header["format_version"] == 1

    from_v1, from_v2 = tmp_path / "from-v1.db", tmp_path / "from-v2.db"
    report_v1 = await import_events(from_v1, v1)
    report_v2 = await import_events(from_v2, v2)
    assert report_v1.appended == report_v2.appended == len(stored_rows(db))
    assert report_v1.rejected == report_v2.rejected == 0
    assert stored_rows(from_v1) == stored_rows(from_v2) == stored_rows(db)
    async with opened(db) as a, opened(from_v1) as b, opened(from_v2) as c:
        want = await snapshot(a)
        assert_identical(await snapshot(b), want)
        assert_identical(await snapshot(c), want)
        assert_identical(await journal_of(c), await journal_of(a))
    assert (await verify(from_v1)).ok
    assert (await verify(from_v2)).ok

    # The two files hold the same entries: either merged into the other's import adds nothing.
    again = await import_events(from_v2, v1)
    assert (again.appended, again.duplicates, again.rejected) == (0, len(stored_rows(db)), 0)
    assert stored_rows(from_v2) == stored_rows(db)


async def test_an_export_without_entries_is_format_1(tmp_path: Path) -> None:
    db = tmp_path / "source.db"
    await two_source_database(db)
    head = len(stored_rows(db))
    log = tmp_path / "nothing.rjlog"
    exported = await export_events(db, log, after=head)
    assert (exported.entries, exported.events, exported.blobs) == (0, 0, 0)
    contents = read_log(log)
    assert contents.header["format_version"] == 1
    assert contents.records == []
    result = await import_events(tmp_path / "target.db", log)
    assert (result.appended, result.duplicates, result.rejected) == (0, 0, 0)


async def test_blocks_split_where_their_bodies_grow_large(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    db = tmp_path / "source.db"
    await two_source_database(db)
    monkeypatch.setattr(journal_module, "_BLOCK_BYTES", 200)
    log = tmp_path / "small-blocks.rjlog"
    await export_events(db, log)
    blocks = [r for r in records_of(log) if isinstance(r, EntriesRecord)]
    assert len(blocks) > 3
    assert all(sum(map(len, b.body[:-1])) < 200 for b in blocks)
    target = tmp_path / "target.db"
    await import_events(target, log)
    assert stored_rows(target) == stored_rows(db)
    assert (await verify(target)).ok


def block(bodies: list[bytes], *, sources: list[str] | None = None) -> EntriesRecord:
    count = len(bodies)
    return EntriesRecord(
        sources or [SOURCE],
        [0] * count,
        list(range(1, count + 1)),
        [1.0 + i for i in range(count)],
        [1] * count,
        bodies,
    )


def experiment_created(at: float = 1.0) -> bytes:
    return msgspec.msgpack.encode(
        {"type": "experiment.created", "experiment_id": EXP, "name": "e", "at": at}
    )


async def test_imported_bodies_are_stored_as_the_file_carries_them(tmp_path: Path) -> None:
    codec = EventCodec()
    # The same event as the encoder writes it, but with its keys in another order.
    shuffled = msgspec.msgpack.encode(
        {"at": 2.0, "experiment_id": EXP, "run_id": RUN, "type": "run.created"}
    )
    assert shuffled != codec.encode(RunCreated(RUN, EXP, 2.0))
    assert codec.decode(shuffled) == RunCreated(RUN, EXP, 2.0)
    bodies = [experiment_created(), shuffled, codec.encode(RunStarted(RUN, 3.0))]
    log = tmp_path / "in.rjlog"
    with LogWriter(log) as writer:
        writer.write(msgspec.msgpack.encode(block(bodies)))

    target = tmp_path / "target.db"
    result = await import_events(target, log)
    assert (result.appended, result.rejected) == (3, 0)
    assert [row[4] for row in stored_rows(target)] == bodies
    assert (await verify(target)).ok

    again = tmp_path / "again.rjlog"
    await export_events(target, again)
    [exported] = [r for r in records_of(again) if isinstance(r, EntriesRecord)]
    assert exported.body == bodies


def damaged_blocks() -> dict[str, EntriesRecord]:
    good = [experiment_created(), experiment_created(2.0)]
    base = block(good)
    return {
        "columns differ in length": msgspec.structs.replace(base, seq=[1]),
        "names a source it lacks": msgspec.structs.replace(base, source=[0, 1]),
        "entry 1 of the block: event .* cannot be decoded": block([good[0], b"\x93\x01"]),
    }


@pytest.mark.parametrize("reason", sorted(damaged_blocks()))
async def test_a_damaged_block_imports_nothing(tmp_path: Path, reason: str) -> None:
    log = tmp_path / "bad.rjlog"
    with LogWriter(log) as writer:
        writer.write(msgspec.msgpack.encode(block([experiment_created(0.5)], sources=["other"])))
        writer.write(msgspec.msgpack.encode(damaged_blocks()[reason]))
    target = tmp_path / "target.db"
    with pytest.raises(CorruptLogFile, match=reason) as info:
        await import_events(target, log)
    assert (info.value.path, info.value.record) == (str(log), 1)
    assert not target.exists()


async def test_a_store_import_carries_bodies_too(tmp_path: Path) -> None:
    db = tmp_path / "source.db"
    await two_source_database(db)
    target = tmp_path / "target.db"
    result = await import_events(target, db)
    assert result.sources[0].kind == "database"
    assert stored_rows(target) == stored_rows(db)
    assert (await verify(target)).ok
