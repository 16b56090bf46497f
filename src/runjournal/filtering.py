"""The meaning of :class:`ParamFilter`: which parameter values a filter matches.

Pure functions shared by every store, so that all of them answer alike.
Numbers compare as numbers (an int against a float too); a bool is never a
number; a value of a kind the operator does not apply to does not match.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from runjournal.model import FilterOp, ParamFilter, check_param_value

__all__ = ["matches", "strict_equal", "validate_filters", "value_matches"]

_ORDERING = frozenset({FilterOp.LT, FilterOp.LTE, FilterOp.GT, FilterOp.GTE})


def _is_number(value: object) -> bool:
    kind = type(value)
    return kind is int or kind is float


def validate_filters(filters: Sequence[ParamFilter]) -> list[ParamFilter]:
    """Check that each filter makes sense by itself; raise ``ValueError`` or ``TypeError``."""
    checked = []
    for f in filters:
        if not isinstance(f, ParamFilter):
            raise TypeError(f"filters must be ParamFilter objects, not {type(f).__name__}")
        if type(f.key) is not str or not f.key:
            raise ValueError(f"filter key must be a non-empty str, got {f.key!r}")
        try:
            op = FilterOp(f.op)
        except ValueError:
            raise ValueError(f"unknown filter operator {f.op!r}") from None
        value = check_param_value(f.value, path=f"filter value for {f.key!r}")
        if op is FilterOp.STARTS_WITH and type(value) is not str:
            raise ValueError(f"STARTS_WITH needs a str value, got {type(value).__name__}")
        if op in _ORDERING and not (_is_number(value) or type(value) is str):
            raise ValueError(f"{op.value} needs a number or a str, got {type(value).__name__}")
        if op in _ORDERING and _is_number(value) and math.isnan(value):
            raise ValueError(f"{op.value} with NaN matches nothing; compare with EQ/NE instead")
        checked.append(ParamFilter(f.key, op, value))
    return checked


def strict_equal(a: Any, b: Any) -> bool:
    """Equality where a bool never equals a number, applied at every level of nesting."""
    if _is_number(a) and _is_number(b):
        return bool(a == b)
    if type(a) is not type(b):
        return False
    if type(a) is list:
        return len(a) == len(b) and all(strict_equal(x, y) for x, y in zip(a, b, strict=True))
    if type(a) is dict:
        return a.keys() == b.keys() and all(strict_equal(a[k], b[k]) for k in a)
    return bool(a == b)


def _comparable(a: Any, b: Any) -> bool:
    if _is_number(a) and _is_number(b):
        return True
    return type(a) is type(b)


def matches(params: dict[str, Any], flt: ParamFilter) -> bool:
    """True if a run with ``params`` satisfies the (validated) filter."""
    return flt.key in params and value_matches(params[flt.key], flt)


def value_matches(have: Any, flt: ParamFilter) -> bool:
    """True if a run whose ``flt.key`` param is ``have`` satisfies the (validated) filter."""
    want = flt.value
    op = flt.op
    if op is FilterOp.EQ:
        return strict_equal(have, want)
    if op is FilterOp.NE:
        if want is None:
            return have is not None
        return _comparable(have, want) and not strict_equal(have, want)
    if op is FilterOp.CONTAINS:
        if type(have) is str:
            return type(want) is str and want in have
        if type(have) is list:
            return any(strict_equal(item, want) for item in have)
        return False
    if op is FilterOp.STARTS_WITH:
        return type(have) is str and have.startswith(want)
    both_numbers = _is_number(have) and _is_number(want)
    if not both_numbers and not (type(have) is str and type(want) is str):
        return False
    if op is FilterOp.LT:
        return bool(have < want)
    if op is FilterOp.LTE:
        return bool(have <= want)
    if op is FilterOp.GT:
        return bool(have > want)
    return bool(have >= want)
