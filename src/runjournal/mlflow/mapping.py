"""How runjournal's values map to MLflow's and back: params, statuses, timestamps, run views.

Pure: no MLflow import, no I/O. The MLflow face (``runjournal server``) and
``import-mlflow`` use these, so that both speak the same mapping:

- **Params** arrive from MLflow as strings (the client sends ``str(v)``). A string
  ``s`` is stored as the typed value ``v`` (an int, a float or a bool) only when
  ``str(v) == s`` exactly, otherwise as the string itself: ``"0.001"`` becomes
  ``0.001`` and ``"32"`` becomes ``32``, so that runjournal's numeric filters
  (``lr<1e-3``) work on them, while ``"1e-3"``, ``"007"`` and ``"None"`` stay
  strings. Either way :func:`param_to_mlflow` gives back exactly the string sent.
- **Statuses**: RUNNING ↔ RUNNING, FINISHED → SUCCESS, FAILED ↔ FAILED,
  KILLED ↔ CANCELLED, SCHEDULED ↔ PENDING.
- **Times**: MLflow's int64 epoch milliseconds ↔ runjournal's float seconds;
  milliseconds go to seconds and back without loss.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from typing import Any

from runjournal.mlflow.search import SearchRun
from runjournal.model import MetricPoint, Run, RunStatus

__all__ = [
    "latest_point",
    "lifecycle_stage",
    "ms_to_seconds",
    "param_from_mlflow",
    "param_to_mlflow",
    "search_run",
    "seconds_to_ms",
    "status_from_mlflow",
    "status_to_mlflow",
]

_INT64 = (-(2**63), 2**63 - 1)


def param_from_mlflow(text: str) -> bool | int | float | str:
    """The value to store for an MLflow param string: typed only if it prints back as ``text``."""
    if type(text) is not str:
        raise TypeError(f"an MLflow param value is a str, not {type(text).__name__}")
    if text == "True":
        return True
    if text == "False":
        return False
    try:
        number = int(text)
    except ValueError:
        pass
    else:
        if str(number) == text and _INT64[0] <= number <= _INT64[1]:
            return number
        return text
    try:
        real = float(text)
    except ValueError:
        return text
    return real if str(real) == text else text


def param_to_mlflow(value: Any) -> str:
    """The string MLflow shows for a stored param: ``str(value)``, as the MLflow client sends it."""
    return str(value)


_FROM_MLFLOW = {
    "RUNNING": RunStatus.RUNNING,
    "FINISHED": RunStatus.SUCCESS,
    "FAILED": RunStatus.FAILED,
    "KILLED": RunStatus.CANCELLED,
    "SCHEDULED": RunStatus.PENDING,
}
_TO_MLFLOW = {status: name for name, status in _FROM_MLFLOW.items()}


def status_from_mlflow(name: str) -> RunStatus:
    """runjournal's status for an MLflow run status name; ``ValueError`` naming the choices."""
    status = _FROM_MLFLOW.get(name) if type(name) is str else None
    if status is None:
        raise ValueError(
            f"unknown MLflow run status {name!r}: use RUNNING, SCHEDULED, FINISHED, FAILED "
            "or KILLED"
        )
    return status


def status_to_mlflow(status: RunStatus) -> str:
    """MLflow's run status name for a runjournal status."""
    return _TO_MLFLOW[RunStatus(status)]


def ms_to_seconds(ms: int) -> float:
    """Epoch milliseconds as epoch seconds; :func:`seconds_to_ms` gives ``ms`` back exactly."""
    if type(ms) is not int:
        raise TypeError(f"an MLflow timestamp is an int of milliseconds, not {type(ms).__name__}")
    return ms / 1000


def seconds_to_ms(seconds: float) -> int:
    """Epoch seconds as MLflow's epoch milliseconds (rounded to the nearest one)."""
    if not math.isfinite(seconds):
        raise ValueError(f"a timestamp must be finite, not {seconds}")
    return round(seconds * 1000)


def latest_point(points: Iterable[MetricPoint]) -> MetricPoint | None:
    """The point MLflow shows as a metric's value: the highest step, then the newest timestamp.

    Among points equal in both, the last one logged. None for no points.
    """
    best: MetricPoint | None = None
    for point in points:
        if best is None or (point.step, point.timestamp) >= (best.step, best.timestamp):
            best = point
    return best


def lifecycle_stage(run: Run) -> str:
    """MLflow's ``lifecycle_stage``: ``"deleted"`` for a hidden run, else ``"active"``."""
    return "deleted" if run.hidden else "active"


def search_run(run: Run, metrics: Mapping[str, float], *, artifact_uri: str = "") -> SearchRun:
    """The run as MLflow's search sees it, with ``metrics`` the latest value per key."""
    tags = run.tags
    return SearchRun(
        run_id=run.id,
        run_name=run.name if run.name is not None else tags.get("mlflow.runName", ""),
        status=status_to_mlflow(run.status),
        user_id=tags.get("mlflow.user", tags.get("rj.user", "")),
        artifact_uri=artifact_uri,
        lifecycle_stage=lifecycle_stage(run),
        start_time=None if run.start_time is None else seconds_to_ms(run.start_time),
        end_time=None if run.end_time is None else seconds_to_ms(run.end_time),
        params={key: param_to_mlflow(value) for key, value in run.params.items()},
        tags=dict(tags),
        metrics=dict(metrics),
    )
