"""Offline benchmarks of other experiment trackers ("peers"), for comparison with runjournal.

Each peer case logs the same workload -- one run, ``N`` points of key ``"loss"`` at steps
``0..N-1``, one logging call per point (or per batch, for MLflow's ``log_batch`` case) -- into a
private temporary directory, with telemetry and networking turned off.  It records:

* per-call latency (median, p99, p99.9, in microseconds), timed with ``time.perf_counter_ns``;
* end-to-end throughput: points / (time from the first call until the run is finished and its
  data is stored, as each peer defines "finished");
* bytes on disk per point in the peer's storage directory;
* how many points a fresh read through the peer's own reader returns.

Run every case, each in its own fresh subprocess, with::

    python -m benchmarks.peers --points 100000 --json OUT.json [--only trackio,mlflow,wandb]

The peers are not runjournal dependencies; install them in a separate environment (for example
``python3 -m venv .venv-peers && .venv-peers/bin/pip install mlflow trackio wandb``) and run the
command with that interpreter, or pass ``--python`` to choose the interpreter of the cases.
"""
