"""Speaking MLflow: its ``search_runs`` grammar (:mod:`.search`) and the value mapping (:mod:`.mapping`).

Pure: nothing here imports MLflow or does I/O. The MLflow-compatible server and
``runjournal import-mlflow`` build on these.
"""

from __future__ import annotations

__all__: list[str] = []
