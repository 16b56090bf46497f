"""The columnar codec of a metric chunk: the points of one ``(run, key)`` in one journal entry.

A chunk holds three columns, in logging order: ``step`` (int64, ≥ 0), ``value`` (float64)
and ``timestamp`` (Unix seconds). :func:`encode_chunk` turns them into bytes and
:func:`decode_chunk` gives them back as ``array.array`` columns (``'q'``, ``'d'``, ``'d'``),
which ``numpy.frombuffer`` takes without a copy.

What round-trips:

- steps exactly, in the given order (repeated and decreasing steps included);
- values bit for bit (NaN payloads, signalling and negative NaNs, -0.0, ±inf, subnormals);
- timestamps to the microsecond: the decoded timestamp is ``round(ts * 1e6) / 1e6``, both
  computed as Python computes them. That holds while every ``round(ts * 1e6)`` of the chunk
  is below 2**53 in magnitude (about ±285 years around 1970); a chunk with a timestamp
  outside that range keeps all its timestamps exactly (bit for bit) instead. Either way,
  decoding and encoding again gives the same bytes.

The layout (all integers little-endian)::

    header      version u8 (= 1), flags u8, count u32
    steps       kind u8; RANGE: start i64 | DELTAS: first i64, then a packed column
    values      kind u8 (RAW or XOR), then a packed column of the 64-bit patterns
    timestamps  kind u8; MICROS: first µs i64, first delta i64, then a packed column of the
                deltas of deltas | EXACT: a packed column of the float64 bit patterns

A *packed column* is ``width u8, length u32, zlib(planes)``: integers of ``width`` bytes
(1, 2, 4 or 8, the narrowest that holds them all), split into byte planes (every first
byte, then every second byte, ...) so that zlib sees the slowly changing high bytes as
runs. ``XOR`` stores each value's bits XORed with the previous value's (Gorilla-style),
``RAW`` the bits themselves; the encoder writes whichever is smaller. Flag bit 0 says that
the steps never decrease, so a reader can skip sorting (:func:`steps_sorted`).

Per-point work runs in C: ``array``, bytes slicing, big-int XOR, ``itertools`` and ``zlib``.
This module does no I/O.
"""

from __future__ import annotations

import itertools
import operator
import struct
import zlib
from array import array
from collections.abc import Iterable
from typing import Final

__all__ = ["FORMAT_VERSION", "decode_chunk", "encode_chunk", "steps_sorted"]

FORMAT_VERSION: Final = 1
"""The chunk layout this code writes; :func:`decode_chunk` refuses any other."""

_HEADER: Final = struct.Struct("<BBI")
_I64: Final = struct.Struct("<q")
_I64x2: Final = struct.Struct("<qq")
_PACKED: Final = struct.Struct("<BI")
_FLAG_SORTED: Final = 1
_KNOWN_FLAGS: Final = _FLAG_SORTED

_STEPS_RANGE: Final = 0
_STEPS_DELTAS: Final = 1
_VALUES_RAW: Final = 0
_VALUES_XOR: Final = 1
_TS_MICROS: Final = 0
_TS_EXACT: Final = 1

_MAX_COUNT: Final = 2**32 - 1
_MICROS_LIMIT: Final = 2**53
_ZLIB_LEVEL: Final = 6
_TYPECODE: Final = {1: "b", 2: "h", 4: "i", 8: "q"}
_SUB: Final = operator.sub
_MICROS: Final = (1e6).__mul__


def encode_chunk(
    steps: Iterable[int], values: Iterable[float], timestamps: Iterable[float]
) -> bytes:
    """Encode the columns of one chunk (equal lengths, in logging order) to bytes.

    ``steps`` must be ints in ``[0, 2**63)``, ``values`` floats, ``timestamps`` finite
    floats; ``array.array`` columns are taken as they are. Raises ``ValueError`` if the
    lengths differ or a step is negative.
    """
    step = steps if isinstance(steps, array) and steps.typecode == "q" else array("q", steps)
    value = values if isinstance(values, array) and values.typecode == "d" else array("d", values)
    stamp = (
        timestamps
        if isinstance(timestamps, array) and timestamps.typecode == "d"
        else array("d", timestamps)
    )
    n = len(step)
    if len(value) != n or len(stamp) != n:
        raise ValueError(
            f"chunk columns differ in length: {n} steps, {len(value)} values, "
            f"{len(stamp)} timestamps"
        )
    if n > _MAX_COUNT:
        raise ValueError(f"a chunk holds at most {_MAX_COUNT} points, got {n}")
    step_part, ordered = _encode_steps(step)
    flags = _FLAG_SORTED if ordered else 0
    return b"".join(
        (
            _HEADER.pack(FORMAT_VERSION, flags, n),
            step_part,
            _encode_values(value),
            _encode_timestamps(stamp),
        )
    )


def decode_chunk(chunk: bytes) -> tuple[array[int], array[float], array[float]]:
    """Decode a chunk into its ``(step, value, timestamp)`` columns.

    Raises ``ValueError`` with the reason if the bytes are not a whole, valid chunk of a
    known format version.
    """
    view = memoryview(chunk)
    _, n = _read_header(view)
    reader = _Reader(view, _HEADER.size)
    steps = _decode_steps(reader, n)
    values = _decode_values(reader, n)
    stamps = _decode_timestamps(reader, n)
    if reader.offset != len(view):
        raise ValueError(f"corrupt metric chunk: {len(view) - reader.offset} bytes left over")
    return steps, values, stamps


def steps_sorted(chunk: bytes) -> bool:
    """Whether the chunk's steps never decrease (read from the header, no decoding)."""
    flags, _ = _read_header(memoryview(chunk))
    return bool(flags & _FLAG_SORTED)


# -- the header and reading -----------------------------------------------------------------------
def _read_header(view: memoryview) -> tuple[int, int]:
    if len(view) < _HEADER.size:
        raise ValueError(f"corrupt metric chunk: {len(view)} bytes, shorter than its header")
    version, flags, n = _HEADER.unpack_from(view)
    if version != FORMAT_VERSION:
        raise ValueError(
            f"metric chunk of format version {version}; this runjournal reads version "
            f"{FORMAT_VERSION} (upgrade runjournal if the chunk is newer)"
        )
    if flags & ~_KNOWN_FLAGS:
        raise ValueError(f"corrupt metric chunk: unknown flags {flags:#04x}")
    return flags, n


class _Reader:
    """A cursor over a chunk that turns every short read into a ``ValueError``."""

    __slots__ = ("offset", "view")

    def __init__(self, view: memoryview, offset: int) -> None:
        self.view = view
        self.offset = offset

    def take(self, size: int) -> memoryview:
        end = self.offset + size
        if end > len(self.view):
            raise ValueError("corrupt metric chunk: truncated")
        part = self.view[self.offset : end]
        self.offset = end
        return part

    def unpack(self, layout: struct.Struct) -> tuple[int, ...]:
        return layout.unpack(self.take(layout.size))

    def kind(self, what: str, known: tuple[int, ...]) -> int:
        (kind,) = self.take(1)
        if kind not in known:
            raise ValueError(f"corrupt metric chunk: unknown {what} encoding {kind}")
        return kind


# -- packed integer columns ---------------------------------------------------------------------
def _pack_ints(column: array[int]) -> bytes:
    """``width, length, zlib(byte planes)`` of a signed integer column."""
    width = _width(column)
    data = column.tobytes() if width == 8 else array(_TYPECODE[width], column).tobytes()
    return _pack_planes(data, width)


def _pack_planes(data: bytes, width: int) -> bytes:
    planes = b"".join([data[k::width] for k in range(width)]) if width > 1 else data
    packed = zlib.compress(planes, _ZLIB_LEVEL)
    return _PACKED.pack(width, len(packed)) + packed


def _width(column: array[int]) -> int:
    if not column:
        return 1
    low, high = min(column), max(column)
    for width, bound in ((1, 2**7), (2, 2**15), (4, 2**31)):
        if -bound <= low and high < bound:
            return width
    return 8


def _unpack_planes(reader: _Reader, count: int, widths: tuple[int, ...]) -> tuple[bytes, int]:
    """The bytes of a packed column of ``count`` integers, back in their natural order."""
    width, size = reader.unpack(_PACKED)
    if width not in widths:
        raise ValueError(f"corrupt metric chunk: integer width {width}")
    try:
        planes = zlib.decompress(reader.take(size))
    except zlib.error as exc:
        raise ValueError(f"corrupt metric chunk: {exc}") from None
    if len(planes) != count * width:
        raise ValueError(
            f"corrupt metric chunk: a column of {len(planes)} bytes for {count} points"
        )
    if width == 1:
        return planes, width
    data = bytearray(len(planes))
    for k in range(width):
        data[k::width] = planes[k * count : (k + 1) * count]
    return bytes(data), width


def _unpack_ints(reader: _Reader, count: int) -> array[int]:
    data, width = _unpack_planes(reader, count, (1, 2, 4, 8))
    column = array(_TYPECODE[width])
    column.frombytes(data)
    return column if width == 8 else array("q", column)


# -- steps ----------------------------------------------------------------------------------------
def _encode_steps(step: array[int]) -> tuple[bytes, bool]:
    n = len(step)
    if n == 0:
        return bytes([_STEPS_RANGE]) + _I64.pack(0), True
    first = step[0]
    if first < 0 or min(step) < 0:
        raise ValueError(f"steps must be >= 0, got {min(step)}")
    if step[-1] - first == n - 1 and step == array("q", range(first, first + n)):
        return bytes([_STEPS_RANGE]) + _I64.pack(first), True
    deltas = array("q", map(_SUB, itertools.islice(step, 1, None), step))
    ordered = min(deltas, default=0) >= 0
    return bytes([_STEPS_DELTAS]) + _I64.pack(first) + _pack_ints(deltas), ordered


def _decode_steps(reader: _Reader, n: int) -> array[int]:
    kind = reader.kind("steps", (_STEPS_RANGE, _STEPS_DELTAS))
    (first,) = reader.unpack(_I64)
    if kind == _STEPS_RANGE:
        if first < 0 or first + n - 1 >= 2**63:
            raise ValueError(f"corrupt metric chunk: steps from {first} for {n} points")
        return array("q", range(first, first + n))
    deltas = _unpack_ints(reader, n - 1 if n else 0)
    try:
        return array("q", itertools.accumulate(deltas, initial=first))
    except OverflowError:
        raise ValueError("corrupt metric chunk: steps beyond 64 bits") from None


# -- values ---------------------------------------------------------------------------------------
def _encode_values(value: array[float]) -> bytes:
    raw = value.tobytes()
    plain = bytes([_VALUES_RAW]) + _pack_planes(raw, 8)
    if len(value) < 2:
        return plain
    bits = int.from_bytes(raw, "little")
    xored = (bits ^ (bits << 64)).to_bytes(len(raw) + 8, "little")[: len(raw)]
    xor = bytes([_VALUES_XOR]) + _pack_planes(xored, 8)
    return xor if len(xor) < len(plain) else plain


def _decode_values(reader: _Reader, n: int) -> array[float]:
    kind = reader.kind("values", (_VALUES_RAW, _VALUES_XOR))
    data, _ = _unpack_planes(reader, n, (8,))
    if kind == _VALUES_XOR:
        data = _prefix_xor(data)
    column = array("d")
    column.frombytes(data)
    return column


def _prefix_xor(data: bytes) -> bytes:
    """Undo the XOR with the previous value: a running XOR over 64-bit lanes.

    ``log2(n)`` rounds of shift-and-XOR on one big integer, with no per-point Python work.
    """
    size = len(data)
    bits = int.from_bytes(data, "little")
    mask = (1 << (8 * size)) - 1
    shift = 64
    while shift < 8 * size:
        bits ^= (bits << shift) & mask
        shift *= 2
    return bits.to_bytes(size, "little")


# -- timestamps -----------------------------------------------------------------------------------
def _encode_timestamps(stamp: array[float]) -> bytes:
    n = len(stamp)
    if n == 0:
        return bytes([_TS_MICROS]) + _I64x2.pack(0, 0) + _pack_ints(array("q"))
    try:
        micros = array("q", map(round, map(_MICROS, stamp)))
    except (OverflowError, ValueError):  # beyond int64, or not finite: keep them exactly
        micros = None
    if micros is None or min(micros) <= -_MICROS_LIMIT or max(micros) >= _MICROS_LIMIT:
        return bytes([_TS_EXACT]) + _pack_planes(stamp.tobytes(), 8)
    deltas = array("q", map(_SUB, itertools.islice(micros, 1, None), micros))
    dod = array("q", map(_SUB, itertools.islice(deltas, 1, None), deltas))
    head = _I64x2.pack(micros[0], deltas[0] if deltas else 0)
    return bytes([_TS_MICROS]) + head + _pack_ints(dod)


def _decode_timestamps(reader: _Reader, n: int) -> array[float]:
    kind = reader.kind("timestamps", (_TS_MICROS, _TS_EXACT))
    if kind == _TS_EXACT:
        data, _ = _unpack_planes(reader, n, (8,))
        column = array("d")
        column.frombytes(data)
        return column
    first, delta = reader.unpack(_I64x2)
    dod = _unpack_ints(reader, max(n - 2, 0))
    if n == 0:
        return array("d")
    deltas = itertools.accumulate(dod, initial=delta)
    micros = itertools.accumulate(itertools.islice(deltas, n - 1), initial=first)
    return array("d", map(operator.truediv, micros, itertools.repeat(1e6)))
