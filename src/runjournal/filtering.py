"""The meaning of :class:`ParamFilter` and of a run search's order and cursors.

Pure functions shared by every store, so that all of them answer alike.
Numbers compare as numbers (an int against a float too); a bool is never a
number; a value of a kind the operator does not apply to does not match.
A search (``search_runs``) orders runs by a :data:`SortKey` and then by id,
and pages through them with opaque cursors that name the last run's position.
"""

from __future__ import annotations

import base64
import math
from collections.abc import Sequence
from typing import Any

import msgspec

from runjournal.model import FilterOp, ParamFilter, Run, check_param_value

__all__ = [
    "MISSING",
    "ORDER_FIELDS",
    "RunPage",
    "SortKey",
    "check_order",
    "check_page",
    "comes_after",
    "decode_cursor",
    "encode_cursor",
    "matches",
    "metric_sort_key",
    "param_sort_key",
    "run_sort_key",
    "sort_page",
    "strict_equal",
    "validate_filters",
    "value_matches",
]

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


# -- the order of a run search (``search_runs``) ------------------------------------------------
ORDER_FIELDS = ("created_at", "name", "status")
"""What ``search_runs`` sorts by besides ``param:KEY`` and ``metric:KEY``."""

SortKey = tuple[int, int, int | float | str]
"""``(missing, rank, value)``: where a run falls in a search's order, before its id breaks ties.

``missing`` is 1 for a run without the sort key (it comes last). Param values
rank numbers (by value, an int against a float too), then strings (by code
point), then booleans (False first), then the rest (None, NaN, lists, dicts),
which tie with one another.
"""

MISSING: SortKey = (1, 0, 0)


class RunPage(msgspec.Struct, frozen=True):
    """One page of a run search: the runs, the cursor of the next page, and how many match.

    ``next`` is None on the last page; otherwise pass it as ``after`` to get the
    page that follows. ``total`` counts every run that matches the filters.
    """

    runs: list[Run]
    next: str | None
    total: int


def check_order(order_by: str) -> str:
    """``order_by`` if a search can sort by it, else ``ValueError``."""
    if type(order_by) is not str:
        raise TypeError(f"order_by must be a str, not {type(order_by).__name__}")
    if order_by in ORDER_FIELDS:
        return order_by
    for prefix in ("param:", "metric:"):
        if order_by.startswith(prefix) and len(order_by) > len(prefix):
            return order_by
    raise ValueError(
        f"cannot sort by {order_by!r}: use created_at, name, status, param:KEY or metric:KEY"
    )


def param_sort_key(params: dict[str, Any], key: str) -> SortKey:
    """Where a run with these params falls when sorted by param ``key``."""
    if key not in params:
        return MISSING
    value = params[key]
    if _is_number(value):
        return (0, 3, 0) if math.isnan(value) else (0, 0, value)
    if type(value) is str:
        return (0, 1, value)
    if type(value) is bool:
        return (0, 2, int(value))
    return (0, 3, 0)


def metric_sort_key(last: float | None) -> SortKey:
    """Where a run falls when sorted by a metric whose last value is ``last`` (None: no metric).

    A non-finite last value counts as missing.
    """
    if last is None or not math.isfinite(last):
        return MISSING
    return (0, 0, last)


def run_sort_key(run: Run, order_by: str) -> SortKey:
    """Where ``run`` falls when sorted by one of :data:`ORDER_FIELDS` or ``param:KEY``."""
    if order_by == "created_at":
        return (0, 0, run.created_at)
    if order_by == "name":
        return MISSING if run.name is None else (0, 0, run.name)
    if order_by == "status":
        return (0, 0, run.status.value)
    return param_sort_key(run.params, order_by[len("param:") :])


def comes_after(key: SortKey, run_id: str, cursor: tuple[SortKey, str], desc: bool) -> bool:
    """True if a run at ``(key, run_id)`` comes after the cursor's position in the order."""
    (m, r, v), cursor_id = cursor
    if key[0] != m:
        return key[0] > m  # runs without the key come last either way
    mine = (key[1], key[2], run_id)
    theirs = (r, v, cursor_id)
    return mine < theirs if desc else mine > theirs


def sort_page(
    keyed: list[tuple[SortKey, Run]],
    desc: bool,
    after: tuple[SortKey, str] | None,
    limit: int,
    order_by: str,
) -> RunPage:
    """The page of ``keyed`` runs after ``after``, in the search order (the reference answer)."""
    present = [(k, run) for k, run in keyed if k[0] == 0]
    missing = [(k, run) for k, run in keyed if k[0] != 0]
    present.sort(key=lambda item: (item[0][1], item[0][2], item[1].id), reverse=desc)
    missing.sort(key=lambda item: item[1].id, reverse=desc)
    ordered = present + missing
    if after is not None:
        ordered = [(k, run) for k, run in ordered if comes_after(k, run.id, after, desc)]
    page = ordered[:limit]
    more = len(ordered) > limit
    cursor = encode_cursor(order_by, desc, page[-1][0], page[-1][1].id) if more else None
    return RunPage([run for _, run in page], cursor, len(keyed))


_CURSOR_VERSION = 1


def encode_cursor(order_by: str, desc: bool, key: SortKey, run_id: str) -> str:
    """An opaque cursor: the position of the last run of a page, in one search order."""
    raw = msgspec.msgpack.encode([_CURSOR_VERSION, order_by, desc, *key, run_id])
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str, order_by: str, desc: bool) -> tuple[SortKey, str]:
    """The position a cursor of this search order names; ``ValueError`` for any other string."""
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        version, order, direction, m, r, v, run_id = msgspec.msgpack.decode(raw)
    except (ValueError, TypeError, msgspec.DecodeError):
        raise ValueError(f"not a cursor of a run search: {cursor!r}") from None
    valid = (
        version == _CURSOR_VERSION
        and type(run_id) is str
        and m in (0, 1)
        and type(r) is int
        and type(v) in (int, float, str)
    )
    if not valid:
        raise ValueError(f"not a cursor of a run search: {cursor!r}")
    if order != order_by or direction is not desc:
        raise ValueError(
            f"this cursor continues a search by {order!r}{' desc' if direction else ''}, "
            f"not by {order_by!r}{' desc' if desc else ''}"
        )
    return (m, r, v), run_id


def check_page(
    order_by: str, desc: bool, limit: int, after: str | None
) -> tuple[str, tuple[SortKey, str] | None]:
    """Check a search's order and page; the order and the cursor's position (None: the start)."""
    order = check_order(order_by)
    if type(desc) is not bool:
        raise TypeError(f"desc must be a bool, not {type(desc).__name__}")
    if type(limit) is not int or limit < 1:
        raise ValueError(f"limit must be an int of at least 1, got {limit!r}")
    if after is not None and type(after) is not str:
        raise TypeError(f"after must be a cursor str or None, not {type(after).__name__}")
    return order, None if after is None else decode_cursor(after, order, desc)
