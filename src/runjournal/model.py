"""Value types of the public API and the rules for the values users may log.

Nothing here does I/O; every other layer may import this module.
"""

from __future__ import annotations

import bisect
import enum
import math
import re
from array import array
from collections.abc import Mapping
from typing import Any, NamedTuple, TypeAlias

import msgspec

__all__ = [
    "MAX_PARAM_DEPTH",
    "STALE_AFTER",
    "ArtifactRef",
    "Experiment",
    "FilterOp",
    "MetricArrays",
    "MetricBucket",
    "MetricPoint",
    "ParamFilter",
    "ParamValue",
    "Run",
    "RunStatus",
    "RunView",
    "check_final_status",
    "check_key",
    "check_name",
    "check_param_value",
    "check_tags",
    "check_text",
    "check_timestamp",
    "check_value",
    "check_view",
    "same_value",
]

ParamValue: TypeAlias = "bool | int | float | str | list[ParamValue] | dict[str, ParamValue] | None"

STALE_AFTER = 300.0
"""Seconds without activity after which a RUNNING run counts as stale (see :meth:`Run.is_stale`).

Ten heartbeat intervals of a run handle (30 s): a loaded machine or a slow
commit never flips a live run, and a run whose process died shows within
minutes, as W&B's "crashed" does.
"""

_INT64_MIN = -(2**63)
_INT64_MAX = 2**63 - 1


class RunStatus(enum.StrEnum):
    """Where a run is in its lifecycle."""

    PENDING = "PENDING"
    RUNNING = "RUNNING"
    SUCCESS = "SUCCESS"
    FAILED = "FAILED"
    CANCELLED = "CANCELLED"

    @property
    def is_terminal(self) -> bool:
        """True once the run has ended (SUCCESS, FAILED or CANCELLED)."""
        return self in _TERMINAL


_TERMINAL = frozenset({RunStatus.SUCCESS, RunStatus.FAILED, RunStatus.CANCELLED})


def check_final_status(status: RunStatus | str, what: str) -> RunStatus:
    """``status`` as a terminal :class:`RunStatus`; ``ValueError`` naming ``what`` otherwise."""
    try:
        final = RunStatus(status)
    except ValueError:
        raise ValueError(f"unknown run status {status!r}") from None
    if not final.is_terminal:
        raise ValueError(f"{what} needs SUCCESS, FAILED or CANCELLED, not {final.value}")
    return final


class RunView(enum.StrEnum):
    """Which runs a listing shows, by whether they are hidden (``Tracker.hide_run``).

    ``ACTIVE`` (the default everywhere) leaves hidden runs out, ``HIDDEN`` shows
    only them, ``ALL`` shows both. MLflow's ``ACTIVE_ONLY``, ``DELETED_ONLY`` and
    ``ALL``.
    """

    ACTIVE = "ACTIVE"
    HIDDEN = "HIDDEN"
    ALL = "ALL"

    def shows(self, hidden: bool) -> bool:
        """True if a run that is ``hidden`` (or not) belongs in this view."""
        return self is RunView.ALL or (self is RunView.HIDDEN) == hidden


def check_view(view: RunView | str) -> RunView:
    """``view`` as a :class:`RunView` (any case); ``ValueError`` naming the choices otherwise."""
    if isinstance(view, RunView):
        return view
    if type(view) is str:
        try:
            return RunView(view.upper())
        except ValueError:
            pass
    raise ValueError(f"unknown run view {view!r}: use ACTIVE, HIDDEN or ALL")


class FilterOp(enum.StrEnum):
    """Comparison operators of :class:`ParamFilter`."""

    EQ = "EQ"
    NE = "NE"
    LT = "LT"
    LTE = "LTE"
    GT = "GT"
    GTE = "GTE"
    CONTAINS = "CONTAINS"
    STARTS_WITH = "STARTS_WITH"


class ParamFilter(msgspec.Struct, frozen=True):
    """One condition on a run's parameter: ``params[key] <op> value``."""

    key: str
    op: FilterOp
    value: Any


class MetricPoint(msgspec.Struct, frozen=True, array_like=True, gc=False):
    """One point of a metric series; ``timestamp`` is Unix seconds."""

    step: int
    value: float
    timestamp: float


class MetricArrays(NamedTuple):
    """A metric series as three columns, in ``get_metrics`` order (``get_metric_arrays``).

    ``array.array`` columns of typecodes ``'q'``, ``'d'`` and ``'d'``: ``numpy.frombuffer``
    (or ``memoryview``) takes each without a copy. Each call returns new arrays.
    """

    step: array[int]
    value: array[float]
    timestamp: array[float]

    def within(self, low: int, high: int, ordered: bool) -> MetricArrays:
        """The points with step in ``[low, high]``, in their order.

        ``ordered``: the steps never decrease, so the range is found by bisection.
        """
        steps = self.step
        if ordered:
            begin = bisect.bisect_left(steps, low)
            end = bisect.bisect_right(steps, high, begin)
            return MetricArrays(steps[begin:end], self.value[begin:end], self.timestamp[begin:end])
        keep = [i for i, step in enumerate(steps) if low <= step <= high]
        return MetricArrays(
            array("q", map(steps.__getitem__, keep)),
            array("d", map(self.value.__getitem__, keep)),
            array("d", map(self.timestamp.__getitem__, keep)),
        )


class MetricBucket(msgspec.Struct, frozen=True, gc=False):
    """A run of consecutive points of a series, summarised (``get_metrics_downsampled``).

    ``first`` and ``last`` are its first and last points in ``get_metrics``
    order, at ``first_step`` and ``last_step``. ``min`` and ``max`` are over its
    finite values, None if it holds none; ``nonfinite`` counts its NaN and ±inf
    points, which ``count`` includes.
    """

    first_step: int
    last_step: int
    min: float | None
    max: float | None
    first: float
    last: float
    count: int
    nonfinite: int = 0


class Experiment(msgspec.Struct, frozen=True):
    """An experiment: a named group of runs with a configuration."""

    id: str
    name: str
    description: str | None
    config: dict[str, Any] | None
    tags: dict[str, str]
    created_at: float
    updated_at: float


class Run(msgspec.Struct, frozen=True):
    """A run of an experiment, with its status, times, params and tags.

    ``last_activity`` is the recorded time of the newest journal entry about the
    run (created, started, a param, a metric, a tag, an artifact, a span id, a
    heartbeat, completed): a projection, never set directly.

    ``hidden`` is True while the run is hidden (``Tracker.hide_run``, MLflow's
    soft delete): listings leave it out unless asked, ``get_run`` still answers.
    """

    id: str
    experiment_id: str
    name: str | None
    status: RunStatus
    created_at: float
    start_time: float | None
    end_time: float | None
    params: dict[str, Any]
    tags: dict[str, str]
    last_activity: float | None = None
    hidden: bool = False

    def idle_for(self, now: float) -> float:
        """Seconds between the run's last activity and ``now`` (Unix seconds), at least 0."""
        last = self.last_activity
        if last is None:
            last = self.start_time if self.start_time is not None else self.created_at
        return max(0.0, now - last)

    def is_stale(self, now: float, after: float = STALE_AFTER) -> bool:
        """True if the run is RUNNING and nothing about it was recorded for ``after`` seconds.

        Its process most likely died without ending it (``kill -9``, a lost
        node); ``runjournal runs end RUN --status FAILED`` closes it.
        """
        return self.status is RunStatus.RUNNING and self.idle_for(now) >= after


class ArtifactRef(msgspec.Struct, frozen=True):
    """A named, content-addressed artifact attached to a run."""

    run_id: str
    name: str
    sha256: str
    size_bytes: int
    created_at: float


def same_value(a: Any, b: Any) -> bool:
    """True if ``a`` and ``b`` are the same value, as a store must give back what it was given.

    Equal, and of the same type at every level of nesting: a bool, an int and a
    float never equal one another (``True`` is not ``1``, nor ``1`` ``1.0``),
    while NaN equals NaN, so that a stored NaN reads back as itself. Lists and
    tuples compare item by item, dicts key by key (in any order), msgspec
    Structs field by field; anything else with ``==``.
    """
    kind = type(a)
    if kind is not type(b):
        return False
    if kind is float:
        return bool(a == b) or (math.isnan(a) and math.isnan(b))
    if kind is list or kind is tuple:
        return len(a) == len(b) and all(same_value(x, y) for x, y in zip(a, b, strict=True))
    if kind is dict:
        return a.keys() == b.keys() and all(same_value(a[k], b[k]) for k in a)
    if isinstance(a, msgspec.Struct):
        return all(same_value(getattr(a, f), getattr(b, f)) for f in a.__struct_fields__)
    return bool(a == b)


_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f]")
"""C0 controls, DEL and C1 controls: never part of an identifier, and unsafe on a terminal."""

MAX_PARAM_DEPTH = 100
"""How deeply lists and dicts may nest in a parameter (or config) value."""


def check_key(key: object, what: str = "key") -> str:
    """Return ``key`` if it is a non-empty string without control characters, else raise.

    Keys and names are identifiers: they are printed in tables, used in filters
    and compared. A control character (``\\n``, an ANSI escape, NUL, DEL, any C0
    or C1 control) in one is refused, with the key shown escaped. Values (tag
    values, string params, descriptions) may hold any text, newlines included.
    """
    if type(key) is not str:
        raise TypeError(f"{what} must be a str, not {type(key).__name__}")
    if not key:
        raise ValueError(f"{what} must not be empty")
    check_name(key, what)
    return key


def check_name(name: str, what: str = "name") -> str:
    """Return ``name`` if it holds no control characters and is valid Unicode, else raise."""
    if _CONTROL.search(name) is not None:
        raise ValueError(f"{what} must not contain control characters: {name!r}")
    if not name.isascii():
        check_text(name, what)
    return name


def check_text(text: str, what: str = "text") -> str:
    """Return ``text`` if it can be stored as UTF-8 (no lone surrogates), else raise ValueError."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise ValueError(f"{what} is not valid Unicode text ({exc.reason}): {text!r}") from None
    return text


def check_value(value: object) -> float:
    """Return a metric value as a float; bools and non-numbers are refused."""
    kind = type(value)
    if kind is float:
        return value  # type: ignore[return-value]
    if kind is int:
        try:
            return float(value)  # type: ignore[arg-type]
        except OverflowError:
            raise ValueError(f"metric value {value} is too large for a float") from None
    if isinstance(value, float) and kind is not bool:
        return float(value)
    raise TypeError(f"metric value must be a float or an int, not {kind.__name__}")


def check_timestamp(timestamp: object) -> float:
    """Return a user-supplied timestamp (Unix seconds) as a finite float."""
    if type(timestamp) not in (int, float):
        raise TypeError(f"timestamp must be a float or an int, not {type(timestamp).__name__}")
    try:
        result = float(timestamp)  # type: ignore[arg-type]
    except OverflowError:
        raise ValueError(f"timestamp must be finite, got {timestamp}") from None
    if not math.isfinite(result):
        raise ValueError(f"timestamp must be finite, got {timestamp}")
    return result


def check_param_value(value: object, *, path: str = "value") -> Any:
    """Validate a parameter value and return it in its stored form.

    Allowed: ``None``, ``str``, ``bool``, 64-bit ``int``, ``float`` (NaN and
    infinities included), and lists and ``str``-keyed dicts of these, nested at
    most :data:`MAX_PARAM_DEPTH` levels deep. A tuple becomes a list. Anything
    else raises ``TypeError`` (or ``ValueError`` for an int beyond 64 bits, a
    string that is not valid Unicode, such as one with a lone surrogate, or
    nesting deeper than the limit, naming the path where it goes too deep).
    Keys of nested dicts are data, not identifiers: any valid text is allowed.
    """
    return _check_param(value, path, 0)


def _check_param(value: object, path: str, depth: int) -> Any:
    kind = type(value)
    if value is None or kind is bool or kind is float:
        return value
    if kind is int:
        if not _INT64_MIN <= value <= _INT64_MAX:  # type: ignore[operator]
            raise ValueError(f"{path}: int {value} does not fit in 64 bits")
        return value
    if kind is str:
        return check_text(value, path)  # type: ignore[arg-type]
    if (kind is list or kind is tuple or kind is dict) and depth >= MAX_PARAM_DEPTH:
        raise ValueError(
            f"{path}: nested more than {MAX_PARAM_DEPTH} levels deep; flatten it or store "
            "it as an artifact"
        )
    if kind is list or kind is tuple:
        items: list[Any] = list(value)  # type: ignore[call-overload]
        return [_check_param(item, f"{path}[{i}]", depth + 1) for i, item in enumerate(items)]
    if kind is dict:
        out: dict[str, Any] = {}
        for k, v in value.items():  # type: ignore[attr-defined]
            if type(k) is not str:
                raise TypeError(f"{path}: dict keys must be str, not {type(k).__name__}")
            check_text(k, f"{path}: dict key")
            out[k] = _check_param(v, f"{path}[{k!r}]", depth + 1)
        return out
    raise TypeError(
        f"{path}: unsupported parameter type {kind.__name__}; use None, str, bool, int, "
        "float, or lists and str-keyed dicts of these"
    )


def check_tags(tags: object, what: str = "tags") -> dict[str, str]:
    """Return a copy of a ``str -> str`` mapping, or raise."""
    if tags is None:
        return {}
    if not isinstance(tags, Mapping):
        raise TypeError(f"{what} must be a mapping of str to str, not {type(tags).__name__}")
    out: dict[str, str] = {}
    for k, v in tags.items():
        check_key(k, f"{what} key")
        if type(v) is not str:
            raise TypeError(f"{what}[{k!r}] must be a str, not {type(v).__name__}")
        out[k] = check_text(v, f"{what}[{k!r}]")
    return out
