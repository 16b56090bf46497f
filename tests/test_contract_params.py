"""Contract: parameters round-trip with exactly the type and value they went in with."""

from __future__ import annotations

from typing import Any

import pytest

from runjournal import Tracker
from tests.conftest import assert_identical

ROUND_TRIPS: list[Any] = [
    None,
    True,
    False,
    0,
    1,
    -(2**63),
    2**63 - 1,
    0.0,
    -0.0,
    1e-4,
    1.5e308,
    float("nan"),
    float("inf"),
    float("-inf"),
    "",
    "adamw",
    "unicode ✓ 日本語 \x00 nul",
    "'; DROP TABLE runs; --",
    [],
    [1, 2.0, "three", None, True],
    {"nested": {"deeper": [{"deepest": [1, [2, [3]]]}]}},
    {"flags": [True, False], "one": 1, "one_f": 1.0},
    {},
]


@pytest.mark.parametrize("value", ROUND_TRIPS, ids=repr)
async def test_values_round_trip_exactly(tracker: Tracker, value: Any) -> None:
    run_id = await tracker.create_run(await tracker.create_experiment("e"))
    await tracker.log_param(run_id, "p", value)
    assert_identical((await tracker.get_params(run_id))["p"], value)
    assert_identical((await tracker.get_run(run_id)).params["p"], value)


async def test_true_never_becomes_one(tracker: Tracker) -> None:
    run_id = await tracker.create_run(await tracker.create_experiment("e"))
    await tracker.log_params(run_id, {"t": True, "one": 1, "list": [True, 1, 1.0]})
    params = await tracker.get_params(run_id)
    assert params["t"] is True
    assert type(params["one"]) is int
    assert [type(x) for x in params["list"]] == [bool, int, float]


async def test_a_tuple_comes_back_as_a_list(tracker: Tracker) -> None:
    run_id = await tracker.create_run(await tracker.create_experiment("e"))
    await tracker.log_param(run_id, "shape", (3, (224, 224)))
    assert_identical((await tracker.get_params(run_id))["shape"], [3, [224, 224]])


@pytest.mark.parametrize(
    ("value", "error", "message"),
    [
        ({1, 2}, TypeError, "set"),
        (object(), TypeError, "object"),
        (2**63, ValueError, "64 bits"),
        (-(2**63) - 1, ValueError, "64 bits"),
        ({1: "int key"}, TypeError, "keys must be str"),
        ([1, {2}], TypeError, r"\[1\]"),
        (b"bytes", TypeError, "bytes"),
        ({"ok": [1, complex(1, 2)]}, TypeError, "complex"),
    ],
)
async def test_other_values_are_refused_at_the_call(
    tracker: Tracker, value: object, error: type[Exception], message: str
) -> None:
    run_id = await tracker.create_run(await tracker.create_experiment("e"))
    with pytest.raises(error, match=message):
        await tracker.log_param(run_id, "p", value)
    with pytest.raises(error):
        tracker.log_param_nowait(run_id, "p", value)
    assert await tracker.get_params(run_id) == {}


@pytest.mark.parametrize(("key", "error"), [("", ValueError), (1, TypeError), (None, TypeError)])
async def test_bad_keys_are_refused(tracker: Tracker, key: object, error: type[Exception]) -> None:
    run_id = await tracker.create_run(await tracker.create_experiment("e"))
    with pytest.raises(error, match="param key"):
        await tracker.log_param(run_id, key, 1)  # type: ignore[arg-type]
    with pytest.raises(error, match="param key"):
        await tracker.log_params(run_id, {"fine": 1, key: 2})  # type: ignore[dict-item]
    assert await tracker.get_params(run_id) == {}


async def test_log_params_needs_a_mapping(tracker: Tracker) -> None:
    run_id = await tracker.create_run(await tracker.create_experiment("e"))
    with pytest.raises(TypeError, match="mapping"):
        await tracker.log_params(run_id, [("a", 1)])  # type: ignore[arg-type]


async def test_last_write_wins(tracker: Tracker) -> None:
    run_id = await tracker.create_run(await tracker.create_experiment("e"))
    await tracker.log_param(run_id, "lr", 0.1)
    await tracker.log_params(run_id, {"lr": 0.01, "bs": 32})
    await tracker.log_param(run_id, "lr", "auto")
    tracker.log_param_nowait(run_id, "bs", 64)
    assert await tracker.get_params(run_id) == {"lr": "auto", "bs": 64}


async def test_returned_params_are_copies(tracker: Tracker) -> None:
    run_id = await tracker.create_run(await tracker.create_experiment("e"))
    await tracker.log_param(run_id, "layers", [1, 2])
    got = await tracker.get_params(run_id)
    got["layers"].append(3)
    assert await tracker.get_params(run_id) == {"layers": [1, 2]}


async def test_params_of_runs_are_independent(tracker: Tracker) -> None:
    exp_id = await tracker.create_experiment("e")
    a, b = await tracker.create_run(exp_id), await tracker.create_run(exp_id)
    await tracker.log_param(a, "x", 1)
    await tracker.log_param(b, "x", 2)
    assert await tracker.get_params(a) == {"x": 1}
    assert await tracker.get_params(b) == {"x": 2}
