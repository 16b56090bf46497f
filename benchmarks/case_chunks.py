"""Case 9, metric chunks: bytes per point and encode/decode speed of the columnar chunk codec.

The baseline, measured in the same run, is today's format: msgspec msgpack of
``[step, value, timestamp]`` triples. Chunks of 2,000 points (about what the writer folds
per key per commit); four series: a smooth float32 training curve logged once per step,
the bench workload of case 2 (``1 / (step + 1)``, time read per point), random 64-bit
patterns, and steps that repeat and go back.
"""

from __future__ import annotations

import math
import random
import struct
import time
from collections.abc import Callable, Sequence
from functools import partial
from typing import Any

import msgspec

from benchmarks._harness import Case, CaseResult, Context, Row, at_most
from runjournal.chunks import decode_chunk, encode_chunk

__all__ = ["CASE", "series"]

CHUNK = 2_000
SMOOTH_TARGET = 6.0

Columns = tuple[list[int], list[float], list[float]]


def _f32(x: float) -> float:
    value: float = struct.unpack("<f", struct.pack("<f", x))[0]
    return value


def series(kind: str, n: int, seed: int = 1) -> Columns:
    """The columns of one benchmark series of ``n`` points."""
    rng = random.Random(seed)
    steps = list(range(n))
    if kind == "smooth":
        stamps, t = [], 1.7e9
        for _ in range(n):
            t += 0.05 + rng.gauss(0, 0.0005)
            stamps.append(t)
        values = [_f32(2 * math.exp(-i / 3000) + 0.1 + rng.gauss(0, 0.01)) for i in steps]
        return steps, values, stamps
    if kind == "bench":
        t = 1.7e9
        return steps, [1.0 / (i + 1) for i in steps], [t + i * 1.1e-5 for i in steps]
    if kind == "random":
        values = [struct.unpack("<d", rng.randbytes(8))[0] for _ in steps]
        return steps, values, [1.7e9 + rng.random() * 1000 for _ in steps]
    if kind == "messy":
        messy = [max(0, i + rng.choice([-3, 0, 0, 1, 1, 1, 5])) for i in steps]
        return messy, [1.0 / (i + 1) for i in steps], [1.7e9 + i * 0.01 for i in steps]
    raise ValueError(kind)


KINDS = {
    "smooth": "smooth float32 curve, once per step",
    "bench": "bench workload (case 2)",
    "random": "random 64-bit values",
    "messy": "repeated and out-of-order steps",
}


def _each(action: Callable[[Any], object], items: Sequence[Any]) -> None:
    for item in items:
        action(item)


def _best(action: Callable[[], object], repeats: int) -> float:
    best = math.inf
    for _ in range(repeats):
        start = time.perf_counter()
        action()
        best = min(best, time.perf_counter() - start)
    return best


def run(context: Context) -> CaseResult:
    points = context.config.n(200_000, 20_000)
    repeats = context.config.repeats
    result = CaseResult(
        9,
        "Metric chunks",
        f"{points:,} points per series in chunks of {CHUNK:,}; best of {repeats}",
    )
    encoder = msgspec.msgpack.Encoder()
    decoder = msgspec.msgpack.Decoder(list[tuple[int, float, float]])
    for kind, title in KINDS.items():
        steps, values, stamps = series(kind, points)
        parts = [
            (steps[i : i + CHUNK], values[i : i + CHUNK], stamps[i : i + CHUNK])
            for i in range(0, points, CHUNK)
        ]
        triples = [list(zip(*part, strict=True)) for part in parts]
        chunks = [encode_chunk(*part) for part in parts]
        packed = [encoder.encode(t) for t in triples]
        enc = _best(partial(_each, lambda p: encode_chunk(*p), parts), repeats)
        dec = _best(partial(_each, decode_chunk, chunks), repeats)
        base_enc = _best(partial(_each, encoder.encode, triples), repeats)
        base_dec = _best(partial(_each, decoder.decode, packed), repeats)
        size = sum(map(len, chunks)) / points
        base_size = sum(map(len, packed)) / points
        target = at_most(SMOOTH_TARGET) if kind == "smooth" else None
        result.rows += [
            Row(f"{title}: bytes per point", size, "B/pt", target),
            Row(f"{title}: msgpack triples ÷ chunk, bytes", base_size / size, "×"),
            Row(f"{title}: encode", enc / points * 1e9, "ns/pt"),
            Row(f"{title}: decode to arrays", dec / points * 1e9, "ns/pt"),
            Row(f"{title}: encode time ÷ msgpack encode time", enc / base_enc, "×"),
            Row(f"{title}: decode time ÷ msgpack decode time", dec / base_dec, "×"),
        ]
    return result


CASE = Case("chunks", 9, "Metric chunks", run)
