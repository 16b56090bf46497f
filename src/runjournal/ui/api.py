"""The JSON API: experiments, runs, series and artifacts, read through the store's query API.

Every handler reads the journal's head first and sends it as
``X-Journal-Position``: the data reflects at least that position, so a page
that subscribes to ``/api/events?after=P`` misses nothing (it may see an event
whose effect it already holds; the pages fetch new points by step, so that is
harmless). Errors are ``{"error": {"code", "message"}}`` (see :class:`ApiError`).
Only the public query API of :class:`~runjournal.stores.base.Store` is used, so
every store serves the same answers.
"""

from __future__ import annotations

import math
import re
import time
import unicodedata
from collections.abc import Awaitable, Callable
from typing import Annotated, Any, TypeVar
from urllib.parse import quote

import msgspec
from litestar import Request, Response, get
from litestar.datastructures import State
from litestar.params import FromPath, FromQuery, QueryParameter

from runjournal.errors import ArtifactNotFound, ExperimentNotFound, NotFoundError, RunNotFound
from runjournal.filter_syntax import parse_filter
from runjournal.filtering import check_order
from runjournal.model import ArtifactRef, MetricBucket, Run
from runjournal.stores.base import Store
from runjournal.ui.series import MAX_POINTS, MAX_RUNS, SeriesResponse, series_of

__all__ = [
    "POSITION_HEADER",
    "ApiError",
    "ArtifactOut",
    "ExperimentOut",
    "MetricSummary",
    "RunDetail",
    "RunOut",
    "RunPage",
    "api_routes",
    "bad_request",
    "get_artifact",
    "get_run",
    "get_series",
    "list_experiments",
    "list_runs",
    "not_found",
    "safe_filename",
]

POSITION_HEADER = "X-Journal-Position"
_SHA256 = re.compile(r"[0-9a-f]{64}")
_MAX_LIMIT = 1000
_T = TypeVar("_T")


class ApiError(Exception):
    """An error answer: ``status`` with ``{"error": {"code": code, "message": message}}``."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.position: int | None = None


def bad_request(message: str) -> ApiError:
    """A 400 for input the API cannot take."""
    return ApiError(400, "BAD_REQUEST", message)


def not_found(exc: NotFoundError) -> ApiError:
    """A 404 naming what was not found."""
    if isinstance(exc, RunNotFound):
        return ApiError(404, "RUN_NOT_FOUND", str(exc))
    if isinstance(exc, ExperimentNotFound):
        return ApiError(404, "EXPERIMENT_NOT_FOUND", str(exc))
    if isinstance(exc, ArtifactNotFound):
        return ApiError(404, "ARTIFACT_NOT_FOUND", str(exc))
    return ApiError(404, "NOT_FOUND", str(exc))


# -- bodies ----------------------------------------------------------------------------------
class ExperimentOut(msgspec.Struct):
    """An experiment, with how many runs it has."""

    id: str
    name: str
    description: str | None
    config: dict[str, Any] | None
    tags: dict[str, str]
    created_at: float
    updated_at: float
    run_count: int


class MetricSummary(msgspec.Struct):
    """A run's metric at a glance: the last point by step, the extremes and the count."""

    last: float | None
    last_step: int
    min: float | None
    max: float | None
    count: int


class RunOut(msgspec.Struct):
    """A run as the run table shows it."""

    id: str
    experiment_id: str
    name: str | None
    status: str
    created_at: float
    start_time: float | None
    end_time: float | None
    tags: dict[str, str]
    params: dict[str, Any]
    metrics: dict[str, MetricSummary]
    last_activity: float | None
    """When the run's last journal entry (a point, a param, a heartbeat, ...) was recorded."""
    stale_for: float | None
    """Seconds without activity of a RUNNING run silent for 5 minutes or more (its process most
    likely died); None otherwise. Pages show it as ``RUNNING (no activity for 12 min)``."""


class ArtifactOut(msgspec.Struct):
    """An artifact of a run; its bytes are at ``/api/artifacts/{sha256}``."""

    name: str
    sha256: str
    size_bytes: int
    created_at: float


class RunDetail(RunOut):
    """A run with its artifacts and span id."""

    artifacts: list[ArtifactOut]
    span_id: str | None


class RunPage(msgspec.Struct):
    """One page of runs; ``next`` is the cursor of the next page (None on the last)."""

    runs: list[RunOut]
    next: str | None
    total: int


# -- helpers ---------------------------------------------------------------------------------
def _store(state: State) -> Store:
    store: Store = state.store
    return store


async def _answer(store: Store, build: Callable[[], Awaitable[_T]]) -> Response[_T]:
    """``build()``'s body with the journal position it reflects (read first)."""
    position = await store.head()
    try:
        body = await build()
    except NotFoundError as exc:
        error = not_found(exc)
        error.position = position
        raise error from None
    except ApiError as error:
        error.position = position
        raise
    return Response(body, headers={POSITION_HEADER: str(position)})


def _finite(value: float | None) -> float | None:
    return value if value is not None and math.isfinite(value) else None


def _summary(bucket: MetricBucket) -> MetricSummary:
    return MetricSummary(
        last=_finite(bucket.last),
        last_step=bucket.last_step,
        min=bucket.min,
        max=bucket.max,
        count=bucket.count,
    )


def _run_out(run: Run, metrics: dict[str, MetricBucket]) -> RunOut:
    now = time.time()
    return RunOut(
        id=run.id,
        experiment_id=run.experiment_id,
        name=run.name,
        status=run.status.value,
        created_at=run.created_at,
        start_time=run.start_time,
        end_time=run.end_time,
        tags=run.tags,
        params=run.params,
        metrics={k: _summary(b) for k, b in metrics.items()},
        last_activity=run.last_activity,
        stale_for=run.idle_for(now) if run.is_stale(now) else None,
    )


# -- handlers --------------------------------------------------------------------------------
@get("/api/experiments", summary="Every experiment, with its run count")
async def list_experiments(state: State) -> Response[list[ExperimentOut]]:
    """Every experiment, oldest first."""
    store = _store(state)

    async def build() -> list[ExperimentOut]:
        experiments = await store.list_experiments()
        counts: dict[str, int] = {}
        for run in await store.filter_runs(None, []):
            counts[run.experiment_id] = counts.get(run.experiment_id, 0) + 1
        return [
            ExperimentOut(
                id=e.id,
                name=e.name,
                description=e.description,
                config=e.config,
                tags=e.tags,
                created_at=e.created_at,
                updated_at=e.updated_at,
                run_count=counts.get(e.id, 0),
            )
            for e in experiments
        ]

    return await _answer(store, build)


@get("/api/runs", summary="A page of runs, filtered and sorted")
async def list_runs(
    state: State,
    request: Request[Any, Any, Any],
    experiment: FromQuery[str | None] = None,
    sort: FromQuery[str] = "created_at",
    desc: FromQuery[bool] = False,
    limit: Annotated[int, QueryParameter(ge=1, le=_MAX_LIMIT)] = 100,
    cursor: FromQuery[str | None] = None,
) -> Response[RunPage]:
    """Runs of one experiment (or of all), with the CLI's filter grammar, sorted and paged.

    ``filter`` (repeat it) is ``KEY OP VALUE`` as the CLI's ``--filter`` takes it. ``sort`` is ``created_at``, ``name``, ``status``, ``param:KEY`` or ``metric:KEY``
    (by last value); runs without that key come last either way. ``cursor`` is
    the ``next`` of the previous page.
    """
    store = _store(state)
    try:
        filters = [parse_filter(f) for f in request.query_params.getall("filter", [])]
        check_order(sort)
    except ValueError as exc:
        raise bad_request(str(exc)) from None

    async def build() -> RunPage:
        try:
            found = await store.search_runs(experiment, filters, sort, desc, limit, cursor)
        except ValueError as exc:  # a cursor of another order, a filter that makes no sense
            raise bad_request(str(exc)) from None
        summaries = await store.metric_summaries([r.id for r in found.runs])
        return RunPage(
            runs=[_run_out(r, summaries.get(r.id, {})) for r in found.runs],
            next=found.next,
            total=found.total,
        )

    return await _answer(store, build)


@get("/api/runs/{run_id:str}", summary="One run, with its artifacts and span id")
async def get_run(state: State, run_id: FromPath[str]) -> Response[RunDetail]:
    """The run, its metric summaries, artifacts and span id."""
    store = _store(state)

    async def build() -> RunDetail:
        run = await store.get_run(run_id)
        summaries = await store.metric_summaries([run_id])
        artifacts = await store.list_artifacts(run_id)
        span_id = await store.get_span_id(run_id)
        base = _run_out(run, summaries.get(run_id, {}))
        return RunDetail(
            **msgspec.structs.asdict(base),
            artifacts=[_artifact_out(a) for a in artifacts],
            span_id=span_id,
        )

    return await _answer(store, build)


def _artifact_out(ref: ArtifactRef) -> ArtifactOut:
    return ArtifactOut(ref.name, ref.sha256, ref.size_bytes, ref.created_at)


@get("/api/series", summary="Metric series of up to 100 runs, exact or downsampled")
async def get_series(
    state: State,
    request: Request[Any, Any, Any],
    key: FromQuery[str | None] = None,
    points: FromQuery[str | None] = None,
    start: FromQuery[str | None] = None,
    end: FromQuery[str | None] = None,
) -> Response[SeriesResponse]:
    """One key's series for each ``run`` (repeat it), over ``[start, end]`` (inclusive).

    At most ``points`` (default 1000) entries per run: the raw points if the
    range holds no more, else buckets with their min and max.
    """
    store = _store(state)
    runs = list(dict.fromkeys(request.query_params.getall("run", [])))
    if len(runs) > MAX_RUNS:  # first, before anything else is looked at
        raise bad_request(f"at most {MAX_RUNS} distinct runs per request, got {len(runs)}")
    if not runs:
        raise bad_request("give at least one run: ?run=ID")
    if not key:
        raise bad_request("give the metric: ?key=NAME")
    count = _int_param("points", points, 1000, low=2, high=MAX_POINTS)
    low = _int_param("start", start, None, low=0, high=2**63 - 1)
    high = _int_param("end", end, None, low=0, high=2**63 - 1)

    async def build() -> SeriesResponse:
        out = [await series_of(store, run_id, key, count, low, high) for run_id in runs]
        return SeriesResponse(key=key, series=out)

    return await _answer(store, build)


def _int_param(name: str, text: str | None, default: int | None, *, low: int, high: int) -> Any:
    if text is None or text == "":
        return default
    try:
        value = int(text)
    except ValueError:
        raise bad_request(f"{name} must be an integer, got {text!r}") from None
    if not low <= value <= high:
        raise bad_request(f"{name} must be between {low} and {high}, got {value}")
    return value


@get("/api/artifacts/{sha256:str}", summary="An artifact's bytes, as a download")
async def get_artifact(
    state: State, sha256: FromPath[str], run: FromQuery[str | None] = None
) -> Response[bytes]:
    """The content with this SHA-256. ``run`` (the run that logged it) names the download."""
    store = _store(state)
    if not _SHA256.fullmatch(sha256):
        raise bad_request("an artifact is named by its SHA-256: 64 lowercase hex characters")
    position = await store.head()
    try:
        data = await store.get_artifact_data(sha256)
        name = await _artifact_name(store, sha256, run)
    except NotFoundError as exc:
        error = not_found(exc)
        error.position = position
        raise error from None
    ascii_name = safe_filename(name).encode("ascii", "replace").decode().replace("?", "_")
    disposition = (
        f"attachment; filename=\"{ascii_name}\"; filename*=UTF-8''{quote(safe_filename(name))}"
    )
    return Response(
        data,
        media_type="application/octet-stream",
        headers={
            "Content-Disposition": disposition,  # nosniff: on every response (security)
            POSITION_HEADER: str(position),
        },
    )


async def _artifact_name(store: Store, sha256: str, run_id: str | None) -> str:
    """The name the artifact was logged under (by ``run_id``, else by any run), else its digest."""
    if run_id is not None:
        for ref in await store.list_artifacts(run_id):
            if ref.sha256 == sha256:
                return ref.name
        return sha256
    for run in await store.filter_runs(None, []):
        for ref in await store.list_artifacts(run.id):
            if ref.sha256 == sha256:
                return ref.name
    return sha256


def safe_filename(name: str) -> str:
    """``name`` as a download's file name: its last path part, without controls or quotes."""
    name = unicodedata.normalize("NFC", name).replace("\\", "/").rsplit("/", 1)[-1]
    cleaned = "".join(
        "_" if unicodedata.category(c).startswith("C") or c in '"<>:|?*;' else c for c in name
    ).strip(" .")
    return cleaned[:200] or "artifact"


api_routes = [list_experiments, list_runs, get_run, get_series, get_artifact]
"""The JSON handlers (``/api/events`` lives in ``live``)."""
