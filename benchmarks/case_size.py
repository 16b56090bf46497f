"""Case 5, size: bytes on disk per metric point after case 2, journal and projections together.

Counted twice: right after ``flush()`` with the tracker still open (the database file plus
its WAL and shared-memory index, as a user sees it during training), and after ``close()``
(which checkpoints the WAL). The raw ``executemany`` table of case 2 is the baseline.
"""

from __future__ import annotations

from benchmarks._harness import KEYS, Case, CaseResult, Context, Row, at_most
from benchmarks.case_end_to_end import sample_for_size

__all__ = ["CASE"]

BYTES_TARGET = 32.0


def run(context: Context) -> CaseResult:
    sample = context.e2e_sample
    if sample is None:  # case 2 did not run: run its workload once
        sample = sample_for_size(context, context.config.n(100_000, 10_000))
    points = sample.points
    result = CaseResult(
        5,
        "Size on disk",
        f"the database of case 2 ({points:,} points, {len(KEYS)} keys, await log_metric)",
    )
    result.rows += [
        Row(
            "after flush(), tracker open: db + wal + shm",
            sample.bytes_open / points,
            "B/pt",
            at_most(BYTES_TARGET),
        ),
        Row(
            "after close(): db + wal + shm",
            sample.bytes_closed / points,
            "B/pt",
            at_most(BYTES_TARGET),
        ),
    ]
    raw = sample.raw_bytes / points
    worst = max(sample.bytes_open, sample.bytes_closed) / points
    result.rows += [
        Row("raw executemany table + index (baseline)", raw, "B/pt"),
        Row("raw baseline ÷ runjournal (larger of the two)", raw / worst, "×"),
    ]
    if sample.breakdown:
        total = sum(sample.breakdown.values())
        parts = sorted(sample.breakdown.items(), key=lambda item: -item[1])
        shown = ", ".join(f"{name} {size / points:.2f}" for name, size in parts[:4])
        result.notes.append(
            f"after close, by table (dbstat, B/pt): {shown}; all pages {total / points:.2f}"
        )
    return result


CASE = Case("size", 5, "Size on disk", run)
