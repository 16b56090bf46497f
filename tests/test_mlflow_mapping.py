"""The MLflow value mapping (``runjournal.mlflow.mapping``): params, statuses, times, run views.

The rule for params: an MLflow param string is stored typed only when the typed value
prints back as that very string, so the MLflow client always reads back what it sent,
and runjournal's own numeric filters work on the params MLflow users log.
"""

from __future__ import annotations

import math
import random

import pytest

from runjournal import FilterOp, ParamFilter, RunStatus, Tracker
from runjournal.mlflow.mapping import (
    latest_point,
    lifecycle_stage,
    ms_to_seconds,
    param_from_mlflow,
    param_to_mlflow,
    search_run,
    seconds_to_ms,
    status_from_mlflow,
    status_to_mlflow,
)
from runjournal.mlflow.search import filter_runs
from runjournal.model import MetricPoint
from tests.conftest import assert_identical


@pytest.mark.parametrize(
    ("sent", "stored"),
    [
        ("0.001", 0.001),
        ("32", 32),
        ("-5", -5),
        ("1.0", 1.0),
        ("-0.0", -0.0),
        ("True", True),
        ("False", False),
        ("nan", math.nan),
        ("inf", math.inf),
        ("1e+20", 1e20),
        # not exactly what str() of a number prints: kept as the string
        ("1e-3", "1e-3"),
        ("007", "007"),
        ("+5", "+5"),
        (" 5", " 5"),
        ("1_000", "1_000"),
        ("NaN", "NaN"),
        ("true", "true"),
        ("None", "None"),
        ("", ""),
        ("[1, 2]", "[1, 2]"),
        ("adamw", "adamw"),
        ("٣", "٣"),  # int() reads other scripts' digits; str() would not print it back
        (str(2**63), str(2**63)),  # beyond 64 bits: a runjournal int cannot hold it
        (str(2**63 - 1), 2**63 - 1),
    ],
)
def test_a_param_is_typed_only_when_it_prints_back_exactly(sent: str, stored: object) -> None:
    value = param_from_mlflow(sent)
    assert_identical(value, stored)
    assert param_to_mlflow(value) == sent


def test_every_param_string_round_trips() -> None:
    rng = random.Random(13)
    alphabet = "0123456789.-+eE_ainfTrueFals x"
    for _ in range(20_000):
        sent = "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 8)))
        assert param_to_mlflow(param_from_mlflow(sent)) == sent
    for number in [rng.uniform(-1e6, 1e6) for _ in range(1000)] + [1e-4, 3e-4, 0.1]:
        assert param_from_mlflow(str(number)) == number


def test_a_param_that_is_not_a_string_is_refused() -> None:
    with pytest.raises(TypeError, match="is a str, not float"):
        param_from_mlflow(0.1)  # type: ignore[arg-type]


async def test_numeric_filters_work_on_params_sent_as_mlflow_strings() -> None:
    """``lr<1e-3`` finds the run whose MLflow client sent ``"0.0001"``; ``"1e-3"`` stays text."""
    async with Tracker.open_in_memory() as tracker:
        exp = await tracker.create_experiment("from-mlflow")
        runs = {}
        for sent in ("0.0001", "0.001", "1e-3", "0.01"):
            run_id = await tracker.create_run(exp)
            await tracker.log_param(run_id, "lr", param_from_mlflow(sent))
            runs[sent] = run_id
        small = await tracker.filter_runs(exp, [ParamFilter("lr", FilterOp.LT, 1e-3)])
        assert [r.id for r in small] == [runs["0.0001"]]
        upto = await tracker.filter_runs(exp, [ParamFilter("lr", FilterOp.LTE, 1e-3)])
        assert [r.id for r in upto] == [runs["0.0001"], runs["0.001"]]
        text = await tracker.filter_runs(exp, [ParamFilter("lr", FilterOp.EQ, "1e-3")])
        assert [r.id for r in text] == [runs["1e-3"]]
        for sent, run_id in runs.items():  # and the MLflow client reads back what it sent
            params = await tracker.get_params(run_id)
            assert param_to_mlflow(params["lr"]) == sent


@pytest.mark.parametrize(
    ("mlflow", "ours"),
    [
        ("RUNNING", RunStatus.RUNNING),
        ("FINISHED", RunStatus.SUCCESS),
        ("FAILED", RunStatus.FAILED),
        ("KILLED", RunStatus.CANCELLED),
        ("SCHEDULED", RunStatus.PENDING),
    ],
)
def test_statuses_map_both_ways(mlflow: str, ours: RunStatus) -> None:
    assert status_from_mlflow(mlflow) is ours
    assert status_to_mlflow(ours) == mlflow


def test_an_unknown_status_is_refused_by_name() -> None:
    for bad in ("finished", "DONE", ""):
        with pytest.raises(ValueError, match="unknown MLflow run status"):
            status_from_mlflow(bad)


def test_milliseconds_go_to_seconds_and_back_without_loss() -> None:
    rng = random.Random(7)
    samples = [0, 1, 999, -1, 1_796_053_791_896, 2**53 // 1000, 4_102_444_800_000]
    samples += [rng.randrange(0, 4_102_444_800_000) for _ in range(100_000)]
    for ms in samples:
        assert seconds_to_ms(ms_to_seconds(ms)) == ms
    assert ms_to_seconds(1_796_053_791_896) == pytest.approx(1_796_053_791.896)
    with pytest.raises(TypeError, match="int of milliseconds"):
        ms_to_seconds(1.5)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="finite"):
        seconds_to_ms(math.nan)


def test_the_latest_point_is_the_highest_step_then_the_newest_timestamp() -> None:
    points = [
        MetricPoint(5, 0.1, 10.0),
        MetricPoint(7, 0.2, 5.0),
        MetricPoint(7, 0.3, 6.0),
        MetricPoint(2, 0.9, 99.0),
        MetricPoint(7, 0.4, 6.0),  # equal step and timestamp: the last logged wins
    ]
    assert latest_point(points) == MetricPoint(7, 0.4, 6.0)
    assert latest_point([]) is None


async def test_a_runjournal_run_seen_by_mlflow_search() -> None:
    async with Tracker.open_in_memory() as tracker:
        exp = await tracker.create_experiment("e")
        run_id = await tracker.create_run(exp, name="r1", tags={"mlflow.user": "ana"})
        await tracker.start_run(run_id)
        await tracker.log_params(run_id, {"lr": param_from_mlflow("0.001"), "opt": "adamw"})
        await tracker.complete_run(run_id, "SUCCESS")
        await tracker.hide_run(run_id)
        run = await tracker.get_run(run_id)
    view = search_run(
        run, {"loss": 0.25}, artifact_uri=f"mlflow-artifacts:/{exp}/{run_id}/artifacts"
    )
    assert view.status == "FINISHED"
    assert view.run_name == "r1" and view.user_id == "ana"
    assert view.lifecycle_stage == "deleted" == lifecycle_stage(run)
    assert view.params == {"lr": "0.001", "opt": "adamw"}
    assert run.start_time is not None and view.start_time == seconds_to_ms(run.start_time)
    assert filter_runs([view], "params.lr = '0.001' and metrics.loss < 0.5") == [view]
    assert filter_runs([view], "attributes.status = 'FINISHED' and run_name LIKE 'r%'") == [view]
