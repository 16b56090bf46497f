"""``journal.Cutoff``: importing and exporting a journal up to a position or a time.

Every cut is checked against :func:`runjournal.journal.state_at` at the same
cut-off, through :func:`tests.snapshot.snapshot`: a cut journal imported into an
empty database must answer every query as the view of the past does.
"""

from __future__ import annotations

import contextlib
import hashlib
import math
from collections.abc import AsyncIterator
from datetime import datetime
from pathlib import Path
from typing import Literal

import anyio.to_thread
import pytest

from runjournal import ArtifactNotFound, RunNotFound, Tracker
from runjournal.events import (
    ArtifactLogged,
    Event,
    ExperimentCreated,
    MetricsLogged,
    ParamsLogged,
    RunCreated,
    RunStarted,
    TagSet,
)
from runjournal.ids import new_id
from runjournal.journal import Cutoff, export_events, import_events, state_at
from runjournal.model import MetricPoint
from runjournal.stores.base import Content, NewEntry, Store, recorded_at
from runjournal.stores.sqlite import SqliteBackend
from tests.conftest import StoreKind, closing, make_store
from tests.snapshot import snapshot

SourceKind = Literal["path", "store"]


@contextlib.asynccontextmanager
async def opened(path: Path) -> AsyncIterator[SqliteBackend]:
    store = SqliteBackend(path)
    try:
        yield store
    finally:
        await store.close()


async def same_as_state_at(db: Path, source: Store | Path, cut: Cutoff) -> None:
    """The database ``db`` answers every query as ``state_at(source, <cut>)`` does."""
    view = await state_at(source, position=cut.position, time=cut.time)
    async with opened(db) as store:
        assert await snapshot(store) == await snapshot(view)


# -- the rule itself -----------------------------------------------------------------------------
def test_a_cutoff_keeps_entries_within_both_bounds_and_stops_at_its_position() -> None:
    at_position = Cutoff(position=3)
    assert [at_position.keeps(p, 1e12) for p in (1, 3, 4)] == [True, True, False]
    assert [at_position.passed(p) for p in (0, 2, 3, 9)] == [False, False, True, True]

    at_time = Cutoff(time=1e9)
    assert [at_time.keeps(10**6, t) for t in (1e9 - 0.5, 1e9, 1e9 + 0.5)] == [True, True, False]
    assert not at_time.passed(10**6)  # in a merged journal a later entry may be older

    both = Cutoff(position=3, time=1e9)
    assert both.keeps(3, 1e9)
    assert not both.keeps(4, 1.0)
    assert not both.keeps(1, 1e9 + 1)
    assert Cutoff().keeps(10**9, math.inf)
    assert not Cutoff().passed(10**9)

    assert str(at_position) == "position 3"
    said, moment = str(at_time).split(" ")
    assert said == "time"
    assert datetime.fromisoformat(moment).timestamp() == 1e9  # local time, with its offset
    assert str(both) == f"position 3 and {at_time}"


@pytest.mark.parametrize(
    ("fields", "error"),
    [
        ({"position": -1}, ValueError),
        ({"position": 1.5}, TypeError),
        ({"position": True}, TypeError),
        ({"time": "noon"}, TypeError),
        ({"time": math.nan}, ValueError),
    ],
)
def test_a_cutoff_refuses_what_is_not_a_position_or_a_time(
    fields: dict[str, object], error: type[Exception]
) -> None:
    with pytest.raises(error):
        Cutoff(**fields)  # type: ignore[arg-type]


# -- a journal written by a tracker --------------------------------------------------------------
async def write_history(db: Path) -> int:
    """A database with two runs, params, metrics, an artifact and a deletion; its head."""
    async with Tracker.open(db) as tracker:
        experiment = await tracker.create_experiment("cut", {"lr": 0.1})
        kept = await tracker.create_run(experiment, name="kept")
        await tracker.start_run(kept)
        await tracker.log_params(kept, {"lr": 1e-3, "layers": [1, 2]})
        for step in range(5):
            await tracker.log_metric(kept, "loss", step, 1 / (step + 1))
            await tracker.flush()  # one entry per point: many positions to cut at
        await tracker.log_artifact(kept, "weights", b"w" * 100)
        doomed = await tracker.create_run(experiment, name="doomed")
        await tracker.log_param(doomed, "lr", math.nan)
        await tracker.delete_run(doomed)
        await tracker.set_tag(kept, "phase", "done")
    async with opened(db) as store:
        return await store.head()


@pytest.mark.parametrize("kind", ["path", "store"])
async def test_import_until_a_position_equals_state_at(tmp_path: Path, kind: SourceKind) -> None:
    db = tmp_path / "history.db"
    head = await write_history(db)
    async with opened(db) as live:
        source: Store | Path = db if kind == "path" else live
        for position in (0, 1, 4, head // 2, head - 1, head, head + 10):
            into = tmp_path / f"at-{kind}-{position}.db"
            cut = Cutoff(position=position)
            result = await import_events(into, source, until=cut)
            (imported,) = result.sources
            assert imported.entries == imported.appended == min(position, head)
            assert imported.rejections == []
            assert imported.source.endswith(f" up to position {position}")
            await same_as_state_at(into, db, cut)


# -- a merged journal, whose machines' clocks differ ---------------------------------------------
class Merged:
    """A journal merged from two machines: the kept entries of a cut in time are no prefix.

    Machine ``ahead`` has a clock far ahead; ``behind`` learnt of ``ahead``'s run
    through the merge, then tagged it by its own slow clock. A cut at :attr:`CUT`
    keeps positions 1, 4, 5, 6, 7 and 8. Position 8 tags a run whose creation
    (position 2) is cut, so importing the cut journal rejects it.
    """

    CUT = 50.0
    KEPT = (1, 4, 5, 6, 7, 8)
    KEPT_BLOB = b"kept artifact"
    LATE_BLOB = b"late artifact"

    def __init__(self) -> None:
        self.experiment, self.other_experiment = new_id(), new_id()
        self.early_run, self.late_run = new_id(), new_id()
        self.kept_sha = hashlib.sha256(self.KEPT_BLOB).hexdigest()
        self.late_sha = hashlib.sha256(self.LATE_BLOB).hexdigest()
        late, early = self.late_run, self.early_run
        points = [MetricPoint(step, 0.5, 22.0) for step in range(3)]
        events: list[tuple[str, Event]] = [
            ("ahead", ExperimentCreated(self.experiment, "merged", at=10.0)),  # 1
            ("ahead", RunCreated(late, self.experiment, at=100.0, name="late")),  # 2
            ("ahead", ParamsLogged(late, {"lr": 0.1}, at=101.0)),  # 3
            ("behind", ExperimentCreated(self.other_experiment, "other", at=20.0)),  # 4
            ("behind", RunCreated(early, self.other_experiment, at=21.0, name="early")),  # 5
            ("behind", MetricsLogged(early, "loss", points, at=22.0)),  # 6
            ("behind", ArtifactLogged(early, "k", self.kept_sha, len(self.KEPT_BLOB), 25.0)),  # 7
            ("behind", TagSet(late, "seen", "yes", at=30.0)),  # 8
            ("behind", ArtifactLogged(early, "l", self.late_sha, len(self.LATE_BLOB), 200.0)),
            ("behind", RunStarted(early, at=201.0)),  # 10
        ]
        seqs: dict[str, int] = {}
        self.entries = []
        for source, event in events:
            seqs[source] = seqs.get(source, 0) + 1
            self.entries.append(NewEntry(source, seqs[source], event, recorded_at(event)))
        self.blobs = [
            Content.of_bytes(self.KEPT_BLOB, self.kept_sha),
            Content.of_bytes(self.LATE_BLOB, self.late_sha),
        ]

    async def fill(self, store: Store) -> None:
        result = await anyio.to_thread.run_sync(store.append, self.entries, self.blobs)
        assert result.appended == len(self.entries)


@contextlib.asynccontextmanager
async def merged_store(kind: StoreKind, tmp_path: Path, merged: Merged) -> AsyncIterator[Store]:
    async with closing(make_store(kind, tmp_path)) as store:
        await merged.fill(store)
        yield store


@pytest.mark.parametrize("kind", ["sqlite-file", "memory"])
async def test_import_until_a_time_in_a_merged_journal(tmp_path: Path, kind: StoreKind) -> None:
    merged = Merged()
    cut = Cutoff(time=Merged.CUT)
    async with merged_store(kind, tmp_path, merged) as source:
        kept = [
            e.position for e in await source.read_journal() if cut.keeps(e.position, e.recorded_at)
        ]
        assert tuple(kept) == Merged.KEPT  # not a prefix: 2 and 3 are left out
        into = tmp_path / "then.db"
        result = await import_events(into, source, until=cut)
        (imported,) = result.sources
        assert imported.entries == len(Merged.KEPT)
        assert imported.blobs == 1  # the late artifact's content stays behind
        assert imported.appended == len(Merged.KEPT) - 1
        (rejection,) = imported.rejections
        assert (rejection.source, rejection.seq) == ("behind", 5)  # the tag of a later run
        assert imported.source.endswith(f" up to {cut}")
        await same_as_state_at(into, source, cut)
        async with opened(into) as then:
            assert await then.get_artifact_data(merged.kept_sha) == Merged.KEPT_BLOB
            with pytest.raises(ArtifactNotFound):
                await then.get_artifact_data(merged.late_sha)
            with pytest.raises(RunNotFound):
                await then.get_run(merged.late_run)


async def test_import_until_cuts_each_database_and_leaves_event_logs_whole(
    tmp_path: Path,
) -> None:
    merged = Merged()
    async with merged_store("sqlite-file", tmp_path, merged):
        pass
    log = tmp_path / "merged.rjlog"
    await export_events(tmp_path / "experiments.db", log)
    into = tmp_path / "both.db"
    result = await import_events(into, tmp_path / "experiments.db", log, until=Cutoff(position=1))
    cut, whole = result.sources
    assert (cut.kind, cut.appended) == ("database", 1)
    assert (whole.kind, whole.entries, whole.appended) == ("eventlog", len(merged.entries), 9)
    assert whole.source == str(log)


# -- export --------------------------------------------------------------------------------------
async def test_export_until_a_position_stops_there(tmp_path: Path) -> None:
    db = tmp_path / "history.db"
    head = await write_history(db)
    for position in (0, 3, head - 2, head + 5):
        log = tmp_path / f"upto-{position}.rjlog"
        cut = Cutoff(position=position)
        exported = await export_events(db, log, until=cut)
        assert exported.entries == min(position, head)
        assert exported.last_position == min(position, head)
        into = tmp_path / f"upto-{position}.db"
        await import_events(into, log)
        await same_as_state_at(into, db, cut)
    # It continues an earlier export, and stops at the cut-off all the same.
    rest = await export_events(db, tmp_path / "rest.rjlog", after=3, until=Cutoff(position=6))
    assert (rest.entries, rest.last_position) == (3, 6)


async def test_export_until_a_time_in_a_merged_journal(tmp_path: Path) -> None:
    merged = Merged()
    cut = Cutoff(time=Merged.CUT)
    async with merged_store("sqlite-file", tmp_path, merged) as source:
        log = tmp_path / "then.rjlog"
        exported = await export_events(source, log, until=cut)
        assert exported.entries == len(Merged.KEPT)
        assert exported.blobs == 1
        assert exported.last_position == len(merged.entries)  # read to the end
        into = tmp_path / "then.db"
        result = await import_events(into, log)
        assert result.appended == len(Merged.KEPT) - 1
        await same_as_state_at(into, source, cut)

        # A selection must have been created within the cut-off.
        one = await export_events(source, tmp_path / "early.rjlog", run_id=merged.early_run)
        assert one.entries == 6  # its experiment, creation, points, two artifacts and start
        early = await export_events(
            source, tmp_path / "early-then.rjlog", run_id=merged.early_run, until=cut
        )
        assert early.entries == 4
        with pytest.raises(RunNotFound):
            await export_events(source, tmp_path / "late.rjlog", run_id=merged.late_run, until=cut)
