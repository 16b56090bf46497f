"""Lightning's ``MLFlowLogger`` and transformers' ``MLflowCallback``, unchanged, logging into
``runjournal server``. The models are the tiny ones of the integration tests, built here."""

from __future__ import annotations

from pathlib import Path

import lightning.pytorch as pl
import mlflow
import pytest
from lightning.pytorch.callbacks import ModelCheckpoint
from lightning.pytorch.loggers import MLFlowLogger
from transformers import Trainer

from tests.mlflow.conftest import Server, assert_agree
from tests.test_integration_lightning import TinyRegression, loader
from tests.test_integration_transformers import examples, tiny_bert, training_args


@pytest.mark.filterwarnings("ignore:.*does not have many workers:UserWarning")
@pytest.mark.filterwarnings("ignore:.*is smaller than the logging interval:UserWarning")
@pytest.mark.filterwarnings("ignore:.*LeafSpec.*:FutureWarning")
def test_lightning_mlflow_logger_two_epochs_with_its_checkpoint(
    tracking: Server, tmp_path: Path
) -> None:
    logger = MLFlowLogger(
        experiment_name="lightning-exp",
        tracking_uri=tracking.url,
        run_name="pl-run",
        log_model=True,
        tags={"framework": "lightning"},
    )
    trainer = pl.Trainer(
        max_epochs=2,
        logger=logger,
        enable_progress_bar=False,
        enable_model_summary=False,
        callbacks=[ModelCheckpoint(dirpath=tmp_path / "ckpt")],
        log_every_n_steps=1,
        accelerator="cpu",
        devices=1,
        default_root_dir=tmp_path,
    )
    trainer.fit(TinyRegression(), loader(), loader())
    run_id = logger.run_id
    assert run_id is not None

    client = mlflow.MlflowClient(tracking_uri=tracking.url)
    run = client.get_run(run_id)
    assert run.info.status == "FINISHED"
    assert run.info.run_name == "pl-run"
    assert run.data.tags["framework"] == "lightning"
    assert run.data.params["lr"] == "0.05"
    assert run.data.params["fail_at_epoch"] == "None"
    assert [m.step for m in client.get_metric_history(run_id, "train_loss_step")] == list(range(8))
    assert [m.step for m in client.get_metric_history(run_id, "val_loss")] == [3, 7]
    names = {f.path for f in client.list_artifacts(run_id, "epoch=1-step=8")}
    assert "epoch=1-step=8/epoch=1-step=8.ckpt" in names
    checkpoint = client.download_artifacts(
        run_id, "epoch=1-step=8/epoch=1-step=8.ckpt", str(tmp_path / "down")
    )
    assert Path(checkpoint).read_bytes() == (tmp_path / "ckpt" / "epoch=1-step=8.ckpt").read_bytes()
    assert_agree(tracking, run_id)


def test_transformers_trainer_reports_to_mlflow(
    tracking: Server, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MLFLOW_EXPERIMENT_NAME", "hf-exp")
    monkeypatch.setenv("MLFLOW_TAGS", '{"framework": "hf"}')
    trainer = Trainer(
        model=tiny_bert(),
        args=training_args(tmp_path / "out", report_to=["mlflow"], run_name="hf-run"),
        train_dataset=examples(),
        eval_dataset=examples(8),
    )
    trainer.train()

    client = mlflow.MlflowClient(tracking_uri=tracking.url)
    experiment = client.get_experiment_by_name("hf-exp")
    assert experiment is not None
    (run,) = client.search_runs([experiment.experiment_id])
    assert run.info.status == "FINISHED"
    assert run.info.run_name == "hf-run"
    assert run.data.tags["framework"] == "hf"
    assert run.data.params["learning_rate"] == "0.001"
    assert run.data.params["num_hidden_layers"] == "2"
    # 16 examples in batches of 4 for 2 epochs: 8 steps, a loss logged at each.
    assert [m.step for m in client.get_metric_history(run.info.run_id, "loss")] == list(range(1, 9))
    assert [m.step for m in client.get_metric_history(run.info.run_id, "eval_loss")] == [4, 8]
    assert "train_runtime" in run.data.metrics
    assert_agree(tracking, run.info.run_id)
