"""Case 9, artifacts: a large file logged as an artifact, its throughput and its memory.

A child process (``python -m benchmarks.case_artifacts --child DB FILE``) logs the file
through ``Tracker.log_artifact(run_id, name, path)`` and reports its peak RSS (``VmHWM``)
before and after, and the seconds until the call returned (the artifact is committed by
then). In the same run, the parent measures two baselines over the same file: a plain copy
(``shutil.copyfile``) and SHA-256 of the file read in 4 MiB pieces, the least any store
that names content by its hash must do.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

from benchmarks._harness import (
    REPO_ROOT,
    Case,
    CaseResult,
    Context,
    Row,
    at_least,
    at_most,
    remove_db,
)

__all__ = ["CASE"]

MB = 1e6
RSS_TARGET_MB = 64.0
THROUGHPUT_TARGET = 200.0  # MB/s
_PIECE = 4 * 1024 * 1024


def _peak_rss() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    raise RuntimeError("no VmHWM")


def _write_file(path: Path, size: int) -> None:
    """Incompressible, non-repeating content (identical chunks would be stored once)."""
    seed = hashlib.sha256(b"runjournal").digest()
    with open(path, "wb") as file:
        written = 0
        counter = 0
        while written < size:
            piece = hashlib.shake_256(seed + counter.to_bytes(8, "big")).digest(
                min(_PIECE, size - written)
            )
            file.write(piece)
            written += len(piece)
            counter += 1


def _hash_file(path: Path) -> None:
    whole = hashlib.sha256()
    with open(path, "rb", buffering=0) as file:
        while piece := file.read(_PIECE):
            whole.update(piece)


def _timed(work: object) -> float:
    started = time.perf_counter()
    work()  # type: ignore[operator]
    return time.perf_counter() - started


def run(ctx: Context) -> CaseResult:
    size = (128 if ctx.config.quick else 1024) * 1024 * 1024
    workdir = ctx.config.workdir
    data = workdir / "artifact.bin"
    db = workdir / "artifacts.db"
    copy = workdir / "artifact.copy"
    _write_file(data, size)
    remove_db(db)
    try:
        copy_s = _timed(lambda: shutil.copyfile(data, copy))
        os.unlink(copy)
        hash_s = _timed(lambda: _hash_file(data))
        child = subprocess.run(
            [sys.executable, "-m", "benchmarks.case_artifacts", "--child", str(db), str(data)],
            cwd=REPO_ROOT,
            capture_output=True,
            text=True,
            check=True,
        )
        report = json.loads(child.stdout)
        db_bytes = db.stat().st_size
    finally:
        for path in (data, copy):
            path.unlink(missing_ok=True)
        remove_db(db)
    mb = size / MB
    result = CaseResult(
        9,
        "Artifacts",
        f"one {size / 2**20:,.0f} MiB file of incompressible bytes through "
        "log_artifact(run_id, name, path), in a child process, default options",
    )
    result.rows = [
        Row(
            "log_artifact throughput (until it returned, committed)",
            mb / report["seconds"],
            "MB/s",
            at_least(THROUGHPUT_TARGET),
        ),
        Row(
            "peak RSS raised by logging it (VmHWM after - before)",
            (report["after"] - report["before"]) / MB,
            "MB",
            at_most(RSS_TARGET_MB),
        ),
        Row(
            "then close(), which checkpoints the WAL into the database file",
            report["closed"],
            "s",
            note="deferred from the artifact's commit (see SqliteBackend.append_artifact)",
        ),
        Row("baseline: shutil.copyfile of the same file", mb / copy_s, "MB/s"),
        Row("baseline: SHA-256 of the file, 4 MiB reads", mb / hash_s, "MB/s"),
        Row("database size / file size", db_bytes / size, "×"),
    ]
    return result


CASE = Case("artifacts", 9, "Artifacts", run)


def _child(db: str, file: str) -> None:
    from runjournal import Tracker

    async def main() -> dict[str, float]:
        async with Tracker.open(db) as tracker:
            run_id = await tracker.create_run(await tracker.create_experiment("artifacts"))
            await tracker.log_artifact(run_id, "warm-up", b"x")
            await tracker.flush()
            before = _peak_rss()
            started = time.perf_counter()
            await tracker.log_artifact(run_id, "artifact.bin", file)
            seconds = time.perf_counter() - started
            after = _peak_rss()
            closing = time.perf_counter()
        closed = time.perf_counter() - closing
        return {"before": before, "after": after, "seconds": seconds, "closed": closed}

    print(json.dumps(asyncio.run(main())))


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description="the child process of the artifacts case")
    parser.add_argument("--child", nargs=2, metavar=("DB", "FILE"), required=True)
    args = parser.parse_args()
    _child(*args.child)
