"""Fuzzed API input against SQLite on a file.

Each value either round-trips exactly (types compared strictly: True stays True,
1 stays 1, NaN stays NaN, -0.0 stays -0.0) or raises a clear ``ValueError`` or
``TypeError`` at the call, before anything is queued. Whatever happens, the
database stays consistent: ``integrity_check`` is ok, nothing is rejected at
commit, and later valid writes still work.

The expected outcome of every input comes from an oracle written here from the
documented rules, not from the library's own checks.
"""

from __future__ import annotations

import asyncio
import math
import os
import sqlite3
import struct
import tempfile
from collections.abc import Awaitable, Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from runjournal import RunNotFound, Tracker
from tests.conftest import assert_identical
from tests.snapshot import snapshot

FUZZ = settings(
    max_examples=int(os.environ.get("RUNJOURNAL_FUZZ", "120")),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)

INT64 = (-(2**63), 2**63 - 1)

# -- strategies ------------------------------------------------------------------------------

# Every code point, lone surrogates and NUL included.
any_char = st.characters(exclude_categories=())
any_text = st.text(any_char, max_size=12)
nasty_text = st.sampled_from(
    [
        "",
        " ",
        "\x00",
        "a\x00b",
        "'; DROP TABLE runs; --",
        "Robert'); DELETE FROM journal; --",
        '"quoted" key',
        "%_\\[]*?",
        "loss/train.step[0]",
        "🚀 métrique 名前",
        "\u202eRTL",
        "line\nbreak\ttab\r",
        "\ud800",
        "x\udfff y",
        "k" * 300,
    ]
)
wrong_type = st.one_of(  # hashable, so that they can be dict keys too
    st.none(),
    st.booleans(),
    st.integers(-5, 5),
    st.floats(allow_nan=False, max_value=10, min_value=-10),
    st.binary(max_size=4),
    st.tuples(st.text(max_size=2)),
)
keys = st.one_of(nasty_text, any_text, wrong_type)
steps = st.one_of(
    st.integers(min_value=-(2**70), max_value=2**70),
    st.sampled_from([0, 1, 2**31, 2**53 + 1, 2**63 - 1, 2**63, -1, -(2**63)]),
    st.booleans(),
    st.floats(),
    st.none(),
    st.text(max_size=2),
)
big_ints = st.one_of(
    st.integers(min_value=-(2**1100), max_value=2**1100),
    st.sampled_from([2**1023, 2**1024, -(2**1024), 2**53 + 1, 10**308, 10**309]),
)
floats = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True, allow_subnormal=True),
    st.sampled_from([0.0, -0.0, 5e-324, 1.7976931348623157e308, math.inf, -math.inf, math.nan]),
)
metric_values = st.one_of(
    floats,
    big_ints,
    st.booleans(),
    st.none(),
    st.text(max_size=3),
    st.complex_numbers(max_magnitude=10),
    st.decimals(allow_nan=False, allow_infinity=False, places=2, max_value=100, min_value=-100),
)
timestamps = st.one_of(st.none(), floats, big_ints, st.booleans(), st.text(max_size=2))

param_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.sampled_from([INT64[0], INT64[1], INT64[1] + 1, INT64[0] - 1]),
    floats,
    any_text,
    nasty_text,
    # Not allowed: each must be refused with TypeError
    st.binary(max_size=3),
    st.complex_numbers(max_magnitude=3),
    st.frozensets(st.integers(0, 3), max_size=2),
)
param_values: st.SearchStrategy[Any] = st.recursive(
    param_scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=3),
        st.tuples(inner, inner),
        st.dictionaries(st.one_of(any_text, nasty_text), inner, max_size=3),
        st.dictionaries(st.one_of(st.integers(0, 3), st.none()), inner, min_size=1, max_size=2),
    ),
    max_leaves=10,
)
param_mappings = st.one_of(
    st.dictionaries(keys, param_values, max_size=4),
    st.lists(st.tuples(st.text(max_size=2), st.integers()), max_size=2),  # not a mapping
    st.none(),
    st.text(max_size=3),
)

# -- the oracle: the documented rules, written independently ----------------------------------

Outcome = type[Exception] | None


def text_error(text: str) -> Outcome:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return ValueError  # a lone surrogate cannot be stored as text
    return None


def name_error(name: str) -> Outcome:
    if any(ord(c) < 0x20 or 0x7F <= ord(c) <= 0x9F for c in name):
        return ValueError  # keys and names are identifiers: no control characters
    return text_error(name)


def key_error(key: object) -> Outcome:
    if type(key) is not str:
        return TypeError
    if not key:
        return ValueError
    return name_error(key)


def step_error(step: object) -> Outcome:
    if type(step) is not int:
        return TypeError
    return None if 0 <= step < 2**63 else ValueError


def metric_value(value: object) -> tuple[Outcome, float]:
    if type(value) is float:
        return None, value
    if type(value) is int:
        try:
            return None, float(value)
        except OverflowError:
            return ValueError, 0.0
    return TypeError, 0.0


def timestamp_outcome(timestamp: object) -> tuple[Outcome, float | None]:
    if timestamp is None:
        return None, None
    if type(timestamp) not in (int, float):
        return TypeError, None
    try:
        result = float(timestamp)  # type: ignore[arg-type]
    except OverflowError:
        return ValueError, None
    return (None, result) if math.isfinite(result) else (ValueError, None)


def param_outcome(value: object) -> tuple[Outcome, Any]:
    """The error a param value must raise, or the value it must read back as."""
    kind = type(value)
    if value is None or kind in (bool, float):
        return None, value
    if kind is int:
        fits = INT64[0] <= value <= INT64[1]  # type: ignore[operator]
        return (None, value) if fits else (ValueError, None)
    if kind is str:
        return text_error(value), value  # type: ignore[arg-type]
    if kind in (list, tuple):
        out = []
        for item in value:  # type: ignore[attr-defined]
            error, stored = param_outcome(item)
            if error is not None:
                return error, None
            out.append(stored)
        return None, out
    if kind is dict:
        mapping: dict[str, Any] = {}
        for k, v in value.items():  # type: ignore[attr-defined]
            if type(k) is not str:
                return TypeError, None
            error = text_error(k)
            if error is None:
                error, mapping[k] = param_outcome(v)
            if error is not None:
                return error, None
        return None, mapping
    return TypeError, None


def params_outcome(params: object) -> tuple[Outcome, dict[str, Any]]:
    if not isinstance(params, Mapping):
        return TypeError, {}
    stored: dict[str, Any] = {}
    for k, v in params.items():
        error = key_error(k)
        if error is None:
            error, stored[k] = param_outcome(v)
        if error is not None:
            return error, {}
    return None, stored


def same_float(got: float, want: float) -> bool:
    if math.isnan(want):
        return math.isnan(got)
    return struct.pack("<d", got) == struct.pack("<d", want)  # -0.0 is not 0.0


# -- the harness -----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def db_path() -> Iterator[Path]:
    """One database file for every example of this module: damage would accumulate."""
    with tempfile.TemporaryDirectory() as directory:
        yield Path(directory) / "fuzz.db"


def check_consistent(path: Path) -> None:
    conn = sqlite3.connect(path)
    try:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        assert conn.execute("PRAGMA foreign_key_check").fetchall() == []
        # The metrics projection indexes journal entries that exist.
        orphans = conn.execute(
            "SELECT count(*) FROM metrics m LEFT JOIN journal j ON j.position = m.position "
            "WHERE j.position IS NULL"
        ).fetchone()[0]
        assert orphans == 0
    finally:
        conn.close()


Scenario = Callable[[Tracker, str], Awaitable[None]]


def run_scenario(path: Path, scenario: Scenario) -> None:
    async def main() -> None:
        async with Tracker.open(path) as tracker:
            experiment_id = await tracker.create_experiment("fuzz")
            run_id = await tracker.create_run(experiment_id)
            await scenario(tracker, run_id)
            # Nothing accepted at the call may be refused at commit.
            await tracker.flush()
            # Later valid writes still work.
            await tracker.log_metric(run_id, "after", 7, 0.5)
            await tracker.log_param(run_id, "after", "ok")
            assert [p.value for p in await tracker.get_metrics(run_id, "after")] == [0.5]
            assert (await tracker.get_params(run_id))["after"] == "ok"
            assert tracker.stats().rejected == 0

    asyncio.run(main())
    check_consistent(path)


# -- the properties --------------------------------------------------------------------------


@FUZZ
@given(key=keys, step=steps, value=metric_values, timestamp=timestamps, nowait=st.booleans())
def test_metric_inputs(
    db_path: Path, key: Any, step: Any, value: Any, timestamp: Any, nowait: bool
) -> None:
    value_error, stored = metric_value(value)
    ts_error, stored_ts = timestamp_outcome(timestamp)
    # The order the rules are checked in: key, step, value, timestamp.
    expected = key_error(key) or step_error(step) or value_error or ts_error

    async def scenario(tracker: Tracker, run_id: str) -> None:
        async def call() -> None:
            if nowait:
                tracker.log_metric_nowait(run_id, key, step, value, timestamp=timestamp)
            else:
                await tracker.log_metric(run_id, key, step, value, timestamp=timestamp)

        if expected is not None:
            with pytest.raises(expected):
                await call()
            await tracker.flush()
            assert tracker.stats().accepted == 2  # the experiment and the run: nothing queued
            return
        await call()
        points = await tracker.get_metrics(run_id, key)
        assert len(points) == 1
        (point,) = points
        assert type(point.step) is int
        assert point.step == step
        assert type(point.value) is float
        assert same_float(point.value, stored), (point.value, stored)
        if stored_ts is not None:
            assert point.timestamp == stored_ts
        assert await tracker.list_metric_keys(run_id) == [key]

    run_scenario(db_path, scenario)


@FUZZ
@given(params=param_mappings, via=st.sampled_from(["log_params", "log_params_nowait", "one"]))
def test_param_inputs(db_path: Path, params: Any, via: str) -> None:
    expected, stored = params_outcome(params)
    if via == "one" and isinstance(params, Mapping):
        pass  # one call per item below; the first bad one raises
    elif via == "one":
        return  # log_param takes a key and a value, not a mapping

    async def scenario(tracker: Tracker, run_id: str) -> None:
        async def call() -> None:
            if via == "log_params":
                await tracker.log_params(run_id, params)
            else:
                tracker.log_params_nowait(run_id, params)

        if via == "one":
            for k, v in params.items():
                error = key_error(k) or param_outcome(v)[0]
                if error is not None:
                    with pytest.raises(error):
                        await tracker.log_param(run_id, k, v)
                    return
                await tracker.log_param(run_id, k, v)
        elif expected is not None:
            with pytest.raises(expected):
                await call()
            return
        else:
            await call()
        got = await tracker.get_params(run_id)
        assert_identical(got, stored)
        assert_identical((await tracker.get_run(run_id)).params, stored)

    run_scenario(db_path, scenario)


@FUZZ
@given(
    name=keys,
    config=st.one_of(st.none(), st.dictionaries(any_text, param_values, max_size=3), wrong_type),
    description=st.one_of(st.none(), any_text, nasty_text, st.integers()),
    run_name=st.one_of(st.none(), any_text, nasty_text, st.integers()),
    tag_key=keys,
    tag_value=st.one_of(any_text, nasty_text, st.integers(), st.none()),
)
def test_names_tags_and_configs(
    db_path: Path,
    name: Any,
    config: Any,
    description: Any,
    run_name: Any,
    tag_key: Any,
    tag_value: Any,
) -> None:
    if config is None:
        config_error: Outcome
        config_error, stored_config = None, None
    elif isinstance(config, Mapping):
        config_error, stored_config = param_outcome(dict(config))
        if type(config) is not dict:  # pragma: no cover - strategies only make dicts
            config_error = TypeError
    else:
        config_error, stored_config = TypeError, None
    if description is None:
        description_error: Outcome = None
    elif type(description) is str:
        description_error = text_error(description)
    else:
        description_error = TypeError
    experiment_error = key_error(name) or config_error or description_error
    if run_name is None:
        run_error: Outcome = None
    elif type(run_name) is str:
        run_error = name_error(run_name)
    else:
        run_error = TypeError
    if type(tag_value) is str:
        tag_error = key_error(tag_key) or text_error(tag_value)
    else:
        tag_error = key_error(tag_key) or TypeError

    async def scenario(tracker: Tracker, run_id: str) -> None:
        if experiment_error is not None:
            with pytest.raises(experiment_error):
                await tracker.create_experiment(name, config, description=description)
        else:
            experiment_id = await tracker.create_experiment(name, config, description=description)
            experiment = await tracker.get_experiment(experiment_id)
            assert_identical(experiment.name, name)
            assert_identical(experiment.config, stored_config)
            assert_identical(experiment.description, description)
        if run_error is not None:
            with pytest.raises(run_error):
                await tracker.create_run(
                    (await tracker.get_run(run_id)).experiment_id, name=run_name
                )
        else:
            other = await tracker.create_run(
                (await tracker.get_run(run_id)).experiment_id, name=run_name
            )
            assert_identical((await tracker.get_run(other)).name, run_name)
        if tag_error is not None:
            with pytest.raises(tag_error):
                await tracker.set_tag(run_id, tag_key, tag_value)
            experiment_of_run = (await tracker.get_run(run_id)).experiment_id
            with pytest.raises(tag_error):
                await tracker.create_run(experiment_of_run, tags={tag_key: tag_value})
        else:
            await tracker.set_tag(run_id, tag_key, tag_value)
            assert_identical((await tracker.get_run(run_id)).tags, {tag_key: tag_value})

    run_scenario(db_path, scenario)


def test_fuzzed_file_still_rebuilds_identically(db_path: Path) -> None:
    """After all the fuzzing above, the journal folds back to the same projections."""
    if not db_path.exists():
        pytest.skip("runs after the fuzz tests of this module")

    async def rebuild() -> None:
        async with Tracker.open(db_path) as tracker:
            before = await snapshot(tracker.store)
            await tracker.store.rebuild()
            assert await snapshot(tracker.store) == before

    asyncio.run(rebuild())
    check_consistent(db_path)


async def test_run_id_of_the_wrong_type_or_unknown() -> None:
    with tempfile.TemporaryDirectory() as directory:
        async with Tracker.open(Path(directory) / "ids.db") as tracker:
            for bad in (None, 1, b"id", ["id"]):
                with pytest.raises(TypeError):
                    tracker.log_metric_nowait(bad, "k", 0, 1.0)  # type: ignore[arg-type]
                with pytest.raises(TypeError):
                    await tracker.log_param(bad, "k", 1)  # type: ignore[arg-type]
            for unknown in ("", "nope", "'; DROP TABLE runs; --", "\x00"):
                with pytest.raises(RunNotFound):
                    tracker.log_metric_nowait(unknown, "k", 0, 1.0)
                with pytest.raises(RunNotFound):
                    await tracker.log_metric(unknown, "k", 0, 1.0)
            assert tracker.stats().accepted == 0
