"""Hypothesis strategies for parameter values and journal histories."""

from __future__ import annotations

from typing import Any

from hypothesis import strategies as st

from runjournal.chunks import encode_chunk
from runjournal.events import (
    ArtifactLogged,
    Event,
    ExperimentCreated,
    ExperimentDeleted,
    MetricChunkLogged,
    MetricsLogged,
    ParamsLogged,
    RunCompleted,
    RunCreated,
    RunDeleted,
    RunStarted,
    SpanIdSet,
    TagSet,
)
from runjournal.model import MetricPoint, RunStatus

keys = st.text(st.characters(exclude_characters="\x00", codec="utf-8"), min_size=1, max_size=8)

scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**63), max_value=2**63 - 1)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=10)
)

param_values: st.SearchStrategy[Any] = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(keys, inner, max_size=3),
    max_leaves=8,
)

EXPERIMENTS = [f"E{i}" for i in range(2)]
RUNS = [f"R{i}" for i in range(4)]
_exp = st.sampled_from(EXPERIMENTS)
_run = st.sampled_from(RUNS)
_at = st.floats(min_value=1e9, max_value=2e9)
_points = st.lists(
    st.builds(
        MetricPoint,
        st.integers(0, 6),
        st.floats(allow_nan=True, allow_infinity=True),
        _at,
    ),
    min_size=1,
    max_size=4,
)


def _chunk(points: list[MetricPoint]) -> bytes:
    return encode_chunk(
        [p.step for p in points], [p.value for p in points], [p.timestamp for p in points]
    )


events: st.SearchStrategy[Event] = st.one_of(
    st.builds(ExperimentCreated, experiment_id=_exp, name=keys, at=_at, config=st.none()),
    st.builds(RunCreated, run_id=_run, experiment_id=_exp, at=_at),
    st.builds(RunStarted, run_id=_run, at=_at),
    st.builds(RunCompleted, run_id=_run, status=st.sampled_from(list(RunStatus)), at=_at),
    st.builds(
        ParamsLogged, run_id=_run, params=st.dictionaries(keys, param_values, max_size=3), at=_at
    ),
    st.builds(
        MetricsLogged,
        run_id=_run,
        key=st.sampled_from(["loss", "acc"]),
        points=_points,
        at=_at,
    ),
    st.builds(
        MetricChunkLogged,
        run_id=_run,
        key=st.sampled_from(["loss", "acc"]),
        chunk=_points.map(_chunk),
        at=_at,
    ),
    st.builds(TagSet, run_id=_run, key=keys, value=st.text(max_size=5), at=_at),
    st.builds(SpanIdSet, run_id=_run, span_id=keys, at=_at),
    st.builds(
        ArtifactLogged,
        run_id=_run,
        name=keys,
        sha256=st.sampled_from(["a" * 64, "b" * 64]),
        size_bytes=st.integers(0, 10),
        at=_at,
    ),
)

deletions: st.SearchStrategy[Event] = st.one_of(
    st.builds(RunDeleted, run_id=_run, at=_at),
    st.builds(ExperimentDeleted, experiment_id=_exp, at=_at),
)

_SETUP: list[Event] = [
    ExperimentCreated(experiment_id="E0", name="zero", at=1e9),
    ExperimentCreated(experiment_id="E1", name="one", at=1e9),
    *(RunCreated(run_id=r, experiment_id=EXPERIMENTS[i % 2], at=1e9) for i, r in enumerate(RUNS)),
]


def _history(tail: list[Event], cuts: list[tuple[int, Event]]) -> list[Event]:
    history = list(tail)
    for index, deletion in cuts:
        history.insert(min(index, len(history)), deletion)
    return _SETUP + history


histories: st.SearchStrategy[list[Event]] = st.builds(
    _history,
    st.lists(events, max_size=40),
    st.lists(st.tuples(st.integers(0, 40), deletions), max_size=2),
)
"""Random events after a setup that creates every experiment and run, so that most apply;
deletions are rarer, so that they do not end most histories early."""

# Values that are easy to confuse with one another: equal numbers of both kinds, both
# zeros, a bool beside 1, NaN, integers beyond a float's precision, and the like.
CONFUSABLE: list[Any] = [
    *(0, 0.0, -0.0, 1, 1.0, True, False, None, 64, 64.0, -1, -1.0, 1e-4, 0.5),
    *(2**53 + 1, float(2**53), 2**63 - 1, float(2**63), -(2**63), float("nan")),
    *(float("inf"), "", "a", "adamw", "adam", [1], [1.0], [True], {"a": 1}),
    # Strings at the edges of the text index: a NUL, the last code point (a prefix of it
    # has no successor), the one before the surrogates, non-ASCII and case.
    *("\x00", "a\x00b", "\U0010ffff", "a\U0010ffff", "\ud7ff", "\ud7ffx", "é", "A"),
    # Lists whose bytes hold another value's encoding without holding that value.
    *(float("-inf"), ["\x01"], ["adam", 1], [[1]], [None], []),
]
confusable = st.sampled_from(CONFUSABLE)
filter_values: st.SearchStrategy[Any] = confusable | param_values
