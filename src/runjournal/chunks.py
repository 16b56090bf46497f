"""The columnar codec of a metric chunk: the points of one ``(run, key)`` in one journal entry.

A chunk holds three columns, in logging order: ``step`` (int64, ≥ 0), ``value`` (float64)
and ``timestamp`` (Unix seconds, float64). :func:`encode_chunk` turns them into bytes and
:func:`decode_chunk` gives them back as ``array.array`` columns (``'q'``, ``'d'``, ``'d'``),
which ``numpy.frombuffer`` takes without a copy.

What round-trips: everything, exactly. Steps in the given order (repeated and decreasing
steps included), values and timestamps bit for bit (NaN payloads, signalling and negative
NaNs, -0.0, ±inf, subnormals). A chunk of this format decoded and encoded again gives the same
bytes.

The layout (all integers little-endian)::

    header      version u8 (= 3), flags u8, count u32
    steps       a column of the int64 steps
    values      kind u8 (RAW), then a column of the 64-bit patterns
    timestamps  a column of the float64 bit patterns

A *column* is eight byte planes (every first byte of the 64-bit little-endian words, then
every second byte, ...), each stored as ``kind u8`` and then: CONST, the one byte that
fills the plane; ZSTD, ``length u32`` and the plane as one Zstandard frame; RAW, the plane
as it is. A training curve's steps and timestamps change slowly, so most of their high
planes are one repeated byte, and the compressor sees the rest as runs. A plane is kept
compressed only where that saves a tenth of it (judged on a sample first): the noisy low
bytes of values and timestamps stay raw, which costs neither the writer nor the reader.
Flag bit 0 says that the steps never decrease, so a reader can skip sorting
(:func:`steps_sorted`). The values' kind byte leaves room for another encoding.

Version 2, which the releases before Zstandard wrote, is the same layout with ZLIB planes
(``length u32`` and the zlib-compressed plane) where version 3 has ZSTD ones; both are read.
Why Zstandard: on the planes that compress by a third or less (a timestamp's or a value's
middle bytes), zlib's decoder spends about 10 ns a byte and its level-1 encoder 35-50 ns;
Zstandard's spend about 1 and 5, for sizes within a few percent (measured on the benchmark
series: ``get_metric_arrays`` of 1,000,000 points spent half its time in zlib).

Why no XOR of each value with the previous (Gorilla): measured on the benchmark series,
it saved at most 7 % of the bytes and made decoding 2–2.5 times slower (undoing it is a
running XOR). A byte that XOR would zero is a byte equal to the one before it, which the
byte planes already hand the compressor as a run.

Why no deltas: decoding must stay in C. Python has no bulk prefix sum, and a per-point
``itertools.accumulate`` costs more than reading the whole chunk; byte planes give the
compressor what deltas would (the slowly changing high bytes become runs) and decode with
slicing alone. Per-point work runs in C: ``array``, bytes slicing, big-int arithmetic, ``zlib``
and Zstandard. This module does no I/O.
"""

from __future__ import annotations

import bisect
import functools
import itertools
import operator
import struct
import threading
import zlib
from array import array
from collections.abc import Callable, Iterable, Sequence
from typing import Final, NamedTuple

import zstandard

from runjournal.model import MetricArrays

__all__ = [
    "FORMAT_VERSION",
    "MAX_POINTS",
    "chunk_length",
    "decode_chunk",
    "decode_chunks",
    "decode_window",
    "encode_chunk",
    "steps_sorted",
]

FORMAT_VERSION: Final = 3
"""The chunk layout this code writes. :func:`decode_chunk` reads it and version 2 (zlib
planes), and refuses any other.

(Version 1, with delta-coded steps and timestamps, was never stored by a release.)"""
_ZLIB_VERSION: Final = 2

_HEADER: Final = struct.Struct("<BBI")
_U32: Final = struct.Struct("<I")
_FLAG_SORTED: Final = 1
_KNOWN_FLAGS: Final = _FLAG_SORTED

_VALUES_RAW: Final = 0
_PLANE_CONST: Final = 0
_PLANE_ZLIB: Final = 1
_PLANE_RAW: Final = 2
_PLANE_ZSTD: Final = 3
_COMPRESSED: Final = {_ZLIB_VERSION: _PLANE_ZLIB, FORMAT_VERSION: _PLANE_ZSTD}
"""The compressed plane kind of each chunk version: the other version's is corrupt."""

MAX_POINTS: Final = 2**24
"""The most points one chunk holds; the writer cuts a longer batch into several chunks.

The bound is what lets a reader refuse a corrupt count before it allocates the columns."""

_WIDTH: Final = 8
_ZSTD_LEVEL: Final = 3
"""Zstandard's default level: measured on the benchmark series, level 1 kept the noisiest
compressed planes 10-20 % larger and saved the writer only a few ns a point."""
_WINDOW_LOG_MAX: Final = 24
"""The largest window a plane's frame may ask of the decoder: 16 MiB holds a whole plane of
:data:`MAX_POINTS` points, and a corrupt frame header can ask no more memory than that."""
_GAIN: Final = 0.9
"""A plane is kept compressed only if that saves a tenth of it: a noisy plane costs
decompression time for almost nothing."""
_SAMPLE: Final = 256
_NOISY_CHANGES: Final = 115


def encode_chunk(
    steps: Iterable[int], values: Iterable[float], timestamps: Iterable[float]
) -> bytes:
    """Encode the columns of one chunk (equal lengths, in logging order) to bytes.

    ``steps`` must be ints in ``[0, 2**63)``, ``values`` and ``timestamps`` floats;
    ``array.array`` columns are taken as they are. Raises ``ValueError`` if the lengths
    differ or a step is negative.
    """
    step = steps if isinstance(steps, array) and steps.typecode == "q" else array("q", steps)
    value = _floats(values)
    stamp = _floats(timestamps)
    n = len(step)
    if len(value) != n or len(stamp) != n:
        raise ValueError(
            f"chunk columns differ in length: {n} steps, {len(value)} values, "
            f"{len(stamp)} timestamps"
        )
    if n > MAX_POINTS:
        raise ValueError(f"a chunk holds at most {MAX_POINTS} points, got {n}")
    ordered = _never_decreasing(step)
    if n and (step[0] if ordered else min(step)) < 0:
        raise ValueError(f"steps must be >= 0, got {min(step)}")
    flags = _FLAG_SORTED if ordered else 0
    return b"".join(
        (
            _HEADER.pack(FORMAT_VERSION, flags, n),
            _pack(step.tobytes()),
            bytes((_VALUES_RAW,)),
            _pack(value.tobytes()),
            _pack(stamp.tobytes()),
        )
    )


def decode_chunk(chunk: bytes) -> tuple[array[int], array[float], array[float]]:
    """Decode a chunk into its ``(step, value, timestamp)`` columns.

    Raises ``ValueError`` with the reason if the bytes are not a whole, valid chunk of a
    known format version.
    """
    # One chunk (what replaying the journal decodes, entry by entry) skips decode_chunks'
    # buffer for a whole series: each column is assembled, then copied into a new array.
    view = memoryview(chunk)
    _, n = _read_header(view)
    steps, values, stamps = array("q"), array("d"), array("d")
    _read_columns(
        view, n, bytearray(n * _WIDTH), (steps.frombytes, values.frombytes, stamps.frombytes)
    )
    return steps, values, stamps


def decode_chunks(
    chunks: Sequence[bytes],
) -> tuple[array[int], array[float], array[float], bool]:
    """Decode chunks, one after the other, into one set of columns.

    Returns the columns and whether the steps never decrease across all of them (from
    each chunk's flag and the steps at their seams). Each column is written once, into
    a buffer sized for the whole series, so a long series costs no regrowing.
    Raises ``ValueError`` like :func:`decode_chunk`.
    """
    views = [memoryview(chunk) for chunk in chunks]
    headers = [_read_header(view) for view in views]
    total = sum(n for _, n in headers)
    largest = max((n for _, n in headers), default=0)
    columns = (array("q", [0]) * total, array("d", [0.0]) * total, array("d", [0.0]) * total)
    # Each chunk's column is assembled in a scratch buffer of its own size, which stays in
    # the CPU cache for the strided copies of its planes, then copied whole into place.
    scratch = bytearray(largest * _WIDTH)
    seams: list[int] = []
    ordered = True
    offset = 0
    with (
        memoryview(columns[0]).cast("B") as step_out,
        memoryview(columns[1]).cast("B") as value_out,
        memoryview(columns[2]).cast("B") as stamp_out,
    ):
        for view, (flags, n) in zip(views, headers, strict=True):
            place = slice(offset * _WIDTH, (offset + n) * _WIDTH)
            _read_columns(
                view,
                n,
                scratch,
                [
                    functools.partial(out.__setitem__, place)
                    for out in (step_out, value_out, stamp_out)
                ],
            )
            ordered = ordered and bool(flags & _FLAG_SORTED)
            if offset and n:
                seams.append(offset)
            offset += n
    steps = columns[0]
    if ordered:
        ordered = all(steps[i - 1] <= steps[i] for i in seams)
    return steps, columns[1], columns[2], ordered


def decode_window(
    chunk: bytes, low: int, high: int
) -> tuple[array[int], array[float], array[float]]:
    """The ``(step, value, timestamp)`` columns of the chunk's points with step in ``[low, high]``.

    In chunk order, as :func:`decode_chunk` would give them once filtered. For a chunk in
    step order (the usual case) only its steps are decoded whole: the window is found by
    bisection, and of each value and timestamp byte plane only the part up to the window's
    end is decompressed and copied. A chart's zoom or a range's edge reads a few hundred
    points of a chunk of tens of thousands. Raises ``ValueError`` like :func:`decode_chunk`,
    for the parts it reads.
    """
    view = memoryview(chunk)
    flags, n = _read_header(view)
    reader = _Reader(view)
    step_planes = _read_planes(reader, n, n)
    ordered = bool(flags & _FLAG_SORTED)
    if ordered:
        # Bisected on the planes themselves: about 2 * log2(n) words are read, not n.
        begin = bisect.bisect_left(range(n), low, key=step_planes.word)
        end = bisect.bisect_right(range(n), high, begin, key=step_planes.word)
    else:
        begin, end = 0, n  # every point is decoded, then the window's are picked out
    _read_values_kind(reader)
    out = bytearray((end - begin) * _WIDTH)
    columns = (array("q"), array("d"), array("d"))
    columns[0].frombytes(step_planes.assemble(begin, end, out))
    for column in columns[1:]:
        column.frombytes(_read_planes(reader, n, end).assemble(begin, end, out))
    _check_end(reader)
    if ordered:
        return columns
    return MetricArrays(*columns).within(low, high, ordered=False)


def steps_sorted(chunk: bytes) -> bool:
    """Whether the chunk's steps never decrease (read from the header, no decoding)."""
    flags, _ = _read_header(memoryview(chunk))
    return bool(flags & _FLAG_SORTED)


def chunk_length(chunk: bytes) -> int:
    """How many points the chunk holds (read from the header, no decoding)."""
    _, n = _read_header(memoryview(chunk))
    return int(n)


def _floats(items: Iterable[float]) -> array[float]:
    if isinstance(items, array) and items.typecode == "d":
        return items
    return array("d", items)


def _never_decreasing(step: array[int]) -> bool:
    n = len(step)
    if n > 1 and step[-1] - step[0] == n - 1:
        # Consecutive steps (nearly every chunk), recognised by big-int arithmetic over all
        # of them at once: the steps equal ``first`` in every lane plus 0, 1, 2, ...
        lanes = int.from_bytes(step.tobytes(), "little")
        ones, counting = _lanes(n)
        if lanes == step[0] * ones + counting:
            return True
    return all(map(operator.le, step, itertools.islice(step, 1, None)))


_LANES_KEPT: Final = 8
_LANES_MOST: Final = 1 << 16
_lanes_of: dict[int, tuple[int, int]] = {}
_widest: list[tuple[int, int, int]] = [(0, 0, 0)]


def _lanes(n: int) -> tuple[int, int]:
    """``n`` lanes of 1, and the lanes 0, 1, 2, ..., each as one integer.

    Kept for the few sizes the writer's chunks come in (up to 65,536 points, 1 MiB); any
    other size is cut from the widest pair made so far (a mask), not built point by point.
    """
    found = _lanes_of.get(n)
    if found is None:
        widest = _widest[0]
        if widest[0] < n:
            ones = int.from_bytes(array("q", (1,)).tobytes() * n, "little")
            widest = (n, ones, int.from_bytes(array("q", range(n)).tobytes(), "little"))
            if n > _LANES_MOST:
                return widest[1], widest[2]  # a rare huge chunk: not worth the memory kept
            _widest[0] = widest
        mask = (1 << (64 * n)) - 1
        found = (widest[1] & mask, widest[2] & mask)
        if len(_lanes_of) >= _LANES_KEPT:
            _lanes_of.clear()
        _lanes_of[n] = found
    return found


# -- the header and reading -----------------------------------------------------------------------
def _read_header(view: memoryview) -> tuple[int, int]:
    """``(flags, count)`` of a chunk of a version this code reads."""
    if len(view) < _HEADER.size:
        raise ValueError(f"corrupt metric chunk: {len(view)} bytes, shorter than its header")
    version, flags, n = _HEADER.unpack_from(view)
    if version not in _COMPRESSED:
        raise ValueError(
            f"metric chunk of format version {version}; this runjournal reads versions "
            f"{_ZLIB_VERSION} and {FORMAT_VERSION} (upgrade runjournal if the chunk is newer)"
        )
    if flags & ~_KNOWN_FLAGS:
        raise ValueError(f"corrupt metric chunk: unknown flags {flags:#04x}")
    if n > MAX_POINTS:
        raise ValueError(f"corrupt metric chunk: {n} points, more than a chunk holds")
    return flags, n


class _Reader:
    """A cursor over a chunk, past its header, that turns every short read into a ``ValueError``.

    ``compressed`` is the kind of compressed plane that the chunk's version holds.
    """

    __slots__ = ("compressed", "offset", "view")

    def __init__(self, view: memoryview) -> None:
        self.view = view
        self.offset = _HEADER.size
        self.compressed = _COMPRESSED[view[0]]

    def take(self, size: int) -> memoryview:
        end = self.offset + size
        if end > len(self.view):
            raise ValueError("corrupt metric chunk: truncated")
        part = self.view[self.offset : end]
        self.offset = end
        return part

    def byte(self) -> int:
        (value,) = self.take(1)
        return int(value)


# -- columns of byte planes -----------------------------------------------------------------------
def _pack(data: bytes) -> bytes:
    """The eight byte planes of a column of 64-bit words, each stored its cheapest way."""
    n = len(data) // _WIDTH
    parts: list[bytes] = []
    compress = _contexts.compressor.compress
    for k in range(_WIDTH):
        plane = data[k::_WIDTH]
        if not plane or plane.count(plane[:1]) == n:
            parts.append(bytes((_PLANE_CONST, plane[0] if plane else 0)))
            continue
        # A noisy plane (the low bytes of values and timestamps) is recognised from a
        # sample, so that the compressor, the writer's largest cost, runs only where it gains.
        if n > _SAMPLE and _noisy(plane[:_SAMPLE]):
            parts += (bytes((_PLANE_RAW,)), plane)
            continue
        packed = compress(plane)
        if len(packed) + _U32.size < _GAIN * n:
            parts += (bytes((_PLANE_ZSTD,)), _U32.pack(len(packed)), packed)
        else:
            parts += (bytes((_PLANE_RAW,)), plane)
    return b"".join(parts)


class _Contexts(threading.local):
    """This thread's Zstandard contexts, made once: making one costs more than a small plane.

    (A context serves one thread at a time, and several threads encode and decode chunks.)
    """

    def __init__(self) -> None:
        self.compressor = zstandard.ZstdCompressor(level=_ZSTD_LEVEL)
        self.decompressor = zstandard.ZstdDecompressor(max_window_size=1 << _WINDOW_LOG_MAX)


_contexts = _Contexts()


def _noisy(sample: bytes) -> bool:
    """Whether a plane looks like noise to a compressor, judged from a sample without one.

    Each byte is XORed with the one before it (two big ints, all in C): the runs, counters
    and repeating patterns that zlib shrinks give few distinct results, the 255 XORs of random
    bytes about 160 (measured on training curves, steps and timestamps: at most 84 for a plane
    that zlib shrank by a tenth, at least 149 for one it did not). A zlib trial on so small a
    sample judges worse: it cannot see a counter's low byte repeat.
    """
    size = len(sample) - 1
    changes = int.from_bytes(sample[1:], "little") ^ int.from_bytes(sample[:-1], "little")
    return len(set(changes.to_bytes(size, "little"))) > _NOISY_CHANGES


class _Planes(NamedTuple):
    """A column's eight byte planes as read: the constant bytes, and the others' bytes."""

    fill: bytearray
    """Each constant plane's byte at its place in the word, 0 elsewhere."""
    varying: list[tuple[int, bytes | memoryview]]
    """``(k, plane)`` for each plane that is not constant; each holds at least the words asked."""

    def assemble(self, begin: int, end: int, out: bytearray) -> memoryview:
        """Words ``begin..end-1`` into the start of ``out``; a view of them."""
        size = (end - begin) * _WIDTH
        # The constant planes are one repeated word, written at memcpy speed; only the
        # others take a strided copy each.
        if len(self.varying) < _WIDTH:
            out[:size] = bytes(self.fill) * (end - begin)
        for k, plane in self.varying:
            out[k:size:_WIDTH] = plane[begin:end]
        return memoryview(out)[:size]

    def word(self, i: int) -> int:
        """Word ``i`` as a signed 64-bit integer, read from the planes alone."""
        value = int.from_bytes(self.fill, "little")
        for k, plane in self.varying:
            value |= plane[i] << (8 * k)
        return value - (1 << 64) if value >> 63 else value


def _read_columns(
    view: memoryview, n: int, scratch: bytearray, put: Sequence[Callable[[memoryview], object]]
) -> None:
    """Read a whole chunk's three columns, in order, each handed to its ``put`` in turn.

    Each column is assembled in ``scratch`` (``n`` words at least), which the next one
    overwrites: ``put`` copies it away.
    """
    reader = _Reader(view)
    put[0](_unpack(reader, n, scratch))
    _read_values_kind(reader)
    put[1](_unpack(reader, n, scratch))
    put[2](_unpack(reader, n, scratch))
    _check_end(reader)


def _read_values_kind(reader: _Reader) -> None:
    kind = reader.byte()
    if kind != _VALUES_RAW:
        raise ValueError(f"corrupt metric chunk: unknown values encoding {kind}")


def _check_end(reader: _Reader) -> None:
    left = len(reader.view) - reader.offset
    if left:
        raise ValueError(f"corrupt metric chunk: {left} bytes left over")


def _read_planes(reader: _Reader, n: int, limit: int) -> _Planes:
    """Read past a column of ``n`` words; of each plane, inflate the first ``limit`` bytes."""
    # The cursor is kept in locals: a short chunk's column is mostly its 8 plane headers,
    # and a method call per byte read was most of the time of replaying small chunks.
    view = reader.view
    size = len(view)
    offset = reader.offset
    fill = bytearray(_WIDTH)
    varying: list[tuple[int, bytes | memoryview]] = []
    for k in range(_WIDTH):
        if offset >= size:
            raise ValueError("corrupt metric chunk: truncated")
        kind = view[offset]
        if kind == _PLANE_CONST:
            if offset + 2 > size:
                raise ValueError("corrupt metric chunk: truncated")
            fill[k] = view[offset + 1]
            offset += 2
            continue
        if kind == _PLANE_RAW:
            end = offset + 1 + n
            if end > size:
                raise ValueError("corrupt metric chunk: truncated")
            varying.append((k, view[offset + 1 : end]))
            offset = end
        elif kind == reader.compressed:
            if offset + 1 + _U32.size > size:
                raise ValueError("corrupt metric chunk: truncated")
            (length,) = _U32.unpack_from(view, offset + 1)
            begin = offset + 1 + _U32.size
            offset = begin + length
            if offset > size:
                raise ValueError("corrupt metric chunk: truncated")
            if not limit:
                varying.append((k, b""))  # (a max_length of 0 would inflate it all)
                continue
            varying.append((k, _inflate(kind, view[begin:offset], n, limit)))
        else:
            raise ValueError(f"corrupt metric chunk: unknown byte plane encoding {kind}")
    reader.offset = offset
    return _Planes(fill, varying)


def _inflate(kind: int, packed: memoryview, n: int, limit: int) -> bytes | memoryview:
    """The first ``limit`` (≥ 1) bytes of a compressed plane of ``n``; every part read is checked.

    Bounded: corrupt bytes inflate to no more than the plane's size.
    """
    if kind == _PLANE_ZSTD:
        decompressor = _contexts.decompressor
        try:
            # A frame says its size first (the writer's always do): checked before any
            # memory is set aside for it. The whole plane is inflated, about a byte a ns.
            size = zstandard.frame_content_size(packed)
            if size != n:
                said = "says no size" if size < 0 else f"says {size} bytes"
                raise ValueError(
                    f"corrupt metric chunk: a byte plane's frame {said}, for {n} points"
                )
            plane = decompressor.decompress(packed, allow_extra_data=False)
        except zstandard.ZstdError as exc:
            raise ValueError(f"corrupt metric chunk: {exc}") from None
        if len(plane) != n:
            raise ValueError(
                f"corrupt metric chunk: a byte plane of {len(plane)} bytes for {n} points"
            )
        return plane if limit == n else memoryview(plane)[:limit]
    whole = limit == n
    try:
        inflated = zlib.decompressobj().decompress(packed, n + 1 if whole else limit)
    except zlib.error as exc:
        raise ValueError(f"corrupt metric chunk: {exc}") from None
    if len(inflated) != (n if whole else limit):
        raise ValueError(
            f"corrupt metric chunk: a byte plane of {len(inflated)} bytes for {n} points"
        )
    return inflated


def _unpack(reader: _Reader, n: int, scratch: bytearray) -> memoryview:
    """Read a column of ``n`` 64-bit words into the start of ``scratch``; a view of them."""
    return _read_planes(reader, n, n).assemble(0, n, scratch)
