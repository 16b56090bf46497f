"""Param filters for the SQLite store: which ones SQL can answer alone, and the rest in Python.

The ``params`` table keeps each value as its msgpack encoding, which msgspec makes
canonical (the shortest integer and string headers, every float as float64). An
``EQ`` filter on a scalar therefore matches exactly the rows whose stored bytes are
one of a few encodings, and SQLite compares bytes far faster than Python decodes
and compares values. Everything else (ordering, ``CONTAINS``, lists and dicts) is
decoded and matched in Python, with the same rules as every other store
(:func:`runjournal.filtering.value_matches`).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import msgspec

from runjournal.filtering import value_matches
from runjournal.model import FilterOp, ParamFilter

__all__ = ["equal_encodings", "select_matching"]

_encode = msgspec.msgpack.Encoder().encode
_decode = msgspec.msgpack.Decoder().decode

_INT_LOW, _INT_HIGH = -(2**63), 2**64  # what msgpack can hold as an integer


def equal_encodings(flt: ParamFilter) -> list[bytes] | None:
    """Every stored encoding of a value that ``flt`` (an ``EQ`` filter) accepts.

    ``None`` when SQL cannot decide the filter by bytes alone: another operator,
    or a list or dict to compare. Numbers compare as numbers (``64 == 64.0``, and
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
