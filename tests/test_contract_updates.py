"""Contract: later changes to runs and experiments (MLflow's delete-tag, run rename, experiment
tags and rename), on every store, kept by the journal and folded the same on rebuild."""

from __future__ import annotations

import pytest

from runjournal import ExperimentNotFound, RunNotFound, Tracker
from runjournal.events import ExperimentUpdated, RunRenamed, TagDeleted
from runjournal.journal import rebuild, verify


async def test_a_deleted_tag_is_gone_and_a_missing_key_changes_nothing(tracker: Tracker) -> None:
    exp = await tracker.create_experiment("e")
    run_id = await tracker.create_run(exp, tags={"a": "1", "b": "2"})
    await tracker.delete_tag(run_id, "a")
    await tracker.delete_tag(run_id, "never-set")
    await tracker.flush()
    assert (await tracker.get_run(run_id)).tags == {"b": "2"}
    with pytest.raises(RunNotFound):
        await tracker.delete_tag("0" * 26, "a")


async def test_a_run_renamed_keeps_its_id_and_the_rename_is_in_the_journal(
    tracker: Tracker,
) -> None:
    exp = await tracker.create_experiment("e")
    run_id = await tracker.create_run(exp, name="before")
    await tracker.rename_run(run_id, "after")
    await tracker.flush()
    assert (await tracker.get_run(run_id)).name == "after"
    with pytest.raises(TypeError):
        await tracker.rename_run(run_id, None)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="control characters"):
        await tracker.rename_run(run_id, "a\x00b")
    entries = [e.event for e in await tracker.store.read_journal()]
    assert [type(e) for e in entries if isinstance(e, RunRenamed | TagDeleted)] == [RunRenamed]
    await rebuild(tracker.store)
    assert (await tracker.get_run(run_id)).name == "after"
    assert (await verify(tracker.store)).ok


async def test_experiment_tags_merge_and_a_rename_frees_the_old_name(tracker: Tracker) -> None:
    first = await tracker.ensure_experiment("old", tags={"team": "a"})
    await tracker.update_experiment(first, tags={"stage": "draft"})
    await tracker.update_experiment(first, name="new", tags={"stage": "final"})
    await tracker.flush()
    got = await tracker.get_experiment(first)
    assert (got.name, got.tags) == ("new", {"team": "a", "stage": "final"})
    assert got.updated_at >= got.created_at
    # The id derived from "old" is taken by the renamed experiment: "old" gets the next one.
    second = await tracker.ensure_experiment("old")
    await tracker.flush()
    assert second != first
    assert (await tracker.find_experiment("old")) == await tracker.get_experiment(second)
    assert await tracker.ensure_experiment("new") == first
    with pytest.raises(ExperimentNotFound):
        await tracker.update_experiment("0" * 26, name="x")
    entries = [e.event for e in await tracker.store.read_journal()]
    assert sum(isinstance(e, ExperimentUpdated) for e in entries) == 2
    await rebuild(tracker.store)
    assert (await tracker.get_experiment(first)).name == "new"
    assert (await verify(tracker.store)).ok
