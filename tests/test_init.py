"""``rj.init / rj.log / rj.log_artifact / rj.finish`` in this process."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

import runjournal as rj
from runjournal import RunStatus, SyncTracker
from runjournal._active import active_run


@pytest.fixture(autouse=True)
def no_active_run() -> Iterator[None]:
    yield
    rj.finish()


def read(db: Path, run_id: str) -> tuple[RunStatus, dict[str, object], list[tuple[int, float]]]:
    with SyncTracker.open(db, read_only=True) as tracker:
        status = tracker.get_run_status(run_id)
        params = tracker.get_params(run_id)
        points = [(p.step, p.value) for p in tracker.get_metrics(run_id, "loss")]
    return status, params, points


def test_init_log_finish(tmp_path: Path) -> None:
    db = tmp_path / "init.db"
    run = rj.init(experiment="gpt2-finetune", config={"lr": 1e-4}, db=db, name="first")
    assert active_run() is run
    for step in range(3):
        rj.log({"loss": np.float32(1.0 / (step + 1))})
    digest = rj.log_artifact("notes.txt", b"hello")
    rj.finish()
    assert active_run() is None
    status, params, points = read(db, run.id)
    assert status is RunStatus.SUCCESS
    assert params == {"lr": 1e-4}  # config becomes the run's params
    assert points == [(0, 1.0), (1, 0.5), (2, pytest.approx(1 / 3))]
    with SyncTracker.open(db, read_only=True) as tracker:
        assert tracker.get_artifact_data(digest) == b"hello"  # type: ignore[arg-type]
        assert tracker.get_run(run.id).name == "first"
    rj.finish()  # no active run: nothing


def test_init_again_finishes_the_previous_run_first(tmp_path: Path) -> None:
    first = rj.init(experiment="e", db=tmp_path / "a.db")
    rj.log({"loss": 1.0})
    second = rj.init(experiment="e", db=tmp_path / "b.db")
    assert active_run() is second
    assert read(tmp_path / "a.db", first.id)[0] is RunStatus.SUCCESS
    rj.finish("CANCELLED")
    assert read(tmp_path / "b.db", second.id)[0] is RunStatus.CANCELLED


def test_with_init_as_run(tmp_path: Path) -> None:
    db = tmp_path / "with.db"
    runs: list[str] = []

    def train() -> None:
        with rj.init(experiment="e", db=db) as run:
            runs.append(run.id)
            run.log({"loss": 1.0})
            raise RuntimeError("boom")

    with pytest.raises(RuntimeError, match="boom"):
        train()
    assert active_run() is None
    assert read(db, runs[0])[0] is RunStatus.FAILED


def test_db_defaults_to_the_environment_then_the_working_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("RUNJOURNAL_DB", str(tmp_path / "env.db"))
    run = rj.init(experiment="e")
    rj.finish()
    assert read(tmp_path / "env.db", run.id)[0] is RunStatus.SUCCESS
    monkeypatch.delenv("RUNJOURNAL_DB")
    run = rj.init(experiment="e")
    rj.finish()
    assert read(tmp_path / "experiments.db", run.id)[0] is RunStatus.SUCCESS


def test_logging_without_a_run_says_what_to_do() -> None:
    with pytest.raises(RuntimeError, match=r"rj\.init"):
        rj.log({"loss": 1.0})
    with pytest.raises(RuntimeError, match=r"rj\.init"):
        rj.log_artifact("x", b"")


def test_a_failed_init_leaves_no_active_run(tmp_path: Path) -> None:
    with pytest.raises(TypeError):
        rj.init(experiment="e", config={"bad": object()}, db=tmp_path / "bad.db")
    assert active_run() is None


def test_importing_runjournal_stays_light() -> None:
    import subprocess
    import sys

    code = "import sys, runjournal; print(sorted({'torch','numpy','psutil'} & set(sys.modules)))"
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    assert result.stdout.strip() == "[]"
