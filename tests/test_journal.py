"""Export, import and merge, rebuild and verify, time travel and follow (runjournal.journal)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import math
import os
import sqlite3
import struct
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import msgspec
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from runjournal import (
    ArtifactNotFound,
    CorruptLogFile,
    ExperimentNotFound,
    FilterOp,
    NotARunJournalDatabase,
    ParamFilter,
    RunNotFound,
    RunStatus,
    Tracker,
)
from runjournal.eventlog import LogWriter, read_log
from runjournal.events import EventCodec, MetricChunkLogged, RunCreated, RunStarted
from runjournal.journal import (
    BlobRecord,
    EntriesRecord,
    EntryRecord,
    LogRecord,
    StateView,
    export_events,
    follow,
    import_events,
    rebuild,
    state_at,
    verify,
)
from runjournal.stores.base import Queries, Store
from runjournal.stores.sqlite import SqliteBackend
from tests.conftest import StoreKind, assert_identical, closing, make_store
from tests.strategies import param_values

KINDS: list[StoreKind] = ["sqlite-file", "memory"]
NAN, INF = math.nan, math.inf


# -- helpers -------------------------------------------------------------------------------------
@contextlib.asynccontextmanager
async def opened(path: Path) -> AsyncIterator[SqliteBackend]:
    store = SqliteBackend(path)
    try:
        yield store
    finally:
        await store.close()


def builtins(value: Any) -> Any:
    """Plain values to compare with ``assert_identical`` (bytes stay bytes)."""
    return msgspec.to_builtins(value, builtin_types=(bytes,))


async def snapshot(q: Queries) -> Any:
    """Everything the query API answers, as plain values."""
    state: dict[str, Any] = {}
    for experiment in await q.list_experiments():
        runs: dict[str, Any] = {}
        for run in await q.list_runs(experiment.id):
            keys = await q.list_metric_keys(run.id)
            artifacts = await q.list_artifacts(run.id)
            runs[run.id] = {
                "run": run,
                "params": await q.get_params(run.id),
                "metrics": {k: await q.get_metrics(run.id, k) for k in keys},
                "artifacts": artifacts,
                "contents": [await q.get_artifact_data(a.sha256) for a in artifacts],
                "span_id": await q.get_span_id(run.id),
            }
        state[experiment.id] = {"experiment": experiment, "runs": runs}
    state["lr<1e-3"] = [
        r.id for r in await q.filter_runs(None, [ParamFilter("lr", FilterOp.LT, 1e-3)])
    ]
    state["all runs"] = [r.id for r in await q.filter_runs(None, [])]
    return builtins(state)


async def journal_of(store: Store) -> list[Any]:
    return [builtins((e.source, e.seq, e.recorded_at, e.event)) for e in await store.read_journal()]


class Ids(msgspec.Struct):
    exp_a: str
    exp_b: str
    exp_gone: str
    run_ok: str
    run_failed: str
    run_cancelled: str
    run_pending: str
    run_b: str
    run_deleted: str
    run_in_gone: str

    @property
    def gone_runs(self) -> list[str]:
        return [self.run_deleted, self.run_in_gone]


PARAMS: dict[str, Any] = {
    "none": None,
    "flag": True,
    "off": False,
    "int": -42,
    "big": 2**63 - 1,
    "small": -(2**63),
    "lr": 3e-4,
    "nan": NAN,
    "inf": INF,
    "ninf": -INF,
    "text": "héllo ✓",
    "empty": "",
    "list": [1, "two", 3.0, [None, True]],
    "dict": {"a": {"b": [False, 0.5]}},
    "empty_list": [],
    "empty_dict": {},
}


async def populate(tracker: Tracker) -> Ids:
    """A history with every kind of data, every run status, and deletions."""
    exp_a = await tracker.create_experiment(
        "alpha",
        {"model": "gpt2", "layers": [1, 2], "nan": NAN},
        description="the first",
        tags={"team": "ml"},
    )
    exp_b = await tracker.create_experiment("beta")
    exp_gone = await tracker.create_experiment("gone")

    run_ok = await tracker.create_run(exp_a, name="ok", tags={"seed": "1"})
    await tracker.start_run(run_ok)
    await tracker.log_params(run_ok, PARAMS)
    await tracker.log_param(run_ok, "int", 7)  # last write wins
    for step in range(20):
        await tracker.log_metric(run_ok, "loss", step, 1.0 / (step + 1))
    for step, value in enumerate([NAN, INF, -INF, 0.0, -0.0, 1e308]):
        await tracker.log_metric(run_ok, "weird", step, value)
    await tracker.log_metrics(run_ok, {"acc": 0.5, "f1": 0.25}, 3)
    await tracker.set_tag(run_ok, "stage", "train")
    await tracker.set_tag(run_ok, "stage", "eval")
    await tracker.set_span_id(run_ok, "span-1")
    await tracker.set_span_id(run_ok, "span-2")
    await tracker.log_artifact(run_ok, "weights.bin", b"\x00weights\xff" * 10)
    await tracker.log_artifact(run_ok, "config.json", b'{"a": 1}')
    await tracker.complete_run(run_ok, RunStatus.SUCCESS)

    run_failed = await tracker.create_run(exp_a, name="failed")
    await tracker.start_run(run_failed)
    await tracker.log_param(run_failed, "lr", 1e-2)
    await tracker.log_metric(run_failed, "loss", 0, NAN)
    await tracker.complete_run(run_failed, RunStatus.FAILED)

    run_cancelled = await tracker.create_run(exp_a)
    await tracker.complete_run(run_cancelled, RunStatus.CANCELLED)
    run_pending = await tracker.create_run(exp_a, tags={"note": "waiting"})

    run_b = await tracker.create_run(exp_b, name="b")
    await tracker.start_run(run_b)
    await tracker.log_param(run_b, "lr", 1e-4)
    await tracker.log_artifact(run_b, "same.bin", b'{"a": 1}')  # same content as run_ok's
    for step in range(5):
        await tracker.log_metric(run_b, "loss", step, float(step), timestamp=1000.0 + step)

    run_deleted = await tracker.create_run(exp_a, name="deleted")
    await tracker.start_run(run_deleted)
    await tracker.log_param(run_deleted, "lr", 1e-5)
    await tracker.log_metric(run_deleted, "loss", 0, 1.0)
    await tracker.log_artifact(run_deleted, "lost.bin", b"lost")
    await tracker.set_span_id(run_deleted, "span-x")
    await tracker.delete_run(run_deleted)

    run_in_gone = await tracker.create_run(exp_gone)
    await tracker.log_param(run_in_gone, "lr", 1e-6)
    await tracker.delete_experiment(exp_gone)
    await tracker.flush()
    return Ids(
        exp_a,
        exp_b,
        exp_gone,
        run_ok,
        run_failed,
        run_cancelled,
        run_pending,
        run_b,
        run_deleted,
        run_in_gone,
    )


async def assert_gone(q: Queries, ids: Ids) -> None:
    """Deleted runs and experiments are nowhere to be found."""
    for run_id in ids.gone_runs:
        with pytest.raises(RunNotFound):
            await q.get_params(run_id)
        with pytest.raises(RunNotFound):
            await q.get_metrics(run_id, "loss")
    with pytest.raises(ExperimentNotFound):
        await q.list_runs(ids.exp_gone)
    everything = {r.id for r in await q.filter_runs(None, [])}
    assert everything.isdisjoint(ids.gone_runs)
    assert ids.exp_gone not in {e.id for e in await q.list_experiments()}


# -- export and import ---------------------------------------------------------------------------
@pytest.mark.parametrize("kind", KINDS)
async def test_an_imported_export_answers_every_query_alike(
    tmp_path: Path, kind: StoreKind
) -> None:
    async with closing(make_store(kind, tmp_path)) as source:
        async with Tracker(source) as tracker:
            ids = await populate(tracker)
            committed = tracker.stats().committed
        before = await snapshot(source)
        assert len(before[ids.exp_a]["runs"]) == 4  # the snapshot is not trivially empty
        assert len(before[ids.exp_a]["runs"][ids.run_ok]["metrics"]["weird"]) == 6
        head = await source.head()

        log = tmp_path / "all.rjlog"
        exported = await export_events(source, log)
        assert (exported.entries, exported.last_position) == (head, head)
        assert exported.events == committed  # one per metric point, as the writer counts them
        assert exported.blobs == 3  # distinct contents, the deleted run's included

        target = tmp_path / "target.db"
        imported = await import_events(target, log)
        [report] = imported.sources
        assert (report.source, report.kind, report.entries) == (str(log), "eventlog", head)
        assert (report.appended, report.duplicates, report.rejected) == (head, 0, 0)
        assert (report.events, report.blobs) == (committed, 3)

        async with opened(target) as store:
            assert_identical(await snapshot(store), before)
            assert_identical(await journal_of(store), await journal_of(source))
            await assert_gone(store, ids)
            await rebuild(store)
            assert_identical(await snapshot(store), before)
            await assert_gone(store, ids)
            assert (await verify(store)).ok


async def test_importing_a_database_directly_equals_importing_its_export(tmp_path: Path) -> None:
    source = tmp_path / "source.db"
    async with Tracker.open(source) as tracker:
        ids = await populate(tracker)
    result = await import_events(tmp_path / "target.db", source)
    assert result.sources[0].kind == "database"
    async with opened(source) as a, opened(tmp_path / "target.db") as b:
        assert result.appended == await a.head()
        assert_identical(await snapshot(b), await snapshot(a))
        await assert_gone(b, ids)


async def test_importing_twice_changes_nothing(tmp_path: Path) -> None:
    async with Tracker.open_in_memory() as tracker:
        await populate(tracker)
        log = tmp_path / "all.rjlog"
        exported = await export_events(tracker.store, log)
    target = tmp_path / "target.db"
    first = await import_events(target, log)
    assert first.appended == exported.entries
    async with opened(target) as store:
        before = (await snapshot(store), await journal_of(store))
        blob_count = sqlite3.connect(target).execute("SELECT count(*) FROM chunks").fetchone()
        again = await import_events(store, log, log)
        assert [(s.appended, s.duplicates, s.rejected) for s in again.sources] == [
            (0, exported.entries, 0),
            (0, exported.entries, 0),
        ]
        assert_identical((await snapshot(store), await journal_of(store)), before)
        assert (
            sqlite3.connect(target).execute("SELECT count(*) FROM chunks").fetchone() == blob_count
        )


async def test_an_incremental_export_continues_the_previous_one(tmp_path: Path) -> None:
    source = tmp_path / "source.db"
    async with Tracker.open(source) as tracker:
        ids = await populate(tracker)
        first = await export_events(source, tmp_path / "first.rjlog")
        await tracker.log_metric(ids.run_b, "loss", 99, 9.9)
        await tracker.complete_run(ids.run_b, RunStatus.SUCCESS)
        await tracker.flush()
        second = await export_events(source, tmp_path / "second.rjlog", after=first.last_position)
    async with opened(source) as store:
        head = await store.head()
        want = await snapshot(store)
    assert second.entries == head - first.last_position == 2
    assert second.last_position == head
    result = await import_events(
        tmp_path / "target.db", tmp_path / "first.rjlog", tmp_path / "second.rjlog"
    )
    assert [s.appended for s in result.sources] == [first.entries, 2]
    assert result.rejected == 0
    async with opened(tmp_path / "target.db") as target:
        assert_identical(await snapshot(target), want)


async def test_an_export_of_one_experiment_or_one_run(tmp_path: Path) -> None:
    async with Tracker.open_in_memory() as tracker:
        ids = await populate(tracker)
        source = tracker.store
        whole = await snapshot(source)

        result = await export_events(source, tmp_path / "b.rjlog", experiment_id=ids.exp_b)
        assert result.blobs == 1
        await import_events(tmp_path / "b.db", tmp_path / "b.rjlog")
        async with opened(tmp_path / "b.db") as b:
            assert [e.id for e in await b.list_experiments()] == [ids.exp_b]
            assert_identical((await snapshot(b))[ids.exp_b], whole[ids.exp_b])

        await export_events(source, tmp_path / "run.rjlog", run_id=ids.run_failed)
        imported = await import_events(tmp_path / "run.db", tmp_path / "run.rjlog")
        assert imported.rejected == 0
        async with opened(tmp_path / "run.db") as one:
            assert [e.id for e in await one.list_experiments()] == [ids.exp_a]
            runs = (await snapshot(one))[ids.exp_a]["runs"]
            assert_identical(runs, {ids.run_failed: whole[ids.exp_a]["runs"][ids.run_failed]})

        # A deleted run exports with its tombstone, and imports as deleted.
        await export_events(source, tmp_path / "gone.rjlog", run_id=ids.run_in_gone)
        await import_events(tmp_path / "gone.db", tmp_path / "gone.rjlog")
        async with opened(tmp_path / "gone.db") as gone:
            assert await gone.list_experiments() == []
            with pytest.raises(RunNotFound):
                await gone.get_run(ids.run_in_gone)

        # Both filters: the run must be one of the experiment's.
        empty = await export_events(
            source, tmp_path / "none.rjlog", experiment_id=ids.exp_b, run_id=ids.run_ok
        )
        assert (empty.entries, empty.events) == (0, 0)

        with pytest.raises(ExperimentNotFound):
            await export_events(source, tmp_path / "x.rjlog", experiment_id="no-such-experiment")
        with pytest.raises(RunNotFound):
            await export_events(source, tmp_path / "x.rjlog", run_id="no-such-run")
        left = await asyncio.to_thread(os.listdir, tmp_path)
        assert "x.rjlog" not in left
        assert [name for name in left if ".tmp-" in name] == []


async def test_paths_to_missing_databases_are_refused_except_as_import_target(
    tmp_path: Path,
) -> None:
    missing = tmp_path / "missing.db"
    with pytest.raises(FileNotFoundError):
        await export_events(missing, tmp_path / "out.rjlog")
    with pytest.raises(FileNotFoundError):
        await verify(missing)
    with pytest.raises(FileNotFoundError):
        await state_at(missing)
    with pytest.raises(FileNotFoundError):
        await import_events(tmp_path / "new.db", missing)
    assert not missing.exists()
    with pytest.raises(ValueError, match="at least one source"):
        await import_events(tmp_path / "new.db")


# -- merging the journals of separate processes --------------------------------------------------
MACHINE = """
import asyncio, json, sys
from runjournal import Tracker
from runjournal.journal import import_events

async def main(db, name, seed, shared):
    await import_events(db, seed)
    async with Tracker.open(db) as tracker:
        own = await tracker.create_experiment(f"machine-{name}", {"machine": name})
        runs = []
        for i, experiment in enumerate([shared, shared, own]):
            run = await tracker.create_run(experiment, name=f"{name}-{i}")
            await tracker.start_run(run)
            await tracker.log_params(run, {"machine": name, "i": i})
            for step in range(50):
                await tracker.log_metric(run, "loss", step, 1.0 / (step + 1))
            await tracker.complete_run(run, "SUCCESS")
            runs.append(run)
        await tracker.log_artifact(runs[0], "model", f"weights of {name}".encode())
    print(json.dumps({"experiment": own, "runs": runs}))

asyncio.run(main(*sys.argv[1:]))
"""


async def run_python(*args: str) -> str:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-c", *args, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
    )
    out, err = await proc.communicate()
    assert proc.returncode == 0, err.decode()
    return out.decode()


async def test_journals_of_three_processes_merge_into_one_database(tmp_path: Path) -> None:
    """Three machines share one experiment (from a seed export) and each adds its own."""
    seed_db = tmp_path / "seed.db"
    async with Tracker.open(seed_db) as tracker:
        shared = await tracker.create_experiment("shared", {"dataset": "wiki"})
    seed = await export_events(seed_db, tmp_path / "seed.rjlog")

    names = ["a", "b", "c"]
    outputs = await asyncio.gather(
        *(
            run_python(MACHINE, str(tmp_path / f"{n}.db"), n, str(tmp_path / "seed.rjlog"), shared)
            for n in names
        )
    )
    made = {n: json.loads(out) for n, out in zip(names, outputs, strict=True)}
    all_runs = {run for m in made.values() for run in m["runs"]}
    assert len(all_runs) == 9

    # Machine b's journal travels as a file; a's and c's are read from their databases.
    await export_events(tmp_path / "b.db", tmp_path / "b.rjlog")
    sources = [tmp_path / "a.db", tmp_path / "b.rjlog", tmp_path / "c.db"]
    merged = tmp_path / "merged.db"
    result = await import_events(merged, *sources)
    assert result.rejected == 0
    # The seed's entries came with every machine; only the first import appended them.
    assert [s.duplicates for s in result.sources] == [0, seed.entries, seed.entries]

    async with opened(merged) as store:
        runs = await store.filter_runs(None, [])
        assert sorted(r.id for r in runs) == sorted(all_runs)  # every run, once
        assert {r.status for r in runs} == {RunStatus.SUCCESS}
        shared_runs = await store.list_runs(shared)
        assert sorted(r.id for r in shared_runs) == sorted(
            run for m in made.values() for run in m["runs"][:2]
        )
        for name, m in made.items():
            own = await store.list_runs(m["experiment"])
            assert [r.id for r in own] == [m["runs"][2]]
            assert (await store.get_experiment(m["experiment"])).config == {"machine": name}
            for i, run_id in enumerate(m["runs"]):
                assert await store.get_params(run_id) == {"machine": name, "i": i}
                points = await store.get_metrics(run_id, "loss")
                assert [p.step for p in points] == list(range(50))
            [artifact] = await store.list_artifacts(m["runs"][0])
            assert await store.get_artifact_data(artifact.sha256) == f"weights of {name}".encode()
        head = await store.head()
        assert (await verify(store)).ok

        again = await import_events(store, *sources)
        assert again.appended == 0
        assert await store.head() == head


# -- corrupt files -------------------------------------------------------------------------------
def record_spans(data: bytes) -> list[tuple[int, int]]:
    """The byte range of each record frame, found by walking the format by hand."""
    pos = 8  # magic
    (size,) = struct.unpack_from(">I", data, pos)
    pos += 8 + size  # the header frame
    spans: list[tuple[int, int]] = []
    while True:
        (size,) = struct.unpack_from(">I", data, pos)
        if size == 0xFFFFFFFF:
            return spans
        spans.append((pos, pos + 8 + size))
        pos += 8 + size


async def test_any_flipped_byte_or_truncation_imports_nothing(tmp_path: Path) -> None:
    async with Tracker.open_in_memory() as tracker:
        experiment = await tracker.create_experiment("small")
        run_id = await tracker.create_run(experiment)
        await tracker.log_param(run_id, "lr", 0.1)
        await tracker.log_artifact(run_id, "a", b"abc")
        await tracker.flush()
        good = tmp_path / "good.rjlog"
        exported = await export_events(tracker.store, good)
    data = good.read_bytes()
    spans = record_spans(data)
    # One block of the 4 entries, then a chunk and its content.
    assert (exported.entries, exported.blobs, len(spans)) == (4, 1, 3)
    assert len(data) < 2000

    target = tmp_path / "target.db"
    async with Tracker.open(target) as other:  # the target already holds something
        await other.create_experiment("already here")
    bad = tmp_path / "bad.rjlog"
    cases = [data[:i] + bytes([data[i] ^ 0xFF]) + data[i + 1 :] for i in range(len(data))]
    cases += [data[:length] for length in range(len(data))]
    async with opened(target) as store:
        before = (await snapshot(store), await store.head())
        for case, damaged in enumerate(cases):
            offset = case if case < len(data) else case - len(data)
            bad.write_bytes(damaged)
            # A good file beside a bad one is not imported either.
            with pytest.raises(CorruptLogFile) as info:
                await import_events(store, good, bad)
            error = info.value
            assert error.path == str(bad), (case, error)
            assert str(bad) in str(error)
            inside = [k for k, (start, end) in enumerate(spans) if start <= offset < end]
            if inside:
                assert error.record == inside[0], (case, error)
                assert f"record {inside[0]}" in str(error)
            elif offset < spans[0][0]:
                assert error.record is None, (case, error)
            else:  # in the trailer: its sentinel may read as the header of one more record
                assert error.record in (None, len(spans)), (case, error)
            assert await store.head() == before[1], case
        assert_identical((await snapshot(store), await store.head()), before)


async def test_damaged_records_inside_a_valid_file_import_nothing(tmp_path: Path) -> None:
    encode = msgspec.msgpack.encode
    codec = EventCodec()
    good_entry = encode(
        EntryRecord("src", 1, 1.0, 1, codec.encode(RunStarted("01HF0000000000000000RUN001", 1.0)))
    )
    cases = {
        "not a journal record": [good_entry, b"\xc1garbage"],
        "unknown record": [good_entry, encode({"type": "something.else", "x": 1})],
        "cannot be decoded": [good_entry, encode(EntryRecord("src", 2, 1.0, 1, b"\x93\x01"))],
        "does not match its SHA-256": [good_entry, encode(BlobRecord("0" * 64, b"data"))],
    }
    target = tmp_path / "target.db"
    for reason, records in cases.items():
        path = tmp_path / f"{reason}.rjlog"
        with LogWriter(path) as writer:
            writer.write_many(records)
        with pytest.raises(CorruptLogFile, match=reason) as info:
            await import_events(target, path)
        assert (info.value.path, info.value.record) == (str(path), 1)
    async with opened(target) as store:
        assert await store.head() == 0


async def test_foreign_files_are_refused(tmp_path: Path) -> None:
    text = tmp_path / "notes.txt"
    text.write_text("hello")
    with pytest.raises(CorruptLogFile, match="bad magic"):
        await import_events(tmp_path / "t.db", text)
    foreign = tmp_path / "other.sqlite"
    with sqlite3.connect(foreign) as conn:
        conn.execute("CREATE TABLE notes (body TEXT)")
    conn.close()
    content = foreign.read_bytes()
    with pytest.raises(NotARunJournalDatabase):
        await import_events(tmp_path / "t.db", foreign)
    assert foreign.read_bytes() == content


# -- deletions never come back -------------------------------------------------------------------
async def test_deleted_runs_stay_deleted_whatever_is_imported(tmp_path: Path) -> None:
    """An export made before the deletion, and another machine's later writes to the run."""
    async with Tracker.open(tmp_path / "a.db") as a:
        experiment = await a.create_experiment("e")
        run_id = await a.create_run(experiment)
        await a.start_run(run_id)
        await a.log_metric(run_id, "loss", 0, 1.0)
        await a.flush()
        await export_events(a.store, tmp_path / "before.rjlog")
        await a.delete_run(run_id)
        await a.flush()
        await export_events(a.store, tmp_path / "after.rjlog")

    # Machine b got the run before it was deleted and kept logging to it.
    async with Tracker.open(tmp_path / "b.db") as b:
        await import_events(b.store, tmp_path / "before.rjlog")
        await b.log_metric(run_id, "loss", 1, 0.5)
        await b.set_tag(run_id, "late", "yes")
        await b.complete_run(run_id, RunStatus.SUCCESS)
    await export_events(tmp_path / "b.db", tmp_path / "b.rjlog")

    target = tmp_path / "target.db"
    await import_events(target, tmp_path / "after.rjlog")
    result = await import_events(target, tmp_path / "before.rjlog", tmp_path / "b.rjlog")
    assert result.appended == 0
    late = result.sources[1].rejections
    assert [r.event.split(" ")[0] for r in late] == ["metrics.chunk", "tag.set", "run.completed"]
    assert all("was deleted" in r.reason for r in late)
    for db in (target, tmp_path / "a.db"):
        await rebuild(db)
        async with opened(db) as store:
            with pytest.raises(RunNotFound):
                await store.get_run(run_id)
            assert await store.list_runs(experiment) == []


# -- rebuild and verify --------------------------------------------------------------------------
STATUSES = [RunStatus.SUCCESS, RunStatus.FAILED, RunStatus.CANCELLED]


class Model:
    """What the history should have produced, kept apart from runjournal's own fold."""

    def __init__(self) -> None:
        self.experiments: list[str] = []
        self.runs: dict[str, RunStatus] = {}
        self.run_experiment: dict[str, str] = {}
        self.params: dict[str, dict[str, Any]] = {}
        self.points: dict[tuple[str, str], int] = {}
        self.span_ids: dict[str, str] = {}
        self.deleted: list[str] = []


async def play(tracker: Tracker, data: st.DataObject, model: Model) -> None:
    """Apply a Hypothesis-drawn sequence of tracker calls, keeping the model in step."""
    for _ in range(data.draw(st.integers(0, 60), label="length")):
        # Repeats weight the choice: deletions are rare enough for histories to grow.
        ops = ["experiment", "flush"]
        if model.experiments:
            ops += ["run"] * 3 + ["delete experiment"]
        if model.runs:
            ops += ["start", "complete", "param", "metric"] * 2 + ["span"] * 2
            ops += ["tag", "artifact", "delete run"]
        op = data.draw(st.sampled_from(ops), label="op")
        if op == "experiment":
            model.experiments.append(await tracker.create_experiment("e", {"k": 1}))
        elif op == "flush":
            await tracker.flush()
        elif op == "run":
            experiment = data.draw(st.sampled_from(model.experiments))
            run_id = await tracker.create_run(
                experiment,
                name=data.draw(st.none() | st.text(st.characters(exclude_categories=["Cc", "Cs"]))),
            )
            model.runs[run_id] = RunStatus.PENDING
            model.run_experiment[run_id] = experiment
        elif op == "delete experiment":
            experiment = data.draw(st.sampled_from(model.experiments))
            await tracker.delete_experiment(experiment)
            model.experiments.remove(experiment)
            model.deleted.append(experiment)
            for run_id in [r for r, e in model.run_experiment.items() if e == experiment]:
                if run_id in model.runs:
                    del model.runs[run_id]
                    model.deleted.append(run_id)
        else:
            # Creation order, not id order: ids made in one millisecond sort at random.
            run_id = data.draw(st.sampled_from(list(model.runs)))
            status = model.runs[run_id]
            if op == "start" and status is RunStatus.PENDING:
                await tracker.start_run(run_id)
                model.runs[run_id] = RunStatus.RUNNING
            elif op == "complete" and not status.is_terminal:
                final = data.draw(st.sampled_from(STATUSES))
                if status is RunStatus.RUNNING or final is RunStatus.CANCELLED:
                    await tracker.complete_run(run_id, final)
                    model.runs[run_id] = final
            elif op == "param":
                key = data.draw(st.sampled_from(["lr", "batch", "name"]))
                value = data.draw(param_values)
                await tracker.log_param(run_id, key, value)
                model.params.setdefault(run_id, {})[key] = value
            elif op == "metric":
                key = data.draw(st.sampled_from(["loss", "acc"]))
                for step in range(data.draw(st.integers(1, 5))):
                    await tracker.log_metric(run_id, key, step, data.draw(st.floats()))
                    model.points[run_id, key] = model.points.get((run_id, key), 0) + 1
            elif op == "tag":
                await tracker.set_tag(run_id, data.draw(st.sampled_from(["a", "b"])), "v")
            elif op == "span":
                span_id = data.draw(st.sampled_from(["s1", "s2", "s3"]))
                await tracker.set_span_id(run_id, span_id)
                model.span_ids[run_id] = span_id
            elif op == "artifact":
                await tracker.log_artifact(run_id, "a", data.draw(st.binary(max_size=8)))
            elif op == "delete run":
                await tracker.delete_run(run_id)
                del model.runs[run_id]
                model.deleted.append(run_id)


async def check_against_model(store: Store, model: Model) -> None:
    assert sorted(e.id for e in await store.list_experiments()) == sorted(model.experiments)
    runs = {r.id: r for r in await store.filter_runs(None, [])}
    assert {k: r.status for k, r in runs.items()} == model.runs
    for run_id in model.runs:
        assert_identical(runs[run_id].params, model.params.get(run_id, {}))
        assert await store.get_span_id(run_id) == model.span_ids.get(run_id)
        for key in ("loss", "acc"):
            assert len(await store.get_metrics(run_id, key)) == model.points.get((run_id, key), 0)
    for gone in model.deleted:
        with pytest.raises((RunNotFound, ExperimentNotFound)):
            await (store.get_run(gone) if gone in model.run_experiment else store.list_runs(gone))


async def history_then_rebuild(folder: Path, kind: StoreKind, data: st.DataObject) -> None:
    async with closing(make_store(kind, folder)) as store:
        model = Model()
        async with Tracker(store) as tracker:
            await play(tracker, data, model)
            await tracker.flush()
            await check_against_model(store, model)
            report = await verify(store)
            assert report.ok, report.differences
            assert report.position == await store.head()
            before = await snapshot(store)
            await rebuild(store)
            assert_identical(await snapshot(store), before)
            await check_against_model(store, model)
            assert (await verify(store)).ok


@pytest.mark.parametrize("kind", KINDS)
@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_rebuild_and_verify_agree_after_any_history(
    tmp_path_factory: pytest.TempPathFactory, kind: StoreKind, data: st.DataObject
) -> None:
    asyncio.run(history_then_rebuild(tmp_path_factory.mktemp("history"), kind, data))


async def test_verify_reports_damaged_projections_and_rebuild_repairs_them(tmp_path: Path) -> None:
    db = tmp_path / "damaged.db"
    async with Tracker.open(db) as tracker:
        ids = await populate(tracker)
    async with opened(db) as store:
        good = await snapshot(store)
    assert (await verify(db)).ok

    with sqlite3.connect(db) as conn:
        conn.execute("UPDATE runs SET status = 'RUNNING' WHERE id = ?", (ids.run_failed,))
        conn.execute("DELETE FROM metrics WHERE run_id = ? AND key = 'weird'", (ids.run_ok,))
        conn.execute("DELETE FROM params WHERE run_id = ? AND key = 'lr'", (ids.run_b,))
        conn.execute("UPDATE span_ids SET span_id = 'forged' WHERE run_id = ?", (ids.run_ok,))
        conn.execute("DELETE FROM experiments WHERE id = ?", (ids.exp_b,))
        conn.execute(
            "INSERT INTO runs SELECT ?, experiment_id, name, status, created_at, start_time, "
            "end_time, tags, params, last_activity, hidden FROM runs WHERE id = ?",
            (ids.run_deleted, ids.run_pending),
        )
    conn.close()

    report = await verify(db)
    found = "\n".join(d.what for d in report.differences)
    for expected in [
        f"run {ids.run_failed}",
        f"run {ids.run_ok}: metric keys",
        "filter_runs(lr NE None)",
        f"run {ids.run_ok}: span id",
        f"experiment {ids.exp_b}",
        f"run {ids.run_deleted}",
    ]:
        assert expected in found
    failed = next(d for d in report.differences if d.what == f"run {ids.run_failed}")
    assert (failed.live["status"], failed.journal["status"]) == ("RUNNING", "FAILED")
    deleted = next(d for d in report.differences if d.what == f"run {ids.run_deleted}")
    assert deleted.journal is None

    await rebuild(db)
    assert (await verify(db)).ok
    async with opened(db) as store:
        assert_identical(await snapshot(store), good)


# -- time travel ---------------------------------------------------------------------------------
@pytest.mark.parametrize("kind", KINDS)
async def test_state_at_matches_what_was_seen_while_writing(
    tmp_path: Path, kind: StoreKind
) -> None:
    async with closing(make_store(kind, tmp_path)) as store:
        seen: list[tuple[int, float, Any]] = []

        async def checkpoint() -> None:
            await tracker.flush()
            seen.append((await store.head(), time.time(), await snapshot(store)))
            await asyncio.sleep(0.01)  # what follows is recorded strictly later

        async with Tracker(store) as tracker:
            await checkpoint()
            experiment = await tracker.create_experiment("e", {"lr": 0.1})
            run_id = await tracker.create_run(experiment)
            doomed = await tracker.create_run(experiment)
            await tracker.log_param(doomed, "lr", 1.0)
            await checkpoint()
            await tracker.start_run(run_id)
            await tracker.log_params(run_id, {"lr": 1e-4, "layers": [1, 2]})
            for step in range(10):
                await tracker.log_metric(run_id, "loss", step, 1 / (step + 1))
            await checkpoint()
            for step in range(10, 20):
                await tracker.log_metric(run_id, "loss", step, NAN)
            sha = await tracker.log_artifact(run_id, "w", b"weights")
            await tracker.set_span_id(run_id, "span")
            await tracker.delete_run(doomed)
            await checkpoint()
            await tracker.complete_run(run_id, RunStatus.SUCCESS)
            await tracker.log_param(run_id, "lr", 2e-4)
            await checkpoint()
            await tracker.delete_experiment(experiment)
            await checkpoint()

        assert len({position for position, _, _ in seen}) == len(seen)  # every phase wrote
        for position, moment, state in seen:
            by_position = await state_at(store, position=position)
            assert by_position.position == position
            assert_identical(await snapshot(by_position), state)
            by_time = await state_at(store, time=moment)
            assert by_time.position == position
            assert_identical(await snapshot(by_time), state)

        # Read back: the run as it stood one phase in, and its artifact not there yet.
        early = await state_at(store, position=seen[2][0])
        assert await early.get_run_status(run_id) is RunStatus.RUNNING
        assert len(await early.get_metrics(run_id, "loss")) == 10
        assert await early.get_params(doomed) == {"lr": 1.0}
        with pytest.raises(ArtifactNotFound):
            await early.get_artifact_data(sha)
        later = await state_at(store, position=seen[3][0])
        assert await later.get_artifact_data(sha) == b"weights"
        with pytest.raises(RunNotFound):
            await later.get_run(doomed)
        done = await state_at(store, position=seen[4][0])
        assert await done.get_run_status(run_id) is RunStatus.SUCCESS
        assert (await state_at(store)).position == seen[-1][0]
        assert (await state_at(store, position=10**9)).position == seen[-1][0]
        with pytest.raises(ValueError, match="not both"):
            await state_at(store, position=1, time=1.0)


async def test_state_at_a_path_reads_artifacts_after_the_call(tmp_path: Path) -> None:
    db = tmp_path / "db.db"
    async with Tracker.open(db) as tracker:
        run_id = await tracker.create_run(await tracker.create_experiment("e"))
        sha = await tracker.log_artifact(run_id, "a", b"content")
    view = await state_at(db)
    assert isinstance(view, StateView)
    assert await view.get_artifact_data(sha) == b"content"
    assert [a.sha256 for a in await view.list_artifacts(run_id)] == [sha]


# -- follow --------------------------------------------------------------------------------------
async def test_follow_catches_up_then_sees_new_entries(tmp_path: Path) -> None:
    async with Tracker.open_in_memory() as tracker:
        experiment = await tracker.create_experiment("e")
        run_id = await tracker.create_run(experiment)
        await tracker.flush()
        async with contextlib.aclosing(
            follow(tracker.store, after=1, poll_interval=0.01)
        ) as entries:
            position, event = await anext(entries)
            assert position == 2
            assert isinstance(event, RunCreated)
            assert event.run_id == run_id
            for step in range(5):
                await tracker.log_metric(run_id, "loss", step, float(step))
            await tracker.flush()
            position, event = await asyncio.wait_for(anext(entries), 2)
            assert position == 3
            assert isinstance(event, MetricChunkLogged)
            assert [p.step for p in event.points] == [0, 1, 2, 3, 4]  # one entry, one batch
    with pytest.raises(ValueError, match="poll_interval"):
        follow(tracker.store, poll_interval=0)


WRITER = """
import asyncio, sys
from runjournal import Tracker

async def main(db):
    async with Tracker.open(db) as tracker:
        experiment = await tracker.create_experiment("followed")
        run_id = await tracker.create_run(experiment)
        await tracker.flush()
        print(run_id, flush=True)
        for line in sys.stdin:  # each line is a barrier: commit one batch, then wait
            for step in range(3):
                await tracker.log_metric(run_id, "loss", step, 0.5)
            await tracker.flush()
            print("committed", flush=True)

asyncio.run(main(sys.argv[1]))
"""


async def test_follow_sees_another_process_commit_while_it_waits(tmp_path: Path) -> None:
    """The writer commits a batch, then blocks until the follower has received it.

    Only the commit can make the entry visible: the writer does nothing else
    until it is released, so a follower that missed it would wait forever
    (the timeouts here only turn such a hang into a failure).
    """
    db = tmp_path / "followed.db"
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        WRITER,
        str(db),
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
    )
    assert proc.stdin is not None
    assert proc.stdout is not None
    try:
        run_id = (await asyncio.wait_for(proc.stdout.readline(), 30)).decode().strip()
        async with contextlib.aclosing(follow(db)) as entries:
            caught_up = [await anext(entries), await anext(entries)]
            assert [p for p, _ in caught_up] == [1, 2]
            assert isinstance(caught_up[1][1], RunCreated)
            for round_ in range(3):
                proc.stdin.write(b"go\n")
                committed = await asyncio.wait_for(proc.stdout.readline(), 30)
                assert committed == b"committed\n"
                position, event = await asyncio.wait_for(anext(entries), 30)
                assert proc.returncode is None  # still waiting at the barrier
                assert position == 3 + round_
                assert isinstance(event, MetricChunkLogged)
                assert (event.run_id, event.count) == (run_id, 3)
    finally:
        proc.stdin.close()
        await asyncio.wait_for(proc.wait(), 30)
    assert proc.returncode == 0


# -- the file format -----------------------------------------------------------------------------
async def test_export_copies_stored_bodies_byte_for_byte(tmp_path: Path) -> None:
    db = tmp_path / "db.db"
    async with Tracker.open(db) as tracker:
        run_id = await tracker.create_run(await tracker.create_experiment("e"))
        await tracker.log_metrics(run_id, {"a": NAN, "b": INF}, 0)
    stored = [
        (s, q, t, v, bytes(b))
        for s, q, t, v, b in sqlite3.connect(db).execute(
            "SELECT source, seq, recorded_at, version, body FROM journal ORDER BY position"
        )
    ]
    await export_events(db, tmp_path / "out.rjlog")
    decode = msgspec.msgpack.Decoder(LogRecord).decode
    records = [decode(r) for r in read_log(tmp_path / "out.rjlog").records]
    exported = [
        (r.sources[i], q, t, v, b)
        for r in records
        if isinstance(r, EntriesRecord)
        for i, q, t, v, b in zip(r.source, r.seq, r.recorded_at, r.version, r.body, strict=True)
    ]
    assert exported == stored
    assert len(stored) == 4


async def test_a_bad_single_source_leaves_no_target_database(tmp_path: Path) -> None:
    bad = tmp_path / "bad.rjlog"
    bad.write_bytes(b"not an event log")
    target = tmp_path / "target.db"
    with pytest.raises(CorruptLogFile, match=r"bad\.rjlog"):
        await import_events(target, bad)
    assert not target.exists()
