"""PyTorch Lightning with runjournal: pass ``RunJournalLogger`` as the trainer's logger.

``python examples/lightning_example.py [--db PATH] [--epochs N] [--checkpoints]``.
Fits a tiny regression model on synthetic data (seconds on a CPU); ``self.log``
values, the hyperparameters from ``save_hyperparameters()`` and the final status
land in the run. Then reads the run back through ``SyncTracker`` and prints it.
Needs ``pip install 'runjournal[lightning]'``.
"""

from __future__ import annotations

import argparse
import warnings

import lightning.pytorch as pl
import torch
from torch.utils.data import DataLoader, TensorDataset

import runjournal as rj
from runjournal.integrations.lightning import RunJournalLogger


class Regression(pl.LightningModule):
    def __init__(self, lr: float = 0.05, hidden: int = 16) -> None:
        super().__init__()
        self.save_hyperparameters()  # -> logger.log_hyperparams -> the run's params
        self.net = torch.nn.Sequential(
            torch.nn.Linear(4, hidden), torch.nn.ReLU(), torch.nn.Linear(hidden, 1)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out: torch.Tensor = self.net(x)
        return out

    def training_step(self, batch: list[torch.Tensor], batch_idx: int) -> torch.Tensor:
        x, y = batch
        loss = torch.nn.functional.mse_loss(self(x), y)
        self.log("train_loss", loss)
        return loss

    def validation_step(self, batch: list[torch.Tensor], batch_idx: int) -> None:
        x, y = batch
        self.log("val_loss", torch.nn.functional.mse_loss(self(x), y))

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return torch.optim.SGD(self.parameters(), lr=self.hparams["lr"])


def data(n: int, seed: int) -> DataLoader[tuple[torch.Tensor, ...]]:
    generator = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 4, generator=generator)
    y = 2 * x.sum(dim=1, keepdim=True) + 1
    return DataLoader(TensorDataset(x, y), batch_size=16)


def train(db: str, epochs: int, checkpoints: bool, root: str) -> str:
    """Fit the model with runjournal as the logger; return the run's id."""
    logger = RunJournalLogger(db=db, experiment="lightning-demo", log_checkpoints=checkpoints)
    trainer = pl.Trainer(
        max_epochs=epochs,
        logger=logger,
        enable_progress_bar=False,
        enable_model_summary=False,
        enable_checkpointing=checkpoints,
        log_every_n_steps=1,
        accelerator="cpu",
        default_root_dir=root,
    )
    trainer.fit(Regression(), data(128, seed=0), data(32, seed=1))
    run_id = logger.version
    assert run_id is not None
    logger.close()
    return run_id


def report(db: str, run_id: str) -> None:
    with rj.SyncTracker.open(db) as tracker:
        run = tracker.get_run(run_id)
        val = tracker.get_metrics(run_id, "val_loss")
        print(f"run         {run_id} {run.status.value}")
        print(f"params      {tracker.get_params(run_id)}")
        print(f"metrics     {tracker.list_metric_keys(run_id)}")
        print(f"val_loss    {val[0].value:.4f} -> {val[-1].value:.4f} ({len(val)} epochs)")
        print(f"artifacts   {[a.name for a in tracker.list_artifacts(run_id)]}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--db", default="experiments.db")
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--checkpoints", action="store_true", help="store checkpoints too")
    parser.add_argument("--root", default="lightning_logs", help="Lightning's default_root_dir")
    args = parser.parse_args()
    # Lightning's advice to use more loader workers does not apply to 128 rows in memory.
    warnings.filterwarnings("ignore", ".*does not have many workers.*")
    report(args.db, train(args.db, args.epochs, args.checkpoints, args.root))


if __name__ == "__main__":
    main()
