"""Contract: filter_runs matches params by value, with strict and documented semantics."""

from __future__ import annotations

from typing import Any

import pytest

from runjournal import FilterOp, ParamFilter, Tracker

PARAMS: dict[str, dict[str, Any]] = {
    "small-adamw": {"lr": 1e-4, "opt": "adamw", "bs": 32, "layers": [1, 2], "fp16": True},
    "big-sgd": {"lr": 0.1, "opt": "sgd", "bs": 64, "layers": [3], "fp16": False},
    "int-lr": {"lr": 1, "opt": "adam", "bs": 32.0, "fp16": 1},
    "no-params": {},
    "nan-lr": {"lr": float("nan"), "opt": None},
}


@pytest.fixture
async def runs(tracker: Tracker) -> tuple[str, dict[str, str]]:
    exp_id = await tracker.create_experiment("search")
    names: dict[str, str] = {}
    for name, params in PARAMS.items():
        run_id = await tracker.create_run(exp_id, name=name)
        await tracker.log_params(run_id, params)
        names[run_id] = name
    return exp_id, names


async def _names(
    tracker: Tracker, runs: tuple[str, dict[str, str]], *filters: ParamFilter
) -> list[str]:
    exp_id, names = runs
    return [names[r.id] for r in await tracker.filter_runs(exp_id, list(filters))]


CASES: list[tuple[ParamFilter, list[str]]] = [
    (ParamFilter("lr", FilterOp.LT, 1e-3), ["small-adamw"]),
    (ParamFilter("lr", FilterOp.LTE, 0.1), ["small-adamw", "big-sgd"]),
    (ParamFilter("lr", FilterOp.GT, 0.5), ["int-lr"]),
    (ParamFilter("lr", FilterOp.GTE, 1), ["int-lr"]),
    (ParamFilter("lr", FilterOp.EQ, 1.0), ["int-lr"]),  # numbers compare as numbers
    (ParamFilter("bs", FilterOp.EQ, 32), ["small-adamw", "int-lr"]),
    (ParamFilter("bs", FilterOp.NE, 32), ["big-sgd"]),
    (ParamFilter("fp16", FilterOp.EQ, True), ["small-adamw"]),  # a bool never equals 1
    (ParamFilter("fp16", FilterOp.EQ, 1), ["int-lr"]),
    (ParamFilter("fp16", FilterOp.NE, True), ["big-sgd"]),  # 1 is not comparable to True
    (ParamFilter("opt", FilterOp.EQ, "adamw"), ["small-adamw"]),
    (ParamFilter("opt", FilterOp.NE, "adamw"), ["big-sgd", "int-lr"]),
    (ParamFilter("opt", FilterOp.STARTS_WITH, "adam"), ["small-adamw", "int-lr"]),
    (ParamFilter("opt", FilterOp.CONTAINS, "g"), ["big-sgd"]),
    (ParamFilter("opt", FilterOp.LT, "b"), ["small-adamw", "int-lr"]),  # strings order as strings
    (ParamFilter("opt", FilterOp.EQ, None), ["nan-lr"]),
    (ParamFilter("layers", FilterOp.CONTAINS, 2), ["small-adamw"]),
    (ParamFilter("layers", FilterOp.CONTAINS, 2.0), ["small-adamw"]),
    (ParamFilter("layers", FilterOp.EQ, [3]), ["big-sgd"]),
    (ParamFilter("lr", FilterOp.NE, 0.1), ["small-adamw", "int-lr", "nan-lr"]),
    (ParamFilter("lr", FilterOp.EQ, float("nan")), []),
    (ParamFilter("missing", FilterOp.NE, 1), []),  # a run without the key never matches
    (ParamFilter("opt", FilterOp.GT, 1), []),  # a str is not ordered against a number
    (ParamFilter("lr", FilterOp.STARTS_WITH, "0"), []),
    (ParamFilter("lr", FilterOp.CONTAINS, 1), []),
]


@pytest.mark.parametrize(("flt", "expected"), CASES, ids=lambda c: repr(c))
async def test_single_filters(
    tracker: Tracker, runs: tuple[str, dict[str, str]], flt: ParamFilter, expected: list[str]
) -> None:
    assert await _names(tracker, runs, flt) == expected


async def test_filters_are_anded(tracker: Tracker, runs: tuple[str, dict[str, str]]) -> None:
    got = await _names(
        tracker,
        runs,
        ParamFilter("lr", FilterOp.LT, 1e-3),
        ParamFilter("opt", FilterOp.EQ, "adamw"),
    )
    assert got == ["small-adamw"]
    got = await _names(
        tracker, runs, ParamFilter("bs", FilterOp.EQ, 32), ParamFilter("opt", FilterOp.EQ, "sgd")
    )
    assert got == []


async def test_no_filters_returns_every_run_in_creation_order(
    tracker: Tracker, runs: tuple[str, dict[str, str]]
) -> None:
    assert await _names(tracker, runs) == list(PARAMS)


async def test_none_searches_every_experiment(tracker: Tracker) -> None:
    found = []
    for name in ["a", "b"]:
        run_id = await tracker.create_run(await tracker.create_experiment(name))
        await tracker.log_param(run_id, "lr", 0.01)
        found.append(run_id)
    other = await tracker.create_run(await tracker.create_experiment("c"))
    await tracker.log_param(other, "lr", 1.0)
    hits = await tracker.filter_runs(None, [ParamFilter("lr", FilterOp.LT, 0.1)])
    assert [r.id for r in hits] == found
    assert hits[0].params == {"lr": 0.01}


@pytest.mark.parametrize(
    "flt",
    [
        ParamFilter("opt", FilterOp.STARTS_WITH, 1),
        ParamFilter("layers", FilterOp.LT, [1]),
        ParamFilter("x", FilterOp.GT, None),
        ParamFilter("x", FilterOp.LTE, True),
        ParamFilter("x", FilterOp.GT, {"a": 1}),
        ParamFilter("x", FilterOp.LT, float("nan")),
        ParamFilter("", FilterOp.EQ, 1),
        ParamFilter("x", "LIKE", 1),  # type: ignore[arg-type]
        ParamFilter("x", FilterOp.EQ, {1, 2}),
    ],
    ids=repr,
)
async def test_nonsense_filters_raise_value_error(
    tracker: Tracker, runs: tuple[str, dict[str, str]], flt: ParamFilter
) -> None:
    with pytest.raises((ValueError, TypeError)):
        await tracker.filter_runs(runs[0], [flt])


async def test_filters_must_be_param_filters(
    tracker: Tracker, runs: tuple[str, dict[str, str]]
) -> None:
    with pytest.raises(TypeError, match="ParamFilter"):
        await tracker.filter_runs(runs[0], [("lr", "LT", 1)])  # type: ignore[list-item]


async def test_filter_op_accepts_names(tracker: Tracker, runs: tuple[str, dict[str, str]]) -> None:
    assert await _names(tracker, runs, ParamFilter("bs", "GT", 40)) == ["big-sgd"]  # type: ignore[arg-type]
