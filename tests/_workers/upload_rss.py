"""Log one file artifact and print the peak RSS (bytes) before and after.

Usage: upload_rss.py DB FILE
"""

from __future__ import annotations

import asyncio
import resource
import sys

from runjournal import Tracker


def peak_rss() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # KiB on Linux


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
