"""Param filters for the SQLite store, answered in SQL over the typed params index.

Each ``params`` row keeps, beside the value's msgpack encoding, its ``kind`` and
a typed copy: ``num`` for an int or a float (exact: an int stays an SQLite
INTEGER, which SQLite compares with a REAL without rounding; NaN is NULL there),
``text`` for a str. A bool has neither, so it never meets a number. SQLite then
answers ``LT``/``LTE``/``GT``/``GTE``, ``STARTS_WITH``, ``EQ`` and ``NE`` on
scalars through the ``(key, num)`` and ``(key, text)`` indexes, with the same
rules as every other store (:func:`runjournal.filtering.value_matches`): UTF-8
bytes order as code points do, so strings order alike too.

What SQL can only narrow, it narrows, and Python decides on the rows left:
``CONTAINS`` on a list (rows whose encoding holds an encoding of the wanted
value) and ``EQ``/``NE`` against a list or a dict (rows of that kind).
"""

from __future__ import annotations

import math
import sqlite3
from collections.abc import Sequence
from typing import Any, NamedTuple

import msgspec

from runjournal.filtering import value_matches
from runjournal.model import FilterOp, ParamFilter

__all__ = [
    "BOOL",
    "DICT",
    "FLOAT",
    "INT",
    "LIST",
    "NONE",
    "STR",
    "Condition",
    "condition",
    "equal_encodings",
    "param_columns",
    "select_matching",
    "typed_params_view",
]

_encode = msgspec.msgpack.Encoder().encode
_decode = msgspec.msgpack.Decoder().decode

# The kind of a stored value (``params.kind``); never renumber: files keep them.
NONE, BOOL, INT, FLOAT, STR, LIST, DICT = range(7)
_KINDS: dict[type, int] = {
    type(None): NONE,
    bool: BOOL,
    int: INT,
    float: FLOAT,
    str: STR,
    list: LIST,
    dict: DICT,
}
_SQL_OPS = {FilterOp.LT: "<", FilterOp.LTE: "<=", FilterOp.GT: ">", FilterOp.GTE: ">="}
_MAX_CHAR = 0x10FFFF


def param_columns(value: Any) -> tuple[int, int | float | None, str | None]:
    """``(kind, num, text)`` of a (checked) param value, as the params index keeps them."""
    kind = _KINDS[type(value)]
    if kind in (INT, FLOAT):
        return kind, value, None
    if kind == STR:
        return kind, None, value
    return kind, None, None


class Condition(NamedTuple):
    """One filter as SQL over a ``params`` row: ``sql`` with its ``args``.

    ``exact``: the rows it selects are the rows that match. Otherwise they are a
    superset, and each one is checked in Python.
    """

    sql: str
    args: list[Any]
    exact: bool


def condition(flt: ParamFilter) -> Condition:
    """The SQL condition on ``kind``, ``num``, ``text`` and ``value`` for a validated filter."""
    want = flt.value
    op = flt.op
    kind = _KINDS[type(want)]
    number = kind in (INT, FLOAT)
    if op is FilterOp.EQ:
        if number:
            if math.isnan(want):
                return Condition("0", [], True)  # NaN equals nothing
            return Condition("num = ?", [want], True)
        if kind == STR:
            return Condition("text = ?", [want], True)
        if kind in (NONE, BOOL):
            return Condition("kind = ? AND value = ?", [kind, _encode(want)], True)
        return Condition("kind = ?", [kind], False)
    if op is FilterOp.NE:
        if kind == NONE:
            return Condition("kind <> ?", [NONE], True)
        if number:
            if math.isnan(want):
                return Condition(f"kind IN ({INT}, {FLOAT})", [], True)
            # A NaN (NULL num) is a number unequal to every number.
            return Condition(
                f"kind IN ({INT}, {FLOAT}) AND (num IS NULL OR num <> ?)", [want], True
            )
        if kind == STR:
            return Condition("text <> ?", [want], True)
        if kind == BOOL:
            return Condition("kind = ? AND value <> ?", [BOOL, _encode(want)], True)
        return Condition("kind = ?", [kind], False)
    if op is FilterOp.STARTS_WITH:
        upper = _after_prefix(want)
        if upper is None:
            return Condition("text >= ?", [want], True)
        return Condition("text >= ? AND text < ?", [want, upper], True)
    if op is FilterOp.CONTAINS:
        # An item equal to the wanted value is encoded as one of these bytes, somewhere
        # in the list's encoding: a necessary condition, which Python then completes.
        codes = equal_encodings(ParamFilter(flt.key, FilterOp.EQ, want))
        if codes is None:  # a list or a dict: Python compares it with each item
            in_list = "kind = ?"
            list_args: list[Any] = [LIST]
        else:
            in_list = "kind = ? AND (" + " OR ".join(["instr(value, ?) > 0"] * len(codes)) + ")"
            list_args = [LIST, *codes]
            if not codes:
                in_list, list_args = "0", []
        if kind == STR:
            return Condition(f"instr(text, ?) > 0 OR ({in_list})", [want, *list_args], False)
        return Condition(in_list, list_args, False)
    column = "text" if kind == STR else "num"
    return Condition(f"{column} {_SQL_OPS[op]} ?", [want], True)


def _after_prefix(prefix: str) -> str | None:
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


def _column(index: int) -> Any:
    def column(value: bytes) -> Any:
        return param_columns(_decode(value))[index]

    return column


def typed_params_view(conn: sqlite3.Connection) -> None:
    """Let a read-only connection to a schema 3 file (no typed columns) answer as a current one.

    A temporary view named ``params`` (temp objects shadow the file's own) adds
    the typed columns, computed from each value as it is read. Nothing is
    written to the file; the connection must not be ``query_only`` yet.
    """
    for name, index in (("rj_kind", 0), ("rj_num", 1), ("rj_text", 2)):
        conn.create_function(name, 1, _column(index), deterministic=True)
    conn.execute(
        "CREATE TEMP VIEW IF NOT EXISTS params AS SELECT key, run_id, value, "
        "rj_kind(value) AS kind, rj_num(value) AS num, rj_text(value) AS text FROM main.params"
    )
