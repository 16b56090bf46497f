"""Keys and names are identifiers: no control characters; param values nest a bounded depth.

A key with ``\\n`` or an ANSI escape would reach a terminal raw wherever it is
printed, so it is refused at the call, shown escaped. Values (tag values, string
params, descriptions, nested dict keys) are data and may hold any text.
"""

from __future__ import annotations

import re
from typing import Any

import pytest

from runjournal import Tracker

CONTROL_KEYS = ["loss\nfake row", "\x1b[31mred", "nul\x00", "del\x7f", "c1\x85", "tab\t"]


def nested(depth: int) -> Any:
    value: Any = 1
    for _ in range(depth):
        value = {"inner": value}
    return value


@pytest.mark.parametrize("key", CONTROL_KEYS)
async def test_control_characters_in_keys_and_names_are_refused_at_the_call(
    tracker: Tracker, key: str
) -> None:
    experiment_id = await tracker.create_experiment("identifiers")
    run_id = await tracker.create_run(experiment_id)
    await tracker.start_run(run_id)
    with pytest.raises(
        ValueError, match=re.escape(f"metric key must not contain control characters: {key!r}")
    ):
        await tracker.log_metric(run_id, key, 0, 1.0)
    with pytest.raises(ValueError, match="control characters"):
        tracker.log_metric_nowait(run_id, key, 0, 1.0)
    with pytest.raises(ValueError, match="param key must not contain control characters"):
        await tracker.log_params(run_id, {key: 1})
    with pytest.raises(ValueError, match="tag key must not contain control characters"):
        await tracker.set_tag(run_id, key, "v")
    with pytest.raises(ValueError, match="experiment name must not contain control characters"):
        await tracker.create_experiment(key)
    with pytest.raises(ValueError, match="run name must not contain control characters"):
        await tracker.create_run(experiment_id, name=key)
    with pytest.raises(ValueError, match="artifact name must not contain control characters"):
        await tracker.log_artifact(run_id, key, b"x")
    await tracker.flush()
    assert await tracker.list_metric_keys(run_id) == []
    assert await tracker.get_params(run_id) == {}


async def test_values_may_hold_newlines_and_any_text(tracker: Tracker) -> None:
    experiment_id = await tracker.create_experiment("values", description="line 1\nline 2")
    run_id = await tracker.create_run(experiment_id, name="lr=0.1 bs=32 ünïcode")
    prompt = "System:\n\x1b[1mbold\x1b[0m\ttabbed"
    await tracker.log_params(run_id, {"prompt": prompt, "tokens": {"\n": 198, "\t": 197}})
    await tracker.set_tag(run_id, "note", "first line\nsecond line")
    run = await tracker.get_run(run_id)
    assert run.params == {"prompt": prompt, "tokens": {"\n": 198, "\t": 197}}
    assert run.tags == {"note": "first line\nsecond line"}


async def test_params_nested_past_the_depth_limit_are_refused_naming_the_path(
    tracker: Tracker,
) -> None:
    experiment_id = await tracker.create_experiment("depth")
    run_id = await tracker.create_run(experiment_id)
    with pytest.raises(ValueError, match=r"param 'config'\['inner'\].*nested more than 100"):
        await tracker.log_params(run_id, {"config": nested(2_000)})
    deepest = nested(100)  # runjournal.model.MAX_PARAM_DEPTH
    await tracker.log_params(run_id, {"config": deepest})
    assert (await tracker.get_params(run_id)) == {"config": deepest}
