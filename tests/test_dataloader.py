"""A real PyTorch DataLoader whose workers (forked or spawned) log through the tracker."""

from __future__ import annotations

import multiprocessing
import os
import warnings
from pathlib import Path
from typing import Any

import pytest

from runjournal import Tracker
from tests import pg

with warnings.catch_warnings():
    # torch warns at import when numpy is missing; that is not what this test is about.
    warnings.simplefilter("ignore")
    torch = pytest.importorskip("torch")
    from torch.utils.data import DataLoader, Dataset, get_worker_info

ITEMS = 64


class LoggingDataset(Dataset[Any]):
    """Each item logs one metric point from whichever worker process loads it."""

    def __init__(self, tracker: Tracker, run_id: str) -> None:
        self.tracker = tracker
        self.run_id = run_id

    def __len__(self) -> int:
        return ITEMS

    def __getitem__(self, index: int) -> Any:
        info = get_worker_info()
        assert info is not None, "loaded in the main process: the test needs workers"
        self.tracker.log_metric_nowait(self.run_id, "item", index, float(index) * 2)
        self.tracker.log_metric_nowait(self.run_id, f"worker{info.id}", index, float(os.getpid()))
        return torch.tensor([index, os.getpid()])


@pytest.mark.parametrize("database", ["sqlite", "postgres"])
@pytest.mark.parametrize("context", ["fork", "spawn"])
async def test_dataloader_workers_log_every_item(
    tmp_path: Path, context: str, database: str
) -> None:
    db = pg.fresh_dsn() if database == "postgres" else str(tmp_path / "loader.db")
    async with Tracker.open(db) as tracker:
        experiment_id = await tracker.create_experiment("dataloader")
        run_id = await tracker.create_run(experiment_id)
        if context == "spawn":
            await tracker.flush()  # a spawned worker looks the run up in the file
        # A forked worker inherits the tracker right after create_run: no flush needed.
        loader = DataLoader(
            LoggingDataset(tracker, run_id),
            batch_size=4,
            num_workers=2,
            multiprocessing_context=multiprocessing.get_context(context),
            timeout=120,
        )
        seen: list[int] = []
        worker_pids: set[int] = set()
        for batch in loader:
            seen.extend(int(i) for i in batch[:, 0])
            worker_pids.update(int(p) for p in batch[:, 1])
        assert sorted(seen) == list(range(ITEMS))
        assert os.getpid() not in worker_pids
        assert len(worker_pids) == 2

        points = await tracker.get_metrics(run_id, "item")
        assert [p.step for p in points] == list(range(ITEMS))
        assert [p.value for p in points] == [i * 2.0 for i in range(ITEMS)]
        # Each worker's own series: its items, logged from its own process.
        by_worker: dict[int, set[int]] = {}
        for worker in (0, 1):
            series = await tracker.get_metrics(run_id, f"worker{worker}")
            assert series, f"worker {worker} logged nothing"
            by_worker[worker] = {p.step for p in series}
            assert {int(p.value) for p in series} <= worker_pids
        assert by_worker[0] | by_worker[1] == set(range(ITEMS))
        assert not by_worker[0] & by_worker[1]
        stats = tracker.stats()
        assert stats.rejected == 0
        # The parent's writer wrote only the parent's events; the workers wrote theirs.
        assert stats.committed == 2


async def test_dataloader_twice_with_the_same_tracker(tmp_path: Path) -> None:
    """Workers are forked anew each epoch; each epoch's points arrive."""
    async with Tracker.open(tmp_path / "epochs.db") as tracker:
        experiment_id = await tracker.create_experiment("epochs")
        run_id = await tracker.create_run(experiment_id)
        loader = DataLoader(
            LoggingDataset(tracker, run_id),
            batch_size=8,
            num_workers=2,
            multiprocessing_context=multiprocessing.get_context("fork"),
            timeout=120,
        )
        for epoch in range(2):
            assert sum(len(batch) for batch in loader) == ITEMS
            tracker.log_metric_nowait(run_id, "epoch", epoch, float(epoch))
        points = await tracker.get_metrics(run_id, "item")
        assert sorted(p.step for p in points) == sorted(list(range(ITEMS)) * 2)
        assert [p.step for p in await tracker.get_metrics(run_id, "epoch")] == [0, 1]
