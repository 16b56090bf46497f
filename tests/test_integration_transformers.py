"""Hugging Face: ``RunJournalCallback`` under a real ``Trainer``, on a 2-layer BERT built here.

The model comes from a config, never from a hub; ``HF_HUB_OFFLINE=1`` makes a download
an error rather than a wait.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
import torch

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from transformers import (
    BertConfig,
    BertForSequenceClassification,
    Trainer,
    TrainerControl,
    TrainerState,
    TrainingArguments,
)

from runjournal import RunStatus, SyncTracker
from runjournal.integrations.transformers import RunJournalCallback


def tiny_bert() -> BertForSequenceClassification:
    torch.manual_seed(0)
    config = BertConfig(
        vocab_size=32,
        hidden_size=16,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=32,
        max_position_embeddings=16,
    )
    return BertForSequenceClassification(config)


def examples(n: int = 16) -> list[dict[str, torch.Tensor]]:
    """Label 1 when token 7 is in the sequence: learnable, and made here."""
    generator = torch.Generator().manual_seed(0)
    rows = []
    for i in range(n):
        ids = torch.randint(8, 32, (8,), generator=generator)
        if i % 2:
            ids[i % 8] = 7
        rows.append(
            {
                "input_ids": ids,
                "attention_mask": torch.ones(8, dtype=torch.long),
                "labels": torch.tensor(i % 2),
            }
        )
    return rows


def training_args(out: Path, **options: Any) -> TrainingArguments:
    settings: dict[str, Any] = {
        "output_dir": str(out),
        "per_device_train_batch_size": 4,
        "per_device_eval_batch_size": 8,
        "num_train_epochs": 2,
        "learning_rate": 1e-3,
        "logging_steps": 1,
        "eval_strategy": "epoch",
        "save_strategy": "no",
        "report_to": [],
        "use_cpu": True,
        "disable_tqdm": True,
        "dataloader_pin_memory": False,
        "seed": 0,
    }
    settings.update(options)
    return TrainingArguments(**settings)


def test_arguments_config_and_logs_reach_the_database(tmp_path: Path) -> None:
    db = tmp_path / "experiments.db"
    callback = RunJournalCallback(db=db, experiment="bert-tiny", name="two-layers")
    trainer = Trainer(
        model=tiny_bert(),
        args=training_args(tmp_path / "out"),
        train_dataset=examples(),
        eval_dataset=examples(8),
        callbacks=[callback],
    )
    trainer.train()
    run = callback.run
    assert run is not None
    run_id = run.id
    final_eval = trainer.evaluate()  # after on_train_end: still this run
    callback.close()

    with SyncTracker.open(db) as tracker:
        stored = tracker.get_run(run_id)
        assert stored.status is RunStatus.SUCCESS
        assert stored.name == "two-layers"
        assert tracker.get_experiment(stored.experiment_id).name == "bert-tiny"
        params = tracker.get_params(run_id)
        # TrainingArguments ...
        assert params["learning_rate"] == 1e-3
        assert params["per_device_train_batch_size"] == 4
        assert params["output_dir"] == str(tmp_path / "out")
        assert params["eval_strategy"] == "epoch"  # an enum, stored by its value
        # ... and the model's config, nested dicts flattened.
        assert params["num_hidden_layers"] == 2
        assert params["vocab_size"] == 32
        assert params["id2label/0"] == "LABEL_0"
        assert params["model/num_parameters"] == tiny_bert().num_parameters()
        # 16 examples in batches of 4 for 2 epochs: steps 1..8, evaluated at 4 and 8.
        loss = tracker.get_metrics(run_id, "loss")
        assert [p.step for p in loss] == list(range(1, 9))
        assert [p.step for p in tracker.get_metrics(run_id, "learning_rate")] == list(range(1, 9))
        evals = tracker.get_metrics(run_id, "eval_loss")
        assert [p.step for p in evals] == [4, 8, 8]
        assert evals[-1].value == pytest.approx(final_eval["eval_loss"])
        [train_loss] = tracker.get_metrics(run_id, "train_loss")
        assert train_loss.step == 8
        assert "rj.host" in stored.tags


def test_defaults_each_train_is_a_run_and_other_processes_log_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``experiment`` defaults to "huggingface", ``name`` to ``args.run_name``, ``db`` to the env."""
    db = tmp_path / "env.db"
    monkeypatch.setenv("RUNJOURNAL_DB", str(db))
    callback = RunJournalCallback()
    trainer = Trainer(
        model=tiny_bert(),
        args=training_args(
            tmp_path / "out", run_name="from-args", eval_strategy="no", num_train_epochs=1
        ),
        train_dataset=examples(8),
        callbacks=[callback],
    )
    trainer.train()
    trainer.train()
    callback.close()

    # Another process of a distributed run: the callback does nothing there.
    other = RunJournalCallback(db=tmp_path / "other.db")
    state = TrainerState(is_world_process_zero=False)
    args = training_args(tmp_path / "out")
    other.on_train_begin(args, state, TrainerControl(), model=tiny_bert())
    other.on_log(args, state, TrainerControl(), logs={"loss": 1.0})
    other.on_train_end(args, state, TrainerControl())
    other.close()
    assert other.run is None
    assert not (tmp_path / "other.db").exists()

    with SyncTracker.open(db) as tracker:
        experiment = tracker.find_experiment("huggingface")
        assert experiment is not None
        runs = tracker.list_runs(experiment.id)
        assert [(r.name, r.status) for r in runs] == [("from-args", RunStatus.SUCCESS)] * 2
        for run in runs:
            assert [p.step for p in tracker.get_metrics(run.id, "loss")] == [1, 2]


def test_on_log_keeps_numbers_only(tmp_path: Path) -> None:
    db = tmp_path / "e.db"
    callback = RunJournalCallback(db=db)
    args = training_args(tmp_path / "out")
    state = TrainerState(global_step=3)
    callback.on_train_begin(args, state, TrainerControl(), model=tiny_bert())
    callback.on_log(
        args,
        state,
        TrainerControl(),
        logs={"loss": 0.5, "total_flos": 12, "note": "text", "flag": True, "t": torch.tensor(2.0)},
    )
    callback.on_log(args, state, TrainerControl(), logs=None)
    run = callback.run
    assert run is not None
    callback.on_train_end(args, state, TrainerControl())
    callback.close()
    with SyncTracker.open(db) as tracker:
        assert tracker.list_metric_keys(run.id) == ["loss", "t", "total_flos"]
        assert tracker.get_metrics(run.id, "t")[0].step == 3
