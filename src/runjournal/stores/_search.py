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
from collections.abc import Sequence
from typing import Any

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
    "after_prefix",
    "equal_encodings",
    "param_columns",
    "select_matching",
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
