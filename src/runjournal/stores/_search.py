"""The typed params index that SQL stores keep beside each encoded value, store-neutral.

Each stored param has a *kind* (a small int, the same in every store's files) and a
typed copy of its value: a number (int or float, exact) or a str; a bool has
neither, so it never meets a number. A store's SQL answers the filters it can
from those columns (its own dialect: ``sqlite.filters``, ``postgres.filters``);
what SQL can only narrow, Python decides here on the rows left, with the rules of
:func:`runjournal.filtering.value_matches`.

Pure: no database module is imported here.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any, NamedTuple

import msgspec

from runjournal.filtering import value_matches
from runjournal.model import FilterOp, ParamFilter

__all__ = [
    "BOOL",
    "DICT",
    "FLOAT",
    "INT",
    "KINDS",
    "LIST",
    "NONE",
    "STR",
    "Condition",
    "SelectionSql",
    "after_prefix",
    "equal_encodings",
    "param_columns",
    "select_matching",
    "select_runs",
]

_encode = msgspec.msgpack.Encoder().encode
_decode = msgspec.msgpack.Decoder().decode

# The kind of a stored value (``params.kind``); never renumber: files keep them.
NONE, BOOL, INT, FLOAT, STR, LIST, DICT = range(7)
KINDS: dict[type, int] = {
    type(None): NONE,
    bool: BOOL,
    int: INT,
    float: FLOAT,
    str: STR,
    list: LIST,
    dict: DICT,
}
"""The kind of each type a (checked) param value can have."""

_MAX_CHAR = 0x10FFFF


def param_columns(value: Any) -> tuple[int, int | float | None, str | None]:
    """``(kind, num, text)`` of a (checked) param value, as the params index keeps them."""
    kind = KINDS[type(value)]
    if kind in (INT, FLOAT):
        return kind, value, None
    if kind == STR:
        return kind, None, value
    return kind, None, None


def after_prefix(prefix: str) -> str | None:
    """The least string above every string that starts with ``prefix`` (None: there is none)."""
    chars = list(prefix)
    while chars and ord(chars[-1]) == _MAX_CHAR:
        chars.pop()
    if not chars:
        return None
    code = ord(chars[-1]) + 1
    if 0xD800 <= code <= 0xDFFF:  # surrogates are never stored (nor can they be bound)
        code = 0xE000
    chars[-1] = chr(code)
    return "".join(chars)


_INT_LOW, _INT_HIGH = -(2**63), 2**64  # what msgpack can hold as an integer


def equal_encodings(flt: ParamFilter) -> list[bytes] | None:
    """Every stored encoding of a value that ``flt`` (an ``EQ`` filter) accepts.

    ``None`` when bytes alone cannot decide it: another operator, or a list or
    dict to compare. Numbers compare as numbers (``64 == 64.0``, and
    ``0 == -0.0``), a bool never equals a number, and NaN equals nothing.
    """
    if flt.op is not FilterOp.EQ:
        return None
    want = flt.value
    kind = type(want)
    if want is None or kind is str or kind is bool:
        return [_encode(want)]
    ints: list[int] = []
    floats: list[float] = []
    if kind is int:
        ints.append(want)
        try:
            as_float = float(want)
        except OverflowError:
            as_float = math.inf
        if as_float == want:  # exact: Python compares an int and a float without rounding
            floats.append(as_float)
    elif kind is float:
        if math.isnan(want):
            return []
        floats.append(want)
        if want.is_integer():
            ints.append(int(want))
    else:
        return None
    if want == 0:
        ints.append(0)
        floats += [0.0, -0.0]
    encodings = {_encode(i) for i in ints if _INT_LOW <= i < _INT_HIGH}
    return sorted(encodings | {_encode(f) for f in floats})


def select_matching(
    filters: Sequence[ParamFilter],
    values: Sequence[tuple[str, str, bytes]],
    scope: set[str] | None,
) -> set[str]:
    """The run ids (within ``scope``, if given) whose ``(key, run_id, value)`` rows match all."""
    by_key: dict[str, list[tuple[str, bytes]]] = {}
    for key, run_id, value in values:
        by_key.setdefault(key, []).append((run_id, value))
    selected = scope
    for flt in filters:
        selected = {
            run_id
            for run_id, value in by_key.get(flt.key, ())
            if (selected is None or run_id in selected) and value_matches(_decode(value), flt)
        }
        if not selected:
            break
    return selected or set()


class Condition(NamedTuple):
    """One filter as SQL over a ``params`` row: ``sql`` with its ``args``.

    ``exact``: the rows it selects are the rows that match. Otherwise they are a
    superset, and each one is checked in Python.
    """

    sql: str
    args: list[Any]
    exact: bool


class SelectionSql(NamedTuple):
    """What :func:`select_runs` writes differently for each SQL store."""

    params: str
    """The ``params`` table's name (with its schema, if any)."""
    mark: str
    """The driver's placeholder."""
    ids: Callable[[set[str]], tuple[str, Any]]
    """A query of the given run ids as one column, and its one argument."""
    true: str
    """A condition that every row meets."""


def select_runs(
    checked: Sequence[ParamFilter],
    condition: Callable[[ParamFilter], Condition],
    read: Callable[[str, list[Any]], Sequence[tuple[str, str, bytes]]],
    sql: SelectionSql,
) -> tuple[str, list[Any]] | None:
    """A condition over ``runs`` that selects the runs matching every filter, with its args.

    The exact conditions intersect in SQL. The rows that the other filters' conditions
    select (among those runs) are read with ``read`` and matched here. None: nothing matches.
    """
    parts: list[str] = []
    args: list[Any] = []
    narrowed: list[tuple[ParamFilter, Condition]] = []
    for flt in checked:
        cond = condition(flt)
        if cond.exact:
            parts.append(f"SELECT run_id FROM {sql.params} WHERE key = {sql.mark} AND ({cond.sql})")
            args += [flt.key, *cond.args]
        else:
            narrowed.append((flt, cond))
    if narrowed:
        exact = " INTERSECT ".join(parts)
        among = f" AND run_id IN ({exact})" if parts else ""
        query = " UNION ALL ".join(
            f"SELECT key, run_id, value FROM {sql.params} WHERE key = {sql.mark} "
            f"AND ({cond.sql}){among}"
            for _, cond in narrowed
        )
        query_args: list[Any] = []
        for flt, cond in narrowed:
            query_args += [flt.key, *cond.args, *(args if parts else ())]
        found = select_matching([flt for flt, _ in narrowed], read(query, query_args), None)
        if not found:
            return None
        ids, ids_arg = sql.ids(found)
        parts, args = [ids], [ids_arg]
    if not parts:
        return sql.true, []
    return "id IN (" + " INTERSECT ".join(parts) + ")", args
