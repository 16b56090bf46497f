"""Write ``format1.db``, a database of storage format 1, and ``format1.expected.json`` beside it.

    .venv/bin/python tests/data/make_v1_database.py

Run once, with the runjournal that still writes format 1 (schema version 1, metric points
as msgpack triples). The two files are then committed and never regenerated:
``tests/test_format1_database.py`` opens a copy of the database with the code of the day
and checks that every query answers what :func:`collect_answers` recorded here. The
script refuses to overwrite either file.

Ids and default timestamps come from the clock, so two runs of the script differ; what
matters is that the database and its expected answers are written together.

JSON cannot hold every float, so the answers go through :func:`to_json_safe`: a float that
is NaN or infinite becomes ``{"$float": "nan"}``, ``{"$float": "inf"}`` or
``{"$float": "-inf"}`` (the sign and payload of a NaN are not recorded); every other float
stays a JSON number, which msgspec writes and reads back exactly (-0.0 included).
"""

from __future__ import annotations

import asyncio
import hashlib
import math
import sqlite3
import sys
from pathlib import Path
from typing import Any

import msgspec

from runjournal import FilterOp, ParamFilter, RunStatus, Tracker
from runjournal.errors import NotFoundError

HERE = Path(__file__).resolve().parent
DATABASE = HERE / "format1.db"
EXPECTED = HERE / "format1.expected.json"

T0 = 1_700_000_000.0
"""The user timestamps of the series logged with explicit timestamps start here."""

LONG_TEXT = "a long string parameter " * 200


def to_json_safe(value: Any) -> Any:
    """``value`` as plain JSON data, with NaN and infinities spelled as ``{"$float": ...}``."""
    if isinstance(value, float):
        if math.isnan(value):
            return {"$float": "nan"}
        if math.isinf(value):
            return {"$float": "inf" if value > 0 else "-inf"}
        return value
    if isinstance(value, dict):
        return {key: to_json_safe(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [to_json_safe(item) for item in value]
    return value


def filters() -> list[tuple[str, list[ParamFilter]]]:
    """The ``filter_runs`` questions asked of every experiment and of all runs."""
    return [
        ("none", []),
        ("lr == 0.001", [ParamFilter("optimizer.lr", FilterOp.EQ, 0.001)]),
        ("epochs > 5", [ParamFilter("epochs", FilterOp.GT, 5)]),
        ("epochs <= 10", [ParamFilter("epochs", FilterOp.LTE, 10)]),
        ("model starts with res", [ParamFilter("model", FilterOp.STARTS_WITH, "res")]),
        ("layers contains 64", [ParamFilter("layers", FilterOp.CONTAINS, 64)]),
        ("flag != true", [ParamFilter("flag", FilterOp.NE, True)]),
        (
            "epochs >= 3 and model == resnet",
            [
                ParamFilter("epochs", FilterOp.GTE, 3),
                ParamFilter("model", FilterOp.EQ, "resnet"),
            ],
        ),
    ]


async def _answer(call: Any) -> Any:
    try:
        return msgspec.to_builtins(await call)
    except NotFoundError as exc:
        return {"error": type(exc).__name__}


async def collect_answers(
    tracker: Tracker, experiment_ids: list[str], run_ids: list[str]
) -> dict[str, Any]:
    """Every answer of the query API about these experiments and runs, as JSON-safe data."""
    experiments: dict[str, Any] = {}
    for experiment_id in experiment_ids:
        experiments[experiment_id] = {
            "get_experiment": await _answer(tracker.get_experiment(experiment_id)),
            "list_runs": await _answer(tracker.list_runs(experiment_id)),
            "filter_runs": {
                name: await _answer(tracker.filter_runs(experiment_id, conditions))
                for name, conditions in filters()
            },
        }
    runs: dict[str, Any] = {}
    for run_id in run_ids:
        answers: dict[str, Any] = {
            "get_run": await _answer(tracker.get_run(run_id)),
            "get_run_status": await _answer(tracker.get_run_status(run_id)),
            "get_params": await _answer(tracker.get_params(run_id)),
            "list_metric_keys": await _answer(tracker.list_metric_keys(run_id)),
            "list_artifacts": await _answer(tracker.list_artifacts(run_id)),
            "get_span_id": await _answer(tracker.get_span_id(run_id)),
        }
        keys = answers["list_metric_keys"]
        answers["get_metrics"] = {
            key: await _answer(tracker.get_metrics(run_id, key))
            for key in (keys if isinstance(keys, list) else [])
        }
        artifacts = answers["list_artifacts"]
        answers["artifact_data_sha256"] = {
            ref["sha256"]: hashlib.sha256(
                await tracker.get_artifact_data(ref["sha256"])
            ).hexdigest()
            for ref in (artifacts if isinstance(artifacts, list) else [])
        }
        runs[run_id] = answers
    safe: dict[str, Any] = to_json_safe(
        {
            "experiment_ids": experiment_ids,
            "run_ids": run_ids,
            "list_experiments": await _answer(tracker.list_experiments()),
            "filter_runs_all": {
                name: await _answer(tracker.filter_runs(None, conditions))
                for name, conditions in filters()
            },
            "experiments": experiments,
            "runs": runs,
        }
    )
    return safe


async def _fill(tracker: Tracker) -> tuple[list[str], list[str]]:
    """Log the content of the database; returns every experiment id and run id it made."""
    vision = await tracker.create_experiment(
        "vision",
        {"dataset": "imagenet", "augment": {"flip": True, "crop": [224, 224]}, "nan": math.nan},
        description="image models, ünïcödé ✓",
        tags={"team": "ml", "priority": "high"},
    )
    text = await tracker.create_experiment("text", description=None)
    empty = await tracker.create_experiment("empty", {}, tags={})
    gone = await tracker.create_experiment("gone", {"x": 1}, description="deleted later")

    runs: dict[str, str] = {}
    for name, experiment in [
        ("pending", vision),
        ("running", vision),
        ("success", vision),
        ("failed", text),
        ("cancelled", text),
        ("deleted", text),
        ("in-gone", gone),
        ("unnamed", vision),
    ]:
        tags = {"kind": name} if name != "unnamed" else None
        runs[name] = await tracker.create_run(
            experiment, name=None if name == "unnamed" else name, tags=tags
        )
    for name in ("running", "success", "failed", "cancelled", "deleted", "in-gone", "unnamed"):
        await tracker.start_run(runs[name])
    await tracker.complete_run(runs["success"], RunStatus.SUCCESS)
    await tracker.complete_run(runs["failed"], "FAILED")
    await tracker.complete_run(runs["cancelled"], RunStatus.CANCELLED)
    await tracker.complete_run(runs["unnamed"], RunStatus.SUCCESS)

    await tracker.log_params(
        runs["success"],
        {
            "model": "resnet",
            "epochs": 10,
            "flag": True,
            "optimizer": {"name": "adam", "lr": 0.001, "betas": [0.9, 0.999]},
            "layers": [64, 128, [256, {"deep": None}]],
            "dropout": 0.0,
            "neg_zero": -0.0,
            "nan": math.nan,
            "inf": math.inf,
            "ninf": -math.inf,
            "none": None,
            "big": 2**63 - 1,
            "small": -(2**63),
            "long": LONG_TEXT,
            "unicode": "日本語 – ñ – 🚀",
            "empty_list": [],
            "empty_dict": {},
        },
    )
    await tracker.log_param(runs["success"], "epochs", 12)  # last write wins
    await tracker.log_params(
        runs["running"], {"model": "resnet-small", "epochs": 3, "flag": False, "layers": [64]}
    )
    await tracker.log_params(runs["failed"], {"model": "bert", "epochs": 5.5, "flag": 1})
    await tracker.log_params(runs["cancelled"], {"model": "gpt", "epochs": "many"})
    await tracker.log_params(runs["deleted"], {"model": "resnet", "epochs": 7})
    await tracker.log_params(runs["in-gone"], {"model": "resnet", "epochs": 8})
    await tracker.set_tag(runs["success"], "note", "best so far")
    await tracker.set_tag(runs["running"], "kind", "retagged")

    run = runs["success"]
    for step in range(300):  # consecutive steps, over several journal entries
        await tracker.log_metric(run, "loss", step, 2.0 / (step + 1) + 0.01 * math.sin(step))
        if step % 100 == 99:
            await tracker.flush()
    for step in range(0, 1000, 50):  # gaps
        await tracker.log_metric(run, "val/acc", step, step / 1000.0)
    for step, value in [(0, 1.0), (1, 2.0), (1, 3.0), (2, 4.0), (2, 4.0)]:  # repeated steps
        await tracker.log_metric(run, "repeated", step, value)
    for step in (5, 3, 9, 1, 7, 3, 0):  # out of order
        await tracker.log_metric(run, "shuffled", step, float(step) * 1.5)
    specials = [math.nan, math.inf, -math.inf, -0.0, 0.0, 5e-324, 1.7976931348623157e308]
    for step, value in enumerate(specials):
        await tracker.log_metric(run, "special", step, value)
    for step in range(20):  # user timestamps, one step per second
        await tracker.log_metric(
            run, "timed", step, step * 0.25, timestamp=T0 + step + 0.123456 * (step % 3)
        )
    await tracker.log_metrics(run, {"a": 1.0, "b": 2, "c/d": -3.5}, 0, timestamp=T0)
    await tracker.log_metrics(runs["running"], {"loss": 0.5, "acc": 0.9}, 1)
    await tracker.log_metric(runs["failed"], "loss", 0, math.nan)
    await tracker.log_metric(runs["deleted"], "loss", 0, 1.0)
    await tracker.log_metric(runs["in-gone"], "loss", 0, 1.0)

    weights = b"weights\x00\x01\x02" * 10
    await tracker.log_artifact(run, "model.bin", weights)
    await tracker.log_artifact(run, "notes.txt", "résumé\n".encode())
    await tracker.log_artifact(runs["running"], "model-copy.bin", weights)  # same content
    await tracker.log_artifact(runs["failed"], "empty", b"")
    await tracker.log_artifact(runs["deleted"], "model.bin", weights)

    await tracker.set_span_id(run, "00f067aa0ba902b7")
    await tracker.set_span_id(runs["running"], "span-ünïcödé")

    await tracker.delete_run(runs["deleted"])
    await tracker.delete_experiment(gone)
    await tracker.flush()
    return [vision, text, empty, gone], list(runs.values())


async def _write(database: Path) -> dict[str, Any]:
    async with Tracker.open(database) as tracker:
        experiment_ids, run_ids = await _fill(tracker)
        return await collect_answers(tracker, experiment_ids, run_ids)


def write_fixture(database: Path, expected: Path) -> int:
    """Fill ``database``, checkpoint it into one file and record its answers in ``expected``;
    refuse (exit code 1) if either exists, for a committed fixture is never regenerated."""
    for path in (database, expected):
        if path.exists():
            print(f"{path} exists; it is a committed fixture and is never regenerated")
            return 1
    answers = asyncio.run(_write(database))
    conn = sqlite3.connect(database)
    try:
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    finally:
        conn.close()
    expected.write_bytes(msgspec.json.format(msgspec.json.encode(answers), indent=1) + b"\n")
    print(f"wrote {database} ({database.stat().st_size:,} bytes) and {expected}")
    return 0


def main() -> int:
    return write_fixture(DATABASE, EXPECTED)


if __name__ == "__main__":
    sys.exit(main())
