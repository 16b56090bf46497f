"""Old events keep decoding: the fixture file of every event version, and upcasters.

``tests/data/eventlog-v*.rjlog`` were written by earlier runjournal versions and are
never regenerated (see ``tests/data/README.md``). Their expected content is spelt
out here again, on purpose apart from ``make_fixtures.py``: the file is the
evidence, this test the specification of what it must decode to.
"""

from __future__ import annotations

import hashlib
import math
import sqlite3
from pathlib import Path
from typing import Any

import msgspec
import pytest

from runjournal import CorruptLogFile, RunNotFound, RunStatus, Tracker
from runjournal.errors import ExperimentNotFound
from runjournal.eventlog import LogWriter, read_log
from runjournal.events import (
    EVENT_VERSION,
    UPCASTERS,
    ArtifactLogged,
    Event,
    EventCodec,
    ExperimentCreated,
    ExperimentDeleted,
    MetricLogged,
    MetricsLogged,
    ParamsLogged,
    RunCompleted,
    RunCreated,
    RunDeleted,
    RunStarted,
    SpanIdSet,
    TagSet,
)
from runjournal.journal import (
    BlobRecord,
    EntriesRecord,
    EntryRecord,
    LogRecord,
    export_events,
    import_events,
    rebuild,
    verify,
)
from runjournal.model import MetricPoint
from runjournal.stores.sqlite import SqliteBackend
from tests.conftest import assert_identical

DATA = Path(__file__).parent / "data"

A = "01HF0000000000000000SRCAAA"
B = "01HF0000000000000000SRCBBB"
EXP = "01HF0000000000000000EXP001"
EXP_GONE = "01HF0000000000000000EXP002"
RUN = "01HF0000000000000000RUN001"
RUN_DELETED = "01HF0000000000000000RUN002"
RUN_IN_GONE = "01HF0000000000000000RUN003"
RUN_B = "01HF0000000000000000RUN004"
RUN_CANCELLED = "01HF0000000000000000RUN005"
RUN_PENDING = "01HF0000000000000000RUN006"
T0 = 1_700_000_000.0
NAN = math.nan
INF = math.inf
ARTIFACT = b"fixture weights\x00\x01\x02"
ARTIFACT_SHA = hashlib.sha256(ARTIFACT).hexdigest()

PARAMS = {
    "none": None,
    "flag": True,
    "int": -42,
    "big": 2**63 - 1,
    "float": 0.1,
    "nan": NAN,
    "inf": INF,
    "ninf": -INF,
    "text": "héllo ✓",
    "list": [1, "two", 3.0, [None]],
    "dict": {"a": {"b": False}},
    "empty_list": [],
    "empty_dict": {},
}
LOSS = [
    MetricPoint(0, 1.0, T0 + 6),
    MetricPoint(1, 0.5, T0 + 6.5),
    MetricPoint(2, NAN, T0 + 7),
    MetricPoint(3, INF, T0 + 7.5),
    MetricPoint(4, -INF, T0 + 8),
]

# (source, seq, recorded_at, event) of every journal entry, in journal order.
V1_ENTRIES: list[tuple[str, int, float, Event]] = [
    (
        A,
        1,
        T0,
        ExperimentCreated(
            EXP,
            "fixture",
            T0,
            description="every kind of event",
            config={"model": "gpt2", "lr": 3e-4, "layers": [1, 2, 3], "nan": NAN},
            tags={"team": "ml"},
        ),
    ),
    (A, 2, T0 + 1, RunCreated(RUN, EXP, T0 + 1, name="run-one", tags={"seed": "1"})),
    (A, 3, T0 + 2, RunStarted(RUN, T0 + 2)),
    (A, 4, T0 + 3, ParamsLogged(RUN, PARAMS, T0 + 3)),
    (A, 5, T0 + 4, TagSet(RUN, "stage", "train", T0 + 4)),
    (A, 6, T0 + 5, SpanIdSet(RUN, "trace-0001", T0 + 5)),
    (A, 7, T0 + 8, MetricsLogged(RUN, "loss", LOSS, T0 + 8)),
    (A, 8, T0 + 9, MetricLogged(RUN, "accuracy", 7, 0.25, T0 + 9)),
    (A, 9, T0 + 10, ArtifactLogged(RUN, "weights.bin", ARTIFACT_SHA, len(ARTIFACT), T0 + 10)),
    (B, 1, T0 + 11, RunCreated(RUN_B, EXP, T0 + 11, name="from-machine-b")),
    (B, 2, T0 + 12, RunStarted(RUN_B, T0 + 12)),
    (B, 3, T0 + 13, MetricsLogged(RUN_B, "loss", [MetricPoint(0, 2.0, T0 + 13)], T0 + 13)),
    (B, 4, T0 + 14, RunCompleted(RUN_B, RunStatus.FAILED, T0 + 14)),
    (B, 5, T0 + 15, RunCreated(RUN_CANCELLED, EXP, T0 + 15)),
    (B, 6, T0 + 16, RunCompleted(RUN_CANCELLED, RunStatus.CANCELLED, T0 + 16)),
    (A, 10, T0 + 17, RunCompleted(RUN, RunStatus.SUCCESS, T0 + 17)),
    (A, 11, T0 + 18, RunCreated(RUN_DELETED, EXP, T0 + 18, name="doomed")),
    (A, 12, T0 + 19, ParamsLogged(RUN_DELETED, {"x": 1}, T0 + 19)),
    (A, 13, T0 + 20, RunDeleted(RUN_DELETED, T0 + 20)),
    (A, 14, T0 + 21, ExperimentCreated(EXP_GONE, "gone", T0 + 21)),
    (A, 15, T0 + 22, RunCreated(RUN_IN_GONE, EXP_GONE, T0 + 22)),
    (A, 16, T0 + 23, ExperimentDeleted(EXP_GONE, T0 + 23)),
    (A, 17, T0 + 24, RunCreated(RUN_PENDING, EXP, T0 + 24, tags={"note": "never started"})),
]

# Every fixture file and the content it must decode to: (entries, blobs).
EXPECTED: dict[str, tuple[list[tuple[str, int, float, Event]], dict[str, bytes]]] = {
    "eventlog-v1.rjlog": (V1_ENTRIES, {ARTIFACT_SHA: ARTIFACT}),
}


def assert_same(got: Any, want: Any) -> None:
    """Identical once decoded to builtins (NaN equals NaN; True is not 1, nor 1 1.0)."""
    assert_identical(msgspec.to_builtins(got), msgspec.to_builtins(want))


def decode_fixture(path: Path) -> tuple[list[tuple[str, int, float, Event]], dict[str, bytes]]:
    contents = read_log(path)
    codec = EventCodec()
    decode = msgspec.msgpack.Decoder(LogRecord).decode
    entries: list[tuple[str, int, float, Event]] = []
    blobs: dict[str, bytes] = {}
    for payload in contents.records:
        record = decode(payload)
        if isinstance(record, EntryRecord):
            event = codec.decode(record.body, record.version)
            entries.append((record.source, record.seq, record.recorded_at, event))
        elif isinstance(record, BlobRecord):
            blobs[record.sha256] = record.data
    return entries, blobs


def test_there_is_a_fixture_of_the_current_event_version() -> None:
    assert (DATA / f"eventlog-v{EVENT_VERSION}.rjlog").is_file()


@pytest.mark.parametrize("path", sorted(DATA.glob("*.rjlog")), ids=lambda p: p.name)
def test_every_fixture_decodes_to_its_known_content(path: Path) -> None:
    assert path.name in EXPECTED, f"{path.name} has no expected content in this test"
    header = read_log(path).header
    assert header["format"] == "runjournal-eventlog"
    entries, blobs = decode_fixture(path)
    want_entries, want_blobs = EXPECTED[path.name]
    assert len(entries) == len(want_entries)
    for got, want in zip(entries, want_entries, strict=True):
        assert_same(list(got), list(want))
        assert type(got[3]) is type(want[3])
    assert blobs == want_blobs


@pytest.mark.parametrize("name", sorted(EXPECTED))
async def test_every_fixture_imports_into_a_database(tmp_path: Path, name: str) -> None:
    db = tmp_path / "imported.db"
    result = await import_events(db, DATA / name)
    assert result.appended == len(EXPECTED[name][0])
    assert result.rejected == 0
    assert (await verify(db)).ok
    await rebuild(db)

    async with Tracker.open(db) as tracker:
        assert [e.id for e in await tracker.list_experiments()] == [EXP]
        experiment = await tracker.get_experiment(EXP)
        assert_same(
            experiment.config, {"model": "gpt2", "lr": 3e-4, "layers": [1, 2, 3], "nan": NAN}
        )
        runs = {r.id: r for r in await tracker.list_runs(EXP)}
        assert {k: r.status for k, r in runs.items()} == {
            RUN: RunStatus.SUCCESS,
            RUN_B: RunStatus.FAILED,
            RUN_CANCELLED: RunStatus.CANCELLED,
            RUN_PENDING: RunStatus.PENDING,
        }
        run = runs[RUN]
        assert (run.name, run.tags) == ("run-one", {"seed": "1", "stage": "train"})
        assert (run.created_at, run.start_time, run.end_time) == (T0 + 1, T0 + 2, T0 + 17)
        assert_same(await tracker.get_params(RUN), PARAMS)
        assert await tracker.list_metric_keys(RUN) == ["accuracy", "loss"]
        assert_same(await tracker.get_metrics(RUN, "loss"), LOSS)
        assert await tracker.get_metrics(RUN, "accuracy") == [MetricPoint(7, 0.25, T0 + 9)]
        assert await tracker.get_span_id(RUN) == "trace-0001"
        [artifact] = await tracker.list_artifacts(RUN)
        assert (artifact.name, artifact.sha256) == ("weights.bin", ARTIFACT_SHA)
        assert await tracker.get_artifact_data(ARTIFACT_SHA) == ARTIFACT
        for gone in (RUN_DELETED, RUN_IN_GONE):
            with pytest.raises(RunNotFound):
                await tracker.get_run(gone)
        with pytest.raises(ExperimentNotFound):
            await tracker.get_experiment(EXP_GONE)


# -- upcasters -----------------------------------------------------------------------------------
# A hypothetical version 0 stored a metrics batch column by column.
def old_metrics_body(run_id: str, points: list[MetricPoint], at: float) -> bytes:
    return msgspec.msgpack.encode(
        {
            "type": "metrics.logged",
            "run_id": run_id,
            "key": "loss",
            "steps": [p.step for p in points],
            "values": [p.value for p in points],
            "timestamps": [p.timestamp for p in points],
            "at": at,
        }
    )


def columns_to_points(old: dict[str, Any]) -> dict[str, Any]:
    """Upcaster of metrics.logged from version 0: columns become [step, value, time] rows."""
    new = dict(old)
    columns = (new.pop("steps"), new.pop("values"), new.pop("timestamps"))
    new["points"] = [list(row) for row in zip(*columns, strict=True)]
    return new


OLD_POINTS = [MetricPoint(0, 1.5, T0), MetricPoint(1, NAN, T0 + 1), MetricPoint(2, -INF, T0 + 2)]


@pytest.fixture
def upcaster(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(UPCASTERS, ("metrics.logged", 0), columns_to_points)


def test_an_old_shape_does_not_decode_without_its_upcaster() -> None:
    with pytest.raises(msgspec.ValidationError, match="points"):
        EventCodec().decode(old_metrics_body(RUN, OLD_POINTS, T0), 0)


@pytest.mark.usefixtures("upcaster")
def test_the_codec_upcasts_an_old_shape() -> None:
    event = EventCodec().decode(old_metrics_body(RUN, OLD_POINTS, T0 + 3), 0)
    assert type(event) is MetricsLogged
    assert_same(event, MetricsLogged(RUN, "loss", OLD_POINTS, T0 + 3))


def test_upcasters_chain_from_the_oldest_version(monkeypatch: pytest.MonkeyPatch) -> None:
    """Version 0 -> 1 -> 2, each step applied once and in order."""
    monkeypatch.setattr("runjournal.events.EVENT_VERSION", 2)
    applied: list[int] = []

    def v0(old: dict[str, Any]) -> dict[str, Any]:
        applied.append(0)
        return {**old, "key": old.pop("name")}  # version 0 called the tag's key "name"

    def v1(old: dict[str, Any]) -> dict[str, Any]:
        applied.append(1)
        return {**old, "value": old["value"].strip()}  # version 1 padded values

    monkeypatch.setitem(UPCASTERS, ("tag.set", 0), v0)
    monkeypatch.setitem(UPCASTERS, ("tag.set", 1), v1)
    body = msgspec.msgpack.encode(
        {"type": "tag.set", "run_id": RUN, "name": "stage", "value": "  eval ", "at": T0}
    )
    assert EventCodec().decode(body, 0) == TagSet(RUN, "stage", "eval", T0)
    assert applied == [0, 1]


def test_a_newer_version_is_refused_with_advice() -> None:
    body = EventCodec().encode(RunStarted(RUN, T0))
    with pytest.raises(ValueError, match="upgrade runjournal"):
        EventCodec().decode(body, EVENT_VERSION + 1)


def insert_old_entry(db: Path, body: bytes, *, source: str, seq: int) -> None:
    """Put a version-0 entry into a database, as an old runjournal would have written it."""
    with sqlite3.connect(db) as conn:
        conn.execute(
            "INSERT INTO journal (source, seq, recorded_at, version, body) VALUES (?, ?, ?, 0, ?)",
            (source, seq, T0, body),
        )
    conn.close()


@pytest.mark.usefixtures("upcaster")
async def test_old_entries_in_a_database_are_upcast_everywhere(tmp_path: Path) -> None:
    db = tmp_path / "old.db"
    async with Tracker.open(db) as tracker:
        experiment = await tracker.create_experiment("old")
        run_id = await tracker.create_run(experiment)
    body = old_metrics_body(run_id, OLD_POINTS, T0 + 3)
    insert_old_entry(db, body, source="01HF0000000000000000OLDSRC", seq=1)

    # The projections never saw the raw insert; rebuilding folds it through the upcaster.
    assert not (await verify(db)).ok
    await rebuild(db)
    assert (await verify(db)).ok
    async with Tracker.open(db) as tracker:
        assert_same(await tracker.get_metrics(run_id, "loss"), OLD_POINTS)

    # An export copies the old bytes and their version; an import upcasts them.
    exported = tmp_path / "old.rjlog"
    await export_events(db, exported)
    old_bodies = [
        b
        for r in map(msgspec.msgpack.Decoder(LogRecord).decode, read_log(exported).records)
        if isinstance(r, EntriesRecord)
        for v, b in zip(r.version, r.body, strict=True)
        if v == 0
    ]
    assert old_bodies == [body]

    fresh = tmp_path / "fresh.db"
    await import_events(fresh, exported)
    store = SqliteBackend(fresh)
    try:
        assert_same(await store.get_metrics(run_id, "loss"), OLD_POINTS)
        versions = {e.version for e in await store.read_journal_raw()}
        assert versions == {EVENT_VERSION}  # stored again in the current shape
    finally:
        await store.close()


async def test_an_entry_of_a_newer_version_makes_the_file_corrupt(tmp_path: Path) -> None:
    path = tmp_path / "future.rjlog"
    encode = msgspec.msgpack.encode
    future = EntryRecord(A, 1, T0, EVENT_VERSION + 1, EventCodec().encode(RunStarted(RUN, T0)))
    with LogWriter(path) as writer:
        writer.write(encode(BlobRecord(ARTIFACT_SHA, ARTIFACT)))
        writer.write(encode(future))
    db = tmp_path / "target.db"
    with pytest.raises(CorruptLogFile, match="upgrade runjournal") as info:
        await import_events(db, path)
    assert (info.value.path, info.value.record) == (str(path), 1)
    store = SqliteBackend(db)
    try:
        assert await store.head() == 0
        assert store.content(ARTIFACT_SHA) is None
    finally:
        await store.close()
