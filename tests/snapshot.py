"""Everything a store answers, as one comparable value (NaN-safe: compared as msgpack bytes)."""

from __future__ import annotations

from typing import Any

import msgspec

from runjournal.stores.base import Queries


async def snapshot(store: Queries) -> dict[str, Any]:
    """Every experiment, run, param, metric series, artifact and span id in ``store``."""
    experiments = await store.list_experiments()
    out: dict[str, Any] = {"experiments": [], "runs": {}}
    for exp in experiments:
        out["experiments"].append(msgspec.to_builtins(exp))
        for run in await store.list_runs(exp.id):
            keys = await store.list_metric_keys(run.id)
            out["runs"][run.id] = {
                "run": msgspec.to_builtins(run),
                "params": await store.get_params(run.id),
                "metrics": {
                    k: msgspec.to_builtins(await store.get_metrics(run.id, k)) for k in keys
                },
                "artifacts": msgspec.to_builtins(await store.list_artifacts(run.id)),
                "span_id": await store.get_span_id(run.id),
            }
    # NaN != NaN, so compare the exact encoding instead of the values.
    return {"msgpack": msgspec.msgpack.encode(out), "experiments": out["experiments"]}
