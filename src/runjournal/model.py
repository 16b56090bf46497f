"""Value types of the public API and the rules for the values users may log.

Nothing here does I/O; every other layer may import this module.
"""

from __future__ import annotations

import enum
import math
from collections.abc import Mapping
from typing import Any, TypeAlias

import msgspec

__all__ = [
    "ArtifactRef",
    "Experiment",
    "FilterOp",
    "MetricBucket",
    "MetricPoint",
    "ParamFilter",
    "ParamValue",
    "Run",
    "RunStatus",
    "check_key",
    "check_param_value",
    "check_tags",
    "check_text",
    "check_timestamp",
    "check_value",
    "same_value",
]

ParamValue: TypeAlias = "bool | int | float | str | list[ParamValue] | dict[str, ParamValue] | None"

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
    """A run of an experiment, with its status, times, params and tags."""

    id: str
    experiment_id: str
    name: str | None
    status: RunStatus
    created_at: float
    start_time: float | None
    end_time: float | None
    params: dict[str, Any]
    tags: dict[str, str]


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


def check_key(key: object, what: str = "key") -> str:
    """Return ``key`` if it is a non-empty string without NUL, else raise."""
    if type(key) is not str:
        raise TypeError(f"{what} must be a str, not {type(key).__name__}")
    if not key:
        raise ValueError(f"{what} must not be empty")
    if "\x00" in key:
        raise ValueError(f"{what} must not contain NUL characters")
    if not key.isascii():
        check_text(key, what)
    return key


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
    infinities included), and lists and ``str``-keyed dicts of these, nested to
    any depth. A tuple becomes a list. Anything else raises ``TypeError`` (or
    ``ValueError`` for an int beyond 64 bits or a string that is not valid
    Unicode, such as one with a lone surrogate).
    """
    kind = type(value)
    if value is None or kind is bool or kind is float:
        return value
    if kind is int:
        if not _INT64_MIN <= value <= _INT64_MAX:  # type: ignore[operator]
            raise ValueError(f"{path}: int {value} does not fit in 64 bits")
        return value
    if kind is str:
        return check_text(value, path)  # type: ignore[arg-type]
    if kind is list or kind is tuple:
        items: list[Any] = list(value)  # type: ignore[call-overload]
        return [check_param_value(item, path=f"{path}[{i}]") for i, item in enumerate(items)]
    if kind is dict:
        out: dict[str, Any] = {}
        for k, v in value.items():  # type: ignore[attr-defined]
            if type(k) is not str:
                raise TypeError(f"{path}: dict keys must be str, not {type(k).__name__}")
            check_text(k, f"{path}: dict key")
            out[k] = check_param_value(v, path=f"{path}[{k!r}]")
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
