"""Case 4, replay: ``rebuild()`` of a journal, and export plus import of the same, in events/s.

An event is what a tracker accepts: one per metric point, one per run created, params logged
and so on (``Tracker.stats()`` counts the same way). The writer stores consecutive points of
one (run, key) as one journal entry, so the number of entries is reported beside it. Three
journals, all logged through the tracker:

- ``long run``: case 2's shape, one run with 10 keys × 100,000 steps;
- ``sweep``: 1,000 runs, each created, started, given 20 params, logging 10 keys × 100 steps
  and completed (1,004,001 events);
- ``no metrics``: the worst case for entries, 100,000 params and tag events on 1,000 runs,
  each its own journal entry.

Export and import come from ``runjournal.journal`` (``export_events(store_or_path, dest)``,
``import_events(store_or_path, *sources)``); while that module is missing they report N/A.
Export writes event-log format 2 (blocks of entries that name each source once); the export
row's note gives the file's bytes per event.

The ``floor`` rows time, on the no-metrics journal, what no replay of a journal of one event per
entry can beat: fetching its rows with sqlite3 (export reads them all), decoding its bodies
(rebuild and import decode each) and inserting its rows with one ``executemany`` (import).
"""

from __future__ import annotations

import dataclasses
import functools
import importlib
import inspect
import sqlite3
import time
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any

from benchmarks._harness import (
    KEYS,
    Case,
    CaseResult,
    Context,
    Row,
    at_least,
    log_points,
    raw_database,
    remove_db,
    run_async,
    tracked_run,
)
from benchmarks.case_read import params_for
from runjournal import Tracker
from runjournal.events import EventCodec
from runjournal.stores.sqlite import SqliteBackend

__all__ = ["CASE", "journal_api"]

EVENTS_TARGET = 500_000.0


@dataclasses.dataclass(frozen=True, slots=True)
class Journal:
    """A built journal: where it is and how many events and entries it holds."""

    name: str
    path: Path
    events: int
    entries: int


def _entries(path: Path) -> int:
    conn = sqlite3.connect(path)
    try:
        return int(conn.execute("SELECT count(*) FROM journal").fetchone()[0])
    finally:
        conn.close()


def _projection_counts(path: Path) -> dict[str, int]:
    """Rows per projection table: what rebuild() must reproduce."""
    conn = sqlite3.connect(path)
    try:
        tables = [
            str(r[0])
            for r in conn.execute(
                "SELECT name FROM sqlite_master WHERE type = 'table' "
                "AND name NOT IN ('journal', 'blobs', 'meta') ORDER BY name"
            )
        ]
        return {t: int(conn.execute(f"SELECT count(*) FROM {t}").fetchone()[0]) for t in tables}
    finally:
        conn.close()


async def _long_run(path: Path, steps: int) -> int:
    async with tracked_run(path) as (tracker, run_id):
        await log_points(tracker, run_id, KEYS, steps, "nowait")
        await tracker.flush()
        return tracker.stats().committed


async def _sweep(path: Path, runs: int, steps: int) -> int:
    remove_db(path)
    async with Tracker.open(path) as tracker:
        experiment_id = await tracker.create_experiment("sweep")
        for i in range(runs):
            run_id = await tracker.create_run(experiment_id, name=f"trial-{i}")
            await tracker.start_run(run_id)
            await tracker.log_params(run_id, params_for(i))
            await log_points(tracker, run_id, KEYS, steps, "nowait")
            await tracker.complete_run(run_id, "SUCCESS")
        await tracker.flush()
        return tracker.stats().committed


async def _no_metrics(path: Path, runs: int, events: int) -> int:
    remove_db(path)
    async with Tracker.open(path) as tracker:
        experiment_id = await tracker.create_experiment("tags")
        run_ids = [await tracker.create_run(experiment_id) for _ in range(runs)]
        for i in range(events - runs - 1):
            run_id = run_ids[i % runs]
            if i % 2:
                await tracker.set_tag(run_id, f"tag_{i % 20}", str(i))
            else:
                await tracker.log_params(run_id, {f"param_{i % 20}": i})
        await tracker.flush()
        return tracker.stats().committed


async def _rebuild(path: Path) -> float:
    store = SqliteBackend(path)
    await store.open()
    try:
        start = time.perf_counter()
        await store.rebuild()
        return time.perf_counter() - start
    finally:
        await store.close()


def journal_api() -> tuple[Callable[..., Any], Callable[..., Any]] | None:
    """``export_events`` and ``import_events`` if ``runjournal.journal`` provides them."""
    try:
        module = importlib.import_module("runjournal.journal")
    except ImportError:
        return None
    export = getattr(module, "export_events", None)
    import_ = getattr(module, "import_events", None)
    if not callable(export) or not callable(import_):
        return None
    return export, import_


async def _call(function: Callable[..., Any], *args: Any) -> tuple[float, Any]:
    """Time one call of a function that may be sync or async; returns (seconds, its result)."""
    start = time.perf_counter()
    outcome = function(*args)
    if inspect.isawaitable(outcome):
        outcome = await outcome
    return time.perf_counter() - start, outcome


def _replay_rows(context: Context, journal: Journal) -> list[Row]:
    label = f"{journal.name} ({journal.events:,} events, {journal.entries:,} entries)"
    before = _projection_counts(journal.path)
    seconds = run_async(_rebuild(journal.path))
    if _projection_counts(journal.path) != before:
        raise AssertionError(f"{journal.name}: rebuild() changed the projections' row counts")
    rows = [
        Row(
            f"rebuild(), {label}",
            journal.events / seconds,
            "events/s",
            at_least(EVENTS_TARGET),
            f"{seconds:.2f} s",
        )
    ]
    api = journal_api()
    if api is None:
        missing = "runjournal.journal.export_events/import_events not available yet"
        return [
            *rows,
            Row(f"export, {journal.name}", None, "events/s", at_least(EVENTS_TARGET), missing),
            Row(f"import, {journal.name}", None, "events/s", at_least(EVENTS_TARGET), missing),
        ]
    export, import_ = api
    dump = context.config.workdir / f"{journal.path.stem}.rjlog"
    dump.unlink(missing_ok=True)
    target = context.path(f"{journal.path.stem}-imported.db")
    exported, written = run_async(_call(export, str(journal.path), str(dump)))
    imported, report = run_async(_call(import_, str(target), str(dump)))
    if getattr(written, "events", journal.events) != journal.events:
        raise AssertionError(f"{journal.name}: exported {written.events} events")
    if getattr(report, "rejected", 0) or _entries(target) != journal.entries:
        raise AssertionError(f"{journal.name}: imported {_entries(target)} entries ({report})")
    size = dump.stat().st_size
    return [
        *rows,
        Row(
            f"export, {journal.name}",
            journal.events / exported,
            "events/s",
            at_least(EVENTS_TARGET),
            f"{exported:.2f} s, {size / journal.events:.1f} B/event",
        ),
        Row(
            f"import into a new database, {journal.name}",
            journal.events / imported,
            "events/s",
            at_least(EVENTS_TARGET),
            f"{imported:.2f} s",
        ),
    ]


def _floor_rows(context: Context, journal: Journal) -> list[Row]:
    """What no replay of this journal can beat: its rows read, its bodies decoded, its rows
    inserted, each alone with sqlite3 and msgspec and nothing else.

    Export reads every row; rebuild reads and decodes every body; import decodes every
    body and inserts every row. Each replay row above does that and more.
    """
    source = sqlite3.connect(f"file:{journal.path}?mode=ro", uri=True)
    try:
        start = time.perf_counter()
        rows = source.execute(
            "SELECT position, source, seq, recorded_at, version, body FROM journal "
            "ORDER BY position"
        ).fetchall()
        fetched = time.perf_counter() - start
        ddl = [
            str(sql)
            for (sql,) in source.execute(
                "SELECT sql FROM sqlite_master WHERE tbl_name = 'journal' AND sql IS NOT NULL "
                "ORDER BY type DESC"  # the table, then its index
            )
        ]
    finally:
        source.close()
    decode = EventCodec().decode
    start = time.perf_counter()
    for row in rows:
        decode(row[5], row[4])
    decoded = time.perf_counter() - start
    conn = raw_database(context.path(f"{journal.path.stem}-floor.db"), ddl)
    try:
        start = time.perf_counter()
        conn.execute("BEGIN IMMEDIATE")
        conn.executemany("INSERT INTO journal VALUES (?, ?, ?, ?, ?, ?)", rows)
        conn.execute("COMMIT")
        inserted = time.perf_counter() - start
    finally:
        conn.close()
    events = journal.events
    return [
        Row(
            f"floor: {journal.name}'s {len(rows):,} journal rows fetched with sqlite3",
            events / fetched,
            "events/s",
            note=f"{fetched:.2f} s; bounds export",
        ),
        Row(
            f"floor: every body of {journal.name} decoded with msgspec",
            events / decoded,
            "events/s",
            note=f"{decoded:.2f} s; rebuild and import decode each",
        ),
        Row(
            "floor: the same rows inserted by one executemany into an empty journal",
            events / inserted,
            "events/s",
            note=f"{inserted:.2f} s; import inserts each",
        ),
        Row(
            f"floor: decode and insert together, {journal.name}",
            events / (decoded + inserted),
            "events/s",
            note="no import can beat this",
        ),
    ]


def run(context: Context) -> CaseResult:
    steps = context.config.n(100_000, 10_000)
    sweep_runs = context.config.n(1_000, 100)
    tag_events = context.config.n(100_000, 10_000)
    result = CaseResult(
        4,
        "Replay, export and import",
        f"long run: {len(KEYS)} keys × {steps:,} steps; sweep: {sweep_runs:,} runs × (created, "
        f"started, 20 params, {len(KEYS)} keys × 100 steps, completed); no metrics: "
        f"{tag_events:,} params/tag events on 1,000 runs. All logged through a tracker.",
    )
    builders: dict[str, Callable[[Path], Coroutine[Any, Any, int]]] = {
        "long run": functools.partial(_long_run, steps=steps),
        "sweep": functools.partial(_sweep, runs=sweep_runs, steps=100),
        "no metrics": functools.partial(
            _no_metrics, runs=min(1_000, tag_events // 10), events=tag_events
        ),
    }
    built: list[Journal] = []
    for name, build in builders.items():
        path = context.path(f"replay-{name.replace(' ', '-')}.db")
        start = time.perf_counter()
        events = run_async(build(path))
        seconds = time.perf_counter() - start
        built.append(Journal(name, path, events, _entries(path)))
        result.notes.append(
            f"logging the {name} journal took {seconds:.1f} s ({events / seconds:,.0f} events/s)"
        )
    for journal in built:
        result.rows += _replay_rows(context, journal)
    # The journal whose replay is bound by its entry count (one event each).
    result.rows += _floor_rows(context, built[-1])
    return result


CASE = Case("replay", 4, "Replay, export and import", run)
