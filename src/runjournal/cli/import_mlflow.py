"""``runjournal import-mlflow SOURCE [--artifacts]``: bring an MLflow store's runs into runjournal.

SOURCE is any MLflow tracking URI (a ``./mlruns`` folder, ``sqlite:///mlflow.db``,
``http://host:port``), read through the MLflow client (the ``mlflow`` extra). Each
experiment goes to the runjournal experiment of the same name (created if missing);
each run comes with its name, status, times, params (typed as
:mod:`runjournal.mlflow.mapping` says), tags, whole metric histories and, with
``--artifacts``, its artifacts, named by their path in the run. A run MLflow deleted
comes hidden. Every imported run remembers its MLflow run id in the tag
:data:`MLFLOW_RUN_ID_TAG`, set once the run is complete, so importing again adds only
the runs not yet imported.
"""

from __future__ import annotations

import argparse
import importlib
import os
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any, TypeVar

import anyio.to_thread

from runjournal.cli.output import Output
from runjournal.mlflow.mapping import ms_to_seconds, param_from_mlflow, status_from_mlflow
from runjournal.model import RunStatus
from runjournal.tracker import Tracker

__all__ = ["MLFLOW_RUN_ID_TAG", "ImportSummary", "import_mlflow", "tracking_uri"]

MLFLOW_RUN_ID_TAG = "rj.mlflow.run_id"
"""The tag that holds the MLflow run id of an imported run."""

T = TypeVar("T")


@dataclass
class ImportSummary:
    """What one import brought over."""

    experiments: int = 0
    runs: int = 0
    skipped: int = 0
    params: int = 0
    points: int = 0
    artifacts: int = 0

    def line(self, source: str) -> str:
        """The one-line summary the command ends with."""
        return (
            f"imported {self.runs} run(s) from {self.experiments} experiment(s) of {source}: "
            f"{self.params} param(s), {self.points} metric point(s), {self.artifacts} "
            f"artifact(s); {self.skipped} run(s) already imported"
        )


def tracking_uri(source: str) -> str:
    """``source`` as an MLflow tracking URI: a local folder becomes a ``file://`` URI."""
    if "://" in source or source.startswith(("sqlite:", "file:")):
        return source
    path = Path(source)
    if not path.is_dir():
        raise FileNotFoundError(
            f"no MLflow store at {source!r}: give a ./mlruns folder, sqlite:///mlflow.db or "
            "http://host:port"
        )
    return path.resolve().as_uri()


async def _off_loop(work: Callable[[], T]) -> T:
    return await anyio.to_thread.run_sync(work)


async def import_mlflow(args: argparse.Namespace, out: Output) -> int:
    """``runjournal import-mlflow SOURCE [--db PATH] [--artifacts]``."""
    # MLflow's own download bars would crowd stderr, where our progress and summary go.
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    try:
        entities = importlib.import_module("mlflow.entities")
        tracking = importlib.import_module("mlflow.tracking")
    except ImportError:
        raise RuntimeError(
            "import-mlflow reads through the MLflow client: pip install 'runjournal[mlflow]'"
        ) from None
    view_all = entities.ViewType.ALL
    uri = tracking_uri(args.source)
    client = tracking.MlflowClient(tracking_uri=uri)
    summary = ImportSummary()
    async with Tracker.open(args.db) as tracker:
        imported = {
            run.tags[MLFLOW_RUN_ID_TAG]
            for run in await tracker.filter_runs(None, [], view="ALL")
            if MLFLOW_RUN_ID_TAG in run.tags
        }
        experiments = await _off_loop(
            lambda: client.search_experiments(view_type=entities.ViewType.ACTIVE_ONLY)
        )
        work: list[tuple[Any, list[Any]]] = []
        for experiment in experiments:
            runs = await _off_loop(partial(_all_runs, client, experiment, view_all))
            work.append((experiment, runs))
        total = sum(len(runs) for _, runs in work)
        with out.progress("importing runs", total) as advance:
            for experiment, runs in work:
                experiment_id: str | None = None
                for mlflow_run in runs:
                    advance()
                    if mlflow_run.info.run_id in imported:
                        summary.skipped += 1
                        continue
                    if experiment_id is None:
                        experiment_id = await tracker.ensure_experiment(experiment.name)
                        summary.experiments += 1
                    await _import_run(tracker, client, experiment_id, mlflow_run, args, summary)
                    summary.runs += 1
        await tracker.flush()
    out.note(summary.line(args.source))
    return 0


def _all_runs(client: Any, experiment: Any, view: Any) -> list[Any]:
    """Every run of an MLflow experiment (deleted ones too), page by page, oldest first."""
    runs: list[Any] = []
    token = None
    while True:
        page = client.search_runs(
            [experiment.experiment_id],
            run_view_type=view,
            max_results=1000,
            order_by=["attributes.start_time ASC"],
            page_token=token,
        )
        runs.extend(page)
        token = page.token
        if not token:
            return runs


async def _import_run(
    tracker: Tracker,
    client: Any,
    experiment_id: str,
    mlflow_run: Any,
    args: argparse.Namespace,
    summary: ImportSummary,
) -> None:
    info, data = mlflow_run.info, mlflow_run.data
    status = status_from_mlflow(info.status)
    start = None if info.start_time is None else ms_to_seconds(int(info.start_time))
    tags = {k: v for k, v in data.tags.items() if k != MLFLOW_RUN_ID_TAG}
    name = info.run_name or tags.get("mlflow.runName") or None
    run_id = await tracker.create_run(experiment_id, name=name, tags=tags, at=start)
    if status is not RunStatus.PENDING:
        await tracker.start_run(run_id, at=start)
    if data.params:
        await tracker.log_params(
            run_id, {key: param_from_mlflow(value) for key, value in data.params.items()}
        )
        summary.params += len(data.params)
    for key in sorted(data.metrics):
        history = await _off_loop(partial(client.get_metric_history, info.run_id, key))
        for metric in history:
            await tracker.log_metric(
                run_id,
                key,
                int(metric.step),
                float(metric.value),
                timestamp=ms_to_seconds(int(metric.timestamp)),
            )
        summary.points += len(history)
    if args.artifacts:
        summary.artifacts += await _import_artifacts(tracker, client, info.run_id, run_id)
    if status.is_terminal:
        end = None if info.end_time is None else ms_to_seconds(int(info.end_time))
        await tracker.complete_run(run_id, status, at=end)
    if info.lifecycle_stage == "deleted":
        await tracker.hide_run(run_id)
    # Last: a run whose import was cut short is imported again in full next time.
    await tracker.set_tag(run_id, MLFLOW_RUN_ID_TAG, info.run_id)


async def _import_artifacts(tracker: Tracker, client: Any, mlflow_id: str, run_id: str) -> int:
    count = 0
    pending = [""]
    with tempfile.TemporaryDirectory(prefix="rj-mlflow-") as scratch:
        while pending:
            folder = pending.pop()
            listed = await _off_loop(partial(client.list_artifacts, mlflow_id, folder or None))
            for entry in listed:
                if entry.is_dir:
                    pending.append(entry.path)
                    continue
                local = await _off_loop(
                    partial(client.download_artifacts, mlflow_id, entry.path, scratch)
                )
                await tracker.log_artifact(run_id, entry.path, local)
                os.remove(local)
                count += 1
    return count
