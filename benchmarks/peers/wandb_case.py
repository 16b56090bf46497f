"""Weights & Biases in offline mode: records go to a local ``.wandb`` file, nothing is synced.

``WANDB_MODE=offline`` keeps wandb off the network while still writing the run; ``WANDB_DISABLED``
must never be set, because it turns every call into a no-op and would measure nothing.
"""

from __future__ import annotations

import json
import os
import struct
import time
from collections.abc import Iterator
from importlib import metadata
from pathlib import Path
from typing import Any

from ._common import (
    METRIC_KEY,
    PROJECT_NAME,
    RUN_NAME,
    CaseDirs,
    PeerResult,
    PeerUnavailableError,
    build_result,
    check_series,
    expected_value,
)

PEER = "wandb"

# Framing of the .wandb transaction log: a 7-byte file header (":W&B", magic, version), then
# LevelDB-log-style 32 KiB blocks of chunks, each with a 7-byte header (crc32, length, type).
_FILE_IDENT = b":W&B"
_FILE_HEADER_LEN = 7
_BLOCK_LEN = 32 * 1024
_CHUNK_HEADER = struct.Struct("<IHB")
_FULL, _FIRST, _MIDDLE, _LAST = 1, 2, 3, 4


def environment(dirs: CaseDirs) -> dict[str, str]:
    """Return the variables that keep wandb offline, quiet and inside the case's dirs."""
    return {
        "WANDB_MODE": "offline",
        "WANDB_SILENT": "true",
        "WANDB_DIR": str(dirs.store),
        "WANDB_CONFIG_DIR": str(dirs.aux / "wandb-config"),
        "WANDB_CACHE_DIR": str(dirs.aux / "wandb-cache"),
        "WANDB_DATA_DIR": str(dirs.aux / "wandb-data"),
        "WANDB_ARTIFACT_DIR": str(dirs.aux / "wandb-artifacts"),
        "WANDB_DISABLE_GIT": "true",
        "WANDB_DISABLE_CODE": "true",
        "WANDB_ERROR_REPORTING": "false",
    }


def iter_transaction_log(path: Path) -> Iterator[bytes]:
    """Yield the serialized records of a ``.wandb`` file.

    wandb no longer ships a Python reader for its offline files (``wandb.Api`` needs a server),
    so this decodes the framing and leaves the records to wandb's own protobuf classes.
    """
    data = path.read_bytes()
    if data[: len(_FILE_IDENT)] != _FILE_IDENT:
        raise ValueError(f"{path} is not a .wandb transaction log")
    pos = _FILE_HEADER_LEN
    pending = bytearray()
    while pos + _CHUNK_HEADER.size <= len(data):
        left_in_block = _BLOCK_LEN - pos % _BLOCK_LEN
        if left_in_block < _CHUNK_HEADER.size:
            pos += left_in_block
            continue
        _crc, length, kind = _CHUNK_HEADER.unpack_from(data, pos)
        pos += _CHUNK_HEADER.size
        chunk = data[pos : pos + length]
        pos += length
        if kind == _FULL:
            yield chunk
        elif kind == _FIRST:
            pending = bytearray(chunk)
        elif kind == _MIDDLE:
            pending += chunk
        elif kind == _LAST:
            pending += chunk
            yield bytes(pending)
        else:
            break  # zero padding of a preallocated or torn tail


def read_history(run_dir: Path) -> tuple[list[tuple[int, float]], dict[str, int]]:
    """Return the (step, value) pairs of the benchmark metric and a count of record types."""
    from wandb.proto import wandb_internal_pb2  # type: ignore[import-not-found,unused-ignore]

    (log_path,) = run_dir.glob("*.wandb")
    points: list[tuple[int, float]] = []
    kinds: dict[str, int] = {}
    for raw in iter_transaction_log(log_path):
        record: Any = wandb_internal_pb2.Record()  # type: ignore[attr-defined,unused-ignore]
        record.ParseFromString(raw)
        kind = str(record.WhichOneof("record_type"))
        kinds[kind] = kinds.get(kind, 0) + 1
        if kind != "history":
            continue
        step: int | None = record.history.step.num if record.history.HasField("step") else None
        value: float | None = None
        for item in record.history.item:
            key = item.key or ".".join(item.nested_key)
            if key == METRIC_KEY:
                value = float(json.loads(item.value_json))
            elif key == "_step" and step is None:
                step = int(json.loads(item.value_json))
        if value is not None and step is not None:
            points.append((step, value))
    return points, kinds


def run(points: int, dirs: CaseDirs) -> PeerResult:
    """Log ``points`` points with one ``Run.log`` call each, finish, and read the file back."""
    if os.environ.get("WANDB_DISABLED"):
        raise RuntimeError("WANDB_DISABLED is set: wandb would be a no-op, refusing to measure")
    try:
        import wandb  # type: ignore[import-not-found,unused-ignore]
    except ImportError as exc:
        raise PeerUnavailableError(str(exc)) from exc

    payloads = [{METRIC_KEY: expected_value(i)} for i in range(points)]
    latencies = [0] * points
    # System-metrics sampling is off, as for trackio, so only the logging path is measured.
    tracker = wandb.init(
        project=PROJECT_NAME,
        name=RUN_NAME,
        dir=str(dirs.store),
        mode="offline",
        settings=wandb.Settings(x_disable_stats=True),
    )
    if tracker.settings.mode != "offline" or tracker.disabled:
        raise RuntimeError(f"wandb run is not an offline run (mode={tracker.settings.mode})")
    run_dir = Path(tracker.settings.sync_dir)
    log = tracker.log
    clock = time.perf_counter_ns
    start = clock()
    for i in range(points):
        payload = payloads[i]
        t0 = clock()
        log(payload, step=i)
        latencies[i] = clock() - t0
    loop = clock() - start
    # finish() waits for wandb-core to drain the queue and close the .wandb file.
    tracker.finish()
    elapsed = clock() - start

    history, kinds = read_history(run_dir)
    read_back = check_series(history, points)
    record_counts = ", ".join(f"{k}={v}" for k, v in sorted(kinds.items()))
    return build_result(
        peer=PEER,
        case="wandb",
        n_points=points,
        points_per_call=1,
        latencies_ns=latencies,
        loop_ns=loop,
        elapsed_ns=elapsed,
        dirs=dirs,
        read_back=read_back,
        version=metadata.version("wandb"),
        notes=[
            "mode=offline; Run.log per point; end-to-end includes Run.finish(); stats off",
            (
                "read back by decoding the .wandb file with wandb.proto Record"
                f" (wandb.Api needs a server; records: {record_counts})"
            ),
        ],
    )
