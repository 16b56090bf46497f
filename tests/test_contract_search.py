"""Contract: search_runs pages through the runs that filter_runs finds, in a stable order.

Every store answers alike: the order is ``filtering.SortKey`` then the run id, runs
without the sort key come last, and a cursor continues exactly where its page ended.
"""

from __future__ import annotations

from typing import Any

import pytest

from runjournal import FilterOp, ParamFilter, RunPage, Tracker

RUNS: list[tuple[str | None, dict[str, Any], list[tuple[int, float]]]] = [
    ("b", {"lr": 0.3, "opt": "sgd"}, [(0, 0.5), (1, 0.9)]),
    ("a", {"lr": 1, "opt": "adam"}, [(1, 0.2), (0, 0.7)]),  # last by step: 0.2
    ("d", {"lr": "high", "opt": "adamw"}, [(0, float("nan"))]),  # no finite last value
    (None, {"lr": True}, []),
    ("c", {"lr": 0.1, "opt": "adam"}, [(0, 0.95)]),
    ("e", {"lr": None}, [(0, float("inf"))]),
    ("f", {}, [(0, 0.2)]),
    ("g", {"lr": 1.0}, [(5, 0.2)]),  # ties with "a" (1 == 1.0) and by metric with "a" and "f"
]


@pytest.fixture
async def runs(tracker: Tracker) -> tuple[str, dict[str, str]]:
    exp_id = await tracker.create_experiment("search")
    names: dict[str, str] = {}
    for name, params, points in RUNS:
        run_id = await tracker.create_run(exp_id, name=name)
        if params:
            await tracker.log_params(run_id, params)
        for step, value in points:
            await tracker.log_metric(run_id, "acc", step, value)
        names[run_id] = "-" if name is None else name
    return exp_id, names


async def _all_pages(tracker: Tracker, limit: int, **search: Any) -> tuple[list[str], int]:
    ids: list[str] = []
    after = None
    while True:
        page = await tracker.search_runs(limit=limit, after=after, **search)
        assert len(page.runs) <= limit
        ids += [run.id for run in page.runs]
        after = page.next
        if after is None:
            return ids, page.total
        assert len(page.runs) == limit


def _tied(names: dict[str, str], *tied: str) -> list[str]:
    """``tied`` names in run id order: how a search breaks a tie."""
    by_name = {name: run_id for run_id, name in names.items()}
    return [names[run_id] for run_id in sorted(by_name[name] for name in tied)]


async def test_params_order_numbers_then_strings_then_bools_then_the_rest(
    tracker: Tracker, runs: tuple[str, dict[str, str]]
) -> None:
    exp_id, names = runs
    page = await tracker.search_runs(exp_id, order_by="param:lr")
    rest = _tied(names, "e")  # None ranks with lists, dicts and NaN
    assert [names[r.id] for r in page.runs] == [
        "c", "b", *_tied(names, "a", "g"), "d", "-", *rest, "f"  # "f" has no lr: last
    ]  # fmt: skip
    assert page.total == len(RUNS)
    assert page.next is None
    down = await tracker.search_runs(exp_id, order_by="param:lr", desc=True)
    assert [names[r.id] for r in down.runs] == [
        *rest, "-", "d", *_tied(names, "a", "g")[::-1], "b", "c", "f"
    ]  # fmt: skip


async def test_a_metric_orders_by_its_last_value_by_step(
    tracker: Tracker, runs: tuple[str, dict[str, str]]
) -> None:
    exp_id, names = runs
    page = await tracker.search_runs(exp_id, order_by="metric:acc", desc=True)
    missing = _tied(names, "d", "e", "-")[::-1]  # NaN, inf and no series at all
    assert [names[r.id] for r in page.runs] == [
        "c", "b", *_tied(names, "a", "f", "g")[::-1], *missing
    ]  # fmt: skip


@pytest.mark.parametrize("order_by", ["created_at", "name", "status"])
async def test_run_fields_order_and_a_missing_name_comes_last(
    tracker: Tracker, runs: tuple[str, dict[str, str]], order_by: str
) -> None:
    exp_id, names = runs
    everything = await tracker.filter_runs(exp_id, [])
    page = await tracker.search_runs(exp_id, order_by=order_by)
    if order_by == "created_at":
        assert page.runs == everything
    elif order_by == "name":
        assert [names[r.id] for r in page.runs] == ["a", "b", "c", "d", "e", "f", "g", "-"]
    else:
        assert [r.id for r in page.runs] == sorted(r.id for r in everything)  # one status
    down = await tracker.search_runs(exp_id, order_by=order_by, desc=True)
    if order_by == "name":
        assert [names[r.id] for r in down.runs] == ["g", "f", "e", "d", "c", "b", "a", "-"]
    else:
        assert down.runs == page.runs[::-1]


@pytest.mark.parametrize("order_by", ["created_at", "name", "param:lr", "param:opt", "metric:acc"])
@pytest.mark.parametrize("desc", [False, True])
async def test_pages_of_any_size_join_into_the_whole_order(
    tracker: Tracker, runs: tuple[str, dict[str, str]], order_by: str, desc: bool
) -> None:
    whole = await tracker.search_runs(None, order_by=order_by, desc=desc, limit=100)
    for limit in (1, 2, 3, 7, 8):
        ids, total = await _all_pages(tracker, limit, order_by=order_by, desc=desc)
        assert ids == [run.id for run in whole.runs]
        assert total == len(RUNS)


async def test_filters_and_scope_narrow_the_search_and_the_total(
    tracker: Tracker, runs: tuple[str, dict[str, str]]
) -> None:
    exp_id, names = runs
    other = await tracker.create_experiment("other")
    there = await tracker.create_run(other, name="there")
    await tracker.log_params(there, {"opt": "adam"})
    adam = [ParamFilter("opt", FilterOp.STARTS_WITH, "adam")]
    page = await tracker.search_runs(exp_id, adam, order_by="name", limit=2)
    assert [names[r.id] for r in page.runs] == ["a", "c"]
    assert page.total == 3
    assert page.next is not None
    rest = await tracker.search_runs(exp_id, adam, order_by="name", limit=2, after=page.next)
    assert [names[r.id] for r in rest.runs] == ["d"]
    assert rest.next is None
    everywhere = await tracker.search_runs(None, adam, order_by="name")
    assert everywhere.total == 4
    assert everywhere.runs[-1].id == there
    contains = [ParamFilter("opt", FilterOp.CONTAINS, "dam")]
    assert (await tracker.search_runs(exp_id, contains)).total == 3
    assert await tracker.search_runs(exp_id, [ParamFilter("lr", FilterOp.GT, 5)]) == RunPage(
        [], None, 0
    )


async def test_a_cursor_continues_after_its_run_when_runs_are_added(
    tracker: Tracker, runs: tuple[str, dict[str, str]]
) -> None:
    """Keyset paging: a run added meanwhile shows up once, where the order puts it."""
    exp_id, names = runs
    first = await tracker.search_runs(exp_id, order_by="name", limit=3)
    assert [names[r.id] for r in first.runs] == ["a", "b", "c"]
    early = await tracker.create_run(exp_id, name="aa")  # before the cursor: not seen again
    late = await tracker.create_run(exp_id, name="cc")
    assert first.next is not None
    rest = await tracker.search_runs(exp_id, order_by="name", limit=100, after=first.next)
    assert rest.runs[0].id == late
    assert early not in [r.id for r in rest.runs]
    assert rest.total == len(RUNS) + 2


async def test_bad_orders_pages_and_cursors_raise(
    tracker: Tracker, runs: tuple[str, dict[str, str]]
) -> None:
    exp_id, _ = runs
    page = await tracker.search_runs(exp_id, order_by="name", limit=2)
    assert page.next is not None
    with pytest.raises(ValueError, match="cannot sort by"):
        await tracker.search_runs(exp_id, order_by="bogus")
    with pytest.raises(ValueError, match="cannot sort by"):
        await tracker.search_runs(exp_id, order_by="param:")
    with pytest.raises(ValueError, match="limit"):
        await tracker.search_runs(exp_id, limit=0)
    with pytest.raises(ValueError, match="not a cursor"):
        await tracker.search_runs(exp_id, order_by="name", after="garbage")
    with pytest.raises(ValueError, match="continues a search by 'name'"):
        await tracker.search_runs(exp_id, order_by="name", desc=True, after=page.next)
    with pytest.raises(ValueError, match="continues a search by 'name'"):
        await tracker.search_runs(exp_id, order_by="created_at", after=page.next)
    with pytest.raises(ValueError, match="STARTS_WITH needs a str"):
        await tracker.search_runs(exp_id, [ParamFilter("lr", FilterOp.STARTS_WITH, 1)])


async def test_hidden_runs_are_left_out_unless_the_view_asks(
    tracker: Tracker, runs: tuple[str, dict[str, str]]
) -> None:
    exp_id, names = runs
    by_name = {name: run_id for run_id, name in names.items()}
    await tracker.hide_run(by_name["b"])
    shown = await tracker.search_runs(exp_id, order_by="name")
    assert [names[r.id] for r in shown.runs] == ["a", "c", "d", "e", "f", "g", "-"]
    assert shown.total == len(RUNS) - 1
    hidden = await tracker.search_runs(exp_id, order_by="name", view="HIDDEN")
    assert [names[r.id] for r in hidden.runs] == ["b"]
    every = await tracker.search_runs(None, [ParamFilter("opt", FilterOp.EQ, "sgd")], view="ALL")
    assert [names[r.id] for r in every.runs] == ["b"]
    assert every.runs[0].hidden
