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
The kinds, the typed columns and the Python side are store-neutral
(``runjournal.stores._search``); this module is SQLite's SQL over them.
"""

from __future__ import annotations

import math
import sqlite3
from typing import Any

import msgspec

from runjournal.model import FilterOp, ParamFilter
from runjournal.stores._search import (
    BOOL,
    DICT,
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
    select_matching,
)

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
_SQL_OPS = {FilterOp.LT: "<", FilterOp.LTE: "<=", FilterOp.GT: ">", FilterOp.GTE: ">="}


def condition(flt: ParamFilter) -> Condition:
    """The SQL condition on ``kind``, ``num``, ``text`` and ``value`` for a validated filter."""
    want = flt.value
    op = flt.op
    kind = KINDS[type(want)]
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
        upper = after_prefix(want)
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
