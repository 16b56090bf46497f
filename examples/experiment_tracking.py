"""The Quick Start as a real program: track one fine-tuning run and print a summary.

python examples/experiment_tracking.py [--db PATH] [--verbose]

Each time it runs, it adds one run to the experiment ``gpt2-finetune`` (created the first time).
"""

from __future__ import annotations

import argparse
import asyncio

from runjournal import FilterOp, ParamFilter, RunStatus, Tracker


async def main(db: str, verbose: bool) -> None:
    def say(message: str) -> None:
        if verbose:
            print(f"  . {message}")

    async with Tracker.open(db) as tracker:
        # Get-or-create: the first run creates the experiment, later runs reuse it.
        exp_id = await tracker.ensure_experiment(
            "gpt2-finetune", {"model": "gpt2", "dataset": "wikitext"}
        )
        say(f"using experiment {exp_id}")
        run_id = await tracker.create_run(exp_id)
        say(f"created run {run_id}")
        await tracker.start_run(run_id)
        say("started the run")
        await tracker.log_param(run_id, "learning_rate", 1e-4)
        await tracker.log_param(run_id, "batch_size", 32)
        await tracker.log_param(run_id, "optimizer", "adamw")
        say("logged params learning_rate, batch_size, optimizer")
        for epoch in range(10):
            await tracker.log_metric(run_id, "loss", epoch, 1.0 / (epoch + 1))
            await tracker.log_metric(run_id, "accuracy", epoch, epoch / 10)
            say(f"epoch {epoch}: loss={1.0 / (epoch + 1):.4f} accuracy={epoch / 10:.2f}")
        digest = await tracker.log_artifact(run_id, "model.safetensors", b"...weights...")
        say(f"logged artifact model.safetensors ({digest})")
        await tracker.complete_run(run_id, RunStatus.SUCCESS)
        say("completed the run")

        experiment = await tracker.get_experiment(exp_id)
        runs = await tracker.list_runs(exp_id)
        status = await tracker.get_run_status(run_id)
        params = await tracker.get_params(run_id)
        best = await tracker.filter_runs(
            exp_id,
            [
                ParamFilter("learning_rate", FilterOp.LT, 1e-3),
                ParamFilter("optimizer", FilterOp.EQ, "adamw"),
            ],
        )
        await tracker.set_span_id(run_id, "trace-abc-123")
        assert await tracker.get_span_id(run_id) == "trace-abc-123"

        print(f"experiment  {experiment.name} ({experiment.id})  config={experiment.config}")
        print(f"runs        {len(runs)} in this experiment, in {db}")
        print(f"run         {run_id}  status={status.value}")
        print("params      " + ", ".join(f"{k}={v!r}" for k, v in params.items()))
        print("loss curve")
        for point in await tracker.get_metrics(run_id, "loss"):
            bar = "#" * round(point.value * 40)
            print(f"  step {point.step:>2}  {point.value:.4f}  {bar}")
        print(f"artifact    model.safetensors  sha256={digest}")
        print(f"filtered    {len(best)} run(s) with learning_rate < 1e-3 and optimizer == 'adamw'")
        print(f"span id     {await tracker.get_span_id(run_id)}")


def cli() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", default="experiments.db", help="SQLite file (default: %(default)s)")
    parser.add_argument("--verbose", action="store_true", help="print every step")
    args = parser.parse_args()
    asyncio.run(main(args.db, args.verbose))


if __name__ == "__main__":
    cli()
