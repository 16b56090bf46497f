"""The benchmark suite of runjournal (issue 5): one harness, one module per case.

Run it with ``python -m benchmarks [--quick] [--only caller,e2e,...]`` (``make bench``). Each
case prints a table of its measurements beside its target and the baseline measured in the
same run, and the whole run is appended to ``benchmarks/RESULTS.md``.

- ``_harness``: the shared machinery (targets, tables, machine info, workloads, RESULTS.md).
- ``case_*``: one module per case of the issue, each exposing ``CASE``.
- ``peers``: the other trackers (trackio, MLflow, wandb), run in their own interpreter.
"""
