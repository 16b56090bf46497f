"""Param filters for the PostgreSQL store, answered in SQL over the typed params index.

Each ``params`` row keeps, beside the value's msgpack encoding, its ``kind`` and a
typed copy (``runjournal.stores._search``): ``num`` (``numeric``) for an int or a
float, ``utf8`` (``bytea``) for a str. ``numeric`` holds an int of any size and a
float's exact binary value (bound from Python as a ``Decimal``, never cast from
``double precision``, which PostgreSQL rounds to 15 digits), so an int and a float
compare without rounding, as in Python; NaN is NULL there. A str's UTF-8 bytes
order as its code points do, whatever the database's collation, and may hold NUL.
PostgreSQL then answers ``LT``/``LTE``/``GT``/``GTE``, ``STARTS_WITH``, ``EQ`` and
``NE`` on scalars through the ``(key, num)`` and ``(key, utf8)`` indexes, with the
rules of :func:`runjournal.filtering.value_matches`.

What SQL can only narrow, it narrows, and Python decides on the rows left
(``_search.select_matching``): ``CONTAINS`` on a list (rows whose encoding holds an
encoding of the wanted value) and ``EQ``/``NE`` against a list or a dict.
"""

from __future__ import annotations

import math
from decimal import Decimal
from typing import Any

import msgspec

from runjournal.model import FilterOp, ParamFilter
from runjournal.stores._search import (
    BOOL,
    FLOAT,
    INT,
    KINDS,
    LIST,
    NONE,
    STR,
    Condition,
    after_prefix,
    equal_encodings,
    param_columns,
)

__all__ = ["Condition", "condition", "number", "typed_columns"]

_encode = msgspec.msgpack.Encoder().encode
_SQL_OPS = {FilterOp.LT: "<", FilterOp.LTE: "<=", FilterOp.GT: ">", FilterOp.GTE: ">="}


def number(value: float) -> Decimal | None:
    """A number as ``numeric`` holds it: exact (a float's whole binary value); NaN is None."""
    if isinstance(value, float) and math.isnan(value):
        return None
    return Decimal(value)


def typed_columns(value: Any) -> tuple[int, Decimal | None, bytes | None]:
    """``(kind, num, utf8)`` of a (checked) param value, as the params table keeps them."""
    kind, num, text = param_columns(value)
    return (
        kind,
        None if num is None else number(num),
        None if text is None else text.encode(),
    )


def condition(flt: ParamFilter) -> Condition:
    """The SQL condition on ``kind``, ``num``, ``utf8`` and ``value`` for a validated filter."""
    want = flt.value
    op = flt.op
    kind = KINDS[type(want)]
    is_number = kind in (INT, FLOAT)
    if op is FilterOp.EQ:
        if is_number:
            exact = number(want)
            if exact is None:
                return Condition("false", [], True)  # NaN equals nothing
            return Condition("num = %s", [exact], True)
        if kind == STR:
            return Condition("utf8 = %s", [want.encode()], True)
        if kind in (NONE, BOOL):
            return Condition("kind = %s AND value = %s", [kind, _encode(want)], True)
        return Condition("kind = %s", [kind], False)
    if op is FilterOp.NE:
        if kind == NONE:
            return Condition("kind <> %s", [NONE], True)
        if is_number:
            exact = number(want)
            if exact is None:
                return Condition(f"kind IN ({INT}, {FLOAT})", [], True)
            # A NaN (NULL num) is a number unequal to every number.
            return Condition(
                f"kind IN ({INT}, {FLOAT}) AND (num IS NULL OR num <> %s)", [exact], True
            )
        if kind == STR:
            return Condition("utf8 <> %s", [want.encode()], True)
        if kind == BOOL:
            return Condition("kind = %s AND value <> %s", [BOOL, _encode(want)], True)
        return Condition("kind = %s", [kind], False)
    if op is FilterOp.STARTS_WITH:
        upper = after_prefix(want)
        if upper is None:
            return Condition("utf8 >= %s", [want.encode()], True)
        return Condition("utf8 >= %s AND utf8 < %s", [want.encode(), upper.encode()], True)
    if op is FilterOp.CONTAINS:
        # An item equal to the wanted value is encoded as one of these bytes, somewhere
        # in the list's encoding: a necessary condition, which Python then completes.
        codes = equal_encodings(ParamFilter(flt.key, FilterOp.EQ, want))
        in_list: str
        list_args: list[Any]
        if codes is None:  # a list or a dict: Python compares it with each item
            in_list, list_args = "kind = %s", [LIST]
        elif not codes:
            in_list, list_args = "false", []
        else:
            found = " OR ".join(["position(%s IN value) > 0"] * len(codes))
            in_list, list_args = f"kind = %s AND ({found})", [LIST, *codes]
        if kind == STR:
            return Condition(
                f"position(%s IN utf8) > 0 OR ({in_list})", [want.encode(), *list_args], False
            )
        return Condition(in_list, list_args, False)
    if kind == STR:
        return Condition(f"utf8 {_SQL_OPS[op]} %s", [want.encode()], True)
    return Condition(f"num {_SQL_OPS[op]} %s", [number(want)], True)
