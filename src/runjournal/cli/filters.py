"""Parsing ``--filter`` expressions of the command line into :class:`ParamFilter` objects.

An expression is ``KEY OP VALUE``. The value is read as JSON when it parses as
JSON (numbers, ``true``/``false``, ``null``, lists, objects, quoted strings), and
as a plain string otherwise, so ``lr<1e-3`` compares numbers and
``optimizer=adam`` compares strings. Pure functions: no I/O, no rich.
"""

from __future__ import annotations

import re
from typing import Any

import msgspec

from runjournal.filtering import validate_filters
from runjournal.model import FilterOp, ParamFilter

__all__ = ["OPERATORS", "parse_filter", "parse_value"]

OPERATORS: dict[str, FilterOp] = {
    "==": FilterOp.EQ,
    "=": FilterOp.EQ,
    "!=": FilterOp.NE,
    "<=": FilterOp.LTE,
    "<": FilterOp.LT,
    ">=": FilterOp.GTE,
    ">": FilterOp.GT,
    "~": FilterOp.CONTAINS,
    "^=": FilterOp.STARTS_WITH,
}
"""The spelling of each operator; two-character ones must be tried first."""

# The key is the shortest prefix followed by an operator, so "a<=1" is LTE, not LT "=1".
_EXPRESSION = re.compile(
    r"(?P<key>.*?)(?P<op>" + "|".join(re.escape(op) for op in OPERATORS) + r")(?P<value>.*)",
    re.DOTALL,
)
_SPELLINGS = "=, !=, <, <=, >, >=, ~ (contains), ^= (starts with)"


def parse_value(text: str) -> Any:
    """The value of a filter: JSON if ``text`` is JSON, else ``text`` itself."""
    try:
        return msgspec.json.decode(text)
    except msgspec.DecodeError:
        return text


def parse_filter(expression: str) -> ParamFilter:
    """Turn ``KEY OP VALUE`` into a validated :class:`ParamFilter`; raise ``ValueError``."""
    found = _EXPRESSION.fullmatch(expression)
    if found is None:
        raise ValueError(
            f"bad filter expression {expression!r}: expected KEY OP VALUE, OP one of {_SPELLINGS}"
        )
    key = found["key"].strip()
    if not key:
        raise ValueError(f"bad filter expression {expression!r}: the parameter name is missing")
    op = OPERATORS[found["op"]]
    text = found["value"].strip()
    value = parse_value(text)
    if op is FilterOp.STARTS_WITH and type(value) is not str:
        value = text  # a prefix is always a string: name^=3 means "starts with 3"
    flt = ParamFilter(key, op, value)
    try:
        (checked,) = validate_filters([flt])
    except (TypeError, ValueError) as exc:
        raise ValueError(f"bad filter expression {expression!r}: {exc}") from None
    return checked
