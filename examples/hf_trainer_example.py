"""Hugging Face transformers with runjournal: add ``RunJournalCallback`` to the Trainer.

``python examples/hf_trainer_example.py [--db PATH] [--epochs N] [--out DIR]``.
Trains a 2-layer BERT built from a config (no download) on a synthetic task for a
few seconds on a CPU. The ``TrainingArguments`` and the model's config become the
run's params, every Trainer log a metric at ``global_step``. Then reads the run back
through ``SyncTracker`` and prints it. Needs ``pip install 'runjournal[transformers]'``.
"""

from __future__ import annotations

import argparse

import torch
from transformers import BertConfig, BertForSequenceClassification, Trainer, TrainingArguments

import runjournal as rj
from runjournal.integrations.transformers import RunJournalCallback


def synthetic(n: int, seed: int) -> list[dict[str, torch.Tensor]]:
    """Sequences of 8 tokens; the label says whether token 7 occurs."""
    generator = torch.Generator().manual_seed(seed)
    rows = []
    for i in range(n):
        ids = torch.randint(8, 64, (8,), generator=generator)
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


def train(db: str, epochs: int, out: str) -> str:
    """Train with the runjournal callback; return the run's id."""
    torch.manual_seed(0)
    config = BertConfig(
        vocab_size=64,
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=16,
    )
    callback = RunJournalCallback(db=db, experiment="bert-tiny", name="synthetic")
    args = TrainingArguments(
        output_dir=out,
        num_train_epochs=epochs,
        per_device_train_batch_size=8,
        learning_rate=1e-3,
        logging_steps=2,
        eval_strategy="epoch",
        save_strategy="no",
        report_to=[],  # runjournal only
        use_cpu=True,
        disable_tqdm=True,
        dataloader_pin_memory=False,
    )
    trainer = Trainer(
        model=BertForSequenceClassification(config),
        args=args,
        train_dataset=synthetic(64, seed=0),
        eval_dataset=synthetic(16, seed=1),
        callbacks=[callback],
    )
    trainer.train()
    run = callback.run
    assert run is not None
    callback.close()
    return run.id


def report(db: str, run_id: str) -> None:
    with rj.SyncTracker.open(db) as tracker:
        run = tracker.get_run(run_id)
        params = tracker.get_params(run_id)
        loss = tracker.get_metrics(run_id, "loss")
        evals = tracker.get_metrics(run_id, "eval_loss")
        print(f"run         {run_id} {run.status.value}")
        print(
            f"params      {len(params)}, e.g. learning_rate={params['learning_rate']} "
            f"num_hidden_layers={params['num_hidden_layers']}"
        )
        print(f"loss        {len(loss)} points, steps {loss[0].step}..{loss[-1].step}")
        print(f"eval_loss   at steps {[p.step for p in evals]}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--db", default="experiments.db")
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--out", default="hf_trainer_output", help="the Trainer's output_dir")
    args = parser.parse_args()
    report(args.db, train(args.db, args.epochs, args.out))


if __name__ == "__main__":
    main()
