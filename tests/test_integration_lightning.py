"""Lightning: ``RunJournalLogger`` under a real ``Trainer``, on a tiny model defined here."""

from __future__ import annotations

import argparse
import pickle
import signal
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import lightning.pytorch as pl
import pytest
import torch
from lightning.fabric.loggers.logger import _DummyExperiment
from lightning.fabric.utilities.rank_zero import rank_zero_only
from torch.utils.data import DataLoader, TensorDataset

from runjournal import RunStatus, SyncTracker
from runjournal.integrations.lightning import RunJournalLogger

pytestmark = [
    # Lightning's advice for real training, not for a 32-sample CPU test.
    pytest.mark.filterwarnings("ignore:.*does not have many workers:UserWarning"),
    pytest.mark.filterwarnings("ignore:.*is smaller than the logging interval:UserWarning"),
    # Lightning 2.6 still builds torch's LeafSpec, which torch 2.13 deprecates.
    pytest.mark.filterwarnings("ignore:.*LeafSpec.*:FutureWarning"),
]


class TinyRegression(pl.LightningModule):
    """y = 2x + 1 on 4 features, with the knobs a real model has as hyperparameters."""

    def __init__(
        self,
        lr: float = 0.05,
        hidden: int = 8,
        optimizer: dict[str, Any] | None = None,
        fail_at_epoch: int | None = None,
        interrupt_at_epoch: int | None = None,
    ) -> None:
        super().__init__()
        self.save_hyperparameters()
        self.net = torch.nn.Sequential(
            torch.nn.Linear(4, hidden), torch.nn.ReLU(), torch.nn.Linear(hidden, 1)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out: torch.Tensor = self.net(x)
        return out

    def _loss(self, batch: list[torch.Tensor]) -> torch.Tensor:
        x, y = batch
        return torch.nn.functional.mse_loss(self(x), y)

    def training_step(self, batch: list[torch.Tensor], batch_idx: int) -> torch.Tensor:
        if self.current_epoch == self.hparams["fail_at_epoch"]:
            raise ValueError("the loss went to the moon " + "x" * 2000)
        if self.current_epoch == self.hparams["interrupt_at_epoch"]:
            raise KeyboardInterrupt
        loss = self._loss(batch)
        self.log("train_loss", loss, on_step=True, on_epoch=True)
        return loss

    def validation_step(self, batch: list[torch.Tensor], batch_idx: int) -> None:
        self.log("val_loss", self._loss(batch))

    def test_step(self, batch: list[torch.Tensor], batch_idx: int) -> None:
        self.log("test_loss", self._loss(batch))

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return torch.optim.SGD(self.parameters(), lr=self.hparams["lr"])


def loader() -> DataLoader[tuple[torch.Tensor, ...]]:
    generator = torch.Generator().manual_seed(0)
    x = torch.randn(32, 4, generator=generator)
    y = 2 * x.sum(dim=1, keepdim=True) + 1
    return DataLoader(TensorDataset(x, y), batch_size=8)


def trainer(root: Path, logger: RunJournalLogger, **options: Any) -> pl.Trainer:
    settings: dict[str, Any] = {
        "max_epochs": 2,
        "logger": logger,
        "enable_progress_bar": False,
        "enable_model_summary": False,
        "enable_checkpointing": False,
        "log_every_n_steps": 1,
        "accelerator": "cpu",
        "devices": 1,
        "default_root_dir": root,
    }
    settings.update(options)
    return pl.Trainer(**settings)


@pytest.fixture
def db(tmp_path: Path) -> Path:
    return tmp_path / "experiments.db"


@pytest.fixture(autouse=True)
def _sigint_restored() -> Iterator[None]:
    """Lightning ignores SIGINT once it has seen a KeyboardInterrupt; give it back."""
    handler = signal.getsignal(signal.SIGINT)
    yield
    signal.signal(signal.SIGINT, handler)


def test_metrics_hyperparameters_and_status_reach_the_database(tmp_path: Path, db: Path) -> None:
    logger = RunJournalLogger(db=db, experiment="lightning-test", name="tiny")
    model = TinyRegression(optimizer={"name": "sgd", "momentum": 0.0})
    trainer(tmp_path, logger).fit(model, loader(), loader())
    run_id = logger.run_id
    assert run_id is not None
    assert logger.version == run_id
    assert logger.name == "lightning-test"
    logger.close()

    with SyncTracker.open(db) as tracker:
        run = tracker.get_run(run_id)
        assert run.status is RunStatus.SUCCESS
        assert run.name == "tiny"
        assert tracker.get_experiment(run.experiment_id).name == "lightning-test"
        assert "rj.host" in run.tags  # the handle's context capture
        assert tracker.get_params(run_id) == {
            "lr": 0.05,
            "hidden": 8,
            "optimizer/name": "sgd",
            "optimizer/momentum": 0.0,
            "fail_at_epoch": None,
            "interrupt_at_epoch": None,
        }
        keys = set(tracker.list_metric_keys(run_id))
        assert {"train_loss_step", "train_loss_epoch", "val_loss", "epoch"} <= keys
        # 32 samples in batches of 8: 4 optimizer steps per epoch, at Lightning's own steps.
        assert [p.step for p in tracker.get_metrics(run_id, "train_loss_step")] == list(range(8))
        val = tracker.get_metrics(run_id, "val_loss")
        assert [p.step for p in val] == [3, 7]
        assert val[-1].value < val[0].value  # it learned something
        assert [p.step for p in tracker.get_metrics(run_id, "train_loss_epoch")] == [3, 7]
        assert [p.value for p in tracker.get_metrics(run_id, "epoch")][-1] == 1.0


def test_an_exception_in_training_ends_the_run_failed_with_its_error(
    tmp_path: Path, db: Path
) -> None:
    logger = RunJournalLogger(db=db)
    with pytest.raises(ValueError, match="moon"):
        trainer(tmp_path, logger).fit(TinyRegression(fail_at_epoch=1), loader(), loader())
    run_id = logger.run_id
    assert run_id is not None
    logger.close()
    with SyncTracker.open(db) as tracker:
        run = tracker.get_run(run_id)
        assert run.status is RunStatus.FAILED
        assert run.tags["error.type"] == "ValueError"
        assert len(run.tags["error.message"]) == 1000
        # The first epoch was logged before the failure.
        assert len(tracker.get_metrics(run_id, "train_loss_step")) == 4


def test_ctrl_c_ends_the_run_cancelled(tmp_path: Path, db: Path) -> None:
    """Lightning turns KeyboardInterrupt into finalize("failed") and sys.exit(1)."""
    logger = RunJournalLogger(db=db)
    with pytest.raises(SystemExit):
        trainer(tmp_path, logger).fit(TinyRegression(interrupt_at_epoch=1), loader(), loader())
    run_id = logger.run_id
    assert run_id is not None
    logger.close()
    with SyncTracker.open(db) as tracker:
        assert tracker.get_run_status(run_id) is RunStatus.CANCELLED


def test_a_test_stage_after_fit_logs_into_the_same_run(tmp_path: Path, db: Path) -> None:
    logger = RunJournalLogger(db=db)
    model = TinyRegression()
    fit_and_test = trainer(tmp_path, logger)
    fit_and_test.fit(model, loader(), loader())
    run_id = logger.run_id
    fit_and_test.test(model, loader())
    assert logger.run_id == run_id
    assert run_id is not None
    logger.close()
    with SyncTracker.open(db) as tracker:
        assert tracker.get_run_status(run_id) is RunStatus.SUCCESS
        assert len(tracker.get_metrics(run_id, "test_loss")) == 1
        assert len(tracker.list_runs(tracker.get_run(run_id).experiment_id)) == 1


def test_checkpoints_are_logged_as_artifacts_when_asked(tmp_path: Path, db: Path) -> None:
    logger = RunJournalLogger(db=db, log_checkpoints=True)
    trainer(tmp_path, logger, enable_checkpointing=True).fit(TinyRegression(), loader(), loader())
    run_id = logger.run_id
    assert run_id is not None
    logger.close()
    # Lightning's own layout: <root>/<experiment>/<run id>/checkpoints.
    folder = tmp_path / "default" / run_id / "checkpoints"
    [kept] = sorted(folder.iterdir())
    with SyncTracker.open(db) as tracker:
        artifacts = {a.name: a for a in tracker.list_artifacts(run_id)}
        # ModelCheckpoint keeps the last epoch's file only; both epochs' files were stored.
        assert set(artifacts) == {
            "checkpoints/epoch=0-step=4.ckpt",
            "checkpoints/epoch=1-step=8.ckpt",
        }
        stored = tracker.get_artifact_data(artifacts[f"checkpoints/{kept.name}"].sha256)
        assert stored == kept.read_bytes()
        assert (
            tracker.get_run(run_id).tags["lightning.best_checkpoint"] == f"checkpoints/{kept.name}"
        )


def test_no_checkpoints_unless_asked(tmp_path: Path, db: Path) -> None:
    logger = RunJournalLogger(db=db)
    trainer(tmp_path, logger, enable_checkpointing=True, max_epochs=1).fit(
        TinyRegression(), loader(), loader()
    )
    run_id = logger.run_id
    assert run_id is not None
    logger.close()
    with SyncTracker.open(db) as tracker:
        assert tracker.list_artifacts(run_id) == []


@pytest.mark.parametrize(
    ("status", "want"),
    [
        ("success", RunStatus.SUCCESS),
        ("failed", RunStatus.FAILED),
        ("finished", RunStatus.CANCELLED),  # sent before a SLURM requeue: training goes on later
        ("aborted", RunStatus.CANCELLED),
    ],
)
def test_finalize_maps_lightnings_status(db: Path, status: str, want: RunStatus) -> None:
    logger = RunJournalLogger(db=db)
    logger.log_metrics({"loss": 1.0}, step=0)
    logger.finalize(status)
    logger.finalize("success")  # only the first finalize sets the status
    run_id = logger.run_id
    assert run_id is not None
    logger.close()
    with SyncTracker.open(db) as tracker:
        assert tracker.get_run_status(run_id) is want


def test_finalize_without_a_run_creates_nothing(db: Path) -> None:
    logger = RunJournalLogger(db=db)
    logger.finalize("success")
    logger.save()
    logger.close()
    assert logger.run_id is None
    assert not db.exists()


def test_hyperparameters_as_a_namespace_and_without_a_step(db: Path) -> None:
    logger = RunJournalLogger(db=db, experiment="ns")
    logger.log_hyperparams(argparse.Namespace(lr=0.1, layers=[64, 64], data={"path": Path("/d")}))
    logger.log_metrics({"loss": 1.0})
    logger.log_metrics({"loss": 0.5})
    run_id = logger.run_id
    assert run_id is not None
    logger.close()
    with SyncTracker.open(db) as tracker:
        assert tracker.get_params(run_id) == {"lr": 0.1, "layers": [64, 64], "data/path": "/d"}
        assert [(p.step, p.value) for p in tracker.get_metrics(run_id, "loss")] == [
            (0, 1.0),
            (1, 0.5),
        ]
        assert tracker.get_run_status(run_id) is RunStatus.SUCCESS  # close() ends an open run


def test_other_ranks_log_nothing(monkeypatch: pytest.MonkeyPatch, db: Path) -> None:
    monkeypatch.setattr(rank_zero_only, "rank", 1)
    logger = RunJournalLogger(db=db)
    logger.log_hyperparams({"lr": 0.1})
    logger.log_metrics({"loss": 1.0}, step=0)
    logger.finalize("success")
    assert logger.version is None
    assert isinstance(logger.experiment, _DummyExperiment)
    assert logger.run_id is None
    logger.close()
    assert not db.exists()


def test_the_logger_pickles_without_its_open_database(db: Path) -> None:
    """Lightning may copy a logger to another process: the copy opens its own connection."""
    logger = RunJournalLogger(db=db, experiment="pickled")
    logger.log_metrics({"loss": 1.0}, step=0)
    copy = pickle.loads(pickle.dumps(logger))
    assert copy.run_id is None
    assert copy.name == "pickled"
    logger.close()
    copy.close()
