"""Try to use a database that this process may not write, and report what happened.

Usage: readonly.py SCENARIO PATH RUN_ID

Tests run as root, and root writes anywhere. So this process first gives up the
capabilities that let root ignore file permissions (per-thread on Linux, so it
happens before any thread starts); from then on the permissions bite as they would
for any user. SCENARIO:

- file: PATH is a read-only database file in a writable directory
- directory: PATH is a database in a read-only directory
- missing: PATH does not exist, in a read-only directory

Prints one JSON object: where the error surfaced ("open" or "flush"), its type and
message, and how long closing took.
"""

from __future__ import annotations

import asyncio
import ctypes
import json
import os
import sys
import time
from typing import Any

from runjournal import RunJournalError, Tracker

_CAPABILITY_VERSION_3 = 0x20080522
# CAP_CHOWN, CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH, CAP_FOWNER
_DROP = (1 << 0) | (1 << 1) | (1 << 2) | (1 << 3)


class _Header(ctypes.Structure):
    _fields_ = [("version", ctypes.c_uint32), ("pid", ctypes.c_int)]


class _Data(ctypes.Structure):
    _fields_ = [
        ("effective", ctypes.c_uint32),
        ("permitted", ctypes.c_uint32),
        ("inheritable", ctypes.c_uint32),
    ]


def drop_file_capabilities() -> None:
    if os.geteuid() != 0:
        return
    libc = ctypes.CDLL(None, use_errno=True)
    header = _Header(_CAPABILITY_VERSION_3, 0)
    data = (_Data * 2)()
    if libc.capget(ctypes.byref(header), data) != 0:
        raise OSError(ctypes.get_errno(), "capget failed")
    for part in data:
        part.effective &= ~_DROP
        part.permitted &= ~_DROP
        part.inheritable &= ~_DROP
    if libc.capset(ctypes.byref(header), data) != 0:
        raise OSError(ctypes.get_errno(), "capset failed")


async def attempt(path: str, run_id: str) -> dict[str, Any]:
    stage = "open"
    tracker = Tracker.open(path, drain_timeout=0.5, busy_timeout=0.2)
    outcome: dict[str, Any] = {"stage": None, "error": None, "message": ""}
    started = time.monotonic()
    try:
        async with tracker:
            stage = "flush"
            tracker.log_metric_nowait(run_id, "ro", 0, 1.0)
            await tracker.flush()
    except RunJournalError as exc:
        outcome = {"stage": stage, "error": type(exc).__name__, "message": str(exc)}
    finally:
        # Whatever happened, the writer is stopped: closing never hangs.
        await tracker.close()
    outcome["close_seconds"] = time.monotonic() - started
    outcome["writable"] = os.access(path, os.W_OK)
    return outcome


def main(path: str, run_id: str) -> None:
    drop_file_capabilities()
    print(json.dumps(asyncio.run(attempt(path, run_id))), flush=True)


if __name__ == "__main__":
    main(sys.argv[2], sys.argv[3])
