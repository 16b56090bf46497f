"""MLflow's search_runs grammar (``runjournal.mlflow.search``): what it accepts, what it refuses.

The filters are the ones MLflow's documentation gives as examples (the "Search Runs"
syntax page) and the ones the real client was seen to send verbatim
(``../shared/reference/mlflow-rest.md`` §7), evaluated against a few runs.
"""

from __future__ import annotations

import math

import pytest

from runjournal.mlflow.search import (
    Comparison,
    Entity,
    OrderBy,
    SearchError,
    SearchRun,
    decode_page_token,
    encode_page_token,
    filter_runs,
    parse_filter,
    parse_order_by,
    sort_runs,
)

TREE = SearchRun(
    run_id="01AAAAAAAAAAAAAAAAAAAAAAAA",
    run_name="tree-run",
    status="FINISHED",
    user_id="ana",
    start_time=1_700_000_000_000,
    end_time=1_700_000_100_000,
    params={"model": "tree", "lr": "0.001", "layers": "10"},
    tags={"mlflow.runName": "tree-run", "team": "NLP", "mlflow.source.type": "LOCAL"},
    metrics={"rmse": 0.8, "accuracy": 0.9, "f1 score": 0.85},
)
CNN = SearchRun(
    run_id="01BBBBBBBBBBBBBBBBBBBBBBBB",
    run_name="client-cnn",
    status="FAILED",
    user_id="bo",
    start_time=1_700_000_500_000,
    params={"model": "CNN", "lr": "0.01", "p": "2"},
    tags={"mlflow.runName": "client-cnn", "team": "vision"},
    metrics={"rmse": 1.5, "accuracy": 0.7, "int": 7.0},
)
BARE = SearchRun(run_id="01CCCCCCCCCCCCCCCCCCCCCCCC", status="RUNNING", lifecycle_stage="active")
RUNS = [TREE, CNN, BARE]


def ids(filter_text: str) -> list[str]:
    return [r.run_name or r.run_id[:4] for r in filter_runs(RUNS, filter_text)]


# -- what matches --------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("text", "expected"),
    [
        # MLflow's documented examples
        ("metrics.rmse < 1 and params.model = 'tree'", ["tree-run"]),
        ('params.model = "CNN"', ["client-cnn"]),
        ("metrics.accuracy > 0.72", ["tree-run"]),
        ("tags.`mlflow.source.type` = 'LOCAL'", ["tree-run"]),
        ("attributes.status = 'FAILED'", ["client-cnn"]),
        ("attributes.run_name = 'tree-run'", ["tree-run"]),
        ("attributes.created > 1700000200000", ["client-cnn"]),
        ("params.model LIKE 't%'", ["tree-run"]),
        ("params.model ILIKE 'c%'", ["client-cnn"]),
        ("tags.team ILIKE '%nlp%'", ["tree-run"]),
        ("metrics.`f1 score` >= 0.85", ["tree-run"]),
        ('metrics."f1 score" > 0.8', ["tree-run"]),
        # seen from the real client (mlflow-rest.md §7)
        ("params.lr = '0.001'", ["tree-run"]),
        ("metrics.loss < 1 and tags.team = 'proto'", []),
        ("run_name ILIKE 'TREE-RUN'", ["tree-run"]),
        ("tags.`mlflow.runName` = 'client-cnn'", ["client-cnn"]),
        ("tags.mlflow.runName LIKE 'client%'", ["client-cnn"]),
        ("metrics.int >= 7", ["client-cnn"]),
        ("params.p != '2'", []),  # a run without the key never matches, != included
        ("attributes.start_time > 0", ["tree-run", "client-cnn"]),
        (f"attributes.run_id IN ('{TREE.run_id}', '{BARE.run_id}')", ["tree-run", "01CC"]),
        (f"attributes.run_id NOT IN ('{TREE.run_id}')", ["client-cnn", "01CC"]),
        ("status = 'RUNNING'", ["01CC"]),
        # aliases, case and the null tests
        ("metric.rmse <= 0.8 AND param.layers = '10' AND tag.team = 'NLP'", ["tree-run"]),
        ("parameter.model = 'tree' aNd parameters.lr = '0.001'", ["tree-run"]),
        ("attr.user_id = 'bo' and run.status != 'FINISHED'", ["client-cnn"]),
        ("params.model IS NULL", ["01CC"]),
        ("tags.team is not null", ["tree-run", "client-cnn"]),
        ("`attributes`.end_time < 1800000000000", ["tree-run"]),
        ("attributes.`Run name` = 'client-cnn'", ["client-cnn"]),
        ("attributes.lifecycle_stage = 'active'", ["tree-run", "client-cnn", "01CC"]),
        ("params.model LIKE 'tre_'", ["tree-run"]),
        ("params.model LIKE 'TREE'", []),  # LIKE is case-sensitive
        ("metrics.rmse = 1.5e0", ["client-cnn"]),
        ("metrics.rmse > -1", ["tree-run", "client-cnn"]),
        ("", ["tree-run", "client-cnn", "01CC"]),
    ],
)
def test_documented_filters_match_the_runs_mlflow_would(text: str, expected: list[str]) -> None:
    assert ids(text) == expected


def test_a_filter_parses_to_typed_comparisons() -> None:
    assert parse_filter("metrics.acc >= 0.5 and tags.`a b` IS NOT NULL and run_id IN ('x')") == [
        Comparison(Entity.METRIC, "acc", ">=", 0.5),
        Comparison(Entity.TAG, "a b", "IS NOT NULL", None),
        Comparison(Entity.ATTRIBUTE, "run_id", "IN", ("x",)),
    ]
    assert parse_filter("created < 5") == [Comparison(Entity.ATTRIBUTE, "start_time", "<", 5.0)]
    assert parse_filter(None) == [] and parse_filter("   ") == []


def test_like_treats_regex_characters_literally() -> None:
    run = SearchRun(run_id="x", params={"path": "a.b(c)"})
    assert filter_runs([run], "params.path LIKE 'a.b(c)'") == [run]
    assert filter_runs([run], "params.path LIKE 'a_b(c)'") == [run]
    assert filter_runs([run], "params.path LIKE 'aXb(c)'") == []


def test_nan_metrics_match_only_not_equal() -> None:
    run = SearchRun(run_id="x", metrics={"loss": math.nan})
    assert filter_runs([run], "metrics.loss < 1") == []
    assert filter_runs([run], "metrics.loss >= 1") == []
    assert filter_runs([run], "metrics.loss != 1") == [run]


# -- what is refused, and why --------------------------------------------------------------------
@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("metrics.rmse < 1 OR params.model = 'tree'", "OR is not supported"),
        ("(metrics.rmse < 1)", "parentheses"),
        ("metrics.rmse < '1'", "compares with a number"),
        ("params.lr = 0.001", "quoted string"),
        ("params.lr < '0.1'", "invalid operator < for params.lr"),
        ("tags.team IN ('a')", "invalid operator IN"),
        ("metrics.rmse LIKE '1%'", "invalid operator LIKE for metrics.rmse"),
        ("metrics.rmse IS NULL", "invalid operator IS NULL"),
        ("attributes.status IN ('FAILED')", "only attributes.run_id takes IN"),
        ("attributes.start_time = 'yesterday'", "compares with a number"),
        ("attributes.colour = 'red'", "invalid attribute key 'colour'"),
        ("colour = 'red'", "invalid attribute key 'colour'"),
        ("metricz.rmse < 1", "invalid entity type 'metricz'"),
        ("METRICS.rmse < 1", "invalid entity type 'METRICS'"),
        ("datasets.name = 'x'", "dataset filters are not supported"),
        ("metrics.rmse < 1 metrics.acc > 0", "expected AND"),
        ("metrics.rmse 1", "expected an operator"),
        ("metrics.rmse <", "ends without a value"),
        ("metrics.rmse", "without an operator"),
        ("params.model = 'tree", "unclosed quote '"),
        ("params.model = tree", "expected a value"),
        ("metrics.rmse == 1", "use = or !="),
        ("metrics.rmse < 1 and", "unexpected end"),
        ("params.x = 'a'; drop table runs", "unexpected character ';'"),
        ("run_id IN 'a'", "parenthesised list"),
        ("run_id IN ('a' 'b')", "expected , or )"),
        ("run_id IN ('a', 2)", "quoted strings"),
        ("metrics. < 1", "expected a key after metrics."),
    ],
)
def test_a_bad_filter_raises_naming_the_problem(text: str, message: str) -> None:
    with pytest.raises(SearchError) as caught:
        parse_filter(text)
    assert message in str(caught.value)
    assert isinstance(caught.value, ValueError)


# -- order_by ------------------------------------------------------------------------------------
def test_order_by_clauses_parse() -> None:
    assert parse_order_by("metrics.acc DESC") == OrderBy(Entity.METRIC, "acc", False)
    assert parse_order_by("attributes.start_time") == OrderBy(Entity.ATTRIBUTE, "start_time")
    assert parse_order_by("params.`learning rate` asc") == OrderBy(Entity.PARAM, "learning rate")
    assert parse_order_by("created desc") == OrderBy(Entity.ATTRIBUTE, "start_time", False)
    assert parse_order_by("tags.mlflow.runName") == OrderBy(Entity.TAG, "mlflow.runName")
    for bad, message in [
        ("metrics.acc DOWN", "expected ASC or DESC"),
        ("metrics.acc DESC ASC", "expected ASC or DESC"),
        ("", "empty"),
        ("attributes.colour", "invalid attribute key"),
    ]:
        with pytest.raises(SearchError, match=message):
            parse_order_by(bad)


def _names(runs: list[SearchRun]) -> list[str]:
    return [r.run_name or r.run_id[:4] for r in runs]


def test_the_default_order_is_newest_start_first_then_run_id() -> None:
    twin = SearchRun(
        run_id="01AAAAAAAAAAAAAAAAAAAAAAA0", run_name="twin", start_time=TREE.start_time
    )
    assert _names(sort_runs([TREE, BARE, twin, CNN])) == ["client-cnn", "twin", "tree-run", "01CC"]


def test_order_by_puts_missing_and_nan_last_either_way() -> None:
    nan = SearchRun(run_id="01DDDDDDDDDDDDDDDDDDDDDDDD", run_name="nan", metrics={"rmse": math.nan})
    runs = [TREE, CNN, BARE, nan]
    assert _names(sort_runs(runs, ["metrics.rmse"])) == ["tree-run", "client-cnn", "nan", "01CC"]
    assert _names(sort_runs(runs, ["metrics.rmse DESC"])) == [
        "client-cnn",
        "tree-run",
        "nan",
        "01CC",
    ]
    assert _names(sort_runs(runs, ["params.model DESC", "attributes.start_time"])) == [
        "tree-run",
        "client-cnn",
        "01CC",  # no model, no start time: the default order, then by run id
        "nan",
    ]


def test_page_tokens_round_trip_and_bad_ones_are_refused() -> None:
    for offset in (0, 1, 10_000):
        assert decode_page_token(encode_page_token(offset)) == offset
    assert decode_page_token(None) == 0 and decode_page_token("") == 0
    for bad in ("not-base64!", encode_page_token(-1), "eyJ4IjogMX0="):
        with pytest.raises(SearchError, match="invalid page token"):
            decode_page_token(bad)
