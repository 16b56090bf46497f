"""The async run handle: ``async with tracker.run(...) as run`` over every store."""

from __future__ import annotations

import fractions
import threading
from decimal import Decimal
from pathlib import Path

import anyio
import numpy as np
import pytest
import torch

from runjournal import RunHandle, RunStatus, Tracker
from runjournal import run as run_module
from runjournal.run import ERROR_MESSAGE_LIMIT, as_metric_value, as_step, ending_status


async def steps_of(tracker: Tracker, run_id: str, key: str) -> list[tuple[int, float]]:
    return [(p.step, p.value) for p in await tracker.get_metrics(run_id, key)]


async def test_the_run_is_created_and_started_on_entering_not_at_the_call(
    tracker: Tracker,
) -> None:
    handle = tracker.run("gpt2-finetune", name="lr-1e-4", params={"lr": 1e-4})
    assert await tracker.list_experiments() == []
    with pytest.raises(RuntimeError, match="on entering the block"):
        _ = handle.id
    async with handle as run:
        assert run is handle
        got = await tracker.get_run(run.id)
        assert got.status is RunStatus.RUNNING
        assert got.name == "lr-1e-4"
        assert got.experiment_id == run.experiment_id
        assert (await tracker.get_experiment(run.experiment_id)).name == "gpt2-finetune"
        assert await tracker.get_params(run.id) == {"lr": 1e-4}
    assert await tracker.get_run_status(run.id) is RunStatus.SUCCESS


async def test_runs_of_one_name_share_the_oldest_experiment(tracker: Tracker) -> None:
    async with tracker.run("sweep") as first:
        pass
    async with tracker.run("sweep") as second:
        pass
    assert first.experiment_id == second.experiment_id
    assert [e.name for e in await tracker.list_experiments()] == ["sweep"]
    assert len(await tracker.list_runs(first.experiment_id)) == 2


async def test_auto_steps_one_counter_for_log_and_log_metric(tracker: Tracker) -> None:
    async with tracker.run("steps") as run:
        await run.log({"loss": 1.0, "acc": 0.5})  # step 0
        await run.log({"loss": 0.9})  # 1
        await run.log_metric("loss", 0.8)  # 2
        run.log_nowait({"loss": 0.7})  # 3
        await run.log({"loss": 0.1}, step=10)  # explicit: the counter goes on from 11
        await run.log({"loss": 0.05})  # 11
        await run.log_metric("loss", 0.04, step=np.int64(20))  # type: ignore[arg-type]
        run.log_metric_nowait("loss", 0.03)  # 21
        await run.log({"loss": 0.5}, step=3)  # back in time: allowed, the counter follows
        await run.log({"loss": 0.4})  # 4
    assert [s for s, _ in await steps_of(tracker, run.id, "loss")] == [
        0,
        1,
        2,
        3,
        3,
        4,
        10,
        11,
        20,
        21,
    ]
    assert await steps_of(tracker, run.id, "acc") == [(0, 0.5)]


async def test_a_refused_call_takes_no_step(tracker: Tracker) -> None:
    async with tracker.run("steps") as run:
        await run.log({"loss": 1.0})
        with pytest.raises(TypeError, match="'loss'"):
            await run.log({"loss": "high"})
        with pytest.raises(TypeError, match="step must be an int, not bool"):
            await run.log({"loss": 1.0}, step=True)
        with pytest.raises(ValueError, match=r"\[0, 2\*\*63\)"):
            await run.log({"loss": 1.0}, step=-1)
        with pytest.raises(TypeError, match="step must be an int, not float"):
            await run.log({"loss": 1.0}, step=1.0)  # type: ignore[arg-type]
        await run.log({"loss": 0.5})
    assert await steps_of(tracker, run.id, "loss") == [(0, 1.0), (1, 0.5)]


def test_integer_like_steps_are_accepted() -> None:
    assert as_step(np.int64(7)) == 7
    assert type(as_step(np.uint8(3))) is int
    assert as_step(torch.tensor(5)) == 5
    with pytest.raises(TypeError):
        as_step(np.float64(1.0))
    with pytest.raises(TypeError):
        as_step(np.bool_(True))


async def test_values_as_people_have_them(tracker: Tracker) -> None:
    class Meter:
        def __float__(self) -> float:
            return 0.25

    values: dict[str, object] = {
        "np32": np.float32(0.5),
        "np64": np.float64(0.125),
        "npint": np.int32(3),
        "tensor": torch.tensor(2.5),
        "grad": torch.tensor(1.5, requires_grad=True) * 1,
        "one": torch.tensor([4.0]),
        "array1": np.array([6.0]),
        "decimal": Decimal("0.75"),
        "fraction": fractions.Fraction(1, 4),
        "meter": Meter(),
        "int": 7,
        "float": 1.0,
    }
    async with tracker.run("values") as run:
        await run.log(values)
        run.log_nowait(values)
    want = {
        "np32": 0.5,
        "np64": 0.125,
        "npint": 3.0,
        "tensor": 2.5,
        "grad": 1.5,
        "one": 4.0,
        "array1": 6.0,
        "decimal": 0.75,
        "fraction": 0.25,
        "meter": 0.25,
        "int": 7.0,
        "float": 1.0,
    }
    for key, value in want.items():
        points = await tracker.get_metrics(run.id, key)
        assert [(p.step, p.value) for p in points] == [(0, value), (1, value)], key
        assert all(type(p.value) is float for p in points)


@pytest.mark.parametrize(
    "value",
    [torch.tensor([1.0, 2.0]), np.array([1.0, 2.0]), torch.zeros(2, 2)],
    ids=["tensor", "ndarray", "matrix"],
)
async def test_a_value_of_several_elements_is_a_type_error_naming_the_key(
    tracker: Tracker, value: object
) -> None:
    async with tracker.run("values") as run:
        with pytest.raises(TypeError, match=r"metric 'weights'.* elements"):
            await run.log({"ok": 1.0, "weights": value})
        with pytest.raises(TypeError, match="metric 'weights'"):
            run.log_metric_nowait("weights", value)
    assert await tracker.list_metric_keys(run.id) == []  # nothing of the refused call


def test_what_is_no_number_is_refused_with_its_key() -> None:
    for value in ["1.0", None, True, [1.0], complex(1, 1)]:
        with pytest.raises(TypeError, match="metric 'k'"):
            as_metric_value("k", value)


async def test_an_exception_ends_the_run_failed_with_error_tags_and_propagates(
    tracker: Tracker,
) -> None:
    message = "x" * (ERROR_MESSAGE_LIMIT + 500)
    handle = tracker.run("errors")

    async def train() -> None:
        async with handle as run:
            await run.log({"loss": 1.0})
            raise ValueError(message)

    with pytest.raises(ValueError, match=r"^x+$"):
        await train()
    run = handle
    got = await tracker.get_run(run.id)
    assert got.status is RunStatus.FAILED
    assert got.tags["error.type"] == "ValueError"
    assert got.tags["error.message"] == "x" * ERROR_MESSAGE_LIMIT
    assert await steps_of(tracker, run.id, "loss") == [(0, 1.0)]


async def test_a_cancellation_ends_the_run_cancelled_with_what_was_logged(
    tracker: Tracker,
) -> None:
    logged = 0
    with anyio.move_on_after(0.3):
        async with tracker.run("cancel") as run:
            while True:
                await run.log({"loss": 1.0})
                logged += 1
                await anyio.sleep(0.001)
    got = await tracker.get_run(run.id)
    assert got.status is RunStatus.CANCELLED
    assert "error.type" not in got.tags
    assert [s for s, _ in await steps_of(tracker, run.id, "loss")] == list(range(logged))


def test_how_each_ending_is_classified() -> None:
    assert ending_status(None) is RunStatus.SUCCESS
    assert ending_status(KeyboardInterrupt()) is RunStatus.CANCELLED
    assert ending_status(SystemExit(0)) is RunStatus.SUCCESS
    assert ending_status(SystemExit(None)) is RunStatus.SUCCESS
    assert ending_status(SystemExit(2)) is RunStatus.FAILED
    assert ending_status(RuntimeError()) is RunStatus.FAILED


async def test_finish_ends_it_once_and_leaving_the_block_then_does_nothing(
    tracker: Tracker,
) -> None:
    async with tracker.run("finish") as run:
        await run.finish("CANCELLED")
        await run.finish()
    assert await tracker.get_run_status(run.id) is RunStatus.CANCELLED
    with pytest.raises(ValueError, match="PENDING"):
        await tracker.run("x").finish("PENDING")


async def test_params_tags_span_and_artifacts_on_the_handle(tracker: Tracker) -> None:
    async with tracker.run("extras", tags={"team": "nlp", "rj.user": "mine"}) as run:
        await run.log_params({"batch": 32})
        await run.log_param("optimizer", "adamw")
        run.log_param_nowait("seed", 1)
        run.log_params_nowait({"epochs": 2})
        await run.set_tag("stage", "sft")
        run.set_tag_nowait("phase", "1")
        await run.set_span_id("trace-1")
        digest = await run.log_artifact("weights.bin", b"abc")
    got = await tracker.get_run(run.id)
    assert await tracker.get_params(run.id) == {
        "batch": 32,
        "optimizer": "adamw",
        "seed": 1,
        "epochs": 2,
    }
    assert got.tags["team"] == "nlp"
    assert got.tags["rj.user"] == "mine"  # the user's tags win over captured ones
    assert got.tags["stage"] == "sft"
    assert got.tags["phase"] == "1"
    assert "rj.host" in got.tags
    assert await tracker.get_span_id(run.id) == "trace-1"
    assert [a.sha256 for a in await tracker.list_artifacts(run.id)] == [digest]


async def test_capture_false_records_no_context(tracker: Tracker) -> None:
    async with tracker.run("quiet", capture=False) as run:
        pass
    assert (await tracker.get_run(run.id)).tags == {}


async def test_bad_params_fail_before_the_run_exists(tracker: Tracker) -> None:
    with pytest.raises(TypeError):
        async with tracker.run("bad", params={"f": object()}):
            pass
    assert await tracker.list_experiments() == []


async def test_an_idle_handle_sends_heartbeats_and_a_busy_one_does_not(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(run_module, "HEARTBEAT_INTERVAL", 0.05)
    async with (
        Tracker.open(tmp_path / "beats.db") as tracker,
        tracker.run("liveness") as run,
    ):
        await tracker.flush()
        before = (await tracker.get_run(run.id)).last_activity
        await anyio.sleep(0.4)
        await tracker.flush()
        after = (await tracker.get_run(run.id)).last_activity
    assert before is not None
    assert after is not None
    assert after > before
    # Ended: the heartbeat thread is gone with the run.
    await anyio.sleep(0.2)
    assert not any(t.name.endswith(run.id) for t in threading.enumerate())


async def test_the_handle_is_a_run_handle(tracker: Tracker) -> None:
    handle = tracker.run("x")
    assert isinstance(handle, RunHandle)
    assert handle.tracker is tracker
    with pytest.raises(TypeError, match="experiment must be a name"):
        tracker.run(3)  # type: ignore[arg-type]
    async with handle:
        with pytest.raises(RuntimeError, match="entered already"):
            await handle.__aenter__()


async def test_log_artifact_on_the_handle_takes_a_file_or_a_directory(
    tmp_path: Path,
) -> None:
    folder = tmp_path / "out"
    (folder / "sub").mkdir(parents=True)
    (folder / "model.bin").write_bytes(b"weights")
    (folder / "sub" / "config.json").write_bytes(b"{}")
    async with Tracker.open(tmp_path / "files.db") as tracker, tracker.run("files") as run:
        single = await run.log_artifact("model.bin", folder / "model.bin")
        many = await run.log_artifact("out", folder)
    assert isinstance(single, str)
    assert isinstance(many, dict)
    assert sorted(many) == ["out/model.bin", "out/sub/config.json"]
    assert many["out/model.bin"] == single
