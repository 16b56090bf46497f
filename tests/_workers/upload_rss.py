"""Log one file artifact and print the peak RSS (bytes) before and after.

Usage: upload_rss.py DB FILE
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

from runjournal import Tracker


def peak_rss() -> int:
    """This process's own high-water mark (``ru_maxrss`` would keep the parent's, before exec)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    raise SystemExit("no VmHWM in /proc/self/status")


async def main(db: str, file: str) -> None:
    async with Tracker.open(db) as tracker:
        run_id = await tracker.create_run(await tracker.create_experiment("rss"))
        await tracker.log_artifact(run_id, "warm-up", b"x")
        await tracker.flush()
        before = peak_rss()
        await tracker.log_artifact(run_id, "big.bin", file)
        after = peak_rss()
    print(before, after)


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], sys.argv[2]))
