"""The filter grammar shared by the faces: ``KEY OP VALUE`` text into :class:`ParamFilter` objects.

The command line's ``--filter`` and the dashboard's ``/api/runs?filter=`` take
the same expressions, parsed here, below both faces.

An expression is ``KEY OP VALUE``. The value is read as JSON when it parses as
JSON (numbers, ``true``/``false``, ``null``, lists, objects, quoted strings), and
as a plain string otherwise, so ``lr<1e-3`` compares numbers and
``optimizer=adam`` compares strings. Pure functions: no I/O, no rich.

``runs --filter`` takes more than params (:func:`parse_run_filter`): a key
``metric.NAME`` compares the run's last value of that metric, ``tag.NAME`` a tag
(always as a string), ``status`` the run's status (any case), and ``param.NAME``
or a plain ``NAME`` a param. A dotted param key that no param has literally
reaches into nested params: ``optimizer.name=adamw`` matches
``{"optimizer": {"name": "adamw"}}``.
"""

from __future__ import annotations

import re
from typing import Any, Literal

import msgspec

from runjournal.filtering import validate_filters
from runjournal.model import FilterOp, ParamFilter, RunStatus

__all__ = [
    "OPERATORS",
    "RunFilter",
    "Target",
    "is_missing",
    "lookup",
    "parse_filter",
    "parse_run_filter",
    "parse_value",
]

Target = Literal["param", "metric", "tag", "status"]
"""What a ``runs --filter`` compares."""


class RunFilter(msgspec.Struct, frozen=True):
    """One ``runs --filter``: the part of a run it compares, and the comparison."""

    target: Target
    condition: ParamFilter
    """The comparison, keyed by the param, metric or tag name (``status`` for the status)."""

    @property
    def label(self) -> str:
        """How the key is spelled for the user: ``metric.loss``, ``tag.team``, ``lr``."""
        if self.target in ("param", "status"):
            return self.condition.key
        return f"{self.target}.{self.condition.key}"


_MISSING: Any = object()


def lookup(params: dict[str, Any], key: str) -> Any:
    """The param ``key``, or a nested one through its dots; ``_MISSING`` if there is none.

    A literal key wins: ``{"a.b": 1}`` answers ``a.b`` before ``{"a": {"b": 2}}`` does.
    """
    if key in params:
        return params[key]
    head, dot, rest = key.partition(".")
    while dot:
        inner = params.get(head, _MISSING)
        if type(inner) is dict:
            found = lookup(inner, rest)
            if found is not _MISSING:
                return found
        more, dot, rest = rest.partition(".")
        head = f"{head}.{more}"
    return _MISSING


def is_missing(value: object) -> bool:
    """True for what :func:`lookup` returns when there is no such param."""
    return value is _MISSING


def parse_run_filter(expression: str) -> RunFilter:
    """A ``runs --filter`` expression: on params, ``metric.``, ``tag.``, ``param.`` or ``status``."""
    flt = parse_filter(expression)
    prefix, dot, name = flt.key.partition(".")
    if flt.key.casefold() == "status":
        return RunFilter("status", _status_filter(expression, flt))
    if dot and name and prefix in ("metric", "tag", "param"):
        if prefix == "tag":
            text = flt.value if type(flt.value) is str else _raw_value(expression)
            return RunFilter("tag", ParamFilter(name, flt.op, text))
        if prefix == "metric" and not (type(flt.value) in (int, float)):
            raise ValueError(f"bad filter expression {expression!r}: a metric compares to a number")
        return RunFilter(prefix, ParamFilter(name, flt.op, flt.value))  # type: ignore[arg-type]
    return RunFilter("param", flt)


def _raw_value(expression: str) -> str:
    found = _EXPRESSION.fullmatch(expression)
    assert found is not None  # parse_filter took it
    return found["value"].strip()


def _status_filter(expression: str, flt: ParamFilter) -> ParamFilter:
    if flt.op not in (FilterOp.EQ, FilterOp.NE):
        raise ValueError(f"bad filter expression {expression!r}: status takes = or != only")
    text = _raw_value(expression).upper()
    if text not in RunStatus.__members__:
        known = ", ".join(RunStatus.__members__)
        raise ValueError(f"bad filter expression {expression!r}: status is one of {known}")
    return ParamFilter("status", flt.op, text)


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
