"""Properties: every store folds any history alike, and rebuild() reproduces the live state."""

from __future__ import annotations

import asyncio
import math
import tempfile
from pathlib import Path
from typing import Any

import msgspec
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from runjournal import FilterOp, ParamFilter, RunStatus, Tracker
from runjournal.events import Event, ExperimentCreated, MetricsLogged, ParamsLogged, RunCreated
from runjournal.model import MetricPoint, same_value
from runjournal.stores import NewEntry, Store
from runjournal.stores.base import recorded_at
from tests.conftest import STORE_KINDS, make_store
from tests.snapshot import snapshot
from tests.strategies import CONFUSABLE, confusable, filter_values, histories, param_values

SETTINGS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _stores(folder: Path) -> list[Store]:
    """Every kind of store (``STORE_KINDS``), in that order."""
    return [make_store(kind, folder) for kind in STORE_KINDS]


async def _fold(store: Store, history: list[Event], batch: int) -> list[list[tuple[int, str]]]:
    rejected = []
    for start in range(0, len(history), batch):
        chunk = history[start : start + batch]
        entries = [NewEntry("S", start + i, e, recorded_at(e)) for i, e in enumerate(chunk)]
        rejected.append(store.append(entries).rejected)
    return rejected


@SETTINGS
@given(history=histories, batch=st.integers(1, 8))
def test_every_store_folds_a_history_alike_and_rebuilds_it(
    history: list[Event], batch: int
) -> None:
    async def check() -> None:
        with tempfile.TemporaryDirectory() as folder:
            stores = _stores(Path(folder))
            try:
                answers = []
                for store in stores:
                    await store.open()
                    rejected = await _fold(store, history, batch)
                    live = await snapshot(store)
                    await store.rebuild()
                    assert await snapshot(store) == live, f"rebuild differs on {store!r}"
                    answers.append((rejected, live))
                assert answers[1] == answers[0], "SQLite in memory differs from SQLite on file"
                assert answers[2] == answers[0], "the in-memory store differs from SQLite"
                assert answers[3] == answers[0], "PostgreSQL differs from SQLite"
            finally:
                for store in stores:
                    await store.close()

    asyncio.run(check())


@SETTINGS
@given(
    ops=st.lists(
        st.tuples(st.sampled_from(["param", "metric", "status", "tag", "artifact"]), param_values),
        max_size=30,
    )
)
def test_tracker_histories_rebuild_identically(ops: list[tuple[str, Any]]) -> None:
    async def check() -> None:
        with tempfile.TemporaryDirectory() as folder:
            for store in _stores(Path(folder)):
                async with Tracker(store) as tracker:
                    exp_id = await tracker.create_experiment("p")
                    run_ids = [await tracker.create_run(exp_id) for _ in range(2)]
                    for i, (op, value) in enumerate(ops):
                        run_id = run_ids[i % 2]
                        if op == "param":
                            await tracker.log_param(run_id, f"k{i % 3}", value)
                        elif op == "metric":
                            await tracker.log_metric(run_id, "m", i % 4, float(i))
                        elif op == "status":
                            status = await tracker.get_run_status(run_id)
                            if status is RunStatus.PENDING:
                                await tracker.start_run(run_id)
                            elif status is RunStatus.RUNNING:
                                await tracker.complete_run(run_id, RunStatus.FAILED)
                        elif op == "tag":
                            await tracker.set_tag(run_id, "t", repr(value))
                        else:
                            await tracker.log_artifact(run_id, "a", repr(value).encode())
                    await tracker.flush()
                    live = await snapshot(store)
                    await store.rebuild()
                    assert await snapshot(store) == live

    asyncio.run(check())


@SETTINGS
@given(value=param_values)
def test_same_value_holds_for_any_value_and_its_decoded_copy(value: Any) -> None:
    copy = msgspec.msgpack.decode(msgspec.msgpack.encode(value))
    assert same_value(value, copy)
    assert same_value([MetricPoint(0, math.nan, 1.0)], [MetricPoint(0, math.nan, 1.0)])


def test_same_value_keeps_bool_int_and_float_apart_at_every_depth() -> None:
    for i, a in enumerate(CONFUSABLE):
        for j, b in enumerate(CONFUSABLE):
            # Only 0.0 and -0.0 are two entries of one value (and NaN is itself).
            alike = i == j or (type(a) is float and type(b) is float and a == b)
            assert same_value(a, b) is alike, (a, b)
            assert same_value({"k": [a]}, {"k": [b]}) is alike, (a, b)
    assert not same_value(MetricPoint(0, 1.0, 1.0), MetricPoint(0, 2.0, 1.0))


_filter_ops = st.sampled_from([FilterOp.EQ, FilterOp.NE]) | st.sampled_from(list(FilterOp))


@settings(SETTINGS, max_examples=400)
@given(
    runs=st.lists(
        st.tuples(
            st.sampled_from(["E0", "E1"]),
            st.fixed_dictionaries({"x": confusable}, optional={"y": filter_values}),
        ),
        min_size=1,
        max_size=10,
    ),
    filters=st.lists(
        st.builds(
            ParamFilter, st.sampled_from(["x", "x", "y"]), _filter_ops, confusable | filter_values
        ),
        min_size=1,
        max_size=2,
    ),
    scope=st.sampled_from(["E0", None]),
)
def test_every_store_filters_runs_alike(
    runs: list[tuple[str, dict[str, Any]]], filters: list[ParamFilter], scope: str | None
) -> None:
    """SQLite (which answers some filters by comparing stored bytes) agrees with the reference."""
    history: list[Event] = [ExperimentCreated(e, e, 1e9) for e in ("E0", "E1")]
    for i, (experiment_id, params) in enumerate(runs):
        history += [RunCreated(f"R{i}", experiment_id, 1e9 + i), ParamsLogged(f"R{i}", params, 2e9)]

    async def answer(store: Store) -> list[str] | str:
        await store.open()
        try:
            await _fold(store, history, 50)
            return [run.id for run in await store.filter_runs(scope, filters)]
        except (ValueError, TypeError) as exc:
            return type(exc).__name__
        finally:
            await store.close()

    async def check() -> None:
        with tempfile.TemporaryDirectory() as folder:
            sqlite = await answer(make_store("sqlite-file", Path(folder)))
            reference = await answer(make_store("memory", Path(folder)))
            assert sqlite == reference
            assert await answer(make_store("postgres", Path(folder))) == reference

    asyncio.run(check())


def test_every_store_filters_confusable_values_alike(tmp_path: Path) -> None:
    """Every operator, every stored value against every wanted value, on SQLite and the reference."""
    values = CONFUSABLE
    history: list[Event] = [ExperimentCreated("E0", "E0", 1e9)]
    for i, value in enumerate(values):
        history += [
            RunCreated(f"R{i:02}", "E0", 1e9 + i),
            ParamsLogged(f"R{i:02}", {"x": value}, 2e9),
        ]

    async def answers(store: Store) -> list[list[str] | str]:
        await store.open()
        try:
            await _fold(store, history, 50)
            found: list[list[str] | str] = []
            for op in FilterOp:
                for want in values:
                    try:
                        runs = await store.filter_runs("E0", [ParamFilter("x", op, want)])
                    except (ValueError, TypeError) as exc:
                        found.append(f"{op} {want!r}: {type(exc).__name__}")
                    else:
                        found.append([run.id for run in runs])
            return found
        finally:
            await store.close()

    async def check() -> None:
        sqlite = await answers(make_store("sqlite-file", tmp_path))
        reference = await answers(make_store("memory", tmp_path))
        assert len(sqlite) == len(FilterOp) * len(values)
        assert sqlite == reference
        assert await answers(make_store("postgres", tmp_path)) == reference
        # The reference finds 64.0 for 64, -0.0 for 0, and nothing for NaN: the cases in play.
        assert any(isinstance(hits, list) and len(hits) > 1 for hits in reference)

    asyncio.run(check())


_orders = st.sampled_from(["created_at", "name", "status", "param:x", "param:y", "metric:m"])


@settings(SETTINGS, max_examples=200)
@given(
    runs=st.lists(
        st.tuples(
            st.sampled_from(["E0", "E1"]),
            st.none() | st.sampled_from(["a", "b", "é", ""]),
            st.fixed_dictionaries({}, optional={"x": confusable, "y": filter_values}),
            st.lists(st.tuples(st.integers(0, 3), confusable.filter(lambda v: type(v) is float))),
        ),
        min_size=1,
        max_size=10,
    ),
    filters=st.lists(
        st.builds(ParamFilter, st.sampled_from(["x", "y"]), _filter_ops, confusable), max_size=1
    ),
    order=_orders,
    desc=st.booleans(),
    limit=st.integers(1, 4),
    scope=st.sampled_from(["E0", None]),
)
def test_every_store_searches_and_pages_alike(
    runs: list[tuple[str, str | None, dict[str, Any], list[tuple[int, float]]]],
    filters: list[ParamFilter],
    order: str,
    desc: bool,
    limit: int,
    scope: str | None,
) -> None:
    """SQLite (sorting and cutting pages in SQL) pages through runs as the reference does."""
    history: list[Event] = [ExperimentCreated(e, e, 1e9) for e in ("E0", "E1")]
    for i, (experiment_id, name, params, points) in enumerate(runs):
        run_id = f"R{(i * 7) % 10}{i}"  # ids out of creation order
        history += [RunCreated(run_id, experiment_id, 1e9 + i % 3, name=name)]
        history += [ParamsLogged(run_id, params, 2e9)] if params else []
        if points:
            mp = [MetricPoint(step, value, 3e9) for step, value in points]
            history.append(MetricsLogged(run_id, "m", mp, 3e9))

    async def answer(store: Store) -> list[tuple[list[str], int]] | str:
        await store.open()
        try:
            await _fold(store, history, 50)
            pages = []
            after = None
            while True:
                page = await store.search_runs(scope, filters, order, desc, limit, after)
                pages.append(([run.id for run in page.runs], page.total))
                after = page.next
                if after is None:
                    return pages
        except (ValueError, TypeError) as exc:
            return type(exc).__name__
        finally:
            await store.close()

    async def check() -> None:
        with tempfile.TemporaryDirectory() as folder:
            sqlite = await answer(make_store("sqlite-file", Path(folder)))
            reference = await answer(make_store("memory", Path(folder)))
            assert sqlite == reference

    asyncio.run(check())
