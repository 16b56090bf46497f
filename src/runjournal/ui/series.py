"""``/api/series``: one chart's series, exact or downsampled, from the rollup projection.

For each run, :func:`series_of` asks the store for at most ``points`` buckets
of the range (``get_metrics_downsampled``); their counts give the range's
``total``. A range of at most ``points`` points is then sent exactly, as
``get_metrics`` gives it (repeated steps included, with timestamps); a longer
one as its buckets: ``step`` the bucket's last step, ``value`` its last value,
``min`` and ``max`` its finite extremes. NaN and ±inf become ``null``, counted
in ``nonfinite``. A window of at most ``points`` steps (a zoom) is read raw first,
since it can hold more points than that only through repeated steps.
"""

from __future__ import annotations

from collections.abc import Iterable

import msgspec

from runjournal.model import MetricPoint
from runjournal.stores.base import Queries

__all__ = ["MAX_POINTS", "MAX_RUNS", "Series", "SeriesResponse", "series_of"]

MAX_RUNS = 100
"""The most distinct runs one request may ask for."""
MAX_POINTS = 100_000
"""The most points (or buckets) one series may ask for."""


class Series(msgspec.Struct):
    """One run's series over the range; the arrays are parallel."""

    run_id: str
    total: int
    """The number of points in the range."""
    exact: bool
    """True: the raw points. False: at most ``points`` buckets."""
    step: list[int]
    value: list[float | None]
    min: list[float | None]
    max: list[float | None]
    nonfinite: int
    """How many of the range's points are NaN or ±inf (sent as null)."""
    time: list[float] | None = None
    """The points' timestamps (Unix seconds), in exact mode only."""


class SeriesResponse(msgspec.Struct):
    """The body of ``/api/series``."""

    key: str
    series: list[Series]


def _finite(values: Iterable[float]) -> list[float | None]:
    """The values, with NaN and ±inf as None (a gap in the chart)."""
    return [v if v - v == 0.0 else None for v in values]  # (v - v is NaN for NaN and ±inf)


async def series_of(
    queries: Queries, run_id: str, key: str, points: int, start: int | None, end: int | None
) -> Series:
    """The series of one run, exact or downsampled (see the module)."""
    if start is not None and end is not None and end - start < points:
        # A window of at most `points` steps (a zoom) usually holds at most `points` points:
        # read them at once instead of counting them from the rollups first.
        raw = await queries.get_metrics_between(run_id, key, start, end)
        if len(raw) <= points:
            return _exact(run_id, raw)
    buckets = await queries.get_metrics_downsampled(run_id, key, points, start, end)
    total = sum(b.count for b in buckets)
    if total <= points:
        if start is None and end is None:
            return _exact(run_id, await queries.get_metrics(run_id, key))
        return _exact(run_id, await queries.get_metrics_between(run_id, key, start, end))
    return Series(
        run_id=run_id,
        total=total,
        exact=False,
        step=[b.last_step for b in buckets],
        value=_finite([b.last for b in buckets]),
        min=[b.min for b in buckets],
        max=[b.max for b in buckets],
        nonfinite=sum(b.nonfinite for b in buckets),
    )


def _exact(run_id: str, raw: list[MetricPoint]) -> Series:
    values = _finite([p.value for p in raw])
    return Series(
        run_id=run_id,
        total=len(raw),
        exact=True,
        step=[p.step for p in raw],
        value=values,
        min=values,
        max=values,
        nonfinite=sum(v is None for v in values),
        time=[p.timestamp for p in raw],
    )
