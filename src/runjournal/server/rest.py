"""MLflow's tracking REST API (``/api/2.0/mlflow/...``) over one :class:`~runjournal.Tracker`.

A plain ASGI app, so that a request costs little more than its own work: the
MLflow client's sync ``log_metric`` waits for each answer. The protocol as the
real client speaks it is in ``shared/reference/mlflow-rest.md``:

- Success is exactly 200 with a JSON object. Every error is a 4xx with
  ``{"error_code", "message"}`` (a 5xx would make the client retry for minutes);
  only a fault of the server itself is a 500.
- Ids are strings, times are int64 milliseconds, NaN and ±inf are the strings
  ``"NaN"``, ``"Infinity"`` and ``"-Infinity"``.
- **A 200 means committed**: a request that writes queues its events, then waits
  for their commit (``Tracker.committed``). Concurrent requests share a commit
  (the writer takes everything queued into one transaction), so async clients
  that send ten batches at once pay for one commit, not ten; yet each request
  hears only of its own events that the store refused.
- A store that cannot write (a full disk, a lock held past its timeout) answers
  503 ``TEMPORARILY_UNAVAILABLE``, which the client retries: the events are kept
  and committed once the store accepts writes again (so a retried metric point
  may then be stored twice). A fault of the server itself is 500
  ``INTERNAL_ERROR``. Both come with MLflow's JSON error body.

The mapping: an MLflow experiment is a runjournal experiment, and ``"0"`` is the
oldest experiment called ``Default`` (created on first use). A run's
``artifact_uri`` is ``mlflow-artifacts:/<experiment>/<run>/artifacts``; its
status maps RUNNING ↔ RUNNING, FINISHED ↔ SUCCESS, FAILED ↔ FAILED, KILLED ↔
CANCELLED and SCHEDULED ↔ PENDING. Params arrive as strings and are kept as
those strings, so the client reads back what it sent; once logged, a different
value is refused (400 ``INVALID_PARAMETER_VALUE``).
"""

from __future__ import annotations

import asyncio
import logging
import math
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, TypeVar
from urllib.parse import parse_qs

import msgspec

from runjournal.errors import (
    ArtifactNotFound,
    ExperimentNotFound,
    InvalidStateError,
    RejectedWrites,
    RunNotFound,
    StoreError,
)
from runjournal.mlflow.mapping import (
    lifecycle_stage,
    ms_to_seconds,
    param_from_mlflow,
    param_to_mlflow,
    search_run,
    seconds_to_ms,
    status_from_mlflow,
    status_to_mlflow,
)
from runjournal.mlflow.search import (
    SearchError,
    SearchExperiment,
    decode_page_token,
    encode_page_token,
    filter_experiments,
    filter_runs,
    sort_experiments,
    sort_runs,
)
from runjournal.model import (
    Experiment,
    Run,
    RunStatus,
    RunView,
    check_key,
    check_name,
    check_text,
)
from runjournal.tracker import Tracker

__all__ = [
    "API_PREFIXES",
    "DEFAULT_EXPERIMENT",
    "MAX_BODY",
    "RUN_NAME_TAG",
    "Handler",
    "MlflowApi",
    "MlflowError",
    "artifact_uri",
    "send_json",
]

# MLflow 3's LoggedModel API (``logged-models/search`` aside, which answers no models).
# 501 NOT_IMPLEMENTED, which the client does not retry; every other unknown endpoint
# stays 404 ENDPOINT_NOT_FOUND, the code on which the client falls back to an older API
# (traces v3 to v2, for one).
_NOT_IMPLEMENTED = ("logged-models", "runs/outputs")

API_PREFIXES = ("/api/2.0/mlflow/", "/ajax-api/2.0/mlflow/")
"""Where the tracking API is served; the web UI of MLflow uses the ``ajax-api`` twin."""

DEFAULT_EXPERIMENT = "Default"
"""The name of the experiment that MLflow calls ``"0"``."""

MAX_BODY = 16 * 1024 * 1024
"""The largest JSON body taken (MLflow's own limit for a batch is 1 MB)."""

RUN_NAME_TAG = "mlflow.runName"
"""The tag that MLflow keeps in step with a run's name."""
_USER_TAG = "mlflow.user"

_logger = logging.getLogger("runjournal.server")

_VIEWS = {"ACTIVE_ONLY": RunView.ACTIVE, "DELETED_ONLY": RunView.HIDDEN, "ALL": RunView.ALL}
_NONFINITE = {"NaN": math.nan, "Infinity": math.inf, "-Infinity": -math.inf}
_encode = msgspec.json.Encoder().encode
_decode = msgspec.json.Decoder().decode

T = TypeVar("T")
Handler = Callable[[dict[str, Any]], Awaitable[dict[str, Any]]]
"""An endpoint: the request's message in, the answer's JSON object out."""


class MlflowError(Exception):
    """An answer in MLflow's error shape: an HTTP status, an ``error_code`` and a message."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message


def _invalid(message: str) -> MlflowError:
    return MlflowError(400, "INVALID_PARAMETER_VALUE", message)


def _missing(message: str) -> MlflowError:
    return MlflowError(404, "RESOURCE_DOES_NOT_EXIST", message)


async def send_json(send: Any, status: int, body: Mapping[str, Any]) -> None:
    """Answer with ``body`` as JSON."""
    data = _encode(body)
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(data)).encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": data})


def artifact_uri(experiment_id: str, run_id: str) -> str:
    """Where the MLflow client sends a run's artifacts: this server's artifact proxy."""
    return f"mlflow-artifacts:/{experiment_id}/{run_id}/artifacts"


def _ms(seconds: float | None) -> int | None:
    return None if seconds is None else seconds_to_ms(seconds)


def _float_out(value: float) -> float | str:
    if math.isfinite(value):
        return value
    return "NaN" if math.isnan(value) else ("Infinity" if value > 0 else "-Infinity")


def _field(request: Mapping[str, Any], name: str, *, required: bool = True) -> Any:
    value = request.get(name)
    if value is None and required:
        raise _invalid(f"Missing value for required parameter '{name}'.")
    return value


def _text(request: Mapping[str, Any], name: str) -> str:
    value = _field(request, name)
    if type(value) is not str:
        raise _invalid(f"'{name}' must be a string, got {type(value).__name__}")
    return value


def _run_id(request: Mapping[str, Any]) -> str:
    value = request.get("run_id") or request.get("run_uuid")
    if type(value) is not str or not value:
        raise _invalid("Missing value for required parameter 'run_id'.")
    return value


def _int(value: Any, name: str) -> int:
    if type(value) is int:
        return value
    if type(value) is str:
        try:
            return int(value)
        except ValueError:
            pass
    raise _invalid(f"'{name}' must be an integer, got {value!r}")


def _metric_value(value: Any) -> float:
    if type(value) is str and value in _NONFINITE:
        return _NONFINITE[value]
    if type(value) in (int, float):
        return float(value)
    raise _invalid(f"a metric value must be a number, 'NaN', 'Infinity' or '-Infinity': {value!r}")


def _pairs(items: Any, what: str) -> dict[str, str]:
    """``[{"key", "value"}, ...]`` as a dict (a later key wins), with string values."""
    if items is None:
        return {}
    if not isinstance(items, list):
        raise _invalid(f"'{what}' must be a list of {{key, value}}")
    out: dict[str, str] = {}
    for item in items:
        if not isinstance(item, dict) or type(item.get("key")) is not str:
            raise _invalid(f"each of '{what}' needs a string 'key': {item!r}")
        value = item.get("value", "")
        if type(value) is not str:
            raise _invalid(f"{what} {item['key']!r}: the value must be a string, got {value!r}")
        out[item["key"]] = value
    return out


class MlflowApi:
    """The ASGI app of the tracking API; every write goes through ``tracker``."""

    def __init__(self, tracker: Tracker) -> None:
        self.tracker = tracker
        # One server process: these locks make check-then-write steps atomic among requests.
        self._experiment_lock = asyncio.Lock()
        self._param_lock = asyncio.Lock()
        self._default_id: str | None = None
        self.routes: dict[tuple[str, str], Handler] = {
            ("GET", "experiments/get-by-name"): self.get_experiment_by_name,
            ("GET", "experiments/get"): self.get_experiment,
            ("POST", "experiments/create"): self.create_experiment,
            ("POST", "experiments/search"): self.search_experiments,
            ("GET", "experiments/search"): self.search_experiments,
            ("POST", "experiments/set-experiment-tag"): self.set_experiment_tag,
            ("POST", "experiments/update"): self.update_experiment,
            ("POST", "experiments/delete"): self.delete_experiment,
            ("POST", "experiments/restore"): self.restore_experiment,
            ("POST", "runs/create"): self.create_run,
            ("GET", "runs/get"): self.get_run,
            ("POST", "runs/update"): self.update_run,
            ("POST", "runs/search"): self.search_runs,
            ("POST", "runs/delete"): self.delete_run,
            ("POST", "runs/restore"): self.restore_run,
            ("POST", "runs/log-parameter"): self.log_parameter,
            ("POST", "runs/log-metric"): self.log_metric,
            ("POST", "runs/set-tag"): self.set_tag,
            ("POST", "runs/delete-tag"): self.delete_tag,
            ("POST", "runs/log-batch"): self.log_batch,
            ("POST", "runs/log-inputs"): self.log_inputs,
            ("GET", "metrics/get-history"): self.get_metric_history,
            ("POST", "logged-models/search"): self.search_logged_models,
        }

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        path: str = scope["path"]
        prefix = next(p for p in API_PREFIXES if path.startswith(p))
        endpoint = path[len(prefix) :]
        method = scope["method"]
        handler = self.routes.get((method, endpoint))
        try:
            if handler is None:
                known = any(e == endpoint for _, e in self.routes)
                if known:
                    raise MlflowError(405, "BAD_REQUEST", f"{method} is not served on {path}")
                if endpoint.startswith(_NOT_IMPLEMENTED):
                    raise MlflowError(
                        501,
                        "NOT_IMPLEMENTED",
                        f"{method} {path}: runjournal server does not store MLflow logged "
                        "models (log the model's files as run artifacts instead)",
                    )
                raise MlflowError(404, "ENDPOINT_NOT_FOUND", f"no such endpoint: {path}")
            request = _query(scope) if method == "GET" else await _json_body(scope, receive, method)
            answer = await handler(request)
        except MlflowError as exc:
            await send_json(send, exc.status, {"error_code": exc.code, "message": exc.message})
            return
        except (RunNotFound, ExperimentNotFound, ArtifactNotFound) as exc:
            await send_json(
                send, 404, {"error_code": "RESOURCE_DOES_NOT_EXIST", "message": str(exc)}
            )
            return
        except InvalidStateError as exc:
            await send_json(send, 400, {"error_code": "INVALID_STATE", "message": str(exc)})
            return
        except (ValueError, TypeError, RejectedWrites) as exc:
            await send_json(
                send, 400, {"error_code": "INVALID_PARAMETER_VALUE", "message": str(exc)}
            )
            return
        except StoreError as exc:
            if exc.transient:
                _logger.warning("runjournal server: %s %s: %s", method, path, exc)
                body = {"error_code": "TEMPORARILY_UNAVAILABLE", "message": str(exc)}
                await send_json(send, 503, body)
            else:
                _logger.error("runjournal server: %s %s: %s", method, path, exc)
                await send_json(send, 500, {"error_code": "INTERNAL_ERROR", "message": str(exc)})
            return
        except Exception as exc:
            _logger.exception("runjournal server: %s %s failed", method, path)
            message = f"{type(exc).__name__}: {exc}"
            await send_json(send, 500, {"error_code": "INTERNAL_ERROR", "message": message})
            return
        await send_json(send, 200, answer)

    async def _write(self, work: Callable[[], Awaitable[T]]) -> T:
        """Run ``work``, which logs through the tracker, and return once its events are committed.

        A 200 means committed. ``Tracker.committed`` reports to this request only
        the rejections of its own events (``RejectedWrites``, a 400), not those of
        another request that shared the commit.
        """
        results: list[T] = []

        async def run() -> None:
            results.append(await work())

        await self.tracker.committed(run)
        return results[0]

    # -- experiments ---------------------------------------------------------------------------
    async def experiment_id(self, given: Any) -> str:
        """The runjournal id of an MLflow experiment id (``"0"``: Default, created if missing)."""
        if type(given) is not str or not given:
            raise _invalid(f"an experiment id must be a non-empty string, got {given!r}")
        if given != "0":
            return given
        if self._default_id is None:
            async with self._experiment_lock:
                if self._default_id is None:
                    self._default_id = await self._write(
                        lambda: self.tracker.ensure_experiment(DEFAULT_EXPERIMENT)
                    )
        return self._default_id

    async def _experiment(self, given: Any) -> Experiment:
        try:
            return await self.tracker.get_experiment(await self.experiment_id(given))
        except ExperimentNotFound:
            raise _missing(f"No Experiment with id={given} exists") from None

    async def get_experiment(self, request: dict[str, Any]) -> dict[str, Any]:
        """``experiments/get``."""
        experiment = await self._experiment(_field(request, "experiment_id"))
        return {"experiment": _experiment_json(experiment)}

    async def get_experiment_by_name(self, request: dict[str, Any]) -> dict[str, Any]:
        """``experiments/get-by-name``: the oldest of that name."""
        name = _text(request, "experiment_name")
        found = await self.tracker.find_experiment(name)
        if found is None and name == DEFAULT_EXPERIMENT:
            found = await self.tracker.get_experiment(await self.experiment_id("0"))
        if found is None:
            raise _missing(f"Could not find experiment with name '{name}'")
        return {"experiment": _experiment_json(found)}

    async def create_experiment(self, request: dict[str, Any]) -> dict[str, Any]:
        """``experiments/create``: a duplicate name is 400 RESOURCE_ALREADY_EXISTS."""
        name = _text(request, "name")
        tags = _pairs(request.get("tags"), "tags")
        async with self._experiment_lock:
            if await self.tracker.find_experiment(name) is not None:
                raise MlflowError(
                    400,
                    "RESOURCE_ALREADY_EXISTS",
                    f"Experiment '{name}' already exists.",
                )
            experiment_id = await self._write(
                lambda: self.tracker.ensure_experiment(name, tags=tags)
            )
        return {"experiment_id": experiment_id}

    async def search_experiments(self, request: dict[str, Any]) -> dict[str, Any]:
        """``experiments/search``: MLflow's experiment filter (``name``, the times, ``tags.<key>``)
        and ``order_by``, newest first by default, paged. Deleted experiments are gone from
        runjournal, so ``DELETED_ONLY`` finds none."""
        view = request.get("view_type") or "ACTIVE_ONLY"
        if view not in _VIEWS:
            raise _invalid(f"view_type must be ACTIVE_ONLY, DELETED_ONLY or ALL: {view!r}")
        order_by = request.get("order_by") or []
        if not isinstance(order_by, list):
            order_by = [order_by]
        experiments = [] if view == "DELETED_ONLY" else await self.tracker.list_experiments()
        views = [
            SearchExperiment(
                experiment_id=e.id,
                name=e.name,
                creation_time=seconds_to_ms(e.created_at),
                last_update_time=seconds_to_ms(e.updated_at),
                tags=e.tags,
            )
            for e in experiments
        ]
        try:
            found = sort_experiments(filter_experiments(views, request.get("filter")), order_by)
        except SearchError as exc:
            raise _invalid(str(exc)) from None
        by_id = {e.id: e for e in experiments}
        page, token = _page(found, request)
        answer: dict[str, Any] = {
            "experiments": [_experiment_json(by_id[e.experiment_id]) for e in page]
        }
        if token is not None:
            answer["next_page_token"] = token
        return answer

    async def set_experiment_tag(self, request: dict[str, Any]) -> dict[str, Any]:
        """``experiments/set-experiment-tag``: a tag on the experiment (a later value wins)."""
        experiment = await self._experiment(_field(request, "experiment_id"))
        tags = _pairs([request], "tag")
        await self._write(lambda: self.tracker.update_experiment(experiment.id, tags=tags))
        return {}

    async def update_experiment(self, request: dict[str, Any]) -> dict[str, Any]:
        """``experiments/update``: rename; a name another live experiment has is 400."""
        experiment = await self._experiment(_field(request, "experiment_id"))
        name = request.get("new_name")
        if name is None or name == experiment.name:
            return {}
        if type(name) is not str or not name:
            raise _invalid(f"'new_name' must be a non-empty string, got {name!r}")
        async with self._experiment_lock:
            other = await self.tracker.find_experiment(name)
            if other is not None and other.id != experiment.id:
                raise MlflowError(
                    400, "RESOURCE_ALREADY_EXISTS", f"Experiment '{name}' already exists."
                )
            await self._write(lambda: self.tracker.update_experiment(experiment.id, name=name))
        return {}

    async def delete_experiment(self, request: dict[str, Any]) -> dict[str, Any]:
        """``experiments/delete``: refused. MLflow's is a soft delete that ``restore`` undoes;
        runjournal's ``delete_experiment`` is a tombstone that erases the runs for good, and
        this server does not turn one into the other."""
        experiment = await self._experiment(_field(request, "experiment_id"))
        raise MlflowError(
            400,
            "INVALID_STATE",
            f"experiment {experiment.id}: runjournal server does not delete experiments "
            "(runjournal's delete cannot be restored); delete its runs (soft, restorable), or "
            "use `runjournal experiments delete` deliberately",
        )

    async def restore_experiment(self, request: dict[str, Any]) -> dict[str, Any]:
        """``experiments/restore``: every experiment here is active, so a live one is a no-op."""
        await self._experiment(_field(request, "experiment_id"))
        return {}

    # -- runs ----------------------------------------------------------------------------------
    async def create_run(self, request: dict[str, Any]) -> dict[str, Any]:
        """``runs/create``: a RUNNING run, named by ``run_name`` or the ``mlflow.runName`` tag."""
        experiment = await self._experiment(request.get("experiment_id") or "0")
        tags = _pairs(request.get("tags"), "tags")
        name = request.get("run_name") or tags.get(RUN_NAME_TAG)
        if name is not None and type(name) is not str:
            raise _invalid(f"'run_name' must be a string, got {name!r}")
        if RUN_NAME_TAG in tags and request.get("run_name") and tags[RUN_NAME_TAG] != name:
            raise _invalid(
                f"run_name {name!r} and the tag {RUN_NAME_TAG}={tags[RUN_NAME_TAG]!r} differ"
            )
        if name:
            tags[RUN_NAME_TAG] = name
        user = request.get("user_id")
        if type(user) is str and user and _USER_TAG not in tags:
            tags[_USER_TAG] = user
        started = request.get("start_time")
        at = None if started is None else ms_to_seconds(_int(started, "start_time"))

        async def create() -> str:
            run_id = await self.tracker.create_run(
                experiment.id, name=name or None, tags=tags, at=at
            )
            await self.tracker.start_run(run_id, at=at)
            return run_id

        run_id = await self._write(create)
        return {"run": await self._run_json(await self.tracker.get_run(run_id))}

    async def _run(self, request: Mapping[str, Any]) -> Run:
        run_id = _run_id(request)
        try:
            return await self.tracker.get_run(run_id)
        except RunNotFound:
            raise _missing(f"Run '{run_id}' not found") from None

    async def get_run(self, request: dict[str, Any]) -> dict[str, Any]:
        """``runs/get``: info, params, tags and the latest value of each metric."""
        return {"run": await self._run_json(await self._run(request))}

    async def update_run(self, request: dict[str, Any]) -> dict[str, Any]:
        """``runs/update``: end a run, resume an ended one (status RUNNING), or rename it."""
        run = await self._run(request)
        status = request.get("status")
        ended = request.get("end_time")
        at = None if ended is None else ms_to_seconds(_int(ended, "end_time"))
        new_name = request.get("run_name")
        if new_name is not None and (type(new_name) is not str or not new_name):
            raise _invalid(f"'run_name' must be a non-empty string, got {new_name!r}")

        async def update() -> None:
            if status is not None:
                await self._move(run, status, at)
            if new_name is not None:
                await self._rename(run, new_name)

        await self._write(update)
        return {"run_info": _info(await self.tracker.get_run(run.id))}

    async def _rename(self, run: Run, name: str) -> None:
        """The run's name and its ``mlflow.runName`` tag, kept in step."""
        if run.name != name:
            await self.tracker.rename_run(run.id, name)
        if run.tags.get(RUN_NAME_TAG) != name:
            await self.tracker.set_tag(run.id, RUN_NAME_TAG, name)

    async def _move(self, run: Run, status: Any, at: float | None) -> None:
        if status == status_to_mlflow(run.status):
            return
        if status == "RUNNING":
            if run.status is RunStatus.PENDING:
                await self.tracker.start_run(run.id)
                return
            await self.tracker.resume_run(run.id)
            return
        final = status_from_mlflow(status)
        if final is RunStatus.PENDING:
            raise _invalid(f"run {run.id} has started: it cannot be SCHEDULED again")
        if run.status is RunStatus.PENDING and final is not RunStatus.CANCELLED:
            await self.tracker.start_run(run.id)
        await self.tracker.complete_run(run.id, final, at=at)

    async def search_runs(self, request: dict[str, Any]) -> dict[str, Any]:
        """``runs/search``: MLflow's filter grammar and ``order_by`` (``runjournal.mlflow.search``),
        newest first by default, paged; ``run_view_type`` picks active, deleted (hidden) or all."""
        ids = request.get("experiment_ids") or []
        if not isinstance(ids, list):
            ids = [ids]  # a GET's single value
        view = _VIEWS.get(request.get("run_view_type") or "ACTIVE_ONLY")
        if view is None:
            raise _invalid(
                f"run_view_type must be ACTIVE_ONLY, DELETED_ONLY or ALL: {request['run_view_type']!r}"
            )
        order_by = request.get("order_by") or []
        if not isinstance(order_by, list):
            order_by = [order_by]
        runs: list[Run] = []
        for given in ids:
            runs.extend(await self.tracker.list_runs(await self.experiment_id(given), view=view))
        summaries = await self.tracker.metric_summaries([r.id for r in runs])
        by_id = {r.id: r for r in runs}
        views = [
            search_run(
                run,
                {k: b.last for k, b in summaries.get(run.id, {}).items()},
                artifact_uri=artifact_uri(run.experiment_id, run.id),
            )
            for run in runs
        ]
        try:
            ordered = sort_runs(filter_runs(views, request.get("filter") or None), order_by)
        except SearchError as exc:
            raise _invalid(str(exc)) from None
        page, token = _page(ordered, request)
        answer: dict[str, Any] = {"runs": [await self._run_json(by_id[r.run_id]) for r in page]}
        if token is not None:
            answer["next_page_token"] = token
        return answer

    async def delete_run(self, request: dict[str, Any]) -> dict[str, Any]:
        """``runs/delete``: MLflow's soft delete, runjournal's hide (``restore`` undoes it)."""
        run = await self._run(request)
        await self._write(lambda: self.tracker.hide_run(run.id))
        return {}

    async def restore_run(self, request: dict[str, Any]) -> dict[str, Any]:
        """``runs/restore``: show a deleted (hidden) run again."""
        run = await self._run(request)
        await self._write(lambda: self.tracker.restore_run(run.id))
        return {}

    async def _run_json(self, run: Run) -> dict[str, Any]:
        latest = await self._latest_metrics(run.id)
        return {
            "info": _info(run),
            "data": {
                "metrics": latest,
                "params": [{"key": k, "value": param_to_mlflow(v)} for k, v in run.params.items()],
                "tags": [{"key": k, "value": v} for k, v in run.tags.items()],
            },
        }

    async def _latest_metrics(self, run_id: str) -> list[dict[str, Any]]:
        """The latest point of each metric: its last step, and the last logged at that step."""
        summaries = (await self.tracker.metric_summaries([run_id])).get(run_id, {})
        out = []
        for key, summary in sorted(summaries.items()):
            step = summary.last_step
            points = await self.tracker.get_metrics(run_id, key, start=step, end=step)
            point = max(points, key=lambda p: p.timestamp)
            out.append(
                {
                    "key": key,
                    "value": _float_out(point.value),
                    "timestamp": _ms(point.timestamp),
                    "step": point.step,
                }
            )
        return out

    # -- logging -------------------------------------------------------------------------------
    # The logging endpoints check everything first, then queue all of a request's events
    # with the tracker's *_nowait methods between two awaits: so its commit reports to it
    # exactly its own events, and a bad item queues nothing.
    async def log_parameter(self, request: dict[str, Any]) -> dict[str, Any]:
        """``runs/log-parameter``."""
        run_id = _run_id(request)
        key = _text(request, "key")
        value = request.get("value")
        if type(value) is not str:
            raise _invalid(f"param {key!r}: the value must be a string, got {value!r}")
        await self._log(run_id, {key: value}, {}, [])
        return {}

    async def log_metric(self, request: dict[str, Any]) -> dict[str, Any]:
        """``runs/log-metric``."""
        await self._log(_run_id(request), {}, {}, _points([request]))
        return {}

    async def set_tag(self, request: dict[str, Any]) -> dict[str, Any]:
        """``runs/set-tag``; setting ``mlflow.runName`` renames the run too."""
        await self._log(_run_id(request), {}, _pairs([request], "tag"), [])
        return {}

    async def delete_tag(self, request: dict[str, Any]) -> dict[str, Any]:
        """``runs/delete-tag``: a tag the run lacks is 404, as in MLflow."""
        run = await self._run(request)
        key = _text(request, "key")
        if key not in run.tags:
            raise _missing(f"No tag with name: {key} in run with id {run.id}")
        await self._write(lambda: self.tracker.delete_tag(run.id, key))
        return {}

    async def log_batch(self, request: dict[str, Any]) -> dict[str, Any]:
        """``runs/log-batch``: params, tags and metrics, all checked before any is queued."""
        run_id = _run_id(request)
        params = _pairs(request.get("params"), "params")
        tags = _pairs(request.get("tags"), "tags")
        metrics = request.get("metrics") or []
        if not isinstance(metrics, list):
            raise _invalid("'metrics' must be a list")
        await self._log(run_id, params, tags, _points(metrics))
        return {}

    async def _log(
        self,
        run_id: str,
        params: dict[str, str],
        tags: dict[str, str],
        points: list[tuple[str, int, float, float]],
    ) -> None:
        """Check, queue and commit one request's params, tags and metric points."""
        for key in params:
            check_key(key, "param key")
        for key, value in tags.items():
            check_key(key, "tag key")
            check_text(value, "tag value")
        for key, *_ in points:
            check_key(key, "metric key")
        name = tags.get(RUN_NAME_TAG)
        if name is not None:
            check_name(name, "run name")
        tracker = self.tracker
        run: Run | None = None
        if params or name is not None:
            run = await self._run({"run_id": run_id})
        locked = False
        if params:
            # Held from the check until the params are queued: the next request's check
            # reads after this commit (get_params waits for what is queued).
            await self._param_lock.acquire()
            locked = True
        try:
            fresh = await self._fresh_params(run_id, params) if params else {}

            async def queue() -> None:
                nonlocal locked
                try:
                    if fresh:
                        tracker.log_params_nowait(run_id, fresh)
                    for key, value in tags.items():
                        tracker.set_tag_nowait(run_id, key, value)
                    for metric, step, number, seconds in points:
                        tracker.log_metric_nowait(run_id, metric, step, number, timestamp=seconds)
                finally:
                    if locked:
                        self._param_lock.release()
                        locked = False

            await self._write(queue)
        finally:
            if locked:
                self._param_lock.release()
        if name is not None and run is not None and run.name != name:
            await self._write(lambda: tracker.rename_run(run_id, name))

    async def _fresh_params(self, run_id: str, params: dict[str, str]) -> dict[str, Any]:
        """The params not logged yet; the same value again is fine, a different one is 400."""
        logged = await self.tracker.get_params(run_id)
        for key, value in params.items():
            if key in logged and param_to_mlflow(logged[key]) != value:
                raise _invalid(
                    f"Changing param values is not allowed. Param with key='{key}' was already "
                    f"logged with value='{param_to_mlflow(logged[key])}' for run ID='{run_id}'. "
                    f"Attempted logging new value '{value}'."
                )
        return {k: param_from_mlflow(v) for k, v in params.items() if k not in logged}

    async def log_inputs(self, request: dict[str, Any]) -> dict[str, Any]:
        """``runs/log-inputs``: datasets are not tracked here; the run must exist."""
        await self._run(request)
        if request.get("datasets"):
            raise _invalid("dataset inputs are not stored by runjournal")
        return {}

    async def get_metric_history(self, request: dict[str, Any]) -> dict[str, Any]:
        """``metrics/get-history``: the whole series by step, in pages of ``max_results``."""
        run = await self._run(request)
        key = _text(request, "metric_key")
        points = await self.tracker.get_metrics(run.id, key)
        page, token = _page(points, request, default=25_000)
        answer: dict[str, Any] = {
            "metrics": [
                {
                    "key": key,
                    "value": _float_out(p.value),
                    "timestamp": _ms(p.timestamp),
                    "step": p.step,
                }
                for p in page
            ]
        }
        if token is not None:
            answer["next_page_token"] = token
        return answer

    async def search_logged_models(self, request: dict[str, Any]) -> dict[str, Any]:
        """``logged-models/search``: there are none (the client asks before every download)."""
        del request
        return {"models": []}


def _points(items: list[Any]) -> list[tuple[str, int, float, float]]:
    """Metric items as ``(key, step, value, seconds)``, all checked before any is logged."""
    points = []
    for item in items:
        if not isinstance(item, dict):
            raise _invalid(f"a metric must be an object, got {item!r}")
        key = _text(item, "key")
        value = _metric_value(item.get("value"))
        step = _int(item.get("step", 0), "step")
        if step < 0:
            raise _invalid(f"metric {key!r}: runjournal takes steps >= 0, got {step}")
        stamp = _int(_field(item, "timestamp"), "timestamp")
        points.append((key, step, value, ms_to_seconds(stamp)))
    return points


def _info(run: Run) -> dict[str, Any]:
    info: dict[str, Any] = {
        "run_id": run.id,
        "run_uuid": run.id,
        "run_name": run.tags.get(RUN_NAME_TAG, run.name or ""),
        "experiment_id": run.experiment_id,
        "user_id": run.tags.get(_USER_TAG, ""),
        "status": status_to_mlflow(run.status),
        "artifact_uri": artifact_uri(run.experiment_id, run.id),
        "lifecycle_stage": lifecycle_stage(run),
    }
    start = _ms(run.start_time if run.start_time is not None else run.created_at)
    info["start_time"] = start
    if run.end_time is not None:
        info["end_time"] = _ms(run.end_time)
    return info


def _experiment_json(experiment: Experiment) -> dict[str, Any]:
    return {
        "experiment_id": experiment.id,
        "name": experiment.name,
        "artifact_location": f"mlflow-artifacts:/{experiment.id}",
        "lifecycle_stage": "active",
        "creation_time": _ms(experiment.created_at),
        "last_update_time": _ms(experiment.updated_at),
        "tags": [{"key": k, "value": v} for k, v in experiment.tags.items()],
    }


def _page(
    items: list[T], request: Mapping[str, Any], default: int = 1000
) -> tuple[list[T], str | None]:
    """One page of ``items`` from ``page_token`` on, of ``max_results``, and the next token."""
    size = _int(request.get("max_results") or default, "max_results")
    if size < 1:
        raise _invalid(f"max_results must be at least 1, got {size}")
    token = request.get("page_token")
    try:
        offset = decode_page_token(token if type(token) is str else None)
    except SearchError as exc:
        raise _invalid(str(exc)) from None
    end = offset + size
    return items[offset:end], (encode_page_token(end) if end < len(items) else None)


def _query(scope: Any) -> dict[str, Any]:
    """A GET request's message from its query string: one value per name, lists kept as lists."""
    parsed = parse_qs(scope.get("query_string", b"").decode("latin-1"), keep_blank_values=True)
    return {k: (v[0] if len(v) == 1 else v) for k, v in parsed.items()}


async def _json_body(scope: Any, receive: Any, method: str) -> dict[str, Any]:
    headers = dict(scope["headers"])
    kind = headers.get(b"content-type", b"").split(b";")[0].strip().lower()
    chunks = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise MlflowError(400, "BAD_REQUEST", "the client went away")
        piece = message.get("body", b"")
        size += len(piece)
        if size > MAX_BODY:
            raise MlflowError(413, "BAD_REQUEST", f"the body is larger than {MAX_BODY} bytes")
        chunks.append(piece)
        if not message.get("more_body", False):
            break
    body = b"".join(chunks)
    if not body:
        return {}
    # A page of another site can post text/plain without asking: writes need JSON.
    if kind != b"application/json":
        raise MlflowError(415, "BAD_REQUEST", f"{method} needs Content-Type: application/json")
    try:
        decoded = _decode(body)
    except msgspec.DecodeError as exc:
        raise MlflowError(400, "MALFORMED_REQUEST", f"the body is not JSON: {exc}") from None
    if not isinstance(decoded, dict):
        raise MlflowError(400, "MALFORMED_REQUEST", "the body must be a JSON object")
    return decoded
