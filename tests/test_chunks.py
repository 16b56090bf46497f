"""The metric chunk codec: what round-trips, how it is laid out, and what it refuses."""

from __future__ import annotations

import itertools
import json
import math
import random
import struct
import zlib
from array import array
from collections.abc import Callable
from pathlib import Path

import pytest
import zstandard
from hypothesis import given
from hypothesis import strategies as st

from runjournal.chunks import (
    FORMAT_VERSION,
    MAX_POINTS,
    chunk_length,
    decode_chunk,
    decode_window,
    encode_chunk,
    steps_sorted,
)

ZLIB, ZSTD = 1, 3  # the compressed plane kinds of versions 2 and 3
STEPS = st.integers(0, 2**63 - 1)
BITS = st.integers(0, 2**64 - 1)
TIMESTAMPS = st.floats(allow_nan=False, allow_infinity=False)
WALL_CLOCK = st.floats(-2e9, 5e9)


def _float(bits: int) -> float:
    value: float = struct.unpack("<d", struct.pack("<Q", bits))[0]
    return value


def _bits(column: array[float]) -> bytes:
    return column.tobytes()


@st.composite
def step_columns(draw: st.DrawFn) -> list[int]:
    shape = draw(st.sampled_from(["consecutive", "any", "sorted", "repeated", "small steps"]))
    if shape == "consecutive":
        start = draw(st.integers(0, 2**62))
        return list(range(start, start + draw(st.integers(0, 300))))
    if shape == "repeated":
        return [draw(STEPS)] * draw(st.integers(0, 50))
    if shape == "small steps":
        first = draw(st.integers(0, 1000))
        deltas = draw(st.lists(st.integers(-3, 5), max_size=200))
        out = [first]
        for d in deltas:
            out.append(max(out[-1] + d, 0))
        return out
    steps = draw(st.lists(STEPS, max_size=100))
    return sorted(steps) if shape == "sorted" else steps


@st.composite
def chunks(
    draw: st.DrawFn, timestamps: st.SearchStrategy[float] = WALL_CLOCK
) -> tuple[list[int], list[float], list[float]]:
    steps = draw(step_columns())
    n = len(steps)
    values = [_float(b) for b in draw(st.lists(BITS, min_size=n, max_size=n))]
    stamps = draw(st.lists(timestamps, min_size=n, max_size=n))
    return steps, values, stamps


@given(chunks())
def test_every_column_round_trips_exactly(columns: tuple[list[int], ...]) -> None:
    steps, values, stamps = columns
    got_steps, got_values, got_stamps = decode_chunk(encode_chunk(steps, values, stamps))
    assert got_steps.typecode == "q" and got_values.typecode == "d"
    assert got_stamps.typecode == "d"
    assert list(got_steps) == steps
    assert _bits(got_values) == _bits(array("d", values))
    assert _bits(got_stamps) == _bits(array("d", stamps))


@given(chunks(TIMESTAMPS))
def test_any_finite_timestamp_keeps_its_bits(columns: tuple[list[int], ...]) -> None:
    """More than the microsecond the issue asks for: every timestamp comes back exactly."""
    steps, values, stamps = columns
    got = decode_chunk(encode_chunk(steps, values, stamps))[2]
    assert _bits(got) == _bits(array("d", stamps))


@given(chunks(TIMESTAMPS))
def test_a_decoded_chunk_encodes_to_the_same_bytes(columns: tuple[list[int], ...]) -> None:
    chunk = encode_chunk(*columns)
    assert encode_chunk(*decode_chunk(chunk)) == chunk
    assert chunk_length(chunk) == len(columns[0])


@given(chunks())
def test_the_sorted_flag_says_whether_steps_never_decrease(
    columns: tuple[list[int], ...],
) -> None:
    steps = columns[0]
    ordered = all(a <= b for a, b in itertools.pairwise(steps))
    assert steps_sorted(encode_chunk(*columns)) is ordered


@pytest.mark.parametrize("sizes", [[2000, 17, 70_000, 2000, 65_537, 3], [5, 4, 3, 2]])
def test_runs_of_consecutive_steps_of_any_size_in_any_order_are_sorted(sizes: list[int]) -> None:
    # The writer's chunks come in a few sizes, now and then a huge one: each is judged alike.
    for n in sizes:
        first = random.randrange(2**40)
        steps = array("q", range(first, first + n))
        zeros = [0.0] * n
        assert steps_sorted(encode_chunk(steps, zeros, zeros))
        steps[n // 2], steps[n // 2 - 1] = steps[n // 2 - 1], steps[n // 2]
        assert not steps_sorted(encode_chunk(steps, zeros, zeros))


SPECIAL = [
    math.nan,
    -math.nan,
    _float(0x7FF0000000000001),  # signalling NaN
    _float(0xFFF4000000000123),  # negative NaN with a payload
    -0.0,
    0.0,
    math.inf,
    -math.inf,
    5e-324,
    -2.2250738585072e-308,  # subnormal
    1.7976931348623157e308,
]


def _filtered(chunk: bytes, low: int, high: int) -> list[tuple[int, bytes, bytes]]:
    """What decode_window must give: the whole chunk decoded, then filtered (bits compared)."""
    steps, values, stamps = decode_chunk(chunk)
    return [
        (s, struct.pack("<d", v), struct.pack("<d", t))
        for s, v, t in zip(steps, values, stamps, strict=True)
        if low <= s <= high
    ]


def _window(chunk: bytes, low: int, high: int) -> list[tuple[int, bytes, bytes]]:
    steps, values, stamps = decode_window(chunk, low, high)
    assert (steps.typecode, values.typecode, stamps.typecode) == ("q", "d", "d")
    return [
        (s, struct.pack("<d", v), struct.pack("<d", t))
        for s, v, t in zip(steps, values, stamps, strict=True)
    ]


@given(chunks(), st.data())
def test_a_window_decodes_as_the_whole_chunk_filtered(
    columns: tuple[list[int], ...], data: st.DataObject
) -> None:
    chunk = encode_chunk(*columns)
    steps = columns[0]
    # Bounds on, between and beyond the chunk's own steps.
    near = st.sampled_from(steps) if steps else STEPS
    low = data.draw(st.one_of(near, STEPS, st.just(0)))
    high = data.draw(st.one_of(near, STEPS, st.just(2**63 - 1)))
    assert _window(chunk, low, high) == _filtered(chunk, low, high)


@pytest.mark.parametrize(
    ("low", "high"),
    [(0, 255), (0, 0), (30_000, 30_300), (64_000, 70_000), (5, 4), (80_000, 90_000), (0, 10**9)],
)
def test_a_window_of_a_long_compressed_chunk_reads_only_its_points(low: int, high: int) -> None:
    """A 65,536-point training curve, as the writer cuts them: steps and values in zstd planes."""
    n = 65_536
    values = [1.0 / (1 + i) for i in range(n)]
    chunk = encode_chunk(range(n), values, [1.7e9 + i * 0.01 for i in range(n)])
    assert chunk[6] == ZSTD  # the steps' low byte plane, right after the header, is compressed
    assert _window(chunk, low, high) == _filtered(chunk, low, high)


def test_a_window_of_unsorted_steps_keeps_the_chunk_order() -> None:
    chunk = encode_chunk([5, 3, 9, 3, 1], [0.5, 0.3, 0.9, -0.0, math.nan], [1.0] * 5)
    steps, values, _ = decode_window(chunk, 3, 5)
    assert list(steps) == [5, 3, 3]
    assert _bits(values) == _bits(array("d", [0.5, 0.3, -0.0]))


def test_a_truncated_chunk_raises_a_clear_error_in_a_window_too() -> None:
    chunk = _sample()
    for size in range(len(chunk)):
        with pytest.raises(ValueError, match="corrupt metric chunk"):
            decode_window(chunk[:size], 0, 10)


def test_special_values_keep_their_bits() -> None:
    n = len(SPECIAL)
    _, values, _ = decode_chunk(encode_chunk(range(n), SPECIAL, [1.7e9] * n))
    assert _bits(values) == _bits(array("d", SPECIAL))


def test_a_smooth_training_curve_takes_a_few_bytes_per_point() -> None:
    """Consecutive steps, regular timestamps and a slowly falling float32 loss."""
    n = 2000
    values = [struct.unpack("<f", struct.pack("<f", 2.0 / (1 + i / 100)))[0] for i in range(n)]
    chunk = encode_chunk(range(10_000, 10_000 + n), values, [1.7e9 + i * 0.25 for i in range(n)])
    assert len(chunk) < 6 * n
    steps, got, _ = decode_chunk(chunk)
    assert list(steps) == list(range(10_000, 10_000 + n))
    assert list(got) == values


def test_a_constant_column_takes_two_bytes_a_plane() -> None:
    """Header (6 bytes); each of the 24 planes CONST (kind, byte); the values' kind byte."""
    chunk = encode_chunk([7] * 10_000, [0.5] * 10_000, [1.7e9] * 10_000)
    assert chunk[:6] == struct.pack("<BBI", FORMAT_VERSION, 1, 10_000)
    assert len(chunk) == 6 + 24 * 2 + 1
    steps, values, stamps = decode_chunk(chunk)
    assert (set(steps), set(values), set(stamps)) == ({7}, {0.5}, {1.7e9})


def test_a_noisy_plane_is_stored_raw_and_a_smooth_one_compressed() -> None:
    """Random low bytes cost one byte a point and no compressor; a slow high byte almost nothing."""
    n = 4000
    rng = random.Random(3)
    values = [struct.unpack("<d", rng.randbytes(8))[0] for _ in range(n)]
    noisy = encode_chunk(range(n), values, [0.0] * n)
    assert 8 * n < len(noisy) < 8 * n + 600  # the values raw; steps compressed, timestamps CONST
    slow = [float(i // 100) for i in range(n)]
    assert len(encode_chunk(range(n), slow, [0.0] * n)) < n // 4


def test_repeated_and_decreasing_steps_keep_their_order() -> None:
    steps = [3, 3, 1, 7, 0, 0, 2**63 - 1, 0]
    chunk = encode_chunk(steps, [1.0] * 8, [1.0] * 8)
    assert list(decode_chunk(chunk)[0]) == steps
    assert not steps_sorted(chunk)
    assert steps_sorted(encode_chunk([1, 1, 2, 9], [1.0] * 4, [1.0] * 4))


def test_an_empty_chunk_round_trips() -> None:
    chunk = encode_chunk([], [], [])
    assert [list(column) for column in decode_chunk(chunk)] == [[], [], []]
    assert steps_sorted(chunk)


def test_columns_of_different_lengths_are_refused() -> None:
    with pytest.raises(ValueError, match="differ in length"):
        encode_chunk([1, 2], [1.0], [1.0, 2.0])


def test_a_corrupt_count_is_refused_before_anything_is_allocated() -> None:
    chunk = bytearray(encode_chunk([1] * 3, [1.0] * 3, [1.0] * 3))
    chunk[2:6] = struct.pack("<I", MAX_POINTS + 1)
    with pytest.raises(ValueError, match="more than a chunk holds"):
        decode_chunk(bytes(chunk))


def test_negative_steps_are_refused() -> None:
    with pytest.raises(ValueError, match=">= 0"):
        encode_chunk([1, -1], [1.0, 1.0], [1.0, 1.0])


def _sample() -> bytes:
    return encode_chunk([0, 2, 1, 5], [0.5, math.nan, -0.0, 3.0], [1.7e9, 1.7e9 + 1, 1.7e9, 2e9])


def test_every_truncation_raises_a_clear_error() -> None:
    chunk = _sample()
    for size in range(len(chunk)):
        with pytest.raises(ValueError, match="corrupt metric chunk"):
            decode_chunk(chunk[:size])


def test_trailing_bytes_are_refused() -> None:
    with pytest.raises(ValueError, match="left over"):
        decode_chunk(_sample() + b"\x00")


def test_corrupt_bytes_raise_value_error_or_decode() -> None:
    """Flipping any byte never raises anything but a ValueError."""
    chunk = _sample()
    for i in range(len(chunk)):
        damaged = bytearray(chunk)
        damaged[i] ^= 0xFF
        _decodes_or_refuses(decode_chunk, bytes(damaged))


def _decodes_or_refuses(decode: Callable[[bytes], object], data: bytes) -> None:
    """``decode(data)`` returns, or raises a ``ValueError`` about a metric chunk: nothing else."""
    try:
        decode(data)
    except ValueError as exc:
        message = str(exc)
    else:
        message = "metric chunk (decoded)"
    assert "metric chunk" in message


def test_an_unknown_format_version_is_refused() -> None:
    chunk = bytearray(_sample())
    chunk[0] = FORMAT_VERSION + 1
    with pytest.raises(ValueError, match=f"format version {FORMAT_VERSION + 1}.*upgrade"):
        decode_chunk(bytes(chunk))
    with pytest.raises(ValueError, match="format version"):
        steps_sorted(bytes(chunk))


def test_decoded_columns_are_buffers_that_share_their_memory() -> None:
    """What ``numpy.frombuffer`` needs to take them without a copy: int64 and float64 buffers."""
    steps, values, stamps = decode_chunk(_sample())
    view = memoryview(values)
    assert (memoryview(steps).format, view.format, memoryview(stamps).format) == ("q", "d", "d")
    values[0] = 42.0
    assert view[0] == 42.0


# -- version 2, zlib planes, as the releases before Zstandard wrote them ---------------------------
VERSION_2 = json.loads((Path(__file__).parent / "data" / "chunks-v2.json").read_text())
VERSION_2_CASES = sorted(name for name in VERSION_2 if name != "written_by")


@pytest.mark.parametrize("name", VERSION_2_CASES)
def test_a_version_2_chunk_of_an_earlier_release_decodes_exactly(name: str) -> None:
    case = VERSION_2[name]
    chunk = bytes.fromhex(case["chunk"])
    assert chunk[0] == 2
    steps, values, stamps = decode_chunk(chunk)
    assert list(steps) == case["steps"]
    assert values.tobytes().hex() == case["values"]
    assert stamps.tobytes().hex() == case["timestamps"]
    assert chunk_length(chunk) == len(case["steps"])
    assert steps_sorted(chunk) is all(a <= b for a, b in itertools.pairwise(case["steps"]))
    for low, high in [(0, 2**63 - 1), (3, 5), (600, 650), (1000, 1100)]:
        assert _window(chunk, low, high) == _filtered(chunk, low, high)


def test_the_version_2_fixture_holds_zlib_planes() -> None:
    """Else the test above would not read zlib at all."""
    assert bytes.fromhex(VERSION_2["training_curve"]["chunk"])[6] == ZLIB


def test_this_release_writes_version_3() -> None:
    assert FORMAT_VERSION == 3
    assert _sample()[0] == 3


def _frame(data: bytes) -> bytes:
    return zstandard.ZstdCompressor().compress(data)


def _column(first_plane_kind: int, first_plane: bytes) -> bytes:
    """A column whose low byte plane is given and whose seven others are CONST 0."""
    return bytes((first_plane_kind,)) + first_plane + b"\x00\x00" * 7


def _built(version: int, kind: int, packed: bytes, n: int) -> bytes:
    """A chunk of ``n`` points laid out by hand: the steps' low plane ``packed`` of ``kind``."""
    plane = struct.pack("<I", len(packed)) + packed
    constant = b"\x00\x00" * 8
    return struct.pack("<BBI", version, 0, n) + _column(kind, plane) + b"\x00" + constant * 2


def test_the_layout_is_as_documented() -> None:
    """A zstd frame of the steps' low plane decodes to the steps; the rest is zero."""
    n = 300
    plane = bytes(i % 256 for i in range(n))
    chunk = _built(3, ZSTD, _frame(plane), n)
    steps, values, stamps = decode_chunk(chunk)
    assert bytes(steps.tobytes()[::8]) == plane
    assert set(values) == set(stamps) == {0.0}


@pytest.mark.parametrize(
    ("version", "kind", "compress"),
    [(2, ZSTD, _frame), (3, ZLIB, zlib.compress)],
)
def test_a_plane_of_the_other_version_is_corrupt(
    version: int, kind: int, compress: Callable[[bytes], bytes]
) -> None:
    chunk = _built(version, kind, compress(bytes(300)), 300)
    with pytest.raises(ValueError, match="unknown byte plane encoding"):
        decode_chunk(chunk)


def test_a_frame_with_bytes_after_it_is_refused() -> None:
    chunk = _built(3, ZSTD, _frame(bytes(range(256)) * 2) + b"junk", 512)
    with pytest.raises(ValueError, match=r"corrupt metric chunk: .*4 bytes of unused data"):
        decode_chunk(chunk)


@pytest.mark.parametrize(
    ("frame", "said"),
    [
        (_frame(bytes(10_000)), "says 10000 bytes"),
        (_frame(bytes(100)), "says 100 bytes"),
        (zstandard.ZstdCompressor(write_content_size=False).compress(bytes(512)), "says no size"),
    ],
)
def test_a_frame_must_say_the_size_of_its_plane(frame: bytes, said: str) -> None:
    """Checked before anything is inflated: a corrupt header cannot make the reader allocate."""
    with pytest.raises(ValueError, match=f"frame {said}, for 512 points"):
        decode_chunk(_built(3, ZSTD, frame, 512))


def _compressed_chunks() -> list[bytes]:
    n = 700
    fresh = encode_chunk(range(n), [1.0 / (1 + i) for i in range(n)], [1.7e9 + i for i in range(n)])
    assert fresh[6] == ZSTD
    return [fresh, bytes.fromhex(VERSION_2["training_curve"]["chunk"])]


@pytest.mark.parametrize("chunk", _compressed_chunks(), ids=["version 3", "version 2"])
def test_damage_to_compressed_planes_raises_value_error_or_decodes(chunk: bytes) -> None:
    for size in range(0, len(chunk), 7):
        with pytest.raises(ValueError, match="corrupt metric chunk"):
            decode_chunk(chunk[:size])
        with pytest.raises(ValueError, match="corrupt metric chunk"):
            decode_window(chunk[:size], 0, 2**63 - 1)
    rng = random.Random(5)
    for i in rng.sample(range(len(chunk)), 400):
        damaged = bytearray(chunk)
        damaged[i] ^= 1 << rng.randrange(8)
        _decodes_or_refuses(decode_chunk, bytes(damaged))
        _decodes_or_refuses(lambda c: decode_window(c, 100, 300), bytes(damaged))
