"""The synchronous face: the same methods as the async one, on the same core."""

from __future__ import annotations

import asyncio
import inspect
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from runjournal import RunHandle, RunStatus, SyncRun, SyncTracker, Tracker
from runjournal.errors import InvalidStateError

ROOT = Path(__file__).parent.parent
EXAMPLE = ROOT / "examples" / "sync_loop.py"

# The object underneath (a sync face gives its sync tracker, or the async one).
SYNC_ONLY = {"tracker"}


@pytest.fixture
def tracker(tmp_path: Path) -> Iterator[SyncTracker]:
    with SyncTracker.open(tmp_path / "sync.db") as opened:
        yield opened


def public(cls: type) -> dict[str, Any]:
    names = {n for klass in cls.__mro__ if klass is not object for n in vars(klass)}
    return {n: getattr(cls, n) for n in names if not n.startswith("_")}


def parameters(member: Any) -> list[tuple[str, Any, Any, str]]:
    """A method's parameters as comparable tuples (annotations as their source text)."""
    if isinstance(member, property):
        return []
    function: Callable[..., Any] = getattr(member, "__func__", member)
    return [
        (p.name, p.kind, p.default, str(p.annotation))
        for p in inspect.signature(function).parameters.values()
    ]


@pytest.mark.parametrize(
    ("async_face", "sync_face"), [(Tracker, SyncTracker), (RunHandle, SyncRun)]
)
def test_the_two_faces_have_the_same_methods_and_signatures(
    async_face: type, sync_face: type
) -> None:
    async_members = public(async_face)
    sync_members = public(sync_face)
    assert set(async_members) - SYNC_ONLY == set(sync_members) - SYNC_ONLY
    for name, member in async_members.items():
        if name == "tracker":
            continue
        assert parameters(sync_members[name]) == parameters(member), name
        if callable(member) and not isinstance(member, type):
            assert not inspect.iscoroutinefunction(sync_members[name]), name


def test_the_generated_methods_are_up_to_date() -> None:
    result = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "gen_sync.py"), "--check"],
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr


def test_logging_calls_are_bound_straight_to_the_nowait_core(tracker: SyncTracker) -> None:
    core = tracker.tracker
    assert tracker.log_metric == core.log_metric_nowait
    assert tracker.log_metrics == core.log_metrics_nowait
    assert tracker.log_params == core.log_params_nowait
    assert tracker.set_tag == core.set_tag_nowait
    with tracker.run("bound") as run:
        assert run.log == run._handle.log_nowait
        assert run.log_metric == run._handle.log_metric_nowait


def test_the_reference_api_without_await(tracker: SyncTracker) -> None:
    experiment_id = tracker.create_experiment("ref", {"model": "gpt2"})
    run_id = tracker.create_run(experiment_id, name="r1")
    tracker.start_run(run_id)
    tracker.log_param(run_id, "lr", 1e-4)
    for step in range(5):
        tracker.log_metric(run_id, "loss", step, 1.0 / (step + 1))
    tracker.log_metrics(run_id, {"a": 1.0, "b": 2.0}, 0)
    digest = tracker.log_artifact(run_id, "w.bin", b"abc")
    tracker.set_span_id(run_id, "trace")
    tracker.complete_run(run_id, RunStatus.SUCCESS)
    assert tracker.get_run_status(run_id) is RunStatus.SUCCESS
    assert [p.step for p in tracker.get_metrics(run_id, "loss")] == [0, 1, 2, 3, 4]
    assert tracker.list_metric_keys(run_id) == ["a", "b", "loss"]
    assert tracker.get_params(run_id) == {"lr": 1e-4}
    assert tracker.get_artifact_data(digest) == b"abc"
    assert tracker.get_span_id(run_id) == "trace"
    assert [r.id for r in tracker.list_runs(experiment_id)] == [run_id]
    with pytest.raises(InvalidStateError):
        tracker.start_run(run_id)
    tracker.flush()
    assert tracker.stats().committed > 0


def test_sync_run_endings(tracker: SyncTracker) -> None:
    with tracker.run("endings") as ok:
        ok.log({"loss": 1.0})
    failed = tracker.run("endings")
    interrupted = tracker.run("endings")

    def fail() -> None:
        with failed:
            failed.log({"loss": 1.0})
            _ = 1 / 0

    def interrupt() -> None:
        with interrupted:
            raise KeyboardInterrupt

    with pytest.raises(ZeroDivisionError):
        fail()
    with pytest.raises(KeyboardInterrupt):
        interrupt()
    with tracker.run("endings") as finished:
        finished.finish("FAILED")
    assert tracker.get_run_status(ok.id) is RunStatus.SUCCESS
    failed_run = tracker.get_run(failed.id)
    assert failed_run.status is RunStatus.FAILED
    assert failed_run.tags["error.type"] == "ZeroDivisionError"
    assert failed_run.tags["error.message"] == "division by zero"
    assert tracker.get_run_status(interrupted.id) is RunStatus.CANCELLED
    assert tracker.get_run_status(finished.id) is RunStatus.FAILED
    assert ok.experiment_id == failed.experiment_id
    assert [p.step for p in tracker.get_metrics(ok.id, "loss")] == [0]


def test_safe_from_several_threads(tracker: SyncTracker) -> None:
    with tracker.run("threads") as run:
        errors: list[BaseException] = []

        def work(index: int) -> None:
            try:
                for step in range(200):
                    run.log_metric(f"t{index}", float(step), step=step)
                    if step % 50 == 0:
                        tracker.get_metrics(run.id, f"t{index}")
            except BaseException as exc:  # noqa: BLE001 - reported below
                errors.append(exc)

        threads = [threading.Thread(target=work, args=(i,)) for i in range(6)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    assert errors == []
    for index in range(6):
        assert [p.step for p in tracker.get_metrics(run.id, f"t{index}")] == list(range(200))


async def test_a_blocking_call_inside_an_event_loop_points_to_tracker(tmp_path: Path) -> None:
    with pytest.raises(RuntimeError, match=r"runjournal\.Tracker"):
        SyncTracker.open(tmp_path / "loop.db")


def test_a_blocking_call_from_a_running_loop_raises_but_logging_works(
    tracker: SyncTracker,
) -> None:
    with tracker.run("loop") as run:

        async def inside() -> None:
            run.log({"loss": 1.0})  # logging never blocks: allowed
            with pytest.raises(RuntimeError, match=r"get_metrics\(\) blocks.*Tracker"):
                tracker.get_metrics(run.id, "loss")

        asyncio.run(inside())
    assert [p.value for p in tracker.get_metrics(run.id, "loss")] == [1.0]


def test_in_memory(tmp_path: Path) -> None:
    tracker = SyncTracker.open_in_memory()
    try:
        with tracker.run("mem", capture=False) as run:
            run.log({"x": 1.0})
        assert tracker.get_run(run.id).tags == {}
    finally:
        tracker.close()


def test_the_sync_loop_example_runs(tmp_path: Path) -> None:
    db = tmp_path / "experiments.db"
    result = subprocess.run(
        [sys.executable, str(EXAMPLE), "--db", str(db), "--steps", "50"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    assert " SUCCESS" in result.stdout
    assert "loss        50 points, last step 49" in result.stdout
    assert "params      {'lr': 0.001, 'epochs': 50}" in result.stdout
    assert "artifacts   ['notes.txt']" in result.stdout


def forked_child_uses_the_sync_face(db: str) -> None:
    with SyncTracker.open(db) as tracker, tracker.run("forked") as run:
        run.log({"loss": 1.0})


@pytest.mark.skipif(sys.platform == "win32", reason="fork")
def test_a_forked_child_neither_hangs_on_the_parents_portal_nor_needs_it(
    tracker: SyncTracker, tmp_path: Path
) -> None:
    """The parent's portal thread does not exist in a forked child: the child starts its own."""
    import multiprocessing

    with tracker.run("parent") as run:
        run.log({"loss": 1.0})
    tracker.get_metrics(run.id, "loss")  # the portal runs in this process
    db = str(tmp_path / "child.db")
    child = multiprocessing.get_context("fork").Process(
        target=forked_child_uses_the_sync_face, args=(db,)
    )
    child.start()
    child.join(60)
    if child.is_alive():
        child.kill()
        pytest.fail("the forked child hung")
    assert child.exitcode == 0
    with SyncTracker.open(db, read_only=True) as reader:
        (experiment,) = reader.list_experiments()
        (child_run,) = reader.list_runs(experiment.id)
        assert child_run.status is RunStatus.SUCCESS


def forked_child_logs(run: SyncRun) -> None:
    run.log({"child": 1.0})


@pytest.mark.skipif(sys.platform == "win32", reason="fork")
def test_a_forked_worker_leaving_does_not_end_its_parents_run(tracker: SyncTracker) -> None:
    """A DataLoader worker forked inside the block exits; the run goes on in the parent."""
    import multiprocessing

    with tracker.run("parent") as run:
        child = multiprocessing.get_context("fork").Process(target=forked_child_logs, args=(run,))
        child.start()
        child.join(60)
        assert child.exitcode == 0
        assert tracker.get_run_status(run.id) is RunStatus.RUNNING
        run.log({"parent": 1.0})
    assert tracker.get_run_status(run.id) is RunStatus.SUCCESS
    assert [p.value for p in tracker.get_metrics(run.id, "child")] == [1.0]
