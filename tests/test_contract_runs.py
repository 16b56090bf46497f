"""Contract: experiments, runs and the run lifecycle, on every store."""

from __future__ import annotations

import itertools
import time

import pytest

from runjournal import (
    ExperimentNotFound,
    InvalidStateError,
    RunJournalError,
    RunNotFound,
    RunStatus,
    Tracker,
)


async def test_an_experiment_reads_back_as_created(tracker: Tracker) -> None:
    before = time.time()
    exp_id = await tracker.create_experiment(
        "gpt2-finetune",
        {"model": "gpt2", "layers": [12, 24], "lr": 1e-4, "fp16": True},
        description="baseline",
        tags={"team": "nlp"},
    )
    exp = await tracker.get_experiment(exp_id)
    assert exp.id == exp_id
    assert exp.name == "gpt2-finetune"
    assert exp.description == "baseline"
    assert exp.config == {"model": "gpt2", "layers": [12, 24], "lr": 1e-4, "fp16": True}
    assert exp.config is not None and exp.config["fp16"] is True
    assert exp.tags == {"team": "nlp"}
    assert before <= exp.created_at <= exp.updated_at <= time.time()


async def test_experiment_without_config_has_none_and_empty_tags(tracker: Tracker) -> None:
    exp = await tracker.get_experiment(await tracker.create_experiment("bare"))
    assert exp.config is None
    assert exp.description is None
    assert exp.tags == {}


async def test_list_experiments_in_creation_order(tracker: Tracker) -> None:
    ids = [await tracker.create_experiment(f"exp-{i}") for i in range(5)]
    assert [e.id for e in await tracker.list_experiments()] == ids


async def test_ids_are_unique_time_sortable_strings(tracker: Tracker) -> None:
    exp_id = await tracker.create_experiment("e")
    run_ids = [await tracker.create_run(exp_id) for _ in range(50)]
    assert all(isinstance(r, str) and len(r) == 26 for r in run_ids)
    assert len(set(run_ids)) == 50
    # Time-sortable: ids made in later milliseconds sort later.
    assert all(a[:10] <= b[:10] for a, b in itertools.pairwise(run_ids))


@pytest.mark.parametrize(
    ("name", "error"),
    [("", ValueError), (None, TypeError), (3, TypeError), ("a\x00b", ValueError)],
)
async def test_bad_experiment_names_are_refused(
    tracker: Tracker, name: object, error: type[Exception]
) -> None:
    with pytest.raises(error, match="experiment name"):
        await tracker.create_experiment(name)  # type: ignore[arg-type]
    assert await tracker.list_experiments() == []


async def test_bad_experiment_config_and_tags_are_refused(tracker: Tracker) -> None:
    with pytest.raises(TypeError, match="config"):
        await tracker.create_experiment("e", ["not", "a", "mapping"])  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="unsupported parameter type set"):
        await tracker.create_experiment("e", {"x": {1, 2}})
    with pytest.raises(TypeError, match="tags"):
        await tracker.create_experiment("e", tags={"k": 1})  # type: ignore[dict-item]
    assert await tracker.list_experiments() == []


async def test_unknown_experiment_is_not_found_everywhere(tracker: Tracker) -> None:
    with pytest.raises(ExperimentNotFound, match="nope"):
        await tracker.get_experiment("nope")
    with pytest.raises(ExperimentNotFound):
        await tracker.list_runs("nope")
    with pytest.raises(ExperimentNotFound):
        await tracker.create_run("nope")
    with pytest.raises(ExperimentNotFound):
        await tracker.filter_runs("nope", [])


async def test_a_new_run_is_pending(tracker: Tracker) -> None:
    exp_id = await tracker.create_experiment("e")
    before = time.time()
    run_id = await tracker.create_run(exp_id, name="first", tags={"seed": "1"})
    run = await tracker.get_run(run_id)
    assert run.id == run_id
    assert run.experiment_id == exp_id
    assert run.name == "first"
    assert run.status is RunStatus.PENDING
    assert before <= run.created_at <= time.time()
    assert run.start_time is None and run.end_time is None
    assert run.params == {} and run.tags == {"seed": "1"}
    assert await tracker.get_run_status(run_id) is RunStatus.PENDING


async def test_the_lifecycle_records_times(tracker: Tracker) -> None:
    run_id = await tracker.create_run(await tracker.create_experiment("e"))
    await tracker.start_run(run_id)
    running = await tracker.get_run(run_id)
    assert running.status is RunStatus.RUNNING
    assert running.start_time is not None and running.end_time is None
    await tracker.complete_run(run_id, RunStatus.SUCCESS)
    done = await tracker.get_run(run_id)
    assert done.status is RunStatus.SUCCESS
    assert done.end_time is not None and done.start_time is not None
    assert done.created_at <= done.start_time <= done.end_time


@pytest.mark.parametrize("final", [RunStatus.SUCCESS, RunStatus.FAILED, RunStatus.CANCELLED])
async def test_a_running_run_may_end_in_any_terminal_status(
    tracker: Tracker, final: RunStatus
) -> None:
    run_id = await tracker.create_run(await tracker.create_experiment("e"))
    await tracker.start_run(run_id)
    await tracker.complete_run(run_id, final)
    assert await tracker.get_run_status(run_id) is final


async def test_complete_run_accepts_the_status_name(tracker: Tracker) -> None:
    run_id = await tracker.create_run(await tracker.create_experiment("e"))
    await tracker.start_run(run_id)
    await tracker.complete_run(run_id, "FAILED")
    assert await tracker.get_run_status(run_id) is RunStatus.FAILED


async def test_a_pending_run_may_only_be_cancelled(tracker: Tracker) -> None:
    exp_id = await tracker.create_experiment("e")
    run_id = await tracker.create_run(exp_id)
    with pytest.raises(InvalidStateError, match="PENDING"):
        await tracker.complete_run(run_id, RunStatus.SUCCESS)
    with pytest.raises(InvalidStateError):
        await tracker.complete_run(run_id, RunStatus.FAILED)
    await tracker.complete_run(run_id, RunStatus.CANCELLED)
    run = await tracker.get_run(run_id)
    assert run.status is RunStatus.CANCELLED
    assert run.start_time is None and run.end_time is not None


async def test_invalid_transitions_raise_and_change_nothing(tracker: Tracker) -> None:
    run_id = await tracker.create_run(await tracker.create_experiment("e"))
    await tracker.start_run(run_id)
    with pytest.raises(InvalidStateError, match=r"already|only a PENDING"):
        await tracker.start_run(run_id)
    await tracker.complete_run(run_id, RunStatus.SUCCESS)
    with pytest.raises(InvalidStateError):
        await tracker.complete_run(run_id, RunStatus.FAILED)
    with pytest.raises(InvalidStateError):
        await tracker.start_run(run_id)
    assert await tracker.get_run_status(run_id) is RunStatus.SUCCESS


@pytest.mark.parametrize(
    ("status", "error"),
    [
        ("DONE", ValueError),
        ("success", ValueError),
        (RunStatus.RUNNING, ValueError),
        (RunStatus.PENDING, ValueError),
        (7, ValueError),
    ],
)
async def test_bad_final_statuses_are_refused(
    tracker: Tracker, status: object, error: type[Exception]
) -> None:
    run_id = await tracker.create_run(await tracker.create_experiment("e"))
    await tracker.start_run(run_id)
    with pytest.raises(error, match=r"status|SUCCESS"):
        await tracker.complete_run(run_id, status)  # type: ignore[arg-type]
    assert await tracker.get_run_status(run_id) is RunStatus.RUNNING


async def test_list_runs_orders_by_creation_and_keeps_experiments_apart(tracker: Tracker) -> None:
    a = await tracker.create_experiment("a")
    b = await tracker.create_experiment("b")
    runs_a = [await tracker.create_run(a) for _ in range(4)]
    runs_b = [await tracker.create_run(b) for _ in range(2)]
    assert [r.id for r in await tracker.list_runs(a)] == runs_a
    assert [r.id for r in await tracker.list_runs(b)] == runs_b
    assert await tracker.list_runs(await tracker.create_experiment("empty")) == []


async def test_runs_carry_their_params_and_tags(tracker: Tracker) -> None:
    exp_id = await tracker.create_experiment("e")
    run_id = await tracker.create_run(exp_id)
    await tracker.log_params(run_id, {"lr": 0.1, "layers": [1, 2]})
    await tracker.set_tag(run_id, "owner", "ana")
    await tracker.set_tag(run_id, "owner", "bo")
    [run] = await tracker.list_runs(exp_id)
    assert run.params == {"lr": 0.1, "layers": [1, 2]}
    assert run.tags == {"owner": "bo"}


async def test_bad_tags_are_refused(tracker: Tracker) -> None:
    run_id = await tracker.create_run(await tracker.create_experiment("e"))
    with pytest.raises(TypeError, match="tag value"):
        await tracker.set_tag(run_id, "k", 1)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="tag key"):
        await tracker.set_tag(run_id, "", "v")
    with pytest.raises(TypeError, match="run name"):
        await tracker.create_run(await tracker.create_experiment("e"), name=5)  # type: ignore[arg-type]
    assert (await tracker.get_run(run_id)).tags == {}


async def test_unknown_run_is_not_found_by_every_method(tracker: Tracker) -> None:
    ghost = "01ZZZZZZZZZZZZZZZZZZZZZZZZ"
    calls = [
        tracker.get_run(ghost),
        tracker.get_run_status(ghost),
        tracker.start_run(ghost),
        tracker.complete_run(ghost, RunStatus.SUCCESS),
        tracker.set_tag(ghost, "k", "v"),
        tracker.log_param(ghost, "k", 1),
        tracker.log_params(ghost, {"k": 1}),
        tracker.get_params(ghost),
        tracker.log_metric(ghost, "loss", 0, 1.0),
        tracker.log_metrics(ghost, {"loss": 1.0}, 0),
        tracker.get_metrics(ghost, "loss"),
        tracker.list_metric_keys(ghost),
        tracker.log_artifact(ghost, "a", b"x"),
        tracker.list_artifacts(ghost),
        tracker.set_span_id(ghost, "s"),
        tracker.get_span_id(ghost),
        tracker.delete_run(ghost),
    ]
    for call in calls:
        with pytest.raises(RunNotFound, match=ghost):
            await call
    with pytest.raises(RunNotFound):
        tracker.log_metric_nowait(ghost, "loss", 0, 1.0)
    with pytest.raises(RunNotFound):
        tracker.log_param_nowait(ghost, "k", 1)
    await tracker.flush()


async def test_ids_of_the_wrong_type_are_refused(tracker: Tracker) -> None:
    with pytest.raises(TypeError, match="run id"):
        await tracker.get_run(123)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="experiment id"):
        await tracker.get_experiment(None)  # type: ignore[arg-type]


async def test_logging_is_allowed_in_every_status(tracker: Tracker) -> None:
    """Late points from a data-loader worker must not be lost: only transitions are checked."""
    run_id = await tracker.create_run(await tracker.create_experiment("e"))
    await tracker.log_metric(run_id, "loss", 0, 3.0)  # PENDING
    await tracker.start_run(run_id)
    await tracker.log_metric(run_id, "loss", 1, 2.0)  # RUNNING
    await tracker.complete_run(run_id, RunStatus.SUCCESS)
    await tracker.log_metric(run_id, "loss", 2, 1.0)  # SUCCESS
    await tracker.log_param(run_id, "late", True)
    await tracker.set_tag(run_id, "late", "yes")
    await tracker.set_span_id(run_id, "span")
    await tracker.log_artifact(run_id, "late.bin", b"late")
    assert [p.value for p in await tracker.get_metrics(run_id, "loss")] == [3.0, 2.0, 1.0]
    assert (await tracker.get_params(run_id)) == {"late": True}
    assert len(await tracker.list_artifacts(run_id)) == 1


async def test_span_ids_set_overwrite_and_default_to_none(tracker: Tracker) -> None:
    run_id = await tracker.create_run(await tracker.create_experiment("e"))
    assert await tracker.get_span_id(run_id) is None
    await tracker.set_span_id(run_id, "trace-abc-123")
    assert await tracker.get_span_id(run_id) == "trace-abc-123"
    await tracker.set_span_id(run_id, "trace-def-456")
    assert await tracker.get_span_id(run_id) == "trace-def-456"
    with pytest.raises(TypeError):
        await tracker.set_span_id(run_id, 5)  # type: ignore[arg-type]


async def test_deleted_runs_and_experiments_are_gone(tracker: Tracker) -> None:
    exp_id = await tracker.create_experiment("e")
    keep = await tracker.create_run(exp_id)
    drop = await tracker.create_run(exp_id)
    await tracker.log_metric(drop, "loss", 0, 1.0)
    await tracker.delete_run(drop)
    with pytest.raises(RunNotFound):
        await tracker.get_run(drop)
    with pytest.raises(RunNotFound):
        await tracker.log_metric(drop, "loss", 1, 1.0)
    assert [r.id for r in await tracker.list_runs(exp_id)] == [keep]
    await tracker.delete_experiment(exp_id)
    with pytest.raises(ExperimentNotFound):
        await tracker.get_experiment(exp_id)
    with pytest.raises(RunNotFound):
        await tracker.get_run(keep)
    assert await tracker.list_experiments() == []


async def test_read_your_writes_without_flush(tracker: Tracker) -> None:
    run_id = await tracker.create_run(await tracker.create_experiment("e"))
    for step in range(1000):
        await tracker.log_metric(run_id, "loss", step, float(step))
    tracker.log_metric_nowait(run_id, "loss", 1000, 1000.0)
    points = await tracker.get_metrics(run_id, "loss")
    assert [p.step for p in points] == list(range(1001))


async def test_nothing_can_be_logged_after_close(store_kind: str, tmp_path: object) -> None:
    from tests.conftest import make_store

    tracker = Tracker(make_store(store_kind, tmp_path))  # type: ignore[arg-type]
    async with tracker:
        run_id = await tracker.create_run(await tracker.create_experiment("e"))
    with pytest.raises(RunJournalError, match="closed"):
        await tracker.log_metric(run_id, "loss", 0, 1.0)
    with pytest.raises(RunJournalError, match="closed"):
        tracker.log_metric_nowait(run_id, "loss", 0, 1.0)
    await tracker.close()  # closing twice is harmless


async def test_rebuild_reproduces_the_live_projections(tracker: Tracker) -> None:
    from tests.snapshot import snapshot

    exp_id = await tracker.create_experiment("e", {"a": 1})
    runs = [await tracker.create_run(exp_id, name=f"r{i}") for i in range(3)]
    await tracker.start_run(runs[0])
    await tracker.complete_run(runs[0], RunStatus.FAILED)
    await tracker.complete_run(runs[1], RunStatus.CANCELLED)
    for i, run_id in enumerate(runs):
        await tracker.log_params(run_id, {"i": i, "nan": float("nan"), "deep": {"x": [i, None]}})
        await tracker.log_metrics(run_id, {"loss": 1.0 / (i + 1), "acc": float(i)}, 0)
        await tracker.log_metric(run_id, "loss", 0, float("inf"))
        await tracker.log_artifact(run_id, "blob", bytes([i]) * 10)
        await tracker.set_tag(run_id, "i", str(i))
    await tracker.set_span_id(runs[2], "span")
    await tracker.delete_run(runs[1])
    await tracker.flush()  # the store itself is read below: everything must be committed
    before = await snapshot(tracker.store)
    await tracker.store.rebuild()
    assert await snapshot(tracker.store) == before
    assert before["experiments"]  # the snapshot saw the data
