"""``runjournal import-mlflow``: real MLflow stores, filled by the real MLflow client, imported by
the real command in a child process, and every value compared through both APIs."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from runjournal import RunStatus, Tracker
from runjournal.cli.import_mlflow import MLFLOW_RUN_ID_TAG
from runjournal.mlflow.mapping import param_to_mlflow, seconds_to_ms, status_from_mlflow

mlflow_tracking = pytest.importorskip("mlflow.tracking", reason="needs the MLflow client")
mlflow_entities = pytest.importorskip("mlflow.entities")

# MLflow's SQLAlchemy store uses a loader strategy that SQLAlchemy 2.1 deprecates: its code, not ours.
pytestmark = pytest.mark.filterwarnings("ignore:The ``noload`` loader strategy is deprecated")

ENV = {
    **os.environ,
    "MLFLOW_ALLOW_FILE_STORE": "true",  # MLflow 3 keeps the ./mlruns store behind this switch
    "MLFLOW_DISABLE_TELEMETRY": "true",
    "COLUMNS": "200",
}


@pytest.fixture(autouse=True)
def _mlflow_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MLFLOW_ALLOW_FILE_STORE", "true")
    monkeypatch.setenv("MLFLOW_DISABLE_TELEMETRY", "true")


def _fill(uri: str, folder: Path) -> Any:
    """Two experiments: finished, failed, killed, running, deleted and scheduled runs."""
    client = mlflow_tracking.MlflowClient(tracking_uri=uri)
    # An SQLite store puts artifacts under ./mlruns of the working directory unless told.
    where = (folder / "artifacts").as_uri()
    sweep = client.create_experiment("sweep", artifact_location=f"{where}/sweep")
    other = client.create_experiment("other", artifact_location=f"{where}/other")
    base = 1_796_053_791_896
    artifact = folder / "model.txt"
    artifact.write_bytes(b"weights \x00\xff")
    nested = folder / "plots"
    nested.mkdir()
    (nested / "loss.csv").write_text("step,loss\n0,1.0\n")
    for i, (lr, end) in enumerate(
        [("0.001", "FINISHED"), ("1e-3", "FAILED"), ("0.1", "KILLED"), ("32", None)]
    ):
        run = client.create_run(
            sweep, start_time=base + i, run_name=f"run-{i}", tags={"team": "nlp"}
        )
        run_id = run.info.run_id
        client.log_param(run_id, "lr", lr)
        client.log_param(run_id, "optimizer", "adamw")
        client.log_param(run_id, "flag", "True")
        for step in range(30):
            client.log_metric(run_id, "loss", 1.0 / (step + 1), timestamp=base + step, step=step)
        client.log_metric(run_id, "loss", float("nan"), timestamp=base + 500, step=30)
        client.log_metric(run_id, "acc", 0.5 + i / 10, timestamp=base + 7, step=3)
        client.set_tag(run_id, "note", f"line one\nline {i}")
        if i == 0:
            client.log_artifact(run_id, str(artifact))
            client.log_artifacts(run_id, str(nested), "plots")
        if end is not None:
            client.set_terminated(run_id, end, end_time=base + 10_000 + i)
    gone = client.create_run(other, start_time=base + 50, run_name="deleted-one")
    client.log_param(gone.info.run_id, "x", "1")
    client.set_terminated(gone.info.run_id, "FINISHED", end_time=base + 60)
    client.delete_run(gone.info.run_id)
    return client


def _import(db: Path, source: str, *extra: str) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(
        [sys.executable, "-m", "runjournal.cli", "--db", str(db), "import-mlflow", source, *extra],
        check=False,
        capture_output=True,
        text=True,
        env=ENV,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr
    return done


async def _compare(db: Path, client: Any, *, artifacts: bool) -> int:
    """Every MLflow run has its twin in ``db`` with the same values; the number compared."""
    view_all = mlflow_entities.ViewType.ALL
    compared = 0
    async with Tracker.open(db, read_only=True) as tracker:
        ours = {
            run.tags[MLFLOW_RUN_ID_TAG]: run
            for run in await tracker.filter_runs(None, [], view="ALL")
        }
        for experiment in client.search_experiments():
            if experiment.name == "Default":
                continue
            twin_experiment = await tracker.find_experiment(experiment.name)
            assert twin_experiment is not None
            for theirs in client.search_runs([experiment.experiment_id], run_view_type=view_all):
                info, data = theirs.info, theirs.data
                run = ours[info.run_id]
                assert run.experiment_id == twin_experiment.id
                assert run.name == info.run_name
                assert run.status is status_from_mlflow(info.status)
                assert run.hidden is (info.lifecycle_stage == "deleted")
                assert run.created_at is not None and run.start_time is not None
                assert seconds_to_ms(run.start_time) == info.start_time
                if info.end_time is None or run.status is RunStatus.RUNNING:
                    assert run.end_time is None
                else:
                    assert run.end_time is not None
                    assert seconds_to_ms(run.end_time) == info.end_time
                assert {k: param_to_mlflow(v) for k, v in run.params.items()} == data.params
                assert {k: v for k, v in run.tags.items() if k != MLFLOW_RUN_ID_TAG} == data.tags
                for key in data.metrics:
                    history = client.get_metric_history(info.run_id, key)
                    points = await tracker.get_metrics(run.id, key)
                    assert len(points) == len(history)
                    want = sorted((m.step, m.timestamp, repr(m.value)) for m in history)
                    got = sorted(
                        (p.step, seconds_to_ms(p.timestamp), repr(p.value)) for p in points
                    )
                    assert got == want
                assert await tracker.list_metric_keys(run.id) == sorted(data.metrics)
                refs = await tracker.list_artifacts(run.id)
                if artifacts:
                    names = {ref.name: ref for ref in refs}
                    expected = _artifact_paths(client, info.run_id)
                    assert sorted(names) == expected
                    for name, ref in names.items():
                        sent = _downloaded(client, info.run_id, name, db.parent)
                        assert await tracker.get_artifact_data(ref.sha256) == sent
                else:
                    assert refs == []
                compared += 1
    return compared


def _downloaded(client: Any, run_id: str, name: str, folder: Path) -> bytes:
    return Path(client.download_artifacts(run_id, name, str(folder))).read_bytes()


def _artifact_paths(client: Any, run_id: str, folder: str | None = None) -> list[str]:
    paths: list[str] = []
    for entry in client.list_artifacts(run_id, folder):
        paths += _artifact_paths(client, run_id, entry.path) if entry.is_dir else [entry.path]
    return sorted(paths)


@pytest.mark.parametrize("kind", ["file", "sqlite"])
def test_an_mlflow_store_imports_with_every_value(tmp_path: Path, kind: str) -> None:
    uri = str(tmp_path / "mlruns") if kind == "file" else f"sqlite:///{tmp_path / 'mlflow.db'}"
    client_uri = (tmp_path / "mlruns").as_uri() if kind == "file" else uri
    client = _fill(client_uri, tmp_path)
    db = tmp_path / "experiments.db"
    done = _import(db, uri, "--artifacts")
    assert "imported 5 run(s) from 2 experiment(s)" in done.stderr
    assert "2 artifact(s)" in done.stderr and "0 run(s) already imported" in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1, done.stderr  # the one-line summary
    assert asyncio.run(_compare(db, client, artifacts=True)) == 5

    again = _import(db, uri, "--artifacts")
    assert "imported 0 run(s)" in again.stderr and "5 run(s) already imported" in again.stderr
    sweep = client.get_experiment_by_name("sweep").experiment_id
    late = client.create_run(sweep, start_time=1_796_053_999_000, run_name="late")
    client.log_param(late.info.run_id, "lr", "0.5")
    client.set_terminated(late.info.run_id, "FINISHED", end_time=1_796_054_000_000)
    third = _import(db, uri)
    assert "imported 1 run(s)" in third.stderr and "5 run(s) already imported" in third.stderr
    assert asyncio.run(_compare(db, client, artifacts=True)) == 6


def test_without_artifacts_none_come_and_a_bad_source_is_one_line(tmp_path: Path) -> None:
    client = _fill((tmp_path / "mlruns").as_uri(), tmp_path)
    db = tmp_path / "experiments.db"
    _import(db, str(tmp_path / "mlruns"))
    assert asyncio.run(_compare(db, client, artifacts=False)) == 5
    missing = subprocess.run(
        [sys.executable, "-m", "runjournal.cli", "--db", str(db), "import-mlflow", "nowhere"],
        check=False,
        capture_output=True,
        text=True,
        env=ENV,
        timeout=60,
    )
    assert missing.returncode == 1
    assert missing.stderr.startswith("runjournal: error: no MLflow store at 'nowhere'")
    assert len(missing.stderr.strip().splitlines()) == 1
